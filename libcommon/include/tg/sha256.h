/* Layer 0 (base).
 * SHA-256 through OpenSSL's EVP interface, incremental. */
#ifndef TG_SHA256_H
#define TG_SHA256_H

#include <stddef.h>

typedef struct tg_sha256_s tg_sha256_t;

tg_sha256_t *tg_sha256_new(void);
void tg_sha256_update(tg_sha256_t *h, const void *data, size_t len);
/* Writes 64 lowercase hex digits + NUL and frees h. */
void tg_sha256_final(tg_sha256_t *h, char hex[65]);

/* One-shot digest of data. */
void tg_sha256_hex(const void *data, size_t len, char hex[65]);

#endif
