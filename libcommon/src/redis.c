/* Redis helpers on hiredis: URL parsing (libcurl's), connect with retry,
 * pipelining. */
#include "tg/redis.h"
#include "tg/backoff.h"
#include "tg/log.h"
#include "tg/shutdown.h"
#include "tg/time.h"
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void tg_redis_url_free(tg_redis_url_t *u) {
    free(u->host);
    free(u->user);
    free(u->password);
    memset(u, 0, sizeof(*u));
}

/* A part of the URL, percent-decoded; *out stays NULL when the part is absent. */
static CURLUcode url_part(CURLU *h, CURLUPart what, char **out) {
    char *v = NULL;
    CURLUcode uc = curl_url_get(h, what, &v, CURLU_URLDECODE);
    if (uc == CURLUE_OK && !(*out = strdup(v))) {
        uc = CURLUE_OUT_OF_MEMORY;
    }
    curl_free(v);
    return uc;
}

/* The part curl names by code, for an error message. */
static const char *part_name(CURLUPart what) {
    switch (what) {
    case CURLUPART_USER:
        return "user name";
    case CURLUPART_PASSWORD:
        return "password";
    case CURLUPART_HOST:
        return "host";
    default:
        return "URL";
    }
}

/* Host, user and password, percent-decoded (user and password may hold any
 * byte; the host is checked by curl). */
static int url_names(CURLU *h, tg_redis_url_t *u, char *errstr, size_t errlen) {
    static const CURLUPart parts[] = {CURLUPART_HOST, CURLUPART_USER, CURLUPART_PASSWORD};
    char **out[] = {&u->host, &u->user, &u->password};
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        CURLUcode uc = url_part(h, parts[i], out[i]);
        if (uc == CURLUE_OUT_OF_MEMORY) {
            return tg_fail(TG_ERR_NOMEM, errstr, errlen, "REDIS_URL: out of memory");
        }
        if (uc != CURLUE_OK && uc != CURLUE_NO_USER && uc != CURLUE_NO_PASSWORD) {
            return tg_fail(TG_ERR_CONFIG, errstr, errlen, "REDIS_URL: bad %s (%s)",
                           part_name(parts[i]), curl_url_strerror(uc));
        }
    }
    if (u->user && !*u->user) { /* redis://:password@host: the default user */
        free(u->user);
        u->user = NULL;
    }
    size_t hl = strlen(u->host);
    if (hl > 2 && u->host[0] == '[' && u->host[hl - 1] == ']') { /* hiredis wants ::1 */
        memmove(u->host, u->host + 1, hl - 2);
        u->host[hl - 2] = '\0';
    }
    return TG_OK;
}

/* Port (6379 when absent) and database (the path, 0 when absent). */
static int url_numbers(CURLU *h, tg_redis_url_t *u, char *errstr, size_t errlen) {
    char *port = NULL, *path = NULL, *end;
    int rc = TG_OK;
    CURLUcode uc = curl_url_get(h, CURLUPART_PORT, &port, 0);
    u->port = uc == CURLUE_OK ? atoi(port) : 6379; /* curl checked it is 1..65535 */
    if (uc != CURLUE_OK && uc != CURLUE_NO_PORT) {
        rc = tg_fail(TG_ERR_CONFIG, errstr, errlen, "REDIS_URL: bad port (%s)",
                     curl_url_strerror(uc));
    } else if ((uc = curl_url_get(h, CURLUPART_PATH, &path, 0)) != CURLUE_OK) {
        rc = tg_fail(uc == CURLUE_OUT_OF_MEMORY ? TG_ERR_NOMEM : TG_ERR_CONFIG, errstr, errlen,
                     "REDIS_URL: bad database (%s)", curl_url_strerror(uc));
    } else if (path[0] == '/' && path[1]) {
        long db = strtol(path + 1, &end, 10);
        if (*end || end == path + 1 || db < 0 || db > 1000) {
            rc = tg_fail(TG_ERR_CONFIG, errstr, errlen,
                         "REDIS_URL: the database (the path) must be a number 0-1000");
        }
        u->db = (int)db;
    }
    curl_free(port);
    curl_free(path);
    return rc;
}

int tg_redis_url_parse(const char *url, tg_redis_url_t *u, char *errstr, size_t errlen) {
    memset(u, 0, sizeof(*u));
    if (strncasecmp(url, "redis://", 8)) {
        return tg_fail(TG_ERR_CONFIG, errstr, errlen, "REDIS_URL: must start with redis://");
    }
    CURLU *h = curl_url();
    if (!h) {
        return tg_fail(TG_ERR_NOMEM, errstr, errlen, "REDIS_URL: out of memory");
    }
    /* redis is no scheme curl speaks, so it must be allowed explicitly. */
    CURLUcode uc = curl_url_set(h, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME);
    int rc = uc == CURLUE_OK ? TG_OK
             : uc == CURLUE_OUT_OF_MEMORY
                 ? tg_fail(TG_ERR_NOMEM, errstr, errlen, "REDIS_URL: out of memory")
                 : tg_fail(TG_ERR_CONFIG, errstr, errlen, "REDIS_URL: not a valid URL (%s)",
                           curl_url_strerror(uc));
    if (!rc) {
        rc = url_names(h, u, errstr, errlen);
    }
    if (!rc) {
        rc = url_numbers(h, u, errstr, errlen);
    }
    curl_url_cleanup(h);
    if (rc) {
        tg_redis_url_free(u);
    }
    return rc;
}

/* AUTH and SELECT on a fresh connection. */
static int prepare(redisContext *c, const tg_redis_url_t *u, char *errstr, size_t errlen) {
    char dbs[16];
    snprintf(dbs, sizeof(dbs), "%d", u->db);
    if (u->password) {
        const char *argv[] = {"AUTH", u->user ? u->user : u->password, u->password};
        if (tg_redis_cmd(c, NULL, errstr, errlen, u->user ? 3 : 2, argv, NULL)) {
            return TG_ERR_CONFIG;
        }
    }
    const char *argv[] = {"SELECT", dbs};
    return tg_redis_cmd(c, NULL, errstr, errlen, 2, argv, NULL);
}

/* One try: a prepared connection, or NULL with why and *fatal set when
 * trying again cannot help (wrong credentials). */
static redisContext *connect_once(const tg_redis_url_t *u, char *why, size_t whylen, int *fatal) {
    struct timeval tv = {.tv_sec = 2, .tv_usec = 0};
    redisContext *c = redisConnectWithTimeout(u->host, u->port, tv);
    if (!c || c->err) {
        snprintf(why, whylen, "%s (%s:%d)", c ? c->errstr : "out of memory", u->host, u->port);
        redisFree(c);
        return NULL;
    }
    struct timeval io = {.tv_sec = 30, .tv_usec = 0};
    redisSetTimeout(c, io);
    int rc = prepare(c, u, why, whylen);
    if (rc == TG_OK) {
        return c;
    }
    redisFree(c);
    *fatal = rc == TG_ERR_CONFIG || strstr(why, "NOAUTH") || strstr(why, "WRONGPASS");
    return NULL;
}

redisContext *tg_redis_connect(const char *url, int timeout_s, char *errstr, size_t errlen) {
    tg_redis_url_t u;
    if (tg_redis_url_parse(url, &u, errstr, errlen)) {
        return NULL;
    }
    int64_t deadline = tg_mono_ms() + (int64_t)timeout_s * 1000;
    char why[640];
    redisContext *c = NULL;
    for (int attempt = 1;; attempt++) {
        int fatal = 0;
        if ((c = connect_once(&u, why, sizeof(why), &fatal))) {
            break;
        }
        if (fatal) {
            tg_fail(TG_ERR_CONFIG, errstr, errlen, "REDIS_URL: %s", why);
            break;
        }
        int64_t wait = tg_backoff_ms(attempt, 200, 2000, 0, NULL);
        if (tg_mono_ms() + wait > deadline || tg_shutdown_requested) {
            tg_fail(TG_ERR_UNAVAILABLE, errstr, errlen, "REDIS_URL: %s (gave up after %d s)", why,
                    timeout_s);
            break;
        }
        tg_warn("Redis not reachable yet (%s); retrying in %lld ms", why, (long long)wait);
        tg_sleep_ms(wait, &tg_shutdown_requested);
    }
    tg_redis_url_free(&u);
    return c;
}

/* Turns a reply into TG_OK or an error code with errstr; frees nothing. */
static int check_reply(redisContext *c, const redisReply *r, char *errstr, size_t errlen) {
    if (!r) {
        return tg_fail(TG_ERR_REDIS, errstr, errlen, "redis: connection lost: %s",
                       c->errstr[0] ? c->errstr : "no reply");
    }
    if (r->type == REDIS_REPLY_ERROR) {
        return tg_fail(TG_ERR_REDIS, errstr, errlen, "redis: %s", r->str);
    }
    return TG_OK;
}

int tg_redis_cmd(redisContext *c, redisReply **out, char *errstr, size_t errlen, int argc,
                 const char **argv, const size_t *argvlen) {
    if (out) {
        *out = NULL;
    }
    redisReply *r = redisCommandArgv(c, argc, argv, argvlen);
    int rc = check_reply(c, r, errstr, errlen);
    if (rc == TG_OK && out) {
        *out = r;
    } else if (r) {
        freeReplyObject(r);
    }
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
    if (p) {
        p->c = c;
    }
    return p;
}

/* Reads every pending reply, remembering the first failure. */
static void drain(tg_redis_pipe_t *p) {
    for (; p->pending > 0; p->pending--) {
        redisReply *r = NULL;
        if (redisGetReply(p->c, (void **)&r) != REDIS_OK) {
            if (!p->err) {
                p->err = tg_fail(TG_ERR_REDIS, p->errstr, sizeof(p->errstr),
                                 "redis: connection lost during pipelined write: %s", p->c->errstr);
            }
            p->pending = 0;
            return;
        }
        if (!p->err) {
            p->err = check_reply(p->c, r, p->errstr, sizeof(p->errstr));
        }
        freeReplyObject(r);
    }
}

int tg_redis_pipe_add(tg_redis_pipe_t *p, int argc, const char **argv, const size_t *argvlen) {
    if (p->err) {
        return p->err;
    }
    if (redisAppendCommandArgv(p->c, argc, argv, argvlen) != REDIS_OK) {
        return p->err = tg_fail(TG_ERR_NOMEM, p->errstr, sizeof(p->errstr),
                                "redis: cannot queue command");
    }
    if (++p->pending >= TG_REDIS_PIPE_BATCH) {
        drain(p);
    }
    return p->err;
}

int tg_redis_pipe_flush(tg_redis_pipe_t *p, char *errstr, size_t errlen) {
    drain(p);
    if (p->err) {
        return tg_fail(p->err, errstr, errlen, "%s", p->errstr);
    }
    return TG_OK;
}

void tg_redis_pipe_destroy(tg_redis_pipe_t *p) {
    if (!p) {
        return;
    }
    if (!p->c->err) {
        drain(p);
    }
    free(p);
}

int tg_redis_ping(redisContext *c) {
    if (!c || c->err) {
        return 0;
    }
    redisReply *r = redisCommand(c, "PING");
    int ok = r && r->type == REDIS_REPLY_STATUS;
    if (r) {
        freeReplyObject(r);
    }
    return ok;
}
