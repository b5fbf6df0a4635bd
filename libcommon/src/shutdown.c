/* The shutdown flag and the signal handlers that set it. */
#include "tg/shutdown.h"

#include <string.h>

volatile sig_atomic_t tg_shutdown_requested = 0;
static volatile int *volatile mirror;

static void on_shutdown_signal(int sig) {
    (void)sig;
    tg_shutdown_requested = 1;
    volatile int *also = mirror;
    if (also) {
        *also = 1;
    }
}

void tg_shutdown_mirror(volatile int *also) {
    mirror = also;
}

void tg_signals_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_shutdown_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}
