/* The admin alert of a step that gave up, POSTed as JSON to
 * ALERT_WEBHOOK_URL by a thread of its own, so that a slow or dead webhook
 * never delays tracking. Alerts wait in a bounded queue; when it is full a
 * new alert is dropped with a warning (the ALERT log line and
 * tg_dead_letters_total still say it happened). */
#ifndef ORCH_ALERT_H
#define ORCH_ALERT_H

#include <stddef.h>
#include <stdint.h>

#define ORCH_ALERT_QUEUE 64        /* alerts waiting at most */
#define ORCH_ALERT_TIMEOUT_MS 5000 /* one webhook request at most */

typedef struct orch_alerts_s orch_alerts_t;

/* Starts the sender for url. Returns NULL (with errstr) when the thread
 * cannot start. The caller owns the handle: orch_alerts_stop frees it. */
orch_alerts_t *orch_alerts_start(const char *url, char *errstr, size_t errlen);

/* Queues one alert; takes a copy of json_body. Never blocks on the network.
 * Returns 0, or -1 when the alert was dropped (queue full, out of memory). */
int orch_alerts_post(orch_alerts_t *a, const char *json_body);

/* Sends what is still queued for at most grace_ms, then stops the thread
 * and frees a (NULL is a no-op). */
void orch_alerts_stop(orch_alerts_t *a, int64_t grace_ms);

#endif
