/* Validation of a fetched dataset before anything is saved: required
 * fields, types, duplicate ids, references to unknown stops and routes,
 * coordinates, durations and times. The report keeps a count per problem
 * and its first few examples, worded with the source's own names:
 * Routes[17] FromStopId "x": unknown stop. */
#ifndef ODATA_VALIDATE_H
#define ODATA_VALIDATE_H

#include "mapping.h"
#include "records.h"
#include "tg/error.h"
#include <cjson/cJSON.h>
#include <stddef.h>

typedef enum {
    PROBLEM_EMPTY,    /* no stops or no routes at all */
    PROBLEM_REQUIRED, /* a required field is missing or null */
    PROBLEM_TYPE,     /* a value of the wrong type or format */
    PROBLEM_DUPLICATE_ID,
    PROBLEM_UNKNOWN_STOP,
    PROBLEM_UNKNOWN_ROUTE,
    PROBLEM_COORDINATES, /* latitude outside [-90, 90] or longitude outside [-180, 180] */
    PROBLEM_DURATION,    /* durationMinutes <= 0 */
    PROBLEM_RANGE,       /* negative or too large distance, fare or seats */
    PROBLEM_TIMES,       /* arrival not after departure */
    PROBLEM_ID_LENGTH,   /* an id longer than TG_ENTITY_ID_MAX bytes */
    PROBLEM_KINDS
} odata_problem_t;

#define ODATA_REPORT_EXAMPLES 3

typedef struct odata_report_s {
    long count[PROBLEM_KINDS];
    char example[PROBLEM_KINDS][ODATA_REPORT_EXAMPLES][200];
    long total;
} odata_report_t;

/* The problem's stable name, e.g. "unknown_stop". */
const char *odata_problem_name(odata_problem_t p);

void odata_report_add(odata_report_t *r, odata_problem_t p, const char *fmt, ...) TG_PRINTF(3, 4);

/* Checks records one at a time, for data too large to hold: kinds in
 * odata_kind_t order, each sorted as odata_dataset_sort sorts (duplicates
 * are then neighbours; stops and routes are known before the references to
 * them). Memory: the ids of stops and routes, not the records. The report
 * is the same as odata_validate's for the same records. */
typedef struct {
    tg_buf_t text; /* ids, each NUL-terminated, in sorted order */
    size_t *off, n, cap;
} odata_idset_t;

typedef struct {
    const odata_mapping_t *m;
    odata_report_t *report;
    odata_idset_t known[2]; /* ODATA_STOPS, ODATA_ROUTES */
    long count[ODATA_KINDS];
    int prev_kind, prev_has_id; /* the record before, for duplicates */
    long prev_index;
    tg_buf_t prev_id;
} odata_check_t;

void odata_check_init(odata_check_t *c, const odata_mapping_t *m, odata_report_t *r);
/* TG_OK, or TG_ERR_NOMEM (the checker cannot go on; odata_check_free). */
int odata_check_record(odata_check_t *c, odata_kind_t k, const odata_record_t *rec) TG_WARN_UNUSED;
/* Adds the checks of the whole (no stops, no routes), frees what the
 * checker holds and returns the report's total number of problems. */
long odata_check_end(odata_check_t *c);
void odata_check_free(odata_check_t *c);

/* Checks ds (sorting it by id when needed) and adds every problem to r.
 * Returns the total number of problems in r, or -1 when out of memory. */
long odata_validate(odata_dataset_t *ds, const odata_mapping_t *m, odata_report_t *r);

/* One sentence: "3 problems: unknown_stop 2 (Routes[17] FromStopId \"x\":
 * unknown stop; ...); duplicate_id 1 (...)", cut to outlen. */
void odata_report_summary(const odata_report_t *r, char *out, size_t outlen);

/* {"problems":{"unknown_stop":2,...},"examples":{"unknown_stop":[...]}};
 * the caller owns it. */
cJSON *odata_report_json(const odata_report_t *r);

#endif
