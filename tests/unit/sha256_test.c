/* SHA-256 against the FIPS 180-2 test vectors, one-shot and incremental. */
#include "tg/sha256.h"
#include "tg_test.h"

int main(void) {
    char hex[65];
    tg_sha256_hex("", 0, hex);
    CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    tg_sha256_hex("abc", 3, hex);
    CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    tg_sha256_hex(m, strlen(m), hex);
    CHECK_STR(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");

    /* One million 'a', fed in uneven pieces. */
    tg_sha256_t *h = tg_sha256_new();
    char block[1001];
    memset(block, 'a', sizeof(block));
    for (int i = 0; i < 1000; i++) {
        tg_sha256_update(h, block, i % 2 ? 999 : 1001);
    }
    tg_sha256_final(h, hex);
    CHECK_STR(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    TG_TEST_END();
}
