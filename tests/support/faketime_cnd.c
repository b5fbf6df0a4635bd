/* Loaded beside libfaketime (LD_PRELOAD) when a test moves a service's
 * clock. librdkafka waits on C11 condition variables with deadlines on the
 * (faked) wall clock; glibc's cnd_timedwait() calls its pthread twin
 * internally, out of libfaketime's reach, so the deadline would lie days
 * ahead and a poll with a 100 ms timeout would never time out. Routing
 * cnd_timedwait() through the public pthread_cond_timedwait() lets
 * libfaketime translate the deadline back to the real clock. Test-only: no
 * service links it. */
#include <errno.h>
#include <pthread.h>
#include <threads.h>

int cnd_timedwait(cnd_t *restrict cond, mtx_t *restrict mtx, const struct timespec *restrict ts) {
    int rc = pthread_cond_timedwait((pthread_cond_t *)cond, (pthread_mutex_t *)mtx, ts);
    return rc == 0 ? thrd_success : rc == ETIMEDOUT ? thrd_timedout : thrd_error;
}
