/* graph-builder validation: each of the five rules broken on its own, the
 * strong-connectivity check, and the warnings (isolated stop, implausible
 * speed, duplicate edge). */
#include "graph.h"
#include "tg_test.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

/* A ring a -> b -> c -> a (strongly connected), BUS, 60 km in 60 min. */
static gb_graph_t *ring(void) {
    gb_graph_t *g = gb_graph_new();
    CHECK(gb_add_node(g, "a", "A", NULL, NAN, NAN) == TG_OK);
    CHECK(gb_add_node(g, "b", "B", NULL, NAN, NAN) == TG_OK);
    CHECK(gb_add_node(g, "c", "C", NULL, NAN, NAN) == TG_OK);
    CHECK(gb_add_edge(g, "a", "b", 60, 60, "BUS", "ab", 0) == TG_OK);
    CHECK(gb_add_edge(g, "b", "c", 60, 60, "BUS", "bc", 0) == TG_OK);
    CHECK(gb_add_edge(g, "c", "a", 60, 60, "BUS", "ca", 0) == TG_OK);
    return g;
}

/* Validates g (indexing it first) and frees it; r is the caller's. */
static void validate(gb_graph_t *g, gb_report_t *r) {
    CHECK(gb_graph_index(g) == TG_OK);
    CHECK(gb_validate(g, r) == TG_OK);
    gb_graph_free(g);
}

static int has_sample(const gb_issue_t *is, const char *text) {
    for (int i = 0; is && i < is->n_samples; i++) {
        if (strstr(is->samples[i], text)) {
            return 1;
        }
    }
    return 0;
}

static void test_valid(void) {
    gb_report_t r;
    validate(ring(), &r);
    CHECK(r.errors == 0);
    CHECK(r.warnings == 0);
    gb_report_free(&r);
}

static void test_no_nodes_no_edges(void) {
    gb_report_t r;
    validate(gb_graph_new(), &r);
    CHECK(gb_report_find(&r, "no_nodes") != NULL);
    CHECK(gb_report_find(&r, "no_edges") != NULL);
    CHECK(r.errors == 2);
    gb_report_free(&r);

    gb_graph_t *g = gb_graph_new();
    CHECK(gb_add_node(g, "a", "A", NULL, NAN, NAN) == TG_OK);
    validate(g, &r);
    CHECK(gb_report_find(&r, "no_nodes") == NULL);
    CHECK(gb_report_find(&r, "no_edges") != NULL);
    gb_report_free(&r);

    /* Transfer edges inside a city are no routes. */
    g = gb_graph_new();
    CHECK(gb_add_node(g, "a", "A", "Якутск", NAN, NAN) == TG_OK);
    CHECK(gb_add_node(g, "b", "B", "Якутск", NAN, NAN) == TG_OK);
    CHECK(gb_add_transfers(g, 15, 30) == TG_OK);
    CHECK(gb_edge_count(g) == 2 && g->n_routes == 0);
    validate(g, &r);
    CHECK(gb_report_find(&r, "no_edges") != NULL);
    CHECK(r.errors == 1);
    gb_report_free(&r);
}

static void test_invalid_weights(void) {
    gb_report_t r;
    gb_graph_t *g = ring();
    CHECK(gb_add_edge(g, "a", "c", 0, 10, "BUS", "zero", 0) == TG_OK);
    CHECK(gb_add_edge(g, "c", "b", -5, 10, "BUS", "negative", 0) == TG_OK);
    CHECK(gb_add_edge(g, "b", "a", NAN, 10, "BUS", "unknown", 0) == TG_OK);
    CHECK(gb_add_edge(g, "a", "b", INFINITY, 10, "BUS", "infinite", 0) == TG_OK);
    validate(g, &r);
    const gb_issue_t *is = gb_report_find(&r, "invalid_weight");
    CHECK(is && is->count == 4 && !strcmp(is->severity, "error"));
    CHECK(has_sample(is, "zero (a -> c): weight 0"));
    CHECK(has_sample(is, "unknown (b -> a): no duration and no flights"));
    CHECK(has_sample(is, "infinite"));
    CHECK(r.errors == 4);
    char text[700];
    gb_report_errors_text(&r, text, sizeof(text));
    CHECK(strstr(text, "invalid_weight: 4 edges (zero (a -> c): weight 0") == text);
    gb_report_free(&r);
}

static void test_missing_stop(void) {
    gb_report_t r;
    gb_graph_t *g = ring();
    CHECK(gb_add_edge(g, "a", "ghost", 10, 10, "BUS", "to-ghost", 0) == TG_OK);
    CHECK(gb_add_edge(g, "phantom", "a", 10, 10, "BUS", "from-phantom", 0) == TG_OK);
    validate(g, &r);
    const gb_issue_t *is = gb_report_find(&r, "missing_stop");
    CHECK(is && is->count == 2);
    CHECK(has_sample(is, "to-ghost: stop ghost does not exist"));
    CHECK(has_sample(is, "from-phantom: stop phantom does not exist"));
    CHECK(gb_report_find(&r, "not_strongly_connected") == NULL);
    gb_report_free(&r);
}

static void test_strongly_connected(void) {
    gb_report_t r;
    /* d is reachable from the ring but cannot come back: weakly connected
     * only, which is not enough for a directed graph. */
    gb_graph_t *g = ring();
    CHECK(gb_add_node(g, "d", "D", NULL, NAN, NAN) == TG_OK);
    CHECK(gb_add_edge(g, "a", "d", 10, 10, "BUS", "ad", 0) == TG_OK);
    validate(g, &r);
    const gb_issue_t *is = gb_report_find(&r, "not_strongly_connected");
    CHECK(is && is->count == 1 && !strcmp(is->severity, "error"));
    CHECK(has_sample(is, "d: cannot reach a"));
    gb_report_free(&r);

    /* e only leaves towards the ring. */
    g = ring();
    CHECK(gb_add_node(g, "e", "E", NULL, NAN, NAN) == TG_OK);
    CHECK(gb_add_edge(g, "e", "b", 10, 10, "BUS", "eb", 0) == TG_OK);
    validate(g, &r);
    is = gb_report_find(&r, "not_strongly_connected");
    CHECK(is && is->count == 1 && has_sample(is, "e: unreachable from"));
    gb_report_free(&r);

    /* Two separate rings: the smaller one is reported. */
    g = ring();
    CHECK(gb_add_node(g, "x", "X", NULL, NAN, NAN) == TG_OK);
    CHECK(gb_add_node(g, "y", "Y", NULL, NAN, NAN) == TG_OK);
    CHECK(gb_add_edge(g, "x", "y", 10, 10, "BUS", "xy", 0) == TG_OK);
    CHECK(gb_add_edge(g, "y", "x", 10, 10, "BUS", "yx", 0) == TG_OK);
    CHECK(gb_add_edge(g, "a", "c", 10, 10, "BUS", "ac", 0) == TG_OK); /* a is the hub */
    validate(g, &r);
    is = gb_report_find(&r, "not_strongly_connected");
    CHECK(is && is->count == 2 && has_sample(is, "x: no path to or from a"));
    gb_report_free(&r);

    /* A long chain closed into a cycle: deep graphs need no recursion. */
    g = gb_graph_new();
    char a[32], b[32];
    for (int i = 0; i < 40000; i++) {
        snprintf(a, sizeof(a), "n%d", i);
        CHECK(gb_add_node(g, a, a, NULL, NAN, NAN) == TG_OK);
    }
    for (int i = 0; i < 40000; i++) {
        snprintf(a, sizeof(a), "n%d", i);
        snprintf(b, sizeof(b), "n%d", (i + 1) % 40000);
        if (gb_add_edge(g, a, b, 1, 1, "BUS", a, 0) != TG_OK) {
            CHECK(0);
        }
    }
    validate(g, &r);
    CHECK(r.errors == 0);
    gb_report_free(&r);
}

/* Rule 5 as written: a stop without any edge is not published. Left in the
 * graph it fails the rule; gb_graph_drop_isolated leaves it out, the rest
 * keeps its edges, and the report lists it. */
static void test_isolated_stop(void) {
    gb_report_t r;
    gb_graph_t *g = ring();
    CHECK(gb_add_node(g, "lonely", "Lonely stop", NULL, NAN, NAN) == TG_OK);
    validate(g, &r);
    const gb_issue_t *is = gb_report_find(&r, "not_strongly_connected");
    CHECK(is && is->count == 1 && has_sample(is, "lonely: no path to or from"));
    CHECK(gb_report_find(&r, "isolated_stop") == NULL);
    gb_report_free(&r);

    g = gb_graph_new();
    CHECK(gb_add_node(g, "lonely", "Lonely stop", NULL, NAN, NAN) == TG_OK);
    CHECK(gb_add_node(g, "a", "A", NULL, NAN, NAN) == TG_OK);
    CHECK(gb_add_node(g, "alone-too", "Alone too", NULL, NAN, NAN) == TG_OK);
    CHECK(gb_add_node(g, "b", "B", NULL, NAN, NAN) == TG_OK);
    CHECK(gb_add_edge(g, "a", "b", 60, 60, "BUS", "ab", 0) == TG_OK);
    CHECK(gb_add_edge(g, "b", "a", 60, 60, "BUS", "ba", 0) == TG_OK);
    CHECK(gb_graph_index(g) == TG_OK);
    CHECK(gb_graph_drop_isolated(g) == TG_OK);
    CHECK(g->n_nodes == 2 && g->isolated_stops == 2);
    CHECK(gb_find_node(g, "lonely") < 0 && gb_find_node(g, "alone-too") < 0);
    CHECK(gb_find_node(g, "a") == 0 && gb_find_node(g, "b") == 1);
    CHECK(g->routes[0].from == 0 && g->routes[0].to == 1);
    CHECK(g->out_start[2] - g->out_start[1] == 1 && g->routes[g->out_edges[1]].to == 0);
    CHECK(gb_validate(g, &r) == TG_OK);
    is = gb_report_find(&r, "isolated_stop");
    CHECK(is && is->count == 2 && !strcmp(is->severity, "warning"));
    CHECK(has_sample(is, "lonely (Lonely stop)") && has_sample(is, "alone-too (Alone too)"));
    CHECK(r.errors == 0 && r.warnings == 2);
    gb_report_free(&r);
    gb_graph_free(g);

    /* Nothing but isolated stops: nothing is left to publish. */
    g = gb_graph_new();
    CHECK(gb_add_node(g, "x", "X", NULL, NAN, NAN) == TG_OK);
    CHECK(gb_graph_index(g) == TG_OK);
    CHECK(gb_graph_drop_isolated(g) == TG_OK);
    CHECK(g->n_nodes == 0 && g->isolated_stops == 1);
    validate(g, &r);
    is = gb_report_find(&r, "no_nodes");
    CHECK(is && has_sample(is, "every stop of the dataset is isolated (1 left out)"));
    gb_report_free(&r);
}

static void test_speed(void) {
    gb_report_t r;
    gb_graph_t *g = ring();
    CHECK(gb_add_edge(g, "a", "c", 30, 300, "BUS", "rocket-bus", 0) == TG_OK);   /* 600 km/h */
    CHECK(gb_add_edge(g, "c", "b", 60, 900, "AIR", "jet", 0) == TG_OK);          /* 900: fine */
    CHECK(gb_add_edge(g, "b", "a", 60, 300, "TRAIN", "fast-train", 0) == TG_OK); /* 300 > 250 */
    CHECK(gb_add_edge(g, "b", "c", 1, 50, "TRANSFER", NULL, 0) == TG_OK);        /* not checked */
    validate(g, &r);
    const gb_issue_t *is = gb_report_find(&r, "implausible_speed");
    CHECK(is && is->count == 2 && !strcmp(is->severity, "warning"));
    CHECK(has_sample(is, "rocket-bus: BUS 600 km/h"));
    CHECK(has_sample(is, "fast-train: TRAIN 300 km/h"));
    CHECK(!has_sample(is, "jet"));
    CHECK(r.errors == 0);
    gb_report_free(&r);
    CHECK(gb_speed_limit("bus") == 120);
    CHECK(gb_speed_limit("RIVER") == 80);
    CHECK(gb_speed_limit(NULL) == 1000);
}

static void test_duplicates(void) {
    gb_report_t r;
    gb_graph_t *g = ring();
    CHECK(gb_add_edge(g, "a", "b", 60, 60, "BUS", "ab-copy", 0) == TG_OK);
    CHECK(gb_add_edge(g, "a", "b", 45, 60, "BUS", "ab-faster", 0) == TG_OK); /* not a copy */
    CHECK(gb_add_edge(g, "a", "b", 60, 60, "RAIL", "ab-rail", 0) == TG_OK);  /* nor this */
    validate(g, &r);
    const gb_issue_t *is = gb_report_find(&r, "duplicate_edge");
    CHECK(is && is->count == 1 && has_sample(is, "ab-copy repeats ab (a -> b, 60 min)"));
    gb_report_free(&r);

    /* A route that is a transfer already there (type, weight, city) is
     * named before it: transfers come after every route. */
    g = gb_graph_new();
    CHECK(gb_add_node(g, "a", "A", "Якутск", 62.0, 129.7) == TG_OK);
    CHECK(gb_add_node(g, "b", "B", "г. Якутск", 62.1, 129.7) == TG_OK);
    CHECK(gb_add_edge(g, "a", "b", 15, 1, "TRANSFER", "walk", 0) == TG_OK);
    CHECK(gb_add_edge(g, "b", "a", 16, 1, "TRANSFER", "slow-walk", 0) == TG_OK); /* not a copy */
    CHECK(gb_add_transfers(g, 15, 30) == TG_OK);
    validate(g, &r);
    is = gb_report_find(&r, "duplicate_edge");
    CHECK(is && is->count == 1 && has_sample(is, "transfer repeats walk (a -> b, 15 min)"));
    CHECK(gb_report_find(&r, "not_strongly_connected") == NULL); /* the transfers connect */
    gb_report_free(&r);
}

static void test_report_json(void) {
    gb_report_t r;
    gb_graph_t *g = ring();
    CHECK(gb_add_edge(g, "a", "b", 0, 60, "BUS", "bad", 0) == TG_OK);
    validate(g, &r);
    cJSON *j = gb_report_json(&r);
    char *s = cJSON_PrintUnformatted(j);
    CHECK_STR(
        s, "{\"errors\":1,\"warnings\":0,\"issues\":[{\"severity\":\"error\","
           "\"code\":\"invalid_weight\",\"count\":1,\"samples\":[\"bad (a -> b): weight 0\"]}]}");
    cJSON_free(s);
    cJSON_Delete(j);
    gb_report_free(&r);
}

int main(void) {
    test_valid();
    test_no_nodes_no_edges();
    test_invalid_weights();
    test_missing_stop();
    test_strongly_connected();
    test_isolated_stop();
    test_speed();
    test_duplicates();
    test_report_json();
    TG_TEST_END();
}
