/* Clocks and UTC calendar conversions on libc (timegm, gmtime_r, strftime). */
#include "tg/time.h"

#include <stdio.h>
#include <time.h>

int64_t tg_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t tg_mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

size_t tg_time_format(int64_t secs, const char *fmt, char *out, size_t outlen) {
    time_t t = (time_t)secs;
    struct tm tm;
    size_t n = 0;
    if (outlen == 0) {
        return 0;
    }
    if (gmtime_r(&t, &tm)) {
        n = strftime(out, outlen, fmt, &tm);
    }
    if (n == 0) {
        out[0] = '\0';
    }
    return n;
}

void tg_time_iso(int64_t ms, char out[32]) {
    /* Floor division: -1 ms is 23:59:59.999 of the day before. */
    int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    size_t n = tg_time_format(secs, "%04Y-%m-%dT%H:%M:%S", out, 32); /* year 1 is "0001" */
    snprintf(out + n, 32 - n, ".%03dZ", (int)(ms - secs * 1000));
}

void tg_now_iso(char out[32]) {
    tg_time_iso(tg_now_ms(), out);
}

int tg_time_from_utc(int year, int month, int day, int hour, int min, int sec, int64_t *secs) {
    struct tm tm = {.tm_year = year - 1900,
                    .tm_mon = month - 1,
                    .tm_mday = day,
                    .tm_hour = hour,
                    .tm_min = min,
                    .tm_sec = sec};
    if (month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23 || min < 0 || min > 59 ||
        sec < 0 || sec > 59) {
        return TG_ERR_INVALID;
    }
    time_t t = timegm(&tm);
    /* timegm normalises February 30 into March 2: a changed day is out of range. */
    if (tm.tm_mday != day || tm.tm_mon != month - 1) {
        return TG_ERR_INVALID;
    }
    *secs = (int64_t)t;
    return TG_OK;
}
