/* odata-sync-worker (Worker 1 of the specification): on each trigger,
 * fetch stops, routes and flights from OData → hash them → compare with the
 * last dataset → validate → save a new dataset version → back it up to S3 →
 * hand on to the virtual-entities generator. README.md beside this file
 * describes the data contract, the mapping files and the hashing rule.
 *
 * Memory does not grow with the data: each page's records go to a spool
 * (spool.h, sorted runs in temporary files), which is read back in id order
 * twice: once for the hash, the validation and the canonical document (a
 * temporary file, the backup), once for the save's COPY. */
#include "mapping.h"
#include "odata_client.h"
#include "records.h"
#include "spool.h"
#include "store.h"
#include "tg/backoff.h"
#include "tg/config.h"
#include "tg/dataset.h"
#include "tg/files.h"
#include "tg/log.h"
#include "tg/metrics.h"
#include "tg/s3.h"
#include "tg/topics.h"
#include "tg/worker.h"
#include "validate.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define M_RECORDS_SAVED "tg_odata_records_saved_total", "Records saved in new dataset versions"

typedef struct {
    odata_mapping_t mapping;
    odata_client_t client;
    long fetch_timeout_s;
} sync_state_t;

/* Everything one trigger's run holds. */
typedef struct {
    tg_worker_ctx_t *ctx;
    sync_state_t *st;
    const tg_envelope_t *in;
    int force;
    odata_spool_t *rows[ODATA_KINDS]; /* every fetched record, by kind */
    odata_report_t report;            /* mapping problems, then validation's */
    FILE *canonical;                  /* the canonical JSON: hashed and backed up */
    char hash[65];
    odata_version_t version;
} sync_run_t;

/* ---- the result handed on ------------------------------------------------ */

static void result_fill(tg_step_result_t *res, const char *status, const odata_version_t *v) {
    res->status = status;
    res->dataset_version = v->version;
    int changed = strcmp(status, "success") == 0;
    res->added = changed ? v->added : 0;
    res->updated = changed ? v->updated : 0;
    res->deleted = changed ? v->deleted : 0;
    cJSON *d = cJSON_CreateObject();
    cJSON_AddNumberToObject(d, "datasetVersion", (double)v->version);
    cJSON_AddStringToObject(d, "dataHash", v->hash);
    cJSON *counts = cJSON_AddObjectToObject(d, "counts");
    cJSON_AddNumberToObject(counts, "stops", (double)v->stops);
    cJSON_AddNumberToObject(counts, "routes", (double)v->routes);
    cJSON_AddNumberToObject(counts, "flights", (double)v->flights);
    if (v->backup_key[0]) {
        cJSON_AddStringToObject(d, "backupKey", v->backup_key);
    } else {
        cJSON_AddNullToObject(d, "backupKey");
    }
    res->details = d;
    if (!strcmp(status, "skipped")) {
        snprintf(res->message, sizeof(res->message),
                 "Skipped: a single-worker run of another "
                 "worker; dataset v%lld stays current",
                 (long long)v->version);
    } else if (changed) {
        snprintf(res->message, sizeof(res->message),
                 "OData sync completed - dataset v%lld: %lld stops, %lld routes, %lld flights "
                 "(added %lld, updated %lld, deleted %lld)",
                 (long long)v->version, v->stops, v->routes, v->flights, v->added, v->updated,
                 v->deleted);
    } else {
        snprintf(res->message, sizeof(res->message),
                 "No changes - dataset v%lld is current (hash %.12s...)", (long long)v->version,
                 v->hash);
    }
}

/* ---- the steps: each returns non-zero when the run ends there ------------ */

/* A trigger that already produced a version (redelivery after a crash, a
 * kcat replay) gets that version's completion again, nothing new. */
static int step_replayed(sync_run_t *run, tg_step_result_t *res) {
    char err[512];
    int rc =
        store_find_by_trigger(run->ctx->pg, run->in->event_id, &run->version, err, sizeof(err));
    if (rc == TG_ERR_NOTFOUND) {
        return 0;
    }
    if (rc) {
        return tg_step_fail(res, rc, "%s", err);
    }
    tg_info("Trigger %s was already processed: dataset v%lld, sending its completion again",
            run->in->event_id, (long long)run->version.version);
    result_fill(res, "success", &run->version);
    return 1;
}

typedef struct {
    const odata_mapping_t *m;
    odata_kind_t kind;
    long index;
    sync_run_t *run;
    odata_dataset_t page; /* one page's records, on their way to the spool */
} page_sink_t;

static int on_page(const cJSON *rows, void *ud, char *errstr, size_t errlen) {
    page_sink_t *s = ud;
    const cJSON *row;
    int rc = TG_OK;
    cJSON_ArrayForEach(row, rows) {
        if (odata_map_row(s->m, s->kind, row, s->index++, &s->page, &s->run->report)) {
            rc = tg_fail(TG_ERR_NOMEM, errstr, errlen, "out of memory after %ld rows", s->index);
            break;
        }
    }
    const odata_table_t *t = &s->page.t[s->kind];
    for (size_t i = 0; i < t->n && !rc; i++) {
        rc = odata_spool_add(s->run->rows[s->kind], &t->rows[i], errstr, errlen);
    }
    odata_dataset_free(&s->page);
    return rc;
}

static int step_fetch(sync_run_t *run, tg_step_result_t *res) {
    char err[1024];
    tg_info("Step 1: Fetching OData API response...");
    odata_client_t client = run->st->client;
    /* The earlier of the fetch's own limit and the step's deadline. */
    int64_t fetch_ms = run->st->fetch_timeout_s * 1000, step_ms = tg_worker_remaining_ms(run->ctx);
    client.deadline_ms = tg_mono_ms() + (step_ms < fetch_ms ? step_ms : fetch_ms);
    client.deadline_setting = step_ms < fetch_ms ? "the step's deadline" : "ODATA_FETCH_TIMEOUT_S";
    for (int k = 0; k < ODATA_KINDS; k++) {
        if (!(run->rows[k] = odata_spool_new((odata_kind_t)k, ODATA_SPOOL_MEM_LIMIT))) {
            return tg_step_fail(res, TG_ERR_NOMEM, "out of memory");
        }
    }
    for (int k = 0; k < ODATA_KINDS; k++) {
        page_sink_t sink = {.m = &run->st->mapping, .kind = (odata_kind_t)k, .run = run};
        int rc = odata_fetch_set(&client, &run->st->mapping, (odata_kind_t)k, on_page, &sink, err,
                                 sizeof(err));
        odata_dataset_free(&sink.page);
        if (rc) {
            return tg_step_fail(res, rc, "OData fetch failed: %s", err);
        }
    }
    tg_info("Fetched: %zu stops, %zu routes, %zu flights (%zu sorted runs on disk)",
            odata_spool_count(run->rows[ODATA_STOPS]), odata_spool_count(run->rows[ODATA_ROUTES]),
            odata_spool_count(run->rows[ODATA_FLIGHTS]),
            odata_spool_runs(run->rows[ODATA_STOPS]) + odata_spool_runs(run->rows[ODATA_ROUTES]) +
                odata_spool_runs(run->rows[ODATA_FLIGHTS]));
    return 0;
}

static int file_write(void *ud, const void *data, size_t len) {
    return fwrite(data, 1, len, ud) == len ? TG_OK : TG_ERR_IO;
}

/* One pass over the records in id order: the canonical document (hashed,
 * and kept in a temporary file for the backup) and every validation check,
 * whose report step_validate gives when the data is to be saved. */
static int step_hash(sync_run_t *run, tg_step_result_t *res) {
    char err[512];
    tg_info("Step 2: Calculating data hash...");
    if (!(run->canonical = tg_tmpfile(err, sizeof(err)))) {
        return tg_step_fail(res, TG_ERR_IO, "Cannot hash the data: %s", err);
    }
    odata_doc_t doc;
    odata_check_t check;
    odata_check_init(&check, &run->st->mapping, &run->report);
    int rc = odata_doc_begin(&doc, file_write, run->canonical);
    for (int k = 0; k < ODATA_KINDS && !rc; k++) {
        const odata_record_t *r;
        char row_hash[65];
        if ((rc = odata_spool_rewind(run->rows[k], err, sizeof(err)))) {
            break;
        }
        while ((rc = odata_spool_next(run->rows[k], &r, err, sizeof(err))) == TG_OK) {
            if ((rc = odata_doc_row(&doc, (odata_kind_t)k, r, row_hash)) ||
                (rc = odata_check_record(&check, (odata_kind_t)k, r))) {
                snprintf(err, sizeof(err), "%s",
                         rc == TG_ERR_IO ? "cannot write a temporary file (is TMPDIR full?)"
                                         : "out of memory");
                break;
            }
        }
        if (rc == TG_ERR_NOTFOUND) {
            rc = TG_OK;
        }
    }
    if (!rc && (rc = odata_doc_end(&doc, run->hash))) {
        snprintf(err, sizeof(err), "%s",
                 rc == TG_ERR_IO ? "cannot write a temporary file" : "out of memory");
    }
    if (rc) {
        odata_doc_free(&doc);
        odata_check_free(&check);
        return tg_step_fail(res, rc, "Cannot hash the data: %s", err);
    }
    odata_check_end(&check);
    tg_info("Data hash: %s", run->hash);
    return 0;
}

/* Unchanged data may still owe the rest of the pipeline work (the virtual
 * horizon moved on, an earlier run left virtual entities or the graph
 * undone): the event says which, and without it workers 2 and 3 do nothing. */
static void unchanged_result(sync_run_t *run, tg_step_result_t *res, const odata_version_t *v) {
    char err[512], today[16];
    tg_refresh_t due = TG_REFRESH_NONE;
    result_fill(res, "no_changes", v);
    if (tg_refresh_due(run->ctx->pg, v->version, tg_now_ms(), &due, err, sizeof(err)) != TG_OK) {
        tg_warn("Cannot tell whether dataset v%lld needs a refresh: %s", (long long)v->version,
                err);
    }
    if (due == TG_REFRESH_NONE) {
        return;
    }
    cJSON_AddStringToObject(res->details, "refresh", tg_refresh_name(due));
    size_t n = strlen(res->message);
    snprintf(res->message + n, sizeof(res->message) - n, "; refresh due: %s", tg_refresh_name(due));
    tg_day_format(tg_local_day(tg_now_ms()), today, sizeof(today));
    tg_info("Dataset v%lld is unchanged but needs a refresh on %s: %s", (long long)v->version,
            today, tg_refresh_name(due));
}

static int step_unchanged(sync_run_t *run, tg_step_result_t *res) {
    char err[512];
    odata_version_t last;
    int rc = store_find_latest(run->ctx->pg, run->in->source_id, &last, err, sizeof(err));
    if (rc && rc != TG_ERR_NOTFOUND) {
        return tg_step_fail(res, rc, "%s", err);
    }
    if (rc == TG_OK && !strcmp(last.hash, run->hash)) {
        if (!run->force) {
            tg_info("No changes - dataset v%lld has the same hash", (long long)last.version);
            unchanged_result(run, res, &last);
            return 1;
        }
        tg_info("No changes, but the trigger says force - saving a new version");
        return 0;
    }
    tg_info("Changes detected - proceeding with update");
    return 0;
}

/* The checks ran with the hash (step_hash); here their verdict. */
static int step_validate(sync_run_t *run, tg_step_result_t *res) {
    char summary[900];
    tg_info("Step 3: Validating...");
    if (run->report.total == 0) {
        return 0;
    }
    odata_report_summary(&run->report, summary, sizeof(summary));
    res->details = cJSON_CreateObject();
    cJSON_AddItemToObject(res->details, "validation", odata_report_json(&run->report));
    return tg_step_fail(res, TG_ERR_INVALID, "Invalid OData data, nothing saved: %s", summary);
}

static int step_save(sync_run_t *run, tg_step_result_t *res) {
    char err[512];
    tg_info("Step 4: Saving to PostgreSQL...");
    store_save_t req = {run->in->source_id, run->in->event_id, run->in->run_id, run->hash,
                        run->force};
    store_outcome_t outcome;
    int rc = store_save(run->ctx->pg, run->rows, &req, &run->version, &outcome, err, sizeof(err));
    if (rc) {
        return tg_step_fail(res, rc, "Save failed, nothing saved: %s", err);
    }
    if (outcome == STORE_REPLAYED) {
        result_fill(res, "success", &run->version);
        return 1;
    }
    if (outcome == STORE_UNCHANGED) {
        tg_info("No changes - another run saved this hash as dataset v%lld meanwhile",
                (long long)run->version.version);
        unchanged_result(run, res, &run->version);
        return 1;
    }
    tg_info("Dataset version created: v%lld (added %lld, updated %lld, deleted %lld)",
            (long long)run->version.version, run->version.added, run->version.updated,
            run->version.deleted);
    return 0;
}

/* The backup is optional: a failure is a warning, never a failed step. The
 * canonical document is compressed from its temporary file into another
 * and uploaded from there: never whole in memory. */
static void step_backup(sync_run_t *run) {
    const tg_config_t *cfg = run->ctx->cfg;
    char key[512], err[512];
    if (!tg_s3_enabled(cfg)) {
        return;
    }
    tg_info("Step 5: Backing up to S3...");
    snprintf(key, sizeof(key), "datasets/%s/v%lld-%s.json.gz", run->in->source_id,
             (long long)run->version.version, run->hash);
    FILE *gz = tg_tmpfile(err, sizeof(err));
    int rc = gz ? tg_gzip_file(run->canonical, gz, err, sizeof(err)) : TG_ERR_IO;
    long gzlen = gz ? ftell(gz) : 0;
    if (rc == TG_OK) {
        rc = tg_s3_put_file(cfg, key, gz, "application/gzip", err, sizeof(err));
    }
    if (gz) {
        fclose(gz);
    }
    if (rc == TG_OK) {
        rc = store_set_backup_key(run->ctx->pg, run->version.version, key, err, sizeof(err));
    }
    if (rc) {
        tg_warn("Backup failed (the dataset is saved; continuing): %s", err);
        return;
    }
    snprintf(run->version.backup_key, sizeof(run->version.backup_key), "%s", key);
    tg_info("Backed up %ld bytes (gzip) to %s", gzlen, key);
}

/* "only" names another worker: acknowledge with the current dataset, so the
 * event still says which version the run is about. */
static void step_skip(tg_worker_ctx_t *ctx, const tg_envelope_t *in, tg_step_result_t *res) {
    char err[512];
    odata_version_t last;
    int rc = store_find_latest(ctx->pg, in->source_id, &last, err, sizeof(err));
    if (rc == TG_ERR_NOTFOUND) {
        memset(&last, 0, sizeof(last));
        rc = TG_OK;
    }
    if (rc) {
        tg_step_fail(res, rc, "%s", err);
        return;
    }
    result_fill(res, "skipped", &last);
    cJSON_AddStringToObject(res->details, "only", tg_json_str(in->payload, "only"));
}

static void sync_step(tg_worker_ctx_t *ctx, const tg_envelope_t *in, tg_step_result_t *res) {
    const char *only = tg_json_str(in->payload, "only");
    if (only && *only && strcmp(only, TG_WORKER_ODATA) != 0) {
        step_skip(ctx, in, res);
        return;
    }
    sync_run_t run = {.ctx = ctx, .st = ctx->state, .in = in};
    run.force = tg_json_bool(in->payload, "force", 0);
    if (!step_replayed(&run, res) && !step_fetch(&run, res) && !step_hash(&run, res) &&
        !step_unchanged(&run, res) && !step_validate(&run, res) && !step_save(&run, res)) {
        step_backup(&run);
        result_fill(res, "success", &run.version);
        tg_metric_add(M_RECORDS_SAVED, "",
                      (double)(run.version.stops + run.version.routes + run.version.flights));
    }
    if (only && *only && res->details) { /* travels along the run (proto/topics.md) */
        cJSON_AddStringToObject(res->details, "only", only);
    }
    for (int k = 0; k < ODATA_KINDS; k++) {
        odata_spool_free(run.rows[k]);
    }
    if (run.canonical) {
        fclose(run.canonical);
    }
}

/* ---- start-up ------------------------------------------------------------ */

static int client_config(sync_state_t *st, const tg_config_t *cfg, volatile int *stop, char *errstr,
                         size_t errlen) {
    long connect_ms, total_ms, pages, retries, wait_s, page_size;
    int rc =
        tg_env_long("ODATA_CONNECT_TIMEOUT_MS", 5000, 100, 600000, &connect_ms, errstr, errlen);
    if (!rc) {
        rc = tg_env_long("ODATA_TIMEOUT_MS", 60000, 100, 3600000, &total_ms, errstr, errlen);
    }
    if (!rc) {
        rc = tg_env_long("ODATA_FETCH_TIMEOUT_S", 600, 1, 86400, &st->fetch_timeout_s, errstr,
                         errlen);
    }
    if (!rc) {
        rc = tg_env_long("ODATA_MAX_PAGES", 1000, 1, 1000000, &pages, errstr, errlen);
    }
    if (!rc) {
        rc = tg_env_long("ODATA_MAX_RETRIES", 3, 0, 100, &retries, errstr, errlen);
    }
    if (!rc) {
        rc = tg_env_long("ODATA_MAX_RETRY_WAIT_S", 30, 0, 3600, &wait_s, errstr, errlen);
    }
    if (!rc) {
        rc = tg_env_long("ODATA_PAGE_SIZE", st->mapping.page_size, 1, 100000, &page_size, errstr,
                         errlen);
    }
    if (rc) {
        return rc;
    }
    const char *paging = tg_env_str("ODATA_PAGING", NULL);
    if (paging && strcmp(paging, "server") && strcmp(paging, "client")) {
        return tg_fail(TG_ERR_CONFIG, errstr, errlen, "ODATA_PAGING: expected server or client");
    }
    if (paging) {
        st->mapping.client_paging = !strcmp(paging, "client");
    }
    st->mapping.page_size = (int)page_size;
    odata_client_t *c = &st->client;
    c->root = cfg->odata_url;
    char why[200];
    if ((rc = tg_url_origin(c->root, c->origin, why, sizeof(why)))) {
        return tg_fail(rc == TG_ERR_NOMEM ? rc : TG_ERR_CONFIG, errstr, errlen, "ODATA_URL: %s",
                       why);
    }
    c->http.connect_timeout_ms = connect_ms;
    c->http.total_timeout_ms = total_ms;
    c->http.user = tg_env_str("ODATA_USER", NULL);
    c->http.password = tg_env_str("ODATA_PASSWORD", NULL);
    c->http.bearer = tg_env_str("ODATA_BEARER_TOKEN", NULL);
    c->max_pages = (int)pages;
    c->max_retries = (int)retries;
    c->max_retry_wait_s = (int)wait_s;
    c->stop = stop;
    return TG_OK;
}

static int sync_init(tg_worker_ctx_t *ctx, char *errstr, size_t errlen) {
    tg_metric_add(M_RECORDS_SAVED, "", 0); /* at zero from start-up, like every counter */
    sync_state_t *st = calloc(1, sizeof(*st));
    if (!st) {
        return tg_fail(TG_ERR_NOMEM, errstr, errlen, "out of memory");
    }
    ctx->state = st; /* sync_fini frees it, whatever follows */
    int rc = odata_mapping_load(tg_env_str("ODATA_MAPPING", NULL), &st->mapping, errstr, errlen);
    if (!rc) {
        rc = client_config(st, ctx->cfg, &ctx->stop, errstr, errlen);
    }
    if (rc) {
        return rc;
    }
    tg_info("OData source %s, mapping %s, %s paging%s", ctx->cfg->odata_url, st->mapping.name,
            st->mapping.client_paging ? "client ($top/$skip)" : "server (next links)",
            tg_s3_enabled(ctx->cfg) ? ", backups to S3" : ", S3 backups off (S3_ENDPOINT unset)");
    return TG_OK;
}

static void sync_fini(tg_worker_ctx_t *ctx) {
    sync_state_t *st = ctx->state;
    if (st) {
        odata_mapping_free(&st->mapping);
        free(st);
        ctx->state = NULL;
    }
}

int main(void) {
    static const tg_worker_def_t def = {
        .worker_id = TG_WORKER_ODATA,
        .worker_name = "OData Synchronization Worker",
        .version = "1.0.0",
        .input_topic = TG_TOPIC_TRIGGER,
        .input_schema = TG_SCHEMA_TRIGGER,
        .output_topic = TG_TOPIC_ODATA_DONE,
        .output_schema = TG_SCHEMA_ODATA_DONE,
        .default_port = 8081,
        .needs = TG_NEED_PG | TG_NEED_ODATA,
        .step_timeout_s = TG_TIMEOUT_S_ODATA,
        .init = sync_init,
        .step = sync_step,
        .fini = sync_fini,
    };
    return tg_worker_main(&def);
}
