/* Redis on hiredis: connect with retry, and pipelined writes whose every
 * reply is checked. A NULL reply means the connection is dead. */
#ifndef TG_REDIS_H
#define TG_REDIS_H

#include <stddef.h>
#include <hiredis/hiredis.h>
#include "tg/error.h"

/* Connects to url (redis://[:password@]host[:port][/db]), retrying until
 * timeout_s passes; authenticates and selects the db. The caller frees the
 * context with redisFree(). */
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
