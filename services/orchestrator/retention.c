/* Retention pass of the orchestrator: old dataset versions (one version per
 * transaction, its partitions dropped under NOWAIT locks), finished runs in
 * batches, and S3 backups past the newest few per kind. */
#include "retention.h"

#include "tg/log.h"
#include "tg/pg.h"
#include "tg/s3.h"
#include "tg/service.h"
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RUN_BATCH "1000"     /* runs deleted per statement */
#define DROP_ATTEMPTS 3      /* NOWAIT lock attempts per version and pass */
#define DROP_RETRY_US 100000 /* between them: the loop is paused meanwhile */
#define FIRST_PASS_MAX_S 300 /* a restart does not postpone retention for long */

int retention_conf_load(retention_conf_t *c, char *errstr, size_t errlen) {
    int rc = tg_env_long("DATASET_KEEP_VERSIONS", 3, 1, 10000, &c->dataset_keep, errstr, errlen);
    if (!rc) {
        rc = tg_env_long("GRAPH_KEEP_VERSIONS", 3, 1, 100, &c->graph_keep, errstr, errlen);
    }
    if (!rc) {
        rc = tg_env_long("BACKUP_KEEP", c->dataset_keep, 1, 10000, &c->backup_keep, errstr, errlen);
    }
    if (!rc) {
        rc = tg_env_long("RUN_RETENTION_DAYS", 30, 1, 36500, &c->run_days, errstr, errlen);
    }
    if (!rc) {
        rc =
            tg_env_long("RETENTION_INTERVAL_S", 3600, 0, 86400 * 7, &c->interval_s, errstr, errlen);
    }
    if (!rc) {
        rc = tg_env_long("RETENTION_LOCK_TIMEOUT_MS", 500, 1, 60000, &c->lock_timeout_ms, errstr,
                         errlen);
    }
    return rc;
}

/* ---- the rules ------------------------------------------------------------ */

size_t retention_datasets_plan(const retention_dataset_t *ds, size_t n, long keep, int *drop) {
    size_t marked = 0;
    for (size_t i = 0; i < n; i++) {
        long newer = 0;
        for (size_t j = 0; j < n; j++) {
            newer += !strcmp(ds[j].source, ds[i].source) && ds[j].version > ds[i].version;
        }
        drop[i] = !ds[i].needed && newer >= keep;
        marked += (size_t)drop[i];
    }
    return marked;
}

int retention_backup_order(const char *key, size_t *kind_len, int64_t *order) {
    const char *slash = strrchr(key, '/');
    if (!slash || (strncmp(key, "datasets/", 9) && strncmp(key, "graphs/", 7))) {
        return 0;
    }
    const char *p = slash + 1;
    while (*p && !isdigit((unsigned char)*p)) {
        p++;
    }
    if (!*p) {
        return 0;
    }
    *kind_len = (size_t)(slash - key);
    *order = strtoll(p, NULL, 10);
    return 1;
}

size_t retention_backups_plan(const retention_backup_t *b, size_t n, long keep, int *drop) {
    size_t marked = 0;
    for (size_t i = 0; i < n; i++) {
        size_t kl, kj;
        int64_t oi, oj;
        drop[i] = 0;
        if (b[i].protected_ || !retention_backup_order(b[i].key, &kl, &oi)) {
            continue;
        }
        long newer = 0;
        for (size_t j = 0; j < n; j++) {
            if (j != i && retention_backup_order(b[j].key, &kj, &oj) && kj == kl &&
                !memcmp(b[j].key, b[i].key, kl) &&
                (oj > oi || (oj == oi && strcmp(b[j].key, b[i].key) > 0))) {
                newer++;
            }
        }
        drop[i] = newer >= keep;
        marked += (size_t)drop[i];
    }
    return marked;
}

/* ---- dataset versions ------------------------------------------------------- */

/* Graphs kept for rollback are the newest GRAPH_KEEP_VERSIONS that were
 * active (graph-builder keeps the same ones in Redis); a graph building, or
 * with Redis keys still to clean up, and a run in progress need their
 * dataset too. */
static const char datasets_sql[] =
    "WITH kept AS (SELECT dataset_version FROM graphs WHERE status IN ('active', 'retired')"
    " ORDER BY status = 'active' DESC, activated_at DESC NULLS LAST, version DESC LIMIT $1),"
    " needed AS (SELECT dataset_version FROM kept"
    " UNION SELECT dataset_version FROM graphs WHERE status IN ('active', 'building')"
    " OR keys_pending"
    " UNION SELECT dataset_version FROM runs WHERE status IN ('queued', 'running')"
    " AND dataset_version IS NOT NULL)"
    " SELECT version, source_id, version IN (SELECT dataset_version FROM needed)"
    " FROM datasets ORDER BY version";

/* The datasets and what the rules say of each; *res owns the strings. */
static int datasets_load(PGconn *pg, const retention_conf_t *conf, PGresult **res,
                         retention_dataset_t **ds, int **drop, size_t *n, char *errstr,
                         size_t errlen) {
    char keep[24];
    snprintf(keep, sizeof(keep), "%ld", conf->graph_keep);
    const char *params[] = {keep};
    int rc = tg_pg_exec(pg, datasets_sql, 1, params, res, errstr, errlen);
    if (rc) {
        return rc;
    }
    *n = (size_t)PQntuples(*res);
    *ds = calloc(*n + 1, sizeof(**ds));
    *drop = calloc(*n + 1, sizeof(**drop));
    if (!*ds || !*drop) {
        free(*ds);
        free(*drop);
        PQclear(*res);
        return tg_fail(TG_ERR_NOMEM, errstr, errlen, "retention: out of memory");
    }
    for (size_t i = 0; i < *n; i++) {
        (*ds)[i].version = strtoll(PQgetvalue(*res, (int)i, 0), NULL, 10);
        (*ds)[i].source = PQgetvalue(*res, (int)i, 1);
        (*ds)[i].needed = PQgetvalue(*res, (int)i, 2)[0] == 't';
    }
    retention_datasets_plan(*ds, *n, conf->dataset_keep, *drop);
    return TG_OK;
}

/* 1: version v is still to be dropped, 0: no longer, negative: error. */
static int still_dropped(PGconn *pg, const retention_conf_t *conf, int64_t v, char *errstr,
                         size_t errlen) {
    PGresult *res;
    retention_dataset_t *ds;
    int *drop;
    size_t n;
    int rc = datasets_load(pg, conf, &res, &ds, &drop, &n, errstr, errlen);
    if (rc) {
        return rc;
    }
    int found = 0;
    for (size_t i = 0; i < n; i++) {
        found |= ds[i].version == v && drop[i];
    }
    free(ds);
    free(drop);
    PQclear(res);
    return found;
}

/* One version in one transaction: take the locks (NOWAIT), check the rules
 * again under them (a graph may have started to use it since), drop. */
static int drop_version(PGconn *pg, const retention_conf_t *conf, int64_t v, char *errstr,
                        size_t errlen) {
    char sql[96], ver[24];
    snprintf(sql, sizeof(sql), "SET LOCAL lock_timeout = %ld", conf->lock_timeout_ms);
    snprintf(ver, sizeof(ver), "%lld", (long long)v);
    const char *params[] = {ver};
    int rc = tg_pg_begin(pg, errstr, errlen);
    if (!rc) {
        rc = tg_pg_exec(pg, sql, 0, NULL, NULL, errstr, errlen);
    }
    if (!rc) {
        rc = tg_pg_exec(pg, "SELECT dataset_versions_lock()", 0, NULL, NULL, errstr, errlen);
    }
    int needed = rc ? rc : still_dropped(pg, conf, v, errstr, errlen);
    if (needed < 0) {
        rc = needed;
    }
    if (needed == 1) {
        rc = tg_pg_exec(pg, "SELECT dataset_version_drop($1)", 1, params, NULL, errstr, errlen);
    }
    if (!rc) {
        rc = tg_pg_commit(pg, errstr, errlen);
    }
    tg_pg_rollback(pg);
    if (!rc && needed == 1) {
        tg_info("Retention: dataset version %s deleted with its partitions and graphs rows", ver);
    }
    return rc;
}

static int prune_datasets(PGconn *pg, const retention_conf_t *conf, char *errstr, size_t errlen) {
    PGresult *res;
    retention_dataset_t *ds;
    int *drop;
    size_t n;
    int rc = datasets_load(pg, conf, &res, &ds, &drop, &n, errstr, errlen);
    if (rc) {
        return rc;
    }
    int first = TG_OK;
    for (size_t i = 0; i < n && !tg_shutdown_requested; i++) {
        if (!drop[i]) {
            continue;
        }
        for (int attempt = 0; attempt < DROP_ATTEMPTS; attempt++) {
            if (attempt) {
                usleep(DROP_RETRY_US);
            }
            if ((rc = drop_version(pg, conf, ds[i].version, errstr, errlen)) == TG_OK) {
                break;
            }
        }
        if (rc) {
            tg_warn("Retention: dataset version %lld kept for now (%s); tried again at the "
                    "next pass",
                    (long long)ds[i].version, errstr);
            first = first ? first : rc;
        }
    }
    free(ds);
    free(drop);
    PQclear(res);
    return first;
}

/* ---- graphs rows ------------------------------------------------------------- */

/* graphs rows of kept datasets: a dataset whose data never changes gets a
 * new graph every day (the horizon moves on), so its retired graphs beyond
 * the ones kept for rollback go, and failed builds once they are as old as
 * the runs kept. Never the active graph, one being built, or one whose
 * Redis keys are still to be cleaned up. */
static int prune_graphs(PGconn *pg, const retention_conf_t *conf, char *errstr, size_t errlen) {
    char keep[24], cutoff[24];
    PGresult *res;
    snprintf(keep, sizeof(keep), "%ld", conf->graph_keep);
    snprintf(cutoff, sizeof(cutoff), "%lld", (long long)time(NULL) - conf->run_days * 86400LL);
    const char *params[] = {keep, cutoff};
    int rc = tg_pg_exec(
        pg,
        "WITH kept AS (SELECT version FROM graphs WHERE status IN ('active', 'retired')"
        " ORDER BY status = 'active' DESC, activated_at DESC NULLS LAST, version DESC LIMIT $1)"
        " DELETE FROM graphs g WHERE NOT g.keys_pending AND g.version NOT IN (SELECT version "
        "FROM kept) AND (g.status = 'retired' OR (g.status = 'failed' AND g.created_at < "
        "to_timestamp($2::bigint)))",
        2, params, &res, errstr, errlen);
    if (rc) {
        return rc;
    }
    if (atoi(PQcmdTuples(res)) > 0) {
        tg_info("Retention: %s graphs rows deleted (retired beyond the %ld kept, or failed "
                "builds older than %ld days)",
                PQcmdTuples(res), conf->graph_keep, conf->run_days);
    }
    PQclear(res);
    return TG_OK;
}

/* ---- runs --------------------------------------------------------------------- */

/* Finished runs (their steps cascade) older than the cutoff, a batch per
 * statement so no statement holds many row locks for long; the cutoff is
 * the orchestrator's wall clock, so the age is the one it reports. */
static int prune_runs(PGconn *pg, const retention_conf_t *conf, char *errstr, size_t errlen) {
    char cutoff[24];
    snprintf(cutoff, sizeof(cutoff), "%lld", (long long)time(NULL) - conf->run_days * 86400LL);
    const char *params[] = {cutoff};
    long long total = 0;
    int rc, deleted;
    do {
        PGresult *res;
        rc = tg_pg_exec(pg,
                        "WITH old AS (SELECT run_id FROM runs"
                        " WHERE coalesce(finished_at, created_at) < to_timestamp($1::bigint)"
                        " AND status NOT IN ('queued', 'running')"
                        " ORDER BY created_at LIMIT " RUN_BATCH " FOR UPDATE SKIP LOCKED)"
                        " DELETE FROM runs r USING old WHERE r.run_id = old.run_id",
                        1, params, &res, errstr, errlen);
        if (rc) {
            break;
        }
        deleted = atoi(PQcmdTuples(res));
        total += deleted;
        PQclear(res);
    } while (deleted > 0 && !tg_shutdown_requested);
    if (total) {
        tg_info("Retention: %lld runs older than %ld days deleted", total, conf->run_days);
    }
    return rc;
}

/* ---- S3 backups ------------------------------------------------------------ */

/* Keys that must stay: the recorded backup of every dataset still stored
 * and of every graph kept (the same graphs as datasets_sql). */
static const char protected_sql[] =
    "SELECT backup_key FROM datasets WHERE backup_key IS NOT NULL"
    " UNION SELECT 'graphs/' || version || '.json.gz' FROM (SELECT version FROM graphs"
    " WHERE status IN ('active', 'retired') ORDER BY status = 'active' DESC,"
    " activated_at DESC NULLS LAST, version DESC LIMIT $1) kept"
    " UNION SELECT 'graphs/' || version || '.json.gz' FROM graphs"
    " WHERE status IN ('active', 'building')"
    " UNION SELECT 'dataset:' || version FROM datasets";

static int is_protected(const PGresult *res, const char *key) {
    char tag[40];
    size_t kl;
    int64_t order;
    /* A dataset's backup is uploaded before its key is recorded: the
     * version in the file name protects it meanwhile. */
    tag[0] = '\0';
    if (!strncmp(key, "datasets/", 9) && retention_backup_order(key, &kl, &order)) {
        snprintf(tag, sizeof(tag), "dataset:%lld", (long long)order);
    }
    for (int i = 0; i < PQntuples(res); i++) {
        if (!strcmp(PQgetvalue(res, i, 0), key) || !strcmp(PQgetvalue(res, i, 0), tag)) {
            return 1;
        }
    }
    return 0;
}

static int prune_prefix(const tg_config_t *cfg, const PGresult *prot, const char *prefix, long keep,
                        char *errstr, size_t errlen) {
    char **keys;
    size_t n;
    int rc = tg_s3_list(cfg, prefix, &keys, &n, errstr, errlen);
    if (rc) {
        return rc;
    }
    retention_backup_t *b = calloc(n + 1, sizeof(*b));
    int *drop = calloc(n + 1, sizeof(*drop));
    if (!b || !drop) {
        rc = tg_fail(TG_ERR_NOMEM, errstr, errlen, "retention: out of memory");
    }
    for (size_t i = 0; !rc && i < n; i++) {
        b[i].key = keys[i];
        b[i].protected_ = is_protected(prot, keys[i]);
    }
    if (!rc) {
        retention_backups_plan(b, n, keep, drop);
    }
    size_t deleted = 0;
    for (size_t i = 0; !rc && i < n; i++) {
        if (drop[i] && !(rc = tg_s3_delete(cfg, keys[i], errstr, errlen))) {
            deleted++;
        }
    }
    if (deleted) {
        tg_info("Retention: %zu S3 backups under %s deleted (keeping the newest %ld of each "
                "kind)",
                deleted, prefix, keep);
    }
    free(b);
    free(drop);
    tg_s3_keys_free(keys, n);
    return rc;
}

static int prune_backups(PGconn *pg, const tg_config_t *cfg, const retention_conf_t *conf,
                         char *errstr, size_t errlen) {
    if (!tg_s3_enabled(cfg)) {
        return TG_OK;
    }
    char keep[24];
    snprintf(keep, sizeof(keep), "%ld", conf->graph_keep);
    const char *params[] = {keep};
    PGresult *prot;
    int rc = tg_pg_exec(pg, protected_sql, 1, params, &prot, errstr, errlen);
    if (rc) {
        return rc;
    }
    rc = prune_prefix(cfg, prot, "datasets/", conf->backup_keep, errstr, errlen);
    if (!rc) {
        rc = prune_prefix(cfg, prot, "graphs/", conf->backup_keep, errstr, errlen);
    }
    PQclear(prot);
    return rc;
}

/* ---- the pass ------------------------------------------------------------------ */

int retention_run(PGconn *pg, const tg_config_t *cfg, const retention_conf_t *conf, char *errstr,
                  size_t errlen) {
    char err[512];
    int first = prune_datasets(pg, conf, errstr, errlen);
    int rc = prune_runs(pg, conf, first ? err : errstr, first ? sizeof(err) : errlen);
    if (rc) {
        tg_warn("Retention: runs: %s", first ? err : errstr);
    }
    first = first ? first : rc;
    rc = prune_graphs(pg, conf, first ? err : errstr, first ? sizeof(err) : errlen);
    if (rc) {
        tg_warn("Retention: graphs: %s", first ? err : errstr);
    }
    first = first ? first : rc;
    /* Backups go last: their protection reads the datasets that remain. */
    rc = prune_backups(pg, cfg, conf, first ? err : errstr, first ? sizeof(err) : errlen);
    if (rc) {
        tg_warn("Retention: S3 backups: %s", first ? err : errstr);
    }
    return first ? first : rc;
}

void retention_tick(PGconn *pg, const tg_config_t *cfg, const retention_conf_t *conf,
                    time_t *next) {
    char err[512];
    time_t now = time(NULL); /* wall clock: ages and intervals as an operator sees them */
    if (!conf->interval_s) {
        return;
    }
    if (*next == 0) {
        *next = now + (conf->interval_s < FIRST_PASS_MAX_S ? conf->interval_s : FIRST_PASS_MAX_S);
        tg_info("Retention every %ld s: keeping %ld dataset versions, %ld graphs, %ld backups "
                "per kind, runs for %ld days",
                conf->interval_s, conf->dataset_keep, conf->graph_keep, conf->backup_keep,
                conf->run_days);
    }
    if (*next > now + conf->interval_s) {
        *next = now + conf->interval_s; /* the clock was set back */
    }
    if (now < *next) {
        return;
    }
    *next = now + conf->interval_s;
    if (retention_run(pg, cfg, conf, err, sizeof(err)) != TG_OK) {
        tg_warn("Retention pass incomplete: %s", err);
    }
}
