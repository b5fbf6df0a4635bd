/* Backoff arithmetic and the retry delay schedule. */
#include "tg/backoff.h"
#include "tg_test.h"

int main(void) {
    CHECK(tg_backoff_ms(1, 200, 2000, 0, NULL) == 200);
    CHECK(tg_backoff_ms(2, 200, 2000, 0, NULL) == 400);
    CHECK(tg_backoff_ms(4, 200, 2000, 0, NULL) == 1600);
    CHECK(tg_backoff_ms(5, 200, 2000, 0, NULL) == 2000);
    CHECK(tg_backoff_ms(60, 200, 2000, 0, NULL) == 2000); /* no overflow */
    CHECK(tg_backoff_ms(0, 200, 2000, 0, NULL) == 200);

    unsigned seed = 7;
    for (int i = 0; i < 100; i++) {
        int64_t d = tg_backoff_ms(3, 1000, 60000, 20, &seed);
        CHECK(d >= 3200 && d <= 4800);
    }

    int64_t delays[4];
    CHECK(tg_delay_schedule_parse("60,300", delays, 4) == 2);
    CHECK(delays[0] == 60000 && delays[1] == 300000);
    CHECK(tg_delay_schedule_parse("0.5", delays, 4) == 1 && delays[0] == 500);
    CHECK(tg_delay_schedule_parse("", delays, 4) == -1);
    CHECK(tg_delay_schedule_parse("60,,300", delays, 4) == -1);
    CHECK(tg_delay_schedule_parse("60,abc", delays, 4) == -1);
    CHECK(tg_delay_schedule_parse("-1", delays, 4) == -1);
    CHECK(tg_delay_schedule_parse("1,2,3,4,5", delays, 4) == -1);
    TG_TEST_END();
}
