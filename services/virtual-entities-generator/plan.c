/* The plan for one dataset: which directory cities no real stop serves, their
 * virtual stops, and the virtual routes that connect them to the graph (hub
 * mode, or direct mode with a link to the nearest real stop). Pure: no I/O
 * besides warnings, so the unit tests can check every rule. */
#include "tg/dataset.h"
#include "tg/geo.h"
#include "tg/log.h"
#include "tg/text.h"
#include "virtual.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int virtual_duration_min(double distance_km, double speed_kmh) {
    /* The small epsilon keeps an exact hour (60.0000000001 min from
     * floating point) from rounding up to 61. */
    double min = ceil(distance_km / speed_kmh * 60.0 - 1e-9);
    return min < 1 ? 1 : (int)min;
}

/* Real stops' normalised city names, sorted, for bsearch. */
typedef struct {
    char (*names)[VIRTUAL_NAME_MAX];
    size_t count;
} served_t;

static int cmp_name(const void *a, const void *b) {
    return strcmp(a, b);
}

static int served_build(const virtual_real_stop_t *stops, size_t n, served_t *s) {
    s->count = 0;
    s->names = malloc((n ? n : 1) * sizeof(*s->names));
    if (!s->names) {
        return TG_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        if (stops[i].city_name &&
            !tg_city_key(stops[i].city_name, s->names[s->count], VIRTUAL_NAME_MAX)) {
            s->count++;
        }
    }
    qsort(s->names, s->count, sizeof(*s->names), cmp_name);
    return TG_OK;
}

static int served_has(const served_t *s, const char *normalized) {
    return bsearch(normalized, s->names, s->count, sizeof(*s->names), cmp_name) != NULL;
}

static int real_stop_named(const virtual_real_stop_t *stops, size_t n, const char *id) {
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(stops[i].id, id)) {
            return 1;
        }
    }
    return 0;
}

/* Adds a virtual stop per city without real stops; a second city with the
 * same id (or an id a real stop already has) is skipped with a warning. */
static int plan_stops(const virtual_cities_t *cities, const virtual_real_stop_t *stops,
                      size_t nstops, const served_t *served, virtual_plan_t *plan) {
    plan->stops = calloc(cities->count ? cities->count : 1, sizeof(*plan->stops));
    if (!plan->stops) {
        return TG_ERR_NOMEM;
    }
    for (size_t i = 0; i < cities->count; i++) {
        const virtual_city_t *city = &cities->items[i];
        if (served_has(served, city->normalized)) {
            continue;
        }
        plan->cities_without_stops++;
        virtual_stop_t *vs = &plan->stops[plan->nstops];
        snprintf(vs->id, sizeof(vs->id), "virtual-stop-%s", city->slug);
        vs->city = city;
        int dup = real_stop_named(stops, nstops, vs->id);
        for (size_t j = 0; j < plan->nstops && !dup; j++) {
            dup = !strcmp(plan->stops[j].id, vs->id);
        }
        if (dup) {
            tg_warn("Duplicate virtual stop %s for city %s: skipped", vs->id, city->name);
            continue;
        }
        plan->nstops++;
    }
    return TG_OK;
}

static virtual_end_t end_of_virtual(const virtual_stop_t *vs) {
    virtual_end_t e = {vs->id, vs->city->name, vs->city->latitude, vs->city->longitude};
    return e;
}

static virtual_end_t end_of_real(const virtual_real_stop_t *s) {
    virtual_end_t e = {s->id, s->city_name ? s->city_name : s->id, s->latitude, s->longitude};
    return e;
}

/* A route id joins two stop ids: real ones of at most TG_ENTITY_ID_MAX
 * bytes (real_stops refuses longer) and virtual ones of "virtual-stop-" and
 * a slug shorter than VIRTUAL_NAME_MAX. It always fits, never cut short. */
_Static_assert(sizeof(((virtual_route_t *)0)->id) >=
                   sizeof "virtual-route--" + 2 * (sizeof "virtual-stop-" + VIRTUAL_NAME_MAX),
               "virtual route ids fit their buffer");
_Static_assert(TG_ENTITY_ID_MAX < VIRTUAL_NAME_MAX, "real stop ids fit a stop id buffer");

static int add_route(virtual_plan_t *plan, virtual_end_t from, virtual_end_t to,
                     const virtual_config_t *cfg) {
    if (plan->nroutes == plan->routes_cap) {
        size_t cap = plan->routes_cap ? plan->routes_cap * 2 : 64;
        virtual_route_t *p = realloc(plan->routes, cap * sizeof(*p));
        if (!p) {
            return TG_ERR_NOMEM;
        }
        plan->routes = p;
        plan->routes_cap = cap;
    }
    virtual_route_t *r = &plan->routes[plan->nroutes++];
    snprintf(r->id, sizeof(r->id), "virtual-route-%s-%s", from.stop_id, to.stop_id);
    r->from = from;
    r->to = to;
    r->distance_km = tg_geo_distance_km(from.latitude, from.longitude, to.latitude, to.longitude);
    r->duration_min = virtual_duration_min(r->distance_km, cfg->speed_kmh);
    return TG_OK;
}

static int add_both_ways(virtual_plan_t *plan, virtual_end_t a, virtual_end_t b,
                         const virtual_config_t *cfg) {
    return add_route(plan, a, b, cfg) || add_route(plan, b, a, cfg) ? TG_ERR_NOMEM : TG_OK;
}

/* The real stop nearest to (lat, lon) among those with coordinates; ties
 * go to the lowest id. NULL when no real stop has coordinates. */
static const virtual_real_stop_t *nearest_real(const virtual_real_stop_t *stops, size_t n,
                                               double lat, double lon) {
    const virtual_real_stop_t *best = NULL;
    double best_km = INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (isnan(stops[i].latitude) || isnan(stops[i].longitude)) {
            continue;
        }
        double km = tg_geo_distance_km(lat, lon, stops[i].latitude, stops[i].longitude);
        if (km < best_km || (km == best_km && strcmp(stops[i].id, best->id) < 0)) {
            best = &stops[i];
            best_km = km;
        }
    }
    return best;
}

static int link_to_nearest_real(virtual_plan_t *plan, const virtual_stop_t *vs,
                                const virtual_real_stop_t *stops, size_t nstops,
                                const virtual_config_t *cfg) {
    const virtual_real_stop_t *real =
        nearest_real(stops, nstops, vs->city->latitude, vs->city->longitude);
    return real ? add_both_ways(plan, end_of_virtual(vs), end_of_real(real), cfg) : TG_OK;
}

static int plan_direct(virtual_plan_t *plan, const virtual_real_stop_t *stops, size_t nstops,
                       const virtual_config_t *cfg) {
    for (size_t i = 0; i < plan->nstops; i++) {
        for (size_t j = 0; j < plan->nstops; j++) {
            if (i != j && add_route(plan, end_of_virtual(&plan->stops[i]),
                                    end_of_virtual(&plan->stops[j]), cfg)) {
                return TG_ERR_NOMEM;
            }
        }
    }
    for (size_t i = 0; i < plan->nstops; i++) {
        if (link_to_nearest_real(plan, &plan->stops[i], stops, nstops, cfg)) {
            return TG_ERR_NOMEM;
        }
    }
    return TG_OK;
}

/* The hub's real stop with the lowest id, or NULL when the hub has none. */
static const virtual_real_stop_t *hub_real_stop(const virtual_real_stop_t *stops, size_t n,
                                                const virtual_city_t *hub) {
    const virtual_real_stop_t *best = NULL;
    char norm[VIRTUAL_NAME_MAX];
    for (size_t i = 0; i < n; i++) {
        if (stops[i].city_name && !tg_city_key(stops[i].city_name, norm, sizeof(norm)) &&
            !strcmp(norm, hub->normalized) && (!best || strcmp(stops[i].id, best->id) < 0)) {
            best = &stops[i];
        }
    }
    return best;
}

static int plan_hub(virtual_plan_t *plan, const virtual_city_t *hub,
                    const virtual_real_stop_t *stops, size_t nstops, const virtual_config_t *cfg) {
    const virtual_real_stop_t *real = hub_real_stop(stops, nstops, hub);
    const virtual_stop_t *hub_virtual = NULL;
    virtual_end_t hub_end;
    if (real) {
        hub_end = end_of_real(real);
        hub_end.city_name = hub->name;
        if (isnan(hub_end.latitude) || isnan(hub_end.longitude)) {
            hub_end.latitude = hub->latitude;
            hub_end.longitude = hub->longitude;
        }
    } else {
        for (size_t i = 0; i < plan->nstops && !hub_virtual; i++) {
            if (plan->stops[i].city == hub) {
                hub_virtual = &plan->stops[i];
            }
        }
        if (!hub_virtual) { /* its id clashed with a real stop: already warned */
            plan->mode = VIRTUAL_MODE_DIRECT;
            return plan_direct(plan, stops, nstops, cfg);
        }
        hub_end = end_of_virtual(hub_virtual);
    }
    snprintf(plan->hub_stop_id, sizeof(plan->hub_stop_id), "%s", hub_end.stop_id);
    for (size_t i = 0; i < plan->nstops; i++) {
        if (&plan->stops[i] != hub_virtual &&
            add_both_ways(plan, end_of_virtual(&plan->stops[i]), hub_end, cfg)) {
            return TG_ERR_NOMEM;
        }
    }
    /* A virtual hub must itself reach the real network, or the graph splits. */
    return hub_virtual ? link_to_nearest_real(plan, hub_virtual, stops, nstops, cfg) : TG_OK;
}

static const virtual_city_t *find_city(const virtual_cities_t *cities, const char *name) {
    char norm[VIRTUAL_NAME_MAX];
    if (!name || tg_city_key(name, norm, sizeof(norm))) {
        return NULL;
    }
    for (size_t i = 0; i < cities->count; i++) {
        if (!strcmp(cities->items[i].normalized, norm)) {
            return &cities->items[i];
        }
    }
    return NULL;
}

static int cmp_route(const void *a, const void *b) {
    return strcmp(((const virtual_route_t *)a)->id, ((const virtual_route_t *)b)->id);
}

int virtual_plan_build(const virtual_cities_t *cities, const virtual_real_stop_t *stops,
                       size_t nstops, const virtual_config_t *cfg, virtual_plan_t *plan,
                       char *errstr, size_t errlen) {
    served_t served;
    memset(plan, 0, sizeof(*plan));
    plan->mode = cfg->mode;
    if (served_build(stops, nstops, &served)) {
        return tg_fail(TG_ERR_NOMEM, errstr, errlen, "plan: out of memory");
    }
    int rc = plan_stops(cities, stops, nstops, &served, plan);
    free(served.names);
    const virtual_city_t *hub = find_city(cities, cfg->hub_city);
    if (!rc && plan->mode == VIRTUAL_MODE_HUB && !hub) {
        tg_warn("Hub city %s is not in the cities directory: using direct connections",
                cfg->hub_city);
        plan->mode = VIRTUAL_MODE_DIRECT;
    }
    if (!rc) {
        rc = plan->mode == VIRTUAL_MODE_HUB ? plan_hub(plan, hub, stops, nstops, cfg)
                                            : plan_direct(plan, stops, nstops, cfg);
    }
    if (rc) {
        virtual_plan_free(plan);
        return tg_fail(rc, errstr, errlen, "plan: out of memory");
    }
    /* In id order, flights arrive in primary-key order, so PostgreSQL appends
     * to the right-most index page instead of descending the tree per row. */
    qsort(plan->routes, plan->nroutes, sizeof(*plan->routes), cmp_route);
    return TG_OK;
}

void virtual_plan_free(virtual_plan_t *plan) {
    free(plan->stops);
    free(plan->routes);
    memset(plan, 0, sizeof(*plan));
}
