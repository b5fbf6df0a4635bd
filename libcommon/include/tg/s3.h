/* Layer 2 (clients).
 * Objects in an S3-compatible store (path-style URLs), signed with AWS SigV4
 * by libcurl: put, get, list and delete. */
#ifndef TG_S3_H
#define TG_S3_H

#include "tg/config.h"
#include "tg/error.h"
#include <stddef.h>

/* Returns true when S3_ENDPOINT is configured. */
int tg_s3_enabled(const tg_config_t *cfg);

/* PUTs len bytes at s3://S3_BUCKET/key (path-style URL). */
int tg_s3_put(const tg_config_t *cfg, const char *key, const void *data, size_t len,
              const char *content_type, char *errstr, size_t errlen) TG_WARN_UNUSED;

/* GETs an object into *out (the caller frees it with free()). */
int tg_s3_get(const tg_config_t *cfg, const char *key, char **out, size_t *outlen, char *errstr,
              size_t errlen) TG_WARN_UNUSED;

/* Lists every key under prefix (all pages of ListObjectsV2), in the
 * server's order (ascending). On success *keys holds *n strings; the caller
 * frees them with tg_s3_keys_free(). On failure nothing is returned. */
int tg_s3_list(const tg_config_t *cfg, const char *prefix, char ***keys, size_t *n, char *errstr,
               size_t errlen) TG_WARN_UNUSED;

/* Frees what tg_s3_list returned. */
void tg_s3_keys_free(char **keys, size_t n);

/* Deletes the object at key; a key that does not exist is not an error. */
int tg_s3_delete(const tg_config_t *cfg, const char *key, char *errstr,
                 size_t errlen) TG_WARN_UNUSED;

/* gzip-compresses data; the caller frees *out. */
int tg_gzip(const void *data, size_t len, void **out, size_t *outlen) TG_WARN_UNUSED;

/* The same compression fed piece by piece, for data too large to hold
 * whole: only the compressed bytes are kept, and they are the bytes tg_gzip
 * gives for the pieces put together. */
typedef struct tg_gzip_s tg_gzip_t;

/* Starts a stream; NULL when out of memory. */
tg_gzip_t *tg_gzip_new(void);
/* Compresses len more bytes; TG_ERR_NOMEM leaves the stream unusable. */
int tg_gzip_write(tg_gzip_t *z, const void *data, size_t len) TG_WARN_UNUSED;
/* Ends the stream and frees it, whatever the result; on success the caller
 * owns *out (free()) of *outlen bytes. */
int tg_gzip_finish(tg_gzip_t *z, void **out, size_t *outlen) TG_WARN_UNUSED;
/* Frees a stream that will not be finished; NULL is allowed. */
void tg_gzip_free(tg_gzip_t *z);

#endif
