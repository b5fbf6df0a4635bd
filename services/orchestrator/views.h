/* The read models of the REST API: PostgreSQL rows as the JSON the API answers. */
#ifndef ORCH_VIEWS_H
#define ORCH_VIEWS_H

#include "orchestrator.h"

/* ---- read models for the API (views.c) --------------------------------- */

/* Each returns a new cJSON (caller deletes) or NULL with errstr set. */
cJSON *views_workers(PGconn *pg, char *errstr, size_t errlen);
cJSON *views_worker(PGconn *pg, const char *worker_id, char *errstr, size_t errlen);
cJSON *views_pipeline(PGconn *pg, const char *source_id, char *errstr, size_t errlen);
/* status/trigger may be NULL (no filter). */
cJSON *views_runs(PGconn *pg, long limit, long offset, const char *status, const char *trigger,
                  char *errstr, size_t errlen);
/* NULL with *notfound = 1 when there is no such run. */
cJSON *views_run(PGconn *pg, const char *run_id, int *notfound, char *errstr, size_t errlen);

/* The specification's execute body for an ended run: {success, message,
 * totalExecutionTimeMs, workersExecuted, workerResults}, or for a
 * single-worker run {success, message, result}. *succeeded tells whether
 * the run succeeded. */
cJSON *views_execute_result(PGconn *pg, const char *run_id, int *succeeded, char *errstr,
                            size_t errlen);

#endif
