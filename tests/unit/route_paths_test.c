/* route-api's path search: Dijkstra's fastest path, Yen's k shortest loopless
 * paths in order, transfers, the transfer limit, routes between cities. */
#include <math.h>
#include <stdlib.h>

#include "route_api.h"
#include "tg_test.h"

static rg_graph_t *build(const char *edges[][4], size_t n) {
    rg_builder_t *b = rg_builder_new();
    const char *ids[] = {"C", "D", "E", "F", "G", "H", "X", "Y1", "Y2"};
    const char *cities[] = {"c1", "c1", "", "", "", "", "", "Якутск", "Якутск"};
    for (size_t i = 0; i < sizeof ids / sizeof *ids; i++) {
        CHECK(rg_builder_add_node(b, ids[i], ids[i], cities[i], NAN, NAN) == TG_OK);
    }
    for (size_t i = 0; i < n; i++) {
        CHECK(rg_builder_add_edge(b, edges[i][0], edges[i][1], atof(edges[i][2]), 1.5,
                                  edges[i][3] ? "BUS" : "TRANSFER", edges[i][3]) == TG_OK);
    }
    char err[256];
    rg_graph_t *g = rg_builder_finish(b, "graph-v1", err, sizeof err);
    CHECK(g != NULL);
    return g;
}

/* The node ids along a path, e.g. "C-E-F-H". */
static const char *trace(const rg_graph_t *g, const rg_path_t *p) {
    static char buf[256];
    size_t n = 0;
    for (size_t i = 0; i < p->nedges; i++) {
        const rg_edge_t *e = &g->edges[p->edges[i]];
        if (i == 0) {
            n += (size_t)snprintf(buf + n, sizeof buf - n, "%s", rg_str(g, g->nodes[e->from].id));
        }
        n += (size_t)snprintf(buf + n, sizeof buf - n, "-%s", rg_str(g, g->nodes[e->to].id));
    }
    return p->nedges ? buf : "";
}

/* Yen's own example (Wikipedia, "Yen's algorithm"): C to H. */
static const char *yen_edges[][4] = {
    {"C", "D", "3", "r1"}, {"C", "E", "2", "r2"}, {"D", "F", "4", "r3"},
    {"E", "D", "1", "r4"}, {"E", "F", "2", "r5"}, {"E", "G", "3", "r6"},
    {"F", "G", "2", "r7"}, {"F", "H", "1", "r8"}, {"G", "H", "2", "r9"},
};

static void test_yen_example(void) {
    rg_graph_t *g = build(yen_edges, 9);
    uint32_t from = rg_find(g, "C"), to = rg_find(g, "H");
    rg_path_t *p;
    char err[256];
    int n = rg_routes(g, &from, 1, &to, 1, 3, -1, &p, err, sizeof err);
    CHECK(n == 3);
    CHECK_STR(trace(g, &p[0]), "C-E-F-H");
    CHECK(p[0].minutes == 5);
    CHECK(p[0].km == 4.5);
    CHECK_STR(trace(g, &p[1]), "C-E-G-H");
    CHECK(p[1].minutes == 7);
    CHECK_STR(trace(g, &p[2]), "C-D-F-H");
    CHECK(p[2].minutes == 8);
    rg_paths_free(p, n);

    /* every loopless path, and no more: C to H has 7 */
    n = rg_routes(g, &from, 1, &to, 1, 10, -1, &p, err, sizeof err);
    CHECK(n == 7);
    for (int i = 1; i < n; i++) {
        CHECK(p[i].minutes >= p[i - 1].minutes);
    }
    char seen[10][64];
    for (int i = 0; i < n; i++) {
        snprintf(seen[i], sizeof seen[i], "%s", trace(g, &p[i]));
        for (int j = 0; j < i; j++) {
            CHECK(strcmp(seen[i], seen[j]) != 0);
        }
    }
    rg_paths_free(p, n);

    /* H has no way out */
    n = rg_routes(g, &to, 1, &from, 1, 3, -1, &p, err, sizeof err);
    CHECK(n == 0);
    rg_paths_free(p, n);
    rg_graph_free(g);
}

static void test_transfers(void) {
    rg_graph_t *g = build(yen_edges, 9);
    uint32_t from = rg_find(g, "C"), to = rg_find(g, "H");
    rg_path_t *p;
    char err[256];
    int n = rg_routes(g, &from, 1, &to, 1, 3, -1, &p, err, sizeof err);
    CHECK(n == 3 && p[0].transfers == 2); /* three routes r2, r5, r8 */
    rg_paths_free(p, n);
    /* no path within 0 transfers: every edge is its own route */
    n = rg_routes(g, &from, 1, &to, 1, 3, 0, &p, err, sizeof err);
    CHECK(n == 0);
    rg_paths_free(p, n);
    rg_graph_free(g);

    /* one route over two legs, then a walk and another route: 1 transfer */
    static const char *e2[][4] = {
        {"C", "D", "1", "r1"}, {"D", "E", "1", "r1"}, {"E", "F", "1", NULL}, {"F", "H", "1", "r2"}};
    g = build(e2, 4);
    from = rg_find(g, "C");
    to = rg_find(g, "H");
    n = rg_routes(g, &from, 1, &to, 1, 1, 1, &p, err, sizeof err);
    CHECK(n == 1 && p[0].transfers == 1 && p[0].minutes == 4);
    rg_paths_free(p, n);
    rg_graph_free(g);
}

/* Between cities: arriving at any stop of the destination is arriving, so no
 * route walks on inside the destination city. */
static void test_cities(void) {
    static const char *e[][4] = {{"C", "X", "10", "r1"},  {"D", "X", "5", "r2"},
                                 {"X", "Y1", "10", "r3"}, {"Y1", "Y2", "1", NULL},
                                 {"X", "Y2", "30", "r4"}, {"C", "D", "1", NULL}};
    rg_graph_t *g = build(e, 6);
    uint32_t src[8], dst[8];
    char *c1 = rg_fold("C1"), *yak = rg_fold("г. ЯКУТСК");
    size_t ns = rg_city_nodes(g, c1, src, 8), nd = rg_city_nodes(g, yak, dst, 8);
    free(c1);
    free(yak);
    CHECK(ns == 2 && nd == 2);
    rg_path_t *p;
    char err[256];
    int n = rg_routes(g, src, ns, dst, nd, 10, -1, &p, err, sizeof err);
    CHECK(n == 4);
    CHECK_STR(trace(g, &p[0]), "D-X-Y1");
    CHECK(n > 0 && p[0].minutes == 15);
    CHECK_STR(trace(g, &p[1]), "C-X-Y1");
    CHECK_STR(trace(g, &p[2]), "D-X-Y2");
    CHECK_STR(trace(g, &p[3]), "C-X-Y2");
    rg_paths_free(p, n);
    rg_graph_free(g);
}

static void test_bad_graph(void) {
    rg_builder_t *b = rg_builder_new();
    CHECK(rg_builder_add_node(b, "A", "a", "", NAN, NAN) == TG_OK);
    CHECK(rg_builder_add_edge(b, "A", "nowhere", 5, 1, "BUS", "r") == TG_OK);
    char err[256] = "";
    CHECK(rg_builder_finish(b, "graph-v2", err, sizeof err) == NULL);
    CHECK(strstr(err, "nowhere") != NULL);
    b = rg_builder_new();
    CHECK(rg_builder_add_node(b, "A", "a", "", NAN, NAN) == TG_OK);
    CHECK(rg_builder_add_edge(b, "A", "A", 0, 1, "BUS", "r") == TG_OK);
    CHECK(rg_builder_finish(b, "graph-v2", err, sizeof err) == NULL);
    CHECK(strstr(err, "weight") != NULL);
}

int main(void) {
    test_yen_example();
    test_transfers();
    test_cities();
    test_bad_graph();
    TG_TEST_END();
}
