#include "subreg/worker.h"

#include "subreg/util.h"

static void *worker_main(void *arg)
{
    worker *w = arg;
    pthread_mutex_lock(&w->mu);
    while (!w->stopping) {
        w->kicked = false;
        pthread_mutex_unlock(&w->mu);
        int work = w->round(w->arg);
        int64_t wait = w->wait_ms ? w->wait_ms(w->arg) : w->interval_ms;
        pthread_mutex_lock(&w->mu);
        if (work >= 0) w->last_round_ms = mono_ms();
        if (w->stopping || w->kicked || work > 0) continue;
        cond_wait_ms(&w->cv, &w->mu, wait < 1 ? 1 : wait);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

void worker_start(worker *w)
{
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->stopping = false;
    w->kicked = false;
    w->last_round_ms = mono_ms();
    w->running = true;
    pthread_create(&w->thread, NULL, worker_main, w);
}

/* Sets *flag (kicked or stopping) and wakes the thread. */
static void wake(worker *w, bool *flag)
{
    pthread_mutex_lock(&w->mu);
    *flag = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

void worker_kick(worker *w)
{
    if (w->running) wake(w, &w->kicked);
}

void worker_stop(worker *w)
{
    if (!w->running) return;
    wake(w, &w->stopping);
    pthread_join(w->thread, NULL);
    w->running = false;
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
}

int64_t worker_idle_ms(worker *w)
{
    if (!w->running) return 0;
    pthread_mutex_lock(&w->mu);
    int64_t idle = mono_ms() - w->last_round_ms;
    pthread_mutex_unlock(&w->mu);
    return idle;
}
