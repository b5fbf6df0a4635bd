/* graph-builder validation fails closed: whichever of its allocations fails,
 * gb_validate reports TG_ERR_NOMEM or still finds the graph's error; a graph
 * that is not strongly connected is never taken for a valid one.
 *
 * Allocations are refused through tests/unit/tg_alloc_fail.h. */
#include "graph.h"
#include "tg_alloc_fail.h"
#include "tg_test.h"
#include <math.h>
#include <stddef.h>

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
    for (long fail_at = 1;; fail_at++) {
        gb_report_t r;
        tg_alloc_fail_arm(fail_at);
        int rc = gb_validate(g, &r);
        int hit = tg_alloc_fail_disarm();
        /* A refused rule fails the step; a refused sample of an issue
         * (strdup) only loses that example, the issue is still counted. */
        if (hit) {
            CHECK(rc == TG_ERR_NOMEM || (rc == TG_OK && r.errors > 0));
        } else {
            CHECK(rc == TG_OK);
        }
        int rejected = rc != TG_OK || r.errors > 0;
        if (!rejected) {
            fprintf(stderr, "allocation %ld refused: the graph passed validation\n", fail_at);
        }
        CHECK(rejected);
        if (rc == TG_OK) {
            CHECK(gb_report_find(&r, "not_strongly_connected") != NULL);
        }
        gb_report_free(&r);
        rounds++;
        if (!hit || fail_at > 100) {
            break;
        }
    }
    CHECK(rounds > 1); /* gb_validate allocates, so some run was refused */
    gb_graph_free(g);
    TG_TEST_END();
}
