/* route-api: answers route questions from the graph graph-builder publishes
 * in Redis. Data flow: load the active version → serve it from memory →
 * follow graph:version (a PUBLISH on graph:switched, and a periodic check as
 * the fallback) → load the new version beside the old one → swap. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "route_api.h"
#include "tg/config.h"
#include "tg/envelope.h"
#include "tg/log.h"
#include "tg/metrics.h"
#include "tg/redis.h"
#include "tg/service.h"

#define SWITCH_CHANNEL "graph:switched" /* proto/redis-channels.md */
#define RECONNECT_MS 1000
#define ROUTE_API_PORT 8084 /* HTTP_PORT's default */

typedef struct {
    const tg_config_t *cfg;
    tg_service_t *svc;
    long refresh_ms;
    redisContext *db;  /* GET graph:version and the loads */
    redisContext *sub; /* subscribed to SWITCH_CHANNEL: it can run nothing else */
    int64_t next_check_ms, next_connect_ms;
    char served[64]; /* the version being served, "" before the first load */
    char failed[64]; /* a version that failed to load, not retried until it changes */
} follower_t;

static void redis_state(follower_t *f, int ok, const char *why) {
    char detail[600];
    snprintf(detail, sizeof detail, "%s; serving %s from memory", why,
             f->served[0] ? f->served : "nothing");
    tg_service_set_dep_soft(f->svc, "redis", ok, ok ? "ok" : detail);
    tg_metric_set("route_api_redis_up", "1 when Redis answers, 0 while serving from memory", "",
                  ok);
}

static void drop_redis(follower_t *f, const char *reason) {
    char why[256]; /* reason may be a context's errstr, freed below */
    snprintf(why, sizeof why, "%s", reason);
    if (f->db || f->sub) {
        tg_warn("Redis lost (%s): answering from %s", why, f->served[0] ? f->served : "nothing");
    }
    redisFree(f->db);
    redisFree(f->sub);
    f->db = f->sub = NULL;
    f->next_connect_ms = tg_mono_ms() + RECONNECT_MS;
    redis_state(f, 0, why);
}

static int subscribe(redisContext *c, char *errstr, size_t errlen) {
    redisReply *r = redisCommand(c, "SUBSCRIBE %s", SWITCH_CHANNEL);
    if (!r) {
        return tg_fail(TG_ERR_REDIS, errstr, errlen, "Redis: %s", c->errstr);
    }
    int ok = r->type == REDIS_REPLY_ARRAY;
    freeReplyObject(r);
    return ok ? TG_OK
              : tg_fail(TG_ERR_REDIS, errstr, errlen, "SUBSCRIBE %s refused", SWITCH_CHANNEL);
}

static int connect_redis(follower_t *f) {
    char err[512];
    f->db = tg_redis_connect(f->cfg->redis_url, 1, err, sizeof err);
    f->sub = f->db ? tg_redis_connect(f->cfg->redis_url, 1, err, sizeof err) : NULL;
    if (!f->sub || subscribe(f->sub, err, sizeof err) != TG_OK) {
        drop_redis(f, err);
        return TG_ERR_UNAVAILABLE;
    }
    redis_state(f, 1, "ok");
    f->next_check_ms = 0; /* a switch may have been missed while away */
    return TG_OK;
}

/* Waits up to 100 ms for a switch announcement. 1: one came, 0: none,
 * negative: the subscription is dead. */
static int wait_switch(follower_t *f) {
    void *msg = NULL;
    if (redisGetReplyFromReader(f->sub, &msg) != REDIS_OK) {
        return TG_ERR_REDIS;
    }
    if (!msg) {
        struct pollfd pfd = {.fd = f->sub->fd, .events = POLLIN};
        if (poll(&pfd, 1, 100) <= 0) {
            return 0;
        }
        if (redisBufferRead(f->sub) != REDIS_OK ||
            redisGetReplyFromReader(f->sub, &msg) != REDIS_OK) {
            return TG_ERR_REDIS;
        }
    }
    int announced = msg != NULL;
    freeReplyObject(msg); /* the message names the version; GET graph:version decides */
    return announced;
}

static void graph_metrics(const rg_graph_t *g) {
    tg_metric_set("route_api_graph_nodes", "Stops of the served graph", "", (double)g->nnodes);
    tg_metric_set("route_api_graph_edges", "Edges of the served graph", "", (double)g->nedges);
    tg_metric_set("route_api_graph_load_seconds", "Time the served graph took to load", "",
                  g->load_ms / 1000);
    tg_metric_set("route_api_graph_loaded_timestamp_seconds", "When the served graph was loaded",
                  "", (double)g->loaded_at_ms / 1000);
    tg_metric_add("route_api_graph_swaps_total", "Versions loaded and swapped in", "", 1);
}

/* graph-builder names versions graph-v<epoch-ms>: their age is how stale the
 * answers are. */
static void version_age_metric(const follower_t *f) {
    long long built_ms;
    if (sscanf(f->served, "graph-v%lld", &built_ms) == 1) {
        tg_metric_set("route_api_graph_version_age_seconds",
                      "Seconds since the served version was built", "",
                      (double)(tg_now_ms() - built_ms) / 1000);
    }
}

/* Reads graph:version and, when it moved, loads the new version beside the
 * served one and swaps it in. */
static void check_version(follower_t *f) {
    char active[64], err[512];
    int rc = rg_redis_active(f->db, active, sizeof active, err, sizeof err);
    if (rc != TG_OK) {
        drop_redis(f, err);
        return;
    }
    if (!active[0] || !strcmp(active, f->served) || !strcmp(active, f->failed)) {
        return;
    }
    rg_graph_t *g = rg_redis_load(f->db, active, &rc, err, sizeof err);
    if (!g) {
        tg_warn("graph %s not loaded, still serving %s: %s", active,
                f->served[0] ? f->served : "nothing", err);
        if (rc == TG_ERR_REDIS) {
            drop_redis(f, err);
        } else if (rc == TG_ERR_INVALID) { /* a broken version stays broken */
            snprintf(f->failed, sizeof f->failed, "%s", active);
        }
        /* deleted while loading: a newer one is due, announced or not */
        f->next_check_ms = tg_mono_ms() + 500;
        return;
    }
    tg_info("serving graph %s (%zu stops, %zu edges, loaded in %.0f ms), was %s", g->version,
            g->nnodes, g->nedges, g->load_ms, f->served[0] ? f->served : "nothing");
    snprintf(f->served, sizeof f->served, "%s", g->version);
    graph_metrics(g);
    rg_swap(g);
    tg_service_set_dep(f->svc, "graph", 1, "ok");
}

static void follow_step(follower_t *f) {
    if (!f->db && (tg_mono_ms() < f->next_connect_ms || connect_redis(f) != TG_OK)) {
        poll(NULL, 0, 100); /* the loop sees the shutdown flag within 100 ms */
        return;
    }
    int announced = wait_switch(f);
    if (announced < 0) {
        drop_redis(f, f->sub->err ? f->sub->errstr : "subscription lost");
        return;
    }
    if (announced || tg_mono_ms() >= f->next_check_ms) {
        f->next_check_ms = tg_mono_ms() + f->refresh_ms;
        check_version(f);
    }
    version_age_metric(f);
}

int main(void) {
    char err[512];
    tg_config_t cfg;
    tg_signals_install();
    if (tg_config_load(&cfg, "route-api", TG_NEED_REDIS, ROUTE_API_PORT, err, sizeof err) !=
        TG_OK) {
        fprintf(stderr, "route-api: %s\n", err);
        return 2;
    }
    tg_log_init(cfg.service, cfg.log_level);
    follower_t f = {.cfg = &cfg};
    if (tg_env_long("ROUTE_API_REFRESH_MS", 5000, 100, 3600000, &f.refresh_ms, err, sizeof err)) {
        tg_error("%s", err);
        return 2;
    }
    f.svc = tg_service_start(&cfg, "1.0.0", err, sizeof err);
    if (!f.svc) {
        tg_error("%s", err);
        return 1;
    }
    tg_service_set_dep(f.svc, "graph", 0, "no graph loaded yet");
    api_register(tg_service_http(f.svc));
    tg_info("route-api listening on %d, following graph:version (every %ld ms and on %s)",
            cfg.http_port, f.refresh_ms, SWITCH_CHANNEL);
    while (!tg_shutdown_requested) {
        follow_step(&f);
    }
    tg_info("route-api stopping");
    tg_service_stop(f.svc); /* no request runs after this: the graph can go */
    rg_swap(NULL);
    redisFree(f.db);
    redisFree(f.sub);
    return 0;
}
