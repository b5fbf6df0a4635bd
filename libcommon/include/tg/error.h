/* Layer 0 (base).
 * One error convention for the whole project: functions return 0 (TG_OK) on
 * success and a negative tg_err code on failure, and fill a caller's
 * errstr buffer with a sentence that names the thing and the cause. */
#ifndef TG_ERROR_H
#define TG_ERROR_H

#include <stddef.h>

#if defined(__GNUC__)
#define TG_WARN_UNUSED __attribute__((warn_unused_result))
#define TG_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define TG_WARN_UNUSED
#define TG_PRINTF(a, b)
#endif

typedef enum {
    TG_OK = 0,
    TG_ERR_CONFIG = -1,      /* bad or missing configuration */
    TG_ERR_INVALID = -2,     /* malformed or invalid input: do not retry */
    TG_ERR_UNAVAILABLE = -3, /* a server could not be reached: retry later */
    TG_ERR_TIMEOUT = -4,     /* a deadline passed: retry later */
    TG_ERR_DB = -5,          /* PostgreSQL refused a statement */
    TG_ERR_REDIS = -6,       /* Redis refused a command or went away */
    TG_ERR_KAFKA = -7,       /* Kafka produce, delivery or consume failed */
    TG_ERR_HTTP = -8,        /* an HTTP peer answered with an error */
    TG_ERR_NOMEM = -9,
    TG_ERR_NOTFOUND = -10,
    TG_ERR_SHUTDOWN = -11, /* work abandoned because the service is stopping */
    TG_ERR_IO = -12,
} tg_err_t;

/* A short stable name for the code ("invalid", "unavailable", ...). */
const char *tg_err_name(int err);

/* True when a failure with this code may succeed if the step is run again
 * later (server unavailable, timeout, database or broker trouble). */
int tg_err_retryable(int err);

/* snprintf into errstr (when errstr is not NULL) and return err. */
int tg_fail(int err, char *errstr, size_t errlen, const char *fmt, ...) TG_PRINTF(4, 5);

#endif
