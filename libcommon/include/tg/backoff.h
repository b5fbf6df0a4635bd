/* Layer 0 (base).
 * Retry schedules: exponential backoff for reconnects, and the pipeline's
 * delay schedule for failed steps (specification: 1 minute, then 5). */
#ifndef TG_BACKOFF_H
#define TG_BACKOFF_H

#include <stdint.h>

/* Delay before reconnect attempt n (1-based): base * 2^(n-1), capped at max,
 * with +-jitter_pct percent jitter drawn from *seed (0 = none). */
int64_t tg_backoff_ms(int attempt, int64_t base_ms, int64_t max_ms, int jitter_pct, unsigned *seed);

/* Parses a comma list of delays in seconds, e.g. "60,300", into out (at most
 * max entries). Returns the count, or -1 when malformed or empty. */
int tg_delay_schedule_parse(const char *s, int64_t *out_ms, int max);

/* Sleeps up to ms, waking early when *stop becomes non-zero. */
void tg_sleep_ms(int64_t ms, volatile int *stop);

#endif
