/* libcommon text: the city rule both graph-builder and
 * virtual-entities-generator follow, the JSON escaping of everything written
 * by hand (logs, the hashed canonical data, the graph in Redis), and UTF-8. */
#include "tg/text.h"
#include "tg_test.h"
#include <stdlib.h>

static const char *key(const char *in) {
    static char out[256];
    return tg_city_key(in, out, sizeof(out)) ? "(invalid)" : out;
}

static void test_city_rule(void) {
    CHECK_STR(key("Якутск"), "якутск");
    CHECK_STR(key("ЯКУТСК"), "якутск");
    CHECK_STR(key("Олёкминск"), "олекминск");
    CHECK_STR(key("ОЛЁКМИНСК"), "олекминск");
    CHECK_STR(key("ҤҮӨҺҔ"), "ҥүөһҕ"); /* Yakut letters */
    CHECK_STR(key("New-York"), "new york");
    /* hyphens, dashes and blanks are one separator: one city, one key */
    CHECK_STR(key("Усть-Мая"), "усть мая");
    CHECK_STR(key("Усть Мая"), "усть мая");
    CHECK_STR(key("  Усть - Мая  "), "усть мая");
    CHECK_STR(key("Усть--Мая"), "усть мая");
    CHECK_STR(key("Усть\xc2\xa0Мая"), "усть мая");     /* no-break space */
    CHECK_STR(key("Усть\xe2\x80\x93Мая"), "усть мая"); /* en dash */
    CHECK_STR(key("Нижний   Бестях"), "нижний бестях");
    CHECK_STR(key("Ытык-Кюёль"), "ытык кюель");
    /* settlement types go, once, whatever their case and spacing */
    CHECK_STR(key("г. Якутск"), "якутск");
    CHECK_STR(key("г.Якутск"), "якутск");
    CHECK_STR(key("Г. Якутск"), "якутск");
    CHECK_STR(key("г Якутск"), "якутск");
    CHECK_STR(key("  г. Нерюнгри "), "нерюнгри");
    CHECK_STR(key("пос. Чульман"), "чульман");
    CHECK_STR(key("пгт Чульман"), "чульман");
    CHECK_STR(key("пгт. Чульман"), "чульман");
    CHECK_STR(key("с. Намцы"), "намцы");
    CHECK_STR(key("п. Тикси"), "тикси");
    CHECK_STR(key("г. пос. Тикси"), "пос. тикси"); /* only one */
    /* ... but a name that starts with those letters keeps them */
    CHECK_STR(key("Гарь"), "гарь");
    CHECK_STR(key("Посёлок № 5"), "поселок № 5");
    CHECK_STR(key("Сунтар"), "сунтар");
    /* nothing left, not UTF-8, no room: no key */
    CHECK_STR(key("г. "), "(invalid)");
    CHECK_STR(key(""), "(invalid)");
    CHECK_STR(key(" - "), "(invalid)");
    CHECK_STR(key(NULL), "(invalid)");
    CHECK_STR(key("Як\xffутск"), "(invalid)");
    char small[4] = "xyz";
    CHECK(tg_city_key("Якутск", small, sizeof(small)) == TG_ERR_INVALID);
    CHECK_STR(small, "");
}

static void test_json(void) {
    tg_buf_t b;
    tg_buf_init(&b);
    CHECK(tg_json_append_str(&b, "Аэропорт \"Якутск\"\\\n\t\x01") == TG_OK);
    CHECK_STR(b.data, "\"Аэропорт \\\"Якутск\\\"\\\\\\u000a\\u0009\\u0001\"");
    tg_buf_reset(&b);
    CHECK(tg_json_append_str(&b, "") == TG_OK);
    CHECK_STR(b.data, "\"\"");
    tg_buf_free(&b);

    /* The bounded form (log lines) writes the same escapes, and stops early
     * rather than split an escape or a letter. */
    char out[64];
    CHECK(tg_json_escape(out, sizeof(out), "a\"b\nc") == 11);
    CHECK_STR(out, "a\\\"b\\u000ac");
    CHECK(tg_json_escape(out, 4, "abcdef") == 3);
    CHECK_STR(out, "abc");
    CHECK(tg_json_escape(out, 6, "ab\ncd") == 2); /* \u000a does not fit */
    CHECK_STR(out, "ab");
    CHECK(tg_json_escape(out, 4, "aЯк") == 3); /* Я is 2 bytes, к would not fit */
    CHECK_STR(out, "aЯ");
}

static void test_utf8(void) {
    CHECK(tg_utf8_valid("Якутск, ҥ, €, 😀"));
    CHECK(!tg_utf8_valid("Як\xffутск"));
    CHECK(!tg_utf8_valid("\xd0")); /* cut short */
    char s[32] = "Якутск";         /* 12 bytes */
    tg_utf8_truncate(s, 5);        /* never half a letter */
    CHECK_STR(s, "Як");
    tg_utf8_truncate(s, 100);
    CHECK_STR(s, "Як");
}

int main(void) {
    test_city_rule();
    test_json();
    test_utf8();
    TG_TEST_END();
}
