/* Retention: what the system deletes and what it keeps (docs/operations.md,
 * "What the system keeps"). Old dataset versions (their partitions, rows and
 * graphs rows), finished runs past their age and S3 backups past the newest
 * few; never anything the active graph or a graph kept for rollback needs.
 * The rules are pure functions (unit-tested); retention_tick applies them. */
#ifndef ORCH_RETENTION_H
#define ORCH_RETENTION_H

#include "tg/config.h"
#include "tg/error.h"
#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

typedef struct {
    long dataset_keep;    /* DATASET_KEEP_VERSIONS: newest versions kept per source */
    long graph_keep;      /* GRAPH_KEEP_VERSIONS: graphs kept for rollback (as graph-builder) */
    long backup_keep;     /* BACKUP_KEEP: newest backups kept per kind */
    long run_days;        /* RUN_RETENTION_DAYS: finished runs older than this go */
    long interval_s;      /* RETENTION_INTERVAL_S: between passes, 0 = off */
    long lock_timeout_ms; /* RETENTION_LOCK_TIMEOUT_MS: longest wait for any lock */
} retention_conf_t;

/* Reads the settings above (defaults 3, 3, DATASET_KEEP_VERSIONS, 30, 3600,
 * 500). Returns TG_ERR_CONFIG with errstr naming the variable. */
int retention_conf_load(retention_conf_t *conf, char *errstr, size_t errlen) TG_WARN_UNUSED;

/* ---- the rules (pure) ----------------------------------------------------- */

typedef struct {
    int64_t version;
    const char *source; /* datasets.source_id */
    int needed;         /* an active, kept, building or pending graph or an active run uses it */
} retention_dataset_t;

/* Marks in drop[i] (1 = delete) the datasets that are neither needed nor
 * among the keep newest versions of their source. ds may come in any order.
 * Returns how many are marked. */
size_t retention_datasets_plan(const retention_dataset_t *ds, size_t n, long keep, int *drop);

typedef struct {
    const char *key; /* datasets/<source>/v<version>-<hash>.json.gz or graphs/graph-v<ms>.json.gz */
    int protected_;  /* the backup of a kept dataset or graph */
} retention_backup_t;

/* The kind of a backup key (everything up to its last '/') and its order
 * (the first number of its file name: a dataset version or a graph's epoch
 * milliseconds). Returns 0 when the key does not follow either layout. */
int retention_backup_order(const char *key, size_t *kind_len, int64_t *order);

/* Marks in drop[i] the backups beyond the keep newest of their kind, unless
 * protected; keys of an unknown layout are never marked. Returns how many. */
size_t retention_backups_plan(const retention_backup_t *b, size_t n, long keep, int *drop);

/* ---- the pass ------------------------------------------------------------------ */

/* Called on every turn of the orchestrator's loop: runs one pass every
 * RETENTION_INTERVAL_S of wall-clock time (the first one interval after
 * start, at most 5 minutes; *next is 0 before the first call and keeps the
 * time of the next pass). A pass uses pg (no transaction is left open) and,
 * when S3_ENDPOINT is set, the bucket of cfg. Failures are logged and
 * retried at the next pass. */
void retention_tick(PGconn *pg, const tg_config_t *cfg, const retention_conf_t *conf, time_t *next);

/* One pass now; returns 0 or the first error (the pass goes on after one). */
int retention_run(PGconn *pg, const tg_config_t *cfg, const retention_conf_t *conf, char *errstr,
                  size_t errlen);

#endif
