/* Layer 3 (service).
 * The loop every pipeline worker runs: consume the input topic in a group,
 * parse the envelope (malformed events go to the dead-letter topic), run the
 * worker's step, emit its completion event to the next topic or a step.failed
 * event for the orchestrator, and only then store the input's offset
 * (at-least-once). A worker's main() fills a tg_worker_def_t and calls
 * tg_worker_main().
 *
 * Every step runs against a deadline: now + the worker's step timeout
 * (STEP_TIMEOUT_S, else the orchestrator's WORKER_TIMEOUT_S_<n> of this
 * worker, else the def's step_timeout_s), or the input's
 * x-deadline header (epoch ms) when that comes first. The loop sets
 * PostgreSQL's statement_timeout on ctx->pg to the time left at the start,
 * so a stuck query is cancelled (each statement gets that budget: a step of
 * many long statements checks the deadline between them); steps check the
 * deadline where else they spend time. A
 * retryable failure once the deadline passed is reported as
 * "timed out after N s: <the step's error>" (TG_ERR_TIMEOUT), and the input's
 * offset is stored so the partition is free for the orchestrator's retry. */
#ifndef TG_WORKER_H
#define TG_WORKER_H

#include "tg/config.h"
#include "tg/envelope.h"
#include "tg/kafka.h"
#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <stdint.h>

typedef struct tg_worker_ctx_s {
    const tg_config_t *cfg;
    PGconn *pg;          /* connected when the def needs TG_NEED_PG */
    redisContext *redis; /* connected when the def needs TG_NEED_REDIS */
    void *state;         /* the worker's own, set by init */
    volatile int stop;   /* non-zero once shutdown was requested */
    int64_t started_ms;  /* epoch ms when the current step started */
    int64_t deadline_ms; /* epoch ms by which the current step must end */
} tg_worker_ctx_t;

/* What a step reports. The loop turns it into the outgoing event. */
typedef struct {
    int err; /* TG_OK, or a tg_err_t (retryable or not) */
    /* on success: "success", "no_changes", "skipped", or TG_STEP_NOTHING
     * when the event asked for nothing of this worker and nothing follows
     * (no completion event is sent; the input is marked done) */
    const char *status;
    char message[1024];      /* "Graph built successfully: 2000 nodes, 15000 edges" or the error */
    int64_t dataset_version; /* carried on in the outgoing envelope (0 = keep input's) */
    long long added, updated, deleted;
    cJSON *details; /* optional extra payload fields; the loop takes ownership */
} tg_step_result_t;

typedef struct {
    const char *worker_id;    /* "odata-sync-worker" */
    const char *worker_name;  /* "OData Synchronization Worker" */
    const char *version;      /* "1.0.0" */
    const char *input_topic;  /* base names, see tg/topics.h */
    const char *input_schema; /* expected schema of input events */
    const char *output_topic;
    const char *output_schema;
    int default_port; /* HTTP_PORT default */
    unsigned needs;   /* TG_NEED_* beyond Kafka */
    /* The specification's step timeout (TG_TIMEOUT_S_* of tg/topics.h), the
     * default of STEP_TIMEOUT_S and WORKER_TIMEOUT_S_<n> (the orchestrator's
     * setting, read by the worker too). 0 = the value for worker_id. */
    int step_timeout_s;
    /* Optional: called once after connecting; returns TG_OK or fails start-up.
     * Who frees the state, one rule for every worker: init stores what it
     * allocates in ctx->state as soon as it has it and never frees it, even
     * when it fails; fini frees whatever ctx->state holds, however far init
     * got (calloc'd state reads as "nothing yet"). The loop calls fini
     * whenever ctx->state is set: at shutdown, or at once when init fails. */
    int (*init)(tg_worker_ctx_t *ctx, char *errstr, size_t errlen);
    /* Does the work for one input event. Must not store anything partially:
     * on failure everything it wrote is rolled back. */
    void (*step)(tg_worker_ctx_t *ctx, const tg_envelope_t *in, tg_step_result_t *res);
    /* Optional: frees ctx->state (see init). */
    void (*fini)(tg_worker_ctx_t *ctx);
} tg_worker_def_t;

#define TG_STEP_NOTHING "nothing"

/* Runs def->init on ctx; when it fails, ctx->state is released at once
 * (tg_worker_state_free) and init's error returned. */
int tg_worker_state_init(const tg_worker_def_t *def, tg_worker_ctx_t *ctx, char *errstr,
                         size_t errlen);

/* Calls def->fini when ctx->state is set, then clears ctx->state. */
void tg_worker_state_free(const tg_worker_def_t *def, tg_worker_ctx_t *ctx);

/* Sets res->err and res->message (printf-style) and returns err. */
int tg_step_fail(tg_step_result_t *res, int err, const char *fmt, ...) TG_PRINTF(3, 4);

/* Milliseconds the current step has left: 0 once its deadline passed,
 * INT64_MAX outside a step (no deadline). */
int64_t tg_worker_remaining_ms(const tg_worker_ctx_t *ctx);

/* Non-zero once the current step's deadline passed. */
int tg_worker_deadline_passed(const tg_worker_ctx_t *ctx);

/* For a step between two phases: when the deadline passed, fails res with
 * TG_ERR_TIMEOUT "timed out after N s: <where>" and returns that error;
 * returns TG_OK otherwise. */
int tg_worker_deadline_check(const tg_worker_ctx_t *ctx, tg_step_result_t *res, const char *where);

/* ---- deadline arithmetic (pure, no clock of its own) -------------------- */

/* The deadline of a step started at now_ms with timeout_s: now + timeout,
 * or event_deadline_ms when that is earlier (0 = the event carries none). */
int64_t tg_deadline_pick(int64_t now_ms, long timeout_s, int64_t event_deadline_ms);

/* Milliseconds from now_ms to deadline_ms, never negative. */
int64_t tg_deadline_remaining_ms(int64_t deadline_ms, int64_t now_ms);

/* Parses an x-deadline header value (epoch milliseconds, digits only).
 * Returns TG_OK, or TG_ERR_INVALID and leaves *out alone. */
int tg_deadline_parse(const char *text, int64_t *out);

/* Whole seconds, rounded up, of a step's budget (deadline - started). */
long tg_deadline_budget_s(int64_t started_ms, int64_t deadline_ms);

/* Runs the service until SIGTERM/SIGINT. Returns the process exit code:
 * 0 after a clean shutdown, 1 when configuration or a connection failed at
 * start-up (one line on stderr says which). */
int tg_worker_main(const tg_worker_def_t *def);

#endif
