/* Loading a graph version from Redis in the specification's key format, and
 * the snapshot being served: a reference-counted pointer swapped under a
 * mutex, so a request finishes on the version it started with. */
#include "route_api.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "tg/envelope.h"
#include "tg/redis.h"

int rg_redis_active(redisContext *c, char *out, size_t outlen, char *errstr, size_t errlen) {
    const char *argv[] = {"GET", "graph:version"};
    redisReply *r;
    int rc = tg_redis_cmd(c, &r, errstr, errlen, 2, argv, NULL);
    if (rc) {
        return rc;
    }
    snprintf(out, outlen, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
    return TG_OK;
}

static int add_node(rg_builder_t *b, const char *id, const char *json, const char *version,
                    char *errstr, size_t errlen) {
    cJSON *o = cJSON_Parse(json);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return tg_fail(TG_ERR_INVALID, errstr, errlen, "graph:%s:node:%s: not a JSON object",
                       version, id);
    }
    int rc = rg_builder_add_node(b, id, tg_json_str(o, "stopName"), tg_json_str(o, "cityName"),
                                 tg_json_num(o, "latitude", NAN), tg_json_num(o, "longitude", NAN));
    cJSON_Delete(o);
    return rc ? tg_fail(rc, errstr, errlen, "graph %s: out of memory", version) : TG_OK;
}

static int add_neighbors(rg_builder_t *b, const char *id, const char *json, const char *version,
                         char *errstr, size_t errlen) {
    cJSON *a = cJSON_Parse(json);
    if (!cJSON_IsArray(a)) {
        cJSON_Delete(a);
        return tg_fail(TG_ERR_INVALID, errstr, errlen, "graph:%s:neighbors:%s: not a JSON array",
                       version, id);
    }
    int rc = TG_OK;
    const cJSON *e;
    cJSON_ArrayForEach(e, a) {
        const char *to = tg_json_str(e, "toStopId");
        if (!to) {
            rc = tg_fail(TG_ERR_INVALID, errstr, errlen,
                         "graph:%s:neighbors:%s: an edge without toStopId", version, id);
            break;
        }
        double km = tg_json_num(e, "distance", NAN), weight = tg_json_num(e, "weight", NAN);
        /* the key names the edge's start: fromStopId is redundant there */
        if ((rc =
                 rg_builder_add_edge(b, id, to, weight, isnan(km) ? 0 : km,
                                     tg_json_str(e, "transportType"), tg_json_str(e, "routeId")))) {
            rc = tg_fail(rc, errstr, errlen, "graph %s: out of memory", version);
            break;
        }
    }
    cJSON_Delete(a);
    return rc;
}

/* The stop ids of the version (SMEMBERS graph:{v}:nodes). */
static redisReply *load_ids(redisContext *c, const char *version, int *rc, char *errstr,
                            size_t errlen) {
    char key[160];
    snprintf(key, sizeof key, "graph:%s:nodes", version);
    const char *argv[] = {"SMEMBERS", key};
    redisReply *r = NULL;
    if ((*rc = tg_redis_cmd(c, &r, errstr, errlen, 2, argv, NULL)) != TG_OK) {
        return NULL;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
        freeReplyObject(r);
        *rc = tg_fail(TG_ERR_NOTFOUND, errstr, errlen, "%s: missing or empty", key);
        return NULL;
    }
    return r;
}

/* Pipelined GETs of every node and neighbors key, a batch at a time so the
 * replies waiting in memory stay bounded. */
#define LOAD_BATCH 1000

static int load_batch(redisContext *c, rg_builder_t *b, const char *version, redisReply *ids,
                      size_t from, size_t to, char *errstr, size_t errlen) {
    for (size_t i = from; i < to; i++) {
        const char *id = ids->element[i]->str;
        if (redisAppendCommand(c, "GET graph:%s:node:%s", version, id) != REDIS_OK ||
            redisAppendCommand(c, "GET graph:%s:neighbors:%s", version, id) != REDIS_OK) {
            return tg_fail(TG_ERR_REDIS, errstr, errlen, "Redis: %s", c->errstr);
        }
    }
    int rc = TG_OK;
    for (size_t i = from; i < to; i++) {
        for (int kind = 0; kind < 2; kind++) {
            void *p = NULL;
            if (redisGetReply(c, &p) != REDIS_OK || !p) { /* the context is dead */
                return tg_fail(TG_ERR_REDIS, errstr, errlen, "Redis: %s",
                               c->err ? c->errstr : "no reply");
            }
            redisReply *r = p;
            const char *id = ids->element[i]->str;
            /* keep reading every reply even after a failure: the pipeline
             * must be drained for the connection to stay usable */
            if (rc == TG_OK && r->type != REDIS_REPLY_STRING) {
                rc = tg_fail(TG_ERR_NOTFOUND, errstr, errlen,
                             "graph:%s:%s:%s: missing (version deleted while loading?)", version,
                             kind ? "neighbors" : "node", id);
            } else if (rc == TG_OK && kind == 0) {
                rc = add_node(b, id, r->str, version, errstr, errlen);
            } else if (rc == TG_OK) {
                rc = add_neighbors(b, id, r->str, version, errstr, errlen);
            }
            freeReplyObject(r);
        }
    }
    return rc;
}

rg_graph_t *rg_redis_load(redisContext *c, const char *version, int *rc, char *errstr,
                          size_t errlen) {
    int64_t t0 = tg_mono_ms();
    redisReply *ids = load_ids(c, version, rc, errstr, errlen);
    if (!ids) {
        return NULL;
    }
    rg_builder_t *b = rg_builder_new();
    *rc = b ? TG_OK : tg_fail(TG_ERR_NOMEM, errstr, errlen, "graph %s: out of memory", version);
    for (size_t i = 0; *rc == TG_OK && i < ids->elements; i += LOAD_BATCH) {
        size_t end = i + LOAD_BATCH < ids->elements ? i + LOAD_BATCH : ids->elements;
        *rc = load_batch(c, b, version, ids, i, end, errstr, errlen);
    }
    freeReplyObject(ids);
    if (*rc != TG_OK) {
        rg_builder_free(b);
        return NULL;
    }
    rg_graph_t *g = rg_builder_finish(b, version, errstr, errlen);
    if (!g) {
        *rc = TG_ERR_INVALID;
        return NULL;
    }
    g->loaded_at_ms = tg_now_ms();
    g->load_ms = (double)(tg_mono_ms() - t0);
    return g;
}

/* ---- the served snapshot ---- */

static pthread_mutex_t served_lock = PTHREAD_MUTEX_INITIALIZER;
static rg_graph_t *served;

rg_graph_t *rg_acquire(void) {
    pthread_mutex_lock(&served_lock);
    rg_graph_t *g = served;
    if (g) {
        g->refs++;
    }
    pthread_mutex_unlock(&served_lock);
    return g;
}

void rg_release(rg_graph_t *g) {
    if (!g) {
        return;
    }
    pthread_mutex_lock(&served_lock);
    int last = --g->refs == 0;
    pthread_mutex_unlock(&served_lock);
    if (last) { /* freeing 100k edges outside the lock: readers never wait on it */
        rg_graph_free(g);
    }
}

void rg_swap(rg_graph_t *g) {
    pthread_mutex_lock(&served_lock);
    rg_graph_t *old = served;
    served = g;
    pthread_mutex_unlock(&served_lock);
    rg_release(old);
}
