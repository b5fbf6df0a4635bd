/* The events the orchestrator produces itself, and starting a run. */
#ifndef ORCH_EVENTS_H
#define ORCH_EVENTS_H

#include "orchestrator.h"
#include "runs.h"
#include "tg/envelope.h"
#include "tg/kafka.h"

/* ---- events the orchestrator produces (events.c) ----------------------- */

/* Learns every pipeline topic's leader before the first send (see
 * tg_producer_prepare): the first run after start-up starts at once. */
void events_prepare(tg_producer_t *p, const orch_conf_t *conf);

/* Sends one message to base_topic (prefixed here) keyed by key, with an
 * x-worker: orchestrator header plus extra headers. */
int events_send(tg_producer_t *p, const orch_conf_t *conf, const char *base_topic, const char *key,
                const char *value, size_t len, const tg_header_t *extra, size_t nextra,
                char *errstr, size_t errlen);

/* Builds the input event that starts `worker` for a new run: a trigger for
 * worker 1, a pipeline.handover (reason single-worker) of dataset_version for
 * a later worker. Caller destroys. */
tg_envelope_t *events_start(const orch_conf_t *conf, const orch_worker_t *worker,
                            const char *trigger, int force, const char *only_worker,
                            int64_t dataset_version, const char *source_id);

/* The pipeline.handover (reason step-failed) that starts `next` after the
 * non-critical worker `failed` gave up on `input` after `attempts` attempts
 * with `error`. Caller destroys. */
tg_envelope_t *events_step_failed(const orch_worker_t *failed, const orch_worker_t *next,
                                  const tg_envelope_t *input, int attempts, const char *error);

/* Parses an envelope JSON and sets its attempt (and payload.force when force
 * is 1). Returns the serialised result (caller frees) or NULL. */
char *events_with_attempt(const char *json, int attempt, int force);

/* Starts a run: inserts it as queued (runs_create) and produces the input
 * of its first worker (worker 1, or only_worker for a single-worker run).
 * When the produce fails the run is marked failed and the error returned. */
typedef struct {
    const char *trigger;
    int force;
    const char *only_worker;     /* NULL: the full pipeline */
    const char *idempotency_key; /* NULL: none */
    const char *source_id;
} orch_start_t;

int orch_start_run(PGconn *pg, tg_producer_t *p, const orch_conf_t *conf, const orch_start_t *req,
                   orch_create_outcome_t *outcome, char run_id[TG_ID_LEN], char *errstr,
                   size_t errlen);

#endif
