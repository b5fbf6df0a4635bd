/* The generation plan (cities without stops, hub and direct routes), the
 * distance and duration formula, and the flight schedule. */
#include "tg/geo.h"
#include "tg/time.h"
#include "tg_test.h"
#include "virtual.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define HEADER "name,district,latitude,longitude,population\n"

static virtual_cities_t cities(const char *csv) {
    virtual_cities_t c;
    char err[256] = "";
    if (virtual_cities_parse("test.csv", csv, strlen(csv), &c, err, sizeof(err))) {
        fprintf(stderr, "fixture: %s\n", err);
    }
    return c;
}

static const virtual_config_t hub_cfg = {VIRTUAL_MODE_HUB,   "Якутск", 60, 1000, "BUS",
                                         VIRTUAL_FLIGHT_DAYS};

static const virtual_route_t *route(const virtual_plan_t *p, const char *id) {
    for (size_t i = 0; i < p->nroutes; i++) {
        if (!strcmp(p->routes[i].id, id)) {
            return &p->routes[i];
        }
    }
    return NULL;
}

static void test_geometry(void) {
    CHECK(fabs(tg_geo_distance_km(0, 0, 0, 1) - 111.195) < 0.001);
    CHECK(tg_geo_distance_km(62, 129, 62, 129) == 0);
    double a = tg_geo_distance_km(62.0272, 129.7319, 56.66, 124.72);
    CHECK(fabs(a - tg_geo_distance_km(56.66, 124.72, 62.0272, 129.7319)) < 1e-9);
    CHECK(a > 655 && a < 665); /* Якутск – Нерюнгри, 660.5 km great-circle */
    CHECK(virtual_duration_min(60, 60) == 60);
    CHECK(virtual_duration_min(60.01, 60) == 61);
    CHECK(virtual_duration_min(111.195, 60) == 112);
    CHECK(virtual_duration_min(0, 60) == 1);
    CHECK(virtual_duration_min(0.2, 60) == 1);
    CHECK(virtual_duration_min(100, 50) == 120);
}

/* Days since the epoch of a date (the unit of the horizon). */
static int64_t day_of(int y, int m, int d) {
    int64_t secs = -1;
    CHECK(tg_time_from_utc(y, m, d, 0, 0, 0, &secs) == TG_OK);
    return secs / 86400;
}

static void test_calendar(void) {
    char s[32];
    int64_t day = day_of(2026, 11, 29);
    virtual_format_local(day * 1440 + 8 * 60, s);
    CHECK_STR(s, "2026-11-29 08:00:00+09:00");
    virtual_format_local(day * 1440 + 16 * 60 + 605, s); /* past midnight */
    CHECK_STR(s, "2026-11-30 02:05:00+09:00");
    virtual_format_local(day_of(2026, 12, 31) * 1440 + 16 * 60 + 480, s);
    CHECK_STR(s, "2027-01-01 00:00:00+09:00");
    virtual_format_local(day_of(2028, 2, 28) * 1440 + 16 * 60 + 480, s); /* a leap year */
    CHECK_STR(s, "2028-02-29 00:00:00+09:00");
}

static int count_lines(const tg_buf_t *b) {
    int n = 0;
    for (size_t i = 0; i < b->len; i++) {
        n += b->data[i] == '\n';
    }
    return n;
}

static void test_flights(void) {
    virtual_route_t r;
    memset(&r, 0, sizeof(r));
    strcpy(r.id, "virtual-route-virtual-stop-amga-stop-1");
    r.from.stop_id = "virtual-stop-amga";
    r.to.stop_id = "stop-1";
    r.duration_min = 125;
    tg_buf_t b;
    tg_buf_init(&b);
    CHECK(virtual_flights_append(&b, "7", &r, day_of(2026, 11, 29), VIRTUAL_FLIGHT_DAYS) == 0);
    CHECK(count_lines(&b) == 730);
    const char *first = "7\tvirtual-flight-virtual-route-virtual-stop-amga-stop-1-20261129-0800\t"
                        "virtual-route-virtual-stop-amga-stop-1\tvirtual-stop-amga\tstop-1\t"
                        "2026-11-29 08:00:00+09:00\t2026-11-29 10:05:00+09:00\t50\tt\n";
    CHECK(b.len > strlen(first) && !strncmp(b.data, first, strlen(first)));
    const char *second = strchr(b.data, '\n') + 1;
    const char *id2 = "7\tvirtual-flight-virtual-route-virtual-stop-amga-stop-1-20261129-1600\t";
    CHECK(!strncmp(second, id2, strlen(id2)));
    /* day 365 is 2027-11-28 (2027 is not a leap year) */
    CHECK(strstr(b.data, "-20271128-1600\t") != NULL);
    CHECK(strstr(b.data, "-20271129-0800") == NULL);
    tg_buf_free(&b);
}

#define SMALL                                                                                      \
    HEADER "Якутск,,62.0272,129.7319,\n"                                                     \
           "Усть-Мая,,60.4167,134.5333,\n"                                                  \
           "Олёкминск,,60.3744,120.4264,\n"                                               \
           "Амга,,60.8950,131.9700,\n"

static void test_hub(void) {
    virtual_cities_t c = cities(SMALL);
    /* Якутск has two stops (the lowest id wins); "г. Усть Мая" and
     * "ОЛЕКМИНСК" match directory names after normalisation. */
    virtual_real_stop_t s[] = {
        {"yak-2", "г. Якутск", 62.03, 129.73},
        {"yak-1", "ЯКУТСК", 62.09, 129.77},
        {"olk-1", "ОЛЕКМИНСК", 60.37, 120.43},
        {"no-city", NULL, NAN, NAN},
    };
    virtual_plan_t p;
    char err[256];
    CHECK(virtual_plan_build(&c, s, 4, &hub_cfg, &p, err, sizeof(err)) == 0);
    CHECK(p.mode == VIRTUAL_MODE_HUB);
    CHECK(p.cities_without_stops == 2);
    CHECK(p.nstops == 2 && p.nroutes == 4);
    CHECK_STR(p.hub_stop_id, "yak-1");
    CHECK_STR(p.stops[0].id, "virtual-stop-ust-maya");
    CHECK_STR(p.stops[1].id, "virtual-stop-amga");
    const virtual_route_t *r = route(&p, "virtual-route-virtual-stop-amga-yak-1");
    CHECK(r != NULL);
    CHECK(route(&p, "virtual-route-yak-1-virtual-stop-amga") != NULL);
    CHECK(route(&p, "virtual-route-yak-1-virtual-stop-ust-maya") != NULL);
    if (r) {
        double km = tg_geo_distance_km(60.8950, 131.9700, 62.09, 129.77);
        CHECK(fabs(r->distance_km - km) < 1e-9);
        CHECK(r->duration_min == (int)ceil(km));
        CHECK_STR(r->to.city_name, "Якутск");
        CHECK_STR(r->from.city_name, "Амга");
    }
    virtual_plan_free(&p);

    /* A later dataset in which Амга has a stop: no virtual stop for it. */
    virtual_real_stop_t later[] = {{"yak-1", "Якутск", 62.09, 129.77},
                                   {"amg-1", "Амга", 60.9, 131.97}};
    CHECK(virtual_plan_build(&c, later, 2, &hub_cfg, &p, err, sizeof(err)) == 0);
    CHECK(p.nstops == 2 && p.nroutes == 4);
    for (size_t i = 0; i < p.nstops; i++) {
        CHECK(strcmp(p.stops[i].id, "virtual-stop-amga") != 0);
    }
    virtual_plan_free(&p);
    virtual_cities_free(&c);
}

static void test_virtual_hub(void) {
    virtual_cities_t c = cities(SMALL);
    /* The hub has no real stop: its virtual stop is the hub and links to
     * the nearest real stop so the graph stays connected. */
    virtual_real_stop_t s[] = {{"olk-1", "Олекминск", 60.37, 120.43}};
    virtual_plan_t p;
    char err[256];
    CHECK(virtual_plan_build(&c, s, 1, &hub_cfg, &p, err, sizeof(err)) == 0);
    CHECK(p.mode == VIRTUAL_MODE_HUB);
    CHECK(p.nstops == 3);
    CHECK_STR(p.hub_stop_id, "virtual-stop-yakutsk");
    CHECK(p.nroutes == 2 * 2 + 2);
    CHECK(route(&p, "virtual-route-virtual-stop-amga-virtual-stop-yakutsk") != NULL);
    CHECK(route(&p, "virtual-route-virtual-stop-yakutsk-olk-1") != NULL);
    CHECK(route(&p, "virtual-route-olk-1-virtual-stop-yakutsk") != NULL);
    virtual_plan_free(&p);
    virtual_cities_free(&c);
}

static void test_direct(void) {
    virtual_cities_t c = cities(SMALL);
    virtual_real_stop_t s[] = {{"olk-1", "Олекминск", 60.37, 120.43},
                               {"east", "Хандыга", 62.65, 135.55}};
    virtual_config_t cfg = hub_cfg;
    cfg.hub_city = "Москва"; /* not in the directory: falls back to direct */
    virtual_plan_t p;
    char err[256];
    CHECK(virtual_plan_build(&c, s, 2, &cfg, &p, err, sizeof(err)) == 0);
    CHECK(p.mode == VIRTUAL_MODE_DIRECT);
    CHECK(p.nstops == 3);              /* Якутск, Усть-Мая, Амга */
    CHECK(p.nroutes == 3 * 2 + 3 * 2); /* every pair both ways + nearest real */
    CHECK(route(&p, "virtual-route-virtual-stop-ust-maya-virtual-stop-amga") != NULL);
    CHECK(route(&p, "virtual-route-virtual-stop-amga-virtual-stop-ust-maya") != NULL);
    CHECK(route(&p, "virtual-route-virtual-stop-ust-maya-east") != NULL);
    CHECK(route(&p, "virtual-route-east-virtual-stop-amga") != NULL);
    virtual_plan_free(&p);

    cfg.hub_city = "Якутск";
    cfg.mode = VIRTUAL_MODE_DIRECT;
    CHECK(virtual_plan_build(&c, s, 2, &cfg, &p, err, sizeof(err)) == 0);
    CHECK(p.mode == VIRTUAL_MODE_DIRECT && p.nroutes == 12);
    virtual_plan_free(&p);

    /* No real stop at all: the virtual cities are still connected together. */
    CHECK(virtual_plan_build(&c, NULL, 0, &cfg, &p, err, sizeof(err)) == 0);
    CHECK(p.nstops == 4 && p.nroutes == 12);
    virtual_plan_free(&p);
    virtual_cities_free(&c);
}

static void test_duplicates(void) {
    /* Эльдикан and Ельдикан differ but share the slug "eldikan"; a real
     * stop already named virtual-stop-amga takes that id. */
    virtual_cities_t c = cities(HEADER "Якутск,,62.0,129.7,\nЭльдикан,,60.8,135.2,\n"
                                       "Ельдикан,,60.9,135.1,\nАмга,,60.9,131.9,\n");
    virtual_real_stop_t s[] = {{"virtual-stop-amga", "Якутск", 62.0, 129.7}};
    virtual_plan_t p;
    char err[256];
    CHECK(virtual_plan_build(&c, s, 1, &hub_cfg, &p, err, sizeof(err)) == 0);
    CHECK(p.cities_without_stops == 3);
    CHECK(p.nstops == 1);
    CHECK_STR(p.stops[0].id, "virtual-stop-eldikan");
    CHECK(p.nstops == 1 && p.stops[0].city == &c.items[1]);
    virtual_plan_free(&p);
    virtual_cities_free(&c);
}

int main(void) {
    test_geometry();
    test_calendar();
    test_flights();
    test_hub();
    test_virtual_hub();
    test_direct();
    test_duplicates();
    TG_TEST_END();
}
