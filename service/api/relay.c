/* The recovery thread: every interval it settles write claims whose writer died
 * or lost the database between applying a change and committing its audit record
 * (store.h explains the protocol). */
#include <pthread.h>
#include <stdbool.h>

#include "subreg/api.h"
#include "subreg/log.h"

static pthread_t thread;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static bool stopping;
static bool running;
static int interval;
static int64_t lease;
static int64_t last_sweep_ms; /* monotonic */

int64_t relay_idle_ms(void)
{
    pthread_mutex_lock(&mu);
    int64_t idle = running ? mono_ms() - last_sweep_ms : 0;
    pthread_mutex_unlock(&mu);
    return idle;
}

static void *relay_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    while (!stopping) {
        pthread_mutex_unlock(&mu);
        int settled = 0;
        store_status st = store_recover_claims(lease, &settled);
        if (settled > 0) log_msgf(LOG_INFO, "recovery: %d claim(s) settled", settled);
        pthread_mutex_lock(&mu);
        /* A sweep that reached the database counts as alive; an outage is
         * reported by /readyz's own ping. */
        if (st == ST_OK || st == ST_UNAVAILABLE) last_sweep_ms = mono_ms();
        if (!stopping) cond_wait_ms(&cv, &mu, interval);
    }
    pthread_mutex_unlock(&mu);
    return NULL;
}

void relay_start(int interval_ms, int lease_ms)
{
    interval = interval_ms;
    lease = lease_ms;
    stopping = false;
    last_sweep_ms = mono_ms();
    running = true;
    pthread_create(&thread, NULL, relay_main, NULL);
}

void relay_stop(void)
{
    pthread_mutex_lock(&mu);
    if (!running) {
        pthread_mutex_unlock(&mu);
        return;
    }
    stopping = true;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
    pthread_join(thread, NULL);
    running = false;
}
