/* batch.c -- records between Kafka and a committed transaction (see batch.h). */
#include "batch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void batch_init(struct batch *b)
{
	memset(b, 0, sizeof *b);
}

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap : 1024;
	while (n < need)
		n *= 2;
	void *q = realloc(*p, n * size);
	if (!q)
		return -ENOMEM;
	*p = q;
	*cap = n;
	return 0;
}

int batch_add(struct batch *b, int32_t partition, int64_t offset, void *msg, const char *row,
	      size_t len, int32_t day, int64_t now_us)
{
	if (grow((void **)&b->e, &b->cap, b->n + 1, sizeof *b->e) < 0 ||
	    grow((void **)&b->text, &b->text_cap, b->text_len + len, 1) < 0)
		return -ENOMEM;
	if (b->n == 0)
		b->first_us = now_us;
	b->e[b->n++] = (struct batch_entry){ .partition = partition, .offset = offset, .msg = msg,
					     .start = b->text_len, .len = len, .day = day };
	if (len)
		memcpy(b->text + b->text_len, row, len);
	b->text_len += len;
	return 0;
}

int batch_add_dead(struct batch *b, int32_t partition, int64_t offset, void *msg, int reason,
		   const char *why, int64_t now_us)
{
	char *copy = strdup(why);
	if (!copy || batch_add(b, partition, offset, msg, NULL, 0, 0, now_us) < 0) {
		free(copy);
		return -ENOMEM;
	}
	b->e[b->n - 1].dead = reason;
	b->e[b->n - 1].why = copy;
	return 0;
}

int batch_kill(struct batch *b, size_t i, int reason, const char *why)
{
	char *copy = strdup(why);
	if (!copy)
		return -ENOMEM;
	free(b->e[i].why);
	b->e[i].why = copy;
	b->e[i].dead = reason;
	b->e[i].len = 0;
	return 0;
}

size_t batch_rows(const struct batch *b)
{
	size_t rows = 0;
	for (size_t i = 0; i < b->n; i++)
		rows += b->e[i].len > 0;
	return rows;
}

bool batch_due(const struct batch *b, size_t max_records, int64_t max_us, int64_t now_us)
{
	return b->n > 0 && (b->n >= max_records || now_us - b->first_us >= max_us);
}

size_t batch_offsets(const struct batch *b, struct batch_offset *out, size_t cap)
{
	size_t count = 0;
	for (size_t i = 0; i < b->n; i++) {
		const struct batch_entry *e = &b->e[i];
		size_t k = 0;
		/* A handful of partitions per process: a linear search is the fast one. */
		while (k < count && k < cap && out[k].partition != e->partition)
			k++;
		if (k < count && k < cap) {
			if (e->offset + 1 > out[k].next)
				out[k].next = e->offset + 1;
			continue;
		}
		if (count < cap)
			out[count] = (struct batch_offset){ e->partition, e->offset + 1 };
		count++;
	}
	return count;
}

size_t batch_days(const struct batch *b, size_t lo, size_t hi, int32_t *out, size_t cap)
{
	size_t count = 0;
	for (size_t i = lo; i < hi && i < b->n; i++) {
		if (!b->e[i].len)
			continue;
		int32_t d = b->e[i].day;
		size_t k = 0;
		while (k < count && out[k] < d)
			k++;
		if (k < count && out[k] == d)
			continue;
		if (count == cap)
			return cap + 1;
		memmove(out + k + 1, out + k, (count - k) * sizeof *out);
		out[k] = d;
		count++;
	}
	return count;
}

void batch_clear(struct batch *b, void (*release)(void *msg))
{
	for (size_t i = 0; i < b->n; i++) {
		free(b->e[i].why);
		if (release)
			release(b->e[i].msg);
	}
	b->n = 0;
	b->text_len = 0;
}

void batch_free(struct batch *b, void (*release)(void *msg))
{
	batch_clear(b, release);
	free(b->e);
	free(b->text);
	batch_init(b);
}
