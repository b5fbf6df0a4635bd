/* Redis helpers on hiredis: URL parsing, connect with retry, pipelining. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tg/backoff.h"
#include "tg/envelope.h"
#include "tg/log.h"
#include "tg/redis.h"
#include "tg/service.h"

typedef struct {
    char host[256];
    int port;
    char password[256];
    int db;
} redis_url_t;

static int parse_url(const char *url, redis_url_t *u, char *errstr, size_t errlen) {
    memset(u, 0, sizeof(*u));
    u->port = 6379;
    if (strncmp(url, "redis://", 8))
        return tg_fail(TG_ERR_CONFIG, errstr, errlen, "REDIS_URL: \"%s\" must start with redis://", url);
    const char *p = url + 8;
    const char *at = strrchr(p, '@');
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *pw = colon ? colon + 1 : p;
        snprintf(u->password, sizeof(u->password), "%.*s", (int)(at - pw), pw);
        p = at + 1;
    }
    size_t hostlen = strcspn(p, ":/");
    if (hostlen == 0 || hostlen >= sizeof(u->host))
        return tg_fail(TG_ERR_CONFIG, errstr, errlen, "REDIS_URL: no host in \"%s\"", url);
    memcpy(u->host, p, hostlen);
    p += hostlen;
    if (*p == ':') {
        char *end;
        long port = strtol(p + 1, &end, 10);
        if (end == p + 1 || port <= 0 || port > 65535 || (*end && *end != '/'))
            return tg_fail(TG_ERR_CONFIG, errstr, errlen, "REDIS_URL: bad port in \"%s\"", url);
        u->port = (int)port;
        p = end;
    }
    if (*p == '/' && p[1]) {
        char *end;
        long db = strtol(p + 1, &end, 10);
        if (*end || db < 0 || db > 1000)
            return tg_fail(TG_ERR_CONFIG, errstr, errlen, "REDIS_URL: bad database in \"%s\"", url);
        u->db = (int)db;
    }
    return TG_OK;
}

/* AUTH and SELECT on a fresh connection. */
static int prepare(redisContext *c, const redis_url_t *u, char *errstr, size_t errlen) {
    char dbs[16];
    snprintf(dbs, sizeof(dbs), "%d", u->db);
    if (*u->password) {
        const char *argv[] = {"AUTH", u->password};
        if (tg_redis_cmd(c, NULL, errstr, errlen, 2, argv, NULL))
            return TG_ERR_CONFIG;
    }
    const char *argv[] = {"SELECT", dbs};
    return tg_redis_cmd(c, NULL, errstr, errlen, 2, argv, NULL);
}

redisContext *tg_redis_connect(const char *url, int timeout_s, char *errstr, size_t errlen) {
    redis_url_t u;
    if (parse_url(url, &u, errstr, errlen))
        return NULL;
    int64_t deadline = tg_mono_ms() + (int64_t)timeout_s * 1000;
    struct timeval tv = {.tv_sec = 2, .tv_usec = 0};
    char why[640];
    for (int attempt = 1;; attempt++) {
        redisContext *c = redisConnectWithTimeout(u.host, u.port, tv);
        if (c && !c->err) {
            struct timeval io = {.tv_sec = 30, .tv_usec = 0};
            redisSetTimeout(c, io);
            int rc = prepare(c, &u, why, sizeof(why));
            if (rc == TG_OK)
                return c;
            redisFree(c);
            if (rc == TG_ERR_CONFIG || strstr(why, "NOAUTH") || strstr(why, "WRONGPASS")) {
                tg_fail(TG_ERR_CONFIG, errstr, errlen, "REDIS_URL: %s", why);
                return NULL;
            }
        } else {
            snprintf(why, sizeof(why), "%s (%s:%d)", c ? c->errstr : "out of memory", u.host, u.port);
            redisFree(c);
        }
        int64_t wait = tg_backoff_ms(attempt, 200, 2000, 0, NULL);
        if (tg_mono_ms() + wait > deadline || tg_shutdown_requested) {
            tg_fail(TG_ERR_UNAVAILABLE, errstr, errlen, "REDIS_URL: %s (gave up after %d s)", why,
                    timeout_s);
            return NULL;
        }
        tg_warn("Redis not reachable yet (%s); retrying in %lld ms", why, (long long)wait);
        tg_sleep_ms(wait, (volatile int *)&tg_shutdown_requested);
    }
}

/* Turns a reply into TG_OK or an error code with errstr; frees nothing. */
static int check_reply(redisContext *c, const redisReply *r, char *errstr, size_t errlen) {
    if (!r)
        return tg_fail(TG_ERR_REDIS, errstr, errlen, "redis: connection lost: %s",
                       c->errstr[0] ? c->errstr : "no reply");
    if (r->type == REDIS_REPLY_ERROR)
        return tg_fail(TG_ERR_REDIS, errstr, errlen, "redis: %s", r->str);
    return TG_OK;
}

int tg_redis_cmd(redisContext *c, redisReply **out, char *errstr, size_t errlen, int argc,
                 const char **argv, const size_t *argvlen) {
    if (out)
        *out = NULL;
    redisReply *r = redisCommandArgv(c, argc, argv, argvlen);
    int rc = check_reply(c, r, errstr, errlen);
    if (rc == TG_OK && out)
        *out = r;
    else if (r)
        freeReplyObject(r);
    return rc;
}

struct tg_redis_pipe_s {
    redisContext *c;
    size_t pending;
    int err;
    char errstr[256];
};

tg_redis_pipe_t *tg_redis_pipe_new(redisContext *c) {
    tg_redis_pipe_t *p = calloc(1, sizeof(*p));
    if (p)
        p->c = c;
    return p;
}

/* Reads every pending reply, remembering the first failure. */
static void drain(tg_redis_pipe_t *p) {
    for (; p->pending > 0; p->pending--) {
        redisReply *r = NULL;
        if (redisGetReply(p->c, (void **)&r) != REDIS_OK) {
            if (!p->err)
                p->err = tg_fail(TG_ERR_REDIS, p->errstr, sizeof(p->errstr),
                                 "redis: connection lost during pipelined write: %s", p->c->errstr);
            p->pending = 0;
            return;
        }
        if (!p->err)
            p->err = check_reply(p->c, r, p->errstr, sizeof(p->errstr));
        freeReplyObject(r);
    }
}

int tg_redis_pipe_add(tg_redis_pipe_t *p, int argc, const char **argv, const size_t *argvlen) {
    if (p->err)
        return p->err;
    if (redisAppendCommandArgv(p->c, argc, argv, argvlen) != REDIS_OK)
        return p->err = tg_fail(TG_ERR_NOMEM, p->errstr, sizeof(p->errstr), "redis: cannot queue command");
    if (++p->pending >= TG_REDIS_PIPE_BATCH)
        drain(p);
    return p->err;
}

int tg_redis_pipe_flush(tg_redis_pipe_t *p, char *errstr, size_t errlen) {
    drain(p);
    if (p->err)
        return tg_fail(p->err, errstr, errlen, "%s", p->errstr);
    return TG_OK;
}

void tg_redis_pipe_destroy(tg_redis_pipe_t *p) {
    if (!p)
        return;
    if (!p->c->err)
        drain(p);
    free(p);
}

int tg_redis_ping(redisContext *c) {
    if (!c || c->err)
        return 0;
    redisReply *r = redisCommand(c, "PING");
    int ok = r && r->type == REDIS_REPLY_STATUS;
    if (r)
        freeReplyObject(r);
    return ok;
}
