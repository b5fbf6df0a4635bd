/* graph-builder validation fails closed: whichever of its allocations fails,
 * gb_validate reports TG_ERR_NOMEM or still finds the graph's error; a graph
 * that is not strongly connected is never taken for a valid one.
 *
 * The test is linked with -Wl,--wrap=malloc,--wrap=calloc (see
 * tests/graph-builder.cmake): calls from the test and graph_builder_core go
 * through the wrappers below, which fail the chosen one while armed. */
#include "graph.h"
#include "tg_test.h"
#include <math.h>
#include <stddef.h>

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);

static int armed;      /* count allocations only inside gb_validate */
static long fail_at;   /* the allocation (1-based) to fail */
static long seen;      /* allocations counted so far */
static int failed_one; /* fail_at was reached and refused */

static int refuse(void) {
    if (!armed || ++seen != fail_at)
        return 0;
    failed_one = 1;
    return 1;
}

void *__wrap_malloc(size_t size) {
    return refuse() ? NULL : __real_malloc(size);
}
void *__wrap_calloc(size_t n, size_t size) {
    return refuse() ? NULL : __real_calloc(n, size);
}

/* A ring a -> b -> c -> a with d reachable but unable to come back. */
static gb_graph_t *one_way_out(void) {
    gb_graph_t *g = gb_graph_new();
    CHECK(gb_add_node(g, "a", "A", NULL, NAN, NAN) == TG_OK);
    CHECK(gb_add_node(g, "b", "B", NULL, NAN, NAN) == TG_OK);
    CHECK(gb_add_node(g, "c", "C", NULL, NAN, NAN) == TG_OK);
    CHECK(gb_add_node(g, "d", "D", NULL, NAN, NAN) == TG_OK);
    CHECK(gb_add_edge(g, "a", "b", 60, 60, "BUS", "ab", 0) == TG_OK);
    CHECK(gb_add_edge(g, "b", "c", 60, 60, "BUS", "bc", 0) == TG_OK);
    CHECK(gb_add_edge(g, "c", "a", 60, 60, "BUS", "ca", 0) == TG_OK);
    CHECK(gb_add_edge(g, "a", "d", 10, 10, "BUS", "ad", 0) == TG_OK);
    CHECK(gb_graph_index(g) == TG_OK);
    return g;
}

int main(void) {
    gb_graph_t *g = one_way_out();
    int rounds = 0;
    /* Fail the 1st, 2nd, ... allocation until a run needs no more. */
    for (fail_at = 1;; fail_at++) {
        gb_report_t r;
        seen = 0;
        failed_one = 0;
        armed = 1;
        int rc = gb_validate(g, &r);
        armed = 0;
        if (failed_one)
            CHECK(rc == TG_ERR_NOMEM);
        else
            CHECK(rc == TG_OK);
        int rejected = rc != TG_OK || r.errors > 0;
        if (!rejected)
            fprintf(stderr, "allocation %ld refused: the graph passed validation\n", fail_at);
        CHECK(rejected);
        if (rc == TG_OK)
            CHECK(gb_report_find(&r, "not_strongly_connected") != NULL);
        gb_report_free(&r);
        rounds++;
        if (!failed_one || fail_at > 100)
            break;
    }
    CHECK(rounds > 1); /* gb_validate allocates, so some run was refused */
    gb_graph_free(g);
    TG_TEST_END();
}
