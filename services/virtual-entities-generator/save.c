/* The PostgreSQL side of one generation, the steps main.c chains in one
 * transaction: lock the dataset row and read what it holds, delete a previous
 * generation (force), read the real stops, COPY virtual_stops,
 * virtual_routes and flights with their counts, move the horizon on (top-up)
 * and record it. */
#include "tg/dataset.h"
#include "tg/envelope.h"
#include "tg/log.h"
#include "tg/pg.h"
#include "virtual.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FLIGHT_PIECE_BYTES (256u << 10) /* one piece of the flights COPY */

static int lock_dataset(PGconn *pg, const char *dv, virtual_dataset_t *row, char *errstr,
                        size_t errlen) {
    PGresult *res;
    const char *params[] = {dv};
    int rc = tg_pg_exec(pg,
                        "SELECT coalesce(virtual_from - date '1970-01-01', -1), "
                        "coalesce(virtual_through - date '1970-01-01', -1) "
                        "FROM datasets WHERE version = $1 FOR UPDATE",
                        1, params, &res, errstr, errlen);
    if (rc) {
        return rc;
    }
    row->found = PQntuples(res) == 1;
    row->from = row->found ? atoll(PQgetvalue(res, 0, 0)) : -1;
    row->through = row->found ? atoll(PQgetvalue(res, 0, 1)) : -1;
    PQclear(res);
    return TG_OK;
}

/* Records the days the virtual flights now cover; a new generation stamp
 * tells graph-builder that its graph of this dataset is out of date. */
int virtual_horizon_record(PGconn *pg, const virtual_dataset_t *ds, int64_t from, int64_t through,
                           char *errstr, size_t errlen) {
    const char *dv = ds->version;
    char f[16], t[16];
    tg_day_format(from, f, sizeof(f));
    tg_day_format(through, t, sizeof(t));
    const char *params[] = {dv, f, t};
    return tg_pg_exec(pg,
                      "UPDATE datasets SET virtual_from = $2::date, virtual_through = $3::date, "
                      "virtual_generation = virtual_generation + 1, stats = stats || "
                      "jsonb_build_object('virtualFlights', (SELECT count(*) FROM flights "
                      "WHERE dataset_version = $1 AND is_virtual)) WHERE version = $1",
                      3, params, NULL, errstr, errlen);
}

/* Reads what the dataset already holds; *generated is 1 when a generation
 * was committed before (its stats carry the counts, even when zero). */
static int existing(PGconn *pg, const char *dv, virtual_outcome_t *out, int *generated,
                    char *errstr, size_t errlen) {
    PGresult *res;
    const char *params[] = {dv};
    int rc = tg_pg_exec(
        pg,
        "SELECT (SELECT count(*) FROM virtual_stops WHERE dataset_version = $1), "
        "(SELECT count(*) FROM virtual_routes WHERE dataset_version = $1), "
        "(SELECT count(*) FROM flights WHERE dataset_version = $1 AND is_virtual), "
        "coalesce(stats->>'virtualMode', ''), coalesce(stats->>'citiesWithoutStops', '0'), "
        "stats ? 'virtualStops' FROM datasets WHERE version = $1",
        1, params, &res, errstr, errlen);
    if (rc) {
        return rc;
    }
    out->stops = atoll(PQgetvalue(res, 0, 0));
    out->routes = atoll(PQgetvalue(res, 0, 1));
    out->flights = atoll(PQgetvalue(res, 0, 2));
    snprintf(out->mode, sizeof(out->mode), "%s", PQgetvalue(res, 0, 3));
    out->cities_without_stops = (size_t)atoll(PQgetvalue(res, 0, 4));
    *generated = out->stops > 0 || out->routes > 0 || !strcmp(PQgetvalue(res, 0, 5), "t");
    PQclear(res);
    return TG_OK;
}

int virtual_delete(PGconn *pg, const virtual_dataset_t *ds, virtual_outcome_t *out, char *errstr,
                   size_t errlen) {
    const char *params[] = {ds->version};
    out->deleted = out->stops + out->routes + out->flights;
    int rc = tg_pg_exec(pg, "DELETE FROM flights WHERE dataset_version = $1 AND is_virtual", 1,
                        params, NULL, errstr, errlen);
    if (!rc) {
        rc = tg_pg_exec(pg, "DELETE FROM virtual_routes WHERE dataset_version = $1", 1, params,
                        NULL, errstr, errlen);
    }
    if (!rc) {
        rc = tg_pg_exec(pg, "DELETE FROM virtual_stops WHERE dataset_version = $1", 1, params, NULL,
                        errstr, errlen);
    }
    return rc;
}

static int real_stops(PGconn *pg, const char *dv, PGresult **res, virtual_real_stop_t **stops,
                      size_t *n, char *errstr, size_t errlen) {
    const char *params[] = {dv};
    int rc = tg_pg_exec(pg,
                        "SELECT id, city_name, latitude, longitude FROM stops "
                        "WHERE dataset_version = $1 ORDER BY id COLLATE \"C\"",
                        1, params, res, errstr, errlen);
    if (rc) {
        return rc;
    }
    *n = (size_t)PQntuples(*res);
    *stops = calloc(*n ? *n : 1, sizeof(**stops));
    if (!*stops) {
        return tg_fail(TG_ERR_NOMEM, errstr, errlen, "stops: out of memory");
    }
    for (size_t i = 0; i < *n; i++) {
        virtual_real_stop_t *s = &(*stops)[i];
        s->id = PQgetvalue(*res, (int)i, 0);
        /* odata-sync-worker refuses longer ids; a dataset loaded another way
         * is refused here, never given route ids cut short. */
        if (strlen(s->id) > TG_ENTITY_ID_MAX) {
            return tg_fail(TG_ERR_INVALID, errstr, errlen,
                           "stop id \"%.40s...\" is %zu bytes, more than %d", s->id, strlen(s->id),
                           TG_ENTITY_ID_MAX);
        }
        s->city_name = PQgetisnull(*res, (int)i, 1) ? NULL : PQgetvalue(*res, (int)i, 1);
        s->latitude = PQgetisnull(*res, (int)i, 2) ? NAN : atof(PQgetvalue(*res, (int)i, 2));
        s->longitude = PQgetisnull(*res, (int)i, 3) ? NAN : atof(PQgetvalue(*res, (int)i, 3));
    }
    return TG_OK;
}

static int copy_stops(PGconn *pg, const char *dv, const virtual_plan_t *plan, char *errstr,
                      size_t errlen) {
    tg_buf_t b;
    tg_buf_init(&b);
    int rc = TG_OK;
    char name[VIRTUAL_NAME_MAX + 8];
    for (size_t i = 0; i < plan->nstops && !rc; i++) {
        const virtual_stop_t *s = &plan->stops[i];
        snprintf(name, sizeof(name), "г. %s", s->city->name);
        rc = tg_copy_str(&b, dv, 0) || tg_copy_str(&b, s->id, 0) || tg_copy_str(&b, name, 0) ||
             tg_copy_str(&b, s->city->name, 0) || tg_copy_double(&b, s->city->latitude, 0) ||
             tg_copy_double(&b, s->city->longitude, 0) || tg_copy_str(&b, "virtual", 1);
    }
    if (rc) {
        rc = tg_fail(TG_ERR_NOMEM, errstr, errlen, "virtual_stops: out of memory");
    } else if (b.len) {
        rc = tg_pg_copy(pg,
                        "COPY virtual_stops (dataset_version, id, name, city_name, latitude, "
                        "longitude, stop_type) FROM STDIN",
                        b.data, b.len, errstr, errlen);
    }
    tg_buf_free(&b);
    return rc;
}

static int route_row(tg_buf_t *b, const char *dv, const virtual_route_t *r,
                     const virtual_config_t *cfg) {
    char name[2 * VIRTUAL_NAME_MAX + 8], fare[32];
    snprintf(name, sizeof(name), "%s → %s", r->from.city_name, r->to.city_name);
    snprintf(fare, sizeof(fare), "%.2f", cfg->fare_rub);
    return tg_copy_str(b, dv, 0) || tg_copy_str(b, r->id, 0) || tg_copy_str(b, name, 0) ||
           tg_copy_str(b, r->from.stop_id, 0) || tg_copy_str(b, r->to.stop_id, 0) ||
           tg_copy_str(b, cfg->transport_type, 0) || tg_copy_long(b, r->duration_min, 0) ||
           tg_copy_double(b, round(r->distance_km * 100) / 100, 0) || tg_copy_str(b, fare, 1);
}

static int copy_routes(PGconn *pg, const char *dv, const virtual_plan_t *plan,
                       const virtual_config_t *cfg, char *errstr, size_t errlen) {
    tg_buf_t b;
    tg_buf_init(&b);
    int rc = TG_OK;
    for (size_t i = 0; i < plan->nroutes && !rc; i++) {
        rc = route_row(&b, dv, &plan->routes[i], cfg);
    }
    if (rc) {
        rc = tg_fail(TG_ERR_NOMEM, errstr, errlen, "virtual_routes: out of memory");
    } else if (b.len) {
        rc = tg_pg_copy(pg,
                        "COPY virtual_routes (dataset_version, id, name, from_stop_id, "
                        "to_stop_id, transport_type, duration_minutes, distance_km, fare) "
                        "FROM STDIN",
                        b.data, b.len, errstr, errlen);
    }
    tg_buf_free(&b);
    return rc;
}

/* Flights go in one COPY, sent in pieces as they are generated: the server
 * loads one piece while the next is written, and memory stays at one piece
 * whatever the number of flights. */
static int copy_flights(PGconn *pg, const char *dv, const virtual_plan_t *plan, int64_t first_day,
                        int days, char *errstr, size_t errlen) {
    tg_pg_copy_t copy;
    int rc = tg_pg_copy_begin(&copy, pg, VIRTUAL_FLIGHT_COPY, errstr, errlen);
    if (rc) {
        return rc;
    }
    tg_buf_t b;
    tg_buf_init(&b);
    const char *failed = NULL;
    for (size_t i = 0; i < plan->nroutes && !failed; i++) {
        if (virtual_flights_append(&b, dv, &plan->routes[i], first_day, days)) {
            failed = "flights: out of memory";
        } else if (b.len >= FLIGHT_PIECE_BYTES || i + 1 == plan->nroutes) {
            tg_pg_copy_put(&copy, b.data, b.len);
            tg_buf_reset(&b);
        }
    }
    tg_buf_free(&b);
    return tg_pg_copy_end(&copy, failed, errstr, errlen);
}

static int update_stats(PGconn *pg, const char *dv, const virtual_outcome_t *out, char *errstr,
                        size_t errlen) {
    char s[24], r[24], f[24], c[24];
    snprintf(s, sizeof(s), "%lld", out->stops);
    snprintf(r, sizeof(r), "%lld", out->routes);
    snprintf(f, sizeof(f), "%lld", out->flights);
    snprintf(c, sizeof(c), "%zu", out->cities_without_stops);
    const char *params[] = {dv, s, r, f, out->mode, c};
    return tg_pg_exec(pg,
                      "UPDATE datasets SET stats = stats || jsonb_build_object("
                      "'virtualStops', $2::bigint, 'virtualRoutes', $3::bigint, "
                      "'virtualFlights', $4::bigint, 'virtualMode', $5::text, "
                      "'citiesWithoutStops', $6::bigint) WHERE version = $1",
                      6, params, NULL, errstr, errlen);
}

int virtual_plan_save(PGconn *pg, const virtual_dataset_t *ds, const virtual_plan_t *plan,
                      const virtual_config_t *cfg, int64_t first_day, virtual_outcome_t *out,
                      char *errstr, size_t errlen) {
    const char *dv = ds->version;
    int64_t t0 = tg_mono_ms();
    int rc = copy_stops(pg, dv, plan, errstr, errlen);
    if (!rc) {
        rc = copy_routes(pg, dv, plan, cfg, errstr, errlen);
    }
    int64_t t1 = tg_mono_ms();
    if (!rc) {
        rc = copy_flights(pg, dv, plan, first_day, cfg->horizon_days, errstr, errlen);
    }
    tg_info("COPY took %lld ms for stops and routes, %lld ms for flights", (long long)(t1 - t0),
            (long long)(tg_mono_ms() - t1));
    out->stops = (long long)plan->nstops;
    out->routes = (long long)plan->nroutes;
    out->flights = (long long)plan->nroutes * cfg->horizon_days * 2;
    out->cities_without_stops = plan->cities_without_stops;
    snprintf(out->mode, sizeof(out->mode), "%s", plan->mode == VIRTUAL_MODE_HUB ? "hub" : "direct");
    if (!rc) {
        rc = update_stats(pg, dv, out, errstr, errlen);
    }
    return rc;
}

int virtual_real_stops_read(PGconn *pg, const virtual_dataset_t *ds, virtual_real_stops_t *out,
                            char *errstr, size_t errlen) {
    memset(out, 0, sizeof(*out));
    return real_stops(pg, ds->version, &out->res, &out->items, &out->count, errstr, errlen);
}

void virtual_real_stops_free(virtual_real_stops_t *s) {
    free(s->items);
    PQclear(s->res);
    memset(s, 0, sizeof(*s));
}

/* ---- the rolling horizon ------------------------------------------------ */

/* Flights of the dataset's virtual routes for local days [first, last]. */
static int copy_days(PGconn *pg, const char *dv, int64_t first, int64_t last, long long *added,
                     char *errstr, size_t errlen) {
    PGresult *res;
    const char *params[] = {dv};
    *added = 0;
    if (last < first) {
        return TG_OK;
    }
    int rc = tg_pg_exec(pg,
                        "SELECT id, from_stop_id, to_stop_id, duration_minutes FROM "
                        "virtual_routes WHERE dataset_version = $1 ORDER BY id COLLATE \"C\"",
                        1, params, &res, errstr, errlen);
    if (rc) {
        return rc;
    }
    virtual_plan_t plan = {.nroutes = (size_t)PQntuples(res)};
    plan.routes = calloc(plan.nroutes ? plan.nroutes : 1, sizeof(*plan.routes));
    if (!plan.routes) {
        rc = tg_fail(TG_ERR_NOMEM, errstr, errlen, "virtual routes: out of memory");
    }
    for (size_t i = 0; !rc && i < plan.nroutes; i++) {
        virtual_route_t *r = &plan.routes[i];
        snprintf(r->id, sizeof(r->id), "%s", PQgetvalue(res, (int)i, 0));
        r->from.stop_id = PQgetvalue(res, (int)i, 1);
        r->to.stop_id = PQgetvalue(res, (int)i, 2);
        r->duration_min = (int)lround(atof(PQgetvalue(res, (int)i, 3)));
    }
    if (!rc && plan.nroutes) {
        rc = copy_flights(pg, dv, &plan, first, (int)(last - first + 1), errstr, errlen);
    }
    *added = (long long)plan.nroutes * (last - first + 1) * 2;
    free(plan.routes);
    PQclear(res);
    return rc;
}

int virtual_top_up(PGconn *pg, const virtual_dataset_t *row, int64_t today, int days,
                   virtual_outcome_t *out, char *errstr, size_t errlen) {
    const char *dv = row->version;
    char first[16];
    PGresult *res;
    int64_t last = today + days - 1, from = row->through + 1 > today ? row->through + 1 : today;
    tg_day_format(today, first, sizeof(first));
    const char *params[] = {dv, first};
    int rc = tg_pg_exec(pg,
                        "DELETE FROM flights WHERE dataset_version = $1 AND is_virtual AND "
                        "departure_time < $2::date::timestamp AT TIME ZONE 'Asia/Yakutsk'",
                        2, params, &res, errstr, errlen);
    if (rc) {
        return rc;
    }
    out->deleted = atoll(PQcmdTuples(res));
    PQclear(res);
    rc = copy_days(pg, dv, from, last, &out->added, errstr, errlen);
    if (!rc) {
        rc = virtual_horizon_record(pg, row, today, last > row->through ? last : row->through,
                                    errstr, errlen);
    }
    out->topped_up = 1;
    return rc;
}

int virtual_dataset_lock(PGconn *pg, int64_t dataset_version, virtual_dataset_t *ds,
                         virtual_outcome_t *out, char *errstr, size_t errlen) {
    memset(ds, 0, sizeof(*ds));
    memset(out, 0, sizeof(*out));
    ds->from = ds->through = -1;
    snprintf(ds->version, sizeof(ds->version), "%lld", (long long)dataset_version);
    int rc = tg_pg_begin(pg, errstr, errlen);
    if (!rc) {
        rc = lock_dataset(pg, ds->version, ds, errstr, errlen);
    }
    if (!rc && ds->found) {
        rc = existing(pg, ds->version, out, &ds->generated, errstr, errlen);
    }
    out->dataset_found = ds->found;
    return rc;
}
