/* Every event schema in proto/schemas carries an example that the project's
 * own envelope parser accepts and that has the schema's required fields. */
#include "tg/envelope.h"
#include "tg_test.h"
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *s = calloc(1, (size_t)n + 1);
    if (fread(s, 1, (size_t)n, f) != (size_t)n) {
        s[0] = '\0';
    }
    fclose(f);
    return s;
}

/* Returns the first required key of schema_obj missing from obj, or NULL. */
static const char *missing_required(const cJSON *schema_obj, const cJSON *obj) {
    const cJSON *req = cJSON_GetObjectItemCaseSensitive(schema_obj, "required"), *r;
    cJSON_ArrayForEach(r, req) {
        if (cJSON_IsString(r) && !cJSON_GetObjectItemCaseSensitive(obj, r->valuestring)) {
            return r->valuestring;
        }
    }
    return NULL;
}

static void check_schema(const char *path, int *checked) {
    char *text = slurp(path);
    cJSON *schema = text ? cJSON_Parse(text) : NULL;
    CHECK(schema != NULL);
    if (!schema) {
        fprintf(stderr, "%s: not JSON\n", path);
        free(text);
        return;
    }
    cJSON *example = cJSON_GetArrayItem(cJSON_GetObjectItem(schema, "examples"), 0);
    CHECK(example != NULL);
    char *ser = cJSON_PrintUnformatted(example);
    tg_envelope_t *env = NULL;
    char err[256] = "";
    int rc = tg_envelope_parse(ser, strlen(ser), &env, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "%s: example rejected: %s\n", path, err);
    }
    CHECK(rc == TG_OK);

    const cJSON *props = cJSON_GetObjectItem(schema, "properties");
    const cJSON *konst = cJSON_GetObjectItem(cJSON_GetObjectItem(props, "schema"), "const");
    if (env && cJSON_IsString(konst)) {
        CHECK_STR(env->schema, konst->valuestring);
    }
    CHECK(missing_required(schema, example) == NULL);
    const cJSON *payload_schema = cJSON_GetObjectItem(props, "payload");
    const char *miss = env ? missing_required(payload_schema, env->payload) : "payload";
    if (miss) {
        fprintf(stderr, "%s: example payload lacks required %s\n", path, miss);
    }
    CHECK(miss == NULL);

    /* The check itself must be able to fail: drop a required field. */
    const cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItem(payload_schema, "required"), 0);
    if (env && first) {
        cJSON_DeleteItemFromObject(env->payload, first->valuestring);
        CHECK(missing_required(payload_schema, env->payload) != NULL);
    }
    tg_envelope_destroy(env);
    free(ser);
    cJSON_Delete(schema);
    free(text);
    (*checked)++;
}

int main(void) {
    const char *dir = PROTO_SCHEMAS_DIR;
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    int checked = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!strstr(e->d_name, ".schema.json")) {
            continue;
        }
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        check_schema(path, &checked);
    }
    if (d) {
        closedir(d);
    }
    CHECK(checked >= 7);
    TG_TEST_END();
}
