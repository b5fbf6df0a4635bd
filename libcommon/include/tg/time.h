/* Layer 0 (base).
 * Time. The wall and monotonic clocks, and conversions
 * between instants and UTC calendar fields done by libc (timegm, gmtime_r,
 * strftime), never by hand. ISO 8601 is written in one form only:
 * "2026-01-01T00:00:00.000Z". Nothing here reads TZ. */
#ifndef TG_TIME_H
#define TG_TIME_H

#include "tg/error.h"
#include <stddef.h>
#include <stdint.h>

/* Milliseconds since the epoch / of a monotonic clock. */
int64_t tg_now_ms(void);
int64_t tg_mono_ms(void);

/* Writes ms since the epoch as ISO 8601 UTC with milliseconds
 * ("2026-11-30T23:20:00.000Z", 24 chars + NUL); instants before 1970 too. */
void tg_time_iso(int64_t ms, char out[32]);

/* Writes the current UTC time as tg_time_iso does. */
void tg_now_iso(char out[32]);

/* Formats secs since the epoch, taken as UTC fields, with strftime's fmt.
 * Callers that keep local time as "UTC plus a fixed offset" pass the shifted
 * seconds. Returns the length written, or 0 (out = "") when it does not fit. */
size_t tg_time_format(int64_t secs, const char *fmt, char *out, size_t outlen);

/* Seconds since the epoch of a UTC calendar date and time. Returns
 * TG_ERR_INVALID when a field is out of range (month 13, February 30,
 * hour 24), TG_OK otherwise. */
int tg_time_from_utc(int year, int month, int day, int hour, int min, int sec,
                     int64_t *secs) TG_WARN_UNUSED;

#endif
