/* An external merge sort of records (spool.h). A record is kept as one
 * entry of bytes, the same in memory and in a run file:
 *
 *   u32 size of what follows | i64 source index |
 *   per field: u8 flags (1 text, 2 bad) | f64 number | [u32 n | n bytes | NUL]
 *
 * so a record read back is a view into its entry (no copy per value). */
#include "spool.h"

#include "tg/buf.h"
#include "tg/files.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { FLAG_TEXT = 1, FLAG_BAD = 2 };

typedef struct {
    char *p;
    size_t cap;
} blob_t;

typedef struct {
    FILE *f;
    blob_t cur; /* the run's next entry while it has one */
    int live;
} run_t;

struct odata_spool_s {
    odata_kind_t kind;
    int nfields;
    size_t mem_limit, count;
    /* Adding: entries in buf, their offsets in off. */
    tg_buf_t buf;
    size_t *off, n, cap;
    /* Runs on disk, and the merge's heap of run indices. */
    run_t *runs;
    size_t nruns, *heap, nheap;
    /* Reading: sorted entries when everything fit in memory. */
    int reading;
    const char **sorted;
    size_t pos;
    blob_t out; /* the entry *rec points into, when merging */
    odata_value_t vals[ODATA_MAX_FIELDS];
    odata_record_t rec;
};

/* ---- entries ------------------------------------------------------------- */

static uint32_t entry_size(const char *e) {
    uint32_t n;
    memcpy(&n, e, 4);
    return n + 4;
}

/* The sort key: id ("" when missing) and source index. */
static const char *entry_key(const char *e, int64_t *index) {
    memcpy(index, e + 4, 8);
    const char *f0 = e + 12;
    return (f0[0] & FLAG_TEXT) ? f0 + 1 + 8 + 4 : "";
}

static int entry_cmp(const char *a, const char *b) {
    int64_t ia, ib;
    const char *ka = entry_key(a, &ia), *kb = entry_key(b, &ib);
    int c = strcmp(ka, kb);
    return c ? c : (ia > ib) - (ia < ib);
}

static int cmp_ptr(const void *a, const void *b) {
    return entry_cmp(*(const char *const *)a, *(const char *const *)b);
}

static void entry_decode(odata_spool_t *s, const char *e) {
    memcpy(&s->rec.source_index, e + 4, 8);
    const char *p = e + 12;
    for (int f = 0; f < s->nfields; f++) {
        odata_value_t *v = &s->vals[f];
        unsigned char flags = (unsigned char)*p++;
        memcpy(&v->num, p, 8);
        p += 8;
        v->bad = (flags & FLAG_BAD) != 0;
        v->text = NULL;
        if (flags & FLAG_TEXT) {
            uint32_t n;
            memcpy(&n, p, 4);
            v->text = (char *)(p + 4); /* a view: the spool owns the bytes */
            p += 4 + n + 1;
        }
    }
    s->rec.v = s->vals;
    s->rec.row_hash[0] = '\0';
}

static int entry_encode(tg_buf_t *b, const odata_record_t *r, int nfields) {
    size_t start = b->len;
    uint32_t size = 0;
    int64_t index = r->source_index;
    int rc = tg_buf_append(b, &size, 4) || tg_buf_append(b, &index, 8);
    for (int f = 0; f < nfields && !rc; f++) {
        const odata_value_t *v = &r->v[f];
        unsigned char flags = (unsigned char)((v->text ? FLAG_TEXT : 0) | (v->bad ? FLAG_BAD : 0));
        rc = tg_buf_append(b, &flags, 1) || tg_buf_append(b, &v->num, 8);
        if (!rc && v->text) {
            uint32_t n = (uint32_t)strlen(v->text);
            rc = tg_buf_append(b, &n, 4) || tg_buf_append(b, v->text, (size_t)n + 1);
        }
    }
    if (rc) {
        b->len = start; /* nothing half-added */
        return TG_ERR_NOMEM;
    }
    size = (uint32_t)(b->len - start - 4);
    memcpy(b->data + start, &size, 4);
    return TG_OK;
}

static int blob_reserve(blob_t *b, size_t n) {
    if (n <= b->cap) {
        return TG_OK;
    }
    char *p = realloc(b->p, n);
    if (!p) {
        return TG_ERR_NOMEM;
    }
    b->p = p;
    b->cap = n;
    return TG_OK;
}

/* ---- adding -------------------------------------------------------------- */

odata_spool_t *odata_spool_new(odata_kind_t kind, size_t mem_limit) {
    odata_spool_t *s = calloc(1, sizeof(*s));
    if (!s) {
        return NULL;
    }
    s->kind = kind;
    s->nfields = odata_entities[kind].nfields;
    s->mem_limit = mem_limit;
    tg_buf_init(&s->buf);
    return s;
}

/* Sorts the buffered entries into s->sorted (pointers into s->buf). */
static int sort_buffer(odata_spool_t *s) {
    free(s->sorted);
    s->sorted = malloc((s->n ? s->n : 1) * sizeof(*s->sorted));
    if (!s->sorted) {
        return TG_ERR_NOMEM;
    }
    for (size_t i = 0; i < s->n; i++) {
        s->sorted[i] = s->buf.data + s->off[i];
    }
    qsort(s->sorted, s->n, sizeof(*s->sorted), cmp_ptr);
    return TG_OK;
}

/* Writes the buffer as one sorted run and empties it. */
static int flush_run(odata_spool_t *s, char *errstr, size_t errlen) {
    const char *name = odata_entities[s->kind].name;
    if (sort_buffer(s)) {
        return tg_fail(TG_ERR_NOMEM, errstr, errlen, "%s: out of memory sorting", name);
    }
    run_t *runs = realloc(s->runs, (s->nruns + 1) * sizeof(*runs));
    if (!runs) {
        return tg_fail(TG_ERR_NOMEM, errstr, errlen, "%s: out of memory", name);
    }
    s->runs = runs;
    run_t *r = &s->runs[s->nruns];
    memset(r, 0, sizeof(*r));
    char why[300];
    if (!(r->f = tg_tmpfile(why, sizeof(why)))) {
        return tg_fail(TG_ERR_IO, errstr, errlen, "%s: %s", name, why);
    }
    s->nruns++;
    for (size_t i = 0; i < s->n; i++) {
        uint32_t size = entry_size(s->sorted[i]);
        if (fwrite(s->sorted[i], 1, size, r->f) != size) {
            return tg_fail(TG_ERR_IO, errstr, errlen,
                           "%s: cannot write a temporary file (is TMPDIR full?)", name);
        }
    }
    if (fflush(r->f) != 0) {
        return tg_fail(TG_ERR_IO, errstr, errlen,
                       "%s: cannot write a temporary file (is TMPDIR full?)", name);
    }
    free(s->sorted);
    s->sorted = NULL;
    tg_buf_reset(&s->buf);
    s->n = 0;
    return TG_OK;
}

int odata_spool_add(odata_spool_t *s, const odata_record_t *r, char *errstr, size_t errlen) {
    const char *name = odata_entities[s->kind].name;
    if (s->reading) {
        return tg_fail(TG_ERR_INVALID, errstr, errlen, "%s: spool already read", name);
    }
    if (s->n && s->buf.len >= s->mem_limit) {
        int rc = flush_run(s, errstr, errlen);
        if (rc) {
            return rc;
        }
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        size_t *off = realloc(s->off, cap * sizeof(*off));
        if (!off) {
            return tg_fail(TG_ERR_NOMEM, errstr, errlen, "%s: out of memory", name);
        }
        s->off = off;
        s->cap = cap;
    }
    size_t at = s->buf.len;
    if (entry_encode(&s->buf, r, s->nfields)) {
        return tg_fail(TG_ERR_NOMEM, errstr, errlen, "%s: out of memory", name);
    }
    s->off[s->n++] = at;
    s->count++;
    return TG_OK;
}

size_t odata_spool_count(const odata_spool_t *s) {
    return s->count;
}

size_t odata_spool_runs(const odata_spool_t *s) {
    return s->nruns;
}

/* ---- reading ------------------------------------------------------------- */

/* Reads run r's next entry into r->cur; r->live says whether there was one. */
static int run_advance(run_t *r, const char *name, char *errstr, size_t errlen) {
    uint32_t size;
    size_t got = fread(&size, 1, 4, r->f);
    if (got == 0 && feof(r->f)) {
        r->live = 0;
        return TG_OK;
    }
    if (got != 4) {
        return tg_fail(TG_ERR_IO, errstr, errlen, "%s: cannot read a temporary file", name);
    }
    if (blob_reserve(&r->cur, (size_t)size + 4)) {
        return tg_fail(TG_ERR_NOMEM, errstr, errlen, "%s: out of memory", name);
    }
    memcpy(r->cur.p, &size, 4);
    if (fread(r->cur.p + 4, 1, size, r->f) != size) {
        return tg_fail(TG_ERR_IO, errstr, errlen, "%s: cannot read a temporary file", name);
    }
    r->live = 1;
    return TG_OK;
}

static int heap_less(const odata_spool_t *s, size_t a, size_t b) {
    return entry_cmp(s->runs[s->heap[a]].cur.p, s->runs[s->heap[b]].cur.p) < 0;
}

static void heap_swap(odata_spool_t *s, size_t a, size_t b) {
    size_t t = s->heap[a];
    s->heap[a] = s->heap[b];
    s->heap[b] = t;
}

static void heap_down(odata_spool_t *s, size_t i) {
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < s->nheap && heap_less(s, l, m)) {
            m = l;
        }
        if (r < s->nheap && heap_less(s, r, m)) {
            m = r;
        }
        if (m == i) {
            return;
        }
        heap_swap(s, i, m);
        i = m;
    }
}

int odata_spool_rewind(odata_spool_t *s, char *errstr, size_t errlen) {
    const char *name = odata_entities[s->kind].name;
    int rc = TG_OK;
    if (!s->reading) {
        s->reading = 1;
        if (s->nruns && s->n) {
            rc = flush_run(s, errstr, errlen);
        } else if (!s->nruns && sort_buffer(s)) {
            rc = tg_fail(TG_ERR_NOMEM, errstr, errlen, "%s: out of memory sorting", name);
        }
        free(s->off);
        s->off = NULL;
        s->cap = 0;
        if (s->nruns) {
            tg_buf_free(&s->buf);
            if (!rc && !(s->heap = malloc(s->nruns * sizeof(*s->heap)))) {
                rc = tg_fail(TG_ERR_NOMEM, errstr, errlen, "%s: out of memory", name);
            }
        }
        if (rc) {
            return rc;
        }
    }
    s->pos = 0;
    s->nheap = 0;
    for (size_t i = 0; i < s->nruns; i++) {
        rewind(s->runs[i].f);
        if ((rc = run_advance(&s->runs[i], name, errstr, errlen))) {
            return rc;
        }
        if (s->runs[i].live) {
            s->heap[s->nheap++] = i;
        }
    }
    for (size_t i = s->nheap / 2; i-- > 0;) {
        heap_down(s, i);
    }
    return TG_OK;
}

int odata_spool_next(odata_spool_t *s, const odata_record_t **rec, char *errstr, size_t errlen) {
    if (!s->reading) {
        return tg_fail(TG_ERR_INVALID, errstr, errlen, "%s: spool not rewound",
                       odata_entities[s->kind].name);
    }
    if (!s->nruns) {
        if (s->pos == s->n) {
            return TG_ERR_NOTFOUND;
        }
        entry_decode(s, s->sorted[s->pos++]);
        *rec = &s->rec;
        return TG_OK;
    }
    if (!s->nheap) {
        return TG_ERR_NOTFOUND;
    }
    /* The smallest run's entry moves to s->out (a swap, no copy), then
     * that run reads its next one. */
    run_t *top = &s->runs[s->heap[0]];
    blob_t t = s->out;
    s->out = top->cur;
    top->cur = t;
    int rc = run_advance(top, odata_entities[s->kind].name, errstr, errlen);
    if (rc) {
        return rc;
    }
    if (!top->live) {
        s->heap[0] = s->heap[--s->nheap];
    }
    heap_down(s, 0);
    entry_decode(s, s->out.p);
    *rec = &s->rec;
    return TG_OK;
}

void odata_spool_free(odata_spool_t *s) {
    if (!s) {
        return;
    }
    for (size_t i = 0; i < s->nruns; i++) {
        fclose(s->runs[i].f);
        free(s->runs[i].cur.p);
    }
    free(s->runs);
    free(s->heap);
    free(s->off);
    free(s->sorted);
    free(s->out.p);
    tg_buf_free(&s->buf);
    free(s);
}
