/* Configuration from the environment, validated once at start-up. */
#include "tg/config.h"
#include "tg/log.h"
#include "tg/redis.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *tg_env_str(const char *name, const char *def) {
    const char *v = getenv(name);
    return (v && *v) ? v : def;
}

int tg_env_long(const char *name, long def, long min, long max, long *out, char *errstr,
                size_t errlen) {
    const char *v = tg_env_str(name, NULL);
    if (!v) {
        *out = def;
        return TG_OK;
    }
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end) {
        return tg_fail(TG_ERR_CONFIG, errstr, errlen, "%s: \"%s\" is not an integer", name, v);
    }
    if (n < min || n > max) {
        return tg_fail(TG_ERR_CONFIG, errstr, errlen, "%s: %ld is out of range [%ld, %ld]", name, n,
                       min, max);
    }
    *out = n;
    return TG_OK;
}

int tg_env_double(const char *name, double def, double min, double max, double *out, char *errstr,
                  size_t errlen) {
    const char *v = tg_env_str(name, NULL);
    if (!v) {
        *out = def;
        return TG_OK;
    }
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || end == v || *end || d != d) {
        return tg_fail(TG_ERR_CONFIG, errstr, errlen, "%s: \"%s\" is not a number", name, v);
    }
    if (d < min || d > max) {
        return tg_fail(TG_ERR_CONFIG, errstr, errlen, "%s: %g is out of range [%g, %g]", name, d,
                       min, max);
    }
    *out = d;
    return TG_OK;
}

int tg_env_bool(const char *name, int def, int *out, char *errstr, size_t errlen) {
    const char *v = tg_env_str(name, NULL);
    if (!v) {
        *out = def;
        return TG_OK;
    }
    if (!strcasecmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes")) {
        *out = 1;
        return TG_OK;
    }
    if (!strcasecmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "no")) {
        *out = 0;
        return TG_OK;
    }
    return tg_fail(TG_ERR_CONFIG, errstr, errlen, "%s: \"%s\" is not a boolean (true/false)", name,
                   v);
}

static int require(const char *name, const char **out, char *errstr, size_t errlen) {
    *out = tg_env_str(name, NULL);
    if (!*out) {
        return tg_fail(TG_ERR_CONFIG, errstr, errlen, "%s: not set", name);
    }
    return TG_OK;
}

static int check_url_scheme(const char *name, const char *v, const char *const *schemes,
                            char *errstr, size_t errlen) {
    for (; *schemes; schemes++) {
        if (!strncmp(v, *schemes, strlen(*schemes))) {
            return TG_OK;
        }
    }
    return tg_fail(TG_ERR_CONFIG, errstr, errlen, "%s: \"%s\" is not a valid URL", name, v);
}

int tg_config_load(tg_config_t *cfg, const char *service, unsigned needs, int default_port,
                   char *errstr, size_t errlen) {
    static const char *const http_schemes[] = {"http://", "https://", NULL};
    static const char *const redis_schemes[] = {"redis://", NULL};
    long n;
    int rc;

    memset(cfg, 0, sizeof(*cfg));
    cfg->service = service;
    cfg->log_level = tg_log_level_parse(tg_env_str("LOG_LEVEL", "info"));
    if (cfg->log_level < 0) {
        return tg_fail(TG_ERR_CONFIG, errstr, errlen,
                       "LOG_LEVEL: \"%s\" is not one of debug, info, warn, error",
                       tg_env_str("LOG_LEVEL", ""));
    }
    if ((rc = tg_env_long("HTTP_PORT", default_port, 0, 65535, &n, errstr, errlen))) {
        return rc;
    }
    cfg->http_port = (int)n;
    if ((rc = tg_env_long("PROBE_PORT", 0, 0, 65535, &n, errstr, errlen))) {
        return rc;
    }
    if (n && n == cfg->http_port) {
        return tg_fail(TG_ERR_CONFIG, errstr, errlen,
                       "PROBE_PORT: %ld is HTTP_PORT too; the probes need a port of their own", n);
    }
    cfg->probe_port = (int)n;
    if ((rc = tg_env_long("CONNECT_TIMEOUT_S", 10, 1, 3600, &n, errstr, errlen))) {
        return rc;
    }
    cfg->connect_timeout_s = (int)n;
    cfg->topic_prefix = tg_env_str("TOPIC_PREFIX", "");
    cfg->api_token = tg_env_str("API_TOKEN", "");

    if ((needs & TG_NEED_KAFKA) &&
        (rc = require("KAFKA_BROKERS", &cfg->kafka_brokers, errstr, errlen))) {
        return rc;
    }
    if ((needs & TG_NEED_PG) &&
        (rc = require("DATABASE_URL", &cfg->database_url, errstr, errlen))) {
        return rc;
    }
    if (needs & TG_NEED_REDIS) {
        tg_redis_url_t u; /* taken apart here so that a bad one stops the start-up */
        if ((rc = require("REDIS_URL", &cfg->redis_url, errstr, errlen)) ||
            (rc = check_url_scheme("REDIS_URL", cfg->redis_url, redis_schemes, errstr, errlen)) ||
            (rc = tg_redis_url_parse(cfg->redis_url, &u, errstr, errlen))) {
            return rc;
        }
        tg_redis_url_free(&u);
    }
    if (needs & TG_NEED_ODATA) {
        if ((rc = require("ODATA_URL", &cfg->odata_url, errstr, errlen)) ||
            (rc = check_url_scheme("ODATA_URL", cfg->odata_url, http_schemes, errstr, errlen))) {
            return rc;
        }
    }
    cfg->s3_endpoint = tg_env_str("S3_ENDPOINT", "");
    cfg->s3_bucket = tg_env_str("S3_BUCKET", "transit-backups");
    cfg->s3_access_key = tg_env_str("S3_ACCESS_KEY", "");
    cfg->s3_secret_key = tg_env_str("S3_SECRET_KEY", "");
    cfg->s3_region = tg_env_str("S3_REGION", "us-east-1");
    if (*cfg->s3_endpoint) {
        if ((rc =
                 check_url_scheme("S3_ENDPOINT", cfg->s3_endpoint, http_schemes, errstr, errlen))) {
            return rc;
        }
        if (!*cfg->s3_access_key || !*cfg->s3_secret_key) {
            return tg_fail(TG_ERR_CONFIG, errstr, errlen,
                           "S3_ACCESS_KEY: S3_ENDPOINT is set but the access key or "
                           "S3_SECRET_KEY is not");
        }
    }
    return TG_OK;
}

const char *tg_topic(const tg_config_t *cfg, const char *base, char *out, size_t outlen) {
    snprintf(out, outlen, "%s%s", cfg->topic_prefix ? cfg->topic_prefix : "", base);
    return out;
}
