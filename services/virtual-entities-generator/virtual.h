/* virtual-entities-generator's inside: the cities directory, name matching
 * and transliteration, the plan of virtual stops and routes for one dataset,
 * flight times, and the transactional save through COPY. */
#ifndef VIRTUAL_H
#define VIRTUAL_H

#include "tg/buf.h"
#include "tg/error.h"
#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#define VIRTUAL_NAME_MAX 256 /* bytes of a city name, normalised name or id */

/* ---- names.c: ids ----------------------------------------------------- */
/* A directory city matches the real stops whose city name has the same
 * tg_city_key (tg/text.h): "г. Усть-Мая" and "Усть Мая" are one city. */

/* Transliterates a city key to the ASCII slug of the ids (BGN/PCGN
 * simplified, see README): "нижний бестях" → "nizhniy-bestyakh". Returns
 * TG_ERR_INVALID when nothing transliterable is left. */
int virtual_translit(const char *normalized, char *out, size_t outlen) TG_WARN_UNUSED;

/* ---- cities.c: the directory ------------------------------------------ */

typedef struct {
    char name[VIRTUAL_NAME_MAX];       /* as in the file: "Нижний Бестях" */
    char normalized[VIRTUAL_NAME_MAX]; /* its tg_city_key: "нижний бестях" */
    char slug[VIRTUAL_NAME_MAX];       /* "nizhniy-bestyakh" */
    char district[VIRTUAL_NAME_MAX];
    double latitude, longitude;
    long population; /* -1 when unknown */
} virtual_city_t;

typedef struct {
    virtual_city_t *items;
    size_t count;
} virtual_cities_t;

/* Parses a directory in CSV (RFC 4180, UTF-8, header
 * name,district,latitude,longitude,population). On failure errstr names the
 * file and the row. On success the caller frees *out with virtual_cities_free. */
int virtual_cities_parse(const char *path, const char *text, size_t len, virtual_cities_t *out,
                         char *errstr, size_t errlen) TG_WARN_UNUSED;
int virtual_cities_read(const char *path, virtual_cities_t *out, char *errstr,
                        size_t errlen) TG_WARN_UNUSED;
void virtual_cities_free(virtual_cities_t *c);

/* Replaces the cities table with the directory in one transaction. */
int virtual_cities_store(PGconn *pg, const virtual_cities_t *c, char *errstr,
                         size_t errlen) TG_WARN_UNUSED;

/* ---- plan.c: what to generate ------------------------------------------ */

typedef enum { VIRTUAL_MODE_HUB, VIRTUAL_MODE_DIRECT } virtual_mode_t;

typedef struct {
    virtual_mode_t mode;
    const char *hub_city; /* directory name, e.g. "Якутск" */
    double speed_kmh;
    double fare_rub;
    const char *transport_type;
    int horizon_days; /* virtual flights cover today and the days after: 365 */
} virtual_config_t;

/* A real stop of the dataset (input to the plan). */
typedef struct {
    const char *id;
    const char *city_name;      /* may be NULL */
    double latitude, longitude; /* NAN when unknown */
} virtual_real_stop_t;

typedef struct {
    char id[VIRTUAL_NAME_MAX + 16]; /* virtual-stop-{slug} */
    const virtual_city_t *city;
} virtual_stop_t;

/* One end of a virtual route: a virtual stop or a real one. */
typedef struct {
    const char *stop_id;
    const char *city_name;
    double latitude, longitude;
} virtual_end_t;

typedef struct {
    char id[2 * VIRTUAL_NAME_MAX + 48];
    virtual_end_t from, to;
    double distance_km;
    int duration_min;
} virtual_route_t;

typedef struct {
    virtual_mode_t mode; /* the mode used (hub falls back to direct) */
    size_t cities_without_stops;
    virtual_stop_t *stops;
    size_t nstops;
    virtual_route_t *routes;
    size_t nroutes, routes_cap;
    char hub_stop_id[VIRTUAL_NAME_MAX + 16]; /* hub mode only */
} virtual_plan_t;

/* Minutes at speed_kmh, rounded up, at least 1. */
int virtual_duration_min(double distance_km, double speed_kmh);

/* Plans virtual stops and routes for the cities that no real stop names.
 * Deterministic for the same inputs. The plan points into cities and stops,
 * which must outlive it. Free with virtual_plan_free. */
int virtual_plan_build(const virtual_cities_t *cities, const virtual_real_stop_t *stops,
                       size_t nstops, const virtual_config_t *cfg, virtual_plan_t *plan,
                       char *errstr, size_t errlen) TG_WARN_UNUSED;
void virtual_plan_free(virtual_plan_t *plan);

/* ---- flights.c: schedule ------------------------------------------------ */

#define VIRTUAL_FLIGHT_DAYS 365 /* the default horizon (VIRTUAL_HORIZON_DAYS) */
#define VIRTUAL_FLIGHT_SEATS 50

/* Formats local minutes since the epoch in Asia/Yakutsk (a fixed UTC+9, no
 * DST since 2014) as
 * "YYYY-MM-DD HH:MM:00+09:00" into out (at least 26 bytes). */
void virtual_format_local(int64_t local_min, char *out);

/* Appends the COPY rows of one route's flights (columns of
 * VIRTUAL_FLIGHT_COPY), two a day for `days` days starting at local
 * midnight first_day (days since the epoch): 730 for a whole year. */
int virtual_flights_append(tg_buf_t *b, const char *dataset_version, const virtual_route_t *r,
                           int64_t first_day, int days) TG_WARN_UNUSED;

#define VIRTUAL_FLIGHT_COPY                                                                        \
    "COPY flights (dataset_version, id, route_id, from_stop_id, to_stop_id, departure_time, "      \
    "arrival_time, available_seats, is_virtual) FROM STDIN"

/* ---- save.c: one transaction -------------------------------------------- */

typedef struct {
    long long stops, routes, flights;
    long long deleted; /* rows of a previous generation replaced (force), or past flights */
    char mode[16];
    int existed;      /* 1 when the dataset already had them, horizon current (replay) */
    int topped_up;    /* 1 when only the horizon was moved on */
    long long added;  /* flights added by a top-up */
    char through[16]; /* last local date the virtual flights cover, YYYY-MM-DD */
    int dataset_found;
    size_t cities_without_stops;
} virtual_outcome_t;

/* The dataset being generated for, its row locked until the transaction
 * ends: generators of one version are serialised. */
typedef struct {
    char version[24];      /* the dataset version as text, for statements */
    int found;             /* the dataset exists */
    int generated;         /* a generation was committed before */
    int64_t from, through; /* local days its virtual flights cover; -1 when none */
} virtual_dataset_t;

/* Begins the transaction, locks the dataset's row and reads what it holds:
 * ds, and in out the counts and mode of a previous generation. The caller
 * ends the transaction (tg_pg_commit or tg_pg_rollback) on every path. */
int virtual_dataset_lock(PGconn *pg, int64_t dataset_version, virtual_dataset_t *ds,
                         virtual_outcome_t *out, char *errstr, size_t errlen) TG_WARN_UNUSED;

/* force: deletes the previous generation (counted in out->deleted). */
int virtual_delete(PGconn *pg, const virtual_dataset_t *ds, virtual_outcome_t *out, char *errstr,
                   size_t errlen) TG_WARN_UNUSED;

/* The dataset's real stops; items point into res. Free with
 * virtual_real_stops_free (also after a failure). */
typedef struct {
    PGresult *res;
    virtual_real_stop_t *items;
    size_t count;
} virtual_real_stops_t;
int virtual_real_stops_read(PGconn *pg, const virtual_dataset_t *ds, virtual_real_stops_t *out,
                            char *errstr, size_t errlen) TG_WARN_UNUSED;
void virtual_real_stops_free(virtual_real_stops_t *s);

/* COPYs the plan (stops, routes, then flights from local day first_day over
 * the horizon) and records its counts in out and in the dataset's stats. */
int virtual_plan_save(PGconn *pg, const virtual_dataset_t *ds, const virtual_plan_t *plan,
                      const virtual_config_t *cfg, int64_t first_day, virtual_outcome_t *out,
                      char *errstr, size_t errlen) TG_WARN_UNUSED;

/* Records the local days [from, through] the virtual flights cover; the new
 * generation stamp tells graph-builder its graph of the dataset is stale. */
int virtual_horizon_record(PGconn *pg, const virtual_dataset_t *ds, int64_t from, int64_t through,
                           char *errstr, size_t errlen) TG_WARN_UNUSED;

/* Moves the horizon of an earlier generation on to [today, today + days - 1]:
 * flights before today go, the days after the old end come. */
int virtual_top_up(PGconn *pg, const virtual_dataset_t *ds, int64_t today, int days,
                   virtual_outcome_t *out, char *errstr, size_t errlen) TG_WARN_UNUSED;

#endif
