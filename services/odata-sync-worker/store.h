/* PostgreSQL side of the sync: the datasets row of a trigger or of the
 * latest version, and the save of a new version (datasets row plus stops,
 * routes and flights by COPY) in one transaction. */
#ifndef ODATA_STORE_H
#define ODATA_STORE_H

#include "records.h"
#include "spool.h"
#include "tg/error.h"
#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    int64_t version;
    char hash[65];
    long long stops, routes, flights;
    long long added, updated, deleted;
    char backup_key[512]; /* "" when not backed up */
} odata_version_t;

/* Finds the dataset created by trigger event_id. TG_OK when found,
 * TG_ERR_NOTFOUND when not, another error when the query failed. */
int store_find_by_trigger(PGconn *pg, const char *event_id, odata_version_t *out, char *errstr,
                          size_t errlen) TG_WARN_UNUSED;

/* Finds the latest dataset of source; TG_ERR_NOTFOUND when there is none. */
int store_find_latest(PGconn *pg, const char *source, odata_version_t *out, char *errstr,
                      size_t errlen) TG_WARN_UNUSED;

typedef struct {
    const char *source;   /* envelope sourceId */
    const char *event_id; /* trigger eventId: the replay guard */
    const char *run_id;
    const char *hash; /* data hash of the rows */
    int force;        /* save even when the latest dataset has this hash */
} store_save_t;

typedef enum {
    STORE_SAVED,     /* a new version was committed */
    STORE_REPLAYED,  /* this trigger had already been committed: *out is that version */
    STORE_UNCHANGED, /* meanwhile another run saved the same hash: *out is that version */
} store_outcome_t;

/* Saves the records of rows (one spool per kind, read from the start; the
 * caller keeps them) as a new version in one transaction, under a
 * per-source advisory lock, streamed by COPY; counts added/updated/deleted
 * rows against the previous version by id and row_hash. Everything is
 * rolled back on failure. */
int store_save(PGconn *pg, odata_spool_t *const rows[ODATA_KINDS], const store_save_t *req,
               odata_version_t *out, store_outcome_t *outcome, char *errstr,
               size_t errlen) TG_WARN_UNUSED;

/* Records the S3 key of a version's backup. */
int store_set_backup_key(PGconn *pg, int64_t version, const char *key, char *errstr,
                         size_t errlen) TG_WARN_UNUSED;

#endif
