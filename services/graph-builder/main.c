/* graph-builder (Worker 3): on virtual-entities.completed, load the dataset
 * version, build the transport graph, validate it, publish it to Redis
 * beside the active one, verify, switch graph:version atomically, record it
 * in graphs, keep the last versions, back it up and emit graph.completed.
 *
 *   resolve dataset → clean leftovers → idempotency → load → build →
 *   validate → publish → verify → activate → retain → backup → emit */
#include "graph.h"
#include "tg/files.h"
#include "tg/log.h"
#include "tg/pg.h"
#include "tg/s3.h"
#include "tg/topics.h"
#include "tg/worker.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    double transfer_minutes; /* GRAPH_TRANSFER_MINUTES; 0 = no transfer edges */
    long transfer_max_stops; /* GRAPH_TRANSFER_MAX_STOPS */
    long keep_versions;      /* GRAPH_KEEP_VERSIONS */
    long fail_after_keys;    /* GRAPH_FAIL_AFTER_KEYS, test only: first build only */
} settings_t;

/* One build in progress. */
typedef struct {
    tg_worker_ctx_t *ctx;
    const tg_envelope_t *in;
    tg_step_result_t *res;
    int64_t dataset;
    int64_t t0;
    char version[64];
    gb_graph_t *graph;
    gb_report_t report;
    long long redis_bytes;
} build_t;

/* ---- results ----------------------------------------------------------- */

/* The stops left out for want of any connection, as the report lists them. */
static long long isolated_count(const cJSON *validation) {
    const cJSON *is;
    cJSON_ArrayForEach(is, cJSON_GetObjectItemCaseSensitive(validation, "issues")) {
        const char *code = tg_json_str(is, "code");
        if (code && !strcmp(code, "isolated_stop")) {
            return (long long)tg_json_num(is, "count", 0);
        }
    }
    return 0;
}

static void result_graph(build_t *b, const char *status, const char *version, long long nodes,
                         long long edges, cJSON *validation) {
    tg_step_result_t *res = b->res;
    res->status = status;
    res->dataset_version = b->dataset;
    cJSON *d = res->details ? res->details : cJSON_CreateObject();
    res->details = d;
    if (version && *version) {
        cJSON_AddStringToObject(d, "graphVersion", version);
    }
    cJSON_AddNumberToObject(d, "nodes", (double)nodes);
    cJSON_AddNumberToObject(d, "edges", (double)edges);
    cJSON_AddNumberToObject(d, "isolatedStops", (double)isolated_count(validation));
    if (validation) {
        cJSON_AddItemToObject(d, "validation", validation);
    }
    const char *only = tg_json_str(b->in->payload, "only");
    if (only) {
        cJSON_AddStringToObject(d, "only", only);
    }
}

/* Reports the graph that graph:version points at, without building. */
static void result_skipped(build_t *b, const char *current, const char *why) {
    gb_meta_row_t row;
    char err[256];
    int found = *current && gb_meta_get(b->ctx->pg, current, &row, err, sizeof(err)) == TG_OK;
    result_graph(b, "skipped", current, found ? row.nodes : 0, found ? row.edges : 0,
                 found && row.validation ? cJSON_Duplicate(row.validation, 1) : NULL);
    snprintf(b->res->message, sizeof(b->res->message), "%s", why);
    if (found) {
        gb_meta_row_clear(&row);
    }
}

/* ---- before building: dataset, leftovers, idempotency ------------------ */

static int resolve_dataset(build_t *b) {
    char err[512];
    int rc = gb_dataset_resolve(b->ctx->pg, b->in->dataset_version, b->in->source_id, &b->dataset,
                                err, sizeof(err));
    if (rc == TG_ERR_NOTFOUND) {
        rc = TG_ERR_INVALID; /* the specification: no data, fail immediately */
    }
    return rc ? tg_step_fail(b->res, rc, "%s", err) : TG_OK;
}

/* A graph that is live already (crash between switch and commit) becomes
 * the active row; any other pending version loses its keys. */
static int recover_version(build_t *b, const char *version, const char *current) {
    char err[512];
    int was_active = !strcmp(version, current), rc = TG_OK;
    if (!was_active &&
        (rc = gb_redis_drop_version(b->ctx->redis, version, &was_active, err, sizeof(err)))) {
        return tg_step_fail(b->res, rc, "Cleaning up graph %s: %s", version, err);
    }
    if (was_active) {
        rc = gb_meta_activate_begin(b->ctx->pg, version, -1, -1, err, sizeof(err));
        if (rc == TG_OK) {
            rc = tg_pg_commit(b->ctx->pg, err, sizeof(err));
        }
        tg_info("Graph %s was already live: recorded as active", version);
    } else {
        rc = gb_meta_fail(b->ctx->pg, version, "build interrupted; keys removed by a later build",
                          0, err, sizeof(err));
        tg_info("Removed the keys of interrupted graph build %s", version);
    }
    if (rc) {
        tg_pg_rollback(b->ctx->pg);
    }
    return rc ? tg_step_fail(b->res, rc, "Recording graph %s: %s", version, err) : TG_OK;
}

static int recover_leftovers(build_t *b) {
    char err[512], current[64];
    char **pending;
    size_t n;
    int rc = gb_meta_pending(b->ctx->pg, &pending, &n, err, sizeof(err));
    if (rc) {
        return tg_step_fail(b->res, rc, "%s", err);
    }
    if (n > 0 &&
        (rc = gb_redis_current(b->ctx->redis, current, sizeof(current), err, sizeof(err)))) {
        tg_step_fail(b->res, rc, "%s", err);
    }
    for (size_t i = 0; i < n; i++) {
        if (rc == TG_OK) {
            rc = recover_version(b, pending[i], current);
        }
        free(pending[i]);
    }
    free(pending);
    return rc;
}

/* True (and the result filled) when this dataset needs no new graph: its
 * graph, built from its current virtual entities and flights, is the one
 * graph:version points at, or a newer dataset's is. */
static int already_built(build_t *b) {
    char err[512], current[64], why[256];
    gb_meta_row_t row;
    if (gb_redis_current(b->ctx->redis, current, sizeof(current), err, sizeof(err)) != TG_OK ||
        !*current || gb_meta_get(b->ctx->pg, current, &row, err, sizeof(err)) != TG_OK) {
        return 0;
    }
    int live = row.dataset == b->dataset && !row.virtual_stale &&
               (!strcmp(row.status, "active") || !strcmp(row.status, "retired")) &&
               gb_redis_has_version(b->ctx->redis, current);
    int newer = row.dataset > b->dataset;
    if (live) {
        snprintf(why, sizeof(why), "Graph %s of dataset %lld is already active", current,
                 (long long)b->dataset);
    } else if (newer) {
        snprintf(why, sizeof(why),
                 "Graph %s of the newer dataset %lld is active; dataset %lld not built", current,
                 (long long)row.dataset, (long long)b->dataset);
    }
    gb_meta_row_clear(&row);
    if (!live && !newer) {
        return 0;
    }
    result_skipped(b, current, why);
    return 1;
}

/* ---- load, build, validate --------------------------------------------- */

static int load_and_build(build_t *b) {
    const settings_t *set = b->ctx->state;
    char err[512];
    int64_t t = tg_mono_ms();
    b->graph = gb_graph_new();
    if (!b->graph) {
        return tg_step_fail(b->res, TG_ERR_NOMEM, "graph: out of memory");
    }
    int rc = gb_load(b->ctx->pg, b->dataset, b->graph, err, sizeof(err));
    if (rc) {
        return tg_step_fail(b->res, rc, "Loading dataset %lld: %s", (long long)b->dataset, err);
    }
    if ((rc = tg_worker_deadline_check(b->ctx, b->res, "after loading the dataset"))) {
        return rc;
    }
    int64_t loaded = tg_mono_ms();
    if ((rc = gb_add_transfers(b->graph, set->transfer_minutes, (size_t)set->transfer_max_stops)) ||
        (rc = gb_graph_index(b->graph)) || (rc = gb_graph_drop_isolated(b->graph))) {
        return tg_step_fail(b->res, rc, "graph: out of memory building dataset %lld",
                            (long long)b->dataset);
    }
    if ((rc = tg_worker_deadline_check(b->ctx, b->res, "after building the graph"))) {
        return rc;
    }
    if ((rc = gb_validate(b->graph, &b->report))) {
        return tg_step_fail(b->res, rc,
                            "graph: out of memory validating dataset %lld; not published",
                            (long long)b->dataset);
    }
    tg_info("Dataset %lld: %zu stops (%zu isolated left out), %zu edges (%zu transfers); load "
            "%lld ms, build and validate %lld ms; %zu errors, %zu warnings",
            (long long)b->dataset, b->graph->n_nodes, b->graph->isolated_stops,
            gb_edge_count(b->graph), b->graph->transfer_edges, (long long)(loaded - t),
            (long long)(tg_mono_ms() - loaded), b->report.errors, b->report.warnings);
    return TG_OK;
}

/* "Invalid graph: fail, don't save": a failed row with the report, nothing
 * in Redis, the report in the failure event. */
static void reject_invalid(build_t *b) {
    char text[700], err[512];
    gb_report_errors_text(&b->report, text, sizeof(text));
    cJSON *validation = gb_report_json(&b->report);
    if (gb_meta_insert(b->ctx->pg, b->version, b->dataset, "failed", b->graph->n_nodes,
                       gb_edge_count(b->graph), validation, b->in->run_id, text, 0, err,
                       sizeof(err)) != TG_OK) {
        tg_error("Recording the failed graph: %s", err);
        b->version[0] = '\0';
    }
    result_graph(b, "failed", b->version, (long long)b->graph->n_nodes,
                 (long long)gb_edge_count(b->graph), validation);
    tg_step_fail(b->res, TG_ERR_INVALID, "Invalid graph for dataset %lld: %s",
                 (long long)b->dataset, text);
}

/* ---- publish, verify, activate ----------------------------------------- */

/* The active graph stays as it was; the new keys go if Redis lets us. */
static int publish_failed(build_t *b, int rc, const char *why) {
    char err[512];
    int was_active = 0, cleaned = 0;
    if (b->ctx->redis && !b->ctx->redis->err) {
        cleaned = gb_redis_drop_version(b->ctx->redis, b->version, &was_active, err, sizeof(err)) ==
                  TG_OK;
    }
    if (gb_meta_fail(b->ctx->pg, b->version, why, !cleaned, err, sizeof(err)) != TG_OK) {
        tg_error("Recording the failed graph %s: %s", b->version, err);
    }
    tg_warn("Graph %s not activated (%s); its keys %s", b->version, why,
            cleaned ? "were deleted" : "are left for the next build to delete");
    return tg_step_fail(b->res, rc, "Publishing graph %s: %s", b->version, why);
}

static int publish_keys(build_t *b) {
    settings_t *set = b->ctx->state;
    char err[512];
    long long before = gb_redis_used_memory(b->ctx->redis);
    int64_t t = tg_mono_ms();
    int rc = gb_redis_publish(b->ctx->redis, b->graph, b->version, set->fail_after_keys, err,
                              sizeof(err));
    set->fail_after_keys = 0; /* the fault hits the first build only */
    int64_t written = tg_mono_ms();
    if (rc == TG_OK) {
        rc = gb_redis_verify(b->ctx->redis, b->graph, b->version, err, sizeof(err));
    }
    if (rc) {
        return publish_failed(b, rc, err);
    }
    long long after = gb_redis_used_memory(b->ctx->redis);
    int64_t verified = tg_mono_ms();
    if (gb_redis_version_bytes(b->ctx->redis, b->graph, b->version, &b->redis_bytes, err,
                               sizeof(err)) != TG_OK) {
        tg_warn("Measuring graph %s: %s", b->version, err);
        b->redis_bytes = -1;
    }
    tg_info("Graph %s written in %lld ms, verified in %lld ms; %lld bytes of Redis memory "
            "(used_memory grew by %lld)",
            b->version, (long long)(written - t), (long long)(verified - written), b->redis_bytes,
            before >= 0 && after >= 0 ? after - before : -1);
    return TG_OK;
}

/* graphs first (uncommitted), then graph:version, then the commit: if the
 * switch fails the metadata rolls back; if only the commit fails the graph
 * is live and the next build records it (recover_version). */
static int activate(build_t *b) {
    char err[512], previous[64];
    long long ms = (long long)(tg_mono_ms() - b->t0);
    int rc = gb_meta_activate_begin(b->ctx->pg, b->version, ms, b->redis_bytes, err, sizeof(err));
    if (rc) {
        return publish_failed(b, rc, err);
    }
    if ((rc = gb_redis_activate(b->ctx->redis, b->version, previous, sizeof(previous), err,
                                sizeof(err)))) {
        tg_pg_rollback(b->ctx->pg);
        return publish_failed(b, rc, err);
    }
    if ((rc = tg_pg_commit(b->ctx->pg, err, sizeof(err)))) {
        tg_pg_rollback(b->ctx->pg);
        return tg_step_fail(b->res, rc, "Graph %s is live but not recorded: %s", b->version, err);
    }
    tg_info("graph:version switched from %s to %s", *previous ? previous : "(none)", b->version);
    return TG_OK;
}

static int publish_graph(build_t *b) {
    char err[512];
    cJSON *validation = gb_report_json(&b->report);
    int rc = gb_meta_insert(b->ctx->pg, b->version, b->dataset, "building", b->graph->n_nodes,
                            gb_edge_count(b->graph), validation, b->in->run_id, NULL, 1, err,
                            sizeof(err));
    cJSON_Delete(validation);
    if (rc) {
        return tg_step_fail(b->res, rc, "Recording graph build: %s", err);
    }
    if ((rc = publish_keys(b)) == TG_OK) {
        rc = activate(b);
    }
    return rc;
}

/* ---- after activation: retention and backup (both non-fatal) ----------- */

static void retain_versions(build_t *b) {
    const settings_t *set = b->ctx->state;
    char err[512];
    int dropped = 0;
    if (gb_redis_retain(b->ctx->redis, set->keep_versions, &dropped, err, sizeof(err)) != TG_OK) {
        tg_warn("Deleting old graph versions: %s (retried after the next build)", err);
    }
}

/* Hands the JSON written so far to the compressor once it passes
 * BACKUP_CHUNK bytes (always when flush): the backup of a graph of a
 * million edges never exists uncompressed. */
#define BACKUP_CHUNK (64 * 1024)

static int backup_feed(tg_gzip_t *z, tg_buf_t *json, int flush) {
    if (json->len < BACKUP_CHUNK && !flush) {
        return TG_OK;
    }
    int rc = tg_gzip_write(z, json->data, json->len);
    tg_buf_reset(json);
    return rc;
}

typedef struct {
    tg_gzip_t *z;
    tg_buf_t *json;
    int first;
} backup_t;

static int backup_edge(const gb_graph_t *g, const gb_edge_t *e, void *arg) {
    backup_t *bk = arg;
    int rc = bk->first ? TG_OK : tg_buf_append(bk->json, ",", 1);
    bk->first = 0;
    if (rc == TG_OK) {
        rc = gb_edge_json(bk->json, g, e);
    }
    return rc ? rc : backup_feed(bk->z, bk->json, 0);
}

/* {graphVersion, datasetVersion, nodes, edges}, compressed into z. */
static int backup_json(const build_t *b, tg_gzip_t *z, tg_buf_t *json) {
    const gb_graph_t *g = b->graph;
    int rc = tg_buf_appendf(json, "{\"graphVersion\":\"%s\",\"datasetVersion\":%lld,\"nodes\":[",
                            b->version, (long long)b->dataset);
    for (size_t i = 0; i < g->n_nodes && rc == TG_OK; i++) {
        if (!(rc = i ? tg_buf_append(json, ",", 1) : TG_OK) &&
            !(rc = gb_node_json(json, &g->nodes[i]))) {
            rc = backup_feed(z, json, 0);
        }
    }
    if (rc == TG_OK) {
        rc = tg_buf_append(json, "],\"edges\":[", 11);
    }
    backup_t bk = {z, json, 1};
    if (rc == TG_OK) {
        rc = gb_for_each_edge(g, backup_edge, &bk);
    }
    if (rc == TG_OK) {
        rc = tg_buf_append(json, "]}", 2);
    }
    return rc ? rc : backup_feed(z, json, 1);
}

/* The backup is compressed into a temporary file and uploaded from there:
 * neither the JSON nor its compressed bytes are ever whole in memory. */
static void backup(build_t *b) {
    if (!tg_s3_enabled(b->ctx->cfg)) {
        return;
    }
    char key[128], err[512] = "";
    snprintf(key, sizeof(key), "graphs/%s.json.gz", b->version);
    tg_buf_t json;
    tg_buf_init(&json);
    FILE *gz = tg_tmpfile(err, sizeof(err));
    tg_gzip_t *z = gz ? tg_gzip_new(gz) : NULL;
    int rc = !gz ? TG_ERR_IO : z ? backup_json(b, z, &json) : TG_ERR_NOMEM;
    tg_buf_free(&json);
    if (z) {
        rc = rc ? (tg_gzip_free(z), rc) : tg_gzip_finish(z);
    }
    if (rc && !*err) {
        snprintf(err, sizeof(err), "%s",
                 rc == TG_ERR_IO ? "cannot write a temporary file (is TMPDIR full?)"
                                 : "out of memory");
    }
    long gzlen = gz ? ftell(gz) : 0;
    if (rc == TG_OK) {
        rc = tg_s3_put_file(b->ctx->cfg, key, gz, "application/gzip", err, sizeof(err));
    }
    if (gz) {
        fclose(gz);
    }
    if (rc == TG_OK) {
        tg_info("Graph %s backed up to %s (%ld bytes)", b->version, key, gzlen);
        cJSON_AddStringToObject(b->res->details, "backupKey", key);
    } else {
        tg_warn("Backup of graph %s skipped: %s", b->version, err);
    }
}

/* ---- the step ---------------------------------------------------------- */

static void build_graph(build_t *b) {
    if (load_and_build(b)) {
        return;
    }
    if (b->report.errors) {
        reject_invalid(b);
        return;
    }
    if (tg_worker_deadline_check(b->ctx, b->res, "after validating, before publishing") ||
        publish_graph(b)) {
        return;
    }
    retain_versions(b);
    const gb_graph_t *g = b->graph;
    result_graph(b, "success", b->version, (long long)g->n_nodes, (long long)gb_edge_count(g),
                 gb_report_json(&b->report));
    cJSON_AddNumberToObject(b->res->details, "redisBytes", (double)b->redis_bytes);
    cJSON_AddNumberToObject(b->res->details, "transferEdges", (double)g->transfer_edges);
    b->res->added = (long long)(g->n_nodes + gb_edge_count(g));
    char left_out[96] = "";
    if (g->isolated_stops) {
        snprintf(left_out, sizeof(left_out), "; %zu isolated stop%s left out", g->isolated_stops,
                 g->isolated_stops == 1 ? "" : "s");
    }
    snprintf(b->res->message, sizeof(b->res->message),
             "Graph built successfully: %zu nodes, %zu edges (%s, dataset %lld)%s", g->n_nodes,
             gb_edge_count(g), b->version, (long long)b->dataset, left_out);
    backup(b);
}

static void graph_step(tg_worker_ctx_t *ctx, const tg_envelope_t *in, tg_step_result_t *res) {
    build_t b = {.ctx = ctx, .in = in, .res = res, .t0 = tg_mono_ms(), .redis_bytes = -1};
    const char *only = tg_json_str(in->payload, "only");
    if (only && strcmp(only, TG_WORKER_GRAPH) != 0) {
        res->status = TG_STEP_NOTHING;
        snprintf(res->message, sizeof(res->message), "Single-worker run of %s: nothing to do",
                 only);
        return;
    }
    if (resolve_dataset(&b)) {
        return;
    }
    if (!strcmp(in->schema, TG_SCHEMA_HANDOVER)) {
        tg_info("Building the graph of dataset %lld: %s", (long long)b.dataset,
                tg_json_str(in->payload, "message"));
    } else {
        tg_info("Building the graph of dataset %lld (virtual entities: %s)", (long long)b.dataset,
                tg_json_str(in->payload, "status") ? tg_json_str(in->payload, "status")
                                                   : "unknown");
    }
    if (recover_leftovers(&b) || (!tg_json_bool(in->payload, "force", 0) && already_built(&b))) {
        return;
    }
    build_graph(&b);
    gb_report_free(&b.report);
    gb_graph_free(b.graph);
}

/* ---- settings ---------------------------------------------------------- */

static int graph_init(tg_worker_ctx_t *ctx, char *errstr, size_t errlen) {
    settings_t *set = calloc(1, sizeof(*set));
    if (!set) {
        return tg_fail(TG_ERR_NOMEM, errstr, errlen, "out of memory");
    }
    ctx->state = set; /* graph_fini frees it, whatever follows */
    int rc = tg_env_double("GRAPH_TRANSFER_MINUTES", 15, 0, 1440, &set->transfer_minutes, errstr,
                           errlen);
    if (rc == TG_OK) {
        rc = tg_env_long("GRAPH_TRANSFER_MAX_STOPS", 30, 2, 1000, &set->transfer_max_stops, errstr,
                         errlen);
    }
    if (rc == TG_OK) {
        rc = tg_env_long("GRAPH_KEEP_VERSIONS", 3, 1, 100, &set->keep_versions, errstr, errlen);
    }
#ifdef TG_FAULT_HOOKS /* test builds only (CMake option TG_FAULT_HOOKS; off in the image) */
    if (rc == TG_OK) {
        rc = tg_env_long("GRAPH_FAIL_AFTER_KEYS", 0, 0, 1L << 30, &set->fail_after_keys, errstr,
                         errlen);
    }
    if (rc == TG_OK && set->fail_after_keys) {
        tg_warn("GRAPH_FAIL_AFTER_KEYS=%ld: test-only fault injection is on", set->fail_after_keys);
    }
#endif
    return rc;
}

static void graph_fini(tg_worker_ctx_t *ctx) {
    free(ctx->state);
}

int main(void) {
    static const tg_worker_def_t def = {
        .worker_id = TG_WORKER_GRAPH,
        .worker_name = "Graph Builder Worker",
        .version = "1.0.0",
        .input_topic = TG_TOPIC_VIRTUAL_DONE,
        .input_schema = TG_SCHEMA_VIRTUAL_DONE,
        .output_topic = TG_TOPIC_GRAPH_DONE,
        .output_schema = TG_SCHEMA_GRAPH_DONE,
        .default_port = 8083,
        .needs = TG_NEED_PG | TG_NEED_REDIS,
        .step_timeout_s = TG_TIMEOUT_S_GRAPH,
        .init = graph_init,
        .step = graph_step,
        .fini = graph_fini,
    };
    return tg_worker_main(&def);
}
