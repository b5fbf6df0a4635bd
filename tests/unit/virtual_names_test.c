/* Transliteration of city keys into the ids of virtual entities (the city
 * rule itself is tested in text_test.c). */
#include "tg/text.h"
#include "tg_test.h"
#include "virtual.h"

static const char *slug(const char *in) {
    static char n[VIRTUAL_NAME_MAX], out[VIRTUAL_NAME_MAX];
    if (tg_city_key(in, n, sizeof(n)) || virtual_translit(n, out, sizeof(out))) {
        return "(invalid)";
    }
    return out;
}

static void test_translit(void) {
    CHECK_STR(slug("Якутск"), "yakutsk");
    CHECK_STR(slug("г. Нижний Бестях"), "nizhniy-bestyakh");
    CHECK_STR(slug("Ытык-Кюёль"), "ytyk-kyuel");
    CHECK_STR(slug("Усть-Мая"), "ust-maya");
    CHECK_STR(slug("Хандыга"), "khandyga");
    CHECK_STR(slug("Черский"), "cherskiy");
    CHECK_STR(slug("Щучье"), "shchuche");
    CHECK_STR(slug("Подъезд"), "podezd");
    CHECK_STR(slug("Эльдикан"), "eldikan");
    CHECK_STR(slug("Жиганск"), "zhigansk");
    CHECK_STR(slug("Цюрих"), "tsyurikh");
    CHECK_STR(slug("Оленёк"), "olenek");
    CHECK_STR(slug("Ҥүөһҕ"), "nguohgh");
    CHECK_STR(slug("Посёлок № 5"), "poselok-5"); /* unknown signs are word breaks */
    CHECK_STR(slug("Ъ"), "(invalid)");
    char small[5];
    CHECK(virtual_translit("якутск", small, sizeof(small)) != 0);
}

int main(void) {
    test_translit();
    TG_TEST_END();
}
