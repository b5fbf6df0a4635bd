/* Backoff arithmetic and an interruptible sleep. */
#include "tg/backoff.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t tg_backoff_ms(int attempt, int64_t base_ms, int64_t max_ms, int jitter_pct,
                      unsigned *seed) {
    if (attempt < 1) {
        attempt = 1;
    }
    int64_t d = base_ms;
    for (int i = 1; i < attempt && d < max_ms; i++) {
        d *= 2;
    }
    if (d > max_ms) {
        d = max_ms;
    }
    if (jitter_pct > 0 && seed) {
        int64_t span = d * jitter_pct / 100;
        if (span > 0) {
            d += (int64_t)(rand_r(seed) % (2 * span + 1)) - span;
        }
    }
    return d < 0 ? 0 : d;
}

int tg_delay_schedule_parse(const char *s, int64_t *out_ms, int max) {
    int n = 0;
    const char *p = s;
    if (!s || !*s) {
        return -1;
    }
    while (*p) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || v < 0 || v > 7 * 24 * 3600 || n >= max) {
            return -1;
        }
        out_ms[n++] = (int64_t)(v * 1000.0);
        p = end;
        if (*p == ',') {
            p++;
        } else if (*p) {
            return -1;
        }
    }
    return n;
}

void tg_sleep_ms(int64_t ms, volatile int *stop) {
    while (ms > 0 && !(stop && *stop)) {
        int64_t step = ms > 100 ? 100 : ms;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)step * 1000000L};
        nanosleep(&ts, NULL);
        ms -= step;
    }
}
