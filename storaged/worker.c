/* worker.c - a background thread of the daemon: heal, scrub, gc. */
#include "worker.h"

#include <time.h>

#include "rpc.h"

/* The CLOCK_MONOTONIC time @ms from now, for pthread_cond_timedwait. */
static void deadline_in(struct timespec *ts, int64_t ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

int pifs_worker_init(struct pifs_worker *wk, struct pifsd *d, uint64_t rate,
		     bool (*woken)(void *arg), void *arg)
{
	pthread_condattr_t ca;
	int rc;

	wk->d = d;
	wk->started = false;
	wk->woken = woken;
	wk->arg = arg;
	wk->body = NULL;
	atomic_init(&wk->stop, false);
	atomic_init(&wk->rate, rate);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	rc = -pthread_cond_init(&wk->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (rc < 0)
		return rc;
	pthread_mutex_init(&wk->lock, NULL);
	return 0;
}

void pifs_worker_fini(struct pifs_worker *wk)
{
	pifs_worker_stop(wk);
	if (wk->started)
		pthread_join(wk->thread, NULL);
	wk->started = false;
	pthread_cond_destroy(&wk->cond);
	pthread_mutex_destroy(&wk->lock);
}

static void *trampoline(void *arg)
{
	struct pifs_worker *wk = arg;
	void *ret;

	/* ZeroMQ sockets belong to one thread: made here, closed here. */
	pifs_peers_init(&wk->peers, wk->d->zctx, wk->d->auth, &wk->d->map);
	ret = wk->body(wk->arg);
	pifs_peers_fini(&wk->peers);
	return ret;
}

int pifs_worker_start(struct pifs_worker *wk, void *(*body)(void *arg))
{
	int rc;

	wk->body = body;
	rc = -pthread_create(&wk->thread, NULL, trampoline, wk);
	wk->started = rc == 0;
	return rc;
}

void pifs_worker_stop(struct pifs_worker *wk)
{
	pthread_mutex_lock(&wk->lock);
	atomic_store(&wk->stop, true);
	pthread_cond_broadcast(&wk->cond);
	pthread_mutex_unlock(&wk->lock);
}

void pifs_worker_signal(struct pifs_worker *wk)
{
	pthread_cond_broadcast(&wk->cond);
}

void pifs_worker_wait(struct pifs_worker *wk, int64_t ms, int64_t max_ms)
{
	struct timespec ts;

	deadline_in(&ts, ms > 0 && ms < max_ms ? ms : max_ms);
	pthread_cond_timedwait(&wk->cond, &wk->lock, &ts);
}

void pifs_worker_nap(struct pifs_worker *wk, int64_t ms)
{
	int64_t until = pifs_now_ms() + ms;
	struct timespec ts;

	pthread_mutex_lock(&wk->lock);
	while (!pifs_worker_stopping(wk) && !(wk->woken && wk->woken(wk->arg)) &&
	       pifs_now_ms() < until) {
		deadline_in(&ts, until - pifs_now_ms());
		pthread_cond_timedwait(&wk->cond, &wk->lock, &ts);
	}
	pthread_mutex_unlock(&wk->lock);
}

void pifs_worker_set_rate(struct pifs_worker *wk, uint64_t rate)
{
	if (rate)
		atomic_store(&wk->rate, rate);
}

void pifs_worker_pace_begin(struct pifs_worker *wk)
{
	pifs_pace_init(&wk->pace, atomic_load(&wk->rate), pifs_now_ms());
}

int64_t pifs_worker_spend(struct pifs_worker *wk, uint64_t bytes)
{
	wk->pace.rate = atomic_load(&wk->rate);
	return pifs_pace_spend(&wk->pace, bytes, pifs_now_ms());
}
