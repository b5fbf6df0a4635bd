/* pipelinectl's HTTP client: one request to the orchestrator's REST API,
 * its status and its JSON body. */
#ifndef PIPELINECTL_CLIENT_H
#define PIPELINECTL_CLIENT_H

#include <cjson/cJSON.h>
#include <stddef.h>

typedef struct {
    const char *base_url; /* ORCHESTRATOR_URL, e.g. http://127.0.0.1:3000 */
    const char *token;    /* API_TOKEN, sent as a bearer token when set */
} ctl_client_t;

typedef struct {
    long status;
    cJSON *body; /* NULL when the answer was not JSON; free with cJSON_Delete */
} ctl_response_t;

/* Sends method path (with its query) and reads the answer. prefer_async
 * adds Prefer: respond-async; timeout_s 0 waits as long as it takes.
 * Returns 0, or a negative code with errstr when no answer came. */
int ctl_request(const ctl_client_t *c, const char *method, const char *path, int prefer_async,
                long timeout_s, ctl_response_t *out, char *errstr, size_t errlen);

#endif
