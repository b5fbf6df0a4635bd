/* Retention rules: which dataset versions and S3 backups are deleted. */
#include "retention.h"
#include "tg_test.h"

static void datasets_newest_kept(void) {
    retention_dataset_t ds[] = {{1, "default", 0},
                                {2, "default", 0},
                                {3, "default", 0},
                                {4, "default", 0},
                                {5, "default", 0}};
    int drop[5];
    CHECK(retention_datasets_plan(ds, 5, 3, drop) == 2);
    CHECK(drop[0] && drop[1] && !drop[2] && !drop[3] && !drop[4]);
}

static void datasets_needed_kept(void) {
    /* Version 1 backs the active graph, 3 a graph kept for rollback. */
    retention_dataset_t ds[] = {{5, "default", 0}, {1, "default", 1}, {3, "default", 1},
                                {2, "default", 0}, {4, "default", 0}, {6, "default", 0}};
    int drop[6];
    CHECK(retention_datasets_plan(ds, 6, 2, drop) == 2);
    CHECK(!drop[0] && !drop[1] && !drop[2] && drop[3] && drop[4] && !drop[5]);
}

static void datasets_per_source(void) {
    /* The newest N are counted within each source. */
    retention_dataset_t ds[] = {{1, "a", 0}, {2, "b", 0}, {3, "a", 0}, {4, "a", 0}};
    int drop[4];
    CHECK(retention_datasets_plan(ds, 4, 2, drop) == 1);
    CHECK(drop[0] && !drop[1] && !drop[2] && !drop[3]);
    CHECK(retention_datasets_plan(ds, 0, 2, drop) == 0);
}

static void backup_order(void) {
    size_t kl;
    int64_t order;
    CHECK(retention_backup_order("datasets/default/v12-abcdef.json.gz", &kl, &order));
    CHECK(kl == 16 && order == 12);
    CHECK(retention_backup_order("graphs/graph-v1764912345678.json.gz", &kl, &order));
    CHECK(kl == 6 && order == 1764912345678LL);
    CHECK(!retention_backup_order("other/v1.json.gz", &kl, &order));
    CHECK(!retention_backup_order("graphs/latest.json.gz", &kl, &order));
}

static void backups_newest_per_kind(void) {
    retention_backup_t b[] = {{"datasets/default/v9-aa.json.gz", 0},
                              {"datasets/default/v10-bb.json.gz", 0},
                              {"datasets/default/v2-cc.json.gz", 0},
                              {"datasets/default/v1-dd.json.gz", 1},
                              {"datasets/other/v3-ee.json.gz", 0},
                              {"graphs/graph-v200.json.gz", 0},
                              {"graphs/graph-v100.json.gz", 0},
                              {"graphs/graph-v1000.json.gz", 0},
                              {"graphs/notes.txt", 0}};
    int drop[9];
    /* Keep 2 per kind: v10 and v9 of default (v1 is protected), v3 of
     * other, graph-v1000 and graph-v200; the unknown key is left alone. */
    CHECK(retention_backups_plan(b, 9, 2, drop) == 2);
    CHECK(!drop[0] && !drop[1] && drop[2] && !drop[3] && !drop[4]);
    CHECK(!drop[5] && drop[6] && !drop[7] && !drop[8]);
}

int main(void) {
    datasets_newest_kept();
    datasets_needed_kept();
    datasets_per_source();
    backup_order();
    backups_newest_per_kind();
    TG_TEST_END();
}
