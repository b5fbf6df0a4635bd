/* S3 PUT/GET/DELETE and ListObjectsV2 with path-style URLs, signed by
 * libcurl's AWS SigV4, for any S3-compatible server. */
#include "tg/s3.h"
#include "tg/buf.h"
#include "tg/sha256.h"
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

int tg_s3_enabled(const tg_config_t *cfg) {
    return cfg->s3_endpoint && *cfg->s3_endpoint;
}

/* A PUT's body: bytes in memory, or a file read from its current position. */
typedef struct {
    const char *data;
    FILE *file;
    size_t len, off;
} src_t;

static size_t on_read(char *out, size_t size, size_t nmemb, void *ud) {
    src_t *s = ud;
    size_t n = size * nmemb;
    if (n > s->len - s->off) {
        n = s->len - s->off;
    }
    if (s->file) {
        n = fread(out, 1, n, s->file);
        if (n == 0 && s->off < s->len) {
            return CURL_READFUNC_ABORT; /* the file ended early or cannot be read */
        }
    } else {
        memcpy(out, s->data + s->off, n);
    }
    s->off += n;
    return n;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *ud) {
    return tg_buf_append(ud, data, size * nmemb) == TG_OK ? size * nmemb : 0;
}

/* One signed request on key (a query string when it starts with '?', sent
 * to the bucket itself); body (NULL: none) for PUT with the SHA-256 of its
 * bytes, response into out. */
static int s3_request(const tg_config_t *cfg, const char *method, const char *key, src_t *body,
                      const char *body_sha256, const char *content_type, tg_buf_t *out,
                      char *errstr, size_t errlen) {
    if (!tg_s3_enabled(cfg)) {
        return tg_fail(TG_ERR_CONFIG, errstr, errlen, "S3_ENDPOINT: not set");
    }
    char url[2048], sigv4[128], userpwd[512], hdr[160], empty_hash[65];
    const char *ep = cfg->s3_endpoint;
    size_t eplen = strlen(ep);
    while (eplen && ep[eplen - 1] == '/') {
        eplen--;
    }
    snprintf(url, sizeof(url), "%.*s/%s%s%s", (int)eplen, ep, cfg->s3_bucket,
             key[0] == '?' ? "" : "/", key);
    snprintf(sigv4, sizeof(sigv4), "aws:amz:%s:s3", cfg->s3_region);
    snprintf(userpwd, sizeof(userpwd), "%s:%s", cfg->s3_access_key, cfg->s3_secret_key);
    /* S3 requires the payload hash header; curl signs what we send. */
    if (!body_sha256) {
        tg_sha256_hex("", 0, empty_hash);
        body_sha256 = empty_hash;
    }
    snprintf(hdr, sizeof(hdr), "x-amz-content-sha256: %s", body_sha256);

    CURL *h = curl_easy_init();
    if (!h) {
        return tg_fail(TG_ERR_NOMEM, errstr, errlen, "s3: cannot create a curl handle");
    }
    struct curl_slist *hdrs = curl_slist_append(NULL, hdr);
    char ct[160];
    if (content_type) {
        snprintf(ct, sizeof(ct), "Content-Type: %s", content_type);
        hdrs = curl_slist_append(hdrs, ct);
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_AWS_SIGV4, sigv4);
    curl_easy_setopt(h, CURLOPT_USERPWD, userpwd);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 60000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    if (!strcmp(method, "PUT")) {
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(h, CURLOPT_READDATA, body);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)body->len);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
    CURLcode cc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    if (cc != CURLE_OK) {
        return tg_fail(cc == CURLE_OPERATION_TIMEDOUT ? TG_ERR_TIMEOUT : TG_ERR_UNAVAILABLE, errstr,
                       errlen, "S3_ENDPOINT: %s %s: %s", method, url, curl_easy_strerror(cc));
    }
    if (status == 404) {
        return tg_fail(TG_ERR_NOTFOUND, errstr, errlen, "s3: %s %s: not found", method, url);
    }
    if (status < 200 || status >= 300) {
        return tg_fail(TG_ERR_HTTP, errstr, errlen, "s3: %s %s: HTTP %ld: %.200s", method, url,
                       status, out->data ? out->data : "");
    }
    return TG_OK;
}

int tg_s3_put(const tg_config_t *cfg, const char *key, const void *data, size_t len,
              const char *content_type, char *errstr, size_t errlen) {
    char sha[65];
    src_t src = {data, NULL, len, 0};
    tg_sha256_hex(data, len, sha);
    tg_buf_t out;
    tg_buf_init(&out);
    int rc = s3_request(cfg, "PUT", key, &src, sha, content_type, &out, errstr, errlen);
    tg_buf_free(&out);
    return rc;
}

int tg_s3_put_file(const tg_config_t *cfg, const char *key, FILE *f, const char *content_type,
                   char *errstr, size_t errlen) {
    /* S3 signs the payload's hash, so the file is read twice: once for the
     * hash, once for the upload; never whole in memory. */
    char chunk[65536], sha[65];
    src_t src = {NULL, f, 0, 0};
    tg_sha256_t *h = tg_sha256_new();
    if (!h) {
        return tg_fail(TG_ERR_NOMEM, errstr, errlen, "s3: out of memory");
    }
    rewind(f);
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        tg_sha256_update(h, chunk, n);
        src.len += n;
    }
    tg_sha256_final(h, sha);
    if (ferror(f)) {
        return tg_fail(TG_ERR_IO, errstr, errlen, "s3: PUT %s: cannot read the file", key);
    }
    rewind(f);
    tg_buf_t out;
    tg_buf_init(&out);
    int rc = s3_request(cfg, "PUT", key, &src, sha, content_type, &out, errstr, errlen);
    tg_buf_free(&out);
    return rc;
}

int tg_s3_get(const tg_config_t *cfg, const char *key, char **data, size_t *len, char *errstr,
              size_t errlen) {
    tg_buf_t out;
    tg_buf_init(&out);
    int rc = s3_request(cfg, "GET", key, NULL, NULL, NULL, &out, errstr, errlen);
    if (rc) {
        tg_buf_free(&out);
        return rc;
    }
    *data = out.data;
    *len = out.len;
    return TG_OK;
}

int tg_s3_delete(const tg_config_t *cfg, const char *key, char *errstr, size_t errlen) {
    tg_buf_t out;
    tg_buf_init(&out);
    int rc = s3_request(cfg, "DELETE", key, NULL, NULL, NULL, &out, errstr, errlen);
    tg_buf_free(&out);
    return rc == TG_ERR_NOTFOUND ? TG_OK : rc; /* already gone is what was asked */
}

/* ---- ListObjectsV2 ------------------------------------------------------ */

/* The text of the next <tag>...</tag> at or after *pos, XML entities
 * decoded, in a new string (NULL when there is none or memory ran out);
 * *pos moves past it. ListObjectsV2 answers are flat enough for this. */
static char *xml_next(const char *tag, const char **pos) {
    char open[64], close[64];
    snprintf(open, sizeof(open), "<%s>", tag);
    snprintf(close, sizeof(close), "</%s>", tag);
    const char *a = strstr(*pos, open);
    const char *b = a ? strstr(a, close) : NULL;
    if (!b) {
        return NULL;
    }
    a += strlen(open);
    *pos = b + strlen(close);
    static const struct {
        const char *ent, *ch;
    } ents[] = {{"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&apos;", "'"}};
    char *text = malloc((size_t)(b - a) + 1), *w = text;
    while (text && a < b) {
        size_t i = 0;
        while (i < sizeof(ents) / sizeof(ents[0]) && strncmp(a, ents[i].ent, strlen(ents[i].ent))) {
            i++;
        }
        if (i < sizeof(ents) / sizeof(ents[0])) {
            *w++ = ents[i].ch[0];
            a += strlen(ents[i].ent);
        } else {
            *w++ = *a++;
        }
    }
    if (text) {
        *w = '\0';
    }
    return text;
}

/* Appends the keys of one page to *keys; *token gets the next page's
 * continuation token (NULL on the last page). */
static int list_page(const char *xml, char ***keys, size_t *n, char **token) {
    const char *pos = xml;
    char *key;
    while ((key = xml_next("Key", &pos))) {
        char **grown = realloc(*keys, (*n + 1) * sizeof(**keys));
        if (!grown) {
            free(key);
            return TG_ERR_NOMEM;
        }
        *keys = grown;
        (*keys)[(*n)++] = key;
    }
    pos = xml;
    char *truncated = xml_next("IsTruncated", &pos);
    int more = truncated && !strcmp(truncated, "true");
    free(truncated);
    pos = xml;
    *token = more ? xml_next("NextContinuationToken", &pos) : NULL;
    return more && !*token ? TG_ERR_NOMEM : TG_OK;
}

int tg_s3_list(const tg_config_t *cfg, const char *prefix, char ***keys, size_t *n, char *errstr,
               size_t errlen) {
    *keys = NULL;
    *n = 0;
    CURL *h = curl_easy_init();
    if (!h) {
        return tg_fail(TG_ERR_NOMEM, errstr, errlen, "s3: cannot create a curl handle");
    }
    char *eprefix = curl_easy_escape(h, prefix, 0), *token = NULL;
    int rc = eprefix ? TG_OK : TG_ERR_NOMEM;
    do {
        char *etoken = token ? curl_easy_escape(h, token, 0) : NULL;
        tg_buf_t query, out;
        tg_buf_init(&query);
        tg_buf_init(&out);
        /* Parameters in SigV4's canonical (sorted) order, values escaped. */
        if (rc == TG_OK && (token && !etoken)) {
            rc = TG_ERR_NOMEM;
        }
        if (rc == TG_OK) {
            rc = tg_buf_appendf(&query, "?%s%s%slist-type=2&prefix=%s",
                                etoken ? "continuation-token=" : "", etoken ? etoken : "",
                                etoken ? "&" : "", eprefix);
        }
        if (rc == TG_OK) {
            rc = s3_request(cfg, "GET", query.data, NULL, NULL, NULL, &out, errstr, errlen);
        } else {
            tg_fail(rc, errstr, errlen, "s3: out of memory listing %s", prefix);
        }
        free(token);
        token = NULL;
        if (rc == TG_OK && (rc = list_page(out.data ? out.data : "", keys, n, &token))) {
            tg_fail(rc, errstr, errlen, "s3: out of memory listing %s", prefix);
        }
        curl_free(etoken);
        tg_buf_free(&query);
        tg_buf_free(&out);
    } while (rc == TG_OK && token);
    free(token);
    curl_free(eprefix);
    curl_easy_cleanup(h);
    if (rc) {
        tg_s3_keys_free(*keys, *n);
        *keys = NULL;
        *n = 0;
    }
    return rc;
}

void tg_s3_keys_free(char **keys, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(keys[i]);
    }
    free(keys);
}

/* ---- gzip ---------------------------------------------------------------- */

struct tg_gzip_s {
    z_stream zs;
    FILE *out;
    int failed; /* TG_ERR_NOMEM or TG_ERR_IO once anything failed */
};

tg_gzip_t *tg_gzip_new(FILE *out) {
    tg_gzip_t *z = calloc(1, sizeof(*z));
    if (z && deflateInit2(&z->zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        free(z);
        return NULL;
    }
    if (z) {
        z->out = out;
    }
    return z;
}

void tg_gzip_free(tg_gzip_t *z) {
    if (z) {
        deflateEnd(&z->zs);
        free(z);
    }
}

/* Runs deflate over the pending input with flush and writes its output;
 * Z_FINISH runs until the stream's end. */
static int gzip_run(tg_gzip_t *z, int flush) {
    unsigned char chunk[64 * 1024];
    int zr;
    do {
        z->zs.next_out = chunk;
        z->zs.avail_out = sizeof(chunk);
        zr = deflate(&z->zs, flush);
        if (zr == Z_STREAM_ERROR) {
            return z->failed = TG_ERR_NOMEM;
        }
        size_t have = sizeof(chunk) - z->zs.avail_out;
        if (fwrite(chunk, 1, have, z->out) != have) {
            return z->failed = TG_ERR_IO;
        }
    } while (flush == Z_FINISH ? zr != Z_STREAM_END : z->zs.avail_out == 0);
    return TG_OK;
}

int tg_gzip_write(tg_gzip_t *z, const void *data, size_t len) {
    const unsigned char *p = data;
    while (len > 0 && !z->failed) {
        uInt n = len > (1u << 30) ? (1u << 30) : (uInt)len; /* avail_in is 32 bits */
        z->zs.next_in = (unsigned char *)p;
        z->zs.avail_in = n;
        gzip_run(z, Z_NO_FLUSH);
        p += n;
        len -= n;
    }
    return z->failed;
}

int tg_gzip_finish(tg_gzip_t *z) {
    int rc = z->failed;
    if (!rc) {
        z->zs.next_in = NULL;
        z->zs.avail_in = 0;
        rc = gzip_run(z, Z_FINISH);
    }
    if (!rc && fflush(z->out) != 0) {
        rc = TG_ERR_IO;
    }
    tg_gzip_free(z);
    return rc;
}

int tg_gzip_file(FILE *in, FILE *out, char *errstr, size_t errlen) {
    tg_gzip_t *z = tg_gzip_new(out);
    char *piece = malloc(65536);
    if (!z || !piece) {
        tg_gzip_free(z);
        free(piece);
        return tg_fail(TG_ERR_NOMEM, errstr, errlen, "gzip: out of memory");
    }
    rewind(in);
    size_t n;
    int rc = TG_OK;
    while (!rc && (n = fread(piece, 1, 65536, in)) > 0) {
        rc = tg_gzip_write(z, piece, n);
    }
    free(piece);
    if (!rc && ferror(in)) {
        tg_gzip_free(z);
        return tg_fail(TG_ERR_IO, errstr, errlen, "gzip: cannot read the input");
    }
    rc = rc ? (tg_gzip_free(z), rc) : tg_gzip_finish(z);
    if (rc) {
        return tg_fail(rc, errstr, errlen, "gzip: %s",
                       rc == TG_ERR_IO ? "cannot write the output (is TMPDIR full?)"
                                       : "out of memory");
    }
    return TG_OK;
}
