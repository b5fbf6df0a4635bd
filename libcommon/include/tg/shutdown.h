/* Layer 0 (base).
 * The shutdown flag, set by SIGTERM/SIGINT. Every layer may
 * read it; only the signal handler installed here writes it. */
#ifndef TG_SHUTDOWN_H
#define TG_SHUTDOWN_H

#include <signal.h>

/* Set to 1 by SIGTERM/SIGINT; loops poll it with a short timeout. */
extern volatile sig_atomic_t tg_shutdown_requested;

/* Installs the handlers for SIGTERM and SIGINT and ignores SIGPIPE. */
void tg_signals_install(void);

/* A second flag the handler also sets (NULL: none), for code that polls a
 * flag of its own, such as a worker step's ctx->stop. */
void tg_shutdown_mirror(volatile int *also);

#endif
