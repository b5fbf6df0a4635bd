/* Records of the data contract: value conversion from OData JSON and the
 * canonical form (records sorted by id, mapped fields only, normalised
 * values) that makes the data hash independent of paging and annotations. */
#include "records.h"

#include "tg/error.h"
#include "tg/sha256.h"
#include "tg/text.h"
#include "tg/time.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const odata_field_t stop_fields[STOP_NFIELDS] = {
    {"id", "id", ODATA_STRING, 1},
    {"name", "name", ODATA_STRING, 1},
    {"cityName", "city_name", ODATA_STRING, 0},
    {"latitude", "latitude", ODATA_NUMBER, 0},
    {"longitude", "longitude", ODATA_NUMBER, 0},
};
static const odata_field_t route_fields[ROUTE_NFIELDS] = {
    {"id", "id", ODATA_STRING, 1},
    {"name", "name", ODATA_STRING, 0},
    {"fromStopId", "from_stop_id", ODATA_STRING, 1},
    {"toStopId", "to_stop_id", ODATA_STRING, 1},
    {"transportType", "transport_type", ODATA_STRING, 0},
    {"durationMinutes", "duration_minutes", ODATA_NUMBER, 1},
    {"distanceKm", "distance_km", ODATA_NUMBER, 0},
    {"fare", "fare", ODATA_NUMBER, 0},
};
static const odata_field_t flight_fields[FLIGHT_NFIELDS] = {
    {"id", "id", ODATA_STRING, 1},
    {"routeId", "route_id", ODATA_STRING, 1},
    {"fromStopId", "from_stop_id", ODATA_STRING, 1},
    {"toStopId", "to_stop_id", ODATA_STRING, 1},
    {"departureTime", "departure_time", ODATA_DATETIME, 1},
    {"arrivalTime", "arrival_time", ODATA_DATETIME, 1},
    {"availableSeats", "available_seats", ODATA_INTEGER, 0},
};

const odata_entity_t odata_entities[ODATA_KINDS] = {
    {"stops", stop_fields, STOP_NFIELDS},
    {"routes", route_fields, ROUTE_NFIELDS},
    {"flights", flight_fields, FLIGHT_NFIELDS},
};

/* ---- date-times --------------------------------------------------------- */

/* Reads exactly n digits at *p. */
static int digits(const char **p, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if ((*p)[i] < '0' || (*p)[i] > '9') {
            return TG_ERR_INVALID;
        }
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return TG_OK;
}

/* "Z", "+hh:mm", "+hhmm", "+hh" or nothing; minutes east of UTC. */
static int parse_offset(const char *p, int local_offset_min, int *out) {
    if (*p == '\0') {
        *out = local_offset_min;
        return TG_OK;
    }
    if ((*p == 'Z' || *p == 'z') && p[1] == '\0') {
        *out = 0;
        return TG_OK;
    }
    if (*p != '+' && *p != '-') {
        return TG_ERR_INVALID;
    }
    int sign = *p++ == '-' ? -1 : 1, hh, mm = 0;
    if (digits(&p, 2, &hh)) {
        return TG_ERR_INVALID;
    }
    if (*p == ':') {
        p++;
    }
    if (*p && digits(&p, 2, &mm)) {
        return TG_ERR_INVALID;
    }
    if (*p || hh > 23 || mm > 59) {
        return TG_ERR_INVALID;
    }
    *out = sign * (hh * 60 + mm);
    return TG_OK;
}

/* Fractional seconds ".123456" -> milliseconds (truncated). */
static const char *parse_fraction(const char *p, int *ms) {
    *ms = 0;
    if (*p != '.' && *p != ',') {
        return p;
    }
    p++;
    if (*p < '0' || *p > '9') {
        return NULL;
    }
    int scale = 100;
    for (; *p >= '0' && *p <= '9'; p++, scale /= 10) {
        *ms += scale * (*p - '0');
    }
    return p;
}

static int parse_iso(const char *p, int local_offset_min, int64_t *out) {
    int y, mo, d, h = 0, mi = 0, s = 0, ms = 0, off;
    if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' ||
        digits(&p, 2, &d)) {
        return TG_ERR_INVALID;
    }
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi)) {
            return TG_ERR_INVALID;
        }
        if (*p == ':' && (p++, digits(&p, 2, &s))) {
            return TG_ERR_INVALID;
        }
        if (!(p = parse_fraction(p, &ms))) {
            return TG_ERR_INVALID;
        }
    }
    int64_t secs;
    if (tg_time_from_utc(y, mo, d, h, mi, s, &secs) || parse_offset(p, local_offset_min, &off)) {
        return TG_ERR_INVALID;
    }
    *out = (secs - off * 60) * 1000 + ms;
    return TG_OK;
}

/* "/Date(1796079600000+0900)/": the milliseconds are UTC; the offset only
 * says where the value was entered, so it does not change the instant. */
static int parse_ms_date(const char *p, int64_t *out) {
    if (strncmp(p, "/Date(", 6) != 0) {
        return TG_ERR_INVALID;
    }
    p += 6;
    char *end;
    long long v = strtoll(p, &end, 10);
    if (end == p || (*p != '-' && (*p < '0' || *p > '9'))) {
        return TG_ERR_INVALID;
    }
    p = end;
    if (*p == '+' || *p == '-') {
        int off;
        p++;
        if (digits(&p, 4, &off)) {
            return TG_ERR_INVALID;
        }
    }
    if (strcmp(p, ")/") != 0) {
        return TG_ERR_INVALID;
    }
    *out = v;
    return TG_OK;
}

int odata_parse_datetime(const char *s, int local_offset_min, int64_t *ms) {
    if (!s) {
        return TG_ERR_INVALID;
    }
    if (s[0] == '/') {
        return parse_ms_date(s, ms);
    }
    return parse_iso(s, local_offset_min, ms);
}

/* ---- numbers ------------------------------------------------------------ */

int odata_parse_number(const cJSON *item, double *out) {
    if (cJSON_IsNumber(item)) {
        *out = item->valuedouble;
        return isfinite(*out) ? TG_OK : TG_ERR_INVALID;
    }
    if (!cJSON_IsString(item) || !item->valuestring[0]) {
        return TG_ERR_INVALID;
    }
    const char *s = item->valuestring;
    /* Only decimal notation: strtod alone would also take "0x1p3", "nan". */
    if (strspn(s, "0123456789+-.eE") != strlen(s)) {
        return TG_ERR_INVALID;
    }
    char *end;
    *out = strtod(s, &end);
    return *end == '\0' && isfinite(*out) ? TG_OK : TG_ERR_INVALID;
}

void odata_format_number(double v, char out[32]) {
    if (v == 0) {
        v = 0; /* -0 and 0 are the same value */
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, 32, "%.*g", prec, v);
        if (strtod(out, NULL) == v) {
            return;
        }
    }
}

/* ---- conversion --------------------------------------------------------- */

/* A value's text, copied: a failed copy is an error of its own, never a
 * value silently left empty (it would be saved as NULL). */
static int set_text(odata_value_t *val, const char *text) {
    return (val->text = strdup(text)) ? TG_OK : TG_ERR_NOMEM;
}

static int convert_string(const cJSON *item, odata_value_t *val, char *why, size_t whylen) {
    char tmp[32];
    if (cJSON_IsNumber(item) && isfinite(item->valuedouble)) {
        /* Edm.Int64 keys and codes may come as numbers: keep their text. */
        odata_format_number(item->valuedouble, tmp);
        return set_text(val, tmp);
    }
    if (!cJSON_IsString(item)) {
        return tg_fail(TG_ERR_INVALID, why, whylen, "expected a string");
    }
    if (strlen(item->valuestring) > ODATA_MAX_STRING) {
        return tg_fail(TG_ERR_INVALID, why, whylen, "longer than %d bytes", ODATA_MAX_STRING);
    }
    if (!tg_utf8_valid(item->valuestring)) {
        return tg_fail(TG_ERR_INVALID, why, whylen, "not valid UTF-8");
    }
    return set_text(val, item->valuestring);
}

static int convert_number(const cJSON *item, int integer, odata_value_t *val, char *why,
                          size_t whylen) {
    char tmp[32];
    if (odata_parse_number(item, &val->num)) {
        return tg_fail(TG_ERR_INVALID, why, whylen, "expected a %s",
                       integer ? "whole number" : "number");
    }
    if (integer && (val->num != floor(val->num) || fabs(val->num) > 2147483647.0)) {
        return tg_fail(TG_ERR_INVALID, why, whylen, "expected a whole number within 32 bits");
    }
    odata_format_number(val->num, tmp);
    return set_text(val, tmp);
}

static int convert_datetime(const cJSON *item, int local_offset_min, odata_value_t *val, char *why,
                            size_t whylen) {
    char tmp[32];
    int64_t ms;
    if (!cJSON_IsString(item) || odata_parse_datetime(item->valuestring, local_offset_min, &ms)) {
        return tg_fail(TG_ERR_INVALID, why, whylen, "expected an ISO 8601 or /Date(ms)/ date-time");
    }
    if (ms < -62135596800000LL || ms > 253402300799999LL) { /* years 1..9999 */
        return tg_fail(TG_ERR_INVALID, why, whylen, "date-time out of range");
    }
    val->num = (double)ms;
    tg_time_iso(ms, tmp);
    return set_text(val, tmp);
}

int odata_value_convert(const cJSON *item, odata_type_t type, int local_offset_min,
                        odata_value_t *val, char *why, size_t whylen) {
    memset(val, 0, sizeof(*val));
    if (!item || cJSON_IsNull(item)) {
        return 0;
    }
    int rc;
    switch (type) {
    case ODATA_STRING:
        rc = convert_string(item, val, why, whylen);
        break;
    case ODATA_NUMBER:
        rc = convert_number(item, 0, val, why, whylen);
        break;
    case ODATA_INTEGER:
        rc = convert_number(item, 1, val, why, whylen);
        break;
    default:
        rc = convert_datetime(item, local_offset_min, val, why, whylen);
        break;
    }
    if (rc == TG_ERR_INVALID) {
        val->bad = 1;
    }
    if (rc) {
        free(val->text);
        val->text = NULL;
    }
    return rc;
}

/* ---- tables ------------------------------------------------------------- */

odata_record_t *odata_table_add(odata_table_t *t, int nfields) {
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 1024;
        odata_record_t *rows = realloc(t->rows, cap * sizeof(*rows));
        if (!rows) {
            return NULL;
        }
        t->rows = rows;
        t->cap = cap;
    }
    odata_record_t *r = &t->rows[t->n];
    memset(r, 0, sizeof(*r));
    r->v = calloc((size_t)nfields, sizeof(*r->v));
    if (!r->v) {
        return NULL;
    }
    t->n++;
    return r;
}

static int cmp_records(const void *a, const void *b) {
    const odata_record_t *x = a, *y = b;
    int c = strcmp(x->v[0].text ? x->v[0].text : "", y->v[0].text ? y->v[0].text : "");
    if (c) {
        return c;
    }
    return (x->source_index > y->source_index) - (x->source_index < y->source_index);
}

void odata_dataset_sort(odata_dataset_t *ds) {
    if (ds->sorted) {
        return;
    }
    for (int k = 0; k < ODATA_KINDS; k++) {
        if (ds->t[k].n > 1) {
            qsort(ds->t[k].rows, ds->t[k].n, sizeof(odata_record_t), cmp_records);
        }
    }
    ds->sorted = 1;
}

const odata_record_t *odata_table_find(const odata_table_t *t, const char *id) {
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *mid_id = t->rows[mid].v[0].text ? t->rows[mid].v[0].text : "";
        int c = strcmp(mid_id, id);
        if (c == 0) {
            return &t->rows[mid];
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return NULL;
}

/* ---- canonical JSON ----------------------------------------------------- */

/* Writes {"key":value,...} of one record into b. */
static int canonical_row(const odata_entity_t *e, const odata_record_t *r, tg_buf_t *b) {
    int rc = tg_buf_append(b, "{", 1);
    for (int f = 0; f < e->nfields && !rc; f++) {
        const odata_value_t *v = &r->v[f];
        const char *key = e->fields[f].key; /* ,"key": written piece by piece: no format */
        rc = (f && tg_buf_append(b, ",", 1)) || tg_buf_append(b, "\"", 1) ||
             tg_buf_append(b, key, strlen(key)) || tg_buf_append(b, "\":", 2);
        if (rc) {
            break;
        }
        if (!v->text) {
            rc = tg_buf_append(b, v->bad ? "\"\\u0000invalid\"" : "null", v->bad ? 16 : 4);
        } else if (e->fields[f].type == ODATA_NUMBER || e->fields[f].type == ODATA_INTEGER) {
            rc = tg_buf_append(b, v->text, strlen(v->text));
        } else {
            rc = tg_json_append_str(b, v->text);
        }
    }
    return rc ? rc : tg_buf_append(b, "}", 1);
}

int odata_row_hash(odata_kind_t k, const odata_record_t *r, tg_buf_t *scratch, char hash[65]) {
    tg_buf_reset(scratch);
    if (canonical_row(&odata_entities[k], r, scratch)) {
        return TG_ERR_NOMEM;
    }
    tg_sha256_hex(scratch->data, scratch->len, hash);
    return TG_OK;
}

/* ---- the canonical document, piece by piece ------------------------------ */

static int doc_put(odata_doc_t *d, const void *data, size_t len) {
    tg_sha256_update(d->sha, data, len);
    return d->write(d->ud, data, len);
}

/* Closes the open array and opens the next ones up to kind `upto`
 * (ODATA_KINDS: closes the document's last array). */
static int doc_advance(odata_doc_t *d, int upto) {
    int rc = TG_OK;
    while (d->kind < upto && !rc) {
        if (d->kind >= 0) {
            rc = doc_put(d, "]", 1);
        }
        if (!rc && ++d->kind < ODATA_KINDS) {
            tg_buf_reset(&d->row);
            rc = tg_buf_appendf(&d->row, "%s\"%s\":[", d->kind ? "," : "",
                                odata_entities[d->kind].name);
            rc = rc ? TG_ERR_NOMEM : doc_put(d, d->row.data, d->row.len);
        }
        d->rows = 0;
    }
    return rc;
}

int odata_doc_begin(odata_doc_t *d, odata_write_fn write, void *ud) {
    memset(d, 0, sizeof(*d));
    d->write = write;
    d->ud = ud;
    d->kind = -1;
    tg_buf_init(&d->row);
    if (!(d->sha = tg_sha256_new())) {
        return TG_ERR_NOMEM;
    }
    return doc_put(d, "{", 1);
}

int odata_doc_row(odata_doc_t *d, odata_kind_t k, const odata_record_t *r, char row_hash[65]) {
    int rc = doc_advance(d, (int)k);
    if (rc) {
        return rc;
    }
    tg_buf_reset(&d->row);
    if ((d->rows && tg_buf_append(&d->row, ",", 1)) ||
        canonical_row(&odata_entities[k], r, &d->row)) {
        return TG_ERR_NOMEM;
    }
    size_t skip = d->rows ? 1 : 0; /* the row hash covers the object alone */
    tg_sha256_hex(d->row.data + skip, d->row.len - skip, row_hash);
    d->rows++;
    return doc_put(d, d->row.data, d->row.len);
}

int odata_doc_end(odata_doc_t *d, char hash[65]) {
    int rc = doc_advance(d, ODATA_KINDS);
    if (!rc) {
        rc = doc_put(d, "}", 1);
    }
    if (!rc) {
        tg_sha256_final(d->sha, hash);
        d->sha = NULL;
    }
    odata_doc_free(d);
    return rc;
}

void odata_doc_free(odata_doc_t *d) {
    if (d->sha) {
        char ignored[65];
        tg_sha256_final(d->sha, ignored); /* the only way to free it */
        d->sha = NULL;
    }
    tg_buf_free(&d->row);
}

static int buf_write(void *ud, const void *data, size_t len) {
    return tg_buf_append(ud, data, len);
}

int odata_canonical(odata_dataset_t *ds, tg_buf_t *out, char hash[65]) {
    odata_dataset_sort(ds);
    odata_doc_t d;
    int rc = odata_doc_begin(&d, buf_write, out);
    for (int k = 0; k < ODATA_KINDS && !rc; k++) {
        for (size_t i = 0; i < ds->t[k].n && !rc; i++) {
            odata_record_t *r = &ds->t[k].rows[i];
            rc = odata_doc_row(&d, (odata_kind_t)k, r, r->row_hash);
        }
    }
    if (rc) {
        odata_doc_free(&d);
        return TG_ERR_NOMEM;
    }
    return odata_doc_end(&d, hash) ? TG_ERR_NOMEM : TG_OK;
}

void odata_dataset_free(odata_dataset_t *ds) {
    for (int k = 0; k < ODATA_KINDS; k++) {
        odata_table_t *t = &ds->t[k];
        for (size_t i = 0; i < t->n; i++) {
            for (int f = 0; f < odata_entities[k].nfields; f++) {
                free(t->rows[i].v[f].text);
            }
            free(t->rows[i].v);
        }
        free(t->rows);
    }
    memset(ds, 0, sizeof(*ds));
}
