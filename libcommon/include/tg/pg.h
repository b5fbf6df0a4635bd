/* Layer 2 (clients).
 * PostgreSQL on libpq: connect with retry and backoff, parameterised
 * statements only, results read whole or row by row, transactions, and bulk
 * loads through COPY. */
#ifndef TG_PG_H
#define TG_PG_H

#include "tg/error.h"
#include <libpq-fe.h>

/* Connects to conninfo (conninfo string or URI), retrying with backoff until
 * timeout_s passes. The caller closes the connection with PQfinish().
 * Returns NULL with errstr like "DATABASE_URL: connection refused (...)". */
PGconn *tg_pg_connect(const char *conninfo, int timeout_s, char *errstr, size_t errlen);

/* Runs a parameterised statement ($1..$n, all parameters text, NULL = SQL
 * NULL). On success *out (when out is not NULL) is a result the caller
 * frees with PQclear(); without out the result is cleared here. Returns
 * TG_ERR_UNAVAILABLE when the connection is gone, TG_ERR_DB otherwise. */
int tg_pg_exec(PGconn *conn, const char *sql, int nparams, const char *const *params,
               PGresult **out, char *errstr, size_t errlen) TG_WARN_UNUSED;

/* What the server said about a failed statement, for callers that act on
 * it (a unique violation of one index is an answer, not an error). */
typedef struct {
    char sqlstate[6];    /* e.g. "23505"; "" when the server sent none */
    char constraint[64]; /* the violated constraint; "" when none is named */
} tg_pg_diag_t;

#define TG_PG_UNIQUE_VIOLATION "23505"

/* tg_pg_exec that also fills *diag (when not NULL): on failure with the
 * statement's SQLSTATE and constraint name, on success with "". */
int tg_pg_exec_diag(PGconn *conn, const char *sql, int nparams, const char *const *params,
                    PGresult **out, tg_pg_diag_t *diag, char *errstr, size_t errlen) TG_WARN_UNUSED;

/* Receives one row of a streamed result: row holds it as row 0 and lives
 * only during the call. A non-zero return (with errstr filled) stops the
 * stream and becomes tg_pg_stream's result. */
typedef int (*tg_pg_row_fn)(const PGresult *row, void *arg, char *errstr, size_t errlen);

/* Runs a parameterised query like tg_pg_exec and hands its rows to on_row
 * one at a time (libpq's single-row mode), so the client holds one row
 * whatever the size of the result. When on_row or the server fails midway
 * the remaining rows are read and dropped, the connection is idle again and
 * the rows already handed over stay the caller's to discard. */
int tg_pg_stream(PGconn *conn, const char *sql, int nparams, const char *const *params,
                 tg_pg_row_fn on_row, void *arg, char *errstr, size_t errlen) TG_WARN_UNUSED;

int tg_pg_begin(PGconn *conn, char *errstr, size_t errlen) TG_WARN_UNUSED;
int tg_pg_commit(PGconn *conn, char *errstr, size_t errlen) TG_WARN_UNUSED;
/* Rolls back; safe to call when no transaction is open. */
void tg_pg_rollback(PGconn *conn);

/* A COPY ... FROM STDIN fed in pieces, for data too large to hold at once:
 * tg_pg_copy_begin, any number of tg_pg_copy_put, then tg_pg_copy_end
 * exactly once (also after a failed put; not after a failed begin). A put
 * cannot fail on its own: a failed send is remembered, later puts send
 * nothing, and tg_pg_copy_end reports it. tg_pg_copy_end with an
 * abort_reason (the caller's data could not be produced) makes the server
 * roll the COPY back and returns that reason. Every result is read before
 * tg_pg_copy_end returns; on failure the caller must roll back the
 * transaction. The handle lives on the caller's stack and holds no memory. */
typedef struct {
    PGconn *conn;
    const char *sql; /* borrowed: must outlive the COPY */
    char failed[512];
    int done;
} tg_pg_copy_t;

int tg_pg_copy_begin(tg_pg_copy_t *c, PGconn *conn, const char *copy_sql, char *errstr,
                     size_t errlen) TG_WARN_UNUSED;
void tg_pg_copy_put(tg_pg_copy_t *c, const char *data, size_t len);
int tg_pg_copy_end(tg_pg_copy_t *c, const char *abort_reason, char *errstr,
                   size_t errlen) TG_WARN_UNUSED;

/* Runs copy_sql ("COPY t (a,b) FROM STDIN") and sends len bytes of text
 * COPY data. Every result is read before it returns; on failure errstr has
 * the server's reason (a bad row, a terminated backend) or, when the server
 * gave none, libpq's, and the caller must roll back the transaction. */
int tg_pg_copy(PGconn *conn, const char *copy_sql, const char *data, size_t len, char *errstr,
               size_t errlen) TG_WARN_UNUSED;

/* Checks the connection with "SELECT 1"; resets it once when it broke. */
int tg_pg_ping(PGconn *conn);

/* Classifies a failed result: TG_ERR_UNAVAILABLE when the connection is bad
 * or the server is shutting down, TG_ERR_INVALID for data errors (SQLSTATE
 * class 22/23), TG_ERR_DB otherwise. */
int tg_pg_classify(PGconn *conn, const PGresult *res);

#endif
