/* Puts objects into an S3-compatible store, signed with AWS SigV4 by libcurl. */
#ifndef TG_S3_H
#define TG_S3_H

#include <stddef.h>
#include "tg/config.h"
#include "tg/error.h"

/* Returns true when S3_ENDPOINT is configured. */
int tg_s3_enabled(const tg_config_t *cfg);

/* PUTs len bytes at s3://S3_BUCKET/key (path-style URL). */
int tg_s3_put(const tg_config_t *cfg, const char *key, const void *data, size_t len,
              const char *content_type, char *errstr, size_t errlen) TG_WARN_UNUSED;

/* GETs an object into *out (the caller frees it with free()). */
int tg_s3_get(const tg_config_t *cfg, const char *key, char **out, size_t *outlen, char *errstr,
              size_t errlen) TG_WARN_UNUSED;

/* gzip-compresses data; the caller frees *out. */
int tg_gzip(const void *data, size_t len, void **out, size_t *outlen) TG_WARN_UNUSED;

#endif
