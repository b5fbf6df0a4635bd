/* Virtual flight schedule: two departures a day (08:00 and 16:00 Asia/Yakutsk,
 * a fixed UTC+9) for the days of the horizon, written straight into COPY text. Dates are
 * formatted by tg_time_format (gmtime_r on the shifted time) rather than
 * mktime/localtime, which depend on the process's TZ. */
#include "tg/time.h"
#include "virtual.h"
#include <string.h>

#define STR_(x) #x
#define STR(x) STR_(x)

static const int departures_min[] = {8 * 60, 16 * 60};
static const char row_end[] = "\t" STR(VIRTUAL_FLIGHT_SEATS) "\tt\n"; /* seats, is_virtual */

void virtual_format_local(int64_t local_min, char *out) {
    /* Local time is UTC+9 with no DST: its fields are those of UTC at the
     * same numbers, so the UTC conversion of libc does it without TZ. */
    tg_time_format(local_min * 60, "%Y-%m-%d %H:%M:00+09:00", out, 26);
}

/* The route's fixed parts of every row, escaped once:
 *   head = "{dv}\tvirtual-flight-{route-id}-"
 *   mid  = "\t{route-id}\t{from}\t{to}\t" */
static int route_parts(tg_buf_t *head, tg_buf_t *mid, const char *dv, const virtual_route_t *r) {
    tg_buf_t rid;
    tg_buf_init(&rid);
    int rc = tg_copy_str(&rid, r->id, 0); /* ends in a tab */
    if (!rc) {
        rc = tg_buf_appendf(head, "%s\tvirtual-flight-", dv) ||
             tg_buf_append(head, rid.data, rid.len - 1) || tg_buf_append(head, "-", 1) ||
             tg_buf_append(mid, "\t", 1) || tg_buf_append(mid, rid.data, rid.len) ||
             tg_copy_str(mid, r->from.stop_id, 0) || tg_copy_str(mid, r->to.stop_id, 0);
    }
    tg_buf_free(&rid);
    return rc ? TG_ERR_NOMEM : TG_OK;
}

/* "YYYYMMDD-HHMM" of the id, then the times and the constant columns. */
static int append_flight(tg_buf_t *b, const tg_buf_t *head, const tg_buf_t *mid, int64_t dep_min,
                         int duration_min) {
    char dep[32], arr[32], stamp[16], tail[80];
    virtual_format_local(dep_min, dep);
    virtual_format_local(dep_min + duration_min, arr);
    /* dep is "YYYY-MM-DD HH:MM..." */
    memcpy(stamp, dep, 4);
    memcpy(stamp + 4, dep + 5, 2);
    memcpy(stamp + 6, dep + 8, 2);
    stamp[8] = '-';
    memcpy(stamp + 9, dep + 11, 2);
    memcpy(stamp + 11, dep + 14, 2);
    size_t n = strlen(dep);
    memcpy(tail, dep, n);
    tail[n] = '\t';
    memcpy(tail + n + 1, arr, n);
    memcpy(tail + 2 * n + 1, row_end, sizeof(row_end) - 1);
    size_t tail_len = 2 * n + sizeof(row_end);
    return tg_buf_append(b, head->data, head->len) || tg_buf_append(b, stamp, 13) ||
                   tg_buf_append(b, mid->data, mid->len) || tg_buf_append(b, tail, tail_len)
               ? TG_ERR_NOMEM
               : TG_OK;
}

int virtual_flights_append(tg_buf_t *b, const char *dataset_version, const virtual_route_t *r,
                           int64_t first_day, int days) {
    tg_buf_t head, mid;
    tg_buf_init(&head);
    tg_buf_init(&mid);
    int rc = route_parts(&head, &mid, dataset_version, r);
    for (int day = 0; !rc && day < days; day++) {
        for (size_t k = 0; !rc && k < sizeof(departures_min) / sizeof(departures_min[0]); k++) {
            rc = append_flight(b, &head, &mid, (first_day + day) * 1440 + departures_min[k],
                               r->duration_min);
        }
    }
    tg_buf_free(&head);
    tg_buf_free(&mid);
    return rc;
}
