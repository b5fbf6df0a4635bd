/* Prometheus metrics: a fixed table of series behind one mutex, rendered in
 * the text exposition format (version 0.0.4) for GET /metrics. */
#include "tg/metrics.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg/log.h"

#define MAX_SERIES TG_METRICS_MAX_SERIES
#define LABELS_LEN 256

enum { KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM };

static const double bucket_le[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                   2.5,   5,    10,    30,   60,  120,  300, 600};
#define NBUCKETS (sizeof bucket_le / sizeof bucket_le[0])

typedef struct {
    const char *name;
    const char *help;
    char labels[LABELS_LEN];
    int kind;
    double value; /* counter/gauge value, histogram sum */
    uint64_t count;
    uint64_t buckets[NBUCKETS]; /* per bucket, not cumulative */
} series_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static series_t table[MAX_SERIES];
static size_t nseries;
static int overflow_logged;

/* Finds or adds a series; NULL when the table is full (caller holds lock). */
static series_t *series_get(const char *name, const char *help, const char *labels, int kind) {
    if (!labels) {
        labels = "";
    }
    for (size_t i = 0; i < nseries; i++) {
        if (strcmp(table[i].name, name) == 0 && strcmp(table[i].labels, labels) == 0) {
            return &table[i];
        }
    }
    if (nseries == MAX_SERIES || strlen(labels) >= LABELS_LEN) {
        return NULL;
    }
    series_t *s = &table[nseries++];
    memset(s, 0, sizeof *s);
    s->name = name;
    s->help = help ? help : "";
    s->kind = kind;
    memcpy(s->labels, labels, strlen(labels) + 1);
    return s;
}

static void update(const char *name, const char *help, const char *labels, int kind, double v) {
    int dropped = 0;
    pthread_mutex_lock(&lock);
    series_t *s = series_get(name, help, labels, kind);
    if (!s || s->kind != kind) {
        dropped = !overflow_logged;
        overflow_logged = 1;
    } else if (kind == KIND_COUNTER) {
        s->value += v;
    } else if (kind == KIND_GAUGE) {
        s->value = v;
    } else {
        size_t b = 0;
        while (b < NBUCKETS && v > bucket_le[b]) {
            b++;
        }
        if (b < NBUCKETS) {
            s->buckets[b]++;
        }
        s->value += v;
        s->count++;
    }
    pthread_mutex_unlock(&lock);
    if (dropped) {
        tg_warn("metrics: dropped series %s{%s}: table full or kind mismatch", name,
                labels ? labels : "");
    }
}

void tg_metric_add(const char *name, const char *help, const char *labels, double v) {
    update(name, help, labels, KIND_COUNTER, v);
}

void tg_metric_set(const char *name, const char *help, const char *labels, double v) {
    update(name, help, labels, KIND_GAUGE, v);
}

void tg_metric_observe(const char *name, const char *help, const char *labels, double seconds) {
    update(name, help, labels, KIND_HISTOGRAM, seconds);
}

void tg_metric_remove(const char *name, const char *labels) {
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < nseries; i++) {
        if (strcmp(table[i].name, name) == 0 &&
            strcmp(table[i].labels, labels ? labels : "") == 0) {
            /* Keep the order: series of one name are rendered together. */
            memmove(&table[i], &table[i + 1], (nseries - i - 1) * sizeof table[0]);
            nseries--;
            break;
        }
    }
    pthread_mutex_unlock(&lock);
}

/* Shortest decimal that reads back as v. */
static const char *fmt_num(double v, char *out, size_t len) {
    snprintf(out, len, "%.15g", v);
    if (strtod(out, NULL) != v) {
        snprintf(out, len, "%.17g", v);
    }
    return out;
}

static int render_histogram(tg_buf_t *out, const series_t *s) {
    char num[32];
    const char *sep = s->labels[0] ? "," : "";
    uint64_t cumulative = 0;
    int rc = TG_OK;
    for (size_t b = 0; b < NBUCKETS && rc == TG_OK; b++) {
        cumulative += s->buckets[b];
        rc = tg_buf_appendf(out, "%s_bucket{%s%sle=\"%s\"} %llu\n", s->name, s->labels, sep,
                            fmt_num(bucket_le[b], num, sizeof num), (unsigned long long)cumulative);
    }
    if (rc == TG_OK) {
        rc = tg_buf_appendf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", s->name, s->labels, sep,
                            (unsigned long long)s->count);
    }
    const char *open = s->labels[0] ? "{" : "", *close = s->labels[0] ? "}" : "";
    if (rc == TG_OK) {
        rc = tg_buf_appendf(out, "%s_sum%s%s%s %s\n", s->name, open, s->labels, close,
                            fmt_num(s->value, num, sizeof num));
    }
    if (rc == TG_OK) {
        rc = tg_buf_appendf(out, "%s_count%s%s%s %llu\n", s->name, open, s->labels, close,
                            (unsigned long long)s->count);
    }
    return rc;
}

static int render_series(tg_buf_t *out, const series_t *s) {
    char num[32];
    if (s->kind == KIND_HISTOGRAM) {
        return render_histogram(out, s);
    }
    if (s->labels[0]) {
        return tg_buf_appendf(out, "%s{%s} %s\n", s->name, s->labels,
                              fmt_num(s->value, num, sizeof num));
    }
    return tg_buf_appendf(out, "%s %s\n", s->name, fmt_num(s->value, num, sizeof num));
}

static const char *kind_name(int kind) {
    return kind == KIND_COUNTER ? "counter" : kind == KIND_GAUGE ? "gauge" : "histogram";
}

int tg_metrics_render(tg_buf_t *out) {
    int rc = TG_OK;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < nseries && rc == TG_OK; i++) {
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++) {
            seen = strcmp(table[j].name, table[i].name) == 0;
        }
        if (seen) {
            continue; /* rendered with the first series of its name */
        }
        rc = tg_buf_appendf(out, "# HELP %s %s\n# TYPE %s %s\n", table[i].name, table[i].help,
                            table[i].name, kind_name(table[i].kind));
        for (size_t k = i; k < nseries && rc == TG_OK; k++) {
            if (strcmp(table[k].name, table[i].name) == 0) {
                rc = render_series(out, &table[k]);
            }
        }
    }
    pthread_mutex_unlock(&lock);
    return rc;
}
