/* SHA-256 over OpenSSL's EVP digest interface. */
#include "tg/sha256.h"
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>

struct tg_sha256_s {
    EVP_MD_CTX *ctx;
};

tg_sha256_t *tg_sha256_new(void) {
    tg_sha256_t *h = calloc(1, sizeof(*h));
    if (!h) {
        return NULL;
    }
    h->ctx = EVP_MD_CTX_new();
    if (!h->ctx || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(h->ctx);
        free(h);
        return NULL;
    }
    return h;
}

void tg_sha256_update(tg_sha256_t *h, const void *data, size_t len) {
    EVP_DigestUpdate(h->ctx, data, len);
}

void tg_sha256_final(tg_sha256_t *h, char hex[65]) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(h->ctx, md, &n);
    for (unsigned int i = 0; i < n && i < 32; i++) {
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    }
    hex[64] = '\0';
    EVP_MD_CTX_free(h->ctx);
    free(h);
}

void tg_sha256_hex(const void *data, size_t len, char hex[65]) {
    tg_sha256_t *h = tg_sha256_new();
    if (!h) {
        hex[0] = '\0';
        return;
    }
    tg_sha256_update(h, data, len);
    tg_sha256_final(h, hex);
}
