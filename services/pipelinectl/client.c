/* pipelinectl's HTTP client on libcurl: bounded body, bearer token. */
#include "client.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg/envelope.h"
#include "tg/error.h"

#define BODY_MAX (16 * 1024 * 1024)

typedef struct {
    char *data;
    size_t len;
} buf_t;

static size_t on_data(char *ptr, size_t size, size_t n, void *arg) {
    buf_t *b = arg;
    size_t add = size * n;
    if (b->len + add > BODY_MAX) {
        return 0; /* curl reports a write error */
    }
    char *grown = realloc(b->data, b->len + add + 1);
    if (!grown) {
        return 0;
    }
    memcpy(grown + b->len, ptr, add);
    b->data = grown;
    b->len += add;
    b->data[b->len] = '\0';
    return add;
}

int ctl_request(const ctl_client_t *c, const char *method, const char *path, int prefer_async,
                long timeout_s, ctl_response_t *out, char *errstr, size_t errlen) {
    char url[2048], auth[1024];
    buf_t body = {0};
    memset(out, 0, sizeof *out);
    size_t blen = strlen(c->base_url);
    snprintf(url, sizeof url, "%.*s%s",
             (int)(blen && c->base_url[blen - 1] == '/' ? blen - 1 : blen), c->base_url, path);
    CURL *curl = curl_easy_init();
    if (!curl) {
        return tg_fail(TG_ERR_NOMEM, errstr, errlen, "curl: cannot initialise");
    }
    struct curl_slist *headers = curl_slist_append(NULL, "Accept: application/json");
    if (prefer_async) {
        headers = curl_slist_append(headers, "Prefer: respond-async");
    }
    if (c->token && *c->token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", c->token);
        headers = curl_slist_append(headers, auth);
    }
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    if (!strcmp(method, "POST")) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
    }
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, timeout_s);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(curl);
    int err = TG_OK;
    if (rc != CURLE_OK) {
        err = tg_fail(TG_ERR_HTTP, errstr, errlen, "%s: %s", url, curl_easy_strerror(rc));
    } else {
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &out->status);
        out->body = body.data ? tg_json_parse(body.data, body.len, TG_JSON_MAX_DEPTH) : NULL;
        if (!out->body) {
            err = tg_fail(TG_ERR_HTTP, errstr, errlen, "%s: HTTP %ld without a JSON body", url,
                          out->status);
        }
    }
    free(body.data);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    return err;
}
