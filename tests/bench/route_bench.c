/* route-api's path search timed inside the process, without HTTP: loads the
 * active graph version from REDIS_URL like the service does, then answers
 * random stop pairs and prints one JSON line of figures.
 *   route_bench [pairs]      (REDIS_URL from the environment) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "route_api.h"
#include "tg/config.h"
#include "tg/redis.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static long rss_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f)) {
        if (!strncmp(line, "VmRSS:", 6)) {
            kb = strtol(line + 6, NULL, 10);
        }
    }
    if (f) {
        fclose(f);
    }
    return kb;
}

/* Median and p99 of `pairs` searches for k paths; -1 on failure. */
static int time_routes(const rg_graph_t *g, int pairs, int k, double *median, double *p99) {
    double *t = malloc((size_t)pairs * sizeof *t);
    if (!t) {
        return -1;
    }
    srand(42);
    for (int i = 0; i < pairs; i++) {
        uint32_t a = (uint32_t)rand() % (uint32_t)g->nnodes, b;
        do {
            b = (uint32_t)rand() % (uint32_t)g->nnodes;
        } while (b == a);
        rg_path_t *p;
        char err[256];
        double t0 = now_ms();
        int n = rg_routes(g, &a, 1, &b, 1, k, -1, &p, err, sizeof err);
        t[i] = now_ms() - t0;
        if (n < 0) {
            fprintf(stderr, "route_bench: %s\n", err);
            free(t);
            return -1;
        }
        rg_paths_free(p, n);
    }
    qsort(t, (size_t)pairs, sizeof *t, cmp_double);
    *median = t[pairs / 2];
    *p99 = t[pairs * 99 / 100];
    free(t);
    return 0;
}

int main(int argc, char **argv) {
    int pairs = argc > 1 ? atoi(argv[1]) : 1000;
    char err[512], version[64];
    redisContext *c = tg_redis_connect(tg_env_str("REDIS_URL", ""), 5, err, sizeof err);
    if (!c || rg_redis_active(c, version, sizeof version, err, sizeof err) != TG_OK) {
        fprintf(stderr, "route_bench: %s\n", err);
        return 1;
    }
    long rss0 = rss_kb();
    int rc;
    rg_graph_t *g = rg_redis_load(c, version, &rc, err, sizeof err);
    redisFree(c);
    if (!g || pairs < 1) {
        fprintf(stderr, "route_bench: %s\n", g ? "pairs: at least 1" : err);
        return 1;
    }
    long rss1 = rss_kb();
    double m1, p1, m3, p3;
    if (time_routes(g, pairs, 1, &m1, &p1) || time_routes(g, pairs, 3, &m3, &p3)) {
        return 1;
    }
    printf("{\"version\":\"%s\",\"nodes\":%zu,\"edges\":%zu,\"loadMs\":%.0f,\"graphKb\":%ld,"
           "\"k1\":{\"median\":%.3f,\"p99\":%.3f},\"k3\":{\"median\":%.3f,\"p99\":%.3f}}\n",
           g->version, g->nnodes, g->nedges, g->load_ms, rss1 - rss0, m1, p1, m3, p3);
    rg_graph_free(g);
    return 0;
}
