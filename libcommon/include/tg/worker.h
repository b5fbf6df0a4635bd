/* The loop every pipeline worker runs: consume the input topic in a group,
 * parse the envelope (malformed events go to the dead-letter topic), run the
 * worker's step, emit its completion event to the next topic or a step.failed
 * event for the orchestrator, and only then store the input's offset
 * (at-least-once). A worker's main() fills a tg_worker_def_t and calls
 * tg_worker_main(). */
#ifndef TG_WORKER_H
#define TG_WORKER_H

#include <stdint.h>
#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include "tg/config.h"
#include "tg/envelope.h"
#include "tg/kafka.h"

typedef struct tg_worker_ctx_s {
    const tg_config_t *cfg;
    PGconn *pg;             /* connected when the def needs TG_NEED_PG */
    redisContext *redis;    /* connected when the def needs TG_NEED_REDIS */
    void *state;            /* the worker's own, set by init */
    volatile int stop;      /* non-zero once shutdown was requested */
} tg_worker_ctx_t;

/* What a step reports. The loop turns it into the outgoing event. */
typedef struct {
    int err;               /* TG_OK, or a tg_err_t (retryable or not) */
    /* on success: "success", "no_changes", "skipped", or TG_STEP_NOTHING
     * when the event asked for nothing of this worker and nothing follows
     * (no completion event is sent; the input is marked done) */
    const char *status;
    char message[1024];    /* "Graph built successfully: 2000 nodes, 15000 edges" or the error */
    int64_t dataset_version; /* carried on in the outgoing envelope (0 = keep input's) */
    long long added, updated, deleted;
    cJSON *details;        /* optional extra payload fields; the loop takes ownership */
} tg_step_result_t;

typedef struct {
    const char *worker_id;     /* "odata-sync-worker" */
    const char *worker_name;   /* "OData Synchronization Worker" */
    const char *version;       /* "1.0.0" */
    const char *input_topic;   /* base names, see tg/topics.h */
    const char *input_schema;  /* expected schema of input events */
    const char *output_topic;
    const char *output_schema;
    int default_port;          /* HTTP_PORT default */
    unsigned needs;            /* TG_NEED_* beyond Kafka */
    /* Optional: called once after connecting; returns TG_OK or fails start-up. */
    int (*init)(tg_worker_ctx_t *ctx, char *errstr, size_t errlen);
    /* Does the work for one input event. Must not store anything partially:
     * on failure everything it wrote is rolled back. */
    void (*step)(tg_worker_ctx_t *ctx, const tg_envelope_t *in, tg_step_result_t *res);
    /* Optional: frees ctx->state. */
    void (*fini)(tg_worker_ctx_t *ctx);
} tg_worker_def_t;

#define TG_STEP_NOTHING "nothing"

/* Sets res->err and res->message (printf-style) and returns err. */
int tg_step_fail(tg_step_result_t *res, int err, const char *fmt, ...) TG_PRINTF(3, 4);

/* Runs the service until SIGTERM/SIGINT. Returns the process exit code:
 * 0 after a clean shutdown, 1 when configuration or a connection failed at
 * start-up (one line on stderr says which). */
int tg_worker_main(const tg_worker_def_t *def);

#endif
