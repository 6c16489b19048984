/* The public paths' rate limit. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <civetweb.h>
#include <math.h>
#include <pthread.h>
#include <time.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_internal.h"
#include "subreg/http.h"
#include "subreg/json.h"
#include "subreg/log.h"
#include "subreg/publication.h"


/* ---- rate limit on the public paths ---------------------------------------
 * A token bucket per client address (rate per minute, a burst of ten seconds'
 * worth), in a fixed table: a colliding address resets the slot, which can only
 * err on the side of letting a request through. */

#define RL_SLOTS 4096
#define RL_STRIPES 64

typedef struct {
    char ip[48];
    double tokens;
    int64_t last_ms;
} bucket;

static bucket buckets[RL_SLOTS];
static pthread_mutex_t rl_mu[RL_STRIPES];
static netpolicy exempt; /* SUBREG_RATE_LIMIT_EXEMPT */

void rate_limit_init(const netpolicy *exempt_nets)
{
    exempt = *exempt_nets;
    for (int i = 0; i < RL_STRIPES; i++) pthread_mutex_init(&rl_mu[i], NULL);
}

/* True when the request may proceed; otherwise *retry_after is set (seconds). */
bool rate_allow(const char *ip, int *retry_after)
{
    int rate = http_cfg.public_rate_per_min;
    if (rate <= 0 || netpolicy_lists(&exempt, ip)) return true;
    double burst = rate / 6.0 < 10 ? 10 : rate / 6.0;
    uint32_t h = 2166136261u;
    for (const char *p = ip; *p; p++) h = (h ^ (unsigned char)*p) * 16777619u;
    bucket *b = &buckets[h % RL_SLOTS];
    pthread_mutex_t *mu = &rl_mu[h % RL_STRIPES];
    int64_t now = mono_ms();
    pthread_mutex_lock(mu);
    if (strcmp(b->ip, ip) != 0) {
        snprintf(b->ip, sizeof b->ip, "%s", ip);
        b->tokens = burst;
        b->last_ms = now;
    }
    b->tokens += (double)(now - b->last_ms) * rate / 60000.0;
    if (b->tokens > burst) b->tokens = burst;
    b->last_ms = now;
    bool ok = b->tokens >= 1.0;
    if (ok) b->tokens -= 1.0;
    else *retry_after = (int)ceil((1.0 - b->tokens) * 60.0 / rate);
    pthread_mutex_unlock(mu);
    return ok;
}

bool is_public_path(const char *path)
{
    return strncmp(path, "/public/", 8) == 0 || strcmp(path, PUBLIC_PAGE_PATH) == 0;
}

