/* The mapping file: which OData entity sets and properties carry the data
 * contract's stops, routes and flights, and how the source pages. A source
 * with other names is synced by pointing ODATA_MAPPING at another file. */
#ifndef ODATA_MAPPING_H
#define ODATA_MAPPING_H

#include "records.h"
#include "tg/error.h"
#include <cjson/cJSON.h>
#include <stddef.h>

typedef struct {
    char *entity_set;               /* "Stops", "Catalog_Остановки" */
    char *fields[ODATA_MAX_FIELDS]; /* source property per contract field; NULL = unmapped */
    char *exclude_field;            /* rows whose exclude_field equals exclude_value are skipped */
    cJSON *exclude_value;           /* (1C: "DeletionMark": true) */
} odata_entity_map_t;

typedef struct {
    char *name;
    odata_entity_map_t ent[ODATA_KINDS];
    int client_paging;    /* 1: $top/$skip with $orderby on the key */
    int page_size;        /* $top for client paging */
    int select;           /* send $select with the mapped properties */
    char *query;          /* extra query options for every request, e.g. "$format=json" */
    int local_offset_min; /* offset of date-times sent without one (minutes east of UTC) */
} odata_mapping_t;

/* Parses a mapping document. On failure returns TG_ERR_CONFIG with errstr
 * naming the key, e.g. "entities.routes.fields.fromStopId: missing". m is
 * then already freed. On success the caller frees m with odata_mapping_free. */
int odata_mapping_parse(const char *json, odata_mapping_t *m, char *errstr,
                        size_t errlen) TG_WARN_UNUSED;

/* Loads path, or the bundled default mapping when path is NULL or empty. */
int odata_mapping_load(const char *path, odata_mapping_t *m, char *errstr,
                       size_t errlen) TG_WARN_UNUSED;

void odata_mapping_free(odata_mapping_t *m);

struct odata_report_s; /* validate.h */

/* Converts one source entity into a new record of ds->t[kind] through the
 * mapping; values that do not convert are reported to rep (the record is
 * kept, so the hash still sees it). An entity matching the mapping's
 * exclude rule is skipped. index is its position in the source's answer.
 * Returns TG_OK or TG_ERR_NOMEM. */
int odata_map_row(const odata_mapping_t *m, odata_kind_t kind, const cJSON *row, long index,
                  odata_dataset_t *ds, struct odata_report_s *rep) TG_WARN_UNUSED;

#endif
