/* The recovery thread: every interval it settles write claims whose writer died
 * or lost the database between applying a change and committing its audit record
 * (store.h explains the protocol). */
#include "subreg/api.h"
#include "subreg/log.h"
#include "subreg/worker.h"

static worker w;
static int64_t lease;

static int sweep(void *arg)
{
    (void)arg;
    int settled = 0;
    store_status st = store_recover_claims(lease, &settled);
    if (settled > 0) log_msgf(LOG_INFO, "recovery: %d claim(s) settled", settled);
    /* A sweep that reached the database counts as alive; an outage is reported
     * by /readyz's own ping. */
    return st == ST_OK || st == ST_UNAVAILABLE ? 0 : -1;
}

int64_t recovery_idle_ms(void)
{
    return worker_idle_ms(&w);
}

void recovery_start(int interval_ms, int lease_ms)
{
    lease = lease_ms;
    w = (worker){.round = sweep, .interval_ms = interval_ms};
    worker_start(&w);
}

void recovery_stop(void)
{
    worker_stop(&w);
}
