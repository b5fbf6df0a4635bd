/* The webhook sender: one thread, one queue (see alert.h). */
#include "alert.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "tg/envelope.h" /* tg_mono_ms */
#include "tg/error.h"
#include "tg/log.h"

struct orch_alerts_s {
    char *url;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    char *queue[ORCH_ALERT_QUEUE]; /* ring of JSON bodies */
    size_t head, count;
    int stopping;
    int64_t stop_by_ms; /* monotonic: give up on the rest after this */
};

static size_t discard(void *ptr, size_t size, size_t n, void *arg) {
    (void)ptr;
    (void)arg;
    return size * n;
}

static void send_one(const char *url, const char *body, long timeout_ms) {
    CURL *curl = curl_easy_init();
    if (!curl) {
        tg_warn("ALERT_WEBHOOK_URL: out of memory");
        return;
    }
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
    CURLcode cc = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (cc != CURLE_OK) {
        tg_warn("ALERT_WEBHOOK_URL: %s", curl_easy_strerror(cc));
    } else if (status >= 300) {
        tg_warn("ALERT_WEBHOOK_URL: HTTP %ld", status);
    }
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(curl);
}

static void *sender(void *arg) {
    orch_alerts_t *a = arg;
    pthread_mutex_lock(&a->lock);
    for (;;) {
        while (!a->count && !a->stopping) {
            pthread_cond_wait(&a->cond, &a->lock);
        }
        int64_t left = a->stop_by_ms - tg_mono_ms();
        if (!a->count || (a->stopping && left <= 0)) {
            break;
        }
        char *body = a->queue[a->head];
        a->head = (a->head + 1) % ORCH_ALERT_QUEUE;
        a->count--;
        long timeout = ORCH_ALERT_TIMEOUT_MS;
        if (a->stopping && left < timeout) {
            timeout = (long)left;
        }
        pthread_mutex_unlock(&a->lock);
        send_one(a->url, body, timeout);
        free(body);
        pthread_mutex_lock(&a->lock);
    }
    pthread_mutex_unlock(&a->lock);
    return NULL;
}

orch_alerts_t *orch_alerts_start(const char *url, char *errstr, size_t errlen) {
    orch_alerts_t *a = calloc(1, sizeof *a);
    if (!a || !(a->url = strdup(url))) {
        free(a);
        tg_fail(TG_ERR_NOMEM, errstr, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->cond, NULL);
    if (pthread_create(&a->thread, NULL, sender, a) != 0) {
        tg_fail(TG_ERR_NOMEM, errstr, errlen, "ALERT_WEBHOOK_URL: cannot start its thread");
        pthread_cond_destroy(&a->cond);
        pthread_mutex_destroy(&a->lock);
        free(a->url);
        free(a);
        return NULL;
    }
    return a;
}

int orch_alerts_post(orch_alerts_t *a, const char *json_body) {
    char *copy = strdup(json_body);
    pthread_mutex_lock(&a->lock);
    int ok = copy && a->count < ORCH_ALERT_QUEUE && !a->stopping;
    if (ok) {
        a->queue[(a->head + a->count) % ORCH_ALERT_QUEUE] = copy;
        a->count++;
        pthread_cond_signal(&a->cond);
    }
    pthread_mutex_unlock(&a->lock);
    if (!ok) {
        if (copy) {
            tg_warn("ALERT_WEBHOOK_URL: alert dropped (%d alerts are already waiting)",
                    ORCH_ALERT_QUEUE);
        } else {
            tg_warn("ALERT_WEBHOOK_URL: alert dropped (out of memory)");
        }
        free(copy);
        return -1;
    }
    return 0;
}

void orch_alerts_stop(orch_alerts_t *a, int64_t grace_ms) {
    if (!a) {
        return;
    }
    pthread_mutex_lock(&a->lock);
    a->stopping = 1;
    a->stop_by_ms = tg_mono_ms() + grace_ms;
    pthread_cond_signal(&a->cond);
    pthread_mutex_unlock(&a->lock);
    pthread_join(a->thread, NULL);
    while (a->count) {
        tg_warn("ALERT_WEBHOOK_URL: alert not sent before shutdown");
        free(a->queue[a->head]);
        a->head = (a->head + 1) % ORCH_ALERT_QUEUE;
        a->count--;
    }
    pthread_cond_destroy(&a->cond);
    pthread_mutex_destroy(&a->lock);
    free(a->url);
    free(a);
}
