/* odata-sync-worker validation and mapping files: each problem is counted
 * and named the way the source names things; a bad mapping names its key. */
#include "mapping.h"
#include "tg/error.h"
#include "tg_test.h"
#include "validate.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    odata_mapping_t m;
    odata_dataset_t ds;
    odata_report_t rep;
} fixture_t;

static void load(fixture_t *f, const char *stops, const char *routes, const char *flights) {
    char err[200];
    memset(f, 0, sizeof(*f));
    CHECK(odata_mapping_load(NULL, &f->m, err, sizeof(err)) == 0);
    const char *sets[] = {stops, routes, flights};
    for (int k = 0; k < ODATA_KINDS; k++) {
        cJSON *rows = cJSON_Parse(sets[k]), *row;
        long i = 0;
        cJSON_ArrayForEach(row, rows) {
            CHECK(odata_map_row(&f->m, (odata_kind_t)k, row, i++, &f->ds, &f->rep) == 0);
        }
        cJSON_Delete(rows);
    }
    odata_validate(&f->ds, &f->m, &f->rep);
}

static void unload(fixture_t *f) {
    odata_dataset_free(&f->ds);
    odata_mapping_free(&f->m);
}

static const char *STOPS = "[{\"Id\":\"a\",\"Name\":\"A\",\"Latitude\":62,\"Longitude\":129},"
                           "{\"Id\":\"b\",\"Name\":\"B\"}]";
static const char *ROUTES = "[{\"Id\":\"r1\",\"FromStopId\":\"a\",\"ToStopId\":\"b\","
                            "\"DurationMinutes\":60}]";
static const char *FLIGHTS =
    "[{\"Id\":\"f1\",\"RouteId\":\"r1\",\"FromStopId\":\"a\","
    "\"ToStopId\":\"b\",\"DepartureTime\":\"2026-12-01T08:00:00+09:00\","
    "\"ArrivalTime\":\"2026-12-01T09:00:00+09:00\",\"AvailableSeats\":\"20\"}]";

static void test_valid(void) {
    fixture_t f;
    load(&f, STOPS, ROUTES, FLIGHTS);
    CHECK(f.rep.total == 0);
    unload(&f);
}

static void test_problems(void) {
    fixture_t f;
    char summary[1024];
    load(
        &f,
        "[{\"Id\":\"a\",\"Name\":\"A\",\"Latitude\":95},{\"Id\":\"a\",\"Name\":\"A2\"},"
        "{\"Id\":\"c\"},{\"Id\":\"d\",\"Name\":\"D\",\"Longitude\":\"far\"}]",
        "[{\"Id\":\"r1\",\"FromStopId\":\"a\",\"ToStopId\":\"x\",\"DurationMinutes\":0},"
        "{\"Id\":\"r2\",\"FromStopId\":\"a\",\"ToStopId\":\"c\",\"DurationMinutes\":5,\"Fare\":-1}"
        "]",
        "[{\"Id\":\"f1\",\"RouteId\":\"nope\",\"FromStopId\":\"a\",\"ToStopId\":\"c\","
        "\"DepartureTime\":\"2026-12-01T10:00:00Z\",\"ArrivalTime\":\"2026-12-01T09:00:00Z\"}, 7]");
    CHECK(f.rep.count[PROBLEM_COORDINATES] == 1);
    CHECK(f.rep.count[PROBLEM_DUPLICATE_ID] == 1);
    CHECK(f.rep.count[PROBLEM_REQUIRED] == 1); /* Stops[2] Name */
    CHECK(f.rep.count[PROBLEM_TYPE] == 2);     /* "far", and Flights[1] not an object */
    CHECK(f.rep.count[PROBLEM_UNKNOWN_STOP] == 1);
    CHECK(f.rep.count[PROBLEM_UNKNOWN_ROUTE] == 1);
    CHECK(f.rep.count[PROBLEM_DURATION] == 1);
    CHECK(f.rep.count[PROBLEM_RANGE] == 1);
    CHECK(f.rep.count[PROBLEM_TIMES] == 1);
    CHECK_STR(f.rep.example[PROBLEM_UNKNOWN_STOP][0], "Routes[0] ToStopId \"x\": unknown stop");
    CHECK_STR(f.rep.example[PROBLEM_REQUIRED][0], "Stops[2] Name: missing");
    CHECK_STR(f.rep.example[PROBLEM_TYPE][0], "Stops[3] Longitude \"far\": expected a number");
    odata_report_summary(&f.rep, summary, sizeof(summary));
    const char *head = "10 problems: required 1 (Stops[2] Name: missing); type 2 (";
    CHECK(strncmp(summary, head, strlen(head)) == 0);
    CHECK(strstr(summary, "unknown_stop 1 (Routes[0] ToStopId \"x\": unknown stop)") != NULL);
    cJSON *j = odata_report_json(&f.rep);
    CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "problems"), "unknown_route") != NULL);
    cJSON_Delete(j);
    unload(&f);

    load(&f, "[]", "[]", "[]");
    CHECK(f.rep.count[PROBLEM_EMPTY] == 2);
    unload(&f);
}

/* An id of more than TG_ENTITY_ID_MAX bytes is refused, naming the value;
 * one of exactly that many passes. */
static void test_id_length(void) {
    fixture_t f;
    char stops[1200], routes[1200];
    char longest[256], over[257];
    memset(longest, 's', 255);
    longest[255] = '\0';
    memset(over, 'o', 256);
    over[256] = '\0';
    snprintf(stops, sizeof stops, "[{\"Id\":\"%s\",\"Name\":\"A\"},{\"Id\":\"%s\",\"Name\":\"B\"}]",
             longest, over);
    snprintf(routes, sizeof routes,
             "[{\"Id\":\"r1\",\"FromStopId\":\"%s\",\"ToStopId\":\"%s\","
             "\"DurationMinutes\":60}]",
             longest, over);
    load(&f, stops, routes, "[]");
    CHECK(f.rep.count[PROBLEM_ID_LENGTH] == 2); /* Stops[1] Id and Routes[0] ToStopId */
    CHECK(f.rep.total == 2);
    CHECK(strstr(f.rep.example[PROBLEM_ID_LENGTH][0], ": 256 bytes, more than 255") != NULL);
    unload(&f);
}

static void test_mapping_errors(void) {
    odata_mapping_t m;
    char err[300];
    CHECK(odata_mapping_parse("[]", &m, err, sizeof(err)) == TG_ERR_CONFIG);
    CHECK(odata_mapping_parse("{\"entities\":{\"stops\":{\"entitySet\":\"S\",\"fields\":"
                              "{\"id\":\"Id\"}}}}",
                              &m, err, sizeof(err)) == TG_ERR_CONFIG);
    CHECK_STR(err, "entities.stops.fields.name: missing");
    CHECK(odata_mapping_parse("{\"entities\":{\"stops\":{\"entitySet\":\"S\",\"fields\":"
                              "{\"id\":\"Id\",\"name\":\"N\",\"colour\":\"C\"}}}}",
                              &m, err, sizeof(err)) == TG_ERR_CONFIG);
    CHECK_STR(err, "entities.stops.fields.colour: not a field of the data contract");
    CHECK(odata_mapping_load("/nonexistent.json", &m, err, sizeof(err)) == TG_ERR_CONFIG);
    CHECK(strstr(err, "ODATA_MAPPING") != NULL);
    char path[512];
    snprintf(path, sizeof(path), "%s/1c-standard-odata.json", ODATA_MAPPINGS_DIR);
    CHECK(odata_mapping_load(path, &m, err, sizeof(err)) == 0);
    CHECK(m.client_paging == 1 && m.local_offset_min == 540);
    CHECK_STR(m.ent[ODATA_FLIGHTS].fields[FLIGHT_ROUTE], "Маршрут_Key");
    /* 1C objects marked for deletion are skipped. */
    odata_dataset_t ds;
    odata_report_t rep;
    memset(&ds, 0, sizeof(ds));
    memset(&rep, 0, sizeof(rep));
    cJSON *row = cJSON_Parse("{\"Ref_Key\":\"k\",\"Description\":\"x\",\"DeletionMark\":true}");
    CHECK(odata_map_row(&m, ODATA_STOPS, row, 0, &ds, &rep) == 0 && ds.t[ODATA_STOPS].n == 0);
    cJSON_ReplaceItemInObject(row, "DeletionMark", cJSON_CreateFalse());
    CHECK(odata_map_row(&m, ODATA_STOPS, row, 1, &ds, &rep) == 0 && ds.t[ODATA_STOPS].n == 1);
    cJSON_Delete(row);
    odata_dataset_free(&ds);
    odata_mapping_free(&m);
}

int main(void) {
    test_valid();
    test_problems();
    test_id_length();
    test_mapping_errors();
    TG_TEST_END();
}
