/* test_ratelimit.c -- the limiter on a simulated clock: counts, refill, grouping, exemptions,
 * slip cadence, and four threads on one bucket.
 *
 * Tests use a 2^20 table with a random key, so two unrelated addresses share a bucket with
 * probability 2^-20 per pair: the few pairs here make a spurious failure a one-in-100,000
 * event, and a repeat run settles it.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "ratelimit.h"

#define SECOND 1000000ull

static struct sockaddr_storage addr(const char *text)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof ss);
	if (strchr(text, ':')) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
		sin6->sin6_family = AF_INET6;
		cr_assert_eq(inet_pton(AF_INET6, text, &sin6->sin6_addr), 1);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		sin->sin_family = AF_INET;
		cr_assert_eq(inet_pton(AF_INET, text, &sin->sin_addr), 1);
	}
	return ss;
}

static struct ratelimit *limiter(uint32_t qps, uint32_t burst, unsigned slip)
{
	struct ratelimit_config c = { .qps = qps, .burst = burst, .table_bits = 20, .slip = slip };
	struct ratelimit *rl = ratelimit_new(&c);
	cr_assert_not_null(rl);
	return rl;
}

/* Sends n queries from text, one every step_us from start_us; returns how many passed. */
static unsigned offer(struct ratelimit *rl, const char *text, unsigned n, uint64_t start_us,
		      uint64_t step_us)
{
	struct sockaddr_storage ss = addr(text);
	unsigned passed = 0;
	for (unsigned i = 0; i < n; i++)
		if (ratelimit_check(rl, (struct sockaddr *)&ss, start_us + i * step_us) ==
		    RATELIMIT_PASS)
			passed++;
	return passed;
}

static void assert_near(unsigned got, unsigned want, double tolerance)
{
	double lo = want * (1 - tolerance), hi = want * (1 + tolerance);
	cr_assert(got >= lo && got <= hi, "got %u, want %u +-%.1f%%", got, want, tolerance * 100);
}

Test(ratelimit, rejects_out_of_range_config)
{
	struct ratelimit_config c = { .qps = 1000, .table_bits = 30 };
	cr_assert_null(ratelimit_new(&c));
	cr_assert_eq(errno, EINVAL);
	c = (struct ratelimit_config){ .qps = 1000, .v6_prefix = 129 };
	cr_assert_null(ratelimit_new(&c));
	c = (struct ratelimit_config){ .qps = 1000, .v4_prefix = 33 };
	cr_assert_null(ratelimit_new(&c));
	ratelimit_free(NULL);
}

Test(ratelimit, disabled_passes_everything)
{
	struct ratelimit *rl = limiter(0, 0, 2);
	cr_assert_eq(offer(rl, "192.0.2.1", 100000, 0, 0), 100000);
	ratelimit_free(rl);
}

Test(ratelimit, under_the_limit_all_pass)
{
	struct ratelimit *rl = limiter(1000, 0, 2);
	/* 900 qps for ten seconds. */
	cr_assert_eq(offer(rl, "192.0.2.1", 9000, 5 * SECOND, SECOND / 900), 9000);
	ratelimit_free(rl);
}

Test(ratelimit, a_flood_gets_qps_plus_burst_in_its_first_second)
{
	struct ratelimit *rl = limiter(1000, 500, 0);
	/* 100,000 qps for one simulated second, starting at an arbitrary clock value. */
	unsigned passed = offer(rl, "192.0.2.1", 100000, 123 * SECOND, 10);
	assert_near(passed, 1000 + 500, 0.01);
	/* and then exactly qps per second: a flood is not charged for what it was refused. */
	passed = offer(rl, "192.0.2.1", 500000, 124 * SECOND, 10);
	assert_near(passed, 5 * 1000, 0.01);
	ratelimit_free(rl);
}

Test(ratelimit, burst_defaults_to_one_second)
{
	struct ratelimit *rl = limiter(2000, 0, 0);
	cr_assert_eq(offer(rl, "192.0.2.1", 10000, 0, 0), 2000);
	ratelimit_free(rl);
}

Test(ratelimit, refills_over_time)
{
	struct ratelimit *rl = limiter(1000, 1000, 0);
	cr_assert_eq(offer(rl, "192.0.2.1", 5000, SECOND, 0), 1000);
	/* 100 ms later 100 tokens are back, and no more. */
	cr_assert_eq(offer(rl, "192.0.2.1", 5000, SECOND + 100000, 0), 100);
	/* After a quiet second or more the full burst is back, not more. */
	cr_assert_eq(offer(rl, "192.0.2.1", 5000, 60 * SECOND, 0), 1000);
	ratelimit_free(rl);
}

Test(ratelimit, addresses_are_independent)
{
	struct ratelimit *rl = limiter(100, 100, 0);
	cr_assert_eq(offer(rl, "192.0.2.1", 1000, SECOND, 0), 100);
	cr_assert_eq(offer(rl, "192.0.2.2", 1000, SECOND, 0), 100);
	cr_assert_eq(offer(rl, "2001:db8:1::1", 1000, SECOND, 0), 100);
	cr_assert_eq(offer(rl, "2001:db8:2::1", 1000, SECOND, 0), 100);
	ratelimit_free(rl);
}

Test(ratelimit, ipv6_is_grouped_by_56)
{
	struct ratelimit *rl = limiter(100, 100, 0);
	cr_assert_eq(offer(rl, "2001:db8:0:100::1", 60, SECOND, 0), 60);
	/* Same /56 (2001:db8:0:1xx), other /64: shares what is left. */
	cr_assert_eq(offer(rl, "2001:db8:0:1ff:1234::9", 1000, SECOND, 0), 40);
	/* Next /56 is someone else. */
	cr_assert_eq(offer(rl, "2001:db8:0:200::1", 1000, SECOND, 0), 100);
	ratelimit_free(rl);
}

Test(ratelimit, prefix_lengths_are_configurable)
{
	struct ratelimit_config c = { .qps = 100, .burst = 100, .v4_prefix = 24, .v6_prefix = 64 };
	struct ratelimit *rl = ratelimit_new(&c);
	cr_assert_not_null(rl);
	cr_assert_eq(offer(rl, "192.0.2.1", 60, SECOND, 0), 60);
	cr_assert_eq(offer(rl, "192.0.2.200", 1000, SECOND, 0), 40);
	cr_assert_eq(offer(rl, "2001:db8:0:100::1", 100, SECOND, 0), 100);
	cr_assert_eq(offer(rl, "2001:db8:0:101::1", 100, SECOND, 0), 100);
	ratelimit_free(rl);
}

Test(ratelimit, v4_mapped_counts_as_v4)
{
	struct ratelimit *rl = limiter(100, 100, 0);
	cr_assert_eq(offer(rl, "::ffff:192.0.2.1", 70, SECOND, 0), 70);
	cr_assert_eq(offer(rl, "192.0.2.1", 1000, SECOND, 0), 30);
	ratelimit_free(rl);
}

Test(ratelimit, exemptions_raise_or_lift_the_limit)
{
	struct ratelimit *rl = limiter(100, 100, 0);
	cr_assert_eq(ratelimit_add_exemption(rl, "198.51.100.0/24", 5000), 0);
	cr_assert_eq(ratelimit_add_exemption(rl, "198.51.100.53", 0), 0);
	cr_assert_eq(ratelimit_add_exemption(rl, "2001:db8:ff::/48", 1000), 0);
	cr_assert_eq(ratelimit_add_exemption(rl, "198.51.100.0/33", 0), -EINVAL);
	cr_assert_eq(ratelimit_add_exemption(rl, "not-an-address", 0), -EINVAL);

	/* Inside the /24: 5000 qps with a burst of 5000, per address. */
	assert_near(offer(rl, "198.51.100.7", 100000, SECOND, 10), 5000 + 5000, 0.01);
	cr_assert_eq(offer(rl, "198.51.100.8", 100000, SECOND, 0), 5000);
	/* The /32 inside it is more specific, whichever order they were added in. */
	cr_assert_eq(offer(rl, "198.51.100.53", 200000, SECOND, 0), 200000);
	cr_assert_eq(offer(rl, "::ffff:198.51.100.53", 1000, SECOND, 0), 1000);
	cr_assert_eq(offer(rl, "2001:db8:ff:1::1", 5000, SECOND, 0), 1000);
	/* Outside every exemption: the default. */
	cr_assert_eq(offer(rl, "198.51.101.7", 1000, SECOND, 0), 100);
	ratelimit_free(rl);
}

Test(ratelimit, exemptions_apply_even_when_added_wider_last)
{
	struct ratelimit *rl = limiter(100, 100, 0);
	cr_assert_eq(ratelimit_add_exemption(rl, "10.1.2.3", 0), 0);
	cr_assert_eq(ratelimit_add_exemption(rl, "10.0.0.0/8", 200), 0);
	cr_assert_eq(offer(rl, "10.1.2.3", 5000, SECOND, 0), 5000);
	cr_assert_eq(offer(rl, "10.1.2.4", 5000, SECOND, 0), 200);
	ratelimit_free(rl);
}

Test(ratelimit, slip_cadence)
{
	struct ratelimit *rl = limiter(10, 10, 3);
	struct sockaddr_storage ss = addr("192.0.2.1");
	unsigned pass = 0, slip = 0, drop = 0, since_slip = 0;
	for (int i = 0; i < 3010; i++) {
		switch (ratelimit_check(rl, (struct sockaddr *)&ss, SECOND)) {
		case RATELIMIT_PASS:
			pass++;
			break;
		case RATELIMIT_SLIP:
			slip++;
			cr_assert_eq(since_slip, 2, "slip after %u drops", since_slip);
			since_slip = 0;
			break;
		case RATELIMIT_DROP:
			drop++;
			since_slip++;
			break;
		}
	}
	cr_assert_eq(pass, 10);
	cr_assert_eq(slip, 1000);
	cr_assert_eq(drop, 2000);
	ratelimit_free(rl);
}

Test(ratelimit, slip_one_answers_every_limited_query_and_zero_none)
{
	struct ratelimit *rl = limiter(10, 10, 1);
	struct sockaddr_storage ss = addr("192.0.2.1");
	for (int i = 0; i < 10; i++)
		cr_assert_eq(ratelimit_check(rl, (struct sockaddr *)&ss, SECOND), RATELIMIT_PASS);
	for (int i = 0; i < 100; i++)
		cr_assert_eq(ratelimit_check(rl, (struct sockaddr *)&ss, SECOND), RATELIMIT_SLIP);
	ratelimit_free(rl);

	rl = limiter(10, 10, 0);
	for (int i = 0; i < 10; i++)
		cr_assert_eq(ratelimit_check(rl, (struct sockaddr *)&ss, SECOND), RATELIMIT_PASS);
	for (int i = 0; i < 100; i++)
		cr_assert_eq(ratelimit_check(rl, (struct sockaddr *)&ss, SECOND), RATELIMIT_DROP);
	ratelimit_free(rl);
}

Test(ratelimit, non_ip_clients_pass)
{
	struct ratelimit *rl = limiter(1, 1, 0);
	struct sockaddr_storage ss = { .ss_family = AF_UNIX };
	for (int i = 0; i < 10; i++)
		cr_assert_eq(ratelimit_check(rl, (struct sockaddr *)&ss, SECOND), RATELIMIT_PASS);
	ratelimit_free(rl);
}

/* Four threads flood one bucket and share one simulated clock that each query advances, so
 * their queries interleave on the bucket as they would on a real node. */
#define THREADS  4
#define PER_THREAD 200000
#define STEP_US  1 /* 4 x 200,000 queries over 0.8 simulated seconds: 1,000,000 qps */

struct flood {
	struct ratelimit *rl;
	_Atomic uint64_t *clock;
	unsigned passed;
};

static void *flood_run(void *arg)
{
	struct flood *f = arg;
	struct sockaddr_storage ss = addr("192.0.2.1");
	for (int i = 0; i < PER_THREAD; i++) {
		uint64_t now = atomic_fetch_add(f->clock, STEP_US);
		if (ratelimit_check(f->rl, (struct sockaddr *)&ss, now) == RATELIMIT_PASS)
			f->passed++;
	}
	return NULL;
}

Test(ratelimit, four_threads_on_one_bucket_stay_within_the_limit)
{
	struct ratelimit *rl = limiter(10000, 10000, 2);
	_Atomic uint64_t clock = SECOND;
	struct flood f[THREADS];
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++) {
		f[i] = (struct flood){ .rl = rl, .clock = &clock };
		cr_assert_eq(pthread_create(&t[i], NULL, flood_run, &f[i]), 0);
	}
	unsigned passed = 0;
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		passed += f[i].passed;
	}
	/* 0.8 s at 10,000 qps plus the 10,000 burst: 18,000. A thread may pass one query per
	 * exhausted compare-and-swap loop and judge against a clock value a little behind the
	 * others'; 16 per thread is ample slack for either, and the lower bound shows that
	 * contention does not starve the client either. */
	double simulated = (double)THREADS * PER_THREAD * STEP_US / SECOND;
	unsigned want = (unsigned)(10000 * simulated) + 10000;
	cr_assert_leq(passed, want + THREADS * 16, "passed %u, want at most %u", passed, want);
	cr_assert_geq(passed, want * 99 / 100, "passed %u, want about %u", passed, want);
	ratelimit_free(rl);
}
