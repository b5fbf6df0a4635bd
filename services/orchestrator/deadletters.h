/* The dead-letter topic read for the API. */
#ifndef ORCH_DEADLETTERS_H
#define ORCH_DEADLETTERS_H

#include "orchestrator.h"

/* ---- dead letters (deadletters.c) -------------------------------------- */

/* GET /api/v1/dead-letters: the dead-letter topic's messages, newest first,
 * each with partition, offset, timestamp, key, headers, error and value.
 * Reads at most offset + limit messages per partition. Caller deletes. */
cJSON *deadletters_list(const orch_conf_t *conf, long limit, long offset, char *errstr,
                        size_t errlen);

#endif
