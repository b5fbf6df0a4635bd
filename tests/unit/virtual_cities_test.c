/* The cities directory parser: RFC 4180 quoting, validation, and error
 * messages that name the line. */
#include "tg_test.h"
#include "virtual.h"
#include <string.h>

#define HEADER "name,district,latitude,longitude,population\n"

static int parse(const char *text, virtual_cities_t *c, char *err, size_t errlen) {
    return virtual_cities_parse("cities.csv", text, strlen(text), c, err, errlen);
}

static void test_good(void) {
    virtual_cities_t c;
    char err[512] = "";
    const char *csv =
        "\xEF\xBB\xBF" HEADER "Якутск,городской округ Якутск,62.0272,129.7319,355400\r\n"
        "\"Усть-Мая\",\"Усть-Майский улус, \"\"центр\"\"\",60.4167,134.5333,\r\n"
        "\n"
        "\"Нижний\nБестях\",,61.9611,129.9111,4000";
    CHECK(parse(csv, &c, err, sizeof(err)) == 0);
    CHECK(c.count == 3);
    if (c.count == 3) {
        CHECK_STR(c.items[0].name, "Якутск");
        CHECK_STR(c.items[0].slug, "yakutsk");
        CHECK(c.items[0].population == 355400);
        CHECK(c.items[0].latitude > 62.02 && c.items[0].latitude < 62.03);
        CHECK_STR(c.items[1].district, "Усть-Майский улус, \"центр\"");
        CHECK(c.items[1].population == -1);
        CHECK_STR(c.items[1].normalized, "усть мая");
        CHECK_STR(c.items[2].slug, "nizhniy-bestyakh");
    }
    virtual_cities_free(&c);
}

static void expect_error(const char *csv, const char *fragment) {
    virtual_cities_t c;
    char err[512] = "";
    CHECK(parse(csv, &c, err, sizeof(err)) == TG_ERR_INVALID);
    if (!strstr(err, fragment)) {
        fprintf(stderr, "error \"%s\" lacks \"%s\"\n", err, fragment);
    }
    CHECK(strstr(err, fragment) != NULL);
}

static void test_errors(void) {
    expect_error("city,lat\nЯкутск,62\n", "line 1: the header");
    expect_error(HEADER "Якутск,,62.0,129.7,1\nАмга,,north,131.9,\n", "line 3: latitude \"north\"");
    expect_error(HEADER "Амга,,60.9,231.9,\n", "line 2: longitude");
    expect_error(HEADER "Амга,,60.9,131.9\n", "line 2: expected 5 fields, found 4");
    expect_error(HEADER "Амга,,60.9,131.9,много\n", "line 2: population");
    expect_error(HEADER "\"Амга,,60.9,131.9,\n", "line 2: malformed CSV");
    expect_error(HEADER "Олёкминск,,60.3,120.4,\nг. Олекминск,,60.3,120.4,\n",
                 "line 3: city \"г. Олекминск\" appears twice");
    expect_error(HEADER ",,60.3,120.4,\n", "line 2: name");
    expect_error(HEADER, "no cities");
}

static void test_real_directory(void) {
    virtual_cities_t c;
    char err[512] = "";
    CHECK(virtual_cities_read(TG_SOURCE_DIR "/deploy/sample-data/cities.csv", &c, err,
                              sizeof(err)) == 0);
    if (err[0]) {
        fprintf(stderr, "%s\n", err);
    }
    CHECK(c.count >= 40);
    int hub = 0;
    for (size_t i = 0; i < c.count; i++) {
        hub += !strcmp(c.items[i].slug, "yakutsk");
    }
    CHECK(hub == 1);
    virtual_cities_free(&c);
    CHECK(virtual_cities_read("/nonexistent/cities.csv", &c, err, sizeof(err)) == TG_ERR_IO);
    CHECK(strstr(err, "CITIES_FILE: /nonexistent/cities.csv") != NULL);
}

int main(void) {
    test_good();
    test_errors();
    test_real_directory();
    TG_TEST_END();
}
