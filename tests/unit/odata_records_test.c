/* odata-sync-worker records: date-times (ISO 8601 with and without offset,
 * /Date(ms±hhmm)/), numbers that arrive as strings, and a canonical hash
 * that does not change when the source reorders records or adds
 * annotations, but does change when a value changes. */
#include "mapping.h"
#include "records.h"
#include "tg_test.h"
#include "validate.h"
#include <stdlib.h>
#include <string.h>

static int64_t dt(const char *s, int local) {
    int64_t ms = -1;
    return odata_parse_datetime(s, local, &ms) == 0 ? ms : -1;
}

static void test_datetimes(void) {
    /* 2026-12-01T08:20:00+09:00 == 2026-11-30T23:20:00Z == 1796080800000 ms */
    int64_t want = 1796080800000LL;
    CHECK(dt("2026-12-01T08:20:00+09:00", 0) == want);
    CHECK(dt("2026-12-01T08:20:00+0900", 0) == want);
    CHECK(dt("2026-11-30T23:20:00Z", 0) == want);
    CHECK(dt("2026-11-30T23:20:00.000Z", 0) == want);
    CHECK(dt("2026-11-30T23:20:00.5Z", 0) == want + 500);
    CHECK(dt("2026-11-30T23:20:00", 0) == want);   /* no offset: UTC by default */
    CHECK(dt("2026-12-01T08:20:00", 540) == want); /* ... or the mapping's offset */
    CHECK(dt("2026-11-30T23:20Z", 0) == want);
    CHECK(dt("/Date(1796080800000)/", 0) == want);
    CHECK(dt("/Date(1796080800000+0900)/", 0) == want); /* ms are UTC; offset informative */
    CHECK(dt("/Date(-86400000)/", 0) == -86400000LL);
    CHECK(dt("2026-02-30T00:00:00Z", 0) == -1);
    CHECK(dt("2026-12-01T25:00:00Z", 0) == -1);
    CHECK(dt("2026-12-01T08:20:00+09:00junk", 0) == -1);
    CHECK(dt("yesterday", 0) == -1);
    CHECK(dt("/Date(abc)/", 0) == -1);
    CHECK(dt("", 0) == -1);
    /* What is stored and hashed: the instant in UTC, with milliseconds. */
    cJSON *item = cJSON_CreateString("2026-12-01T08:20:00+09:00");
    odata_value_t v;
    char why[128];
    CHECK(odata_value_convert(item, ODATA_DATETIME, 0, &v, why, sizeof(why)) == TG_OK);
    CHECK_STR(v.text, "2026-11-30T23:20:00.000Z");
    free(v.text);
    cJSON_Delete(item);
}

static double num(const char *json) {
    cJSON *item = cJSON_Parse(json);
    double v = -12345;
    if (odata_parse_number(item, &v)) {
        v = -12345;
    }
    cJSON_Delete(item);
    return v;
}

static void test_numbers(void) {
    CHECK(num("62.0933") == 62.0933);
    CHECK(num("\"62.0933\"") == 62.0933);      /* Edm.Decimal as a string */
    CHECK(num("\"9007199254740993\"") > 9e15); /* Edm.Int64 as a string */
    CHECK(num("\"-1.5e2\"") == -150);
    CHECK(num("\"abc\"") == -12345);
    CHECK(num("\"0x10\"") == -12345);
    CHECK(num("\"nan\"") == -12345);
    CHECK(num("\"1e400\"") == -12345); /* not finite */
    CHECK(num("\"\"") == -12345);
    CHECK(num("true") == -12345);
    char out[32];
    odata_format_number(812.2, out);
    CHECK_STR(out, "812.2");
    odata_format_number(14700.0, out);
    CHECK_STR(out, "14700");
    odata_format_number(0.1 + 0.2, out);
    CHECK(strtod(out, NULL) == 0.1 + 0.2);
}

static void test_convert(void) {
    odata_value_t v;
    char why[120];
    cJSON *item = cJSON_Parse("\"125\"");
    CHECK(odata_value_convert(item, ODATA_INTEGER, 0, &v, why, sizeof(why)) == 0);
    CHECK_STR(v.text, "125");
    free(v.text);
    cJSON_Delete(item);
    item = cJSON_Parse("12.5");
    CHECK(odata_value_convert(item, ODATA_INTEGER, 0, &v, why, sizeof(why)) == TG_ERR_INVALID &&
          v.bad);
    cJSON_Delete(item);
    item = cJSON_Parse("12345");
    CHECK(odata_value_convert(item, ODATA_STRING, 0, &v, why, sizeof(why)) == 0);
    CHECK_STR(v.text, "12345"); /* numeric keys keep their text */
    free(v.text);
    cJSON_Delete(item);
    item = cJSON_Parse("null");
    CHECK(odata_value_convert(item, ODATA_NUMBER, 0, &v, why, sizeof(why)) == 0 && !v.text);
    cJSON_Delete(item);
    item = cJSON_CreateString("\xff\xfe");
    CHECK(odata_value_convert(item, ODATA_STRING, 0, &v, why, sizeof(why)) == TG_ERR_INVALID);
    CHECK(strstr(why, "UTF-8") != NULL);
    cJSON_Delete(item);
}

/* Maps a JSON array of stop entities through the default mapping and
 * returns the canonical hash. */
static void hash_of(const char *stops_json, char hash[65]) {
    odata_mapping_t m;
    char err[200];
    odata_dataset_t ds;
    odata_report_t rep;
    tg_buf_t canon;
    memset(&ds, 0, sizeof(ds));
    memset(&rep, 0, sizeof(rep));
    tg_buf_init(&canon);
    if (odata_mapping_load(NULL, &m, err, sizeof(err))) {
        fprintf(stderr, "%s\n", err);
        hash[0] = 0;
        return;
    }
    cJSON *rows = cJSON_Parse(stops_json), *row;
    long i = 0;
    cJSON_ArrayForEach(row, rows) {
        CHECK(odata_map_row(&m, ODATA_STOPS, row, i++, &ds, &rep) == 0);
    }
    CHECK(odata_canonical(&ds, &canon, hash) == 0);
    cJSON_Delete(rows);
    tg_buf_free(&canon);
    odata_dataset_free(&ds);
    odata_mapping_free(&m);
}

static void test_canonical_hash(void) {
    char a[65], b[65], c[65], d[65], e[65];
    hash_of("[{\"Id\":\"s1\",\"Name\":\"A\",\"Latitude\":62.1,\"Longitude\":129.7},"
            "{\"Id\":\"s2\",\"Name\":\"B\",\"CityName\":\"Якутск\",\"Latitude\":\"61.5\"}]",
            a);
    /* Other order, v2 annotations, numbers as strings, explicit nulls. */
    hash_of("[{\"__metadata\":{\"uri\":\"x\"},\"Id\":\"s2\",\"Latitude\":61.5,\"Name\":\"B\","
            "\"CityName\":\"Якутск\",\"Longitude\":null},"
            "{\"Longitude\":\"129.70\",\"Latitude\":62.1,\"Name\":\"A\",\"Id\":\"s1\","
            "\"@odata.etag\":\"W/1\"}]",
            b);
    hash_of("[{\"Id\":\"s1\",\"Name\":\"A\",\"Latitude\":62.1,\"Longitude\":129.7},"
            "{\"Id\":\"s2\",\"Name\":\"B!\",\"CityName\":\"Якутск\",\"Latitude\":61.5}]",
            c);
    /* A value that does not convert must not hash like a null. */
    hash_of("[{\"Id\":\"s1\",\"Name\":\"A\",\"Latitude\":62.1,\"Longitude\":129.7},"
            "{\"Id\":\"s2\",\"Name\":\"B\",\"CityName\":\"Якутск\",\"Latitude\":\"61.5\","
            "\"Longitude\":\"east\"}]",
            d);
    hash_of("[]", e);
    CHECK(strlen(a) == 64);
    CHECK_STR(a, b);
    CHECK(strcmp(a, c) != 0);
    CHECK(strcmp(a, d) != 0);
    CHECK(strcmp(a, e) != 0);
}

int main(void) {
    test_datetimes();
    test_numbers();
    test_convert();
    test_canonical_hash();
    TG_TEST_END();
}
