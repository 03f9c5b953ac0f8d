/* listio.c -- plain and CSV list parsing, name normalisation, CSV field quoting. */
#include "listio.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "snapshot.h"

static int fail(struct listio_error *err, unsigned line, const char *why)
{
	err->line = line;
	snprintf(err->reason, sizeof err->reason, "%s", why);
	return -EINVAL;
}

static bool has_control(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return true;
	return false;
}

/* Counts UTF-8 characters (continuation bytes do not start one). */
static size_t utf8_chars(const char *s, size_t n)
{
	size_t c = 0;
	for (size_t i = 0; i < n; i++)
		c += ((unsigned char)s[i] & 0xc0) != 0x80;
	return c;
}

static void trim(const char **s, size_t *n)
{
	while (*n && (**s == ' ' || **s == '\t')) {
		(*s)++;
		(*n)--;
	}
	while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t' || (*s)[*n - 1] == '\r'))
		(*n)--;
}

static int parse_plain(const char *text, size_t len, listio_entry_fn fn, void *arg,
		       struct listio_error *err)
{
	char name[SNAPSHOT_NAME_TEXT_MAX];
	unsigned line = 0;
	for (size_t pos = 0; pos < len;) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - text) : len;
		const char *s = text + pos;
		size_t n = end - pos;
		line++;
		pos = end + 1;
		trim(&s, &n);
		if (n == 0 || s[0] == '#')
			continue;
		if (snapshot_name_text(s, n, name) < 0)
			return fail(err, line, "not a valid domain name");
		int rc = fn(arg, name, "");
		if (rc)
			return rc;
	}
	return 0;
}

/* Reads one CSV field starting at *pos; on return *pos is past the separator or at the end
 * of the record, *eor tells which. The unquoted value lands in out (cap bytes). */
static int csv_field(const char *text, size_t len, size_t *pos, char *out, size_t cap,
		     size_t *out_len, bool *eor, unsigned *line)
{
	size_t o = 0, p = *pos;
	bool quoted = p < len && text[p] == '"';
	if (quoted) {
		p++;
		for (;;) {
			if (p >= len)
				return -EINVAL;             /* unterminated quote */
			if (text[p] == '"') {
				if (p + 1 < len && text[p + 1] == '"') {
					if (o + 1 >= cap)
						return -E2BIG;
					out[o++] = '"';
					p += 2;
					continue;
				}
				p++;
				break;
			}
			if (text[p] == '\n')
				(*line)++;
			if (o + 1 >= cap)
				return -E2BIG;
			out[o++] = text[p++];
		}
		if (p < len && text[p] == '\r')
			p++;
		if (p < len && text[p] != ',' && text[p] != '\n')
			return -EINVAL;                     /* text after the closing quote */
	} else {
		while (p < len && text[p] != ',' && text[p] != '\n') {
			if (text[p] == '"')
				return -EINVAL;
			if (o + 1 >= cap)
				return -E2BIG;
			out[o++] = text[p++];
		}
		while (o && out[o - 1] == '\r')
			o--;
	}
	out[o] = '\0';
	*out_len = o;
	*eor = p >= len || text[p] == '\n';
	*pos = p < len ? p + 1 : p;
	return 0;
}

static int parse_csv(const char *text, size_t len, listio_entry_fn fn, void *arg,
		     struct listio_error *err)
{
	char field[2][2048], name[SNAPSHOT_NAME_TEXT_MAX];
	size_t flen[2];
	unsigned line = 1;
	bool first = true;

	for (size_t pos = 0; pos < len; line++) {
		unsigned start_line = line, nfields = 0;
		bool eor = false;
		while (!eor) {
			char spill[2048];
			size_t slen;
			char *dst = nfields < 2 ? field[nfields] : spill;
			int rc = csv_field(text, len, &pos, dst, sizeof field[0], nfields < 2 ?
					   &flen[nfields] : &slen, &eor, &line);
			if (rc == -E2BIG)
				return fail(err, start_line, "field too long");
			if (rc < 0)
				return fail(err, start_line, "malformed CSV quoting");
			nfields++;
		}
		if (nfields > 2)
			return fail(err, start_line, "expected at most two columns: domain,comment");
		const char *d = field[0];
		size_t dn = flen[0];
		trim(&d, &dn);
		if (nfields == 1 && dn == 0)
			continue;                           /* blank line */
		if (first && dn == 6 && strncasecmp(d, "domain", 6) == 0) {
			first = false;
			continue;                           /* header row */
		}
		first = false;
		if (snapshot_name_text(d, dn, name) < 0)
			return fail(err, start_line, "not a valid domain name");
		const char *c = nfields == 2 ? field[1] : "";
		size_t cn = nfields == 2 ? flen[1] : 0;
		trim(&c, &cn);
		if (has_control(c, cn) || memchr(c, '\0', cn))
			return fail(err, start_line, "control characters in the comment");
		if (utf8_chars(c, cn) > LISTIO_COMMENT_MAX)
			return fail(err, start_line, "comment longer than 500 characters");
		char comment[2048];
		memcpy(comment, c, cn);
		comment[cn] = '\0';
		int rc = fn(arg, name, comment);
		if (rc)
			return rc;
	}
	return 0;
}

int listio_parse(enum listio_format fmt, const char *text, size_t len, listio_entry_fn fn,
		 void *arg, struct listio_error *err)
{
	err->line = 0;
	err->reason[0] = '\0';
	return fmt == LISTIO_CSV ? parse_csv(text, len, fn, arg, err) :
				   parse_plain(text, len, fn, arg, err);
}

size_t listio_csv_field(char *buf, size_t cap, const char *value, int is_comment)
{
	bool formula = is_comment && strchr("=+-@", value[0]) && value[0];
	bool quote = formula || strpbrk(value, ",\"\r\n") != NULL;
	size_t o = 0;
#define PUT(ch) do { if (o + 1 < cap) buf[o] = (ch); o++; } while (0)
	if (quote)
		PUT('"');
	if (formula)
		PUT('\'');
	for (const char *s = value; *s; s++) {
		if (*s == '"')
			PUT('"');
		PUT(*s);
	}
	if (quote)
		PUT('"');
#undef PUT
	if (cap)
		buf[o < cap ? o : cap - 1] = '\0';
	return o;
}
