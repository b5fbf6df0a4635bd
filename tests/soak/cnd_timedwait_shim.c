/* Preloaded by the soak test in front of libfaketime: C11 cnd_timedwait
 * routed through pthread_cond_timedwait, which libfaketime intercepts.
 *
 * librdkafka waits on its queues with cnd_timedwait and an absolute
 * CLOCK_REALTIME deadline that it reads through timespec_get (faked). glibc's
 * cnd_timedwait calls its internal pthread_cond_timedwait directly, so
 * libfaketime never sees the wait, and the kernel waits for the simulated
 * deadline on the real clock: one clock move of 6 h and every poll hangs 6 h.
 * Going through the public pthread_cond_timedwait lets libfaketime turn the
 * deadline back into real time. glibc's cnd_t and mtx_t are its
 * pthread_cond_t and pthread_mutex_t (its own cnd_timedwait casts the same
 * way); the error mapping is glibc's thrd_err_map. */
#include <errno.h>
#include <pthread.h>
#include <threads.h>

int cnd_timedwait(cnd_t *restrict cond, mtx_t *restrict mutex,
                  const struct timespec *restrict time_point) {
    int rc = pthread_cond_timedwait((pthread_cond_t *)cond, (pthread_mutex_t *)mutex, time_point);
    switch (rc) {
    case 0:
        return thrd_success;
    case ETIMEDOUT:
        return thrd_timedout;
    case ENOMEM:
        return thrd_nomem;
    case EBUSY:
        return thrd_busy;
    default:
        return thrd_error;
    }
}
