/* HTTP GET over libcurl with timeouts, gzip, auth kept to one origin,
 * Retry-After, and URLs: resolution of relative links, origins. */
#include "tg/http.h"
#include <ctype.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void tg_http_global_init(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

typedef struct {
    tg_http_response_t *resp;
    size_t max_body;
    int too_big;
} sink_t;

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud) {
    sink_t *s = ud;
    size_t n = size * nmemb;
    if (s->resp->body.len + n > s->max_body) {
        s->too_big = 1;
        return 0;
    }
    return tg_buf_append(&s->resp->body, data, n) == TG_OK ? n : 0;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ud) {
    sink_t *s = ud;
    size_t n = size * nmemb;
    if (n > 12 && !strncasecmp(data, "Retry-After:", 12)) {
        const char *v = data + 12;
        while (v < data + n && isspace((unsigned char)*v)) {
            v++;
        }
        if (isdigit((unsigned char)*v)) {
            s->resp->retry_after_s = strtol(v, NULL, 10);
        }
        /* An HTTP-date Retry-After is treated as "soon" (1 s). */
        else if (v < data + n && *v != '\r') {
            s->resp->retry_after_s = 1;
        }
    }
    return n;
}

/* Credentials are for the origin that was configured with them: a URL that
 * came from elsewhere (a server's next link) must not carry them away. */
static int check_auth_origin(const char *url, const tg_http_opts_t *opts, char *errstr,
                             size_t errlen) {
    int has_auth = (opts->user && *opts->user) || (opts->bearer && *opts->bearer);
    if (!has_auth || !opts->auth_origin) {
        return TG_OK;
    }
    char origin[TG_URL_ORIGIN_MAX], why[200];
    int rc = tg_url_origin(url, origin, why, sizeof(why));
    if (rc) {
        return tg_fail(rc, errstr, errlen, "http: %s", why);
    }
    if (strcmp(origin, opts->auth_origin)) {
        return tg_fail(TG_ERR_INVALID, errstr, errlen,
                       "http: not sending credentials meant for %s to %s; request refused",
                       opts->auth_origin, origin);
    }
    return TG_OK;
}

int tg_http_get(const char *url, const tg_http_opts_t *opts, tg_http_response_t *resp, char *errstr,
                size_t errlen) {
    memset(resp, 0, sizeof(*resp));
    tg_buf_init(&resp->body);
    resp->retry_after_s = -1;
    int rc = check_auth_origin(url, opts, errstr, errlen);
    if (rc) {
        return rc;
    }
    sink_t sink = {resp, opts->max_body ? opts->max_body : (size_t)256 << 20, 0};

    CURL *h = curl_easy_init();
    if (!h) {
        return tg_fail(TG_ERR_NOMEM, errstr, errlen, "http: cannot create a curl handle");
    }
    struct curl_slist *hdrs = NULL;
    char line[1024];
    snprintf(line, sizeof(line), "Accept: %s", opts->accept ? opts->accept : "application/json");
    hdrs = curl_slist_append(hdrs, line);
    if (opts->bearer && *opts->bearer) {
        snprintf(line, sizeof(line), "Authorization: Bearer %s", opts->bearer);
        hdrs = curl_slist_append(hdrs, line);
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, ""); /* gzip and deflate */
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     opts->connect_timeout_ms ? opts->connect_timeout_ms : 5000L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS,
                     opts->total_timeout_ms ? opts->total_timeout_ms : 60000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &sink);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "transit-graph-pipeline/1.0");
    if (opts->user && *opts->user) {
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
        curl_easy_setopt(h, CURLOPT_USERNAME, opts->user);
        curl_easy_setopt(h, CURLOPT_PASSWORD, opts->password ? opts->password : "");
    }
    CURLcode cc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
    char *eff = NULL;
    curl_easy_getinfo(h, CURLINFO_EFFECTIVE_URL, &eff);
    snprintf(resp->effective_url, sizeof(resp->effective_url), "%s", eff ? eff : url);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);

    if (sink.too_big) {
        return tg_fail(TG_ERR_INVALID, errstr, errlen, "http: %s: body larger than %zu bytes", url,
                       sink.max_body);
    }
    switch (cc) {
    case CURLE_OK:
        return TG_OK;
    case CURLE_OPERATION_TIMEDOUT:
        return tg_fail(TG_ERR_TIMEOUT, errstr, errlen, "http: %s: %s", url, curl_easy_strerror(cc));
    case CURLE_PARTIAL_FILE:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_RECV_ERROR:
        return tg_fail(TG_ERR_UNAVAILABLE, errstr, errlen, "http: %s: answer cut short (%s)", url,
                       curl_easy_strerror(cc));
    default:
        return tg_fail(TG_ERR_UNAVAILABLE, errstr, errlen, "http: %s: %s", url,
                       curl_easy_strerror(cc));
    }
}

void tg_http_response_free(tg_http_response_t *resp) {
    tg_buf_free(&resp->body);
}

char *tg_url_resolve(const char *base, const char *ref) {
    CURLU *u = curl_url();
    char *out = NULL, *tmp = NULL;
    if (u && curl_url_set(u, CURLUPART_URL, base, 0) == CURLUE_OK &&
        curl_url_set(u, CURLUPART_URL, ref, CURLU_PATH_AS_IS) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_URL, &tmp, 0) == CURLUE_OK) {
        out = strdup(tmp);
    }
    curl_free(tmp);
    curl_url_cleanup(u);
    return out;
}

int tg_url_origin(const char *url, char out[TG_URL_ORIGIN_MAX], char *errstr, size_t errlen) {
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL;
    int rc = TG_OK;
    out[0] = '\0';
    if (!u) {
        return tg_fail(TG_ERR_NOMEM, errstr, errlen, "out of memory");
    }
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, 0);
    if (uc == CURLUE_OK) {
        uc = curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
    }
    if (uc == CURLUE_OK) {
        uc = curl_url_get(u, CURLUPART_HOST, &host, 0);
    }
    if (uc == CURLUE_OK) {
        uc = curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
    }
    if (uc == CURLUE_OUT_OF_MEMORY) {
        rc = tg_fail(TG_ERR_NOMEM, errstr, errlen, "out of memory");
    } else if (uc != CURLUE_OK) {
        rc = tg_fail(TG_ERR_INVALID, errstr, errlen, "not an absolute URL with a host (%s)",
                     curl_url_strerror(uc));
    } else if (snprintf(out, TG_URL_ORIGIN_MAX, "%s://%s:%s", scheme, host, port) >=
               TG_URL_ORIGIN_MAX) {
        rc = tg_fail(TG_ERR_INVALID, errstr, errlen, "host name too long");
    }
    if (rc) {
        out[0] = '\0';
    }
    for (char *p = out; *p; p++) { /* host names are case-insensitive */
        *p = (char)tolower((unsigned char)*p);
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return rc;
}
