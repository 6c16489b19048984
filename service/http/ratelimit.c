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
 * worth) in a fixed table of RL_SETS sets of RL_WAYS buckets: an address hashes
 * to a set and owns the bucket holding its address there. A newcomer takes an
 * empty bucket or an idle one (refilled to the burst by now, so its owner loses
 * nothing: it would come back to a full bucket anyway), the least recently used
 * first. When every bucket of the set is still in use the newcomer is refused
 * until the first of them is idle: a collision never grants a request. */

#define RL_SETS 512
#define RL_WAYS 8 /* 4,096 buckets */
#define RL_STRIPES 64

typedef struct {
    char ip[48];
    double tokens;
    int64_t last_ms;
} bucket;

static bucket buckets[RL_SETS][RL_WAYS];
static pthread_mutex_t rl_mu[RL_STRIPES];
static netpolicy exempt; /* SUBREG_RATE_LIMIT_EXEMPT */

void rate_limit_init(const netpolicy *exempt_nets)
{
    exempt = *exempt_nets;
    memset(buckets, 0, sizeof buckets);
    for (int i = 0; i < RL_STRIPES; i++) pthread_mutex_init(&rl_mu[i], NULL);
}

unsigned rate_set_of(const char *ip)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *p = ip; *p; p++) h = (h ^ (unsigned char)*p) * 16777619u;
    return h % RL_SETS;
}

/* A bucket's tokens at now: refilled since its last use, at most the burst. */
static double level(const bucket *b, int64_t now, double per_ms, double burst)
{
    double t = b->tokens + (double)(now - b->last_ms) * per_ms;
    return t > burst ? burst : t;
}

/* True when the request may proceed; otherwise *retry_after is set (seconds). */
bool rate_allow(const char *ip, int *retry_after)
{
    int rate = http_cfg.public_rate_per_min;
    if (rate <= 0 || netpolicy_lists(&exempt, ip)) return true;
    double burst = rate / 6.0 < 10 ? 10 : rate / 6.0, per_ms = rate / 60000.0;
    unsigned set = rate_set_of(ip);
    bucket *ways = buckets[set], *b = NULL, *take = NULL;
    pthread_mutex_t *mu = &rl_mu[set % RL_STRIPES];
    int64_t now = mono_ms();
    bool ok;
    pthread_mutex_lock(mu);
    for (int w = 0; w < RL_WAYS && !b; w++) {
        bucket *x = &ways[w];
        if (!x->ip[0]) {
            if (!take || take->ip[0]) take = x; /* an empty bucket first */
        } else if (strcmp(x->ip, ip) == 0) {
            b = x;
        } else if (level(x, now, per_ms, burst) >= burst && (!take || (take->ip[0] && x->last_ms < take->last_ms))) {
            take = x; /* then the idle one used least recently */
        }
    }
    if (!b && take) {
        b = take;
        snprintf(b->ip, sizeof b->ip, "%s", ip);
        b->tokens = burst;
        b->last_ms = now;
    }
    if (b) {
        b->tokens = level(b, now, per_ms, burst);
        b->last_ms = now;
        ok = b->tokens >= 1.0;
        if (ok) b->tokens -= 1.0;
        else *retry_after = (int)ceil((1.0 - b->tokens) / per_ms / 1000.0);
    } else {
        /* every bucket of the set is in use: refused until the first is idle */
        double wait_ms = 0;
        for (int w = 0; w < RL_WAYS; w++) {
            double need = (burst - level(&ways[w], now, per_ms, burst)) / per_ms;
            if (w == 0 || need < wait_ms) wait_ms = need;
        }
        ok = false;
        *retry_after = (int)ceil(wait_ms / 1000.0);
    }
    pthread_mutex_unlock(mu);
    return ok;
}

bool is_public_path(const char *path)
{
    return strncmp(path, "/public/", 8) == 0 || strcmp(path, PUBLIC_PAGE_PATH) == 0;
}

