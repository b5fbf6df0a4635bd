/* The records of one entity set, sorted by id for a dataset of any size
 * (an external merge sort): records are added as the pages arrive and kept
 * in a buffer of at most mem_limit bytes; a full buffer is sorted and
 * written to an anonymous temporary file (tg_tmpfile) as one sorted run.
 * Reading merges the runs, so memory stays near mem_limit whatever the
 * number of records, and the data can be read again from the start as
 * often as needed (hash and validation, then the save).
 *
 * The order is odata_dataset_sort's: id bytewise (a missing id as ""),
 * ties in source order. A spool that never filled its buffer stays in
 * memory and writes no file. */
#ifndef ODATA_SPOOL_H
#define ODATA_SPOOL_H

#include "records.h"
#include "tg/error.h"
#include <stddef.h>

typedef struct odata_spool_s odata_spool_t;

/* The buffer size odata-sync-worker uses for each entity set. */
#define ODATA_SPOOL_MEM_LIMIT ((size_t)8 << 20)

/* A new, empty spool of records of kind; NULL when out of memory. The
 * caller frees it with odata_spool_free(). */
odata_spool_t *odata_spool_new(odata_kind_t kind, size_t mem_limit);

/* Copies r (its values and source index; not its row_hash) into the spool.
 * Not after odata_spool_rewind. TG_ERR_NOMEM, or TG_ERR_IO when a run
 * cannot be written (errstr says why). */
int odata_spool_add(odata_spool_t *s, const odata_record_t *r, char *errstr,
                    size_t errlen) TG_WARN_UNUSED;

/* Records added so far. */
size_t odata_spool_count(const odata_spool_t *s);

/* Temporary files written so far (sorted runs): 0 while it fits in memory. */
size_t odata_spool_runs(const odata_spool_t *s);

/* Starts reading every record in order from the first; ends adding. */
int odata_spool_rewind(odata_spool_t *s, char *errstr, size_t errlen) TG_WARN_UNUSED;

/* The next record in order: TG_OK with *rec set, TG_ERR_NOTFOUND after the
 * last, TG_ERR_IO or TG_ERR_NOMEM on failure. *rec belongs to the spool and
 * is valid until the next call; its row_hash is empty. */
int odata_spool_next(odata_spool_t *s, const odata_record_t **rec, char *errstr,
                     size_t errlen) TG_WARN_UNUSED;

/* Frees the spool and closes (so deletes) its temporary files. NULL is a
 * no-op. */
void odata_spool_free(odata_spool_t *s);

#endif
