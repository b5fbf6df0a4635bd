/* Virtual flight schedule: two departures a day (08:00 and 16:00 Asia/Yakutsk,
 * a fixed UTC+9) for the days of the horizon, written straight into COPY text. Dates are
 * computed with Howard Hinnant's civil-calendar algorithms rather than
 * mktime/localtime, which depend on the process's TZ and are slow per row. */
#include "virtual.h"
#include <string.h>

#define STR_(x) #x
#define STR(x) STR_(x)

static const int departures_min[] = {8 * 60, 16 * 60};
static const char row_end[] = "\t" STR(VIRTUAL_FLIGHT_SEATS) "\tt\n"; /* seats, is_virtual */

int64_t virtual_days_from_civil(int y, int m, int d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void virtual_civil_from_days(int64_t z, int *y, int *m, int *d) {
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

static char *put_digits(char *p, int v, int width) {
    for (int i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + width;
}

void virtual_format_local(int64_t local_min, char *out) {
    int64_t days = local_min >= 0 ? local_min / 1440 : -((-local_min + 1439) / 1440);
    int min = (int)(local_min - days * 1440), y, m, d;
    virtual_civil_from_days(days, &y, &m, &d);
    char *p = put_digits(out, y, 4);
    *p++ = '-';
    p = put_digits(p, m, 2);
    *p++ = '-';
    p = put_digits(p, d, 2);
    *p++ = ' ';
    p = put_digits(p, min / 60, 2);
    *p++ = ':';
    p = put_digits(p, min % 60, 2);
    memcpy(p, ":00+09:00", 10); /* with the NUL */
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
