/* Reading the dead-letter topic for GET /api/v1/dead-letters: a consumer
 * without a group position (assign, never commit) reads the newest messages
 * of each partition, which are merged newest first. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deadletters.h"
#include "orchestrator.h"
#include "tg/topics.h"

#define DL_READ_TIMEOUT_MS 10000
#define DL_QUERY_TIMEOUT_MS 5000

typedef struct {
    int64_t ts;
    cJSON *item;
} dl_entry_t;

typedef struct {
    dl_entry_t *v;
    size_t n, cap;
} dl_list_t;

static cJSON *message_json(const rd_kafka_message_t *m) {
    cJSON *item = cJSON_CreateObject(), *headers = cJSON_CreateObject();
    rd_kafka_timestamp_type_t tstype;
    cJSON_AddNumberToObject(item, "partition", m->partition);
    cJSON_AddNumberToObject(item, "offset", (double)m->offset);
    cJSON_AddNumberToObject(item, "timestamp", (double)rd_kafka_message_timestamp(m, &tstype));
    if (m->key) {
        char *key = strndup(m->key, m->key_len);
        cJSON_AddItemToObject(item, "key", key ? cJSON_CreateString(key) : cJSON_CreateNull());
        free(key);
    } else {
        cJSON_AddNullToObject(item, "key");
    }
    rd_kafka_headers_t *hdrs = NULL;
    if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char *name;
        const void *val;
        size_t len;
        for (size_t i = 0; !rd_kafka_header_get_all(hdrs, i, &name, &val, &len); i++) {
            char *text = val ? strndup(val, len) : NULL;
            cJSON_AddItemToObject(headers, name,
                                  text ? cJSON_CreateString(text) : cJSON_CreateNull());
            free(text);
        }
    }
    const cJSON *error = cJSON_GetObjectItemCaseSensitive(headers, "x-error");
    cJSON_AddStringToObject(item, "error", cJSON_IsString(error) ? error->valuestring : "");
    const cJSON *orig = cJSON_GetObjectItemCaseSensitive(headers, "x-original-topic");
    if (cJSON_IsString(orig)) {
        cJSON_AddStringToObject(item, "originalTopic", orig->valuestring);
    } else {
        cJSON_AddNullToObject(item, "originalTopic");
    }
    cJSON_AddItemToObject(item, "headers", headers);
    /* The value as JSON when it is JSON (an envelope), else as text. */
    cJSON *value = m->payload ? tg_json_parse(m->payload, m->len, TG_JSON_MAX_DEPTH) : NULL;
    if (!value && m->payload) {
        char *text = strndup(m->payload, m->len);
        value = text ? cJSON_CreateString(text) : NULL;
        free(text);
    }
    cJSON_AddItemToObject(item, "value", value ? value : cJSON_CreateNull());
    return item;
}

static int list_add(dl_list_t *l, const rd_kafka_message_t *m) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        dl_entry_t *v = realloc(l->v, cap * sizeof *v);
        if (!v) {
            return TG_ERR_NOMEM;
        }
        l->v = v;
        l->cap = cap;
    }
    rd_kafka_timestamp_type_t tstype;
    l->v[l->n].ts = rd_kafka_message_timestamp(m, &tstype);
    l->v[l->n].item = message_json(m);
    l->n++;
    return TG_OK;
}

static int newest_first(const void *a, const void *b) {
    const dl_entry_t *x = a, *y = b;
    return x->ts < y->ts ? 1 : x->ts > y->ts ? -1 : 0;
}

/* Reads from each partition's start offset to its high watermark. */
static int read_all(rd_kafka_t *rk, rd_kafka_topic_partition_list_t *list, int64_t expected,
                    dl_list_t *out, char *errstr, size_t errlen) {
    rd_kafka_resp_err_t err = rd_kafka_assign(rk, list);
    if (err) {
        return tg_fail(TG_ERR_KAFKA, errstr, errlen, "kafka: %s", rd_kafka_err2str(err));
    }
    int64_t deadline = tg_mono_ms() + DL_READ_TIMEOUT_MS;
    int eofs = 0, rc = TG_OK;
    while ((int64_t)out->n < expected && eofs < list->cnt && !rc) {
        if (tg_mono_ms() > deadline) {
            return tg_fail(TG_ERR_TIMEOUT, errstr, errlen,
                           "kafka: the dead letters were not read within 10 s");
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) {
            continue;
        }
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            eofs++;
        } else if (m->err) {
            rc = tg_fail(TG_ERR_KAFKA, errstr, errlen, "kafka: %s", rd_kafka_message_errstr(m));
        } else {
            rc = list_add(out, m);
        }
        rd_kafka_message_destroy(m);
    }
    return rc;
}

cJSON *deadletters_list(const orch_conf_t *conf, long limit, long offset, char *errstr,
                        size_t errlen) {
    char topic[ORCH_TOPIC_LEN];
    tg_topic(&conf->cfg, TG_TOPIC_DEAD_LETTER, topic, sizeof topic);
    char group[ORCH_TOPIC_LEN + 16];
    snprintf(group, sizeof group, "%s-dead-letters", conf->group);
    rd_kafka_t *rk = tg_kafka_reader_new(&conf->cfg, group, errstr, errlen);
    if (!rk) {
        return NULL;
    }
    int count = 0,
        rc = tg_kafka_partition_count(rk, topic, DL_QUERY_TIMEOUT_MS, &count, errstr, errlen);
    int64_t total = 0, expected = 0;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(count ? count : 1);
    for (int p = 0; !rc && p < count; p++) {
        int64_t lo, hi;
        rd_kafka_resp_err_t err =
            rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, DL_QUERY_TIMEOUT_MS);
        if (err) {
            rc = tg_fail(TG_ERR_KAFKA, errstr, errlen, "kafka: watermarks of %s [%d]: %s", topic, p,
                         rd_kafka_err2str(err));
            break;
        }
        total += hi - lo;
        if (hi > lo) {
            int64_t start = hi - (offset + limit) > lo ? hi - (offset + limit) : lo;
            rd_kafka_topic_partition_list_add(list, topic, p)->offset = start;
            expected += hi - start;
        }
    }
    dl_list_t got = {0};
    if (!rc && list->cnt > 0) {
        rc = read_all(rk, list, expected, &got, errstr, errlen);
    }
    rd_kafka_topic_partition_list_destroy(list);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    cJSON *out = NULL;
    if (!rc) {
        qsort(got.v, got.n, sizeof *got.v, newest_first);
        out = cJSON_CreateObject();
        cJSON *items = cJSON_CreateArray();
        cJSON_AddTrueToObject(out, "success");
        cJSON_AddStringToObject(out, "topic", topic);
        for (size_t i = (size_t)offset; i < got.n && i < (size_t)(offset + limit); i++) {
            cJSON_AddItemToArray(items, got.v[i].item);
            got.v[i].item = NULL;
        }
        cJSON_AddNumberToObject(out, "count", cJSON_GetArraySize(items));
        cJSON_AddItemToObject(out, "deadLetters", items);
        cJSON_AddNumberToObject(out, "total", (double)total);
        cJSON_AddNumberToObject(out, "limit", (double)limit);
        cJSON_AddNumberToObject(out, "offset", (double)offset);
    }
    for (size_t i = 0; i < got.n; i++) {
        cJSON_Delete(got.v[i].item);
    }
    free(got.v);
    return out;
}
