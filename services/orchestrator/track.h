/* Tracking: the workers' events turned into run and step state. */
#ifndef ORCH_TRACK_H
#define ORCH_TRACK_H

#include "orchestrator.h"

/* ---- tracking (track.c) ------------------------------------------------ */

/* Handles one message of the tracking group. Returns TG_OK when it may be
 * marked done; a retryable error asks the caller to see it again later. */
int track_message(orch_loop_t *o, const rd_kafka_message_t *msg);

/* Marks timed-out steps and retries them like retryable failures. */
void track_sweep_timeouts(orch_loop_t *o);

#endif
