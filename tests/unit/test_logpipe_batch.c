/* test_logpipe_batch.c -- batches between Kafka and PostgreSQL (logpipe/batch.c): when they
 * are due, which offsets they commit, which days they touch, dead entries. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "batch.h"

static int released;
static void count_release(void *msg)
{
	(void)msg;
	released++;
}

static void add(struct batch *b, int32_t partition, int64_t offset, int32_t day, int64_t now)
{
	char row[32];
	int n = snprintf(row, sizeof row, "row %d/%lld\n", partition, (long long)offset);
	cr_assert_eq(batch_add(b, partition, offset, NULL, row, (size_t)n, day, now), 0);
}

Test(logpipe_batch, empty_is_never_due)
{
	struct batch b;
	batch_init(&b);
	cr_assert_not(batch_due(&b, 1, 0, 1000000));
	cr_assert_eq(batch_rows(&b), 0);
	struct batch_offset o[4];
	cr_assert_eq(batch_offsets(&b, o, 4), 0);
	batch_free(&b, NULL);
}

Test(logpipe_batch, due_by_count_or_by_age_of_the_first_record)
{
	struct batch b;
	batch_init(&b);
	add(&b, 0, 10, 1, 1000);
	add(&b, 0, 11, 1, 150000);
	cr_assert_not(batch_due(&b, 3, 200000, 200999));
	cr_assert(batch_due(&b, 3, 200000, 201000));  /* 200 ms after the first */
	cr_assert(batch_due(&b, 2, 200000, 1000));    /* 2 records */
	batch_free(&b, NULL);
}

Test(logpipe_batch, rows_are_contiguous_copy_text)
{
	struct batch b;
	batch_init(&b);
	add(&b, 0, 1, 0, 0);
	add(&b, 1, 7, 0, 0);
	cr_assert_eq(b.text_len, strlen("row 0/1\nrow 1/7\n"));
	cr_assert(memcmp(b.text, "row 0/1\nrow 1/7\n", b.text_len) == 0);
	cr_assert_eq(b.e[1].start, 8);
	batch_free(&b, NULL);
}

Test(logpipe_batch, offsets_are_the_last_per_partition_plus_one)
{
	struct batch b;
	batch_init(&b);
	add(&b, 2, 100, 0, 0);
	add(&b, 0, 5, 0, 0);
	cr_assert_eq(batch_add_dead(&b, 2, 101, NULL, 1, "decode: bad", 0), 0);
	add(&b, 0, 6, 0, 0);
	add(&b, 1, 0, 0, 0);
	struct batch_offset o[8];
	cr_assert_eq(batch_offsets(&b, o, 8), 3);
	cr_assert_eq(o[0].partition, 2);
	cr_assert_eq(o[0].next, 102);   /* the dead-lettered record is committed too */
	cr_assert_eq(o[1].partition, 0);
	cr_assert_eq(o[1].next, 7);
	cr_assert_eq(o[2].partition, 1);
	cr_assert_eq(o[2].next, 1);
	cr_assert_eq(batch_offsets(&b, o, 2), 3, "the count says when cap was too small");
	batch_free(&b, NULL);
}

Test(logpipe_batch, days_are_distinct_sorted_and_skip_dead_entries)
{
	struct batch b;
	batch_init(&b);
	add(&b, 0, 0, 20781, 0);
	add(&b, 0, 1, 20779, 0);
	cr_assert_eq(batch_add_dead(&b, 0, 2, NULL, 1, "x", 0), 0);
	add(&b, 0, 3, 20781, 0);
	add(&b, 0, 4, 20780, 0);
	int32_t d[4];
	cr_assert_eq(batch_days(&b, 0, b.n, d, 4), 3);
	cr_assert_eq(d[0], 20779);
	cr_assert_eq(d[1], 20780);
	cr_assert_eq(d[2], 20781);
	cr_assert_eq(batch_days(&b, 2, 4, d, 4), 1, "dead entry 2 has no day");
	cr_assert_eq(d[0], 20781);
	cr_assert_eq(batch_days(&b, 0, b.n, d, 2), 3, "more than cap: cap + 1");
	batch_free(&b, NULL);
}

Test(logpipe_batch, a_killed_entry_loses_its_row_and_keeps_its_offset)
{
	struct batch b;
	batch_init(&b);
	add(&b, 0, 0, 1, 0);
	add(&b, 0, 1, 1, 0);
	cr_assert_eq(batch_rows(&b), 2);
	cr_assert_eq(batch_kill(&b, 1, 3, "23514 check"), 0);
	cr_assert_eq(batch_rows(&b), 1);
	cr_assert_eq(b.e[1].dead, 3);
	cr_assert_str_eq(b.e[1].why, "23514 check");
	struct batch_offset o[1];
	cr_assert_eq(batch_offsets(&b, o, 1), 1);
	cr_assert_eq(o[0].next, 2);
	batch_free(&b, NULL);
}

Test(logpipe_batch, clear_hands_every_message_back_and_empties)
{
	struct batch b;
	batch_init(&b);
	int msgs[3];
	for (int i = 0; i < 3; i++)
		cr_assert_eq(batch_add(&b, 0, i, &msgs[i], "r\n", 2, 0, 0), 0);
	cr_assert_eq(batch_add_dead(&b, 0, 3, &msgs[0], 1, "why", 0), 0);
	released = 0;
	batch_clear(&b, count_release);
	cr_assert_eq(released, 4);
	cr_assert_eq(b.n, 0);
	cr_assert_eq(b.text_len, 0);
	add(&b, 0, 9, 0, 5);
	cr_assert_eq(b.first_us, 5, "a cleared batch starts its clock afresh");
	batch_free(&b, NULL);
}

Test(logpipe_batch, grows_past_its_first_allocation)
{
	struct batch b;
	batch_init(&b);
	for (int i = 0; i < 5000; i++)
		add(&b, i % 3, i, i % 5, 0);
	cr_assert_eq(batch_rows(&b), 5000);
	struct batch_offset o[3];
	cr_assert_eq(batch_offsets(&b, o, 3), 3);
	cr_assert_eq(o[0].next + o[1].next + o[2].next, 4998 + 4999 + 5000);
	batch_free(&b, NULL);
}
