/* Run and step state in PostgreSQL (runs.c): creating, tracking, finishing,
 * cancelling and reopening runs. Every transition is one statement that says
 * from which states it may happen. */
#ifndef ORCH_RUNS_H
#define ORCH_RUNS_H

#include "tg/envelope.h"
#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    int exists;
    char status[16];
    char only_worker[48]; /* "" for a full pipeline run */
    char source_id[TG_ID_LEN];
} orch_run_t;

typedef enum { RUN_CREATED, RUN_EXISTING, RUN_CONFLICT } orch_create_outcome_t;

/* A run the orchestrator starts itself (API, schedule). */
typedef struct {
    const char *run_id;
    const char *source_id;
    const char *trigger;
    int force;
    const char *only_worker;     /* NULL for the full pipeline */
    const char *idempotency_key; /* NULL when none */
    const char *first_worker;    /* the step the run starts with */
    const char *input_json;      /* that step's input envelope */
} orch_new_run_t;

/* Bumped by every write of runs.c: the API's read cache is valid only for
 * the generation it was filled in. */
uint64_t runs_generation(void);

int runs_get(PGconn *pg, const char *run_id, orch_run_t *out, char *errstr, size_t errlen);

/* Inserts the run as queued with its first step, unless a run of the source
 * is active (RUN_CONFLICT, other_run_id names it) or the idempotency key is
 * known (RUN_EXISTING, other_run_id names that run). */
int runs_create(PGconn *pg, const orch_new_run_t *nr, orch_create_outcome_t *outcome,
                char other_run_id[TG_ID_LEN], char *errstr, size_t errlen);

/* A run seen on a topic: inserted as running when unknown, queued → running. */
int runs_track(PGconn *pg, const tg_envelope_t *env, const char *trigger, int force,
               const char *only_worker, char *errstr, size_t errlen);

/* The step is running attempt `attempt` with input_json, unless it already
 * ended or already reached that attempt (a late or duplicate event does not
 * reopen it, and a completion read after the failure of the attempt it
 * started does not start that attempt again: its retry comes next). */
int runs_step_start(PGconn *pg, const char *run_id, const char *worker, int attempt,
                    const char *input_json, char *errstr, size_t errlen);

/* The step ended with status (succeeded, skipped). */
int runs_step_done(PGconn *pg, const char *run_id, const char *worker, const char *status,
                   int attempt, int64_t execution_ms, const char *message,
                   const char *data_processed_json, char *errstr, size_t errlen);

/* A step as recorded. */
typedef struct {
    int exists;
    char status[16];
    int attempts;
    int64_t first_failed_ms; /* its first failure, or now when it has not failed */
    char *last_input;        /* owned: free() it; NULL when none */
} orch_step_t;

int runs_step_get(PGconn *pg, const char *run_id, const char *worker, orch_step_t *out,
                  char *errstr, size_t errlen);

/* The step failed (status retrying, failed or timed_out) at attempt;
 * first_failed_ms is recorded unless an earlier failure was. Returns
 * TG_ERR_NOTFOUND when it already ended or moved past attempt. */
int runs_step_failed(PGconn *pg, const char *run_id, const char *worker, const char *status,
                     int attempt, int64_t execution_ms, const char *error, int64_t first_failed_ms,
                     char *errstr, size_t errlen);

/* Ends an active run; *changed is 1 when it was active. dataset_version 0
 * and graph_version NULL keep what is recorded. */
int runs_finish(PGconn *pg, const char *run_id, const char *status, const char *message,
                int64_t dataset_version, const char *graph_version, int *changed, char *errstr,
                size_t errlen);

int runs_set_dataset(PGconn *pg, const char *run_id, int64_t dataset_version, char *errstr,
                     size_t errlen);

/* The active run of source into out ("" when none). */
int runs_active(PGconn *pg, const char *source_id, char out[TG_ID_LEN], char *errstr,
                size_t errlen);

/* The newest dataset version of source (0 when none). */
int runs_latest_dataset(PGconn *pg, const char *source_id, int64_t *version, char *errstr,
                        size_t errlen);

/* Cancels an active run and its open steps. *outcome: 0 cancelled,
 * TG_ERR_NOTFOUND no such run, TG_ERR_INVALID the run already ended
 * (status copied into status_out). */
int runs_cancel(PGconn *pg, const char *run_id, int *outcome, char *status_out, size_t statuslen,
                char *errstr, size_t errlen);

/* Reopens an ended run at its first failed, timed-out or cancelled step
 * (or at worker_hint's step): the run becomes running (trigger retry), that
 * step queued and later steps are forgotten. Gives the step's worker and its
 * last input (caller frees *input_json with free()). */
typedef enum {
    REOPEN_OK,
    REOPEN_NO_RUN,
    REOPEN_ACTIVE,   /* the run itself is still active */
    REOPEN_NOTHING,  /* no failed step with a recorded input */
    REOPEN_CONFLICT, /* another run of the source is active */
} orch_reopen_t;
int runs_reopen(PGconn *pg, const char *run_id, const char *worker_hint, int force,
                orch_reopen_t *outcome, char worker_out[48], char **input_json, char *errstr,
                size_t errlen);

/* Calls fn for each running step of worker past timeout_s (of an active
 * run): run id, source id, attempt, last input JSON (or NULL), first failure. */
typedef void (*runs_timeout_fn)(void *arg, const char *run_id, const char *source_id, int attempt,
                                const char *input_json, int64_t first_failed_ms);
int runs_overdue(PGconn *pg, const char *worker, int timeout_s, runs_timeout_fn fn, void *arg,
                 char *errstr, size_t errlen);

/* Opens a transaction that makes version the active graph (the others
 * retired) and records it as a run (trigger rollback, only graph-builder,
 * message "rolled back to ..."); run_id gets the new run's id. The caller
 * commits once graph:version is switched, or rolls back. */
int runs_record_rollback(PGconn *pg, const char *version, int64_t dataset_version,
                         char run_id[TG_ID_LEN], char *errstr, size_t errlen);

#endif
