/* HTTP plumbing of the API: a small PostgreSQL pool for handler threads,
 * bearer-token checks, bounded request bodies, query parameters and
 * replies. */
#ifndef ORCH_API_HTTP_H
#define ORCH_API_HTTP_H

#include <civetweb.h>
#include <cjson/cJSON.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdint.h>

#define API_POOL_SIZE 8          /* as many as civetweb has request threads */
#define API_BODY_MAX (64 * 1024) /* larger request bodies get 413 */

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t freed;
    PGconn *conns[API_POOL_SIZE];
    int busy[API_POOL_SIZE];
    const char *url;
} api_pool_t;

void api_pool_init(api_pool_t *pool, const char *url);
void api_pool_close(api_pool_t *pool);
/* A connection for this thread alone (slot identifies it for api_pool_put),
 * or NULL with errstr when none is free within 5 s or connecting failed. */
PGconn *api_pool_get(api_pool_t *pool, int *slot, char *errstr, size_t errlen);
void api_pool_put(api_pool_t *pool, int slot);

/* Recent GET replies, valid while the run state generation they were read
 * at is current and for at most ttl_ms (which bounds how stale a reply can
 * be when another orchestrator replica wrote). ttl_ms 0 disables it.
 * When an entry only aged out, one request refreshes it while the others
 * keep getting it, so an expiry never sends every thread to PostgreSQL. */
#define API_CACHE_SLOTS 64
#define API_CACHE_KEY_MAX 512 /* a longer path and query is not cached */

typedef struct {
    char key[API_CACHE_KEY_MAX];
    uint64_t generation;
    int64_t at_ms;
    int64_t refresh_at_ms; /* a request is refreshing it since then (0: none) */
    char *body;
    size_t len;
} api_cache_entry_t;

typedef struct {
    pthread_mutex_t lock;
    api_cache_entry_t entries[API_CACHE_SLOTS];
    long ttl_ms;
} api_cache_t;

void api_cache_init(api_cache_t *c, long ttl_ms);
void api_cache_close(api_cache_t *c);
/* Answers this GET from the cache when it holds it for generation: 1 if so. */
int api_cache_reply(api_cache_t *c, struct mg_connection *conn, uint64_t generation);
/* Replies 200 with body (which it frees), remembering it for generation
 * (read before the query that built body). Returns 200. */
int api_cache_store_reply(api_cache_t *c, struct mg_connection *conn, uint64_t generation,
                          cJSON *body);

/* Replies {"success":false,"error":{code,message}} with extra header lines. */
void api_error(struct mg_connection *conn, int status, const char *code, const char *message,
               const char *extra_headers);

/* 405 naming the allowed methods. Returns 405. */
int api_method_not_allowed(struct mg_connection *conn, const char *allow);

/* When token is set, checks "Authorization: Bearer <token>" in constant
 * time; on failure replies 401 and returns 0. */
int api_authorized(struct mg_connection *conn, const char *token);

/* Reads the whole body (at most API_BODY_MAX bytes) and parses it as a JSON
 * object; an empty body gives *out = NULL. Returns 0, or the status of the
 * error reply it sent (400, 413). */
int api_body_json(struct mg_connection *conn, cJSON **out);

/* Query parameters. Each returns 0 (absent: *out = def), 1 (present and
 * valid) or -1 (malformed: the caller answers 400). */
int api_query_long(struct mg_connection *conn, const char *name, long def, long min, long max,
                   long *out);
int api_query_bool(struct mg_connection *conn, const char *name, int def, int *out);
int api_query_str(struct mg_connection *conn, const char *name, char *out, size_t outlen);

#endif
