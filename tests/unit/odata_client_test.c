/* odata-sync-worker client: request URLs ($select, $top/$skip, encoded
 * names), the v4, v3 and v2 answer shapes, next links resolved against the
 * page's URL, OData error bodies and cut-short answers. */
#include "odata_client.h"
#include "tg/error.h"
#include "tg_test.h"
#include <stdlib.h>
#include <string.h>

static void test_urls(void) {
    odata_mapping_t m;
    char err[300];
    CHECK(odata_mapping_load(NULL, &m, err, sizeof(err)) == 0);
    char *u = odata_set_url("http://h:1/odata", &m, ODATA_STOPS, 0);
    CHECK_STR(u, "http://h:1/odata/Stops?$select=Id,Name,CityName,Latitude,Longitude");
    free(u);
    m.client_paging = 1;
    m.page_size = 500;
    m.select = 0;
    u = odata_set_url("http://h:1/odata/", &m, ODATA_ROUTES, 1000);
    CHECK_STR(u, "http://h:1/odata/Routes?$orderby=Id&$top=500&$skip=1000");
    free(u);
    /* Reserved characters of a name are escaped, the unreserved ones kept. */
    char odd[] = "Stops & Co/a~b.c_d-e?%";
    char *set = m.ent[ODATA_STOPS].entity_set;
    m.ent[ODATA_STOPS].entity_set = odd;
    u = odata_set_url("http://h:1/odata", &m, ODATA_STOPS, 0);
    CHECK_STR(u,
              "http://h:1/odata/Stops%20%26%20Co%2Fa~b.c_d-e%3F%25?$orderby=Id&$top=500&$skip=0");
    free(u);
    m.ent[ODATA_STOPS].entity_set = set;
    odata_mapping_free(&m);

    char path[512];
    snprintf(path, sizeof(path), "%s/1c-standard-odata.json", ODATA_MAPPINGS_DIR);
    CHECK(odata_mapping_load(path, &m, err, sizeof(err)) == 0);
    u = odata_set_url("http://h/base/odata/standard.odata/", &m, ODATA_STOPS, 0);
    /* Cyrillic names are percent-encoded UTF-8; the exclude property is selected too. */
    CHECK(u && strstr(u, "/Catalog_%D0%9E%D1%81%D1%82") != NULL);
    CHECK(u && strstr(u, ",DeletionMark&$orderby=Ref_Key&$top=1000&$skip=0&$format=json") != NULL);
    free(u);
    odata_mapping_free(&m);
}

/* Parses body; returns the row count, or the error code. */
static int parse(const char *body, const char **next_out, char *err, size_t errlen) {
    cJSON *root = NULL;
    const cJSON *rows = NULL;
    const char *next = NULL;
    int rc = odata_parse_page(body, strlen(body), &root, &rows, &next, err, errlen);
    if (rc) {
        return rc;
    }
    int n = cJSON_GetArraySize(rows);
    static char saved[256];
    snprintf(saved, sizeof(saved), "%s", next ? next : "(none)");
    if (next_out) {
        *next_out = saved;
    }
    cJSON_Delete(root);
    return n;
}

static void test_dialects(void) {
    char err[300];
    const char *next = NULL;
    CHECK(parse("{\"@odata.context\":\"x\",\"value\":[{\"Id\":1},{\"Id\":2}],"
                "\"@odata.nextLink\":\"Stops?$skiptoken=2\"}",
                &next, err, sizeof(err)) == 2);
    CHECK_STR(next, "Stops?$skiptoken=2");
    CHECK(parse("{\"odata.metadata\":\"x\",\"value\":[{\"Id\":1}],"
                "\"odata.nextLink\":\"http://h/Stops?p=2\"}",
                &next, err, sizeof(err)) == 1);
    CHECK_STR(next, "http://h/Stops?p=2");
    CHECK(parse("{\"d\":{\"results\":[{\"__metadata\":{},\"Id\":1}],\"__next\":\"n\"}}", &next, err,
                sizeof(err)) == 1);
    CHECK_STR(next, "n");
    CHECK(parse("{\"d\":[{\"Id\":1},{\"Id\":2},{\"Id\":3}]}", &next, err, sizeof(err)) == 3);
    CHECK_STR(next, "(none)");
    CHECK(parse("{\"value\":[]}", &next, err, sizeof(err)) == 0);

    /* Relative next links resolve against the page they came in. */
    char *u = tg_url_resolve("http://h:8/odata/Stops?$select=Id", "Stops?$skiptoken=2");
    CHECK_STR(u, "http://h:8/odata/Stops?$skiptoken=2");
    free(u);
}

static void test_errors(void) {
    char err[300];
    CHECK(parse("{\"error\":{\"code\":\"Busy\",\"message\":\"try later\"}}", NULL, err,
                sizeof(err)) == TG_ERR_HTTP);
    CHECK(strstr(err, "Busy: try later") != NULL);
    CHECK(parse("{\"odata.error\":{\"code\":\"E1\",\"message\":{\"lang\":\"en\",\"value\":\"v3 "
                "says no\"}}}",
                NULL, err, sizeof(err)) == TG_ERR_HTTP);
    CHECK(strstr(err, "E1: v3 says no") != NULL);
    CHECK(parse("{\"error\":{\"code\":\"E2\",\"message\":{\"value\":\"v2 says no\"}}}", NULL, err,
                sizeof(err)) == TG_ERR_HTTP);
    CHECK(strstr(err, "v2 says no") != NULL);
    /* A 200 cut in half: retryable, and the message says so. */
    CHECK(parse("{\"value\":[{\"Id\":1},{\"Id\"", NULL, err, sizeof(err)) == TG_ERR_UNAVAILABLE);
    CHECK(strstr(err, "cut short") != NULL);
    CHECK(parse("{\"value\":[{\"Id\":\"a\\\"b", NULL, err, sizeof(err)) == TG_ERR_UNAVAILABLE);
    CHECK(parse("{\"value\":[{\"Id\":1},{\"Id\":2}", NULL, err, sizeof(err)) == TG_ERR_UNAVAILABLE);
    CHECK(parse("", NULL, err, sizeof(err)) == TG_ERR_UNAVAILABLE);
    CHECK(parse("{\"value\":[1,2,]}", NULL, err, sizeof(err)) == TG_ERR_INVALID);
    CHECK(strstr(err, "malformed JSON") != NULL);
    CHECK(parse("[1,2]", NULL, err, sizeof(err)) == TG_ERR_INVALID);
    CHECK(parse("{\"items\":[]}", NULL, err, sizeof(err)) == TG_ERR_INVALID);
    CHECK(strstr(err, "not an OData collection") != NULL);
    CHECK(parse("{\"value\":[],\"@odata.nextLink\":5}", NULL, err, sizeof(err)) == TG_ERR_INVALID);
}

int main(void) {
    tg_http_global_init();
    test_urls();
    test_dialects();
    test_errors();
    TG_TEST_END();
}
