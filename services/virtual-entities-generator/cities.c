/* The cities directory: a CSV file (RFC 4180, UTF-8) read and validated at
 * start-up, kept in memory for generation and copied into the cities table
 * so that operators and the other services see the same directory. */
#include "tg/files.h"
#include "tg/pg.h"
#include "tg/text.h"
#include "virtual.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NFIELDS 5
static const char *const header[NFIELDS] = {"name", "district", "latitude", "longitude",
                                            "population"};

typedef struct {
    const char *p, *end;
    int line; /* physical line of the next character, 1-based */
} csv_t;

/* Reads one field into out; returns 1 after a field ending in ',', 0 after
 * the record's last field, -1 on a quoting error or an overlong field. */
static int csv_field(csv_t *c, char *out, size_t outlen) {
    size_t n = 0;
    int quoted = c->p < c->end && *c->p == '"';
    if (quoted) {
        c->p++;
    }
    while (c->p < c->end) {
        char ch = *c->p;
        if (quoted && ch == '"') {
            if (c->p + 1 < c->end && c->p[1] == '"') {
                c->p++; /* "" is a literal quote */
            } else {
                quoted = 0;
                c->p++;
                if (c->p < c->end && *c->p != ',' && *c->p != '\n' && *c->p != '\r') {
                    return -1;
                }
                continue;
            }
        } else if (!quoted && (ch == ',' || ch == '\n' || ch == '\r')) {
            break;
        } else if (!quoted && ch == '"') {
            return -1;
        }
        if (ch == '\n') {
            c->line++;
        }
        if (n + 1 >= outlen) {
            return -1;
        }
        out[n++] = *c->p++;
    }
    out[n] = '\0';
    if (quoted) {
        return -1; /* end of file inside quotes */
    }
    if (c->p < c->end && *c->p == ',') {
        c->p++;
        return 1;
    }
    if (c->p < c->end && *c->p == '\r') {
        c->p++;
    }
    if (c->p < c->end && *c->p == '\n') {
        c->p++;
        c->line++;
    }
    return 0;
}

/* Reads one record; returns its field count, or -1 when malformed. */
static int csv_record(csv_t *c, char fields[][VIRTUAL_NAME_MAX], int max) {
    int nf = 0, more;
    char spill[VIRTUAL_NAME_MAX];
    do {
        more = csv_field(c, nf < max ? fields[nf] : spill, VIRTUAL_NAME_MAX);
        if (more < 0) {
            return -1;
        }
        nf++;
    } while (more);
    return nf;
}

static int parse_number(const char *s, double min, double max, double *out) {
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (!*s || errno || *end || d != d || d < min || d > max) {
        return -1;
    }
    *out = d;
    return 0;
}

static int parse_population(const char *s, long *out) {
    char *end;
    if (!*s) {
        *out = -1;
        return 0;
    }
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < 0) {
        return -1;
    }
    *out = v;
    return 0;
}

/* Validates one data row into city; errstr names the column. */
static int city_from_fields(char f[][VIRTUAL_NAME_MAX], virtual_city_t *city, char *errstr,
                            size_t errlen) {
    /* csv_field bounds every field to VIRTUAL_NAME_MAX - 1 bytes */
    memcpy(city->name, f[0], strnlen(f[0], VIRTUAL_NAME_MAX - 1) + 1);
    memcpy(city->district, f[1], strnlen(f[1], VIRTUAL_NAME_MAX - 1) + 1);
    if (tg_city_key(f[0], city->normalized, sizeof(city->normalized))) {
        return tg_fail(TG_ERR_INVALID, errstr, errlen, "name \"%s\" is empty or not UTF-8", f[0]);
    }
    if (virtual_translit(city->normalized, city->slug, sizeof(city->slug))) {
        return tg_fail(TG_ERR_INVALID, errstr, errlen,
                       "name \"%s\" has no letter that can be transliterated", f[0]);
    }
    if (parse_number(f[2], -90, 90, &city->latitude)) {
        return tg_fail(TG_ERR_INVALID, errstr, errlen,
                       "latitude \"%s\" is not a number in [-90, 90]", f[2]);
    }
    if (parse_number(f[3], -180, 180, &city->longitude)) {
        return tg_fail(TG_ERR_INVALID, errstr, errlen,
                       "longitude \"%s\" is not a number in [-180, 180]", f[3]);
    }
    if (parse_population(f[4], &city->population)) {
        return tg_fail(TG_ERR_INVALID, errstr, errlen,
                       "population \"%s\" is not a whole number >= 0 (or empty)", f[4]);
    }
    return TG_OK;
}

static int check_header(csv_t *c, char f[][VIRTUAL_NAME_MAX]) {
    if (c->end - c->p >= 3 && !memcmp(c->p, "\xEF\xBB\xBF", 3)) {
        c->p += 3; /* a byte order mark, as spreadsheet exports write */
    }
    if (csv_record(c, f, NFIELDS) != NFIELDS) {
        return -1;
    }
    for (int i = 0; i < NFIELDS; i++) {
        if (strcmp(f[i], header[i])) {
            return -1;
        }
    }
    return 0;
}

static int is_duplicate(const virtual_cities_t *out, const virtual_city_t *city) {
    for (size_t i = 0; i < out->count; i++) {
        if (!strcmp(out->items[i].normalized, city->normalized)) {
            return 1;
        }
    }
    return 0;
}

/* Appends the next data row to out; returns 1 when a row was added, 0 at the
 * end of the text, or an error naming the line. */
static int next_city(csv_t *c, const char *path, virtual_cities_t *out, size_t *cap, char *errstr,
                     size_t errlen) {
    char f[NFIELDS][VIRTUAL_NAME_MAX];
    while (c->p < c->end && (*c->p == '\n' || *c->p == '\r')) {
        c->line += *c->p == '\n';
        c->p++; /* blank lines */
    }
    if (c->p >= c->end) {
        return 0;
    }
    int line = c->line, nf = csv_record(c, f, NFIELDS);
    if (nf != NFIELDS) {
        return tg_fail(TG_ERR_INVALID, errstr, errlen,
                       nf < 0 ? "%s: line %d: malformed CSV (quotes, or a field over %d bytes)"
                              : "%s: line %d: expected 5 fields, found %d",
                       path, line, nf < 0 ? VIRTUAL_NAME_MAX - 1 : nf);
    }
    if (out->count == *cap) {
        size_t ncap = *cap ? *cap * 2 : 64;
        virtual_city_t *p = realloc(out->items, ncap * sizeof(*p));
        if (!p) {
            return tg_fail(TG_ERR_NOMEM, errstr, errlen, "%s: out of memory", path);
        }
        out->items = p;
        *cap = ncap;
    }
    virtual_city_t *city = &out->items[out->count];
    char why[512];
    if (city_from_fields(f, city, why, sizeof(why))) {
        return tg_fail(TG_ERR_INVALID, errstr, errlen, "%s: line %d: %s", path, line, why);
    }
    if (is_duplicate(out, city)) {
        return tg_fail(TG_ERR_INVALID, errstr, errlen,
                       "%s: line %d: city \"%s\" appears twice (same normalised name \"%s\")", path,
                       line, city->name, city->normalized);
    }
    out->count++;
    return 1;
}

int virtual_cities_parse(const char *path, const char *text, size_t len, virtual_cities_t *out,
                         char *errstr, size_t errlen) {
    csv_t c = {text, text + len, 1};
    char f[NFIELDS][VIRTUAL_NAME_MAX];
    size_t cap = 0;
    int rc;
    memset(out, 0, sizeof(*out));
    if (check_header(&c, f)) {
        return tg_fail(TG_ERR_INVALID, errstr, errlen,
                       "%s: line 1: the header must be name,district,latitude,longitude,population",
                       path);
    }
    while ((rc = next_city(&c, path, out, &cap, errstr, errlen)) == 1)
        ;
    if (rc == 0 && out->count == 0) {
        rc = tg_fail(TG_ERR_INVALID, errstr, errlen, "%s: no cities", path);
    }
    if (rc < 0) {
        virtual_cities_free(out);
    }
    return rc < 0 ? rc : TG_OK;
}

int virtual_cities_read(const char *path, virtual_cities_t *out, char *errstr, size_t errlen) {
    char *text, why[512];
    size_t len;
    int rc = tg_file_read(path, 0, &text, &len, why, sizeof(why));
    if (rc) {
        return tg_fail(rc, errstr, errlen, "CITIES_FILE: %s", why);
    }
    rc = virtual_cities_parse(path, text, len, out, errstr, errlen);
    free(text);
    return rc;
}

void virtual_cities_free(virtual_cities_t *c) {
    free(c->items);
    memset(c, 0, sizeof(*c));
}

static int cities_copy_data(const virtual_cities_t *c, tg_buf_t *b) {
    for (size_t i = 0; i < c->count; i++) {
        const virtual_city_t *city = &c->items[i];
        if (tg_copy_str(b, city->name, 0) || tg_copy_str(b, city->normalized, 0) ||
            tg_copy_str(b, *city->district ? city->district : NULL, 0) ||
            tg_copy_double(b, city->latitude, 0) || tg_copy_double(b, city->longitude, 0) ||
            (city->population < 0 ? tg_copy_str(b, NULL, 1)
                                  : tg_copy_long(b, city->population, 1))) {
            return TG_ERR_NOMEM;
        }
    }
    return TG_OK;
}

/* The file is the directory: its rows replace the table's in one
 * transaction, so a city removed from the file disappears too. */
int virtual_cities_store(PGconn *pg, const virtual_cities_t *c, char *errstr, size_t errlen) {
    tg_buf_t b;
    tg_buf_init(&b);
    int rc = cities_copy_data(c, &b);
    if (rc) {
        tg_buf_free(&b);
        return tg_fail(rc, errstr, errlen, "cities: out of memory");
    }
    if (!(rc = tg_pg_begin(pg, errstr, errlen)) &&
        !(rc = tg_pg_exec(pg, "DELETE FROM cities", 0, NULL, NULL, errstr, errlen)) &&
        !(rc = tg_pg_copy(pg,
                          "COPY cities (name, normalized_name, district, latitude, longitude, "
                          "population) FROM STDIN",
                          b.data, b.len, errstr, errlen))) {
        rc = tg_pg_commit(pg, errstr, errlen);
    }
    if (rc) {
        tg_pg_rollback(pg);
    }
    tg_buf_free(&b);
    return rc;
}
