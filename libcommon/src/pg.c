/* PostgreSQL helpers on libpq: connect with backoff, parameterised
 * statements (whole results or streamed row by row), transactions and COPY. */
#include "tg/pg.h"
#include "tg/backoff.h"
#include "tg/log.h"
#include "tg/shutdown.h"
#include "tg/time.h"
#include <stdio.h>
#include <string.h>

/* libpq's messages end with a newline; keep the first line only. */
static const char *first_line(const char *msg, char *out, size_t outlen) {
    snprintf(out, outlen, "%s", msg ? msg : "");
    out[strcspn(out, "\n")] = '\0';
    return out;
}

PGconn *tg_pg_connect(const char *conninfo, int timeout_s, char *errstr, size_t errlen) {
    int64_t deadline = tg_mono_ms() + (int64_t)timeout_s * 1000;
    char line[512];
    for (int attempt = 1;; attempt++) {
        /* expand_dbname lets conninfo be a URI or keyword string; the
         * connect_timeout keeps an unreachable host from hanging start-up. */
        const char *keys[] = {"dbname", "connect_timeout", NULL};
        const char *vals[] = {conninfo, "5", NULL};
        PGconn *conn = PQconnectdbParams(keys, vals, 1);
        if (conn && PQstatus(conn) == CONNECTION_OK) {
            return conn;
        }
        first_line(conn ? PQerrorMessage(conn) : "out of memory", line, sizeof(line));
        PQfinish(conn);
        int64_t wait = tg_backoff_ms(attempt, 200, 2000, 0, NULL);
        if (tg_mono_ms() + wait > deadline || tg_shutdown_requested) {
            tg_fail(TG_ERR_UNAVAILABLE, errstr, errlen, "DATABASE_URL: %s (gave up after %d s)",
                    line, timeout_s);
            return NULL;
        }
        tg_warn("PostgreSQL not reachable yet (%s); retrying in %lld ms", line, (long long)wait);
        tg_sleep_ms(wait, &tg_shutdown_requested);
    }
}

int tg_pg_classify(PGconn *conn, const PGresult *res) {
    if (PQstatus(conn) != CONNECTION_OK) {
        return TG_ERR_UNAVAILABLE;
    }
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (!state) {
        return TG_ERR_UNAVAILABLE;
    }
    if (!strncmp(state, "08", 2) || !strncmp(state, "57", 2) || !strncmp(state, "53", 2)) {
        return TG_ERR_UNAVAILABLE; /* connection, shutdown, resources */
    }
    if (!strncmp(state, "22", 2) || !strncmp(state, "23", 2)) {
        return TG_ERR_INVALID; /* data exception, integrity violation */
    }
    return TG_ERR_DB;
}

static int result_error(PGconn *conn, PGresult *res, const char *what, char *errstr,
                        size_t errlen) {
    char line[512];
    int err = tg_pg_classify(conn, res);
    first_line(res && *PQresultErrorMessage(res) ? PQresultErrorMessage(res) : PQerrorMessage(conn),
               line, sizeof(line));
    PQclear(res);
    return tg_fail(err, errstr, errlen, "postgres: %s: %s", what, line);
}

/* The statement as errors name it: up to its first newline or parenthesis. */
static const char *statement_name(const char *sql, char *out, size_t outlen) {
    snprintf(out, outlen, "%.*s", (int)strcspn(sql, "\n("), sql);
    return out;
}

int tg_pg_exec(PGconn *conn, const char *sql, int nparams, const char *const *params,
               PGresult **out, char *errstr, size_t errlen) {
    return tg_pg_exec_diag(conn, sql, nparams, params, out, NULL, errstr, errlen);
}

int tg_pg_exec_diag(PGconn *conn, const char *sql, int nparams, const char *const *params,
                    PGresult **out, tg_pg_diag_t *diag, char *errstr, size_t errlen) {
    if (out) {
        *out = NULL;
    }
    if (diag) {
        memset(diag, 0, sizeof(*diag));
    }
    PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        const char *name = res ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME) : NULL;
        if (diag) {
            snprintf(diag->sqlstate, sizeof(diag->sqlstate), "%s", state ? state : "");
            snprintf(diag->constraint, sizeof(diag->constraint), "%s", name ? name : "");
        }
        char what[80];
        return result_error(conn, res, statement_name(sql, what, sizeof(what)), errstr, errlen);
    }
    if (out) {
        *out = res;
    } else {
        PQclear(res);
    }
    return TG_OK;
}

int tg_pg_stream(PGconn *conn, const char *sql, int nparams, const char *const *params,
                 tg_pg_row_fn on_row, void *arg, char *errstr, size_t errlen) {
    char what[80];
    statement_name(sql, what, sizeof(what));
    if (!PQsendQueryParams(conn, sql, nparams, NULL, params, NULL, NULL, 0)) {
        return result_error(conn, NULL, what, errstr, errlen);
    }
    int rc = TG_OK;
    if (!PQsetSingleRowMode(conn)) {
        rc = tg_fail(TG_ERR_DB, errstr, errlen, "postgres: %s: single-row mode refused", what);
    }
    /* Every result is read, also after a failure: the connection must end
     * idle for the caller's ROLLBACK. */
    PGresult *res;
    while ((res = PQgetResult(conn)) != NULL) {
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_SINGLE_TUPLE && rc == TG_OK) {
            rc = on_row(res, arg, errstr, errlen);
        } else if (st != PGRES_SINGLE_TUPLE && st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK &&
                   rc == TG_OK) {
            rc = result_error(conn, res, what, errstr, errlen); /* clears res */
            continue;
        }
        PQclear(res);
    }
    return rc;
}

int tg_pg_begin(PGconn *conn, char *errstr, size_t errlen) {
    return tg_pg_exec(conn, "BEGIN", 0, NULL, NULL, errstr, errlen);
}

int tg_pg_commit(PGconn *conn, char *errstr, size_t errlen) {
    return tg_pg_exec(conn, "COMMIT", 0, NULL, NULL, errstr, errlen);
}

void tg_pg_rollback(PGconn *conn) {
    if (PQstatus(conn) == CONNECTION_OK && PQtransactionStatus(conn) != PQTRANS_IDLE) {
        PQclear(PQexec(conn, "ROLLBACK"));
    }
}

/* Reads every result left after a COPY, so the connection is idle again (or
 * plainly broken), and keeps the first error: the server's, which names the
 * real cause (a bad row, a terminated backend), else sent, the client's own
 * reason for ending the COPY ("" when it ended normally). */
static int copy_results(PGconn *conn, const char *copy_sql, const char *sent, char *errstr,
                        size_t errlen) {
    int rc = TG_OK;
    PGresult *res;
    while ((res = PQgetResult(conn)) != NULL) {
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
            /* The COPY could not be ended: the same result would come forever. */
            PQclear(res);
            return rc ? rc
                      : tg_fail(TG_ERR_UNAVAILABLE, errstr, errlen, "postgres: %s: %s", copy_sql,
                                *sent ? sent : "the COPY could not be ended");
        }
        if (st != PGRES_COMMAND_OK && rc == TG_OK) {
            rc = result_error(conn, res, copy_sql, errstr, errlen);
        } else {
            PQclear(res);
        }
    }
    if (rc == TG_OK && *sent) {
        rc = tg_fail(PQstatus(conn) == CONNECTION_OK ? TG_ERR_DB : TG_ERR_UNAVAILABLE, errstr,
                     errlen, "postgres: %s: %s", copy_sql, sent);
    }
    return rc;
}

/* libpq's reason for a failed send, never empty. */
static void send_failure(PGconn *conn, const char *fallback, char *out, size_t outlen) {
    first_line(PQerrorMessage(conn), out, outlen);
    if (!*out) {
        snprintf(out, outlen, "%s", fallback);
    }
}

int tg_pg_copy_begin(tg_pg_copy_t *c, PGconn *conn, const char *copy_sql, char *errstr,
                     size_t errlen) {
    memset(c, 0, sizeof(*c));
    c->conn = conn;
    c->sql = copy_sql;
    PGresult *res = PQexec(conn, copy_sql);
    if (!res || PQresultStatus(res) != PGRES_COPY_IN) {
        c->done = 1; /* nothing to end: the COPY never started */
        return result_error(conn, res, copy_sql, errstr, errlen);
    }
    PQclear(res);
    return TG_OK;
}

void tg_pg_copy_put(tg_pg_copy_t *c, const char *data, size_t len) {
    /* Sent in pieces of at most 1 MiB, so a large put never needs one huge
     * libpq buffer. After a failed send nothing more is sent: the COPY is
     * ended with that reason (the server then rolls it back). */
    const size_t chunk = 1 << 20;
    for (size_t off = 0; off < len && !*c->failed; off += chunk) {
        size_t n = len - off < chunk ? len - off : chunk;
        if (PQputCopyData(c->conn, data + off, (int)n) != 1) {
            send_failure(c->conn, "could not send the COPY data", c->failed, sizeof(c->failed));
        }
    }
}

int tg_pg_copy_end(tg_pg_copy_t *c, const char *abort_reason, char *errstr, size_t errlen) {
    if (c->done) {
        return tg_fail(TG_ERR_INVALID, errstr, errlen, "postgres: %s: already ended", c->sql);
    }
    c->done = 1;
    if (abort_reason && !*c->failed) {
        snprintf(c->failed, sizeof(c->failed), "%s", abort_reason);
    }
    if (PQputCopyEnd(c->conn, *c->failed ? c->failed : NULL) != 1 && !*c->failed) {
        send_failure(c->conn, "could not end the COPY", c->failed, sizeof(c->failed));
    }
    return copy_results(c->conn, c->sql, c->failed, errstr, errlen);
}

int tg_pg_copy(PGconn *conn, const char *copy_sql, const char *data, size_t len, char *errstr,
               size_t errlen) {
    tg_pg_copy_t c;
    int rc = tg_pg_copy_begin(&c, conn, copy_sql, errstr, errlen);
    if (rc) {
        return rc;
    }
    tg_pg_copy_put(&c, data, len);
    return tg_pg_copy_end(&c, NULL, errstr, errlen);
}

int tg_pg_ping(PGconn *conn) {
    if (!conn) {
        return 0;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        PQreset(conn);
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        return 0;
    }
    PGresult *res = PQexec(conn, "SELECT 1");
    int ok = res && PQresultStatus(res) == PGRES_TUPLES_OK;
    PQclear(res);
    if (!ok) {
        PQreset(conn);
        ok = PQstatus(conn) == CONNECTION_OK;
    }
    return ok;
}
