/* Mapping files (JSON, see README.md): parsed once at start-up; a bad file
 * stops the service with one line naming the key. The default mapping is
 * compiled in from mappings/default.json, so it is always there. */
#include "mapping.h"

#include "tg/envelope.h"
#include "tg/files.h"
#include "validate.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char default_mapping[] = {
#include "default_mapping.inc"
};

/* *out = a copy of s; TG_ERR_NOMEM when the copy fails, so that no setting
 * is silently left out. */
static int copy_str(char **out, const char *s, char *errstr, size_t errlen) {
    free(*out);
    *out = s ? strdup(s) : NULL;
    return s && !*out ? tg_fail(TG_ERR_NOMEM, errstr, errlen, "out of memory") : TG_OK;
}

static int parse_fields(const cJSON *fields, odata_kind_t k, odata_entity_map_t *em, char *errstr,
                        size_t errlen) {
    const odata_entity_t *e = &odata_entities[k];
    const cJSON *it;
    cJSON_ArrayForEach(it, fields) {
        int f = 0;
        while (f < e->nfields && strcmp(e->fields[f].key, it->string)) {
            f++;
        }
        if (f == e->nfields) {
            return tg_fail(TG_ERR_CONFIG, errstr, errlen,
                           "entities.%s.fields.%s: not a field of the data contract", e->name,
                           it->string);
        }
        if (!cJSON_IsString(it) || !it->valuestring[0]) {
            return tg_fail(TG_ERR_CONFIG, errstr, errlen,
                           "entities.%s.fields.%s: expected a property name", e->name, it->string);
        }
        int rc = copy_str(&em->fields[f], it->valuestring, errstr, errlen);
        if (rc) {
            return rc;
        }
    }
    for (int f = 0; f < e->nfields; f++) {
        if (e->fields[f].required && !em->fields[f]) {
            return tg_fail(TG_ERR_CONFIG, errstr, errlen, "entities.%s.fields.%s: missing", e->name,
                           e->fields[f].key);
        }
    }
    return TG_OK;
}

static int parse_entity(const cJSON *entities, odata_kind_t k, odata_entity_map_t *em, char *errstr,
                        size_t errlen) {
    const char *name = odata_entities[k].name;
    const cJSON *ent = cJSON_GetObjectItemCaseSensitive(entities, name);
    const char *set = tg_json_str(ent, "entitySet");
    if (!cJSON_IsObject(ent) || !set || !*set) {
        return tg_fail(TG_ERR_CONFIG, errstr, errlen, "entities.%s.entitySet: missing", name);
    }
    int rc = copy_str(&em->entity_set, set, errstr, errlen);
    if (rc) {
        return rc;
    }
    const cJSON *fields = cJSON_GetObjectItemCaseSensitive(ent, "fields");
    if (!cJSON_IsObject(fields)) {
        return tg_fail(TG_ERR_CONFIG, errstr, errlen, "entities.%s.fields: missing", name);
    }
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(ent, "exclude");
    if (ex && (!cJSON_IsObject(ex) || !ex->child || ex->child->next)) {
        return tg_fail(TG_ERR_CONFIG, errstr, errlen,
                       "entities.%s.exclude: expected one {\"Property\": value}", name);
    }
    if (ex) {
        if ((rc = copy_str(&em->exclude_field, ex->child->string, errstr, errlen))) {
            return rc;
        }
        if (!(em->exclude_value = cJSON_Duplicate(ex->child, 1))) {
            return tg_fail(TG_ERR_NOMEM, errstr, errlen, "out of memory");
        }
    }
    return parse_fields(fields, k, em, errstr, errlen);
}

/* "+09:00" -> 540 */
static int parse_local_offset(const char *s, int *out) {
    int h, m;
    char sign;
    if (sscanf(s, "%c%2d:%2d", &sign, &h, &m) != 3 || (sign != '+' && sign != '-') || h > 23 ||
        m > 59) {
        return TG_ERR_INVALID;
    }
    *out = (sign == '-' ? -1 : 1) * (h * 60 + m);
    return TG_OK;
}

static int parse_options(const cJSON *root, odata_mapping_t *m, char *errstr, size_t errlen) {
    const cJSON *paging = cJSON_GetObjectItemCaseSensitive(root, "paging");
    const char *mode = tg_json_str(paging, "mode");
    if (mode && strcmp(mode, "server") && strcmp(mode, "client")) {
        return tg_fail(TG_ERR_CONFIG, errstr, errlen, "paging.mode: expected server or client");
    }
    m->client_paging = mode && !strcmp(mode, "client");
    m->page_size = (int)tg_json_num(paging, "pageSize", 1000);
    if (m->page_size < 1 || m->page_size > 100000) {
        return tg_fail(TG_ERR_CONFIG, errstr, errlen, "paging.pageSize: expected 1..100000");
    }
    m->select = tg_json_bool(root, "select", 1);
    const char *name = tg_json_str(root, "name");
    int rc = copy_str(&m->query, tg_json_str(root, "query"), errstr, errlen);
    if (rc || (rc = copy_str(&m->name, name ? name : "unnamed", errstr, errlen))) {
        return rc;
    }
    const char *tz = tg_json_str(root, "localTimeOffset");
    if (tz && parse_local_offset(tz, &m->local_offset_min)) {
        return tg_fail(TG_ERR_CONFIG, errstr, errlen, "localTimeOffset: expected +hh:mm");
    }
    return TG_OK;
}

int odata_mapping_parse(const char *json, odata_mapping_t *m, char *errstr, size_t errlen) {
    memset(m, 0, sizeof(*m));
    cJSON *root = cJSON_Parse(json);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return tg_fail(TG_ERR_CONFIG, errstr, errlen, "not a JSON object");
    }
    int rc = parse_options(root, m, errstr, errlen);
    const cJSON *entities = cJSON_GetObjectItemCaseSensitive(root, "entities");
    if (!rc && !cJSON_IsObject(entities)) {
        rc = tg_fail(TG_ERR_CONFIG, errstr, errlen, "entities: missing");
    }
    for (int k = 0; k < ODATA_KINDS && !rc; k++) {
        rc = parse_entity(entities, (odata_kind_t)k, &m->ent[k], errstr, errlen);
    }
    cJSON_Delete(root);
    if (rc) {
        odata_mapping_free(m);
    }
    return rc;
}

int odata_mapping_load(const char *path, odata_mapping_t *m, char *errstr, size_t errlen) {
    char why[400];
    if (!path || !*path) {
        int rc = odata_mapping_parse(default_mapping, m, why, sizeof(why));
        return rc ? tg_fail(rc, errstr, errlen, "default mapping: %s", why) : TG_OK;
    }
    char *json;
    int rc = tg_file_read(path, 1 << 20, &json, NULL, why, sizeof(why));
    if (rc) {
        return tg_fail(rc == TG_ERR_NOMEM ? rc : TG_ERR_CONFIG, errstr, errlen,
                       "ODATA_MAPPING: cannot read %s", why);
    }
    rc = odata_mapping_parse(json, m, why, sizeof(why));
    free(json);
    return rc ? tg_fail(rc, errstr, errlen, "ODATA_MAPPING: %s: %s", path, why) : TG_OK;
}

void odata_mapping_free(odata_mapping_t *m) {
    for (int k = 0; k < ODATA_KINDS; k++) {
        free(m->ent[k].entity_set);
        free(m->ent[k].exclude_field);
        cJSON_Delete(m->ent[k].exclude_value);
        for (int f = 0; f < ODATA_MAX_FIELDS; f++) {
            free(m->ent[k].fields[f]);
        }
    }
    free(m->query);
    free(m->name);
    memset(m, 0, sizeof(*m));
}

/* "Stops[3] Latitude \"abc\": expected a number" */
static void report_bad(odata_report_t *rep, const char *set, long index, const char *prop,
                       const cJSON *item, const char *why) {
    char shown[80];
    if (cJSON_IsString(item)) {
        snprintf(shown, sizeof(shown), "\"%.60s\"", item->valuestring);
    } else {
        char *text = cJSON_PrintUnformatted(item);
        snprintf(shown, sizeof(shown), "%.60s", text ? text : "?");
        free(text);
    }
    odata_report_add(rep, PROBLEM_TYPE, "%s[%ld] %s %s: %s", set, index, prop, shown, why);
}

int odata_map_row(const odata_mapping_t *m, odata_kind_t kind, const cJSON *row, long index,
                  odata_dataset_t *ds, odata_report_t *rep) {
    const odata_entity_map_t *em = &m->ent[kind];
    const odata_entity_t *e = &odata_entities[kind];
    if (!cJSON_IsObject(row)) {
        odata_report_add(rep, PROBLEM_TYPE, "%s[%ld]: not an object", em->entity_set, index);
        return TG_OK;
    }
    if (em->exclude_field && cJSON_Compare(cJSON_GetObjectItemCaseSensitive(row, em->exclude_field),
                                           em->exclude_value, 1)) {
        return TG_OK;
    }
    odata_record_t *r = odata_table_add(&ds->t[kind], e->nfields);
    if (!r) {
        return TG_ERR_NOMEM;
    }
    r->source_index = index;
    ds->sorted = 0;
    for (int f = 0; f < e->nfields; f++) {
        char why[120];
        if (!em->fields[f]) {
            continue;
        }
        const cJSON *item = cJSON_GetObjectItemCaseSensitive(row, em->fields[f]);
        int rc = odata_value_convert(item, e->fields[f].type, m->local_offset_min, &r->v[f], why,
                                     sizeof(why));
        if (rc == TG_ERR_NOMEM) {
            return rc;
        }
        if (rc) {
            report_bad(rep, em->entity_set, index, em->fields[f], item, why);
        }
    }
    return TG_OK;
}
