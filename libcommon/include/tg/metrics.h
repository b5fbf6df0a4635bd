/* Layer 1 (process support).
 * Process-wide Prometheus metrics: counters, gauges and histograms, with an
 * optional label string such as worker="graph-builder". Thread-safe. */
#ifndef TG_METRICS_H
#define TG_METRICS_H

#include "tg/buf.h"

/* Series kept at most; a new one past this is dropped with one warning. */
#define TG_METRICS_MAX_SERIES 1024

/* name and help must be static strings; labels is copied ("" for none). */
void tg_metric_add(const char *name, const char *help, const char *labels, double v);
void tg_metric_set(const char *name, const char *help, const char *labels, double v);
/* Histogram in seconds with fixed buckets from 5 ms to 10 minutes. */
void tg_metric_observe(const char *name, const char *help, const char *labels, double seconds);

/* Removes a series (a partition this process no longer consumes). */
void tg_metric_remove(const char *name, const char *labels);

/* Appends every metric in the Prometheus text format. */
int tg_metrics_render(tg_buf_t *out);

#endif
