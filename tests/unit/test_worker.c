/* test_worker.c - the background thread that heal, scrub and gc share runs
 * its body with sockets to the other nodes, naps until a stop, a wake-up or
 * the time, paces its work at a rate that can change under it, and stops. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "rpc.h"
#include "worker.h"

static struct pifs_conf conf;
static struct pifs_conf_node self = {.id = 1, .addr = "127.0.0.1:17164", .data = "/tmp"};
static struct pifsd d;

static void setup(void)
{
	memset(&d, 0, sizeof(d));
	pifs_conf_init(&conf);
	d.conf = &conf;
	d.self = &self;
	d.data = "/tmp";
}

TestSuite(worker, .init = setup, .timeout = 20);

/* What a body saw, under the worker's lock. */
struct probe {
	struct pifs_worker wk;
	bool ran, had_peers, woke;
	int64_t napped_ms;
};

static bool woke(void *arg)
{
	return ((struct probe *)arg)->woke;
}

/* Nap far longer than any test waits: only a stop or a wake-up ends it. */
static void *body(void *arg)
{
	struct probe *p = arg;
	int64_t t0 = pifs_now_ms();

	pthread_mutex_lock(&p->wk.lock);
	p->ran = true;
	p->had_peers = p->wk.peers.zctx == d.zctx && p->wk.peers.map == &d.map;
	pthread_mutex_unlock(&p->wk.lock);
	pifs_worker_nap(&p->wk, 60000);
	pthread_mutex_lock(&p->wk.lock);
	p->napped_ms = pifs_now_ms() - t0;
	pthread_mutex_unlock(&p->wk.lock);
	return NULL;
}

Test(worker, runs_its_body_with_peers_and_a_stop_ends_its_nap_at_once)
{
	struct probe p;
	int64_t t0;

	memset(&p, 0, sizeof(p));
	cr_assert_eq(pifs_worker_init(&p.wk, &d, 0, NULL, &p), 0);
	cr_assert_not(pifs_worker_stopping(&p.wk));
	cr_assert_eq(pifs_worker_start(&p.wk, body), 0);
	usleep(100000);
	t0 = pifs_now_ms();
	pifs_worker_stop(&p.wk);
	cr_assert(pifs_worker_stopping(&p.wk));
	pifs_worker_fini(&p.wk);
	cr_assert_lt(pifs_now_ms() - t0, 2000, "the stop did not end the nap");
	cr_assert(p.ran);
	cr_assert(p.had_peers, "the body should find the sockets table ready");
	cr_assert_geq(p.napped_ms, 90);
}

Test(worker, a_wake_up_ends_a_nap_but_a_bare_signal_does_not)
{
	struct probe p;

	memset(&p, 0, sizeof(p));
	cr_assert_eq(pifs_worker_init(&p.wk, &d, 0, woke, &p), 0);
	cr_assert_eq(pifs_worker_start(&p.wk, body), 0);
	usleep(100000);
	pthread_mutex_lock(&p.wk.lock);
	pifs_worker_signal(&p.wk);
	pthread_mutex_unlock(&p.wk.lock);
	usleep(200000);
	pthread_mutex_lock(&p.wk.lock);
	cr_assert_eq(p.napped_ms, 0, "a signal without a reason ended the nap");
	p.woke = true;
	pifs_worker_signal(&p.wk);
	pthread_mutex_unlock(&p.wk.lock);
	usleep(200000);
	pthread_mutex_lock(&p.wk.lock);
	cr_assert_gt(p.napped_ms, 0, "the wake-up did not end the nap");
	pthread_mutex_unlock(&p.wk.lock);
	cr_assert_not(pifs_worker_stopping(&p.wk));
	pifs_worker_fini(&p.wk);
}

Test(worker, a_wait_ends_at_its_time_or_its_cap)
{
	struct pifs_worker wk;
	int64_t t0, took;

	cr_assert_eq(pifs_worker_init(&wk, &d, 0, NULL, NULL), 0);
	pthread_mutex_lock(&wk.lock);
	t0 = pifs_now_ms();
	pifs_worker_wait(&wk, 100, 1000);
	took = pifs_now_ms() - t0;
	cr_assert(took >= 90 && took < 600, "waited %lld ms for 100", (long long)took);
	t0 = pifs_now_ms();
	pifs_worker_wait(&wk, 5000, 150);
	took = pifs_now_ms() - t0;
	cr_assert(took >= 140 && took < 800, "waited %lld ms for a cap of 150", (long long)took);
	pthread_mutex_unlock(&wk.lock);
	pifs_worker_fini(&wk);
}

Test(worker, paces_at_its_rate_and_a_new_rate_applies_to_the_next_piece)
{
	struct pifs_worker wk;
	int64_t ms;

	cr_assert_eq(pifs_worker_init(&wk, &d, 1000, NULL, NULL), 0);
	pifs_worker_pace_begin(&wk);
	ms = pifs_worker_spend(&wk, 2000);
	cr_assert(ms >= 1900 && ms <= 2000, "2000 bytes at 1000 B/s: %lld ms", (long long)ms);
	pifs_worker_set_rate(&wk, 0);
	cr_assert_eq(atomic_load(&wk.rate), 1000, "a rate of 0 changes nothing");
	pifs_worker_set_rate(&wk, UINT64_MAX);
	cr_assert_eq(pifs_worker_spend(&wk, 1 << 20), 0, "the limit should be lifted");
	pifs_worker_fini(&wk);
}

Test(worker, without_a_rate_never_waits_and_a_nap_of_zero_returns_at_once)
{
	struct pifs_worker wk;
	int64_t t0;

	cr_assert_eq(pifs_worker_init(&wk, &d, 0, NULL, NULL), 0);
	pifs_worker_pace_begin(&wk);
	cr_assert_eq(pifs_worker_spend(&wk, UINT64_MAX / 2), 0);
	t0 = pifs_now_ms();
	pifs_worker_nap(&wk, 0);
	cr_assert_lt(pifs_now_ms() - t0, 50);
	pifs_worker_fini(&wk);
}
