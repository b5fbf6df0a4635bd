/* Paging through OData entity sets: one HTTP GET per page, the answer's
 * dialect recognised from its shape, every next link checked before it is
 * followed. */
#include "odata_client.h"

#include "tg/backoff.h"
#include "tg/buf.h"
#include "tg/envelope.h"
#include "tg/log.h"
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- URLs --------------------------------------------------------------- */

/* Appends s percent-encoded as one URL path segment or query value: every
 * byte but the unreserved ones (RFC 3986), so UTF-8 names (1C's Cyrillic
 * entity sets) and reserved characters arrive as written. */
static int url_encode(tg_buf_t *b, const char *s) {
    char *esc = curl_easy_escape(NULL, s, 0); /* the handle is unused since curl 7.82 */
    int rc = esc ? tg_buf_append(b, esc, strlen(esc)) : TG_ERR_NOMEM;
    curl_free(esc);
    return rc;
}

static int append_select(tg_buf_t *b, const odata_mapping_t *m, odata_kind_t kind) {
    const odata_entity_map_t *em = &m->ent[kind];
    int rc = tg_buf_append(b, "$select=", 8), first = 1;
    for (int f = 0; f < odata_entities[kind].nfields && !rc; f++) {
        if (!em->fields[f]) {
            continue;
        }
        rc = (!first && tg_buf_append(b, ",", 1)) || url_encode(b, em->fields[f]);
        first = 0;
    }
    if (!rc && em->exclude_field) {
        rc = tg_buf_append(b, ",", 1) || url_encode(b, em->exclude_field);
    }
    return rc;
}

char *odata_set_url(const char *root, const odata_mapping_t *m, odata_kind_t kind, long skip) {
    const odata_entity_map_t *em = &m->ent[kind];
    tg_buf_t b;
    tg_buf_init(&b);
    size_t rl = strlen(root);
    int rc = tg_buf_append(&b, root, rl) ||
             (rl && root[rl - 1] != '/' && tg_buf_append(&b, "/", 1)) ||
             url_encode(&b, em->entity_set) || tg_buf_append(&b, "?", 1);
    if (!rc && m->select) {
        rc = append_select(&b, m, kind) || tg_buf_append(&b, "&", 1);
    }
    if (!rc && m->client_paging) { /* a stable order makes $skip pages disjoint */
        rc = tg_buf_append(&b, "$orderby=", 9) || url_encode(&b, em->fields[0]) ||
             tg_buf_appendf(&b, "&$top=%d&$skip=%ld&", m->page_size, skip);
    }
    if (!rc && m->query && *m->query) {
        rc = tg_buf_appendf(&b, "%s&", m->query);
    }
    if (rc) {
        tg_buf_free(&b);
        return NULL;
    }
    b.data[--b.len] = '\0'; /* the last '&' or a lone '?' */
    return b.data;
}

/* ---- answers ------------------------------------------------------------ */

int odata_error_message(const cJSON *root, char *out, size_t outlen) {
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(root, "error");
    if (!cJSON_IsObject(err)) {
        err = cJSON_GetObjectItemCaseSensitive(root, "odata.error");
    }
    if (!cJSON_IsObject(err)) {
        return 0;
    }
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(err, "message");
    const char *text = cJSON_IsString(msg) ? msg->valuestring : tg_json_str(msg, "value");
    const char *code = tg_json_str(err, "code");
    snprintf(out, outlen, "%s%s%.300s", code && *code ? code : "", code && *code ? ": " : "",
             text ? text : "(no message)");
    return 1;
}

/* v4/v3: {"value":[...], "@odata.nextLink"|"odata.nextLink"}; v2:
 * {"d":{"results":[...],"__next"}} or {"d":[...]} (v1 style). */
static int find_rows(const cJSON *root, const cJSON **rows, const cJSON **next) {
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "d");
    *rows = cJSON_GetObjectItemCaseSensitive(root, "value");
    *next = cJSON_GetObjectItemCaseSensitive(root, "@odata.nextLink");
    if (!*next) {
        *next = cJSON_GetObjectItemCaseSensitive(root, "odata.nextLink");
    }
    if (!*rows && cJSON_IsArray(d)) {
        *rows = d;
    } else if (!*rows && cJSON_IsObject(d)) {
        *rows = cJSON_GetObjectItemCaseSensitive(d, "results");
        *next = cJSON_GetObjectItemCaseSensitive(d, "__next");
    }
    return cJSON_IsArray(*rows) ? 0 : -1;
}

/* True when the text ends inside a string or with brackets still open: the
 * answer was cut short rather than written wrong. */
static int json_unfinished(const char *s, size_t len) {
    long depth = 0;
    int in_string = 0, seen = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_string) {
            if (c == '\\') {
                i++;
            } else if (c == '"') {
                in_string = 0;
            }
            continue;
        }
        seen |= c != ' ' && c != '\n' && c != '\r' && c != '\t';
        if (c == '"') {
            in_string = 1;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return in_string || depth > 0 || !seen;
}

/* Whether a string escapes a NUL (\u0000): C strings would cut it short,
 * so the value could never be stored as sent. */
static int has_nul_escape(const char *s, size_t len) {
    for (size_t i = 0; i + 5 < len; i++) {
        if (s[i] != '\\') {
            continue;
        }
        if (s[i + 1] == 'u' && !memcmp(s + i + 2, "0000", 4)) {
            return 1;
        }
        i++; /* skip the escaped character */
    }
    return 0;
}

int odata_parse_page(const char *body, size_t len, cJSON **root, const cJSON **rows,
                     const char **next, char *errstr, size_t errlen) {
    const char *end = NULL;
    char msg[400];
    *root = NULL;
    if (body && has_nul_escape(body, len)) {
        return tg_fail(TG_ERR_INVALID, errstr, errlen,
                       "a string contains \\u0000 (NUL), which cannot be stored");
    }
    *root = cJSON_ParseWithLengthOpts(body ? body : "", len, &end, 0);
    if (!*root) {
        size_t at = end && body ? (size_t)(end - body) : 0;
        if (json_unfinished(body ? body : "", len)) {
            return tg_fail(TG_ERR_UNAVAILABLE, errstr, errlen,
                           "answer cut short: JSON ends unfinished after %zu bytes", len);
        }
        return tg_fail(TG_ERR_INVALID, errstr, errlen, "malformed JSON at byte %zu of %zu", at,
                       len);
    }
    int rc = TG_OK;
    const cJSON *nx = NULL;
    if (odata_error_message(*root, msg, sizeof(msg))) {
        rc = tg_fail(TG_ERR_HTTP, errstr, errlen, "OData error: %s", msg);
    } else if (!cJSON_IsObject(*root) || find_rows(*root, rows, &nx)) {
        rc = tg_fail(TG_ERR_INVALID, errstr, errlen,
                     "not an OData collection (no \"value\" or \"d.results\" array)");
    } else if (nx && !cJSON_IsNull(nx) && !cJSON_IsString(nx)) {
        rc = tg_fail(TG_ERR_INVALID, errstr, errlen, "next link is not a string");
    }
    if (rc) {
        cJSON_Delete(*root);
        *root = NULL;
        return rc;
    }
    *next = cJSON_IsString(nx) ? nx->valuestring : NULL;
    return TG_OK;
}

/* ---- requests ----------------------------------------------------------- */

static int deadline_error(const odata_client_t *c, const char *where, char *errstr, size_t errlen) {
    return tg_fail(TG_ERR_TIMEOUT, errstr, errlen, "%s: the fetch took longer than allowed (%s)",
                   where, c->deadline_setting ? c->deadline_setting : "deadline");
}

static int deadline_check(const odata_client_t *c, const char *set, char *errstr, size_t errlen) {
    if (c->stop && *c->stop) {
        return tg_fail(TG_ERR_SHUTDOWN, errstr, errlen, "%s: fetch abandoned for shutdown", set);
    }
    if (c->deadline_ms && tg_mono_ms() >= c->deadline_ms) {
        return deadline_error(c, set, errstr, errlen);
    }
    return TG_OK;
}

/* limit_ms, cut to the time left before the deadline (at least 1 ms); a 0
 * limit stays 0. */
static long deadline_bound(const odata_client_t *c, long limit_ms) {
    if (!c->deadline_ms || !limit_ms) {
        return limit_ms;
    }
    int64_t left = c->deadline_ms - tg_mono_ms();
    if (left < 1) {
        left = 1;
    }
    return limit_ms < left ? limit_ms : (long)left;
}

/* An error answer's message: its OData error, or the start of its body. */
static void answer_message(const tg_http_response_t *r, char *out, size_t outlen) {
    cJSON *root = cJSON_ParseWithLength(r->body.data ? r->body.data : "", r->body.len);
    if (!odata_error_message(root, out, outlen)) {
        snprintf(out, outlen, "%.200s", r->body.len ? r->body.data : "(empty body)");
    }
    cJSON_Delete(root);
}

static int status_error(const tg_http_response_t *r, const char *where, char *errstr,
                        size_t errlen) {
    char msg[400];
    answer_message(r, msg, sizeof(msg));
    long s = r->status;
    int err = s >= 500 || s == 429               ? TG_ERR_UNAVAILABLE
              : s == 408                         ? TG_ERR_TIMEOUT
              : s == 401 || s == 403 || s == 404 ? TG_ERR_CONFIG
                                                 : TG_ERR_INVALID;
    const char *hint = s == 401 || s == 403
                           ? " (check ODATA_USER/ODATA_PASSWORD/ODATA_BEARER_TOKEN)"
                       : s == 404 || s == 400 ? " (check ODATA_URL and the mapping)"
                                              : "";
    return tg_fail(err, errstr, errlen, "%s: HTTP %ld: %s%s", where, s, msg, hint);
}

/* GETs url; 429 and 503 are retried after their Retry-After (bounded). */
static int get_page(const odata_client_t *c, const char *url, const char *where,
                    tg_http_response_t *resp, char *errstr, size_t errlen) {
    for (int attempt = 0;; attempt++) {
        tg_http_opts_t http = c->http; /* a request never outlives the deadline */
        http.auth_origin = c->origin;
        http.connect_timeout_ms = deadline_bound(c, http.connect_timeout_ms);
        http.total_timeout_ms = deadline_bound(c, http.total_timeout_ms);
        int rc = tg_http_get(url, &http, resp, errstr, errlen);
        if (rc == TG_ERR_TIMEOUT && http.total_timeout_ms < c->http.total_timeout_ms) {
            rc = deadline_error(c, where, errstr, errlen); /* cut short by the deadline */
        }
        if (rc != TG_OK) {
            tg_http_response_free(resp);
            return rc;
        }
        if (resp->status == 200) {
            return TG_OK;
        }
        int busy = resp->status == 429 || resp->status == 503;
        if (!busy || attempt >= c->max_retries || (c->stop && *c->stop)) {
            rc = status_error(resp, where, errstr, errlen);
            tg_http_response_free(resp);
            return rc;
        }
        long wait_s = resp->retry_after_s >= 0 ? resp->retry_after_s : 1L << attempt;
        if (wait_s > c->max_retry_wait_s) {
            wait_s = c->max_retry_wait_s;
        }
        tg_warn("%s: HTTP %ld, retrying in %ld s (%d of %d)", where, resp->status, wait_s,
                attempt + 1, c->max_retries);
        tg_http_response_free(resp);
        tg_sleep_ms(deadline_bound(c, wait_s * 1000), c->stop);
        if ((rc = deadline_check(c, where, errstr, errlen))) {
            return rc;
        }
    }
}

/* ---- paging ------------------------------------------------------------- */

typedef struct {
    char **urls;
    size_t n, cap;
} seen_t;

/* Remembers url; *again set when it was seen before (a next-link loop).
 * TG_OK or TG_ERR_NOMEM. */
static int seen_add(seen_t *s, const char *url, int *again) {
    *again = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (!strcmp(s->urls[i], url)) {
            *again = 1;
            return TG_OK;
        }
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        char **u = realloc(s->urls, cap * sizeof(*u));
        if (!u) {
            return TG_ERR_NOMEM;
        }
        s->urls = u;
        s->cap = cap;
    }
    return (s->urls[s->n] = strdup(url)) ? (s->n++, TG_OK) : TG_ERR_NOMEM;
}

static void seen_free(seen_t *s) {
    for (size_t i = 0; i < s->n; i++) {
        free(s->urls[i]);
    }
    free(s->urls);
}

typedef struct {
    const odata_client_t *c;
    const odata_mapping_t *m;
    odata_kind_t kind;
    const char *set;
    seen_t seen;
    char *url;        /* the next page to fetch; NULL when done */
    long skip;        /* client paging: offset of the current $top window */
    long window_rows; /* client paging: rows received in the current window */
} pager_t;

/* A next link may only stay on ODATA_URL's origin: the credentials are for
 * that origin alone, and a server that sends its client elsewhere is either
 * misconfigured (a public URL unlike ODATA_URL) or hostile. Not retryable:
 * the same answer would come again. */
static int same_origin(const pager_t *p, const char *url, char *errstr, size_t errlen) {
    char origin[TG_URL_ORIGIN_MAX], why[200];
    int rc = tg_url_origin(url, origin, why, sizeof(why));
    if (rc) {
        return tg_fail(rc, errstr, errlen, "%s: next link: %s", p->set, why);
    }
    if (strcmp(origin, p->c->origin)) {
        return tg_fail(TG_ERR_INVALID, errstr, errlen,
                       "%s: next link leads to %s, another origin than ODATA_URL's %s; not "
                       "followed (credentials and requests stay on ODATA_URL's origin)",
                       p->set, origin, p->c->origin[0] ? p->c->origin : "(unknown)");
    }
    return TG_OK;
}

/* Decides the URL after a page: its next link (server paging, also inside a
 * client window), else the next $skip window while windows come back full. */
static int pager_advance(pager_t *p, const char *page_url, const char *next, long nrows,
                         char *errstr, size_t errlen) {
    char *url = NULL;
    p->window_rows += nrows;
    if (next) {
        if (!*next) {
            return tg_fail(TG_ERR_INVALID, errstr, errlen, "%s: empty next link", p->set);
        }
        if (!(url = tg_url_resolve(page_url, next))) {
            return tg_fail(TG_ERR_INVALID, errstr, errlen, "%s: next link \"%.200s\" is not a URL",
                           p->set, next);
        }
        int rc = same_origin(p, url, errstr, errlen);
        if (rc) {
            free(url);
            return rc;
        }
    } else if (p->m->client_paging && p->window_rows >= p->m->page_size) {
        p->skip += p->m->page_size;
        p->window_rows = 0;
        if (!(url = odata_set_url(p->c->root, p->m, p->kind, p->skip))) {
            return TG_ERR_NOMEM;
        }
    }
    free(p->url);
    p->url = url;
    int again = 0, rc = url ? seen_add(&p->seen, url, &again) : TG_OK;
    if (rc == TG_OK && again) {
        return tg_fail(TG_ERR_INVALID, errstr, errlen,
                       "%s: next link loop: %.300s was already "
                       "fetched",
                       p->set, url);
    }
    return rc;
}

/* Fetches and parses p->url, hands its rows on and moves to the next page. */
static int pager_step(pager_t *p, int page, odata_page_fn on_page, void *ud, char *errstr,
                      size_t errlen) {
    char where[300], why[600];
    snprintf(where, sizeof(where), "%s page %d", p->set, page + 1);
    tg_debug("GET %s", p->url);
    tg_http_response_t resp;
    int rc = get_page(p->c, p->url, where, &resp, errstr, errlen);
    if (rc) {
        return rc;
    }
    cJSON *root = NULL;
    const cJSON *rows = NULL;
    const char *next = NULL;
    rc = odata_parse_page(resp.body.data, resp.body.len, &root, &rows, &next, why, sizeof(why));
    if (rc == TG_ERR_HTTP) { /* an error body in a 200 answer: the server failed */
        rc = TG_ERR_UNAVAILABLE;
    }
    if (rc) {
        tg_fail(rc, errstr, errlen, "%s: %s", where, why);
    } else if (!(rc = on_page(rows, ud, errstr, errlen))) {
        rc = pager_advance(p, resp.effective_url, next, cJSON_GetArraySize(rows), errstr, errlen);
    }
    cJSON_Delete(root);
    tg_http_response_free(&resp);
    return rc;
}

int odata_fetch_set(const odata_client_t *c, const odata_mapping_t *m, odata_kind_t kind,
                    odata_page_fn on_page, void *ud, char *errstr, size_t errlen) {
    pager_t p = {c, m, kind, m->ent[kind].entity_set, {0}, NULL, 0, 0};
    p.url = odata_set_url(c->root, m, kind, 0);
    int again, rc = p.url ? seen_add(&p.seen, p.url, &again) : TG_ERR_NOMEM;
    for (int page = 0; p.url && !rc; page++) {
        if (page >= c->max_pages) {
            rc = tg_fail(TG_ERR_INVALID, errstr, errlen, "%s: more than %d pages (ODATA_MAX_PAGES)",
                         p.set, c->max_pages);
        } else if (!(rc = deadline_check(c, p.set, errstr, errlen))) {
            rc = pager_step(&p, page, on_page, ud, errstr, errlen);
        }
    }
    if (rc == TG_ERR_NOMEM) {
        tg_fail(rc, errstr, errlen, "%s: out of memory", p.set);
    }
    free(p.url);
    seen_free(&p.seen);
    return rc;
}
