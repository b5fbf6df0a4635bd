/* Redis side of a graph version: pipelined writes of its keys, verification,
 * the atomic switch of graph:version (a Lua script that refuses a version
 * whose nodes key is missing), and non-blocking deletion of old versions. */
#include "graph.h"
#include "tg/log.h"
#include "tg/redis.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define SADD_BATCH 500   /* members per SADD */
#define EXISTS_BATCH 500 /* keys per EXISTS */
#define SCAN_COUNT "1000"

static int key_printf(tg_buf_t *b, const char *fmt, const char *version, const char *id) {
    tg_buf_reset(b);
    return tg_buf_appendf(b, fmt, version, id ? id : "");
}

#ifdef TG_FAULT_HOOKS /* test builds only: the image has none of this */
/* Test-only fault injection: cuts the socket as if Redis went away, so the
 * rest of the publish meets a dead connection exactly like in production. */
static void cut_connection(redisContext *c, tg_redis_pipe_t *p, long keys) {
    char err[256];
    if (tg_redis_pipe_flush(p, err, sizeof(err)) != TG_OK) {
        tg_warn("GRAPH_FAIL_AFTER_KEYS: flush before the cut failed: %s", err);
    }
    tg_warn("GRAPH_FAIL_AFTER_KEYS: cutting the Redis connection after %ld keys", keys);
    shutdown(c->fd, SHUT_RDWR);
}
#endif

/* Sends what is queued without waiting for replies once it passes
 * SEND_AHEAD bytes: Redis works on these commands while the next JSON is
 * built, and hiredis never shifts a multi-megabyte output buffer. The
 * replies are read by the pipe's flush (SET answers "+OK", 5 bytes each). */
#define SEND_AHEAD (64 * 1024)

static int send_ahead(redisContext *c) {
    int done = 0;
    if (sdslen(c->obuf) < SEND_AHEAD) {
        return TG_OK;
    }
    while (!done) {
        if (redisBufferWrite(c, &done) != REDIS_OK) {
            return TG_ERR_REDIS;
        }
    }
    return TG_OK;
}

static int pipe_set(redisContext *c, tg_redis_pipe_t *p, const tg_buf_t *key, const tg_buf_t *val) {
    const char *argv[] = {"SET", key->data, val->data};
    const size_t len[] = {3, key->len, val->len};
    int rc = tg_redis_pipe_add(p, 3, argv, len);
    return rc ? rc : send_ahead(c);
}

/* SET graph:{v}:node:{id} and graph:{v}:neighbors:{id} for every stop. */
static int publish_nodes(redisContext *c, tg_redis_pipe_t *p, const gb_graph_t *g,
                         const char *version, long fail_after_keys) {
    tg_buf_t key, val;
    tg_buf_init(&key);
    tg_buf_init(&val);
    int rc = TG_OK;
    long keys = 0;
    for (size_t i = 0; i < g->n_nodes && rc == TG_OK; i++) {
        const gb_node_t *n = &g->nodes[i];
        tg_buf_reset(&val);
        rc = key_printf(&key, "graph:%s:node:%s", version, n->id);
        if (!rc && !(rc = gb_node_json(&val, n))) {
            rc = pipe_set(c, p, &key, &val);
        }
        tg_buf_reset(&val);
        if (!rc && !(rc = key_printf(&key, "graph:%s:neighbors:%s", version, n->id)) &&
            !(rc = gb_neighbors_json(&val, g, i))) {
            rc = pipe_set(c, p, &key, &val);
        }
        keys += 2;
#ifdef TG_FAULT_HOOKS
        if (fail_after_keys > 0 && keys >= fail_after_keys && keys - 2 < fail_after_keys) {
            cut_connection(c, p, keys);
        }
#else
        (void)fail_after_keys;
#endif
    }
    tg_buf_free(&key);
    tg_buf_free(&val);
    return rc;
}

/* SADD graph:{v}:nodes in batches of SADD_BATCH stop ids. */
static int publish_node_set(tg_redis_pipe_t *p, const gb_graph_t *g, const char *nodes_key) {
    const char *argv[SADD_BATCH + 2];
    size_t len[SADD_BATCH + 2];
    argv[0] = "SADD", len[0] = 4;
    argv[1] = nodes_key, len[1] = strlen(nodes_key);
    int rc = TG_OK;
    for (size_t i = 0; i < g->n_nodes && rc == TG_OK;) {
        int argc = 2;
        for (; argc < SADD_BATCH + 2 && i < g->n_nodes; i++, argc++) {
            argv[argc] = g->nodes[i].id;
            len[argc] = strlen(g->nodes[i].id);
        }
        rc = tg_redis_pipe_add(p, argc, argv, len);
    }
    return rc;
}

int gb_redis_publish(redisContext *c, const gb_graph_t *g, const char *version,
                     long fail_after_keys, char *errstr, size_t errlen) {
    tg_redis_pipe_t *p = tg_redis_pipe_new(c);
    if (!p) {
        return tg_fail(TG_ERR_NOMEM, errstr, errlen, "redis: out of memory");
    }
    char nodes_key[128];
    snprintf(nodes_key, sizeof(nodes_key), "graph:%s:nodes", version);
    int rc = publish_nodes(c, p, g, version, fail_after_keys);
    if (rc == TG_OK) {
        rc = publish_node_set(p, g, nodes_key);
    }
    /* The flush reports the first failed command, also when an add failed. */
    int frc = tg_redis_pipe_flush(p, errstr, errlen);
    tg_redis_pipe_destroy(p);
    if (frc) {
        return frc;
    }
    return rc ? tg_fail(rc, errstr, errlen, "graph %s: out of memory writing keys", version)
              : TG_OK;
}

/* ---- verification ------------------------------------------------------ */

static int integer_cmd(redisContext *c, long long *out, char *errstr, size_t errlen, int argc,
                       const char **argv, const size_t *len) {
    redisReply *r;
    int rc = tg_redis_cmd(c, &r, errstr, errlen, argc, argv, len);
    if (rc) {
        return rc;
    }
    *out = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);
    return TG_OK;
}

/* EXISTS over a batch of keys, kept as one blob of NUL-separated strings. */
static int exists_batch(redisContext *c, const tg_buf_t *keys, int nkeys, long long *found,
                        char *errstr, size_t errlen) {
    const char **argv = malloc(((size_t)nkeys + 1) * sizeof(char *));
    if (!argv) {
        return tg_fail(TG_ERR_NOMEM, errstr, errlen, "redis: out of memory");
    }
    argv[0] = "EXISTS";
    const char *s = keys->data;
    for (int i = 1; i <= nkeys; i++, s += strlen(s) + 1) {
        argv[i] = s;
    }
    int rc = integer_cmd(c, found, errstr, errlen, nkeys + 1, argv, NULL);
    free(argv);
    return rc;
}

int gb_redis_verify(redisContext *c, const gb_graph_t *g, const char *version, char *errstr,
                    size_t errlen) {
    char nodes_key[128];
    snprintf(nodes_key, sizeof(nodes_key), "graph:%s:nodes", version);
    const char *argv[] = {"SCARD", nodes_key};
    long long n = -1;
    int rc = integer_cmd(c, &n, errstr, errlen, 2, argv, NULL);
    if (rc == TG_OK && n != (long long)g->n_nodes) {
        return tg_fail(TG_ERR_REDIS, errstr, errlen, "graph %s: %s holds %lld stops, expected %zu",
                       version, nodes_key, n, g->n_nodes);
    }
    tg_buf_t keys;
    tg_buf_init(&keys);
    for (size_t i = 0; i < g->n_nodes && rc == TG_OK;) {
        tg_buf_reset(&keys);
        int nkeys = 0;
        for (; nkeys < EXISTS_BATCH && i < g->n_nodes && rc == TG_OK; i++, nkeys += 2) {
            rc = tg_buf_appendf(&keys, "graph:%s:node:%s%cgraph:%s:neighbors:%s%c", version,
                                g->nodes[i].id, 0, version, g->nodes[i].id, 0);
        }
        long long found = -1;
        if (rc == TG_OK) {
            rc = exists_batch(c, &keys, nkeys, &found, errstr, errlen);
        }
        if (rc == TG_OK && found != nkeys) {
            rc = tg_fail(TG_ERR_REDIS, errstr, errlen,
                         "graph %s: %lld of %d node/neighbors keys missing", version, nkeys - found,
                         nkeys);
        }
    }
    tg_buf_free(&keys);
    return rc;
}

/* ---- the switch -------------------------------------------------------- */

/* KEYS: graph:version, graph:{v}:nodes, graph:versions; ARGV: v. */
static const char activate_lua[] =
    "if redis.call('EXISTS', KEYS[2]) == 0 then "
    "  return redis.error_reply('ERR ' .. KEYS[2] .. ' missing: not activated') end "
    "local old = redis.call('GET', KEYS[1]) "
    "redis.call('SET', KEYS[1], ARGV[1]) "
    "redis.call('LREM', KEYS[3], 0, ARGV[1]) "
    "redis.call('LPUSH', KEYS[3], ARGV[1]) "
    /* readers such as route-api reload at once instead of at their next poll
     * (proto/redis-channels.md) */
    "redis.call('PUBLISH', 'graph:switched', ARGV[1]) "
    "return old or ''";

int gb_redis_activate(redisContext *c, const char *version, char *previous, size_t prevlen,
                      char *errstr, size_t errlen) {
    char nodes_key[128];
    snprintf(nodes_key, sizeof(nodes_key), "graph:%s:nodes", version);
    const char *argv[] = {"EVAL",    activate_lua,    "3",    GB_KEY_VERSION,
                          nodes_key, GB_KEY_VERSIONS, version};
    redisReply *r;
    int rc = tg_redis_cmd(c, &r, errstr, errlen, 7, argv, NULL);
    if (rc) {
        return rc;
    }
    snprintf(previous, prevlen, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
    return TG_OK;
}

int gb_redis_current(redisContext *c, char *out, size_t outlen, char *errstr, size_t errlen) {
    const char *argv[] = {"GET", GB_KEY_VERSION};
    redisReply *r;
    int rc = tg_redis_cmd(c, &r, errstr, errlen, 2, argv, NULL);
    if (rc) {
        return rc;
    }
    snprintf(out, outlen, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
    return TG_OK;
}

int gb_redis_has_version(redisContext *c, const char *version) {
    char nodes_key[128];
    snprintf(nodes_key, sizeof(nodes_key), "graph:%s:nodes", version);
    const char *argv[] = {"EXISTS", nodes_key};
    long long n = 0;
    char err[256];
    return integer_cmd(c, &n, err, sizeof(err), 2, argv, NULL) == TG_OK && n == 1;
}

/* ---- deleting versions ------------------------------------------------- */

/* Takes the nodes key away first, atomically unless v is active: from then
 * on no activation of v can succeed, whatever another build does. */
static const char retire_lua[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then return 0 end "
                                 "redis.call('UNLINK', KEYS[2]) "
                                 "redis.call('LREM', KEYS[3], 0, ARGV[1]) "
                                 "return 1";

/* UNLINKs every key of one SCAN page; *cursor becomes the next cursor. */
static int unlink_page(redisContext *c, const char *pattern, char *cursor, size_t curlen,
                       char *errstr, size_t errlen) {
    const char *argv[] = {"SCAN", cursor, "MATCH", pattern, "COUNT", SCAN_COUNT};
    redisReply *r;
    int rc = tg_redis_cmd(c, &r, errstr, errlen, 6, argv, NULL);
    if (rc) {
        return rc;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
        freeReplyObject(r);
        return tg_fail(TG_ERR_REDIS, errstr, errlen, "redis: unexpected SCAN reply");
    }
    snprintf(cursor, curlen, "%s", r->element[0]->str);
    redisReply *keys = r->element[1];
    if (keys->elements > 0) {
        const char **del = malloc((keys->elements + 1) * sizeof(char *));
        if (!del) {
            rc = tg_fail(TG_ERR_NOMEM, errstr, errlen, "redis: out of memory");
        }
        for (size_t i = 0; del && i < keys->elements; i++) {
            del[i + 1] = keys->element[i]->str;
        }
        if (del) {
            del[0] = "UNLINK";
            rc = tg_redis_cmd(c, NULL, errstr, errlen, (int)keys->elements + 1, del, NULL);
        }
        free(del);
    }
    freeReplyObject(r);
    return rc;
}

int gb_redis_drop_version(redisContext *c, const char *version, int *was_active, char *errstr,
                          size_t errlen) {
    char nodes_key[128], pattern[128], cursor[32] = "0";
    snprintf(nodes_key, sizeof(nodes_key), "graph:%s:nodes", version);
    snprintf(pattern, sizeof(pattern), "graph:%s:*", version);
    const char *argv[] = {"EVAL",    retire_lua,      "3",    GB_KEY_VERSION,
                          nodes_key, GB_KEY_VERSIONS, version};
    long long dropped = 0;
    *was_active = 0;
    int rc = integer_cmd(c, &dropped, errstr, errlen, 7, argv, NULL);
    if (rc) {
        return rc;
    }
    if (dropped == 0) {
        *was_active = 1;
        return TG_OK;
    }
    do {
        rc = unlink_page(c, pattern, cursor, sizeof(cursor), errstr, errlen);
    } while (rc == TG_OK && strcmp(cursor, "0") != 0);
    return rc;
}

int gb_redis_retain(redisContext *c, long keep, int *dropped, char *errstr, size_t errlen) {
    char start[24];
    snprintf(start, sizeof(start), "%ld", keep);
    const char *argv[] = {"LRANGE", GB_KEY_VERSIONS, start, "-1"};
    redisReply *r;
    *dropped = 0;
    int rc = tg_redis_cmd(c, &r, errstr, errlen, 4, argv, NULL);
    if (rc) {
        return rc;
    }
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements && rc == TG_OK; i++) {
        int was_active = 0;
        rc = gb_redis_drop_version(c, r->element[i]->str, &was_active, errstr, errlen);
        if (rc == TG_OK && !was_active) {
            (*dropped)++;
            tg_info("Deleted old graph version %s (keeping the newest %ld)", r->element[i]->str,
                    keep);
        }
    }
    freeReplyObject(r);
    return rc;
}

/* Queues MEMORY USAGE of one key; the reply is read by usage_read. */
static int usage_send(redisContext *c, const char *key) {
    const char *argv[] = {"MEMORY", "USAGE", key, "SAMPLES", "0"};
    return redisAppendCommandArgv(c, 5, argv, NULL) == REDIS_OK ? TG_OK : TG_ERR_NOMEM;
}

static int usage_read(redisContext *c, int pending, long long *bytes, char *errstr, size_t errlen) {
    int rc = TG_OK;
    for (; pending > 0; pending--) {
        redisReply *r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK) {
            return tg_fail(TG_ERR_REDIS, errstr, errlen, "redis: connection lost: %s", c->errstr);
        }
        if (r->type == REDIS_REPLY_INTEGER) {
            *bytes += r->integer;
        } else if (r->type == REDIS_REPLY_ERROR && rc == TG_OK) {
            rc = tg_fail(TG_ERR_REDIS, errstr, errlen, "redis: MEMORY USAGE: %s", r->str);
        }
        freeReplyObject(r);
    }
    return rc;
}

int gb_redis_version_bytes(redisContext *c, const gb_graph_t *g, const char *version,
                           long long *bytes, char *errstr, size_t errlen) {
    char key[512];
    int rc = TG_OK, pending = 0;
    *bytes = 0;
    snprintf(key, sizeof(key), "graph:%s:nodes", version);
    rc = usage_send(c, key);
    pending = rc == TG_OK;
    for (size_t i = 0; i < g->n_nodes && rc == TG_OK; i++) {
        snprintf(key, sizeof(key), "graph:%s:node:%s", version, g->nodes[i].id);
        if ((rc = usage_send(c, key)) == TG_OK) {
            snprintf(key, sizeof(key), "graph:%s:neighbors:%s", version, g->nodes[i].id);
            rc = usage_send(c, key);
        }
        pending += 2;
        if (rc == TG_OK && pending >= 1000) {
            rc = usage_read(c, pending, bytes, errstr, errlen);
            pending = 0;
        }
    }
    int rrc = usage_read(c, pending, bytes, errstr, errlen);
    return rc ? rc : rrc;
}

long long gb_redis_used_memory(redisContext *c) {
    const char *argv[] = {"INFO", "memory"};
    redisReply *r;
    char err[256];
    if (tg_redis_cmd(c, &r, err, sizeof(err), 2, argv, NULL) != TG_OK) {
        return -1;
    }
    long long bytes = -1;
    const char *p = r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS
                        ? strstr(r->str, "used_memory:")
                        : NULL;
    if (p) {
        bytes = strtoll(p + strlen("used_memory:"), NULL, 10);
    }
    freeReplyObject(r);
    return bytes;
}
