/* Layer 2 (clients).
 * Configuration from environment variables, validated once at start-up.
 * A bad or missing value yields one line naming the variable and the problem. */
#ifndef TG_CONFIG_H
#define TG_CONFIG_H

#include "tg/error.h"
#include <stddef.h>

/* Which connections a program needs; tg_config_load checks only these. */
enum {
    TG_NEED_KAFKA = 1 << 0,
    TG_NEED_PG = 1 << 1,
    TG_NEED_REDIS = 1 << 2,
    TG_NEED_ODATA = 1 << 3,
    TG_NEED_S3 = 1 << 4,
};

typedef struct tg_config_s {
    const char *service;       /* service id, e.g. "graph-builder" (static) */
    const char *kafka_brokers; /* KAFKA_BROKERS */
    const char *database_url;  /* DATABASE_URL: libpq conninfo or URI */
    const char *redis_url;     /* REDIS_URL: redis://[:password@]host[:port][/db] */
    const char *odata_url;     /* ODATA_URL */
    const char *s3_endpoint;   /* S3_ENDPOINT (empty: backups disabled) */
    const char *s3_bucket;
    const char *s3_access_key;
    const char *s3_secret_key;
    const char *s3_region;
    const char *api_token;    /* API_TOKEN (empty: no auth) */
    const char *topic_prefix; /* TOPIC_PREFIX, prepended to every topic name */
    int http_port;            /* HTTP_PORT */
    int probe_port;           /* PROBE_PORT: the probes' own listener (0: none) */
    int log_level;            /* LOG_LEVEL: debug|info|warn|error */
    int connect_timeout_s;    /* CONNECT_TIMEOUT_S: give up connecting after this */
} tg_config_t;

/* Fills cfg from the environment. Strings point into the environment and
 * stay valid for the life of the process. default_port is used when
 * HTTP_PORT is unset. Returns TG_OK or TG_ERR_CONFIG with errstr like
 * "DATABASE_URL: not set". */
int tg_config_load(tg_config_t *cfg, const char *service, unsigned needs, int default_port,
                   char *errstr, size_t errlen) TG_WARN_UNUSED;

/* Reads an optional string: the variable's value, or def when unset/empty. */
const char *tg_env_str(const char *name, const char *def);

/* Reads an optional integer within [min, max]; def when unset. */
int tg_env_long(const char *name, long def, long min, long max, long *out, char *errstr,
                size_t errlen) TG_WARN_UNUSED;

/* Reads an optional number within [min, max]; def when unset. */
int tg_env_double(const char *name, double def, double min, double max, double *out, char *errstr,
                  size_t errlen) TG_WARN_UNUSED;

/* Reads an optional boolean (1/0/true/false/yes/no); def when unset. */
int tg_env_bool(const char *name, int def, int *out, char *errstr, size_t errlen) TG_WARN_UNUSED;

/* Builds a topic name: TOPIC_PREFIX + base, into out. */
const char *tg_topic(const tg_config_t *cfg, const char *base, char *out, size_t outlen);

#endif
