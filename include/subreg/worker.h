/* worker: a background thread that runs rounds — the recovery sweep, the
 * publication scheduler, the webhook delivery — one mechanism for all three:
 * start, stop (finishing the current round), kick (run a round now), and how
 * long ago a round last completed (readiness). */
#ifndef SUBREG_WORKER_H
#define SUBREG_WORKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct worker {
    /* set before worker_start */
    int (*round)(void *arg);   /* > 0: there may be more work, run again at once; < 0: not alive */
    int64_t (*wait_ms)(void *arg); /* pause after an idle round (NULL: interval_ms) */
    void *arg;
    int interval_ms;
    /* internal */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stopping, running, kicked;
    int64_t last_round_ms;
} worker;

void worker_start(worker *w);
void worker_kick(worker *w);
void worker_stop(worker *w);
/* Milliseconds since a round last completed alive (0 when not running). */
int64_t worker_idle_ms(worker *w);

#endif
