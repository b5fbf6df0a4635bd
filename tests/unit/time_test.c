/* libcommon time, geo and files: what the services write (ISO 8601 times,
 * dates of the horizon), read (UTC calendar fields) and compute (distances). */
#include "tg/files.h"
#include "tg/geo.h"
#include "tg/time.h"
#include "tg_test.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void test_iso(void) {
    char out[32];
    tg_time_iso(1796080800000LL, out);
    CHECK_STR(out, "2026-11-30T23:20:00.000Z");
    tg_time_iso(1796080800123LL, out);
    CHECK_STR(out, "2026-11-30T23:20:00.123Z");
    tg_time_iso(-1, out); /* before the epoch: the millisecond before it */
    CHECK_STR(out, "1969-12-31T23:59:59.999Z");
    tg_time_iso(-62135596800000LL, out); /* year 1, as odata-sync-worker accepts */
    CHECK_STR(out, "0001-01-01T00:00:00.000Z");
    tg_now_iso(out);
    CHECK(strlen(out) == 24 && out[10] == 'T' && out[23] == 'Z');
    CHECK(tg_now_ms() > 1700000000000LL);
    int64_t a = tg_mono_ms(), b = tg_mono_ms();
    CHECK(b >= a);
}

static void test_calendar(void) {
    int64_t s = -1;
    CHECK(tg_time_from_utc(1970, 1, 1, 0, 0, 0, &s) == TG_OK && s == 0);
    CHECK(tg_time_from_utc(2026, 11, 30, 23, 20, 0, &s) == TG_OK && s == 1796080800LL);
    CHECK(tg_time_from_utc(2028, 2, 29, 0, 0, 0, &s) == TG_OK); /* leap year */
    CHECK(tg_time_from_utc(2026, 2, 29, 0, 0, 0, &s) == TG_ERR_INVALID);
    CHECK(tg_time_from_utc(2026, 2, 30, 0, 0, 0, &s) == TG_ERR_INVALID);
    CHECK(tg_time_from_utc(2026, 13, 1, 0, 0, 0, &s) == TG_ERR_INVALID);
    CHECK(tg_time_from_utc(2026, 12, 1, 24, 0, 0, &s) == TG_ERR_INVALID);
    char day[16];
    CHECK(tg_time_format(20786LL * 86400, "%Y-%m-%d", day, sizeof(day)) == 10);
    CHECK_STR(day, "2026-11-29");
    CHECK(tg_time_format(0, "%Y-%m-%d", day, 4) == 0); /* does not fit */
    CHECK_STR(day, "");
}

static void test_geo(void) {
    CHECK(fabs(tg_geo_distance_km(0, 0, 0, 1) - 111.195) < 0.001); /* one degree */
    CHECK(tg_geo_distance_km(62, 129, 62, 129) == 0);
    double d = tg_geo_distance_km(62.0272, 129.7319, 56.66, 124.72); /* Якутск – Нерюнгри */
    CHECK(fabs(d - tg_geo_distance_km(56.66, 124.72, 62.0272, 129.7319)) < 1e-9);
    CHECK(fabs(d - 660.5) < 1);
    CHECK(fabs(tg_geo_distance_km(0, 0, 0, 180) - M_PI * TG_EARTH_RADIUS_KM) < 1e-6);
    CHECK(isnan(tg_geo_distance_km(NAN, 0, 0, 0)));
}

static void test_files(void) {
    char path[] = "/tmp/tg_files_test_XXXXXX", err[256], *text;
    size_t len = 0;
    int fd = mkstemp(path);
    CHECK(fd >= 0 && write(fd, "name\nЯкутск\n", 18) == 18);
    close(fd);
    CHECK(tg_file_read(path, 0, &text, &len, err, sizeof(err)) == TG_OK);
    CHECK(text && len == 18 && !strcmp(text, "name\nЯкутск\n"));
    free(text);
    CHECK(tg_file_read(path, 10, &text, NULL, err, sizeof(err)) == TG_ERR_INVALID && !text);
    CHECK(strstr(err, path) && strstr(err, "larger than 10 bytes"));
    unlink(path);
    CHECK(tg_file_read(path, 0, &text, NULL, err, sizeof(err)) == TG_ERR_IO && !text);
    CHECK(strstr(err, "No such file"));
}

int main(void) {
    test_iso();
    test_calendar();
    test_geo();
    test_files();
    TG_TEST_END();
}
