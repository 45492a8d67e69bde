/* worker.h - a background thread of the daemon: heal, scrub, gc.
 *
 * Each of those loops is a thread that waits for its turn (a schedule or a
 * kick), does a pass of its own work, paced so that clients keep most of the
 * disk and the link, and stops soon when asked. This is the part they share:
 * the thread, its stop flag, a lock and condition variable for the loop's own
 * figures and kicks, naps that end early on a stop, the pace of the work and
 * its run-time rate, and the table of sockets to the other nodes, which
 * belongs to the thread. What a turn is and what a pass does stay in each
 * loop. */
#ifndef PIFS_WORKER_H
#define PIFS_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "pace.h"
#include "peers.h"
#include "storaged_i.h"

struct pifs_worker {
	struct pifsd *d; /* borrowed */
	pthread_t thread;
	bool started;
	/* Guards the loop's kicks and figures; the condition variable is
	 * signalled on every kick and on stop. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	atomic_bool stop;      /* set under @lock, read anywhere */
	_Atomic uint64_t rate; /* bytes/s of the pace; 0: no limit */
	/* A nap also ends when this says so, called under @lock; NULL: never. */
	bool (*woken)(void *arg);
	/* The thread's own. */
	void *(*body)(void *arg);
	void *arg;
	struct pifs_pace pace;
	struct pifs_peers peers; /* live while @body runs */
};

/* Ready @wk for the daemon @d (borrowed), pacing at @rate bytes/s (0: no
 * limit); @woken (may be NULL) ends naps early, with @arg. Returns 0 or
 * -errno from pthread_cond_init. */
int pifs_worker_init(struct pifs_worker *wk, struct pifsd *d, uint64_t rate,
		     bool (*woken)(void *arg), void *arg);

/* Stop the thread if it runs, wait for it, and release @wk. */
void pifs_worker_fini(struct pifs_worker *wk);

/* Run @body(@wk->arg) in a new thread, with @wk->peers ready for it.
 * Returns 0 or -errno. */
int pifs_worker_start(struct pifs_worker *wk, void *(*body)(void *arg));

/* Ask the thread to stop soon, without waiting for it. */
void pifs_worker_stop(struct pifs_worker *wk);

static inline bool pifs_worker_stopping(struct pifs_worker *wk)
{
	return atomic_load(&wk->stop);
}

/* Wake the thread if it waits: call with @wk->lock held after changing what
 * it waits for. */
void pifs_worker_signal(struct pifs_worker *wk);

/* With @wk->lock held, wait for a signal or @ms (capped at @max_ms, the
 * longest wait the loop allows), whichever comes first; @ms <= 0 waits
 * @max_ms. The caller checks again what it waits for. */
void pifs_worker_wait(struct pifs_worker *wk, int64_t ms, int64_t max_ms);

/* Sleep @ms, unless asked to stop or woken (@woken of init). */
void pifs_worker_nap(struct pifs_worker *wk, int64_t ms);

/* Pace at @rate bytes/s from now on, the running pass included; 0 changes
 * nothing, UINT64_MAX lifts the limit. Thread-safe. */
void pifs_worker_set_rate(struct pifs_worker *wk, uint64_t rate);

/* Start the pace of a pass at the current rate. The thread's own. */
void pifs_worker_pace_begin(struct pifs_worker *wk);

/* Count @bytes of work just done, at the rate of the moment (WORK_SET may
 * have changed it since the last piece). Returns the ms to nap before the
 * next piece (pifs_worker_nap). The thread's own. */
int64_t pifs_worker_spend(struct pifs_worker *wk, uint64_t bytes);

#endif
