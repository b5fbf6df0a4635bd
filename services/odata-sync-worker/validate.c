/* Dataset validation: everything that would make the saved dataset wrong
 * for the workers after this one is refused here, before the save. */
#include "validate.h"

#include "tg/dataset.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
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

/* Whether id is in the sorted set of ids k (stops or routes seen so far). */
static int id_known(const odata_check_t *c, odata_kind_t k, const char *id) {
    const odata_idset_t *set = &c->known[k];
    size_t lo = 0, hi = set->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = strcmp(set->text.data + set->off[mid], id);
        if (cmp == 0) {
            return 1;
        }
        if (cmp < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return 0;
}

static void check_ref(const odata_check_t *c, const where_t *w, int f, odata_kind_t target,
                      odata_problem_t p) {
    const char *id = w->rec->v[f].text;
    if (id && !id_known(c, target, id)) {
        odata_report_add(c->report, p, "%s[%ld] %s \"%.60s\": unknown %s", set_of(w),
                         w->rec->source_index, prop_of(w, f), id,
                         p == PROBLEM_UNKNOWN_STOP ? "stop" : "route");
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

static void check_route(const odata_check_t *c, const where_t *w) {
    odata_report_t *r = c->report;
    check_ref(c, w, ROUTE_FROM, ODATA_STOPS, PROBLEM_UNKNOWN_STOP);
    check_ref(c, w, ROUTE_TO, ODATA_STOPS, PROBLEM_UNKNOWN_STOP);
    check_range(w, ROUTE_DURATION, 0, 1, 1e6, PROBLEM_DURATION, r);
    check_range(w, ROUTE_DISTANCE, 0, 0, 1e6, PROBLEM_RANGE, r);
    check_range(w, ROUTE_FARE, 0, 0, 9999999999.99, PROBLEM_RANGE, r); /* numeric(12,2) */
}

static void check_flight(const odata_check_t *c, const where_t *w) {
    odata_report_t *r = c->report;
    const odata_value_t *dep = &w->rec->v[FLIGHT_DEP], *arr = &w->rec->v[FLIGHT_ARR];
    check_ref(c, w, FLIGHT_ROUTE, ODATA_ROUTES, PROBLEM_UNKNOWN_ROUTE);
    check_ref(c, w, FLIGHT_FROM, ODATA_STOPS, PROBLEM_UNKNOWN_STOP);
    check_ref(c, w, FLIGHT_TO, ODATA_STOPS, PROBLEM_UNKNOWN_STOP);
    check_range(w, FLIGHT_SEATS, 0, 0, 1e6, PROBLEM_RANGE, r);
    if (dep->text && arr->text && arr->num <= dep->num) {
        odata_report_add(r, PROBLEM_TIMES, "%s[%ld] %s %s: not after %s %s", set_of(w),
                         w->rec->source_index, prop_of(w, FLIGHT_ARR), arr->text,
                         prop_of(w, FLIGHT_DEP), dep->text);
    }
}

/* In records sorted by id, duplicates are neighbours: r against the one
 * before it, whose id and index the checker keeps. */
static int check_duplicate(odata_check_t *c, const where_t *w) {
    const char *id = w->rec->v[0].text;
    if (id && c->prev_kind == (int)w->kind && c->prev_has_id && !strcmp(c->prev_id.data, id)) {
        odata_report_add(c->report, PROBLEM_DUPLICATE_ID,
                         "%s[%ld] %s \"%.60s\": duplicate (also at %s[%ld])", set_of(w),
                         w->rec->source_index, prop_of(w, 0), id, set_of(w), c->prev_index);
    }
    c->prev_kind = (int)w->kind;
    c->prev_index = w->rec->source_index;
    c->prev_has_id = id != NULL;
    tg_buf_reset(&c->prev_id);
    return id ? tg_buf_append(&c->prev_id, id, strlen(id) + 1) : TG_OK;
}

/* Stops and routes are kept as ids (a missing one as "", as the sort
 * places it) for the references of the kinds after them. */
static int remember_id(odata_check_t *c, odata_kind_t k, const char *id) {
    odata_idset_t *set = &c->known[k];
    if (!id) {
        id = "";
    }
    if (set->n == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 1024;
        size_t *off = realloc(set->off, cap * sizeof(*off));
        if (!off) {
            return TG_ERR_NOMEM;
        }
        set->off = off;
        set->cap = cap;
    }
    size_t at = set->text.len;
    if (tg_buf_append(&set->text, id, strlen(id) + 1)) {
        return TG_ERR_NOMEM;
    }
    set->off[set->n++] = at;
    return TG_OK;
}

void odata_check_init(odata_check_t *c, const odata_mapping_t *m, odata_report_t *r) {
    memset(c, 0, sizeof(*c));
    c->m = m;
    c->report = r;
    c->prev_kind = -1;
    tg_buf_init(&c->prev_id);
    for (int k = 0; k < 2; k++) {
        tg_buf_init(&c->known[k].text);
    }
}

int odata_check_record(odata_check_t *c, odata_kind_t k, const odata_record_t *rec) {
    where_t w = {c->m, k, rec};
    c->count[k]++;
    if (check_duplicate(c, &w)) {
        return TG_ERR_NOMEM;
    }
    check_required(&w, c->report);
    check_id_lengths(&w, c->report);
    if (k == ODATA_STOPS) {
        check_stop(&w, c->report);
    } else if (k == ODATA_ROUTES) {
        check_route(c, &w);
    } else {
        check_flight(c, &w);
    }
    return k == ODATA_FLIGHTS ? TG_OK : remember_id(c, k, rec->v[0].text);
}

long odata_check_end(odata_check_t *c) {
    if (c->count[ODATA_STOPS] == 0) {
        odata_report_add(c->report, PROBLEM_EMPTY,
                         "%s: no stops (refusing to replace the dataset with nothing)",
                         c->m->ent[ODATA_STOPS].entity_set);
    }
    if (c->count[ODATA_ROUTES] == 0) {
        odata_report_add(c->report, PROBLEM_EMPTY, "%s: no routes",
                         c->m->ent[ODATA_ROUTES].entity_set);
    }
    odata_check_free(c);
    return c->report->total;
}

void odata_check_free(odata_check_t *c) {
    tg_buf_free(&c->prev_id);
    for (int k = 0; k < 2; k++) {
        tg_buf_free(&c->known[k].text);
        free(c->known[k].off);
        c->known[k].off = NULL;
        c->known[k].n = c->known[k].cap = 0;
    }
}

long odata_validate(odata_dataset_t *ds, const odata_mapping_t *m, odata_report_t *r) {
    odata_dataset_sort(ds);
    odata_check_t c;
    odata_check_init(&c, m, r);
    for (int k = 0; k < ODATA_KINDS; k++) {
        for (size_t i = 0; i < ds->t[k].n; i++) {
            if (odata_check_record(&c, (odata_kind_t)k, &ds->t[k].rows[i])) {
                odata_check_free(&c);
                return -1;
            }
        }
    }
    return odata_check_end(&c);
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
