/* Layer 2 (clients).
 * Redis on hiredis: connect with retry, and pipelined writes whose every
 * reply is checked. A NULL reply means the connection is dead. */
#ifndef TG_REDIS_H
#define TG_REDIS_H

#include "tg/error.h"
#include <hiredis/hiredis.h>
#include <stddef.h>

/* REDIS_URL taken apart: redis://[[user]:password@]host[:port][/db], user
 * and password percent-decoded (a '@' in a password is written %40). */
typedef struct {
    char *host;     /* without the brackets of an IPv6 literal */
    int port;       /* 6379 when absent */
    char *user;     /* NULL when absent: AUTH with the password alone */
    char *password; /* NULL when absent: no AUTH */
    int db;         /* 0 when absent */
} tg_redis_url_t;

/* Parses url into u with libcurl's URL parser. On success the caller frees
 * u with tg_redis_url_free(); on failure u holds nothing and errstr says
 * what is wrong without repeating the URL (it may hold a password). */
int tg_redis_url_parse(const char *url, tg_redis_url_t *u, char *errstr,
                       size_t errlen) TG_WARN_UNUSED;
void tg_redis_url_free(tg_redis_url_t *u);

/* Connects to url (see tg_redis_url_t), retrying until timeout_s passes;
 * authenticates (AUTH [user] password) and selects the db. The caller frees
 * the context with redisFree(). */
redisContext *tg_redis_connect(const char *url, int timeout_s, char *errstr, size_t errlen);

/* Runs one command given as argv; the caller frees *out (if out) with
 * freeReplyObject(). An error reply gives TG_ERR_REDIS. */
int tg_redis_cmd(redisContext *c, redisReply **out, char *errstr, size_t errlen, int argc,
                 const char **argv, const size_t *argvlen) TG_WARN_UNUSED;

/* Pipelined writes: queue commands, then tg_redis_pipe_flush reads every
 * reply and fails on the first error reply (all replies are still read). */
typedef struct tg_redis_pipe_s tg_redis_pipe_t;
tg_redis_pipe_t *tg_redis_pipe_new(redisContext *c);
int tg_redis_pipe_add(tg_redis_pipe_t *p, int argc, const char **argv,
                      const size_t *argvlen) TG_WARN_UNUSED;
/* Reads all pending replies. Flushes automatically after every
 * TG_REDIS_PIPE_BATCH commands to bound memory. */
int tg_redis_pipe_flush(tg_redis_pipe_t *p, char *errstr, size_t errlen) TG_WARN_UNUSED;
/* Frees the pipe (does not flush; pending replies are drained and dropped). */
void tg_redis_pipe_destroy(tg_redis_pipe_t *p);
#define TG_REDIS_PIPE_BATCH 2000

int tg_redis_ping(redisContext *c);

#endif
