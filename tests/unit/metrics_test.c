/* Prometheus rendering: one HELP/TYPE per name, labels kept, histogram
 * buckets cumulative with _sum and _count. */
#include <string.h>

#include "tg/metrics.h"
#include "tg_test.h"

static int count_of(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle)) {
        n++;
    }
    return n;
}

int main(void) {
    tg_metric_add("tg_steps_total", "Steps run", "worker=\"a\",status=\"success\"", 1);
    tg_metric_add("tg_steps_total", "Steps run", "worker=\"a\",status=\"success\"", 2);
    tg_metric_add("tg_steps_total", "Steps run", "worker=\"a\",status=\"failed\"", 1);
    tg_metric_set("tg_up", "Up", "", 1);
    tg_metric_set("tg_up", "Up", "", 0.5);
    tg_metric_observe("tg_step_seconds", "Step time", "worker=\"a\"", 0.003);
    tg_metric_observe("tg_step_seconds", "Step time", "worker=\"a\"", 0.2);
    tg_metric_observe("tg_step_seconds", "Step time", "worker=\"a\"", 1000);

    tg_buf_t b;
    tg_buf_init(&b);
    CHECK(tg_metrics_render(&b) == TG_OK);
    const char *t = b.data;
    CHECK(t != NULL);
    if (!t) {
        TG_TEST_END();
    }
    CHECK(count_of(t, "# TYPE tg_steps_total counter\n") == 1);
    CHECK(count_of(t, "# HELP tg_steps_total Steps run\n") == 1);
    CHECK(strstr(t, "tg_steps_total{worker=\"a\",status=\"success\"} 3\n") != NULL);
    CHECK(strstr(t, "tg_steps_total{worker=\"a\",status=\"failed\"} 1\n") != NULL);
    CHECK(strstr(t, "# TYPE tg_up gauge\ntg_up 0.5\n") != NULL);
    CHECK(strstr(t, "# TYPE tg_step_seconds histogram\n") != NULL);
    CHECK(strstr(t, "tg_step_seconds_bucket{worker=\"a\",le=\"0.005\"} 1\n") != NULL);
    CHECK(strstr(t, "tg_step_seconds_bucket{worker=\"a\",le=\"0.1\"} 1\n") != NULL);
    CHECK(strstr(t, "tg_step_seconds_bucket{worker=\"a\",le=\"0.25\"} 2\n") != NULL);
    CHECK(strstr(t, "tg_step_seconds_bucket{worker=\"a\",le=\"600\"} 2\n") != NULL);
    CHECK(strstr(t, "tg_step_seconds_bucket{worker=\"a\",le=\"+Inf\"} 3\n") != NULL);
    CHECK(strstr(t, "tg_step_seconds_sum{worker=\"a\"} 1000.203\n") != NULL);
    CHECK(strstr(t, "tg_step_seconds_count{worker=\"a\"} 3\n") != NULL);
    CHECK(count_of(t, "_bucket{") == 17);
    tg_buf_free(&b);

    /* A full table drops new series instead of growing without bound: what
     * a scrape shows stays within TG_METRICS_MAX_SERIES, the series already
     * there keep counting, and the newest are the ones left out. */
    char labels[32];
    for (int i = 0; i < TG_METRICS_MAX_SERIES + 50; i++) {
        snprintf(labels, sizeof labels, "i=\"%d\"", i);
        tg_metric_add("tg_many_total", "Many", labels, 1);
    }
    tg_metric_add("tg_steps_total", "Steps run", "worker=\"a\",status=\"success\"", 1);
    tg_buf_init(&b);
    CHECK(tg_metrics_render(&b) == TG_OK);
    int many = count_of(b.data, "tg_many_total{");
    CHECK(many > 0 && many < TG_METRICS_MAX_SERIES);
    CHECK(strstr(b.data, "tg_many_total{i=\"0\"} 1\n") != NULL);
    snprintf(labels, sizeof labels, "{i=\"%d\"}", TG_METRICS_MAX_SERIES + 49);
    CHECK(strstr(b.data, labels) == NULL);
    CHECK(strstr(b.data, "tg_steps_total{worker=\"a\",status=\"success\"} 4\n") != NULL);
    tg_buf_free(&b);

    /* A removed series (a partition gone to another consumer) is not shown. */
    tg_metric_remove("tg_many_total", "i=\"7\"");
    tg_buf_init(&b);
    CHECK(tg_metrics_render(&b) == TG_OK);
    CHECK(strstr(b.data, "tg_many_total{i=\"7\"}") == NULL);
    CHECK(strstr(b.data, "tg_many_total{i=\"8\"} 1\n") != NULL);
    tg_buf_free(&b);
    TG_TEST_END();
}
