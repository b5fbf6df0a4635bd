/* An OData client for reading whole entity sets: v4, v3 and v2 JSON
 * answers, server-driven paging through next links (absolute or relative,
 * with a loop guard and a page cap), client-driven $top/$skip paging,
 * $select, 429/503 with Retry-After, and OData error bodies turned into
 * messages. */
#ifndef ODATA_CLIENT_H
#define ODATA_CLIENT_H

#include "mapping.h"
#include "tg/http.h"
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *root; /* ODATA_URL: the service root */
    /* root's origin (tg_url_origin): the only one credentials go to and
     * next links may lead to */
    char origin[TG_URL_ORIGIN_MAX];
    tg_http_opts_t http;          /* timeouts and authentication */
    int max_pages;                /* per entity set: more is an error */
    int max_retries;              /* 429/503 answers retried per request */
    int max_retry_wait_s;         /* a longer Retry-After is cut to this */
    int64_t deadline_ms;          /* tg_mono_ms() by which the fetch must end; 0 = none;
                                   * it also bounds each request's curl timeouts */
    const char *deadline_setting; /* what set it, named in the error */
    volatile int *stop;           /* non-zero on shutdown: the fetch gives up */
} odata_client_t;

/* Receives each page's array of entities (borrowed for the call). */
typedef int (*odata_page_fn)(const cJSON *rows, void *ud, char *errstr, size_t errlen);

/* Reads every page of one entity set. Returns TG_OK, or TG_ERR_UNAVAILABLE /
 * TG_ERR_TIMEOUT (unreachable, 5xx, cut-short answers), TG_ERR_INVALID
 * (malformed answers, next-link loops, a next link to another origin than
 * c->origin, page cap), TG_ERR_CONFIG (401, 403,
 * 404: the mapping or credentials are wrong), TG_ERR_SHUTDOWN, or what
 * on_page returned; errstr names the entity set and the page. */
int odata_fetch_set(const odata_client_t *c, const odata_mapping_t *m, odata_kind_t kind,
                    odata_page_fn on_page, void *ud, char *errstr, size_t errlen) TG_WARN_UNUSED;

/* The URL of an entity set's first page (client paging: the page at skip).
 * The caller frees it. */
char *odata_set_url(const char *root, const odata_mapping_t *m, odata_kind_t kind, long skip);

/* Parses one answer. On success *root is owned by the caller (cJSON_Delete)
 * and *rows and *next (NULL on the last page) point into it. A cut-short
 * document gives TG_ERR_UNAVAILABLE, anything else malformed TG_ERR_INVALID,
 * an OData error body TG_ERR_HTTP with its message. */
int odata_parse_page(const char *body, size_t len, cJSON **root, const cJSON **rows,
                     const char **next, char *errstr, size_t errlen) TG_WARN_UNUSED;

/* Writes "code: message" of an OData error body (v4 error, v3 odata.error,
 * v2 error with message.value). Returns 1 when root is one, else 0. */
int odata_error_message(const cJSON *root, char *out, size_t outlen);

#endif
