/* Error codes: names, retry classification and the errstr helper. */
#include "tg/error.h"
#include <stdarg.h>
#include <stdio.h>

const char *tg_err_name(int err) {
    switch (err) {
    case TG_OK:
        return "ok";
    case TG_ERR_CONFIG:
        return "config";
    case TG_ERR_INVALID:
        return "invalid";
    case TG_ERR_UNAVAILABLE:
        return "unavailable";
    case TG_ERR_TIMEOUT:
        return "timeout";
    case TG_ERR_DB:
        return "database";
    case TG_ERR_REDIS:
        return "redis";
    case TG_ERR_KAFKA:
        return "kafka";
    case TG_ERR_HTTP:
        return "http";
    case TG_ERR_NOMEM:
        return "nomem";
    case TG_ERR_NOTFOUND:
        return "not_found";
    case TG_ERR_SHUTDOWN:
        return "shutdown";
    case TG_ERR_IO:
        return "io";
    default:
        return "unknown";
    }
}

int tg_err_retryable(int err) {
    switch (err) {
    case TG_ERR_UNAVAILABLE:
    case TG_ERR_TIMEOUT:
    case TG_ERR_DB:
    case TG_ERR_REDIS:
    case TG_ERR_KAFKA:
    case TG_ERR_HTTP:
    case TG_ERR_NOMEM:
    case TG_ERR_IO:
        return 1;
    default:
        return 0;
    }
}

int tg_fail(int err, char *errstr, size_t errlen, const char *fmt, ...) {
    if (errstr && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errstr, errlen, fmt, ap);
        va_end(ap);
    }
    return err;
}
