/* odata-sync-worker under refused allocations: loading a mapping, converting
 * a value and mapping a row give TG_ERR_NOMEM, never a silently missing
 * setting or a NULL value that would be saved as if the source had sent
 * none.
 *
 * Allocations are refused through tests/unit/tg_alloc_fail.h. */
#include "mapping.h"
#include "records.h"
#include "tg_alloc_fail.h"
#include "tg_test.h"
#include "validate.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Every allocation of loading the 1C mapping (entity sets, fields, exclude
 * rule, query, name, the file's text) refused in turn. */
static void test_mapping(void) {
    char path[512], err[400];
    snprintf(path, sizeof(path), "%s/1c-standard-odata.json", ODATA_MAPPINGS_DIR);
    int refused = 0;
    for (long at = 1; at < 1000; at++) {
        odata_mapping_t m;
        tg_alloc_fail_arm(at);
        int rc = odata_mapping_load(path, &m, err, sizeof(err));
        if (!tg_alloc_fail_disarm()) {
            CHECK(rc == TG_OK);
            CHECK(m.name && m.query && m.ent[ODATA_STOPS].exclude_field);
            odata_mapping_free(&m);
            break;
        }
        refused++;
        if (rc != TG_ERR_NOMEM) {
            fprintf(stderr, "mapping, allocation %ld refused: %d %s\n", at, rc,
                    rc ? err : "(loaded)");
        }
        CHECK(rc == TG_ERR_NOMEM);
        if (rc == TG_OK) {
            odata_mapping_free(&m);
        }
    }
    CHECK(refused > 5);
}

static void test_values(void) {
    static const struct {
        const char *json;
        odata_type_t type;
    } cases[] = {
        {"\"Якутск\"", ODATA_STRING},
        {"12345", ODATA_STRING}, /* a numeric key kept as text */
        {"62.0933", ODATA_NUMBER},
        {"\"20\"", ODATA_INTEGER},
        {"\"2026-12-01T08:00:00+09:00\"", ODATA_DATETIME},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *item = cJSON_Parse(cases[i].json);
        odata_value_t v;
        char why[120];
        tg_alloc_fail_arm(1);
        int rc = odata_value_convert(item, cases[i].type, 0, &v, why, sizeof(why));
        (void)tg_alloc_fail_disarm();
        if (rc != TG_ERR_NOMEM) {
            fprintf(stderr, "value %s: %d, text %s\n", cases[i].json, rc, v.text ? v.text : "NULL");
        }
        CHECK(rc == TG_ERR_NOMEM && !v.text && !v.bad);
        free(v.text);
        CHECK(odata_value_convert(item, cases[i].type, 0, &v, why, sizeof(why)) == TG_OK && v.text);
        free(v.text);
        cJSON_Delete(item);
    }
}

/* A good stop mapped with each allocation refused in turn: the row is
 * either refused with TG_ERR_NOMEM or kept with every value it sent. */
static void test_map_row(void) {
    odata_mapping_t m;
    char err[300];
    CHECK(odata_mapping_load(NULL, &m, err, sizeof(err)) == TG_OK);
    cJSON *row = cJSON_Parse("{\"Id\":\"s1\",\"Name\":\"S\",\"CityName\":\"Якутск\","
                             "\"Latitude\":62.0,\"Longitude\":129.7}");
    int refused = 0;
    for (long at = 1; at < 100; at++) {
        odata_dataset_t ds;
        odata_report_t rep;
        memset(&ds, 0, sizeof(ds));
        memset(&rep, 0, sizeof(rep));
        tg_alloc_fail_arm(at);
        int rc = odata_map_row(&m, ODATA_STOPS, row, 0, &ds, &rep);
        int hit = tg_alloc_fail_disarm();
        if (hit) {
            refused++;
            if (rc != TG_ERR_NOMEM) {
                fprintf(stderr, "row, allocation %ld refused: %d\n", at, rc);
            }
            CHECK(rc == TG_ERR_NOMEM);
        } else {
            CHECK(rc == TG_OK && ds.t[ODATA_STOPS].n == 1);
            for (int f = 0; f < 5 && ds.t[ODATA_STOPS].n; f++) {
                CHECK(ds.t[ODATA_STOPS].rows[0].v[f].text != NULL);
            }
        }
        odata_dataset_free(&ds);
        if (!hit) {
            break;
        }
    }
    CHECK(refused >= 6); /* the record, its values array and five texts */
    cJSON_Delete(row);
    odata_mapping_free(&m);
}

int main(void) {
    test_mapping();
    test_values();
    test_map_row();
    TG_TEST_END();
}
