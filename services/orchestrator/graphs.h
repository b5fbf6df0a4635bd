/* Graph versions for the API: the kept versions and the rollback. */
#ifndef ORCH_GRAPHS_H
#define ORCH_GRAPHS_H

#include "orchestrator.h"
#include "tg/redis.h"

/* ---- graph versions (graphs.c) ----------------------------------------- */

/* A connection to REDIS_URL, or NULL with errstr (also when it is unset).
 * The caller frees it with redisFree(). */
redisContext *graphs_redis(const orch_conf_t *conf, char *errstr, size_t errlen);

/* GET /api/v1/graphs: graphs rows newest first, each with active and
 * keysPresent from Redis (null without it). Caller deletes; NULL with errstr
 * when PostgreSQL failed. */
cJSON *graphs_list(PGconn *pg, const orch_conf_t *conf, long limit, long offset, char *errstr,
                   size_t errlen);

typedef struct {
    char run_id[TG_ID_LEN];     /* the run that records the rollback */
    char previous[128];         /* what graph:version named before */
    char active_run[TG_ID_LEN]; /* set when refused because a run is active */
} graphs_activation_t;

/* Switches graph:version to a kept version after checking its keys in the
 * same Lua script, recording it in graphs and as a run. TG_ERR_NOTFOUND: no
 * such version; TG_ERR_INVALID: not published, or a run is active;
 * TG_ERR_CONFIG: REDIS_URL unset; TG_ERR_UNAVAILABLE: Redis unreachable;
 * TG_ERR_REDIS: the script refused (keys missing). */
int graphs_activate(PGconn *pg, const orch_conf_t *conf, const char *version,
                    graphs_activation_t *out, char *errstr, size_t errlen);

#endif
