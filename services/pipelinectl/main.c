/* pipelinectl: what an operator runs from a shell, through the
 * orchestrator's REST API (ORCHESTRATOR_URL, API_TOKEN). Tables for people,
 * --json (the API's answer as it came) for scripts; exit 0 ok, 1 failed or
 * refused, 2 usage.
 *
 *   pipelinectl [--json] trigger [--only WORKER] [--force] [--wait] [--kafka [--source ID]]
 *   pipelinectl [--json] runs [--limit N] [--status S]
 *   pipelinectl [--json] run ID
 *   pipelinectl [--json] dead-letters [--limit N] [--offset N]
 *   pipelinectl [--json] replay [--topic TOPIC] PARTITION OFFSET
 *   pipelinectl [--json] graphs
 *   pipelinectl [--json] graph rollback VERSION
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "tg/config.h"
#include "tg/envelope.h"
#include "tg/kafka.h"
#include "tg/topics.h"

#define EXIT_OK 0
#define EXIT_FAILED 1
#define EXIT_USAGE 2
#define REQUEST_TIMEOUT_S 60
#define TRIGGER_WAIT_S 600 /* --wait: the API's bound on ?wait (ORCH_WAIT_MAX_S) */
#define FOLLOW_POLL_S 2    /* --wait past that bound: how often the run is asked */
#define TRACK_WAIT_S 60    /* --kafka --wait: how long the trigger may take to be tracked */

typedef struct {
    ctl_client_t client;
    int json;
} ctl_t;

static int usage(void) {
    fprintf(
        stderr,
        "usage: pipelinectl [--json] COMMAND\n"
        "  trigger [--only WORKER] [--force] [--wait]  start a run (--wait: until it ends)\n"
        "          [--kafka [--source ID]]             ... by a full envelope straight on Kafka\n"
        "  runs [--limit N] [--status STATUS]           newest runs\n"
        "  run ID                                       one run with its steps\n"
        "  dead-letters [--limit N] [--offset N]        the dead-letter topic, newest first\n"
        "  replay [--topic TOPIC] PARTITION OFFSET      send an event again under a fresh event\n"
        "                                               id (default topic: the dead letters)\n"
        "  graphs                                       graph versions, * marks the active one\n"
        "  graph rollback VERSION                       make a kept version active again\n"
        "environment: ORCHESTRATOR_URL (default http://127.0.0.1:3000), API_TOKEN;\n"
        "  for --kafka: KAFKA_BROKERS, TOPIC_PREFIX\n"
        "exit status: 0 ok, 1 failed or refused, 2 usage\n");
    return EXIT_USAGE;
}

static const char *str(const cJSON *obj, const char *key) {
    const char *s = tg_json_str(obj, key);
    return s ? s : "-";
}

static void print_json(const cJSON *body) {
    char *text = cJSON_Print(body);
    if (text) {
        puts(text);
        free(text);
    }
}

/* Sends the request; on an error answer prints it and returns EXIT_FAILED,
 * else leaves the body in *body (caller deletes) and returns EXIT_OK. */
static int call(const ctl_t *c, const char *method, const char *path, int prefer_async,
                long timeout_s, long *status, cJSON **body) {
    char err[2048];
    ctl_response_t r;
    *body = NULL;
    if (ctl_request(&c->client, method, path, prefer_async, timeout_s, &r, err, sizeof err)) {
        fprintf(stderr, "pipelinectl: %s\n", err);
        return EXIT_FAILED;
    }
    *status = r.status;
    if (r.status >= 400) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(r.body, "error");
        if (c->json) {
            print_json(r.body);
        }
        fprintf(stderr, "pipelinectl: HTTP %ld %s: %s\n", r.status, str(e, "code"),
                str(e, "message"));
        cJSON_Delete(r.body);
        return EXIT_FAILED;
    }
    *body = r.body;
    return EXIT_OK;
}

/* One request whose answer is shown: as JSON with --json, else by table
 * (a readable form of the body). Exit code as call's. */
static int show(const ctl_t *c, const char *method, const char *path,
                void (*table)(const cJSON *body)) {
    long status;
    cJSON *body;
    int rc = call(c, method, path, 0, REQUEST_TIMEOUT_S, &status, &body);
    if (rc) {
        return rc;
    }
    if (c->json) {
        print_json(body);
    } else {
        table(body);
    }
    cJSON_Delete(body);
    return EXIT_OK;
}

/* Cuts a message to a table cell. */
static void cell(char *out, size_t len, const char *s) {
    snprintf(out, len, "%s", s ? s : "-");
    for (char *p = out; *p; p++) {
        if (*p == '\n' || *p == '\t') {
            *p = ' ';
        }
    }
    if (s && strlen(s) >= len) {
        memcpy(out + len - 4, "...", 4);
    }
}

/* ---- trigger ----------------------------------------------------------- */

static void print_result(const cJSON *body) {
    const cJSON *results = cJSON_GetObjectItemCaseSensitive(body, "workerResults"), *r;
    const cJSON *one = cJSON_GetObjectItemCaseSensitive(body, "result");
    char msg[80];
    printf("%s\n", str(body, "message"));
    printf("run %s: %s\n", str(body, "runId"), str(body, "status"));
    printf("%-28s %-8s %10s  %s\n", "WORKER", "OK", "MS", "MESSAGE");
    if (one) {
        results = NULL;
        cell(msg, sizeof msg, tg_json_str(one, "message"));
        printf("%-28s %-8s %10.0f  %s\n", str(one, "workerId"),
               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(one, "success")) ? "yes" : "no",
               tg_json_num(one, "executionTimeMs", 0), msg);
    }
    cJSON_ArrayForEach(r, results) {
        cell(msg, sizeof msg, tg_json_str(r, "message"));
        printf("%-28s %-8s %10.0f  %s\n", str(r, "workerId"),
               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "success")) ? "yes" : "no",
               tg_json_num(r, "executionTimeMs", 0), msg);
    }
}

static int cmd_run(const ctl_t *c, int argc, char **argv);

/* Asks for the run every FOLLOW_POLL_S until it ended, then shows it as
 * `run ID` does (exit 0 only when it succeeded). */
static int follow_run(const ctl_t *c, const char *run_id) {
    char path[128];
    snprintf(path, sizeof path, "/api/v1/runs/%s", run_id);
    for (;;) {
        long status;
        cJSON *body;
        int rc = call(c, "GET", path, 0, REQUEST_TIMEOUT_S, &status, &body);
        if (rc) {
            return rc;
        }
        char st[32]; /* a copy: body goes before st is read again */
        snprintf(st, sizeof st, "%s", str(cJSON_GetObjectItemCaseSensitive(body, "run"), "status"));
        int active = !strcmp(st, "queued") || !strcmp(st, "running");
        cJSON_Delete(body);
        if (!active) {
            char *argv[] = {(char *)run_id};
            int shown = cmd_run(c, 1, argv);
            return shown == EXIT_OK && strcmp(st, "succeeded") ? EXIT_FAILED : shown;
        }
        sleep(FOLLOW_POLL_S);
    }
}

static int id_ok(const char *s) {
    return s && *s && strlen(s) < 64 &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") ==
               strlen(s);
}

/* trigger --kafka: a complete pipeline.trigger envelope on Kafka, keyed by
 * the source, as another system would send it; the orchestrator's tracking
 * picks the run up. Writes the run id into run_id. */
static int trigger_kafka(const char *source, const char *only, int force, char run_id[64]) {
    char err[512], topic[256];
    tg_config_t cfg;
    if (tg_config_load(&cfg, "pipelinectl", TG_NEED_KAFKA, 0, err, sizeof err) != TG_OK) {
        fprintf(stderr, "pipelinectl: %s\n", err);
        return EXIT_FAILED;
    }
    tg_envelope_t *env = tg_envelope_new(TG_SCHEMA_TRIGGER, NULL, source);
    char *json = NULL;
    if (env) {
        snprintf(env->correlation_id, sizeof env->correlation_id, "%s", env->run_id);
        cJSON_AddStringToObject(env->payload, "trigger", "kafka");
        if (force) {
            cJSON_AddTrueToObject(env->payload, "force");
        }
        if (only) {
            cJSON_AddStringToObject(env->payload, "only", only);
        }
        json = tg_envelope_serialize(env);
    }
    tg_producer_t *p = json ? tg_producer_new(&cfg, err, sizeof err) : NULL;
    int rc = !json ? tg_fail(TG_ERR_NOMEM, err, sizeof err, "out of memory")
             : !p  ? TG_ERR_KAFKA
                   : tg_producer_send(p, tg_topic(&cfg, TG_TOPIC_TRIGGER, topic, sizeof topic),
                                      env->source_id, json, strlen(json), NULL, 0, 10000, err,
                                      sizeof err);
    if (p) {
        tg_producer_destroy(p, 5000);
    }
    if (rc == TG_OK) {
        snprintf(run_id, 64, "%s", env->run_id);
    } else {
        fprintf(stderr, "pipelinectl: KAFKA_BROKERS %s: %s\n", cfg.kafka_brokers, err);
    }
    free(json);
    tg_envelope_destroy(env);
    return rc == TG_OK ? EXIT_OK : EXIT_FAILED;
}

/* Whether the orchestrator tracks run_id, asked every FOLLOW_POLL_S for up
 * to TRACK_WAIT_S: a trigger sent to Kafka shows up once it was consumed. */
static int tracked(const ctl_t *c, const char *run_id) {
    char path[128], err[512];
    snprintf(path, sizeof path, "/api/v1/runs/%s", run_id);
    for (int waited = 0; waited <= TRACK_WAIT_S; waited += FOLLOW_POLL_S) {
        ctl_response_t r;
        if (ctl_request(&c->client, "GET", path, 0, REQUEST_TIMEOUT_S, &r, err, sizeof err) == 0) {
            cJSON_Delete(r.body);
            if (r.status == 200) {
                return 1;
            }
        }
        sleep(FOLLOW_POLL_S);
    }
    fprintf(stderr,
            "pipelinectl: run %s was sent but the orchestrator did not track it within %d s\n",
            run_id, TRACK_WAIT_S);
    return 0;
}

static int cmd_trigger(const ctl_t *c, int argc, char **argv) {
    const char *only = NULL, *source = "default";
    int force = 0, wait = 0, kafka = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--only") && i + 1 < argc) {
            only = argv[++i];
        } else if (!strcmp(argv[i], "--force")) {
            force = 1;
        } else if (!strcmp(argv[i], "--wait")) {
            wait = 1;
        } else if (!strcmp(argv[i], "--kafka")) {
            kafka = 1;
        } else if (!strcmp(argv[i], "--source") && i + 1 < argc) {
            source = argv[++i];
        } else {
            return usage();
        }
    }
    if ((only && strspn(only, "abcdefghijklmnopqrstuvwxyz-") != strlen(only)) || !id_ok(source) ||
        (!kafka && strcmp(source, "default"))) {
        return usage();
    }
    if (kafka) {
        char run_id[64];
        int rc = trigger_kafka(source, only, force, run_id);
        if (rc || wait) {
            return rc ? rc : tracked(c, run_id) ? follow_run(c, run_id) : EXIT_FAILED;
        }
        if (c->json) {
            cJSON *out = cJSON_CreateObject();
            cJSON_AddTrueToObject(out, "success");
            cJSON_AddStringToObject(out, "runId", run_id);
            cJSON_AddStringToObject(out, "status", "sent");
            print_json(out);
            cJSON_Delete(out);
        } else {
            printf("run %s sent to Kafka\n", run_id);
        }
        return EXIT_OK;
    }
    char path[256];
    snprintf(path, sizeof path, "/api/v1/workers%s%s/execute?force=%s%s", only ? "/" : "",
             only ? only : "", force ? "true" : "false", wait ? "&wait=600" : "");
    long status;
    cJSON *body;
    int rc = call(c, "POST", path, !wait, wait ? TRIGGER_WAIT_S + 60 : REQUEST_TIMEOUT_S, &status,
                  &body);
    if (rc) {
        return rc;
    }
    if (wait && status == 202 && tg_json_str(body, "runId")) {
        /* The run outlived the API's wait, or too many clients wait. */
        char run_id[64];
        snprintf(run_id, sizeof run_id, "%s", tg_json_str(body, "runId"));
        cJSON_Delete(body);
        return follow_run(c, run_id);
    }
    /* Without --wait the run is started; with it, it must have succeeded. */
    int ok =
        !wait || (status == 200 && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(body, "success")));
    if (c->json) {
        print_json(body);
    } else if (status == 200 && wait) {
        print_result(body);
    } else {
        printf("run %s %s\n", str(body, "runId"), str(body, "status"));
    }
    cJSON_Delete(body);
    return ok ? EXIT_OK : EXIT_FAILED;
}

/* ---- runs -------------------------------------------------------------- */

static void print_runs(const cJSON *body) {
    const cJSON *runs = cJSON_GetObjectItemCaseSensitive(body, "runs"), *r;
    char msg[60];
    printf("%-36s  %-8s  %-9s  %-26s  %-24s  %9s  %s\n", "RUN", "TRIGGER", "STATUS", "ONLY",
           "CREATED", "MS", "MESSAGE");
    cJSON_ArrayForEach(r, runs) {
        cell(msg, sizeof msg, tg_json_str(r, "message"));
        printf("%-36s  %-8s  %-9s  %-26s  %-24s  %9.0f  %s\n", str(r, "runId"), str(r, "trigger"),
               str(r, "status"), str(r, "onlyWorker"), str(r, "createdAt"),
               tg_json_num(r, "durationMs", 0), msg);
    }
}

static int cmd_runs(const ctl_t *c, int argc, char **argv) {
    char path[256];
    const char *limit = "20", *status_filter = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--limit") && i + 1 < argc) {
            limit = argv[++i];
        } else if (!strcmp(argv[i], "--status") && i + 1 < argc) {
            status_filter = argv[++i];
        } else {
            return usage();
        }
    }
    if (strspn(limit, "0123456789") != strlen(limit) || !*limit ||
        (status_filter &&
         strspn(status_filter, "abcdefghijklmnopqrstuvwxyz_") != strlen(status_filter))) {
        return usage();
    }
    snprintf(path, sizeof path, "/api/v1/runs?limit=%s%s%s", limit, status_filter ? "&status=" : "",
             status_filter ? status_filter : "");
    return show(c, "GET", path, print_runs);
}

static int cmd_run(const ctl_t *c, int argc, char **argv) {
    if (argc != 1 || strlen(argv[0]) > 63 ||
        strspn(argv[0], "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") !=
            strlen(argv[0])) {
        return usage();
    }
    char path[128], msg[70];
    snprintf(path, sizeof path, "/api/v1/runs/%s", argv[0]);
    long status;
    cJSON *body;
    int rc = call(c, "GET", path, 0, REQUEST_TIMEOUT_S, &status, &body);
    if (rc) {
        return rc;
    }
    const cJSON *run = cJSON_GetObjectItemCaseSensitive(body, "run"), *s;
    if (c->json) {
        print_json(body);
    } else {
        printf("run       %s\ntrigger   %s\nstatus    %s\nmessage   %s\ndataset   %.0f\n"
               "graph     %s\ncreated   %s\nfinished  %s\n\n",
               str(run, "runId"), str(run, "trigger"), str(run, "status"), str(run, "message"),
               tg_json_num(run, "datasetVersion", 0), str(run, "graphVersion"),
               str(run, "createdAt"), str(run, "finishedAt"));
        printf("%-28s  %-10s  %8s  %9s  %s\n", "WORKER", "STATUS", "ATTEMPTS", "MS",
               "MESSAGE / ERROR");
        cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(run, "steps")) {
            const char *text =
                tg_json_str(s, "error") ? tg_json_str(s, "error") : tg_json_str(s, "message");
            cell(msg, sizeof msg, text);
            printf("%-28s  %-10s  %8.0f  %9.0f  %s\n", str(s, "workerId"), str(s, "status"),
                   tg_json_num(s, "attempts", 0), tg_json_num(s, "executionTimeMs", 0), msg);
        }
    }
    /* A script asking about a run learns from the exit code whether it failed. */
    const char *st = str(run, "status");
    int failed = !strcmp(st, "failed") || !strcmp(st, "timed_out") || !strcmp(st, "cancelled");
    cJSON_Delete(body);
    return failed ? EXIT_FAILED : EXIT_OK;
}

/* ---- dead letters, graphs ---------------------------------------------- */

static void print_dead_letters(const cJSON *body) {
    const cJSON *d;
    char err[70];
    printf("%-9s  %-8s  %-26s  %-36s  %s\n", "PART/OFF", "KEY", "WORKER", "ORIGINAL TOPIC",
           "ERROR");
    cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(body, "deadLetters")) {
        char where[32];
        snprintf(where, sizeof where, "%.0f/%.0f", tg_json_num(d, "partition", 0),
                 tg_json_num(d, "offset", 0));
        cell(err, sizeof err, tg_json_str(d, "error"));
        printf("%-9s  %-8s  %-26s  %-36s  %s\n", where, str(d, "key"),
               str(cJSON_GetObjectItemCaseSensitive(d, "headers"), "x-worker"),
               str(d, "originalTopic"), err);
    }
    printf("%.0f of %.0f dead letters\n", tg_json_num(body, "count", 0),
           tg_json_num(body, "total", 0));
}

static void print_replayed(const cJSON *body) {
    printf("replayed to %s as event %s (run %s)\n", str(body, "replayedTo"), str(body, "eventId"),
           str(body, "runId"));
}

static void print_graphs(const cJSON *body) {
    const cJSON *g;
    printf("   %-22s  %-8s  %7s  %7s  %8s  %-5s  %s\n", "VERSION", "STATUS", "DATASET", "NODES",
           "EDGES", "KEYS", "CREATED");
    cJSON_ArrayForEach(g, cJSON_GetObjectItemCaseSensitive(body, "graphs")) {
        const cJSON *keys = cJSON_GetObjectItemCaseSensitive(g, "keysPresent");
        printf(" %c %-22s  %-8s  %7.0f  %7.0f  %8.0f  %-5s  %s\n",
               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(g, "active")) ? '*' : ' ',
               str(g, "version"), str(g, "status"), tg_json_num(g, "datasetVersion", 0),
               tg_json_num(g, "nodeCount", 0), tg_json_num(g, "edgeCount", 0),
               cJSON_IsBool(keys) ? (cJSON_IsTrue(keys) ? "yes" : "no") : "?", str(g, "createdAt"));
    }
    if (tg_json_str(body, "redisError")) {
        printf("(Redis not asked: %s)\n", tg_json_str(body, "redisError"));
    }
}

static void print_rolled_back(const cJSON *body) {
    printf("%s (run %s)\n", str(body, "message"), str(body, "runId"));
}

static int cmd_dead_letters(const ctl_t *c, int argc, char **argv) {
    const char *limit = "20", *offset = "0";
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--limit") && i + 1 < argc) {
            limit = argv[++i];
        } else if (!strcmp(argv[i], "--offset") && i + 1 < argc) {
            offset = argv[++i];
        } else {
            return usage();
        }
    }
    if (!*limit || !*offset || strspn(limit, "0123456789") != strlen(limit) ||
        strspn(offset, "0123456789") != strlen(offset)) {
        return usage();
    }
    char path[128];
    snprintf(path, sizeof path, "/api/v1/dead-letters?limit=%s&offset=%s", limit, offset);
    return show(c, "GET", path, print_dead_letters);
}

/* replay: a dead letter back to its topic, or any event again on its own
 * topic, under a fresh event id so that the worker really runs it. */
static int cmd_replay(const ctl_t *c, int argc, char **argv) {
    const char *topic = NULL, *pos[2] = {NULL, NULL};
    int n = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--topic") && i + 1 < argc) {
            topic = argv[++i];
        } else if (n < 2 && *argv[i] && strspn(argv[i], "0123456789") == strlen(argv[i])) {
            pos[n++] = argv[i];
        } else {
            return usage();
        }
    }
    if (n != 2 || (topic && (!*topic || strlen(topic) > 200 ||
                             strspn(topic, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                           "0123456789._-") != strlen(topic)))) {
        return usage();
    }
    char path[320];
    snprintf(path, sizeof path, "/api/v1/dead-letters/replay?partition=%s&offset=%s%s%s", pos[0],
             pos[1], topic ? "&topic=" : "", topic ? topic : "");
    return show(c, "POST", path, print_replayed);
}

static int cmd_graphs(const ctl_t *c, int argc) {
    if (argc != 0) {
        return usage();
    }
    return show(c, "GET", "/api/v1/graphs?limit=100", print_graphs);
}

static int cmd_graph(const ctl_t *c, int argc, char **argv) {
    if (argc != 2 || strcmp(argv[0], "rollback") || strlen(argv[1]) > 63 ||
        strspn(argv[1], "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") !=
            strlen(argv[1])) {
        return usage();
    }
    char path[160];
    snprintf(path, sizeof path, "/api/v1/graphs/%s/activate", argv[1]);
    return show(c, "POST", path, print_rolled_back);
}

int main(int argc, char **argv) {
    ctl_t c = {{getenv("ORCHESTRATOR_URL"), getenv("API_TOKEN")}, 0};
    int i = 1;
    if (!c.client.base_url || !*c.client.base_url) {
        c.client.base_url = "http://127.0.0.1:3000";
    }
    if (i < argc && !strcmp(argv[i], "--json")) {
        c.json = 1;
        i++;
    }
    if (i >= argc) {
        return usage();
    }
    const char *cmd = argv[i++];
    int rest = argc - i;
    char **args = argv + i;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = !strcmp(cmd, "trigger")        ? cmd_trigger(&c, rest, args)
             : !strcmp(cmd, "runs")         ? cmd_runs(&c, rest, args)
             : !strcmp(cmd, "run")          ? cmd_run(&c, rest, args)
             : !strcmp(cmd, "dead-letters") ? cmd_dead_letters(&c, rest, args)
             : !strcmp(cmd, "replay")       ? cmd_replay(&c, rest, args)
             : !strcmp(cmd, "graphs")       ? cmd_graphs(&c, rest)
             : !strcmp(cmd, "graph")        ? cmd_graph(&c, rest, args)
                                            : usage();
    curl_global_cleanup();
    return rc;
}
