/* The schedule: one leader, one run per tick, across restarts. */
#ifndef ORCH_SCHEDULE_H
#define ORCH_SCHEDULE_H

#include "orchestrator.h"

/* ---- the schedule (schedule.c) ----------------------------------------- */

/* Takes or keeps the schedule's leadership and, when this orchestrator
 * leads and the tick is due by the wall clock, claims it and starts its run
 * (unless a run is active). */
void schedule_check(orch_loop_t *o);

#endif
