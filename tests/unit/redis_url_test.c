/* REDIS_URL: user name, percent-decoded password, host, port and database
 * through libcurl's URL parser; every bad value is refused without the
 * password in the message. */
#include "tg/config.h"
#include "tg/redis.h"
#include "tg_test.h"
#include <stdlib.h>
#include <string.h>

static void check_url(const char *url, const char *host, int port, const char *user,
                      const char *password, int db) {
    char err[256] = "";
    tg_redis_url_t u;
    int rc = tg_redis_url_parse(url, &u, err, sizeof(err));
    CHECK(rc == TG_OK);
    if (rc) {
        fprintf(stderr, "%s: %s\n", url, err);
        return;
    }
    CHECK_STR(u.host, host);
    CHECK(u.port == port);
    CHECK(user ? u.user && !strcmp(u.user, user) : !u.user);
    CHECK(password ? u.password && !strcmp(u.password, password) : !u.password);
    CHECK(u.db == db);
    tg_redis_url_free(&u);
}

static void check_bad(const char *url, const char *want) {
    char err[256] = "";
    tg_redis_url_t u;
    CHECK(tg_redis_url_parse(url, &u, err, sizeof(err)) == TG_ERR_CONFIG);
    CHECK_STR(err, want);
    CHECK(!strstr(err, "hunter2")); /* the password never reaches a message */
}

int main(void) {
    check_url("redis://127.0.0.1:6379/0", "127.0.0.1", 6379, NULL, NULL, 0);
    check_url("redis://cache", "cache", 6379, NULL, NULL, 0);
    check_url("redis://cache/", "cache", 6379, NULL, NULL, 0);
    check_url("redis://:s3cret@cache:6380/2", "cache", 6380, NULL, "s3cret", 2);
    /* The ACL user is kept; '@', '%' and ':' in a password are percent-encoded. */
    check_url("redis://graph:p%40ss%25w%3Ad@cache:7000/3", "cache", 7000, "graph", "p@ss%w:d", 3);
    check_url("redis://graph%2Dbuilder:pw@cache", "cache", 6379, "graph-builder", "pw", 0);
    check_url("redis://[::1]:6381/1", "::1", 6381, NULL, NULL, 1);
    check_url("REDIS://Cache:1/15", "Cache", 1, NULL, NULL, 15);

    check_bad("http://cache/0", "REDIS_URL: must start with redis://");
    check_bad("redis://:hunter2@/0", "REDIS_URL: not a valid URL (No host part in the URL)");
    check_bad("redis://:hunter2@cache:99999/0",
              "REDIS_URL: not a valid URL (Port number was not a decimal number between 0 and "
              "65535)");
    check_bad("redis://:hunter2@cache/zero",
              "REDIS_URL: the database (the path) must be a number 0-1000");
    check_bad("redis://:hunter2@cache/1/2",
              "REDIS_URL: the database (the path) must be a number 0-1000");

    /* The configuration refuses a bad REDIS_URL at start-up. */
    tg_config_t cfg;
    char err[256];
    setenv("REDIS_URL", "redis://:hunter2@cache/x", 1);
    CHECK(tg_config_load(&cfg, "test", TG_NEED_REDIS, 8080, err, sizeof(err)) == TG_ERR_CONFIG);
    CHECK_STR(err, "REDIS_URL: the database (the path) must be a number 0-1000");
    setenv("REDIS_URL", "redis://graph:p%40ss@cache:6379/1", 1);
    CHECK(tg_config_load(&cfg, "test", TG_NEED_REDIS, 8080, err, sizeof(err)) == TG_OK);
    TG_TEST_END();
}
