/* Layer 2 (clients).
 * An HTTP client over libcurl with connect and total timeouts, gzip, and
 * basic or bearer authentication. */
#ifndef TG_HTTP_H
#define TG_HTTP_H

#include "tg/buf.h"
#include "tg/error.h"
#include <stddef.h>

typedef struct {
    long connect_timeout_ms; /* default 5000 */
    long total_timeout_ms;   /* default 60000 */
    const char *user;        /* basic auth when user is set */
    const char *password;
    const char *bearer;      /* "Authorization: Bearer ..." when set */
    const char *auth_origin; /* when set, user/bearer are only for this origin
                              * (tg_url_origin): a request to any other is
                              * refused rather than sent without them */
    const char *accept;      /* Accept header, default application/json */
    size_t max_body;         /* refuse bodies above this; 0 = 256 MiB */
} tg_http_opts_t;

typedef struct {
    long status;        /* HTTP status, 0 when no answer */
    tg_buf_t body;      /* owned; free with tg_http_response_free() */
    long retry_after_s; /* Retry-After in seconds, -1 when absent */
    char effective_url[2048];
} tg_http_response_t;

/* GETs url. Returns TG_OK when an answer (of any status) arrived; transport
 * failures give TG_ERR_UNAVAILABLE or TG_ERR_TIMEOUT with errstr, a URL
 * outside opts->auth_origin TG_ERR_INVALID (nothing sent). resp is always
 * initialised and must be freed with tg_http_response_free(). */
int tg_http_get(const char *url, const tg_http_opts_t *opts, tg_http_response_t *resp, char *errstr,
                size_t errlen) TG_WARN_UNUSED;

void tg_http_response_free(tg_http_response_t *resp);

/* Resolves ref against base (RFC 3986); the caller frees the result. */
char *tg_url_resolve(const char *base, const char *ref);

/* Room for any origin tg_url_origin writes (scheme, a 255-byte host, port). */
#define TG_URL_ORIGIN_MAX 300

/* Writes url's origin (RFC 6454) as "scheme://host:port": scheme and host in
 * lower case, the scheme's default port spelled out, so that two URLs of one
 * origin give equal strings. Returns TG_OK, TG_ERR_INVALID when url is not an
 * absolute URL with a host (errstr says why), TG_ERR_NOMEM. */
int tg_url_origin(const char *url, char out[TG_URL_ORIGIN_MAX], char *errstr,
                  size_t errlen) TG_WARN_UNUSED;

/* Call once at start-up (curl_global_init). */
void tg_http_global_init(void);

#endif
