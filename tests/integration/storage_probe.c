/* Exercises libcommon's PostgreSQL and Redis helpers against the real
 * servers named by DATABASE_URL and REDIS_URL; driven by storage_test.py.
 *
 *   storage_probe pg-rollback   COPY rows, fail the transaction, expect none kept
 *   storage_probe pg-commit     COPY rows and commit
 *   storage_probe copy-bad-row  a bad row in a large COPY: its error, the
 *                               connection still usable
 *   storage_probe copy-killed   the backend dies during a large COPY: its
 *                               error, and no result left unread
 *   storage_probe stream-rows   tg_pg_stream over 100,000 rows; a reader that
 *                               stops early; a server error midway
 *   storage_probe redis-pipe N  write N keys pipelined, read them back
 *   storage_probe redis-error   a pipelined error reply is reported
 *   storage_probe redis-whoami  connect with REDIS_URL, print the ACL user
 */
#include "tg/buf.h"
#include "tg/config.h"
#include "tg/pg.h"
#include "tg/redis.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what, const char *err) {
    fprintf(stderr, "%s: %s\n", what, err);
    return 1;
}

static int copy_rows(PGconn *pg, int n, char *err, size_t len) {
    tg_buf_t b;
    tg_buf_init(&b);
    for (int i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof(id), "probe-%d", i);
        if (tg_copy_str(&b, id, 0) || tg_copy_str(&b, "a\tname with\\escapes", 1)) {
            return TG_ERR_NOMEM;
        }
    }
    int rc = tg_pg_copy(pg, "COPY probe (id, name) FROM STDIN", b.data, b.len, err, len);
    tg_buf_free(&b);
    return rc;
}

static int pg_mode(const char *mode) {
    char err[512];
    PGconn *pg = tg_pg_connect(getenv("DATABASE_URL"), 5, err, sizeof(err));
    if (!pg) {
        return fail("connect", err);
    }
    int rc = tg_pg_exec(pg, "CREATE TABLE IF NOT EXISTS probe (id text PRIMARY KEY, name text)", 0,
                        NULL, NULL, err, sizeof(err));
    if (!rc) {
        rc = tg_pg_begin(pg, err, sizeof(err));
    }
    if (!rc) {
        rc = copy_rows(pg, 1000, err, sizeof(err));
    }
    if (!rc && !strcmp(mode, "pg-rollback")) {
        /* A duplicate key inside the same transaction must undo the COPY. */
        const char *params[] = {"probe-7"};
        rc =
            tg_pg_exec(pg, "INSERT INTO probe (id) VALUES ($1)", 1, params, NULL, err, sizeof(err));
        printf("insert: %s (%s)\n", rc ? "failed" : "ok", rc ? err : "");
        tg_pg_rollback(pg);
        PQfinish(pg);
        return rc == TG_ERR_INVALID ? 0 : 1;
    }
    if (!rc) {
        rc = tg_pg_commit(pg, err, sizeof(err));
    }
    PQfinish(pg);
    return rc ? fail("pg", err) : 0;
}

/* Results tg_pg_copy left unread (it must leave none); bounded, since a
 * connection stuck in COPY would return a COPY result again and again. */
static int unread_results(PGconn *pg) {
    int n = 0;
    PGresult *res;
    while (n < 10 && (res = PQgetResult(pg)) != NULL) {
        fprintf(stderr, "unread: %s %s", PQresStatus(PQresultStatus(res)),
                PQresultErrorMessage(res));
        PQclear(res);
        n++;
    }
    return n;
}

/* A COPY of rows_before good rows, one bad row (three columns for two) when
 * bad_row, and as many good rows again: 1 MiB chunks, so the send goes on
 * after the server has met the error. */
static int copy_large(PGconn *pg, const char *table, int rows_before, int bad_row, char *err,
                      size_t len) {
    tg_buf_t b;
    tg_buf_init(&b);
    int rc = TG_OK;
    for (int i = 0; i < 2 * rows_before && !rc; i++) {
        if (i == rows_before && bad_row) {
            rc = tg_buf_appendf(&b, "bad-%d\tname\textra column\n", i);
        }
        if (!rc) {
            rc = tg_buf_appendf(&b, "row-%d\tsome name long enough to fill the chunks\n", i);
        }
    }
    char sql[128];
    snprintf(sql, sizeof(sql), "COPY %s (id, name) FROM STDIN", table);
    if (rc) {
        rc = tg_fail(rc, err, len, "out of memory");
    } else {
        rc = tg_pg_copy(pg, sql, b.data, b.len, err, len);
    }
    tg_buf_free(&b);
    return rc;
}

static int copy_mode(const char *mode) {
    char err[512];
    PGconn *pg = tg_pg_connect(getenv("DATABASE_URL"), 5, err, sizeof(err));
    if (!pg) {
        return fail("connect", err);
    }
    /* A row trigger that ends its own backend: the server goes away in the
     * middle of the COPY, as on a restart or an administrator's kill. */
    static const char *setup[] = {
        "CREATE TABLE IF NOT EXISTS probe_copy (id text PRIMARY KEY, name text)",
        "CREATE TABLE IF NOT EXISTS probe_killer (id text, name text)",
        "CREATE OR REPLACE FUNCTION probe_kill() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NEW; END $$",
        "CREATE OR REPLACE TRIGGER probe_kill BEFORE INSERT ON probe_killer FOR EACH ROW "
        "EXECUTE FUNCTION probe_kill()",
    };
    int rc = TG_OK;
    for (size_t i = 0; i < sizeof(setup) / sizeof(setup[0]) && !rc; i++) {
        rc = tg_pg_exec(pg, setup[i], 0, NULL, NULL, err, sizeof(err));
    }
    if (rc) {
        PQfinish(pg);
        return fail("setup", err);
    }
    int killed = !strcmp(mode, "copy-killed");
    rc = copy_large(pg, killed ? "probe_killer" : "probe_copy", 100000, !killed, err, sizeof(err));
    printf("copy: %s: %s\n", tg_err_name(rc), rc ? err : "ok");
    int unread = unread_results(pg);
    printf("unread results: %d\n", unread);
    int ok = rc != TG_OK && !unread; /* the COPY fails, and cleanly */
    if (!killed) { /* the connection is idle again and serves the next statement */
        PGresult *res = NULL;
        int again =
            tg_pg_exec(pg, "SELECT count(*) FROM probe_copy", 0, NULL, &res, err, sizeof(err));
        printf("next statement: %s\n", again ? err : PQgetvalue(res, 0, 0));
        PQclear(res);
        ok = ok && !again;
    }
    PQfinish(pg);
    return ok ? 0 : 1;
}

typedef struct {
    long rows, in_order; /* rows seen, and how many came as row number rows + 1 */
    long stop_at;        /* > 0: the reader fails at this row */
} stream_count_t;

static int count_row(const PGresult *row, void *arg, char *errstr, size_t errlen) {
    stream_count_t *c = arg;
    c->rows++;
    c->in_order += PQntuples(row) == 1 && strtol(PQgetvalue(row, 0, 0), NULL, 10) == c->rows;
    if (c->stop_at > 0 && c->rows == c->stop_at) {
        return tg_fail(TG_ERR_NOMEM, errstr, errlen, "reader stopped at row %ld", c->rows);
    }
    return TG_OK;
}

/* Streams sql, then checks that the connection serves the next statement. */
static int stream_case(PGconn *pg, const char *name, const char *sql, long stop_at) {
    char err[512] = "";
    stream_count_t c = {.stop_at = stop_at};
    int rc = tg_pg_stream(pg, sql, 0, NULL, count_row, &c, err, sizeof(err));
    PGresult *res = NULL;
    char next[512];
    int again = tg_pg_exec(pg, "SELECT 1", 0, NULL, &res, next, sizeof(next));
    PQclear(res);
    printf("%s: %s rows=%ld in_order=%ld %s; next statement: %s\n", name, tg_err_name(rc), c.rows,
           c.in_order, rc ? err : "ok", again ? next : "ok");
    return again;
}

static int stream_mode(void) {
    char err[512];
    PGconn *pg = tg_pg_connect(getenv("DATABASE_URL"), 5, err, sizeof(err));
    if (!pg) {
        return fail("connect", err);
    }
    int rc =
        stream_case(pg, "all", "SELECT g, repeat('x', 100) FROM generate_series(1, 100000) g", 0);
    rc |= stream_case(pg, "reader-stops", "SELECT g FROM generate_series(1, 100000) g", 10);
    rc |= stream_case(pg, "server-error",
                      "SELECT g, 1 / (50000 - g) FROM generate_series(1, 100000) g", 0);
    PQfinish(pg);
    return rc ? 1 : 0;
}

static int redis_pipe(int n) {
    char err[512];
    redisContext *c = tg_redis_connect(getenv("REDIS_URL"), 5, err, sizeof(err));
    if (!c) {
        return fail("connect", err);
    }
    tg_redis_pipe_t *p = tg_redis_pipe_new(c);
    int rc = TG_OK;
    for (int i = 0; i < n && !rc; i++) {
        char key[32], val[32];
        snprintf(key, sizeof(key), "probe:%d", i);
        snprintf(val, sizeof(val), "value-%d", i);
        const char *argv[] = {"SET", key, val};
        rc = tg_redis_pipe_add(p, 3, argv, NULL);
    }
    if (!rc) {
        rc = tg_redis_pipe_flush(p, err, sizeof(err));
    }
    tg_redis_pipe_destroy(p);
    int bad = 0;
    for (int i = 0; i < n && !rc; i++) {
        char key[32], want[32];
        snprintf(key, sizeof(key), "probe:%d", i);
        snprintf(want, sizeof(want), "value-%d", i);
        const char *argv[] = {"GET", key};
        redisReply *r;
        rc = tg_redis_cmd(c, &r, err, sizeof(err), 2, argv, NULL);
        if (!rc) {
            bad += !(r->type == REDIS_REPLY_STRING && !strcmp(r->str, want));
            freeReplyObject(r);
        }
    }
    redisFree(c);
    if (rc) {
        return fail("redis", err);
    }
    printf("read back %d keys, %d wrong\n", n, bad);
    return bad ? 1 : 0;
}

static int redis_error(void) {
    char err[512];
    redisContext *c = tg_redis_connect(getenv("REDIS_URL"), 5, err, sizeof(err));
    if (!c) {
        return fail("connect", err);
    }
    tg_redis_pipe_t *p = tg_redis_pipe_new(c);
    const char *set[] = {"SET", "probe:str", "x"};
    const char *bad[] = {"SADD", "probe:str", "member"}; /* WRONGTYPE */
    int rc = tg_redis_pipe_add(p, 3, set, NULL);
    if (!rc) {
        rc = tg_redis_pipe_add(p, 3, bad, NULL);
    }
    if (!rc) {
        rc = tg_redis_pipe_flush(p, err, sizeof(err));
    }
    tg_redis_pipe_destroy(p);
    printf("flush: %s\n", rc ? err : "ok");
    /* The connection stays usable after an error reply. */
    int alive = tg_redis_ping(c);
    redisFree(c);
    return rc == TG_ERR_REDIS && strstr(err, "WRONGTYPE") && alive ? 0 : 1;
}

static int redis_whoami(void) {
    char err[512];
    redisContext *c = tg_redis_connect(getenv("REDIS_URL"), 2, err, sizeof(err));
    if (!c) {
        return fail("connect", err);
    }
    const char *argv[] = {"ACL", "WHOAMI"};
    redisReply *r = NULL;
    int rc = tg_redis_cmd(c, &r, err, sizeof(err), 2, argv, NULL);
    if (!rc) {
        printf("whoami: %s\n", r->type == REDIS_REPLY_STRING ? r->str : "?");
    }
    freeReplyObject(r);
    redisFree(c);
    return rc ? fail("ACL WHOAMI", err) : 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strncmp(argv[1], "pg-", 3)) {
        return pg_mode(argv[1]);
    }
    if (argc == 2 && (!strcmp(argv[1], "copy-bad-row") || !strcmp(argv[1], "copy-killed"))) {
        return copy_mode(argv[1]);
    }
    if (argc == 2 && !strcmp(argv[1], "stream-rows")) {
        return stream_mode();
    }
    if (argc == 3 && !strcmp(argv[1], "redis-pipe")) {
        return redis_pipe(atoi(argv[2]));
    }
    if (argc == 2 && !strcmp(argv[1], "redis-error")) {
        return redis_error();
    }
    if (argc == 2 && !strcmp(argv[1], "redis-whoami")) {
        return redis_whoami();
    }
    fprintf(stderr, "usage: storage_probe pg-rollback|pg-commit|copy-bad-row|copy-killed|"
                    "stream-rows|redis-pipe N|redis-error|redis-whoami\n");
    return 2;
}
