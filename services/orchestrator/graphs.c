/* Graph versions for operators: the kept versions (graphs table, with
 * whether their Redis keys are still there) and a rollback that switches
 * graph:version to an older version the way graph-builder switches to a new one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graphs.h"
#include "orchestrator.h"
#include "runs.h"
#include "tg/log.h"
#include "tg/pg.h"
#include "tg/redis.h"

#define GRAPH_KEY_VERSION "graph:version"
#define GRAPH_KEY_VERSIONS "graph:versions"

/* Checks every node key of the version and that it holds the node count
 * graphs recorded, then switches: readers never see a version with keys
 * missing. graph:versions gets it in front, so graph-builder's retention
 * keeps it. KEYS: graph:version, graph:{v}:nodes, graph:versions;
 * ARGV: v, expected node count, "graph:{v}:node:". */
static const char rollback_lua[] =
    "local n = redis.call('SCARD', KEYS[2]) "
    "if n == 0 or n ~= tonumber(ARGV[2]) then "
    "  return redis.error_reply('ERR ' .. KEYS[2] .. ' holds ' .. n .. ' of ' .. ARGV[2] .. "
    "' nodes') end "
    "local cursor = '0' "
    "repeat "
    "  local page = redis.call('SSCAN', KEYS[2], cursor, 'COUNT', 1000) "
    "  cursor = page[1] "
    "  for _, id in ipairs(page[2]) do "
    "    if redis.call('EXISTS', ARGV[3] .. id) == 0 then "
    "      return redis.error_reply('ERR ' .. ARGV[3] .. id .. ' missing') end "
    "  end "
    "until cursor == '0' "
    "local old = redis.call('GET', KEYS[1]) "
    "redis.call('SET', KEYS[1], ARGV[1]) "
    "redis.call('LREM', KEYS[3], 0, ARGV[1]) "
    "redis.call('LPUSH', KEYS[3], ARGV[1]) "
    "return old or ''";

redisContext *graphs_redis(const orch_conf_t *conf, char *errstr, size_t errlen) {
    if (!conf->redis_url || !*conf->redis_url) {
        tg_fail(TG_ERR_CONFIG, errstr, errlen,
                "REDIS_URL is not set: the orchestrator cannot read or switch graph versions");
        return NULL;
    }
    return tg_redis_connect(conf->redis_url, 2, errstr, errlen);
}

/* graph:version into out ("" when unset). */
static int current_version(redisContext *rc, char *out, size_t outlen, char *errstr,
                           size_t errlen) {
    const char *argv[] = {"GET", GRAPH_KEY_VERSION};
    redisReply *r;
    int err = tg_redis_cmd(rc, &r, errstr, errlen, 2, argv, NULL);
    if (err) {
        return err;
    }
    snprintf(out, outlen, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
    return TG_OK;
}

/* Adds keysPresent (graph:{v}:nodes exists) and active (graph:version names
 * it) to each item; without Redis both come from the table alone. */
static int annotate(redisContext *rc, cJSON *graphs, cJSON *out, char *errstr, size_t errlen) {
    char active[128] = "";
    int err = rc ? current_version(rc, active, sizeof active, errstr, errlen) : TG_OK;
    cJSON *g;
    cJSON_ArrayForEach(g, graphs) {
        const char *v = tg_json_str(g, "version");
        const char *status = tg_json_str(g, "status");
        if (!rc || err) {
            cJSON_AddBoolToObject(g, "active", status && !strcmp(status, "active"));
            cJSON_AddNullToObject(g, "keysPresent");
            continue;
        }
        char key[160];
        snprintf(key, sizeof key, "graph:%s:nodes", v ? v : "");
        const char *argv[] = {"EXISTS", key};
        redisReply *r;
        if ((err = tg_redis_cmd(rc, &r, errstr, errlen, 2, argv, NULL)) != TG_OK) {
            cJSON_AddBoolToObject(g, "active", status && !strcmp(status, "active"));
            cJSON_AddNullToObject(g, "keysPresent");
            continue;
        }
        cJSON_AddBoolToObject(g, "active", v && !strcmp(v, active));
        cJSON_AddBoolToObject(g, "keysPresent", r->type == REDIS_REPLY_INTEGER && r->integer == 1);
        freeReplyObject(r);
    }
    if (rc && !err) {
        cJSON_AddStringToObject(out, "activeVersion", active);
    } else {
        cJSON_AddNullToObject(out, "activeVersion");
    }
    return err;
}

cJSON *graphs_list(PGconn *pg, const orch_conf_t *conf, long limit, long offset, char *errstr,
                   size_t errlen) {
    char lim[24], off[24], rerr[256];
    snprintf(lim, sizeof lim, "%ld", limit);
    snprintf(off, sizeof off, "%ld", offset);
    const char *params[] = {lim, off};
    PGresult *res;
    if (tg_pg_exec(pg,
                   "SELECT json_build_object('version', g.version, 'status', g.status, "
                   "'datasetVersion', g.dataset_version, 'nodeCount', g.node_count, "
                   "'edgeCount', g.edge_count, 'buildMs', g.build_ms, "
                   "'redisBytes', g.redis_bytes, 'validation', g.validation, "
                   "'runId', g.run_id, 'error', g.error, "
                   "'createdAt', to_char(g.created_at AT TIME ZONE 'UTC', "
                   "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "
                   "'activatedAt', to_char(g.activated_at AT TIME ZONE 'UTC', "
                   "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')), count(*) OVER () "
                   "FROM graphs g ORDER BY g.created_at DESC, g.version DESC "
                   "LIMIT $1::int OFFSET $2::int",
                   2, params, &res, errstr, errlen) != TG_OK) {
        return NULL;
    }
    cJSON *out = cJSON_CreateObject(), *graphs = cJSON_CreateArray();
    cJSON_AddTrueToObject(out, "success");
    for (int i = 0; i < PQntuples(res); i++) {
        cJSON *g =
            tg_json_parse(PQgetvalue(res, i, 0), (size_t)PQgetlength(res, i, 0), TG_JSON_MAX_DEPTH);
        cJSON_AddItemToArray(graphs, g ? g : cJSON_CreateNull());
    }
    cJSON_AddItemToObject(out, "graphs", graphs);
    cJSON_AddNumberToObject(out, "count", PQntuples(res));
    cJSON_AddNumberToObject(out, "total", PQntuples(res) ? atof(PQgetvalue(res, 0, 1)) : 0);
    cJSON_AddNumberToObject(out, "limit", (double)limit);
    cJSON_AddNumberToObject(out, "offset", (double)offset);
    PQclear(res);
    /* Redis only adds to the answer: without it the table still answers. */
    redisContext *rc = graphs_redis(conf, rerr, sizeof rerr);
    if (annotate(rc, graphs, out, rerr, sizeof rerr) != TG_OK || !rc) {
        cJSON_AddStringToObject(out, "redisError", rerr);
    }
    if (rc) {
        redisFree(rc);
    }
    return out;
}

/* The graphs row of version: status, dataset and node count. */
static int graph_row(PGconn *pg, const char *version, char status[16], char dataset[24],
                     char nodes[24], char *errstr, size_t errlen) {
    const char *params[] = {version};
    PGresult *res;
    int rc = tg_pg_exec(pg,
                        "SELECT status, dataset_version, node_count FROM graphs "
                        "WHERE version = $1",
                        1, params, &res, errstr, errlen);
    if (rc) {
        return rc;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        return tg_fail(TG_ERR_NOTFOUND, errstr, errlen, "unknown graph version %s", version);
    }
    snprintf(status, 16, "%s", PQgetvalue(res, 0, 0));
    snprintf(dataset, 24, "%s", PQgetvalue(res, 0, 1));
    snprintf(nodes, 24, "%s", PQgetvalue(res, 0, 2));
    PQclear(res);
    return TG_OK;
}

static int switch_version(redisContext *rc, const char *version, const char *nodes, char *previous,
                          size_t prevlen, char *errstr, size_t errlen) {
    char nodes_key[160], node_prefix[160];
    snprintf(nodes_key, sizeof nodes_key, "graph:%s:nodes", version);
    snprintf(node_prefix, sizeof node_prefix, "graph:%s:node:", version);
    const char *argv[] = {"EVAL",     rollback_lua,       "3",     GRAPH_KEY_VERSION,
                          nodes_key,  GRAPH_KEY_VERSIONS, version, nodes,
                          node_prefix};
    redisReply *r;
    int err = tg_redis_cmd(rc, &r, errstr, errlen, 9, argv, NULL);
    if (err) {
        return err;
    }
    snprintf(previous, prevlen, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
    return TG_OK;
}

int graphs_activate(PGconn *pg, const orch_conf_t *conf, const char *version,
                    graphs_activation_t *out, char *errstr, size_t errlen) {
    char status[16], dataset[24], nodes[24];
    memset(out, 0, sizeof *out);
    int rc = graph_row(pg, version, status, dataset, nodes, errstr, errlen);
    if (rc) {
        return rc;
    }
    if (strcmp(status, "active") && strcmp(status, "retired")) {
        return tg_fail(TG_ERR_INVALID, errstr, errlen,
                       "graph %s is %s: only a published version can be activated", version,
                       status);
    }
    if ((rc = runs_active(pg, ORCH_SOURCE_DEFAULT, out->active_run, errstr, errlen))) {
        return rc;
    }
    if (out->active_run[0]) {
        /* Its graph-builder step would switch graph:version right after us. */
        return tg_fail(TG_ERR_INVALID, errstr, errlen, "run %s is active", out->active_run);
    }
    redisContext *redis = graphs_redis(conf, errstr, errlen);
    if (!redis) {
        return conf->redis_url && *conf->redis_url ? TG_ERR_UNAVAILABLE : TG_ERR_CONFIG;
    }
    /* graphs first (uncommitted), then graph:version, then the commit, as
     * graph-builder does: a failed switch leaves the table as it was. */
    rc = runs_record_rollback(pg, version, strtoll(dataset, NULL, 10), out->run_id, errstr, errlen);
    if (!rc) {
        rc = switch_version(redis, version, nodes, out->previous, sizeof out->previous, errstr,
                            errlen);
        if (rc) {
            tg_pg_rollback(pg);
        }
    }
    redisFree(redis);
    char err[256];
    if (!rc && (rc = tg_pg_commit(pg, err, sizeof err)) != TG_OK) {
        tg_pg_rollback(pg);
        return tg_fail(rc, errstr, errlen, "graph %s is live but not recorded: %s", version, err);
    }
    return rc;
}
