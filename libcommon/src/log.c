/* Structured JSON logging, one object per line, with the thread's run id. */
#include "tg/log.h"
#include "tg/text.h"
#include "tg/time.h"
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static char log_service[64] = "tg";
static int log_level = TG_LOG_INFO;
static _Thread_local char log_run_id[64];
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void tg_log_init(const char *service, int level) {
    snprintf(log_service, sizeof(log_service), "%s", service);
    log_level = level;
}

int tg_log_level_parse(const char *s) {
    static const char *const names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++) {
        if (!strcasecmp(s, names[i])) {
            return i;
        }
    }
    return -1;
}

void tg_log_set_run_id(const char *run_id) {
    snprintf(log_run_id, sizeof(log_run_id), "%s", run_id ? run_id : "");
}

int tg_log_enabled(int level) {
    return level >= log_level;
}

void tg_log(int level, const char *fmt, ...) {
    static const char *const names[] = {"debug", "info", "warn", "error"};
    if (!tg_log_enabled(level)) {
        return;
    }
    char msg[4096], esc[8192], run[140], ts[40];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    tg_json_escape(esc, sizeof(esc), msg);
    tg_json_escape(run, sizeof(run), log_run_id);
    tg_now_iso(ts);

    pthread_mutex_lock(&log_lock);
    fprintf(stderr,
            "{\"time\":\"%s\",\"service\":\"%s\",\"level\":\"%s\",\"runId\":%s%s%s,\"message\":\"%"
            "s\"}\n",
            ts, log_service,
            names[level < 0   ? 0
                  : level > 3 ? 3
                              : level],
            *run ? "\"" : "", *run ? run : "null", *run ? "\"" : "", esc);
    fflush(stderr);
    pthread_mutex_unlock(&log_lock);
}
