/* pipeline-admin: one-shot administration for deployments and the local
 * stack: apply the SQL migrations and create (or, for tests, delete) the
 * Kafka topics of proto/topics.md.
 *
 *   pipeline-admin migrate [--sql-dir DIR]
 *   pipeline-admin create-topics [--partitions N]   (TOPIC_CONFIG: extra topic settings)
 *   pipeline-admin delete-topics      (tests: remove a TOPIC_PREFIX's topics)
 */
#include "tg/config.h"
#include "tg/files.h"
#include "tg/kafka.h"
#include "tg/log.h"
#include "tg/pg.h"
#include "tg/topics.h"
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Topics of proto/topics.md: pipeline topics are keyed by source id and
 * share one partition count; retention in hours. */
static const struct {
    const char *name;
    int retention_h;
} topics[] = {
    {TG_TOPIC_TRIGGER, 168},    {TG_TOPIC_ODATA_DONE, 168},  {TG_TOPIC_VIRTUAL_DONE, 168},
    {TG_TOPIC_GRAPH_DONE, 168}, {TG_TOPIC_STEP_FAILED, 168}, {TG_TOPIC_RETRY_1, 24},
    {TG_TOPIC_RETRY_2, 24},     {TG_TOPIC_DEAD_LETTER, 720},
};

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Applies one migration file in its own transaction, unless recorded. */
static int apply_migration(PGconn *pg, const char *dir, const char *file, char *errstr,
                           size_t errlen) {
    PGresult *res;
    const char *params[] = {file};
    int rc = tg_pg_exec(pg, "SELECT 1 FROM schema_migrations WHERE version = $1", 1, params, &res,
                        errstr, errlen);
    if (rc) {
        return rc;
    }
    int done = PQntuples(res) > 0;
    PQclear(res);
    if (done) {
        return TG_OK;
    }

    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    char *sql;
    if ((rc = tg_file_read(path, 0, &sql, NULL, errstr, errlen))) {
        return rc;
    }
    if ((rc = tg_pg_begin(pg, errstr, errlen))) {
        goto out;
    }
    res = PQexec(pg, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = tg_fail(TG_ERR_DB, errstr, errlen, "%s: %s", file, PQresultErrorMessage(res));
        PQclear(res);
        tg_pg_rollback(pg);
        goto out;
    }
    PQclear(res);
    if ((rc = tg_pg_exec(pg, "INSERT INTO schema_migrations (version) VALUES ($1)", 1, params, NULL,
                         errstr, errlen)) ||
        (rc = tg_pg_commit(pg, errstr, errlen))) {
        tg_pg_rollback(pg);
        goto out;
    }
    tg_info("Applied migration %s", file);
out:
    free(sql);
    return rc;
}

static int cmd_migrate(const tg_config_t *cfg, const char *dir, char *errstr, size_t errlen) {
    PGconn *pg = tg_pg_connect(cfg->database_url, cfg->connect_timeout_s, errstr, errlen);
    if (!pg) {
        return TG_ERR_UNAVAILABLE;
    }
    char *files[256];
    int n = 0, rc;
    DIR *d = opendir(dir);
    if (!d) {
        PQfinish(pg);
        return tg_fail(TG_ERR_IO, errstr, errlen, "%s: cannot open the migrations folder", dir);
    }
    struct dirent *e;
    while ((e = readdir(d)) && n < 256) {
        size_t len = strlen(e->d_name);
        if (len > 4 && !strcmp(e->d_name + len - 4, ".sql")) {
            files[n++] = strdup(e->d_name);
        }
    }
    closedir(d);
    qsort(files, (size_t)n, sizeof(files[0]), cmp_str);

    /* The advisory lock serialises concurrent runners (several pods). */
    PQclear(PQexec(pg, "SET client_min_messages = warning"));
    rc = tg_pg_exec(pg,
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version text PRIMARY KEY, "
                    "applied_at timestamptz NOT NULL DEFAULT now())",
                    0, NULL, NULL, errstr, errlen);
    if (!rc) {
        rc = tg_pg_exec(pg, "SELECT pg_advisory_lock(727274)", 0, NULL, NULL, errstr, errlen);
    }
    for (int i = 0; i < n; i++) {
        if (!rc) {
            rc = apply_migration(pg, dir, files[i], errstr, errlen);
        }
        free(files[i]);
    }
    if (!rc) {
        tg_info("Database schema is up to date (%d migrations)", n);
    }
    PQfinish(pg);
    return rc;
}

/* An admin client on the configured brokers; NULL with errstr set. */
static rd_kafka_t *admin_open(const tg_config_t *cfg, char *errstr, size_t errlen) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (tg_kafka_conf_apply_env(conf, cfg, errstr, errlen)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    char kerr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, kerr, sizeof(kerr));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        tg_fail(TG_ERR_KAFKA, errstr, errlen, "kafka: %s", kerr);
    }
    return rk;
}

/* Waits for an admin result; per-topic errors in ignore count as success. */
static int admin_result(const tg_config_t *cfg, rd_kafka_queue_t *q, int deleting,
                        rd_kafka_resp_err_t ignore, char *errstr, size_t errlen) {
    int rc = TG_OK;
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, (cfg->connect_timeout_s + 30) * 1000);
    if (!ev) {
        return tg_fail(TG_ERR_TIMEOUT, errstr, errlen, "KAFKA_BROKERS: no answer from %s",
                       cfg->kafka_brokers);
    }
    if (rd_kafka_event_error(ev)) {
        rc = tg_fail(TG_ERR_KAFKA, errstr, errlen, "kafka: %s", rd_kafka_event_error_string(ev));
        rd_kafka_event_destroy(ev);
        return rc;
    }
    size_t cnt;
    const rd_kafka_topic_result_t **res =
        deleting
            ? rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &cnt)
            : rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt);
    for (size_t i = 0; i < cnt; i++) {
        rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[i]);
        const char *name = rd_kafka_topic_result_name(res[i]);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR || e == ignore) {
            tg_info("Topic %s: %s", name, e ? "unchanged" : deleting ? "deleted" : "created");
        } else if (!rc) {
            rc = tg_fail(TG_ERR_KAFKA, errstr, errlen, "kafka: topic %s: %s", name,
                         rd_kafka_topic_result_error_string(res[i]));
        }
    }
    rd_kafka_event_destroy(ev);
    return rc;
}

/* TOPIC_CONFIG: "name=value[,name=value...]" set on every topic created,
 * after (so over) the retention of proto/topics.md. */
static int topic_config_apply(rd_kafka_NewTopic_t *nt, const char *spec, char *errstr,
                              size_t errlen) {
    char buf[1024], kerr[256];
    if (!spec || !*spec) {
        return TG_OK;
    }
    if (strlen(spec) >= sizeof(buf)) {
        return tg_fail(TG_ERR_CONFIG, errstr, errlen, "TOPIC_CONFIG: longer than %zu bytes",
                       sizeof(buf) - 1);
    }
    snprintf(buf, sizeof(buf), "%s", spec);
    char *save = NULL;
    for (char *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        if (!eq || eq == item || !eq[1]) {
            return tg_fail(TG_ERR_CONFIG, errstr, errlen, "TOPIC_CONFIG: \"%s\" is not name=value",
                           item);
        }
        *eq = '\0';
        if (rd_kafka_NewTopic_set_config(nt, item, eq + 1) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            snprintf(kerr, sizeof(kerr), "%s", item);
            return tg_fail(TG_ERR_CONFIG, errstr, errlen, "TOPIC_CONFIG: cannot set %s", kerr);
        }
    }
    return TG_OK;
}

static int cmd_topics(const tg_config_t *cfg, int deleting, int partitions, char *errstr,
                      size_t errlen) {
    rd_kafka_t *rk = admin_open(cfg, errstr, errlen);
    if (!rk) {
        return TG_ERR_KAFKA;
    }
    enum { NT = sizeof(topics) / sizeof(topics[0]) };
    char names[NT][256];
    rd_kafka_NewTopic_t *nts[NT];
    rd_kafka_DeleteTopic_t *dts[NT];
    char kerr[512];
    for (size_t i = 0; i < NT; i++) {
        tg_topic(cfg, topics[i].name, names[i], sizeof(names[i]));
        if (deleting) {
            dts[i] = rd_kafka_DeleteTopic_new(names[i]);
            continue;
        }
        nts[i] = rd_kafka_NewTopic_new(names[i], partitions, -1, kerr, sizeof(kerr));
        char ms[32];
        snprintf(ms, sizeof(ms), "%lld", (long long)topics[i].retention_h * 3600000LL);
        rd_kafka_NewTopic_set_config(nts[i], "retention.ms", ms);
        if (topic_config_apply(nts[i], tg_env_str("TOPIC_CONFIG", NULL), errstr, errlen)) {
            rd_kafka_NewTopic_destroy_array(nts, i + 1);
            rd_kafka_destroy(rk);
            return TG_ERR_CONFIG;
        }
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(
        rk, deleting ? RD_KAFKA_ADMIN_OP_DELETETOPICS : RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_operation_timeout(opts, 30000, NULL, 0);
    if (deleting) {
        rd_kafka_DeleteTopics(rk, dts, NT, opts, q);
    } else {
        rd_kafka_CreateTopics(rk, nts, NT, opts, q);
    }
    int rc = admin_result(cfg, q, deleting,
                          deleting ? RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART
                                   : RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS,
                          errstr, errlen);
    rd_kafka_AdminOptions_destroy(opts);
    if (deleting) {
        rd_kafka_DeleteTopic_destroy_array(dts, NT);
    } else {
        rd_kafka_NewTopic_destroy_array(nts, NT);
    }
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    return rc;
}

static int usage(void) {
    fprintf(stderr, "usage: pipeline-admin migrate [--sql-dir DIR]\n"
                    "       pipeline-admin create-topics [--partitions N]\n"
                    "       pipeline-admin delete-topics\n");
    return 2;
}

int main(int argc, char **argv) {
    char errstr[1024] = "";
    tg_config_t cfg;
    if (argc < 2) {
        return usage();
    }
    const char *cmd = argv[1];
    unsigned needs = !strcmp(cmd, "migrate") ? TG_NEED_PG : TG_NEED_KAFKA;
    if (tg_config_load(&cfg, "pipeline-admin", needs, 0, errstr, sizeof(errstr))) {
        fprintf(stderr, "pipeline-admin: %s\n", errstr);
        return 1;
    }
    tg_log_init("pipeline-admin", cfg.log_level);
    int rc;
    if (!strcmp(cmd, "migrate")) {
        const char *dir = tg_env_str("SQL_DIR", TG_SQL_DIR);
        if (argc == 4 && !strcmp(argv[2], "--sql-dir")) {
            dir = argv[3];
        } else if (argc != 2) {
            return usage();
        }
        rc = cmd_migrate(&cfg, dir, errstr, sizeof(errstr));
    } else if (!strcmp(cmd, "create-topics")) {
        long partitions;
        if (tg_env_long("TOPIC_PARTITIONS", 3, 1, 1000, &partitions, errstr, sizeof(errstr))) {
            fprintf(stderr, "pipeline-admin: %s\n", errstr);
            return 1;
        }
        if (argc == 4 && !strcmp(argv[2], "--partitions")) {
            partitions = atol(argv[3]);
        } else if (argc != 2) {
            return usage();
        }
        if (partitions < 1) {
            return usage();
        }
        rc = cmd_topics(&cfg, 0, (int)partitions, errstr, sizeof(errstr));
    } else if (!strcmp(cmd, "delete-topics") && argc == 2) {
        rc = cmd_topics(&cfg, 1, 0, errstr, sizeof(errstr));
    } else {
        return usage();
    }
    if (rc) {
        fprintf(stderr, "pipeline-admin: %s\n", errstr);
        return 1;
    }
    return 0;
}
