/* Deadline arithmetic of the worker loop: the earlier of the step timeout
 * and the event's x-deadline, time left, the header's format, the budget
 * named in "timed out after N s". */
#include "tg/worker.h"
#include "tg_test.h"
#include <stdint.h>

int main(void) {
    const int64_t now = 1767225600000; /* 2026-01-01T00:00:00Z */

    /* The step's own timeout, unless the event's deadline comes first. */
    CHECK(tg_deadline_pick(now, 600, 0) == now + 600000);
    CHECK(tg_deadline_pick(now, 600, now + 5000) == now + 5000);
    CHECK(tg_deadline_pick(now, 3, now + 600000) == now + 3000);
    CHECK(tg_deadline_pick(now, 600, now - 1000) == now - 1000); /* already passed */
    CHECK(tg_deadline_pick(now, 600, -5) == now + 600000);       /* nonsense: ignored */

    CHECK(tg_deadline_remaining_ms(now + 2500, now) == 2500);
    CHECK(tg_deadline_remaining_ms(now, now) == 0);
    CHECK(tg_deadline_remaining_ms(now - 1, now) == 0);

    int64_t d = 7;
    CHECK(tg_deadline_parse("1767225605000", &d) == TG_OK && d == now + 5000);
    CHECK(tg_deadline_parse("0", &d) == TG_OK && d == 0);
    d = 7;
    CHECK(tg_deadline_parse("", &d) == TG_ERR_INVALID && d == 7);
    CHECK(tg_deadline_parse(NULL, &d) == TG_ERR_INVALID && d == 7);
    CHECK(tg_deadline_parse("-1", &d) == TG_ERR_INVALID && d == 7);
    CHECK(tg_deadline_parse("12s", &d) == TG_ERR_INVALID && d == 7);
    CHECK(tg_deadline_parse(" 12", &d) == TG_ERR_INVALID && d == 7);
    CHECK(tg_deadline_parse("2026-01-01T00:00:00Z", &d) == TG_ERR_INVALID && d == 7);
    CHECK(tg_deadline_parse("9999999999999999999", &d) == TG_ERR_INVALID && d == 7);

    CHECK(tg_deadline_budget_s(now, now + 3000) == 3);
    CHECK(tg_deadline_budget_s(now, now + 2001) == 3);
    CHECK(tg_deadline_budget_s(now, now) == 0);
    CHECK(tg_deadline_budget_s(now, now - 10) == 0);

    /* The helpers steps use, on a context as the loop fills it. */
    tg_worker_ctx_t ctx = {0};
    tg_step_result_t res = {0};
    CHECK(!tg_worker_deadline_passed(&ctx)); /* outside a step: no deadline */
    CHECK(tg_worker_remaining_ms(&ctx) == INT64_MAX);
    ctx.started_ms = tg_now_ms();
    ctx.deadline_ms = ctx.started_ms + 60000;
    CHECK(!tg_worker_deadline_passed(&ctx));
    CHECK(tg_worker_remaining_ms(&ctx) > 50000);
    CHECK(tg_worker_deadline_check(&ctx, &res, "between phases") == TG_OK && res.err == TG_OK);
    ctx.started_ms -= 120000;
    ctx.deadline_ms = ctx.started_ms + 4000;
    CHECK(tg_worker_deadline_passed(&ctx) && tg_worker_remaining_ms(&ctx) == 0);
    CHECK(tg_worker_deadline_check(&ctx, &res, "after loading") == TG_ERR_TIMEOUT);
    CHECK(res.err == TG_ERR_TIMEOUT && tg_err_retryable(res.err));
    CHECK_STR(res.message, "timed out after 4 s: after loading");
    TG_TEST_END();
}
