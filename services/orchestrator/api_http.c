/* HTTP plumbing of the API: connection pool, auth, bodies, query strings. */
#include "api_http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "orchestrator.h"
#include "tg/pg.h"
#include "tg/service.h"

/* ---- the pool ---------------------------------------------------------- */

void api_pool_init(api_pool_t *pool, const char *url) {
    memset(pool, 0, sizeof *pool);
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->freed, NULL);
    pool->url = url;
}

void api_pool_close(api_pool_t *pool) {
    for (int i = 0; i < API_POOL_SIZE; i++) {
        if (pool->conns[i]) {
            PQfinish(pool->conns[i]);
        }
    }
    pthread_cond_destroy(&pool->freed);
    pthread_mutex_destroy(&pool->lock);
}

static int slot_reserve(api_pool_t *pool) {
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 5;
    int slot = -1, rc = 0;
    pthread_mutex_lock(&pool->lock);
    while (slot < 0 && rc != ETIMEDOUT) {
        for (int i = 0; i < API_POOL_SIZE && slot < 0; i++) {
            if (!pool->busy[i]) {
                pool->busy[i] = 1;
                slot = i;
            }
        }
        if (slot < 0) {
            rc = pthread_cond_timedwait(&pool->freed, &pool->lock, &deadline);
        }
    }
    pthread_mutex_unlock(&pool->lock);
    return slot;
}

PGconn *api_pool_get(api_pool_t *pool, int *slot, char *errstr, size_t errlen) {
    *slot = slot_reserve(pool);
    if (*slot < 0) {
        tg_fail(TG_ERR_TIMEOUT, errstr, errlen, "DATABASE_URL: no free connection within 5 s");
        return NULL;
    }
    /* The slot is ours: (re)connecting happens outside the lock. */
    PGconn **conn = &pool->conns[*slot];
    if (*conn && PQstatus(*conn) != CONNECTION_OK) {
        PQreset(*conn);
    }
    if (!*conn || PQstatus(*conn) != CONNECTION_OK) {
        if (*conn) {
            PQfinish(*conn);
        }
        *conn = tg_pg_connect(pool->url, 2, errstr, errlen);
    }
    if (!*conn) {
        api_pool_put(pool, *slot);
        return NULL;
    }
    return *conn;
}

void api_pool_put(api_pool_t *pool, int slot) {
    pthread_mutex_lock(&pool->lock);
    pool->busy[slot] = 0;
    pthread_cond_signal(&pool->freed);
    pthread_mutex_unlock(&pool->lock);
}

/* ---- the read cache ---------------------------------------------------- */

void api_cache_init(api_cache_t *c, long ttl_ms) {
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
    c->ttl_ms = ttl_ms;
}

void api_cache_close(api_cache_t *c) {
    for (int i = 0; i < API_CACHE_SLOTS; i++) {
        free(c->entries[i].body);
    }
    pthread_mutex_destroy(&c->lock);
}

/* The request's path and query as the cache's key; 0 when they do not fit
 * (such a request is answered without the cache, never under a key cut
 * short that another request could share). */
static int cache_key(struct mg_connection *conn, char *key, size_t len) {
    const struct mg_request_info *ri = mg_get_request_info(conn);
    int n = snprintf(key, len, "%s?%s", ri->local_uri, ri->query_string ? ri->query_string : "");
    return n >= 0 && (size_t)n < len;
}

/* One write for headers and body: the reply leaves in one segment. */
static void send_200(struct mg_connection *conn, const char *body, size_t len) {
    char head[160];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nCache-Control: no-store\r\n\r\n",
                     len);
    char *buf = malloc((size_t)n + len);
    if (!buf) {
        mg_write(conn, head, (size_t)n);
        mg_write(conn, body, len);
        return;
    }
    memcpy(buf, head, (size_t)n);
    memcpy(buf + n, body, len);
    mg_write(conn, buf, (size_t)n + len);
    free(buf);
}

/* Whether e may answer now; claims the refresh of an aged-out entry for
 * the first caller (who then gets 0 and queries). Called under the lock. */
static int entry_usable(api_cache_t *c, api_cache_entry_t *e, uint64_t generation, int64_t now) {
    if (e->generation != generation) {
        return 0;
    }
    if (now - e->at_ms < c->ttl_ms) {
        return 1;
    }
    /* A refresh that has not finished in a second is taken over. */
    if (e->refresh_at_ms && now - e->refresh_at_ms < 1000) {
        return 1;
    }
    e->refresh_at_ms = now;
    return 0;
}

int api_cache_reply(api_cache_t *c, struct mg_connection *conn, uint64_t generation) {
    char key[API_CACHE_KEY_MAX];
    char *copy = NULL;
    size_t len = 0;
    if (c->ttl_ms <= 0 || !cache_key(conn, key, sizeof key)) {
        return 0;
    }
    int64_t now = tg_mono_ms();
    pthread_mutex_lock(&c->lock);
    for (int i = 0; i < API_CACHE_SLOTS; i++) {
        api_cache_entry_t *e = &c->entries[i];
        if (!e->body || strcmp(e->key, key)) {
            continue;
        }
        if (entry_usable(c, e, generation, now) && (copy = malloc(e->len)) != NULL) {
            memcpy(copy, e->body, e->len);
            len = e->len;
        }
        break;
    }
    pthread_mutex_unlock(&c->lock);
    if (copy) {
        send_200(conn, copy, len);
        free(copy);
    }
    return copy != NULL;
}

/* The slot for key: its own, else an empty or the oldest one. */
static api_cache_entry_t *cache_slot(api_cache_t *c, const char *key) {
    api_cache_entry_t *oldest = &c->entries[0];
    for (int i = 0; i < API_CACHE_SLOTS; i++) {
        api_cache_entry_t *e = &c->entries[i];
        if (!e->body || !strcmp(e->key, key)) {
            return e;
        }
        if (e->at_ms < oldest->at_ms) {
            oldest = e;
        }
    }
    return oldest;
}

int api_cache_store_reply(api_cache_t *c, struct mg_connection *conn, uint64_t generation,
                          cJSON *body) {
    char key[API_CACHE_KEY_MAX];
    char *text = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    if (!text) {
        api_error(conn, 500, "internal", "out of memory", NULL);
        return 500;
    }
    size_t len = strlen(text);
    send_200(conn, text, len);
    if (c->ttl_ms <= 0 || !cache_key(conn, key, sizeof key)) {
        free(text);
        return 200;
    }
    pthread_mutex_lock(&c->lock);
    api_cache_entry_t *e = cache_slot(c, key);
    free(e->body);
    snprintf(e->key, sizeof e->key, "%s", key);
    e->generation = generation;
    e->at_ms = tg_mono_ms();
    e->refresh_at_ms = 0;
    e->body = text;
    e->len = len;
    pthread_mutex_unlock(&c->lock);
    return 200;
}

/* ---- replies, auth ----------------------------------------------------- */

void api_error(struct mg_connection *conn, int status, const char *code, const char *message,
               const char *extra_headers) {
    tg_http_reply_json(conn, status, tg_http_error_body(code, message), extra_headers);
}

int api_method_not_allowed(struct mg_connection *conn, const char *allow) {
    char headers[64], message[96];
    snprintf(headers, sizeof headers, "Allow: %s\r\n", allow);
    snprintf(message, sizeof message, "%s is not allowed here (allowed: %s)",
             mg_get_request_info(conn)->request_method, allow);
    api_error(conn, 405, "method_not_allowed", message, headers);
    return 405;
}

int api_authorized(struct mg_connection *conn, const char *token) {
    if (!token || !*token) {
        return 1;
    }
    const char *auth = mg_get_header(conn, "Authorization");
    static const char scheme[] = "Bearer ";
    if (auth && !strncmp(auth, scheme, sizeof scheme - 1) &&
        orch_token_equal(auth + sizeof scheme - 1, token)) {
        return 1;
    }
    api_error(conn, 401, "unauthorized",
              auth ? "the bearer token is wrong"
                   : "this endpoint needs Authorization: Bearer <API_TOKEN>",
              "WWW-Authenticate: Bearer\r\n");
    return 0;
}

/* ---- bodies ------------------------------------------------------------ */

/* How long a body may take to arrive: the server's request_timeout_ms,
 * which also bounds the headers. */
static int64_t body_deadline_ms(struct mg_connection *conn) {
    const char *v = mg_get_option(mg_get_context(conn), "request_timeout_ms");
    long ms = v ? strtol(v, NULL, 10) : 0;
    return tg_mono_ms() + (ms > 0 ? ms : 5000);
}

static int body_read(struct mg_connection *conn, char **out, size_t *len) {
    const struct mg_request_info *ri = mg_get_request_info(conn);
    *out = NULL;
    *len = 0;
    if (ri->content_length > API_BODY_MAX) {
        return 413;
    }
    char *buf = malloc(API_BODY_MAX + 2);
    int n;
    if (!buf) {
        return 500;
    }
    /* Read to the end (civetweb's example does not), one byte past the
     * bound to notice a chunked body that is too large. One byte a call:
     * mg_read returns only once all it was asked for arrived, so a body
     * trickling in a byte a second would hold this thread past any
     * deadline; bytes civetweb already holds are copied, not received. */
    int64_t deadline = body_deadline_ms(conn);
    while ((n = mg_read(conn, buf + *len, 1)) > 0) {
        *len += (size_t)n;
        if (*len > API_BODY_MAX) {
            free(buf);
            return 413;
        }
        if (tg_mono_ms() > deadline) {
            free(buf);
            return 408;
        }
    }
    buf[*len] = '\0';
    *out = buf;
    return n < 0 ? 400 : 0;
}

int api_body_json(struct mg_connection *conn, cJSON **out) {
    char *body;
    size_t len;
    int status = body_read(conn, &body, &len);
    *out = NULL;
    if (status == 413 || status == 408) {
        /* civetweb reads whatever body a handler left before it closes the
         * connection, as slowly as the client sends it; only its own error
         * reply closes at once, so these two answers are its plain text. */
        mg_send_http_error(conn, status, "%s",
                           status == 413 ? "the request body is larger than 64 KiB"
                                         : "the request body arrived too slowly");
    } else if (status) {
        api_error(conn, status, "bad_request", "the request body could not be read", NULL);
    } else if (len > strspn(body, " \t\r\n")) {
        *out = tg_json_parse(body, len, TG_JSON_MAX_DEPTH);
        if (!cJSON_IsObject(*out)) {
            cJSON_Delete(*out);
            *out = NULL;
            status = 400;
            api_error(conn, 400, "bad_request", "the request body must be a JSON object", NULL);
        }
    }
    free(body);
    return status;
}

/* ---- query parameters -------------------------------------------------- */

int api_query_str(struct mg_connection *conn, const char *name, char *out, size_t outlen) {
    const char *qs = mg_get_request_info(conn)->query_string;
    out[0] = '\0';
    if (!qs) {
        return 0;
    }
    int n = mg_get_var(qs, strlen(qs), name, out, outlen);
    return n == -1 ? 0 : n < 0 ? -1 : 1;
}

int api_query_long(struct mg_connection *conn, const char *name, long def, long min, long max,
                   long *out) {
    char v[32], *end;
    int rc = api_query_str(conn, name, v, sizeof v);
    *out = def;
    if (rc <= 0) {
        return rc;
    }
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < min || n > max) {
        return -1;
    }
    *out = n;
    return 1;
}

int api_query_bool(struct mg_connection *conn, const char *name, int def, int *out) {
    char v[16];
    int rc = api_query_str(conn, name, v, sizeof v);
    *out = def;
    if (rc <= 0) {
        return rc;
    }
    if (!strcmp(v, "true") || !strcmp(v, "1") || v[0] == '\0') {
        *out = 1;
    } else if (!strcmp(v, "false") || !strcmp(v, "0")) {
        *out = 0;
    } else {
        return -1;
    }
    return 1;
}
