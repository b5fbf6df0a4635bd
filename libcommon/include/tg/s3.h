/* Layer 2 (clients).
 * Objects in an S3-compatible store (path-style URLs), signed with AWS SigV4
 * by libcurl: put, get, list and delete. */
#ifndef TG_S3_H
#define TG_S3_H

#include "tg/config.h"
#include "tg/error.h"
#include <stddef.h>
#include <stdio.h>

/* Returns true when S3_ENDPOINT is configured. */
int tg_s3_enabled(const tg_config_t *cfg);

/* PUTs len bytes at s3://S3_BUCKET/key (path-style URL). */
int tg_s3_put(const tg_config_t *cfg, const char *key, const void *data, size_t len,
              const char *content_type, char *errstr, size_t errlen) TG_WARN_UNUSED;

/* PUTs the whole of file f (read from its start; the caller keeps it open
 * and closes it) at key, streamed: never held in memory. TG_ERR_IO when
 * the file cannot be read. */
int tg_s3_put_file(const tg_config_t *cfg, const char *key, FILE *f, const char *content_type,
                   char *errstr, size_t errlen) TG_WARN_UNUSED;

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

/* gzip compression fed piece by piece and written to a file as it goes:
 * memory stays at one piece whatever the size. The bytes are those of one
 * deflate (level 6, gzip header) over the pieces put together, however the
 * data is cut. The stream borrows out; the caller closes it. */
typedef struct tg_gzip_s tg_gzip_t;

/* Starts a stream into out; NULL when out of memory. */
tg_gzip_t *tg_gzip_new(FILE *out);
/* Compresses len more bytes: TG_OK, TG_ERR_NOMEM, or TG_ERR_IO when out
 * cannot be written. After a failure every call returns that failure. */
int tg_gzip_write(tg_gzip_t *z, const void *data, size_t len) TG_WARN_UNUSED;
/* Ends the stream, flushes out and frees z, whatever the result. */
int tg_gzip_finish(tg_gzip_t *z) TG_WARN_UNUSED;
/* Frees a stream that will not be finished; NULL is allowed. */
void tg_gzip_free(tg_gzip_t *z);

/* Compresses the whole of file in (read from its start) into out, written
 * at out's position. TG_ERR_IO when either file fails, TG_ERR_NOMEM. */
int tg_gzip_file(FILE *in, FILE *out, char *errstr, size_t errlen) TG_WARN_UNUSED;

#endif
