/* The REST API on civetweb. */
#ifndef ORCH_API_H
#define ORCH_API_H

#include "orchestrator.h"
#include "tg/service.h"

/* ---- the REST API (api.c) ---------------------------------------------- */

typedef struct orch_api_s orch_api_t;

/* Registers the handlers on the service's HTTP server. The API has its own
 * PostgreSQL pool and producer: civetweb runs handlers on many threads. */
orch_api_t *api_start(orch_conf_t *conf, tg_service_t *svc, char *errstr, size_t errlen);
void api_stop(orch_api_t *api);

#endif
