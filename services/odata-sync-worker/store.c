/* Dataset versions in PostgreSQL. The save holds a per-source advisory lock
 * for its whole transaction, so two triggers racing for one source cannot
 * both create a version for one hash, and it checks the trigger's event id
 * again under that lock (the replay guard).
 *
 * A version loads into its own standalone tables (sql/050), which the
 * INSERT of its datasets row attaches as partitions at the end of the same
 * transaction: readers never wait for the load nor see part of it, and a
 * failure or crash rolls the tables back with the row. */
#include "store.h"

#include "tg/buf.h"
#include "tg/log.h"
#include "tg/pg.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The partition of a table for one version: sql/050's dataset_partition_name(). */
#define STORE_PARTITION "%s_v%s"

#define VERSION_COLUMNS                                                                            \
    "version, data_hash, stops_count, routes_count, flights_count, added_count, "                  \
    "updated_count, deleted_count, coalesce(backup_key, '')"

static void version_read(const PGresult *res, odata_version_t *out) {
    memset(out, 0, sizeof(*out));
    out->version = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    snprintf(out->hash, sizeof(out->hash), "%s", PQgetvalue(res, 0, 1));
    long long *counts[] = {&out->stops, &out->routes,  &out->flights,
                           &out->added, &out->updated, &out->deleted};
    for (int i = 0; i < 6; i++) {
        *counts[i] = strtoll(PQgetvalue(res, 0, 2 + i), NULL, 10);
    }
    snprintf(out->backup_key, sizeof(out->backup_key), "%s", PQgetvalue(res, 0, 8));
}

static int find_one(PGconn *pg, const char *sql, const char *param, odata_version_t *out,
                    char *errstr, size_t errlen) {
    PGresult *res;
    const char *params[] = {param};
    int rc = tg_pg_exec(pg, sql, 1, params, &res, errstr, errlen);
    if (rc) {
        return rc;
    }
    rc = PQntuples(res) ? TG_OK : TG_ERR_NOTFOUND;
    if (rc == TG_OK) {
        version_read(res, out);
    }
    PQclear(res);
    return rc;
}

int store_find_by_trigger(PGconn *pg, const char *event_id, odata_version_t *out, char *errstr,
                          size_t errlen) {
    return find_one(pg, "SELECT " VERSION_COLUMNS " FROM datasets WHERE trigger_event_id = $1",
                    event_id, out, errstr, errlen);
}

int store_find_latest(PGconn *pg, const char *source, odata_version_t *out, char *errstr,
                      size_t errlen) {
    return find_one(pg,
                    "SELECT " VERSION_COLUMNS " FROM datasets WHERE source_id = $1 "
                    "ORDER BY version DESC LIMIT 1",
                    source, out, errstr, errlen);
}

/* ---- COPY --------------------------------------------------------------- */

/* One record as a COPY line: dataset_version, the contract fields, row_hash. */
static int copy_line(tg_buf_t *b, odata_kind_t k, const odata_record_t *r, const char *version,
                     tg_buf_t *scratch) {
    char row_hash[65];
    const odata_entity_t *e = &odata_entities[k];
    int rc = odata_row_hash(k, r, scratch, row_hash) || tg_copy_str(b, version, 0);
    for (int f = 0; f < e->nfields && !rc; f++) {
        rc = tg_copy_str(b, r->v[f].text, 0);
    }
    return rc || tg_copy_str(b, row_hash, 1) ? TG_ERR_NOMEM : TG_OK;
}

/* Streams every record of the spool into the version's staged partition,
 * in pieces of about 1 MiB: memory stays the same whatever the size. */
static int copy_table(PGconn *pg, odata_spool_t *rows, odata_kind_t k, const char *version,
                      char *errstr, size_t errlen) {
    const odata_entity_t *e = &odata_entities[k];
    tg_buf_t sql, data, scratch;
    tg_buf_init(&sql);
    tg_buf_init(&data);
    tg_buf_init(&scratch);
    /* Column names come from the static contract, never from the data; the
     * table is the version's staged partition. */
    int rc = tg_buf_appendf(&sql, "COPY " STORE_PARTITION " (dataset_version", e->name, version);
    for (int f = 0; f < e->nfields && !rc; f++) {
        rc = tg_buf_appendf(&sql, ", %s", e->fields[f].column);
    }
    if (rc || tg_buf_appendf(&sql, ", row_hash) FROM STDIN")) {
        rc = tg_fail(TG_ERR_NOMEM, errstr, errlen, "%s: out of memory", e->name);
    }
    char why[512] = "";
    tg_pg_copy_t copy;
    if (!rc && (rc = odata_spool_rewind(rows, errstr, errlen)) == TG_OK) {
        rc = tg_pg_copy_begin(&copy, pg, sql.data, errstr, errlen);
        const odata_record_t *r;
        int more = TG_OK;
        while (!rc && !*why && (more = odata_spool_next(rows, &r, why, sizeof(why))) == TG_OK) {
            if (copy_line(&data, k, r, version, &scratch)) {
                snprintf(why, sizeof(why), "%s: out of memory building COPY data", e->name);
            } else if (data.len >= (1 << 20)) {
                tg_pg_copy_put(&copy, data.data, data.len);
                tg_buf_reset(&data);
            }
        }
        if (!rc) {
            if (!*why && data.len) {
                tg_pg_copy_put(&copy, data.data, data.len);
            }
            /* A record that could not be read ends the COPY with that reason. */
            rc = tg_pg_copy_end(&copy, *why ? why : NULL, errstr, errlen);
        }
    }
    tg_buf_free(&sql);
    tg_buf_free(&data);
    tg_buf_free(&scratch);
    return rc;
}

/* ---- the save transaction ----------------------------------------------- */

/* Rows added, changed and removed against the previous version (0: none),
 * read from the staged partitions before they are attached, so the attach
 * holds its locks for no longer than the catalog update; the generator's
 * virtual flights of the previous version are not ours to count. %1$s is
 * the new version (a number from the sequence), $1 the previous one. */
static const char diff_sql[] =
    "WITH d AS ("
    " SELECT c.id AS cid, p.id AS pid, c.row_hash AS ch, p.row_hash AS ph"
    " FROM (SELECT id, row_hash FROM stops_v%1$s) c"
    " FULL JOIN (SELECT id, row_hash FROM stops WHERE dataset_version = $1) p ON c.id = p.id"
    " UNION ALL"
    " SELECT c.id, p.id, c.row_hash, p.row_hash"
    " FROM (SELECT id, row_hash FROM routes_v%1$s) c"
    " FULL JOIN (SELECT id, row_hash FROM routes WHERE dataset_version = $1) p ON c.id = p.id"
    " UNION ALL"
    " SELECT c.id, p.id, c.row_hash, p.row_hash"
    " FROM (SELECT id, row_hash FROM flights_v%1$s WHERE NOT is_virtual) c"
    " FULL JOIN (SELECT id, row_hash FROM flights WHERE dataset_version = $1 AND NOT is_virtual) p"
    " ON c.id = p.id)"
    " SELECT (SELECT count(*) FROM d WHERE pid IS NULL),"
    " (SELECT count(*) FROM d WHERE cid IS NOT NULL AND pid IS NOT NULL"
    "  AND ch IS DISTINCT FROM ph),"
    " (SELECT count(*) FROM d WHERE cid IS NULL)";

static int diff_counts(PGconn *pg, const char *version, const char *previous, char counts[3][24],
                       char *errstr, size_t errlen) {
    char sql[sizeof(diff_sql) + 64];
    snprintf(sql, sizeof(sql), diff_sql, version);
    PGresult *res;
    const char *params[] = {previous};
    int rc = tg_pg_exec(pg, sql, 1, params, &res, errstr, errlen);
    if (rc) {
        return rc;
    }
    for (int i = 0; i < 3; i++) {
        snprintf(counts[i], sizeof(counts[0]), "%s", PQgetvalue(res, 0, i));
    }
    PQclear(res);
    return TG_OK;
}

/* Takes the next version number and creates its five empty staged tables. */
static int stage_version(PGconn *pg, char *version, size_t vlen, char *errstr, size_t errlen) {
    PGresult *res;
    int rc = tg_pg_exec(pg, "SELECT nextval(pg_get_serial_sequence('datasets', 'version'))", 0,
                        NULL, &res, errstr, errlen);
    if (rc) {
        return rc;
    }
    snprintf(version, vlen, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    const char *params[] = {version};
    return tg_pg_exec(pg, "SELECT dataset_partitions_stage($1)", 1, params, NULL, errstr, errlen);
}

/* The datasets row; its INSERT trigger attaches the staged tables. */
static int insert_version(PGconn *pg, odata_spool_t *const rows[ODATA_KINDS],
                          const store_save_t *req, const char *version, char diff[3][24],
                          odata_version_t *out, char *errstr, size_t errlen) {
    char counts[ODATA_KINDS][24];
    for (int k = 0; k < ODATA_KINDS; k++) {
        snprintf(counts[k], sizeof(counts[k]), "%zu", odata_spool_count(rows[k]));
    }
    const char *params[] = {version,     req->source, req->hash, req->event_id,
                            req->run_id, counts[0],   counts[1], counts[2],
                            diff[0],     diff[1],     diff[2]};
    PGresult *res;
    int rc = tg_pg_exec(pg,
                        "INSERT INTO datasets (version, source_id, data_hash, trigger_event_id, "
                        "run_id, stops_count, routes_count, flights_count, added_count, "
                        "updated_count, deleted_count) "
                        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) "
                        "RETURNING " VERSION_COLUMNS,
                        11, params, &res, errstr, errlen);
    if (rc) {
        return rc;
    }
    version_read(res, out);
    PQclear(res);
    return TG_OK;
}

/* Under the lock: *outcome STORE_SAVED when rows must be saved, or why not
 * (this trigger already saved, or the hash already current). */
static int save_needed(PGconn *pg, const store_save_t *req, odata_version_t *out,
                       store_outcome_t *outcome, int64_t *previous, char *errstr, size_t errlen) {
    const char *params[] = {req->source};
    int rc =
        tg_pg_exec(pg, "SELECT pg_advisory_xact_lock(hashtextextended('odata-sync:' || $1, 0))", 1,
                   params, NULL, errstr, errlen);
    if (!rc && (rc = store_find_by_trigger(pg, req->event_id, out, errstr, errlen)) == TG_OK) {
        *outcome = STORE_REPLAYED;
        return TG_OK;
    }
    if (rc != TG_ERR_NOTFOUND) {
        return rc;
    }
    rc = store_find_latest(pg, req->source, out, errstr, errlen);
    if (rc && rc != TG_ERR_NOTFOUND) {
        return rc;
    }
    *previous = rc == TG_OK ? out->version : 0;
    if (rc == TG_OK && !req->force && !strcmp(out->hash, req->hash)) {
        *outcome = STORE_UNCHANGED;
        return TG_OK;
    }
    *outcome = STORE_SAVED;
    return TG_OK;
}

static int save_rows(PGconn *pg, odata_spool_t *const rows[ODATA_KINDS], const store_save_t *req,
                     int64_t previous, odata_version_t *out, char *errstr, size_t errlen) {
    char v[24], prev[24], diff[3][24];
    snprintf(prev, sizeof(prev), "%lld", (long long)previous);
    int rc = stage_version(pg, v, sizeof(v), errstr, errlen);
    for (int k = 0; k < ODATA_KINDS && !rc; k++) {
        rc = copy_table(pg, rows[k], (odata_kind_t)k, v, errstr, errlen);
    }
    if (!rc) {
        rc = diff_counts(pg, v, prev, diff, errstr, errlen);
    }
    if (!rc) {
        rc = insert_version(pg, rows, req, v, diff, out, errstr, errlen);
    }
    return rc;
}

int store_save(PGconn *pg, odata_spool_t *const rows[ODATA_KINDS], const store_save_t *req,
               odata_version_t *out, store_outcome_t *outcome, char *errstr, size_t errlen) {
    int64_t previous = 0;
    int rc = tg_pg_begin(pg, errstr, errlen);
    if (rc) {
        return rc;
    }
    rc = save_needed(pg, req, out, outcome, &previous, errstr, errlen);
    if (rc == TG_OK && *outcome == STORE_SAVED) {
        rc = save_rows(pg, rows, req, previous, out, errstr, errlen);
    }
    if (rc == TG_OK && *outcome == STORE_SAVED) {
        rc = tg_pg_commit(pg, errstr, errlen);
    }
    tg_pg_rollback(pg); /* nothing to do after a commit; undoes everything otherwise */
    return rc;
}

int store_set_backup_key(PGconn *pg, int64_t version, const char *key, char *errstr,
                         size_t errlen) {
    char v[24];
    snprintf(v, sizeof(v), "%lld", (long long)version);
    const char *params[] = {key, v};
    return tg_pg_exec(pg, "UPDATE datasets SET backup_key = $1 WHERE version = $2", 2, params, NULL,
                      errstr, errlen);
}
