/* graph-builder model: stop index, duplicate stops, transfers within a city,
 * city name normalisation, and the JSON of the Redis format. */
#include "graph.h"
#include "tg/envelope.h"
#include "tg_test.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_index(void) {
    gb_graph_t *g = gb_graph_new();
    char id[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(id, sizeof(id), "stop-%d", i);
        CHECK(gb_add_node(g, id, id, NULL, NAN, NAN) == TG_OK);
    }
    CHECK(g->n_nodes == 5000);
    CHECK(gb_find_node(g, "stop-0") == 0);
    CHECK(gb_find_node(g, "stop-4999") == 4999);
    CHECK(gb_find_node(g, "stop-5000") == -1);
    CHECK(gb_add_node(g, "stop-7", "again", NULL, 1, 2) == TG_OK);
    CHECK(g->n_nodes == 5000);
    CHECK(g->duplicate_stops == 1);
    CHECK_STR(g->nodes[7].name, "stop-7"); /* the first one wins */
    CHECK(gb_add_edge(g, "stop-1", "nowhere", 10, NAN, "BUS", "r1", 0) == TG_OK);
    CHECK(g->routes[0].from == 1 && g->routes[0].to < 0);
    CHECK_STR(gb_edge_to_id(g, &g->routes[0]), "nowhere");
    CHECK_STR(gb_edge_from_id(g, &g->routes[0]), "stop-1");
    CHECK_STR(gb_edge_transport(g, &g->routes[0]), "BUS");
    CHECK_STR(gb_edge_route_id(g, &g->routes[0]), "r1");
    /* Transport types are interned: one copy per type, a bounded number. */
    CHECK(gb_add_edge(g, "stop-2", "stop-3", 10, NAN, "BUS", "r2", 0) == TG_OK);
    CHECK(g->routes[1].transport == g->routes[0].transport);
    CHECK(g->n_transports == 3); /* unknown, TRANSFER, BUS */
    char type[16];
    for (int i = (int)g->n_transports; i < GB_MAX_TRANSPORTS; i++) {
        snprintf(type, sizeof(type), "T%d", i);
        CHECK(gb_add_edge(g, "stop-2", "stop-3", 10, NAN, type, "r", 0) == TG_OK);
    }
    CHECK(gb_add_edge(g, "stop-2", "stop-3", 10, NAN, "ONE-TOO-MANY", "r", 0) == TG_ERR_INVALID);
    CHECK(gb_add_edge(g, "stop-2", "stop-3", 10, NAN, "BUS", "r", 0) == TG_OK);
    CHECK_STR(gb_edge_transport(g, &g->routes[g->n_routes - 1]), "BUS");
    gb_graph_free(g);
}

static int collect_edge(const gb_graph_t *g, const gb_edge_t *e, void *arg) {
    gb_edge_t **at = arg;
    *(*at)++ = *e;
    return TG_OK;
}

/* Every edge of g in order (gb_for_each_edge); the caller frees the array. */
static gb_edge_t *every_edge(const gb_graph_t *g) {
    gb_edge_t *all = malloc((gb_edge_count(g) + 1) * sizeof(*all)), *at = all;
    CHECK(all && gb_for_each_edge(g, collect_edge, &at) == TG_OK);
    CHECK(all && (size_t)(at - all) == gb_edge_count(g));
    return all;
}

/* Stops are grouped by tg_city_key (tested with the city rule in
 * text_test.c): spellings of one city get transfers, other cities none. */
static void test_city_grouping(void) {
    gb_graph_t *g = gb_graph_new();
    CHECK(gb_add_node(g, "m1", "M1", "Усть-Мая", 60.4, 134.5) == TG_OK);
    CHECK(gb_add_node(g, "m2", "M2", "г. Усть Мая", 60.4, 134.5) == TG_OK);
    CHECK(gb_add_node(g, "n1", "N1", "  Олёкминск ", 60.4, 120.4) == TG_OK);
    CHECK(gb_add_node(g, "n2", "N2", "ОЛЕКМИНСК", 60.4, 120.4) == TG_OK);
    CHECK(gb_add_node(g, "x1", "X1", "Усть-Нера", 64.6, 143.2) == TG_OK);
    CHECK(gb_add_node(g, "x2", "X2", "Як\xffутск", 62.0, 129.7) == TG_OK); /* not UTF-8 */
    CHECK(gb_add_node(g, "x3", "X3", "Як\xffутск", 62.0, 129.7) == TG_OK);
    CHECK(gb_add_transfers(g, 15, 30) == TG_OK);
    CHECK(g->transfer_edges == 4); /* m1<->m2, n1<->n2 */
    gb_edge_t *all = every_edge(g);
    for (size_t i = 0; i < gb_edge_count(g); i++) {
        CHECK(gb_edge_from_id(g, &all[i])[0] == gb_edge_to_id(g, &all[i])[0]);
    }
    free(all);
    gb_graph_free(g);
}

static void test_transfers(void) {
    gb_graph_t *g = gb_graph_new();
    CHECK(gb_add_node(g, "a1", "A1", "Якутск", 62.0, 129.7) == TG_OK);
    CHECK(gb_add_node(g, "a2", "A2", "г. Якутск", 62.1, 129.7) == TG_OK);
    CHECK(gb_add_node(g, "a3", "A3", "якутск", NAN, NAN) == TG_OK);
    CHECK(gb_add_node(g, "b1", "B1", "Мирный", 62.5, 114.0) == TG_OK);
    CHECK(gb_add_node(g, "c1", "C1", NULL, 1, 1) == TG_OK);
    CHECK(gb_add_node(g, "c2", "C2", NULL, 1, 1) == TG_OK);
    CHECK(gb_add_transfers(g, 15, 30) == TG_OK);
    CHECK(g->transfer_edges == 6); /* 3 stops of Якутск, both ways; no city, no transfer */
    CHECK(gb_edge_count(g) == 6);
    gb_edge_t *all = every_edge(g);
    int a1a2 = 0;
    for (size_t i = 0; i < gb_edge_count(g); i++) {
        CHECK_STR(gb_edge_transport(g, &all[i]), "TRANSFER");
        CHECK(all[i].weight == 15);
        CHECK(gb_edge_route_id(g, &all[i]) == NULL);
        if (!strcmp(gb_edge_from_id(g, &all[i]), "a1") &&
            !strcmp(gb_edge_to_id(g, &all[i]), "a2")) {
            a1a2 = 1;
            CHECK(fabs(all[i].distance - 11.12) < 0.05); /* 0.1 degree of latitude */
        }
        if (!strcmp(gb_edge_to_id(g, &all[i]), "a3")) {
            CHECK(isnan(all[i].distance));
        }
    }
    CHECK(a1a2);
    free(all);
    gb_graph_free(g);

    /* A city beyond the cap gets no transfers and is reported. */
    g = gb_graph_new();
    CHECK(gb_add_node(g, "x1", "X1", "Big", 0, 0) == TG_OK);
    CHECK(gb_add_node(g, "x2", "X2", "Big", 0, 0) == TG_OK);
    CHECK(gb_add_node(g, "x3", "X3", "Big", 0, 0) == TG_OK);
    CHECK(gb_add_transfers(g, 15, 2) == TG_OK);
    CHECK(gb_edge_count(g) == 0);
    CHECK(g->big_cities == 1);
    CHECK(gb_add_transfers(g, 0, 30) == TG_OK); /* 0 minutes: transfers off */
    CHECK(gb_edge_count(g) == 0);
    gb_graph_free(g);

    /* Two long city names that differ only at their end are two cities:
     * no transfer between them, however long the name. */
    char north[400], south[400];
    memset(north, 'n', 300);
    memcpy(south, north, 300);
    strcpy(north + 300, " North");
    strcpy(south + 300, " South");
    g = gb_graph_new();
    CHECK(gb_add_node(g, "n1", "N1", north, 0, 0) == TG_OK);
    CHECK(gb_add_node(g, "s1", "S1", south, 0, 0) == TG_OK);
    CHECK(gb_add_node(g, "s2", "S2", south, 0, 0) == TG_OK);
    CHECK(gb_add_transfers(g, 15, 30) == TG_OK);
    CHECK(gb_edge_count(g) == 2); /* s1 <-> s2 only */
    all = every_edge(g);
    for (size_t i = 0; i < gb_edge_count(g); i++) {
        CHECK(gb_edge_from_id(g, &all[i])[0] == 's' && gb_edge_to_id(g, &all[i])[0] == 's');
    }
    free(all);
    gb_graph_free(g);
}

static void test_json(void) {
    gb_graph_t *g = gb_graph_new();
    CHECK(gb_add_node(g, "s1", "Аэропорт \"Туймаада\"\\1", "Якутск", 62.0933, 129.7706) == TG_OK);
    CHECK(gb_add_node(g, "s2", "Tab\there", NULL, NAN, NAN) == TG_OK);
    CHECK(gb_add_node(g, "s3", "Lonely", NULL, NAN, NAN) == TG_OK);
    CHECK(gb_add_edge(g, "s1", "s2", 125, 812.2, "AIR", "r-1", 1) == TG_OK);
    CHECK(gb_add_edge(g, "s1", "s3", 62.5, NAN, NULL, "r-2", 0) == TG_OK);
    CHECK(gb_add_edge(g, "s2", "s1", 30, 20, "BUS", "r-3", 0) == TG_OK);
    CHECK(gb_graph_index(g) == TG_OK);
    tg_buf_t b;
    tg_buf_init(&b);
    CHECK(gb_node_json(&b, &g->nodes[0]) == TG_OK);
    CHECK_STR(b.data, "{\"stopId\":\"s1\",\"stopName\":\"Аэропорт \\\"Туймаада\\\"\\\\1\","
                      "\"latitude\":62.0933,\"longitude\":129.7706,\"cityName\":\"Якутск\"}");
    cJSON *parsed = cJSON_Parse(b.data);
    CHECK(parsed != NULL);
    CHECK_STR(tg_json_str(parsed, "stopName"), "Аэропорт \"Туймаада\"\\1");
    cJSON_Delete(parsed);
    tg_buf_reset(&b);
    CHECK(gb_node_json(&b, &g->nodes[1]) == TG_OK);
    CHECK_STR(b.data, "{\"stopId\":\"s2\",\"stopName\":\"Tab\\u0009here\"}");
    tg_buf_reset(&b);
    CHECK(gb_neighbors_json(&b, g, 0) == TG_OK);
    CHECK_STR(b.data, "[{\"fromStopId\":\"s1\",\"toStopId\":\"s2\",\"weight\":125,"
                      "\"distance\":812.2,\"transportType\":\"AIR\",\"routeId\":\"r-1\"},"
                      "{\"fromStopId\":\"s1\",\"toStopId\":\"s3\",\"weight\":62.5,"
                      "\"routeId\":\"r-2\"}]");
    tg_buf_reset(&b);
    CHECK(gb_neighbors_json(&b, g, 2) == TG_OK);
    CHECK_STR(b.data, "[]");
    tg_buf_free(&b);
    gb_graph_free(g);
}

int main(void) {
    test_index();
    test_city_grouping();
    test_transfers();
    test_json();
    TG_TEST_END();
}
