/* route-api's graph model: ids interned and found, adjacency arrays, stop
 * search folded for Russian and Latin alike. */
#include <math.h>
#include <stdlib.h>

#include "route_api.h"
#include "tg_test.h"

static rg_graph_t *sample(void) {
    rg_builder_t *b = rg_builder_new();
    CHECK(rg_builder_add_node(b, "s1", "Аэропорт Якутск", "г. Якутск", 62.09, 129.77) == TG_OK);
    CHECK(rg_builder_add_node(b, "s2", "Нерюнгри Автовокзал", "Нерюнгри", NAN, NAN) == TG_OK);
    CHECK(rg_builder_add_node(b, "s3", "Moscow Sheremetyevo", "Москва", 55.97, 37.41) == TG_OK);
    CHECK(rg_builder_add_edge(b, "s2", "s1", 600, 800, "BUS", "r-1") == TG_OK);
    CHECK(rg_builder_add_edge(b, "s1", "s3", 390, 4900, "AIR", "r-2") == TG_OK);
    CHECK(rg_builder_add_edge(b, "s1", "s2", 600, 800, "BUS", "r-1") == TG_OK);
    char err[256];
    rg_graph_t *g = rg_builder_finish(b, "graph-v7", err, sizeof err);
    CHECK(g != NULL);
    return g;
}

int main(void) {
    rg_graph_t *g = sample();
    CHECK(g->nnodes == 3 && g->nedges == 3);
    CHECK_STR(g->version, "graph-v7");
    uint32_t s1 = rg_find(g, "s1"), s2 = rg_find(g, "s2");
    CHECK(s1 != RG_NONE && s2 != RG_NONE && rg_find(g, "s4") == RG_NONE);
    /* s1's out-edges are adjacent, whatever order they came in */
    CHECK(g->first[s1 + 1] - g->first[s1] == 2);
    for (uint32_t e = g->first[s1]; e < g->first[s1 + 1]; e++) {
        CHECK(g->edges[e].from == s1);
    }
    /* the same route id is stored once */
    CHECK(g->edges[g->first[s2]].route == g->edges[g->first[s1]].route ||
          g->edges[g->first[s2]].route == g->edges[g->first[s1] + 1].route);

    uint32_t out[8];
    char *q = rg_fold("ЯКУТСК"), *all = rg_fold("");
    CHECK(rg_search(g, q, all, out, 8) == 1 && out[0] == s1);
    free(q);
    q = rg_fold("нерюнгри"); /* city and name */
    CHECK(rg_search(g, q, all, out, 8) == 1 && out[0] == s2);
    free(q);
    q = rg_fold("SHEREMETYEVO");
    CHECK(rg_search(g, q, all, out, 8) == 1);
    free(q);
    q = rg_fold("ВОКЗАЛ");
    CHECK(rg_search(g, q, all, out, 8) == 1 && out[0] == s2);
    free(q);
    q = rg_fold("O"); /* Latin O: not the Cyrillic о of the other stops */
    CHECK(rg_search(g, q, all, out, 8) == 1 && out[0] == rg_find(g, "s3"));
    CHECK(rg_search(g, all, all, out, 8) == 3);
    CHECK(rg_search(g, all, all, out, 2) == 2); /* the limit */
    char *city = rg_fold("москва");
    CHECK(rg_search(g, all, city, out, 8) == 1);
    free(q);
    free(city);
    /* a city whole, without its settlement prefix */
    city = rg_fold("якутск");
    CHECK(rg_city_nodes(g, city, out, 8) == 1 && out[0] == s1);
    free(city);
    city = rg_fold("якут");
    CHECK(rg_city_nodes(g, city, out, 8) == 0);
    free(city);
    free(all);
    rg_graph_free(g);
    TG_TEST_END();
}
