/* What the project makes of SHA-256: the data hash and row hashes of
 * odata-sync-worker (datasets.data_hash, row_hash) and the payload hash of
 * S3 requests are 64 lower-case hex digits, depend only on the bytes (not
 * on how they were fed), and change with any byte. */
#include "tg/sha256.h"
#include "tg_test.h"
#include <ctype.h>

static int is_hex64(const char *s) {
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++) {
        if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i])) {
            return 0;
        }
    }
    return n == 64;
}

int main(void) {
    const char *canonical = "{\"stops\":[{\"id\":\"stop-1\",\"name\":\"Аэропорт Якутск\"}]}";
    char once[65], pieces[65], other[65];
    tg_sha256_hex(canonical, strlen(canonical), once);
    CHECK(is_hex64(once));

    /* Fed in uneven pieces, as a stream: the same hash. */
    tg_sha256_t *h = tg_sha256_new();
    CHECK(h != NULL);
    for (size_t at = 0, step = 1; at < strlen(canonical); at += step, step = step % 7 + 1) {
        size_t left = strlen(canonical) - at;
        tg_sha256_update(h, canonical + at, step < left ? step : left);
    }
    tg_sha256_final(h, pieces);
    CHECK_STR(pieces, once);

    /* One value changed ("stop-1" → "stop-2"): another hash. */
    char changed[128];
    snprintf(changed, sizeof(changed), "%s", canonical);
    *strchr(changed, '1') = '2';
    tg_sha256_hex(changed, strlen(changed), other);
    CHECK(is_hex64(other) && strcmp(other, once) != 0);

    /* An empty S3 body is signed with the hash AWS documents for it. */
    tg_sha256_hex("", 0, other);
    CHECK_STR(other, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    TG_TEST_END();
}
