/* Dataset validation: everything that would make the saved dataset wrong
 * for the workers after this one is refused here, before the save. */
#include "validate.h"

#include "tg/dataset.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const problem_names[PROBLEM_KINDS] = {
    "empty",       "required", "type",  "duplicate_id", "unknown_stop", "unknown_route",
    "coordinates", "duration", "range", "times",        "id_length",
};

const char *odata_problem_name(odata_problem_t p) {
    return problem_names[p];
}

void odata_report_add(odata_report_t *r, odata_problem_t p, const char *fmt, ...) {
    if (r->count[p] < ODATA_REPORT_EXAMPLES) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->example[p][r->count[p]], sizeof(r->example[p][0]), fmt, ap);
        va_end(ap);
    }
    r->count[p]++;
    r->total++;
}

/* "Routes[17] FromStopId" names a value the way the source does. */
typedef struct {
    const odata_mapping_t *m;
    odata_kind_t kind;
    const odata_record_t *rec;
} where_t;

static const char *set_of(const where_t *w) {
    return w->m->ent[w->kind].entity_set;
}
static const char *prop_of(const where_t *w, int f) {
    const char *p = w->m->ent[w->kind].fields[f];
    return p ? p : odata_entities[w->kind].fields[f].key;
}

static void check_required(const where_t *w, odata_report_t *r) {
    const odata_entity_t *e = &odata_entities[w->kind];
    for (int f = 0; f < e->nfields; f++) {
        if (e->fields[f].required && !w->rec->v[f].bad &&
            (!w->rec->v[f].text || !*w->rec->v[f].text)) { /* "" is no value either */
            odata_report_add(r, PROBLEM_REQUIRED, "%s[%ld] %s: missing", set_of(w),
                             w->rec->source_index, prop_of(w, f));
        }
    }
}

static void check_ref(const where_t *w, int f, const odata_table_t *target, odata_problem_t p,
                      odata_report_t *r) {
    const char *id = w->rec->v[f].text;
    if (id && !odata_table_find(target, id)) {
        odata_report_add(r, p, "%s[%ld] %s \"%.60s\": unknown %s", set_of(w), w->rec->source_index,
                         prop_of(w, f), id, p == PROBLEM_UNKNOWN_STOP ? "stop" : "route");
    }
}

/* A present value outside [lo, hi] (or <= lo when lo_open) is a problem p. */
static void check_range(const where_t *w, int f, double lo, int lo_open, double hi,
                        odata_problem_t p, odata_report_t *r) {
    const odata_value_t *v = &w->rec->v[f];
    if (!v->text || (v->num >= lo && v->num <= hi && !(lo_open && v->num <= lo))) {
        return;
    }
    odata_report_add(r, p, "%s[%ld] %s %s: %s %g", set_of(w), w->rec->source_index, prop_of(w, f),
                     v->text,
                     v->num > hi ? "above"
                     : lo_open   ? "must be above"
                                 : "below",
                     v->num > hi ? hi : lo);
}

/* Ids and the references to them fit TG_ENTITY_ID_MAX: the ids built from
 * them downstream are never cut short. */
static void check_id_lengths(const where_t *w, odata_report_t *r) {
    static const int refs[ODATA_KINDS][5] = {{STOP_ID, -1},
                                             {ROUTE_ID, ROUTE_FROM, ROUTE_TO, -1},
                                             {FLIGHT_ID, FLIGHT_ROUTE, FLIGHT_FROM, FLIGHT_TO, -1}};
    for (int i = 0; refs[w->kind][i] >= 0; i++) {
        int f = refs[w->kind][i];
        const char *id = w->rec->v[f].text;
        size_t len = id ? strlen(id) : 0;
        if (len > TG_ENTITY_ID_MAX) {
            odata_report_add(r, PROBLEM_ID_LENGTH,
                             "%s[%ld] %s \"%.40s...\": %zu bytes, more than %d", set_of(w),
                             w->rec->source_index, prop_of(w, f), id, len, TG_ENTITY_ID_MAX);
        }
    }
}

static void check_stop(const where_t *w, odata_report_t *r) {
    check_range(w, STOP_LAT, -90, 0, 90, PROBLEM_COORDINATES, r);
    check_range(w, STOP_LON, -180, 0, 180, PROBLEM_COORDINATES, r);
}

static void check_route(const where_t *w, const odata_dataset_t *ds, odata_report_t *r) {
    check_ref(w, ROUTE_FROM, &ds->t[ODATA_STOPS], PROBLEM_UNKNOWN_STOP, r);
    check_ref(w, ROUTE_TO, &ds->t[ODATA_STOPS], PROBLEM_UNKNOWN_STOP, r);
    check_range(w, ROUTE_DURATION, 0, 1, 1e6, PROBLEM_DURATION, r);
    check_range(w, ROUTE_DISTANCE, 0, 0, 1e6, PROBLEM_RANGE, r);
    check_range(w, ROUTE_FARE, 0, 0, 9999999999.99, PROBLEM_RANGE, r); /* numeric(12,2) */
}

static void check_flight(const where_t *w, const odata_dataset_t *ds, odata_report_t *r) {
    const odata_value_t *dep = &w->rec->v[FLIGHT_DEP], *arr = &w->rec->v[FLIGHT_ARR];
    check_ref(w, FLIGHT_ROUTE, &ds->t[ODATA_ROUTES], PROBLEM_UNKNOWN_ROUTE, r);
    check_ref(w, FLIGHT_FROM, &ds->t[ODATA_STOPS], PROBLEM_UNKNOWN_STOP, r);
    check_ref(w, FLIGHT_TO, &ds->t[ODATA_STOPS], PROBLEM_UNKNOWN_STOP, r);
    check_range(w, FLIGHT_SEATS, 0, 0, 1e6, PROBLEM_RANGE, r);
    if (dep->text && arr->text && arr->num <= dep->num) {
        odata_report_add(r, PROBLEM_TIMES, "%s[%ld] %s %s: not after %s %s", set_of(w),
                         w->rec->source_index, prop_of(w, FLIGHT_ARR), arr->text,
                         prop_of(w, FLIGHT_DEP), dep->text);
    }
}

/* In a table sorted by id, duplicates are neighbours. */
static void check_duplicates(const where_t *base, const odata_table_t *t, odata_report_t *r) {
    for (size_t i = 1; i < t->n; i++) {
        const char *a = t->rows[i - 1].v[0].text, *b = t->rows[i].v[0].text;
        if (a && b && !strcmp(a, b)) {
            odata_report_add(r, PROBLEM_DUPLICATE_ID,
                             "%s[%ld] %s \"%.60s\": duplicate (also at %s[%ld])", set_of(base),
                             t->rows[i].source_index, prop_of(base, 0), b, set_of(base),
                             t->rows[i - 1].source_index);
        }
    }
}

long odata_validate(odata_dataset_t *ds, const odata_mapping_t *m, odata_report_t *r) {
    odata_dataset_sort(ds);
    if (ds->t[ODATA_STOPS].n == 0) {
        odata_report_add(r, PROBLEM_EMPTY,
                         "%s: no stops (refusing to replace the dataset with nothing)",
                         m->ent[ODATA_STOPS].entity_set);
    }
    if (ds->t[ODATA_ROUTES].n == 0) {
        odata_report_add(r, PROBLEM_EMPTY, "%s: no routes", m->ent[ODATA_ROUTES].entity_set);
    }
    for (int k = 0; k < ODATA_KINDS; k++) {
        const odata_table_t *t = &ds->t[k];
        where_t w = {m, (odata_kind_t)k, NULL};
        check_duplicates(&w, t, r);
        for (size_t i = 0; i < t->n; i++) {
            w.rec = &t->rows[i];
            check_required(&w, r);
            check_id_lengths(&w, r);
            if (k == ODATA_STOPS) {
                check_stop(&w, r);
            } else if (k == ODATA_ROUTES) {
                check_route(&w, ds, r);
            } else {
                check_flight(&w, ds, r);
            }
        }
    }
    return r->total;
}

void odata_report_summary(const odata_report_t *r, char *out, size_t outlen) {
    size_t n = (size_t)snprintf(out, outlen, "%ld problem%s", r->total, r->total == 1 ? "" : "s");
    const char *sep = ":";
    for (int p = 0; p < PROBLEM_KINDS && n < outlen; p++) {
        if (!r->count[p]) {
            continue;
        }
        n += (size_t)snprintf(out + n, outlen - n, "%s %s %ld (", sep, problem_names[p],
                              r->count[p]);
        sep = ";";
        for (long i = 0; i < r->count[p] && i < ODATA_REPORT_EXAMPLES && n < outlen; i++) {
            n += (size_t)snprintf(out + n, outlen - n, "%s%s", i ? "; " : "", r->example[p][i]);
        }
        if (n < outlen) {
            n += (size_t)snprintf(out + n, outlen - n, "%s)",
                                  r->count[p] > ODATA_REPORT_EXAMPLES ? "; ..." : "");
        }
    }
}

cJSON *odata_report_json(const odata_report_t *r) {
    cJSON *root = cJSON_CreateObject();
    cJSON *counts = cJSON_AddObjectToObject(root, "problems");
    cJSON *examples = cJSON_AddObjectToObject(root, "examples");
    for (int p = 0; p < PROBLEM_KINDS; p++) {
        if (!r->count[p]) {
            continue;
        }
        cJSON_AddNumberToObject(counts, problem_names[p], (double)r->count[p]);
        cJSON *list = cJSON_AddArrayToObject(examples, problem_names[p]);
        for (long i = 0; i < r->count[p] && i < ODATA_REPORT_EXAMPLES; i++) {
            cJSON_AddItemToArray(list, cJSON_CreateString(r->example[p][i]));
        }
    }
    cJSON_AddNumberToObject(root, "total", (double)r->total);
    return root;
}
