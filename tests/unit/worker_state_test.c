/* Who frees a worker's state: whatever init allocated is freed by fini,
 * also when init fails half-way (under the sanitizers' leak check a lost
 * state fails this test), and fini is never called on nothing. */
#include <stdlib.h>
#include <string.h>

#include "tg/worker.h"
#include "tg_test.h"

typedef struct {
    char *name;   /* allocated first */
    char *buffer; /* allocated second: init may fail before it */
} state_t;

static int finis;
static int fail_after_name;

static int init(tg_worker_ctx_t *ctx, char *errstr, size_t errlen) {
    state_t *st = calloc(1, sizeof *st);
    if (!st) {
        return tg_fail(TG_ERR_NOMEM, errstr, errlen, "out of memory");
    }
    ctx->state = st;
    st->name = strdup("worker");
    if (fail_after_name) {
        return tg_fail(TG_ERR_CONFIG, errstr, errlen, "SETTING: bad value");
    }
    st->buffer = malloc(64);
    return TG_OK;
}

static void fini(tg_worker_ctx_t *ctx) {
    state_t *st = ctx->state;
    finis++;
    free(st->name);
    free(st->buffer);
    free(st);
}

int main(void) {
    const tg_worker_def_t def = {.worker_id = "test", .init = init, .fini = fini};
    char err[128];

    /* init fails after allocating: the state is freed at once. */
    tg_worker_ctx_t ctx = {0};
    fail_after_name = 1;
    CHECK(tg_worker_state_init(&def, &ctx, err, sizeof err) == TG_ERR_CONFIG);
    CHECK_STR(err, "SETTING: bad value");
    CHECK(ctx.state == NULL && finis == 1);
    tg_worker_state_free(&def, &ctx); /* nothing left: fini not called again */
    CHECK(finis == 1);

    /* init succeeds: the state lives until shutdown frees it, once. */
    fail_after_name = 0;
    CHECK(tg_worker_state_init(&def, &ctx, err, sizeof err) == TG_OK);
    CHECK(ctx.state != NULL && finis == 1);
    tg_worker_state_free(&def, &ctx);
    CHECK(ctx.state == NULL && finis == 2);
    tg_worker_state_free(&def, &ctx);
    CHECK(finis == 2);

    /* A worker without init or fini. */
    const tg_worker_def_t bare = {.worker_id = "bare"};
    CHECK(tg_worker_state_init(&bare, &ctx, err, sizeof err) == TG_OK);
    tg_worker_state_free(&bare, &ctx);
    TG_TEST_END();
}
