/* odata-sync-worker's bounded-memory path gives what the in-memory rule
 * gives: records spooled to disk in sorted runs and read back merged come
 * out in the order of odata_dataset_sort; the canonical document written
 * row by row is byte for byte odata_canonical's, with the same data hash
 * (pinned below: the hash this data had before the spool existed); the
 * validation report is the same. Memory limits of a few KiB force many runs
 * so that the merge, not the in-memory sort, is what is tested. */
#include "mapping.h"
#include "records.h"
#include "spool.h"
#include "tg/files.h"
#include "tg_test.h"
#include "validate.h"
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* gen_rows' dataset under the rules as they were before the spool (computed
 * then by odata_validate and odata_canonical): its validation report in
 * odata_report_summary's words, and its data hash. */
#define GOLDEN_SUMMARY                                                                             \
    "12144 problems: required 26 (Stops[7] Id: missing; Stops[218] Id: missing; Stops[429] Id: "   \
    "missing; ...); duplicate_id 53 (Stops[102] Id \"s-004242\": duplicate (also at Stops[5]); "   \
    "Stops[199] Id \"s-004242\": duplicate (also at Stops[102]); Stops[296] Id \"s-004242\": du"   \
    "plicate (also at Stops[199]); ...); unknown_stop 8193 (Routes[7] FromStopId \"s-900095\": "   \
    "unknown stop; Routes[7] ToStopId \"s-359299\": unknown stop; Routes[218] FromStopId \"s-17"   \
    "7627\": unknown stop; ...); unknown_route 2597 (Flights[7] RouteId \"r-260492\": unknown r"   \
    "oute; Flights[218] RouteId \"r-053688\": unknown route; Flights[429] RouteId \"r-601785\":"   \
    " unknown route; ...); duration 5 (Routes[301] DurationMinutes -5: must be above 0; Routes["   \
    "1] DurationMinutes -5: must be above 0; Routes[601] DurationMinutes -5: must be above 0; ."   \
    "..); times 1270 (Flights[218] ArrivalTime 2026-12-01T02:56:42.089Z: not after DepartureTim"   \
    "e 2026-12-20T04:15:00.000Z; Flights[640] ArrivalTime 2026-12-01T02:54:23.977Z: not after D"   \
    "epartureTime 2026-12-24T05:15:00.000Z; Flights[1062] ArrivalTime 2026-12-01T03:39:09.789Z:"   \
    " not after DepartureTime 2026-12-11T21:15:00.000Z; ...)"

#define GOLDEN_HASH "4c5bc4209e2d647f4bd26b86e0c120c965570edf4e6af535a840f6e741196116"

static unsigned seed_state;
static unsigned rnd(unsigned n) {
    seed_state = seed_state * 1103515245u + 12345u;
    return (seed_state >> 8) % n;
}

enum { N_STOPS = 900, N_ROUTES = 1500, N_FLIGHTS = 2600 };

/* Source rows of one kind as the default mapping reads them: ids out of
 * order with a few duplicates and a few missing, values as numbers and as
 * strings, escapes and Cyrillic, nulls, both date-time notations, and a few
 * references to stops and routes that do not exist. */
static cJSON *gen_rows(odata_kind_t k) {
    cJSON *rows = cJSON_CreateArray();
    char id[64], ref[64], text[128];
    int n = k == ODATA_STOPS ? N_STOPS : k == ODATA_ROUTES ? N_ROUTES : N_FLIGHTS;
    for (int i = 0; i < n; i++) {
        cJSON *r = cJSON_CreateObject();
        unsigned x = rnd(1000000);
        if (i % 97 == 5) {
            x = 4242; /* a duplicate id */
        }
        snprintf(id, sizeof(id), "%s-%06u",
                 k == ODATA_STOPS    ? "s"
                 : k == ODATA_ROUTES ? "r"
                                     : "f",
                 x);
        if (i % 211 != 7) {
            cJSON_AddStringToObject(r, "Id", id);
        }
        if (k == ODATA_STOPS) {
            snprintf(text, sizeof(text), "Остановка \"%u\"\\%s", x, i % 3 ? "" : "\n\t");
            cJSON_AddStringToObject(r, "Name", text);
            if (i % 4) {
                cJSON_AddStringToObject(r, "CityName", i % 8 ? "Якутск" : "Усть-Мая");
            } else {
                cJSON_AddNullToObject(r, "CityName");
            }
            cJSON_AddNumberToObject(r, "Latitude", 50 + rnd(30000) / 1000.0);
            snprintf(text, sizeof(text), "%u.%03u", 100 + rnd(60), rnd(1000));
            cJSON_AddStringToObject(r, "Longitude", text);
            cJSON_AddStringToObject(r, "@odata.etag", "W/\"x\"");
        } else if (k == ODATA_ROUTES) {
            snprintf(ref, sizeof(ref), "s-%06u", i % 50 == 3 ? 999999u : rnd(1000000u));
            cJSON_AddStringToObject(r, "FromStopId", ref);
            snprintf(ref, sizeof(ref), "s-%06u", rnd(1000000));
            cJSON_AddStringToObject(r, "ToStopId", ref);
            cJSON_AddNumberToObject(r, "DurationMinutes", i % 300 == 1 ? -5.0 : 10.0 + rnd(900));
            cJSON_AddNumberToObject(r, "DistanceKm", (double)rnd(100000) / 10.0);
            snprintf(text, sizeof(text), "%u.%02u", rnd(5000), rnd(100));
            cJSON_AddStringToObject(r, "Fare", text);
            cJSON_AddStringToObject(r, "TransportType", i % 2 ? "BUS" : "AIR");
            cJSON_AddStringToObject(r, "Name", "Маршрут");
        } else {
            snprintf(ref, sizeof(ref), "r-%06u", rnd(1000000));
            cJSON_AddStringToObject(r, "RouteId", ref);
            snprintf(ref, sizeof(ref), "s-%06u", rnd(1000000));
            cJSON_AddStringToObject(r, "FromStopId", ref);
            cJSON_AddStringToObject(r, "ToStopId", ref);
            unsigned day = 1 + rnd(28), hour = rnd(20);
            snprintf(text, sizeof(text), "2026-12-%02uT%02u:15:00+09:00", day, hour);
            cJSON_AddStringToObject(r, "DepartureTime", text);
            if (i % 2) {
                snprintf(text, sizeof(text), "2026-12-%02uT%02u:45:30.250Z", day, hour);
            } else {
                snprintf(text, sizeof(text), "/Date(%llu)/",
                         1796080800000ULL + (unsigned long long)rnd(100000000));
            }
            cJSON_AddStringToObject(r, "ArrivalTime", text);
            if (i % 5) {
                cJSON_AddNumberToObject(r, "AvailableSeats", rnd(300));
            }
        }
        cJSON_AddItemToArray(rows, r);
    }
    return rows;
}

typedef struct {
    odata_mapping_t m;
    odata_dataset_t ds;
    odata_report_t rep;
} fixture_t;

static void load(fixture_t *f) {
    char err[200];
    memset(f, 0, sizeof(*f));
    CHECK(odata_mapping_load(NULL, &f->m, err, sizeof(err)) == 0);
    seed_state = 7;
    for (int k = 0; k < ODATA_KINDS; k++) {
        cJSON *rows = gen_rows((odata_kind_t)k), *row;
        long i = 0;
        cJSON_ArrayForEach(row, rows) {
            CHECK(odata_map_row(&f->m, (odata_kind_t)k, row, i++, &f->ds, &f->rep) == 0);
        }
        cJSON_Delete(rows);
    }
}

static int doc_write(void *ud, const void *data, size_t len) {
    return fwrite(data, 1, len, ud) == len ? TG_OK : TG_ERR_IO;
}

static void release(fixture_t *f) {
    odata_dataset_free(&f->ds);
    odata_mapping_free(&f->m);
}

static void test_in_memory_rule_unchanged(void) {
    fixture_t f;
    load(&f);
    tg_buf_t canon;
    tg_buf_init(&canon);
    char hash[65], sum[4000];
    CHECK(odata_canonical(&f.ds, &canon, hash) == 0);
    CHECK_STR(hash, GOLDEN_HASH);
    CHECK(odata_validate(&f.ds, &f.m, &f.rep) == 12144);
    odata_report_summary(&f.rep, sum, sizeof(sum));
    CHECK_STR(sum, GOLDEN_SUMMARY);
    tg_buf_free(&canon);
    release(&f);
}

static int dir_entries(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    }
    if (d) {
        closedir(d);
    }
    return n;
}

/* Every record of f's dataset (in source order) into one spool per kind. */
static void spool_all(const fixture_t *f, size_t limit, odata_spool_t *sp[ODATA_KINDS]) {
    char err[300];
    for (int k = 0; k < ODATA_KINDS; k++) {
        sp[k] = odata_spool_new((odata_kind_t)k, limit);
        CHECK(sp[k] != NULL);
        for (size_t i = 0; i < f->ds.t[k].n; i++) {
            CHECK(odata_spool_add(sp[k], &f->ds.t[k].rows[i], err, sizeof(err)) == 0);
        }
        CHECK(odata_spool_count(sp[k]) == f->ds.t[k].n);
    }
}

static int same_record(const odata_record_t *a, const odata_record_t *b, int nfields) {
    if (a->source_index != b->source_index) {
        return 0;
    }
    for (int i = 0; i < nfields; i++) {
        const odata_value_t *x = &a->v[i], *y = &b->v[i];
        if (x->bad != y->bad || !x->text != !y->text || (x->text && strcmp(x->text, y->text)) ||
            (x->text && x->num != y->num)) {
            return 0;
        }
    }
    return 1;
}

/* Read back (twice) in odata_dataset_sort's order, with every value. */
static void test_merged_order(size_t limit, int want_runs) {
    fixture_t f;
    load(&f);
    odata_spool_t *sp[ODATA_KINDS];
    spool_all(&f, limit, sp);
    odata_dataset_sort(&f.ds);
    char err[300];
    for (int k = 0; k < ODATA_KINDS; k++) {
        CHECK(want_runs ? odata_spool_runs(sp[k]) > 2 : odata_spool_runs(sp[k]) == 0);
        for (int pass = 0; pass < 2; pass++) {
            CHECK(odata_spool_rewind(sp[k], err, sizeof(err)) == 0);
            const odata_record_t *r;
            size_t i = 0, same = 0;
            while (odata_spool_next(sp[k], &r, err, sizeof(err)) == TG_OK) {
                same += i < f.ds.t[k].n &&
                        same_record(r, &f.ds.t[k].rows[i], odata_entities[k].nfields);
                i++;
            }
            CHECK(i == f.ds.t[k].n);
            CHECK(same == f.ds.t[k].n);
        }
        odata_spool_free(sp[k]);
    }
    release(&f);
}

/* What odata-sync-worker does: the document and the checks from the
 * spools, in one pass. Same bytes, same hash, same report. */
static void test_streamed_document_and_report(size_t limit, const char *tmpdir) {
    fixture_t f;
    load(&f);
    odata_spool_t *sp[ODATA_KINDS];
    spool_all(&f, limit, sp);
    char err[300], hash[65], row_hash[65], sum[4000];
    FILE *doc_file = tg_tmpfile(err, sizeof(err));
    CHECK(doc_file != NULL);
    CHECK(dir_entries(tmpdir) == 0); /* open, yet already unlinked */
    odata_report_t rep;
    memset(&rep, 0, sizeof(rep));
    odata_check_t check;
    odata_check_init(&check, &f.m, &rep);
    odata_doc_t doc;
    CHECK(odata_doc_begin(&doc, doc_write, doc_file) == 0);
    for (int k = 0; k < ODATA_KINDS; k++) {
        const odata_record_t *r;
        CHECK(odata_spool_rewind(sp[k], err, sizeof(err)) == 0);
        while (odata_spool_next(sp[k], &r, err, sizeof(err)) == TG_OK) {
            CHECK(odata_doc_row(&doc, (odata_kind_t)k, r, row_hash) == 0);
            CHECK(odata_check_record(&check, (odata_kind_t)k, r) == 0);
        }
    }
    CHECK(odata_doc_end(&doc, hash) == 0);
    CHECK(odata_check_end(&check) == 12144);
    CHECK_STR(hash, GOLDEN_HASH);
    odata_report_summary(&rep, sum, sizeof(sum));
    CHECK_STR(sum, GOLDEN_SUMMARY);

    tg_buf_t canon;
    tg_buf_init(&canon);
    CHECK(odata_canonical(&f.ds, &canon, hash) == 0);
    long size = ftell(doc_file);
    CHECK(size == (long)canon.len);
    char *bytes = malloc(canon.len);
    rewind(doc_file);
    CHECK(bytes && fread(bytes, 1, canon.len, doc_file) == canon.len);
    CHECK(bytes && memcmp(bytes, canon.data, canon.len) == 0);
    free(bytes);
    tg_buf_free(&canon);
    fclose(doc_file);
    for (int k = 0; k < ODATA_KINDS; k++) {
        odata_spool_free(sp[k]);
    }
    release(&f);
}

/* An empty dataset's document still names every set. */
static void test_empty_document(void) {
    tg_buf_t out;
    tg_buf_init(&out);
    odata_dataset_t ds;
    memset(&ds, 0, sizeof(ds));
    char hash[65];
    CHECK(odata_canonical(&ds, &out, hash) == 0);
    CHECK_STR(out.data, "{\"stops\":[],\"routes\":[],\"flights\":[]}");
    tg_buf_free(&out);
}

int main(void) {
    char tmpdir[] = "/tmp/odata-spool-test-XXXXXX";
    CHECK(mkdtemp(tmpdir) != NULL);
    setenv("TMPDIR", tmpdir, 1);
    test_in_memory_rule_unchanged();
    test_empty_document();
    test_merged_order(1 << 30, 0); /* fits in memory: no file */
    test_merged_order(4096, 1);    /* many runs on disk */
    test_streamed_document_and_report(1 << 30, tmpdir);
    test_streamed_document_and_report(2048, tmpdir);
    CHECK(dir_entries(tmpdir) == 0); /* nothing left behind */
    rmdir(tmpdir);
    TG_TEST_END();
}
