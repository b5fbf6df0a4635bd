/* virtual-entities-generator (Worker 2): after each OData sync, gives every
 * directory city without a real stop a virtual stop, virtual routes and two
 * flights a day for a year, so the graph reaches the whole service area.
 *
 *   odata-sync.completed → no dataset / no changes? skip          (skip_status)
 *     one transaction:   → lock the dataset; generated and current? done
 *                        → generated, horizon moved on? top up    (generate)
 *                        → load real stops → find cities without stops
 *                        → plan stops and routes (hub or direct)
 *                        → COPY stops, routes, flights + stats
 *                        → record the horizon, commit            (regenerate)
 *   → virtual-entities.completed
 *
 * plan.c decides, flights.c writes the schedule, save.c holds the SQL.
 */
#include "tg/dataset.h"
#include "tg/log.h"
#include "tg/pg.h"
#include "tg/topics.h"
#include "tg/worker.h"
#include "virtual.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef VIRTUAL_CITIES_FILE
#define VIRTUAL_CITIES_FILE "/usr/share/transit-graph/cities.csv"
#endif

typedef struct {
    virtual_cities_t cities; /* the directory, cached for every step */
    virtual_config_t cfg;
} state_t;

static int config_read(virtual_config_t *c, char *errstr, size_t errlen) {
    const char *mode = tg_env_str("VIRTUAL_MODE", "hub");
    if (!strcmp(mode, "hub")) {
        c->mode = VIRTUAL_MODE_HUB;
    } else if (!strcmp(mode, "direct")) {
        c->mode = VIRTUAL_MODE_DIRECT;
    } else {
        return tg_fail(TG_ERR_CONFIG, errstr, errlen,
                       "VIRTUAL_MODE: \"%s\" is not one of hub, direct", mode);
    }
    c->hub_city = tg_env_str("VIRTUAL_HUB_CITY", "Якутск");
    c->transport_type = tg_env_str("VIRTUAL_TRANSPORT_TYPE", "BUS");
    int rc = tg_env_double("VIRTUAL_SPEED_KMH", 60, 1, 2000, &c->speed_kmh, errstr, errlen);
    if (!rc) {
        rc = tg_env_double("VIRTUAL_FARE_RUB", 1000, 0, 1e9, &c->fare_rub, errstr, errlen);
    }
    long days = VIRTUAL_FLIGHT_DAYS;
    if (!rc) {
        rc = tg_env_long("VIRTUAL_HORIZON_DAYS", VIRTUAL_FLIGHT_DAYS, 1, 3660, &days, errstr,
                         errlen);
    }
    c->horizon_days = (int)days;

    return rc;
}

static void fini(tg_worker_ctx_t *ctx) {
    state_t *st = ctx->state;
    if (st) {
        virtual_cities_free(&st->cities);
    }
    free(st);
    ctx->state = NULL;
}

/* Reads the directory, validates it and stores it in the cities table. */
static int init(tg_worker_ctx_t *ctx, char *errstr, size_t errlen) {
    state_t *st = calloc(1, sizeof(*st));
    if (!st) {
        return tg_fail(TG_ERR_NOMEM, errstr, errlen, "out of memory");
    }
    ctx->state = st; /* fini frees it, whatever follows */
    const char *path = tg_env_str("CITIES_FILE", VIRTUAL_CITIES_FILE);
    int rc = config_read(&st->cfg, errstr, errlen);
    if (!rc) {
        rc = virtual_cities_read(path, &st->cities, errstr, errlen);
    }
    if (!rc) {
        rc = virtual_cities_store(ctx->pg, &st->cities, errstr, errlen);
    }
    if (rc) {
        return rc;
    }
    tg_info("Cities directory %s: %zu cities; mode %s, hub %s, %g km/h, fare %.2f RUB, %s", path,
            st->cities.count, st->cfg.mode == VIRTUAL_MODE_HUB ? "hub" : "direct", st->cfg.hub_city,
            st->cfg.speed_kmh, st->cfg.fare_rub, st->cfg.transport_type);
    return TG_OK;
}

static cJSON *details_of(const virtual_outcome_t *o) {
    cJSON *d = cJSON_CreateObject();
    cJSON_AddNumberToObject(d, "virtualStops", (double)o->stops);
    cJSON_AddNumberToObject(d, "virtualRoutes", (double)o->routes);
    cJSON_AddNumberToObject(d, "virtualFlights", (double)o->flights);
    if (*o->mode) {
        cJSON_AddStringToObject(d, "mode", o->mode);
    }
    cJSON_AddNumberToObject(d, "citiesWithoutStops", (double)o->cities_without_stops);
    return d;
}

/* Why this event asks for no generation: the status to report (skipped, or
 * TG_STEP_NOTHING when nothing follows either) with its message in buf;
 * NULL to generate. Unchanged data is generated for only when odata-sync
 * says the virtual entities are missing or their horizon moved on. */
static const char *skip_status(const tg_envelope_t *in, int64_t dv, char *buf, size_t len) {
    const char *status = tg_json_str(in->payload, "status");
    const char *only = tg_json_str(in->payload, "only");
    tg_refresh_t refresh = tg_refresh_parse(tg_json_str(in->payload, "refresh"));
    if (only && *only && strcmp(only, TG_WORKER_VIRTUAL)) {
        snprintf(buf, len, "Single-worker run of %s: nothing to do", only);
        return TG_STEP_NOTHING;
    }
    if (dv <= 0) {
        snprintf(buf, len, "No dataset: generation skipped");
        return "skipped";
    }
    if (status && !strcmp(status, "no_changes")) {
        if (refresh == TG_REFRESH_VIRTUAL_MISSING || refresh == TG_REFRESH_VIRTUAL_HORIZON) {
            return NULL;
        }
        snprintf(buf, len,
                 refresh == TG_REFRESH_GRAPH
                     ? "Virtual entities of dataset %lld are current: the graph is refreshed"
                     : "Dataset %lld unchanged and current: nothing to do",
                 (long long)dv);
        return refresh == TG_REFRESH_GRAPH ? "skipped" : TG_STEP_NOTHING;
    }
    if (status && strcmp(status, "success")) {
        snprintf(buf, len, "OData sync reported %s: no new dataset, generation skipped", status);
        return "skipped";
    }
    return NULL;
}

/* A first generation, or a forced one that replaces the previous: plans
 * from the real stops and saves, in the open transaction. */
static int regenerate(PGconn *pg, const state_t *st, const virtual_dataset_t *ds, int64_t today,
                      virtual_outcome_t *o, char *err, size_t errlen) {
    virtual_real_stops_t real = {0};
    virtual_plan_t plan;
    int64_t t0 = tg_mono_ms();
    int rc = ds->generated ? virtual_delete(pg, ds, o, err, errlen) : TG_OK;
    if (!rc) {
        rc = virtual_real_stops_read(pg, ds, &real, err, errlen);
    }
    if (!rc) {
        rc = virtual_plan_build(&st->cities, real.items, real.count, &st->cfg, &plan, err, errlen);
    }
    if (!rc) {
        tg_debug("Planned %zu virtual stops and %zu routes from %zu real stops in %lld ms",
                 plan.nstops, plan.nroutes, real.count, (long long)(tg_mono_ms() - t0));
        rc = virtual_plan_save(pg, ds, &plan, &st->cfg, today, o, err, errlen);
        virtual_plan_free(&plan);
    }
    virtual_real_stops_free(&real);
    if (!rc) {
        rc = virtual_horizon_record(pg, ds, today, today + st->cfg.horizon_days - 1, err, errlen);
    }
    return rc;
}

/* The virtual entities of dataset version in one transaction, with flights
 * from local day today over the horizon: replay-safe unless force. */
static int generate(PGconn *pg, const state_t *st, int64_t version, int force, int64_t today,
                    virtual_outcome_t *o, char *err, size_t errlen) {
    virtual_dataset_t ds;
    int rc = virtual_dataset_lock(pg, version, &ds, o, err, errlen);
    int current = ds.generated && ds.from >= today;
    if (rc || !ds.found || (current && !force)) {
        o->existed = ds.generated;
        tg_day_format(ds.through, o->through, sizeof(o->through));
        tg_pg_rollback(pg);
        return rc;
    }
    if (ds.generated && !force) {
        rc = virtual_top_up(pg, &ds, today, st->cfg.horizon_days, o, err, errlen);
    } else {
        rc = regenerate(pg, st, &ds, today, o, err, errlen);
    }
    tg_day_format(today + st->cfg.horizon_days - 1, o->through, sizeof(o->through));
    if (!rc) {
        rc = tg_pg_commit(pg, err, errlen);
    }
    if (rc) {
        tg_pg_rollback(pg);
    }
    return rc;
}

static void report(const virtual_outcome_t *o, int64_t dv, tg_step_result_t *res) {
    if (!o->dataset_found) {
        res->status = "skipped";
        snprintf(res->message, sizeof(res->message),
                 "No dataset: version %lld does not exist, generation skipped", (long long)dv);
        return;
    }
    res->details = details_of(o);
    if (*o->through) {
        cJSON_AddStringToObject(res->details, "virtualFlightsThrough", o->through);
    }
    if (o->topped_up) {
        res->added = o->added;
        res->deleted = o->deleted;
        snprintf(res->message, sizeof(res->message),
                 "Virtual flights of dataset %lld moved on to cover through %s: %lld added, "
                 "%lld past ones removed",
                 (long long)dv, o->through, o->added, o->deleted);
    } else if (o->existed) {
        snprintf(res->message, sizeof(res->message),
                 "Virtual entities already exist for dataset %lld: %lld stops, %lld routes, "
                 "%lld flights (nothing new)",
                 (long long)dv, o->stops, o->routes, o->flights);
    } else {
        res->added = o->stops + o->routes + o->flights;
        res->deleted = o->deleted;
        snprintf(res->message, sizeof(res->message),
                 "Generated %lld virtual stops, %lld routes, %lld flights (%s mode, %zu cities "
                 "without stops)",
                 o->stops, o->routes, o->flights, o->mode, o->cities_without_stops);
    }
}

/* "only" travels along the whole run, so the graph builder sees it too. */
static void pass_only(const tg_envelope_t *in, tg_step_result_t *res) {
    const char *only = tg_json_str(in->payload, "only");
    if (!only || !*only) {
        return;
    }
    if (!res->details) {
        res->details = cJSON_CreateObject();
    }
    cJSON_AddStringToObject(res->details, "only", only);
}

static void step(tg_worker_ctx_t *ctx, const tg_envelope_t *in, tg_step_result_t *res) {
    state_t *st = ctx->state;
    char why[256], err[512];
    int64_t dv = in->dataset_version;
    if (dv <= 0) { /* the odata-sync payload repeats it */
        dv = (int64_t)tg_json_num(in->payload, "datasetVersion", 0);
    }
    const char *skip = skip_status(in, dv, why, sizeof(why));
    if (skip) {
        res->status = skip;
        snprintf(res->message, sizeof(res->message), "%s", why);
    } else {
        virtual_outcome_t o;
        int rc = generate(ctx->pg, st, dv, tg_json_bool(in->payload, "force", 0),
                          tg_local_day(tg_now_ms()), &o, err, sizeof(err));
        res->dataset_version = dv;
        if (rc) {
            tg_step_fail(res, rc, "Virtual entities for dataset %lld: %s", (long long)dv, err);
        } else {
            report(&o, dv, res);
        }
    }
    pass_only(in, res);
}

int main(void) {
    static const tg_worker_def_t def = {
        .worker_id = TG_WORKER_VIRTUAL,
        .worker_name = "Virtual Entities Generator Worker",
        .version = "1.0.0",
        .input_topic = TG_TOPIC_ODATA_DONE,
        .input_schema = TG_SCHEMA_ODATA_DONE,
        .output_topic = TG_TOPIC_VIRTUAL_DONE,
        .output_schema = TG_SCHEMA_VIRTUAL_DONE,
        .default_port = 8082,
        .needs = TG_NEED_PG,
        .init = init,
        .step = step,
        .fini = fini,
    };
    return tg_worker_main(&def);
}
