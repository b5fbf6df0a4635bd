/* Configuration: every bad or missing value names the variable. */
#include "tg/config.h"
#include "tg_test.h"
#include <stdlib.h>

static void clear_env(void) {
    const char *vars[] = {"KAFKA_BROKERS", "DATABASE_URL",      "REDIS_URL",   "ODATA_URL",
                          "HTTP_PORT",     "LOG_LEVEL",         "S3_ENDPOINT", "S3_ACCESS_KEY",
                          "S3_SECRET_KEY", "CONNECT_TIMEOUT_S", "TOPIC_PREFIX"};
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
        unsetenv(vars[i]);
    }
}

static int load(unsigned needs, char *err, size_t len) {
    tg_config_t cfg;
    return tg_config_load(&cfg, "test", needs, 8080, err, len);
}

int main(void) {
    char err[256];
    tg_config_t cfg;

    clear_env();
    CHECK(load(TG_NEED_KAFKA, err, sizeof(err)) == TG_ERR_CONFIG);
    CHECK_STR(err, "KAFKA_BROKERS: not set");

    setenv("KAFKA_BROKERS", "127.0.0.1:9092", 1);
    CHECK(load(TG_NEED_KAFKA | TG_NEED_PG, err, sizeof(err)) == TG_ERR_CONFIG);
    CHECK_STR(err, "DATABASE_URL: not set");

    setenv("DATABASE_URL", "postgresql://u@h/db", 1);
    setenv("REDIS_URL", "http://nope", 1);
    CHECK(load(TG_NEED_KAFKA | TG_NEED_PG | TG_NEED_REDIS, err, sizeof(err)) == TG_ERR_CONFIG);
    CHECK_STR(err, "REDIS_URL: \"http://nope\" is not a valid URL");

    setenv("REDIS_URL", "redis://127.0.0.1:6379/0", 1);
    setenv("HTTP_PORT", "70000", 1);
    CHECK(load(TG_NEED_REDIS, err, sizeof(err)) == TG_ERR_CONFIG);
    CHECK_STR(err, "HTTP_PORT: 70000 is out of range [0, 65535]");

    setenv("HTTP_PORT", "80x", 1);
    CHECK(load(0, err, sizeof(err)) == TG_ERR_CONFIG);
    CHECK_STR(err, "HTTP_PORT: \"80x\" is not an integer");
    unsetenv("HTTP_PORT");

    setenv("LOG_LEVEL", "loud", 1);
    CHECK(load(0, err, sizeof(err)) == TG_ERR_CONFIG);
    CHECK_STR(err, "LOG_LEVEL: \"loud\" is not one of debug, info, warn, error");
    unsetenv("LOG_LEVEL");

    setenv("S3_ENDPOINT", "http://127.0.0.1:9000", 1);
    CHECK(load(0, err, sizeof(err)) == TG_ERR_CONFIG);
    setenv("S3_ACCESS_KEY", "a", 1);
    setenv("S3_SECRET_KEY", "b", 1);
    CHECK(load(0, err, sizeof(err)) == TG_OK);

    setenv("TOPIC_PREFIX", "staging.", 1);
    CHECK(tg_config_load(&cfg, "svc", TG_NEED_KAFKA | TG_NEED_PG | TG_NEED_REDIS, 8081, err,
                         sizeof(err)) == TG_OK);
    CHECK(cfg.http_port == 8081);
    CHECK(cfg.connect_timeout_s == 10);
    char topic[64];
    CHECK_STR(tg_topic(&cfg, "pipeline.trigger", topic, sizeof(topic)), "staging.pipeline.trigger");

    long n;
    setenv("X_BOOL", "maybe", 1);
    int b;
    CHECK(tg_env_bool("X_BOOL", 0, &b, err, sizeof(err)) == TG_ERR_CONFIG);
    CHECK(tg_env_long("X_UNSET", 42, 0, 100, &n, err, sizeof(err)) == TG_OK && n == 42);
    TG_TEST_END();
}
