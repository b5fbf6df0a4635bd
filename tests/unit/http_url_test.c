/* Resolving OData next links: absolute, relative to the page's URL. */
#include <stdlib.h>
#include "tg/http.h"
#include "tg_test.h"

static void check_resolve(const char *base, const char *ref, const char *want) {
    char *got = tg_url_resolve(base, ref);
    CHECK_STR(got, want);
    free(got);
}

int main(void) {
    tg_http_global_init();
    const char *page = "http://h:8080/odata/Stops?$top=10";
    check_resolve(page, "Stops?$skiptoken=1000", "http://h:8080/odata/Stops?$skiptoken=1000");
    check_resolve(page, "/other/Stops?p=2", "http://h:8080/other/Stops?p=2");
    check_resolve(page, "http://x/y?z=1", "http://x/y?z=1");
    check_resolve("http://h/svc/odata.svc/Stops", "Stops?$skip=5", "http://h/svc/odata.svc/Stops?$skip=5");
    TG_TEST_END();
}
