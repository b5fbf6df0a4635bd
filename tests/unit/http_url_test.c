/* How odata-sync-worker follows next links and guards its credentials: a
 * next link resolved against its page, the origin the credentials belong to,
 * and a request to any other origin refused before anything is sent. */
#include "tg/http.h"
#include "tg_test.h"
#include <stdlib.h>
#include <string.h>

static void check_resolve(const char *base, const char *ref, const char *want) {
    char *got = tg_url_resolve(base, ref);
    CHECK_STR(got, want);
    free(got);
}

static void check_origin(const char *url, const char *want) {
    char origin[TG_URL_ORIGIN_MAX], err[200] = "";
    int rc = tg_url_origin(url, origin, err, sizeof(err));
    CHECK(want ? rc == TG_OK : rc == TG_ERR_INVALID);
    CHECK_STR(want ? origin : err, want ? want : err);
    CHECK(want || (*err && !strstr(err, "pw"))); /* the error names no secret */
}

/* A request to another origin than the credentials' own is refused before
 * anything is sent (port 9 on loopback: nothing would answer anyway). */
static void check_credentials_stay_home(void) {
    char err[300];
    tg_http_response_t resp;
    tg_http_opts_t opts = {.user = "u",
                           .password = "pw-secret",
                           .auth_origin = "http://127.0.0.1:8080",
                           .connect_timeout_ms = 200};
    CHECK(tg_http_get("http://127.0.0.1:9/odata/Stops", &opts, &resp, err, sizeof(err)) ==
          TG_ERR_INVALID);
    CHECK_STR(err, "http: not sending credentials meant for http://127.0.0.1:8080 to "
                   "http://127.0.0.1:9; request refused");
    CHECK(!strstr(err, "pw-secret"));
    tg_http_response_free(&resp);
    opts = (tg_http_opts_t){
        .bearer = "tok", .auth_origin = "http://127.0.0.1:8080", .connect_timeout_ms = 200};
    CHECK(tg_http_get("HTTP://127.0.0.1:9/x", &opts, &resp, err, sizeof(err)) == TG_ERR_INVALID);
    tg_http_response_free(&resp);
    /* Same origin, or no credentials at all: the request goes out (and finds
     * nobody on port 9). */
    opts.auth_origin = "http://127.0.0.1:9";
    CHECK(tg_http_get("http://127.0.0.1:9/x", &opts, &resp, err, sizeof(err)) ==
          TG_ERR_UNAVAILABLE);
    tg_http_response_free(&resp);
    opts = (tg_http_opts_t){.auth_origin = "http://127.0.0.1:8080", .connect_timeout_ms = 200};
    CHECK(tg_http_get("http://127.0.0.1:9/x", &opts, &resp, err, sizeof(err)) ==
          TG_ERR_UNAVAILABLE);
    tg_http_response_free(&resp);
}

int main(void) {
    tg_http_global_init();
    /* OData next links: relative to the page they came on, they stay on its
     * service and path; absolute, they go where they say. */
    const char *page = "http://h:8080/odata/Stops?$top=10";
    check_resolve(page, "Stops?$skiptoken=1000", "http://h:8080/odata/Stops?$skiptoken=1000");
    check_resolve(page, "/other/Stops?p=2", "http://h:8080/other/Stops?p=2");
    check_resolve(page, "http://x/y?z=1", "http://x/y?z=1");
    check_resolve("http://h/svc/odata.svc/Stops", "Stops?$skip=5",
                  "http://h/svc/odata.svc/Stops?$skip=5");

    /* The origin credentials belong to: one spelling per origin (case and
     * default ports do not make another), never the credentials in a URL. */
    check_origin("http://h:8080/odata/Stops?$top=10", "http://h:8080");
    check_origin("HTTP://Example.COM/odata/", "http://example.com:80");
    check_origin("https://example.com/x", "https://example.com:443");
    check_origin("https://user:pw@example.com:8443/x", "https://example.com:8443");
    check_origin("http://[::1]:3000/odata", "http://[::1]:3000");
    check_origin("Stops?$skiptoken=2", NULL);
    check_origin("http://user:pw@/x", NULL);
    check_credentials_stay_home();
    TG_TEST_END();
}
