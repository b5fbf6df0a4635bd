/* Typed transport records of the data contract (stops, routes, flights):
 * value parsing (numbers that may arrive as strings, ISO 8601 and
 * /Date(ms±hhmm)/ date-times) and the canonical JSON that is hashed, backed
 * up and diffed row by row. */
#ifndef ODATA_RECORDS_H
#define ODATA_RECORDS_H

#include "tg/buf.h"
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { ODATA_STOPS = 0, ODATA_ROUTES, ODATA_FLIGHTS, ODATA_KINDS } odata_kind_t;
typedef enum { ODATA_STRING, ODATA_NUMBER, ODATA_INTEGER, ODATA_DATETIME } odata_type_t;

/* Field positions; field 0 of every kind is its id. */
enum { STOP_ID, STOP_NAME, STOP_CITY, STOP_LAT, STOP_LON, STOP_NFIELDS };
enum {
    ROUTE_ID,
    ROUTE_NAME,
    ROUTE_FROM,
    ROUTE_TO,
    ROUTE_TYPE,
    ROUTE_DURATION,
    ROUTE_DISTANCE,
    ROUTE_FARE,
    ROUTE_NFIELDS
};
enum {
    FLIGHT_ID,
    FLIGHT_ROUTE,
    FLIGHT_FROM,
    FLIGHT_TO,
    FLIGHT_DEP,
    FLIGHT_ARR,
    FLIGHT_SEATS,
    FLIGHT_NFIELDS
};
#define ODATA_MAX_FIELDS 8
#define ODATA_MAX_STRING 65536 /* longer strings are refused as invalid */

typedef struct {
    const char *key;    /* canonical name, as in mapping files: "fromStopId" */
    const char *column; /* PostgreSQL column: "from_stop_id" */
    odata_type_t type;
    int required;
} odata_field_t;

typedef struct {
    const char *name; /* "stops": mapping key, table name, canonical JSON key */
    const odata_field_t *fields;
    int nfields;
} odata_entity_t;

extern const odata_entity_t odata_entities[ODATA_KINDS];

typedef struct {
    char *text; /* canonical text; NULL when absent, null, or not convertible */
    double num; /* numbers and integers; date-times as epoch milliseconds */
    int bad;    /* the source value did not convert (already reported) */
} odata_value_t;

typedef struct {
    odata_value_t *v;  /* nfields values, owned */
    long source_index; /* position in the source's answer, for messages */
    char row_hash[65]; /* SHA-256 of the canonical row, set by odata_canonical */
} odata_record_t;

typedef struct {
    odata_record_t *rows;
    size_t n, cap;
} odata_table_t;

typedef struct {
    odata_table_t t[ODATA_KINDS];
    int sorted; /* every table sorted by id */
} odata_dataset_t;

/* Parses an ISO 8601 date-time (offset Z, ±hh:mm, ±hhmm or none, which is
 * taken as local_offset_min minutes east of UTC) or an OData /Date(ms)/ or
 * /Date(ms±hhmm)/ (ms are UTC). Returns TG_OK and *ms since the epoch, or
 * TG_ERR_INVALID; the caller says what was expected. Values are stored in
 * tg_time_iso's form ("YYYY-MM-DDTHH:MM:SS.mmmZ"). */
int odata_parse_datetime(const char *s, int local_offset_min, int64_t *ms) TG_WARN_UNUSED;

/* Reads a finite number from a JSON number or a numeric string ("62.09",
 * " 1e3" is refused: no spaces). Returns TG_OK or TG_ERR_INVALID. */
int odata_parse_number(const cJSON *item, double *out) TG_WARN_UNUSED;

/* Shortest text that reads back as the same double ("812.2", "125"). */
void odata_format_number(double v, char out[32]);

/* Converts one source value of the given type into *val. A bad value gives
 * TG_ERR_INVALID: val->bad set, text NULL and why written (e.g. "expected a
 * number"); a failed allocation TG_ERR_NOMEM (text NULL, not bad). A JSON
 * null or a missing item gives an empty value. */
int odata_value_convert(const cJSON *item, odata_type_t type, int local_offset_min,
                        odata_value_t *val, char *why, size_t whylen) TG_WARN_UNUSED;

/* Appends an empty record with nfields values to t; NULL when out of memory. */
odata_record_t *odata_table_add(odata_table_t *t, int nfields);

/* Sorts every table by id (bytewise), once. */
void odata_dataset_sort(odata_dataset_t *ds);

/* Finds the record with id in a sorted table; NULL when absent. */
const odata_record_t *odata_table_find(const odata_table_t *t, const char *id);

/* Sorts ds, fills every row_hash and writes the canonical JSON document
 * {"stops":[...],"routes":[...],"flights":[...]} into out (appended) and
 * its SHA-256 into hash. Returns 0 or TG_ERR_NOMEM. */
int odata_canonical(odata_dataset_t *ds, tg_buf_t *out, char hash[65]);

/* The SHA-256 of r's canonical object (its row_hash), built in scratch. */
int odata_row_hash(odata_kind_t k, const odata_record_t *r, tg_buf_t *scratch,
                   char hash[65]) TG_WARN_UNUSED;

/* The canonical document written piece by piece, for data too large to
 * hold: odata_doc_begin, then odata_doc_row for every record in order
 * (kinds in odata_kind_t order, each sorted as odata_dataset_sort sorts),
 * then odata_doc_end, which gives the data hash and frees what the writer
 * holds. The bytes passed to write and the hash are exactly odata_canonical's
 * for the same records. After a failure, odata_doc_free. write returns
 * TG_OK or an error, which every call then returns (TG_ERR_NOMEM also for
 * the writer's own allocations). */
typedef int (*odata_write_fn)(void *ud, const void *data, size_t len);

typedef struct {
    odata_write_fn write;
    void *ud;
    struct tg_sha256_s *sha;
    int kind;    /* the array open now; -1 before the first */
    size_t rows; /* rows written into it */
    tg_buf_t row;
} odata_doc_t;

int odata_doc_begin(odata_doc_t *d, odata_write_fn write, void *ud) TG_WARN_UNUSED;
/* Writes r's object and its row hash into row_hash. */
int odata_doc_row(odata_doc_t *d, odata_kind_t k, const odata_record_t *r,
                  char row_hash[65]) TG_WARN_UNUSED;
int odata_doc_end(odata_doc_t *d, char hash[65]) TG_WARN_UNUSED;
void odata_doc_free(odata_doc_t *d);

void odata_dataset_free(odata_dataset_t *ds);

#endif
