/* graph-builder and virtual-entities-generator agree on what one city is,
 * over the whole bundled data: every city of the cities directory and every
 * city name of the sample OData stops, as written and as sources also write
 * them (upper case, "г. " in front, hyphens as spaces and back).
 *
 * For each such name S of a real stop and each directory city C:
 *   virtual-entities-generator: C counts as served by S (no virtual stop is
 *     planned for C when S is the dataset's only real stop), and
 *   graph-builder: a stop in C (a virtual stop carries C's name) and S get a
 *     transfer between them,
 * must both hold or both not. The directory's own names must also find their
 * city: each serves exactly its city. */
#include "graph.h"
#include "tg/envelope.h"
#include "tg/files.h"
#include "tg_test.h"
#include "virtual.h"
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NAMES 1024

static char *names[MAX_NAMES];
static int as_written[MAX_NAMES]; /* in the data as it is, not a variant */
static size_t nnames;

static void add_name(const char *s, int written) {
    for (size_t i = 0; i < nnames; i++) {
        if (!strcmp(names[i], s)) {
            as_written[i] |= written;
            return;
        }
    }
    if (nnames < MAX_NAMES) {
        as_written[nnames] = written;
        names[nnames++] = strdup(s);
    }
}

/* s with ASCII/Cyrillic upper case (only the Russian letters of the data). */
static void upper(const char *s, char *out) {
    const unsigned char *p = (const unsigned char *)s;
    size_t n = 0;
    for (; *p; p++) {
        if (p[0] == 0xD0 && p[1] >= 0xB0 && p[1] <= 0xBF) { /* а-п */
            out[n++] = (char)0xD0, out[n++] = (char)(p[1] - 0x20), p++;
        } else if (p[0] == 0xD1 && p[1] >= 0x80 && p[1] <= 0x8F) { /* р-я */
            out[n++] = (char)0xD0, out[n++] = (char)(p[1] + 0x20), p++;
        } else if (p[0] == 0xD1 && p[1] == 0x91) { /* ё */
            out[n++] = (char)0xD0, out[n++] = (char)0x81, p++;
        } else {
            out[n++] = (char)*p;
        }
    }
    out[n] = '\0';
}

static void add_variants(const char *s) {
    char buf[600];
    add_name(s, 1);
    upper(s, buf);
    add_name(buf, 0);
    snprintf(buf, sizeof(buf), "г. %s", s);
    add_name(buf, 0);
    snprintf(buf, sizeof(buf), "%s", s);
    for (char *c = buf; *c; c++) {
        *c = *c == '-' ? ' ' : *c == ' ' ? '-' : *c;
    }
    add_name(buf, 0);
}

static void add_odata_cities(const char *path) {
    char *text, err[256];
    CHECK(tg_file_read(path, 0, &text, NULL, err, sizeof(err)) == TG_OK);
    cJSON *stops = text ? cJSON_Parse(text) : NULL;
    CHECK(cJSON_IsArray(stops) && cJSON_GetArraySize(stops) > 0);
    const cJSON *stop;
    cJSON_ArrayForEach(stop, stops) {
        const cJSON *city = cJSON_GetObjectItemCaseSensitive(stop, "CityName");
        if (cJSON_IsString(city)) {
            add_variants(city->valuestring);
        }
    }
    cJSON_Delete(stops);
    free(text);
}

/* virtual-entities-generator: the directory city S serves, or NULL. */
static const virtual_city_t *virtual_served(const virtual_cities_t *dir, const char *s) {
    static const virtual_config_t cfg = {VIRTUAL_MODE_DIRECT, NULL, 60, 1000, "BUS", 1};
    virtual_real_stop_t real = {"stop-s", s, 62.0, 129.7};
    virtual_plan_t plan;
    char err[256];
    const virtual_city_t *served = NULL;
    CHECK(virtual_plan_build(dir, &real, 1, &cfg, &plan, err, sizeof(err)) == TG_OK);
    for (size_t c = 0; c < dir->count; c++) {
        int planned = 0;
        for (size_t i = 0; i < plan.nstops; i++) {
            planned |= plan.stops[i].city == &dir->items[c];
        }
        if (!planned) {
            CHECK(served == NULL); /* one name, at most one city */
            served = &dir->items[c];
        }
    }
    virtual_plan_free(&plan);
    return served;
}

/* graph-builder: the directory city whose stop gets a transfer with S. */
static const virtual_city_t *graph_grouped(const virtual_cities_t *dir, const char *s) {
    gb_graph_t *g = gb_graph_new();
    char id[32];
    const virtual_city_t *grouped = NULL;
    CHECK(gb_add_node(g, "stop-s", "S", s, 62.0, 129.7) == TG_OK);
    for (size_t c = 0; c < dir->count; c++) {
        snprintf(id, sizeof(id), "city-%zu", c);
        CHECK(gb_add_node(g, id, dir->items[c].name, dir->items[c].name, dir->items[c].latitude,
                          dir->items[c].longitude) == TG_OK);
    }
    CHECK(gb_add_transfers(g, 10, 1000) == TG_OK);
    CHECK(gb_graph_index(g) == TG_OK);
    /* The transfers of stop S are its neighbors (it has no routes). */
    tg_buf_t json;
    tg_buf_init(&json);
    CHECK(gb_neighbors_json(&json, g, 0) == TG_OK);
    cJSON *edges = cJSON_Parse(json.data);
    const cJSON *e;
    cJSON_ArrayForEach(e, edges) {
        size_t c = strtoul(tg_json_str(e, "toStopId") + strlen("city-"), NULL, 10);
        CHECK(grouped == NULL || grouped == &dir->items[c]);
        grouped = &dir->items[c];
    }
    cJSON_Delete(edges);
    tg_buf_free(&json);
    gb_graph_free(g);
    return grouped;
}

int main(void) {
    virtual_cities_t dir;
    char err[512];
    CHECK(virtual_cities_read(TG_SOURCE_DIR "/deploy/sample-data/cities.csv", &dir, err,
                              sizeof(err)) == TG_OK);
    CHECK(dir.count >= 60);
    for (size_t c = 0; c < dir.count; c++) {
        add_variants(dir.items[c].name);
    }
    add_odata_cities(TG_SOURCE_DIR "/deploy/sample-data/odata/stops.json");
    add_odata_cities(TG_SOURCE_DIR "/deploy/sample-data/odata-changed/stops.json");

    size_t written = 0, matched = 0;
    for (size_t i = 0; i < nnames; i++) {
        const virtual_city_t *v = virtual_served(&dir, names[i]);
        const virtual_city_t *g = graph_grouped(&dir, names[i]);
        if (v != g) {
            fprintf(stderr, "\"%s\": virtual-entities-generator says %s, graph-builder %s\n",
                    names[i], v ? v->name : "(no city)", g ? g->name : "(no city)");
        }
        CHECK(v == g);
        written += as_written[i];
        matched += as_written[i] && v != NULL;
    }
    /* Each directory city is found by its own name and by every variant. */
    for (size_t c = 0; c < dir.count; c++) {
        char buf[600];
        CHECK(virtual_served(&dir, dir.items[c].name) == &dir.items[c]);
        upper(dir.items[c].name, buf);
        CHECK(graph_grouped(&dir, buf) == &dir.items[c]);
    }
    /* The sample stops' cities are in the directory ("г. Нерюнгри",
     * "Олекминск" for "Олёкминск"): none is left without its city. */
    CHECK(matched == written);
    printf("%zu names, %zu directory cities\n", nnames, dir.count);
    for (size_t i = 0; i < nnames; i++) {
        free(names[i]);
    }
    virtual_cities_free(&dir);
    TG_TEST_END();
}
