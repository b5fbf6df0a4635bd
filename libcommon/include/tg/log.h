/* Layer 1 (process support).
 * Structured logging: one JSON object per line on stderr with time, service,
 * level, run id and message. The run id is per thread, so every line logged
 * while a message is processed carries that run's id. */
#ifndef TG_LOG_H
#define TG_LOG_H

#include "tg/error.h"

enum { TG_LOG_DEBUG = 0, TG_LOG_INFO = 1, TG_LOG_WARN = 2, TG_LOG_ERROR = 3 };

/* service is copied. */
void tg_log_init(const char *service, int level);

/* Parses "debug", "info", "warn", "error"; returns -1 when unknown. */
int tg_log_level_parse(const char *s);

/* Sets the run id logged by this thread (NULL or "" clears it). Copied. */
void tg_log_set_run_id(const char *run_id);

int tg_log_enabled(int level);
void tg_log(int level, const char *fmt, ...) TG_PRINTF(2, 3);

#define tg_debug(...)                                                                              \
    do {                                                                                           \
        if (tg_log_enabled(TG_LOG_DEBUG))                                                          \
            tg_log(TG_LOG_DEBUG, __VA_ARGS__);                                                     \
    } while (0)
#define tg_info(...) tg_log(TG_LOG_INFO, __VA_ARGS__)
#define tg_warn(...) tg_log(TG_LOG_WARN, __VA_ARGS__)
#define tg_error(...) tg_log(TG_LOG_ERROR, __VA_ARGS__)

#endif
