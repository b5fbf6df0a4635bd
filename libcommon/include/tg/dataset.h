/* Layer 3 (service).
 * What the pipeline owes a dataset version besides its own data: virtual
 * entities, virtual flights over the rolling horizon, and a graph built from
 * both. odata-sync-worker asks it when the data is unchanged, so a run with
 * nothing new still tops up the horizon and heals what an earlier run left
 * undone; virtual-entities-generator and graph-builder act on the answer.
 * Dates are local dates of the service area (Asia/Yakutsk). */
#ifndef TG_DATASET_H
#define TG_DATASET_H

#include "tg/error.h"
#include <libpq-fe.h>
#include <stdint.h>

/* Bytes of a stop, route or flight id at most: odata-sync-worker refuses a
 * dataset with a longer one, so the ids built from them (virtual routes,
 * Redis keys) always fit. */
#define TG_ENTITY_ID_MAX 255

/* Asia/Yakutsk: UTC+9 all year since 2014 (no daylight saving). */
#define TG_LOCAL_UTC_OFFSET_S (9 * 3600)

/* The local date at now_ms (epoch milliseconds) as days since 1970-01-01. */
int64_t tg_local_day(int64_t now_ms);

/* Formats days since 1970-01-01 as "YYYY-MM-DD" (out: at least 11 bytes). */
void tg_day_format(int64_t day, char *out, size_t outlen);

/* What a dataset version still needs, in pipeline order. */
typedef enum {
    TG_REFRESH_NONE = 0,
    TG_REFRESH_VIRTUAL_MISSING, /* no virtual entities (worker 2 gave up on it) */
    TG_REFRESH_VIRTUAL_HORIZON, /* virtual flights start before today: the horizon moved */
    TG_REFRESH_GRAPH,           /* no active graph built from its current virtual data */
} tg_refresh_t;

/* The payload value of a refresh ("virtual-missing", "virtual-horizon",
 * "graph"), NULL for TG_REFRESH_NONE. */
const char *tg_refresh_name(tg_refresh_t r);

/* The refresh named by s, TG_REFRESH_NONE for NULL or an unknown name. */
tg_refresh_t tg_refresh_parse(const char *s);

/* The first thing dataset_version needs at now_ms. TG_ERR_NOTFOUND when
 * the dataset does not exist. */
int tg_refresh_due(PGconn *pg, int64_t dataset_version, int64_t now_ms, tg_refresh_t *out,
                   char *errstr, size_t errlen) TG_WARN_UNUSED;

#endif
