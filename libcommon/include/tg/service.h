/* Layer 3 (service).
 * The process around a service: a small civetweb server with GET /healthz,
 * /readyz and /metrics, also served on a listener of their own (PROBE_PORT) that API clients cannot
 * starve.
 * Readiness is reported by the service's own loop (tg_service_set_dep), so
 * HTTP threads never touch a connection the loop is using. */
#ifndef TG_SERVICE_H
#define TG_SERVICE_H

#include "tg/config.h"
#include "tg/error.h"
#include "tg/shutdown.h" /* the flag and signals every service main() installs */
#include <civetweb.h>
#include <cjson/cJSON.h>

typedef struct tg_service_s tg_service_t;

/* Starts the HTTP server on cfg->http_port (0 = don't listen), with
 * HTTP_THREADS threads and HTTP_REQUEST_TIMEOUT_MS for a request's headers
 * and each wait on its client. When cfg->probe_port is set, /healthz,
 * /readyz and /metrics are also answered there, by threads of their own
 * that no API client can hold. Returns NULL with errstr set, e.g. when a
 * port is taken. */
tg_service_t *tg_service_start(const tg_config_t *cfg, const char *version, char *errstr,
                               size_t errlen);

/* Records the state of a dependency ("kafka", "postgres", "redis"). /readyz
 * answers 200 only when every dependency registered so far is ok. detail is
 * copied. Thread-safe. */
void tg_service_set_dep(tg_service_t *svc, const char *name, int ok, const char *detail);

/* Like tg_service_set_dep, for a dependency the service can answer without
 * for a while (route-api serving its loaded graph while Redis is away): it
 * is listed in /readyz with its detail but never makes the service not
 * ready. */
void tg_service_set_dep_soft(tg_service_t *svc, const char *name, int ok, const char *detail);

/* The civetweb context, for services that add their own handlers. */
struct mg_context *tg_service_http(tg_service_t *svc);

/* Registers handler for pattern (mg_set_request_handler's rules) and counts
 * its requests as tg_http_requests_total{route=pattern,status} with their
 * duration in tg_http_request_duration_seconds{route}; requests no handler
 * took count as route "other". Returns TG_OK, or TG_ERR_INVALID when svc
 * does not listen or has no room for another route. */
int tg_service_route(tg_service_t *svc, const char *pattern, mg_request_handler handler,
                     void *data) TG_WARN_UNUSED;

/* Stops the HTTP server and frees svc (NULL is fine). */
void tg_service_stop(tg_service_t *svc);

/* Sends a JSON reply: prints obj, sets Content-Type and the status, and
 * frees obj. extra_headers (may be NULL) are "Name: value\r\n" lines. */
void tg_http_reply_json(struct mg_connection *conn, int status, cJSON *obj,
                        const char *extra_headers);

/* The error body of every service's API:
 * {"success":false,"error":{"code":code,"message":message}}. The caller
 * owns it (tg_http_reply_json frees it) and may add members; NULL when out
 * of memory, which tg_http_reply_json answers with a 500. */
cJSON *tg_http_error_body(const char *code, const char *message);

/* Sends tg_http_error_body(code, message) with status. */
void tg_http_reply_error(struct mg_connection *conn, int status, const char *code,
                         const char *message);

#endif
