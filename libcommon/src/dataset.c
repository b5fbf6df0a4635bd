/* The rolling horizon and self-healing rules: one query over datasets and
 * graphs decides what an unchanged dataset still needs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tg/dataset.h"
#include "tg/pg.h"
#include "tg/time.h"

int64_t tg_local_day(int64_t now_ms) {
    int64_t s = now_ms / 1000 + TG_LOCAL_UTC_OFFSET_S;
    return s >= 0 ? s / 86400 : -((-s + 86399) / 86400);
}

void tg_day_format(int64_t day, char *out, size_t outlen) {
    tg_time_format(day * 86400, "%Y-%m-%d", out, outlen);
}

static const char *const names[] = {NULL, "virtual-missing", "virtual-horizon", "graph"};

const char *tg_refresh_name(tg_refresh_t r) {
    return r > TG_REFRESH_NONE && r <= TG_REFRESH_GRAPH ? names[r] : NULL;
}

tg_refresh_t tg_refresh_parse(const char *s) {
    for (int r = TG_REFRESH_VIRTUAL_MISSING; s && r <= TG_REFRESH_GRAPH; r++) {
        if (!strcmp(s, names[r])) {
            return (tg_refresh_t)r;
        }
    }
    return TG_REFRESH_NONE;
}

int tg_refresh_due(PGconn *pg, int64_t dataset_version, int64_t now_ms, tg_refresh_t *out,
                   char *errstr, size_t errlen) {
    char dv[24], today[16];
    PGresult *res;
    snprintf(dv, sizeof dv, "%lld", (long long)dataset_version);
    tg_day_format(tg_local_day(now_ms), today, sizeof today);
    const char *params[] = {dv, today};
    *out = TG_REFRESH_NONE;
    int rc = tg_pg_exec(pg,
                        "SELECT NOT (d.stats ? 'virtualStops'), "
                        "d.virtual_from IS NULL OR d.virtual_from < $2::date, "
                        "NOT EXISTS (SELECT 1 FROM graphs g WHERE g.dataset_version = d.version "
                        "AND g.status = 'active' AND g.virtual_generation = d.virtual_generation) "
                        "FROM datasets d WHERE d.version = $1",
                        2, params, &res, errstr, errlen);
    if (rc) {
        return rc;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        return tg_fail(TG_ERR_NOTFOUND, errstr, errlen, "dataset %s does not exist", dv);
    }
    for (int col = 0; col < 3 && *out == TG_REFRESH_NONE; col++) {
        if (PQgetvalue(res, 0, col)[0] == 't') {
            *out = (tg_refresh_t)(col + 1);
        }
    }
    PQclear(res);
    return TG_OK;
}
