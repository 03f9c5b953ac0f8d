/* test_feed_parse.c -- threat-feed parsers on real-format samples (tests/data/feeds/) and on
 * their broken twins (the same file with ~10% garbage lines: every good name still loads,
 * every garbage line is counted), then the edge cases one by one. Run from the repository
 * root, as make unit does. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed_parse.h"

#define FEEDS "tests/data/feeds/"

/* What the callback saw, as "b name" / "p name" lines, in order. */
struct got {
	char **v;
	size_t n;
	size_t stop_after;  /* 0 = never stop */
};

static int collect(void *arg, const char *name, enum feed_action action)
{
	struct got *g = arg;
	char *s = NULL;
	cr_assert_geq(asprintf(&s, "%c %s", action == FEED_ACTION_PASSTHRU ? 'p' : 'b', name), 0);
	g->v = realloc(g->v, (g->n + 1) * sizeof *g->v);
	cr_assert_not_null(g->v);
	g->v[g->n++] = s;
	return g->stop_after && g->n == g->stop_after ? -ECANCELED : 0;
}

static void got_free(struct got *g)
{
	for (size_t i = 0; i < g->n; i++)
		free(g->v[i]);
	free(g->v);
	memset(g, 0, sizeof *g);
}

static void assert_names(const struct got *g, const char *const *want, size_t n)
{
	for (size_t i = 0; i < g->n && i < n; i++)
		cr_assert_str_eq(g->v[i], want[i], "entry %zu", i);
	cr_assert_eq(g->n, n, "got %zu entries, want %zu", g->n, n);
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "%s: run the tests from the repository root", path);
	cr_assert_eq(fseek(f, 0, SEEK_END), 0);
	long size = ftell(f);
	cr_assert_geq(size, 0);
	rewind(f);
	char *buf = malloc((size_t)size + 1);
	cr_assert_not_null(buf);
	cr_assert_eq(fread(buf, 1, (size_t)size, f), (size_t)size);
	fclose(f);
	*len = (size_t)size;
	return buf;  /* no NUL is needed by the parsers; the one byte spare is never read */
}

static int parse_file(enum feed_format fmt, const char *file, const char *origin, struct got *g,
		      struct feed_parse_stats *st)
{
	size_t len;
	char *data = slurp(file, &len);
	memset(st, 0, sizeof *st);
	int rc = feed_parse(fmt, data, len, origin, collect, g, st);
	free(data);
	return rc;
}

static int parse_text(enum feed_format fmt, const char *text, const char *origin, struct got *g,
		      struct feed_parse_stats *st)
{
	memset(st, 0, sizeof *st);
	return feed_parse(fmt, text, strlen(text), origin, collect, g, st);
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- formats and arguments ---- */

Test(feed_parse, format_names_round_trip)
{
	enum feed_format f;
	const char *names[] = { "rpz", "hosts", "plain", "misp" };
	for (size_t i = 0; i < N(names); i++) {
		cr_assert_eq(feed_format_parse(names[i], &f), 0);
		cr_assert_eq(f, (enum feed_format)i);
		cr_assert_str_eq(feed_format_name(f), names[i]);
	}
	cr_assert_eq(feed_format_parse("RPZ", &f), -EINVAL);
	cr_assert_eq(feed_format_parse("", &f), -EINVAL);
	cr_assert_eq(feed_format_parse(NULL, &f), -EINVAL);
	cr_assert_str_eq(feed_format_name((enum feed_format)42), "?");
}

Test(feed_parse, bad_arguments)
{
	struct feed_parse_stats st = { 0 };
	struct got g = { 0 };
	cr_assert_eq(feed_parse(FEED_FORMAT_PLAIN, NULL, 3, NULL, collect, &g, &st), -EINVAL);
	cr_assert_eq(feed_parse(FEED_FORMAT_PLAIN, "a.example", 9, NULL, NULL, &g, &st), -EINVAL);
	cr_assert_eq(feed_parse(FEED_FORMAT_PLAIN, "a.example", 9, NULL, collect, &g, NULL), -EINVAL);
	cr_assert_eq(feed_parse(FEED_FORMAT_MISP, "{}", 2, NULL, collect, &g, &st), -EINVAL);
	cr_assert_eq(feed_parse(FEED_FORMAT_RPZ, "", 0, "bad..origin", collect, &g, &st), -EINVAL);
	cr_assert_eq(feed_parse(FEED_FORMAT_RPZ, "", 0, "", collect, &g, &st), -EINVAL);
	cr_assert_eq(g.n, 0);
}

Test(feed_parse, empty_documents)
{
	struct feed_parse_stats st;
	struct got g = { 0 };
	for (enum feed_format f = FEED_FORMAT_RPZ; f <= FEED_FORMAT_PLAIN; f++) {
		memset(&st, 0, sizeof st);
		cr_assert_eq(feed_parse(f, NULL, 0, NULL, collect, &g, &st), 0);
		cr_assert_eq(st.lines, 0);
		cr_assert_eq(parse_text(f, "\n\n \t\n", NULL, &g, &st), 0);
		cr_assert_eq(st.lines, 3);
		cr_assert_eq(st.entries + st.invalid + st.skipped + st.unsupported, 0);
	}
	cr_assert_eq(g.n, 0);
}

/* ---- RPZ ---- */

static const char *const vendor_rpz[] = {
	"b malware-drop.example.com",
	"b payload.cdn-update.example.net",
	"b evil-tracker.example",
	"b evil-tracker.example",
	"b phish-login.example.org",
	"b xn--pypal-4ve.example",
	"b c2.badguys.test",
	"b stealer-panel.example.net",
	"b tracker.ads.example",
	"b ddos-reflector.example.net",
	"p safe.evil-tracker.example",
	"p cdn.example.com",
	"b walled.example.org",
	"b walled.example.org",
	"b walled.example.org",
	"b redirect.example.net",
	"b wild-local.example",
};

static void assert_vendor_counts(const struct feed_parse_stats *st)
{
	cr_assert_eq(st->entries, 17);
	cr_assert_eq(st->skipped, 3);       /* SOA and two NS at the apex */
	cr_assert_eq(st->unsupported, 5);   /* rpz-ip, rpz-client-ip, rpz-nsdname, rpz-nsip, tcp-only */
	cr_assert_eq(st->passthru, 2);
	cr_assert_eq(st->local_data_mapped, 5);
	cr_assert_eq(st->wildcards, 2);
	cr_assert_eq(st->not_to_ids, 0);
}

Test(feed_parse, rpz_vendor_zone)
{
	struct feed_parse_stats st;
	struct got g = { 0 };
	cr_assert_eq(parse_file(FEED_FORMAT_RPZ, FEEDS "vendor.rpz", NULL, &g, &st), 0);
	assert_names(&g, vendor_rpz, N(vendor_rpz));
	assert_vendor_counts(&st);
	cr_assert_eq(st.lines, 47);
	cr_assert_eq(st.invalid, 0);
	cr_assert_eq(st.n_samples, 0);
	got_free(&g);

	/* The zone's name given by the operator: the same as its $ORIGIN, so the same result. */
	cr_assert_eq(parse_file(FEED_FORMAT_RPZ, FEEDS "vendor.rpz", "RPZ.threatintel.example", &g,
				&st), 0);
	assert_names(&g, vendor_rpz, N(vendor_rpz));
	assert_vendor_counts(&st);
	got_free(&g);
}

Test(feed_parse, rpz_vendor_zone_with_garbage)
{
	struct feed_parse_stats st;
	struct got g = { 0 };
	cr_assert_eq(parse_file(FEED_FORMAT_RPZ, FEEDS "vendor-broken.rpz", NULL, &g, &st), 0);
	assert_names(&g, vendor_rpz, N(vendor_rpz));
	assert_vendor_counts(&st);
	cr_assert_eq(st.lines, 54);
	cr_assert_eq(st.invalid, 7);
	cr_assert_eq(st.n_samples, FEED_SAMPLES);
	cr_assert_str_eq(st.invalid_samples[0], "line 16: bad name: bad_label!.example\\x09CNAME\\x09.");
	cr_assert(strncmp(st.invalid_samples[1], "line 20: bad record: aaaaaaaa", 29) == 0,
		  "%s", st.invalid_samples[1]);
	cr_assert_str_eq(st.invalid_samples[2],
			 "line 23: bad name: \\xc3\\xbcmlaut-bank.example\\x09CNAME\\x09.");
	cr_assert_str_eq(st.invalid_samples[3],
			 "line 29: NUL byte: \\x01\\x02\\x00\\xfe\\xff binary junk");
	cr_assert_str_eq(st.invalid_samples[4], "line 33: bad name: 10.20.30.40\\x09CNAME\\x09.");
	got_free(&g);
}

Test(feed_parse, rpz_relative_owners_without_origin)
{
	static const char *const want[] = {
		"b bad-download.example",
		"b files.cheap-hosting.example",
		"b 203-0-113-5.dyn.example",
		"b update.fake-av.example",
	};
	struct feed_parse_stats st;
	struct got g = { 0 };
	/* No $ORIGIN: "@" is the root, the SOA sits there, names are read as written. */
	cr_assert_eq(parse_file(FEED_FORMAT_RPZ, FEEDS "urlhaus-style.rpz", NULL, &g, &st), 0);
	assert_names(&g, want, N(want));
	cr_assert_eq(st.lines, 13);
	cr_assert_eq(st.skipped, 2);
	cr_assert_eq(st.invalid + st.unsupported, 0);
	got_free(&g);
	/* With the zone's name: "@" and the relative owners hang from it. */
	cr_assert_eq(parse_file(FEED_FORMAT_RPZ, FEEDS "urlhaus-style.rpz", "rpz.urlhaus.example.",
				&g, &st), 0);
	assert_names(&g, want, N(want));
	cr_assert_eq(st.skipped, 2);
	cr_assert_eq(st.invalid, 0);
	got_free(&g);
}

Test(feed_parse, rpz_origin_from_soa_owner)
{
	static const char *const want[] = { "b a.example", "b b.example" };
	struct feed_parse_stats st;
	struct got g = { 0 };
	cr_assert_eq(parse_text(FEED_FORMAT_RPZ,
				"rpz.example. SOA ns. h. 1 2 3 4 5\n"
				"rpz.example. NS ns.\n"
				"a.example.rpz.example. CNAME .\n"
				"b.example.RPZ.EXAMPLE. CNAME .\n"
				"c.example. CNAME .\n",
				NULL, &g, &st), 0);
	assert_names(&g, want, N(want));
	cr_assert_eq(st.skipped, 2);
	cr_assert_eq(st.invalid, 1);
	cr_assert_str_eq(st.invalid_samples[0], "line 5: outside the policy zone: c.example. CNAME .");
	got_free(&g);
}

Test(feed_parse, rpz_directives)
{
	static const char *const want[] = { "b a.example", "b b.sub", "b c.example" };
	struct feed_parse_stats st;
	struct got g = { 0 };
	cr_assert_eq(parse_text(FEED_FORMAT_RPZ,
				"$ttl 1h30m\n"
				"$ORIGIN rpz.example.\n"
				"a.example CNAME .\n"
				"$ORIGIN sub\n"                /* relative: sub.rpz.example. */
				"b CNAME .\n"
				"$INCLUDE /etc/passwd\n"       /* never followed */
				"$GENERATE 1-9 host$ CNAME .\n"
				"$TTL soon\n"
				"$ORIGIN\n"
				"$FOO bar\n"
				"$ORIGIN rpz.example.\n"
				"c.example CNAME .\n",
				NULL, &g, &st), 0);
	assert_names(&g, want, N(want));
	cr_assert_eq(st.unsupported, 2);
	cr_assert_eq(st.invalid, 3);
	cr_assert_str_eq(st.invalid_samples[0], "line 8: bad $TTL: $TTL soon");
	cr_assert_str_eq(st.invalid_samples[1], "line 9: bad $ORIGIN: $ORIGIN");
	cr_assert_str_eq(st.invalid_samples[2], "line 10: unknown directive: $FOO bar");
	got_free(&g);
}

Test(feed_parse, rpz_bad_origin_makes_relative_names_invalid)
{
	struct feed_parse_stats st;
	struct got g = { 0 };
	cr_assert_eq(parse_text(FEED_FORMAT_RPZ,
				"$ORIGIN rpz.example.\n"
				"$ORIGIN bad..origin.\n"
				"a.example CNAME .\n"
				"b.example.rpz.example. CNAME .\n"
				"$ORIGIN rpz.example.\n"
				"c.example CNAME .\n",
				NULL, &g, &st), 0);
	static const char *const want[] = { "b c.example" };
	assert_names(&g, want, N(want));
	cr_assert_eq(st.invalid, 3);
	got_free(&g);
}

Test(feed_parse, rpz_multiline_and_stray_parentheses)
{
	static const char *const want[] = { "b a.example", "b b.example", "b d.example" };
	struct feed_parse_stats st;
	struct got g = { 0 };
	cr_assert_eq(parse_text(FEED_FORMAT_RPZ,
				"@ SOA ns. h. ( 1 ; serial (not a paren)\n"
				"  2 3 4 5 )\n"
				"a.example TXT \"a ; b ( c\"\n"     /* quoted: neither comment nor paren */
				"junk (\n"                         /* closed two lines down, refused: costs one line */
				"b.example CNAME .\n"
				"c.example CNAME . )\n"            /* closes more than it opens */
				"d.example CNAME ( . )\n",
				NULL, &g, &st), 0);
	assert_names(&g, want, N(want));
	cr_assert_eq(st.lines, 7);
	cr_assert_eq(st.skipped, 1);
	cr_assert_eq(st.invalid, 2);
	cr_assert_str_eq(st.invalid_samples[0], "line 4: bad record: junk (");
	cr_assert_str_eq(st.invalid_samples[1], "line 6: unbalanced parentheses: c.example CNAME . )");
	got_free(&g);
}

Test(feed_parse, rpz_refused_multiline_record_resumes_on_next_line)
{
	static const char *const want[] = { "b a.example" };
	struct feed_parse_stats st;
	struct got g = { 0 };
	/* The "(" joins all three lines, ldns refuses the result: line 1 is invalid, line 2 has a
	 * blank owner after an invalid record (invalid too), line 3 is read again on its own. */
	cr_assert_eq(parse_text(FEED_FORMAT_RPZ,
				"x.example A ( 999.1.1.1\n"
				"   )\n"
				"a.example CNAME .\n",
				NULL, &g, &st), 0);
	assert_names(&g, want, N(want));
	cr_assert_eq(st.lines, 3);
	cr_assert_eq(st.invalid, 2);
	got_free(&g);
}

Test(feed_parse, rpz_blank_owner_never_borrows_an_invalid_owner)
{
	static const char *const want[] = { "p ok.example" };
	struct feed_parse_stats st;
	struct got g = { 0 };
	cr_assert_eq(parse_text(FEED_FORMAT_RPZ,
				"ok.example CNAME rpz-passthru.\n"
				"bad..example A 192.0.2.1\n"
				"\tTXT \"would otherwise block ok.example\"\n",
				NULL, &g, &st), 0);
	assert_names(&g, want, N(want));
	cr_assert_eq(st.invalid, 2);
	cr_assert_str_eq(st.invalid_samples[1], "line 3: blank owner after an invalid record: "
			 "\\x09TXT \\x22would otherwise block ok.example\\x22");
	got_free(&g);
}

Test(feed_parse, rpz_actions_and_types)
{
	static const char *const want[] = {
		"b nx.example", "b nodata.example", "b drop.example", "p pass.example",
		"b garden.example", "b mx.example", "b unknown-type.example",
	};
	struct feed_parse_stats st;
	struct got g = { 0 };
	cr_assert_eq(parse_text(FEED_FORMAT_RPZ,
				"$ORIGIN rpz.example.\n"
				"nx.example CNAME .\n"
				"nodata.example CNAME *.\n"
				"drop.example CNAME rpz-drop.\n"
				"pass.example CNAME RPZ-PASSTHRU.\n"
				"tcp.example CNAME rpz-tcp-only.\n"
				"garden.example CNAME rpz-passthru\n"  /* relative: rpz-passthru.<origin> */
				"mx.example MX 10 mail.garden.\n"
				"unknown-type.example TYPE65000 \\# 2 abcd\n"
				"sig.example RRSIG A 8 2 300 20240601000000 20240501000000 1 example. AAAA\n"
				"ns.example NS ns1.garden.\n"
				"dname.example DNAME garden.\n"
				"ch.example CH TXT \"x\"\n"
				"* CNAME .\n"
				"a.*.example CNAME .\n"
				"x.rpz-nsip CNAME .\n"
				"junk\n",
				NULL, &g, &st), 0);
	assert_names(&g, want, N(want));
	cr_assert_eq(st.passthru, 1);
	cr_assert_eq(st.local_data_mapped, 3);
	cr_assert_eq(st.skipped, 1);       /* RRSIG */
	cr_assert_eq(st.unsupported, 4);   /* tcp-only, NS and DNAME below the apex, rpz-nsip */
	cr_assert_eq(st.invalid, 4);       /* CH class, "*", "a.*", "junk" */
	got_free(&g);
}

Test(feed_parse, rpz_escaped_and_binary_owners_are_invalid)
{
	struct feed_parse_stats st;
	struct got g = { 0 };
	cr_assert_eq(parse_text(FEED_FORMAT_RPZ,
				"a\\.b.example CNAME .\n"      /* one label holding a dot */
				"a\\000b.example CNAME .\n"
				"a\\032b.example CNAME .\n"
				"\"quoted.example\" CNAME .\n",
				NULL, &g, &st), 0);
	cr_assert_eq(g.n, 0);
	cr_assert_eq(st.invalid, 4);
	got_free(&g);
}

Test(feed_parse, rpz_relative_name_and_origin_longer_than_255_bytes)
{
	/* ldns joins a relative owner and $ORIGIN without checking the total length (found by
	 * the fuzzer as a stack overflow): such an owner is invalid, never written past a buffer. */
	char doc[1024], label[64];
	memset(label, 'o', 50);
	label[50] = '\0';
	snprintf(doc, sizeof doc,
		 "$ORIGIN rpz.example.\n"
		 "$ORIGIN %s.%s.%s.%s.rpz.example.\n"
		 "%s%s.%s%s.x CNAME .\n"
		 "ok.example.rpz.example. CNAME .\n",
		 label, label, label, label, label, "0123456789", label, "0123456789");
	struct feed_parse_stats st;
	struct got g = { 0 };
	cr_assert_eq(parse_text(FEED_FORMAT_RPZ, doc, NULL, &g, &st), 0);
	static const char *const want[] = { "b ok.example" };
	assert_names(&g, want, N(want));
	cr_assert_eq(st.invalid, 1);
	got_free(&g);
}

/* ---- hosts ---- */

static const char *const stevenblack[] = {
	"b ads.adnetwork.example",
	"b tracker.metrics.example",
	"b pixel.spy.example",
	"b banner.ads.example",
	"b popup.example.net",
	"b multi-one.example",
	"b multi-two.example",
	"b multi-three.example",
	"b ipv6-sink.example",
	"b ipv6-loopback.example",
	"b wild.example",
	"b xn--80ak6aa92e.example",
	"b crlf-line.example",
	"b redirected.example.org",
	"b login-verify.bank.example",
};

static void assert_stevenblack_counts(const struct feed_parse_stats *st)
{
	cr_assert_eq(st->entries, 15);
	cr_assert_eq(st->skipped, 14);   /* localhost and friends, and "0.0.0.0 0.0.0.0" */
	cr_assert_eq(st->local_data_mapped, 1);
	cr_assert_eq(st->wildcards, 1);
	cr_assert_eq(st->unsupported + st->passthru, 0);
}

Test(feed_parse, hosts_stevenblack)
{
	struct feed_parse_stats st;
	struct got g = { 0 };
	cr_assert_eq(parse_file(FEED_FORMAT_HOSTS, FEEDS "stevenblack.hosts", NULL, &g, &st), 0);
	assert_names(&g, stevenblack, N(stevenblack));
	assert_stevenblack_counts(&st);
	cr_assert_eq(st.lines, 50);
	cr_assert_eq(st.invalid, 0);
	got_free(&g);
}

Test(feed_parse, hosts_stevenblack_with_garbage)
{
	struct feed_parse_stats st;
	struct got g = { 0 };
	cr_assert_eq(parse_file(FEED_FORMAT_HOSTS, FEEDS "stevenblack-broken.hosts", NULL, &g, &st),
		     0);
	assert_names(&g, stevenblack, N(stevenblack));
	assert_stevenblack_counts(&st);
	cr_assert_eq(st.lines, 57);
	cr_assert_eq(st.invalid, 7);
	cr_assert_str_eq(st.invalid_samples[0], "line 35: bad name: bad..name.example");
	cr_assert(strncmp(st.invalid_samples[1], "line 39: bad name: xxxxxxxx", 27) == 0);
	cr_assert_str_eq(st.invalid_samples[2],
			 "line 41: bad name: \\xd0\\xbf\\xd1\\x80\\xd0\\xb8\\xd0\\xbc\\xd0\\xb5"
			 "\\xd1\\x80.example");
	cr_assert_str_eq(st.invalid_samples[3],
			 "line 44: NUL byte: \\x00\\x01\\x02\\x7f\\xff junk");
	cr_assert_str_eq(st.invalid_samples[4], "line 47: bad name: 10.20.30.40");
	got_free(&g);
}

Test(feed_parse, hosts_edge_lines)
{
	static const char *const want[] = { "b a.example", "b b.example", "b c.example" };
	struct feed_parse_stats st;
	struct got g = { 0 };
	cr_assert_eq(parse_text(FEED_FORMAT_HOSTS,
				"\xef\xbb\xbf" "0.0.0.0 a.example\r\n"   /* byte order mark, CRLF */
				"0.0.0.0 b.example#glued comment\n"
				"  127.0.0.2\tc.example  \n"
				"a.example\n"                            /* no address */
				"0.0.0.0 # only a comment\n"             /* no name */
				"1.2.3.4.5 d.example\n"
				"0.0.0.0 0.0.0.0 127.0.0.1 :: ::1\n",  /* sinks as names: skipped */
				NULL, &g, &st), 0);
	assert_names(&g, want, N(want));
	cr_assert_eq(st.invalid, 3);
	cr_assert_eq(st.skipped, 4);
	cr_assert_eq(st.local_data_mapped, 0);
	cr_assert_str_eq(st.invalid_samples[0], "line 4: not an address: a.example");
	cr_assert_str_eq(st.invalid_samples[1], "line 5: address without a name: 0.0.0.0 ");
	got_free(&g);
}

/* ---- plain lists ---- */

static const char *const blocklist[] = {
	"b evil.example",
	"b malware-host.example.com",
	"b wild.example",
	"b dot-prefixed.example",
	"b indented.example",
	"b trailing-comment.example",
	"b trailing-semicolon.example",
	"b adblock-style.example",
	"b important.ads.example",
	"b no-caret.example",
	"p allowed.tracker.example",
	"b url-host.example",
	"b url-port.example",
	"b xn--80ak6aa92e.example",
	"b last-line-no-newline.example",
};

static void assert_blocklist_counts(const struct feed_parse_stats *st)
{
	cr_assert_eq(st->entries, 15);
	cr_assert_eq(st->passthru, 1);
	cr_assert_eq(st->wildcards, 1);
	cr_assert_eq(st->unsupported, 6);  /* $third-party, path, pattern, @@ unanchored, 2 URLs */
	cr_assert_eq(st->skipped, 1);      /* localhost */
}

Test(feed_parse, plain_blocklist)
{
	struct feed_parse_stats st;
	struct got g = { 0 };
	cr_assert_eq(parse_file(FEED_FORMAT_PLAIN, FEEDS "blocklist.txt", NULL, &g, &st), 0);
	assert_names(&g, blocklist, N(blocklist));
	assert_blocklist_counts(&st);
	cr_assert_eq(st.lines, 28);
	cr_assert_eq(st.invalid, 0);
	got_free(&g);
}

Test(feed_parse, plain_blocklist_with_garbage)
{
	struct feed_parse_stats st;
	struct got g = { 0 };
	cr_assert_eq(parse_file(FEED_FORMAT_PLAIN, FEEDS "blocklist-broken.txt", NULL, &g, &st), 0);
	assert_names(&g, blocklist, N(blocklist));
	assert_blocklist_counts(&st);
	cr_assert_eq(st.lines, 34);
	cr_assert_eq(st.invalid, 6);
	cr_assert_eq(st.n_samples, FEED_SAMPLES);
	cr_assert_str_eq(st.invalid_samples[0], "line 8: more than a name: bad name with spaces.example");
	cr_assert_str_eq(st.invalid_samples[2], "line 15: bad name: 192.0.2.77");
	cr_assert_str_eq(st.invalid_samples[3], "line 18: bad name: \\xc3\\xbcmlaut.example");
	cr_assert_str_eq(st.invalid_samples[4], "line 22: bad name: \\x01\\x02\\x03\\x1b[31mescape");
	got_free(&g);
}

Test(feed_parse, plain_edge_lines)
{
	static const char *const want[] = { "b a.example", "b b.example", "b c.example" };
	struct feed_parse_stats st;
	struct got g = { 0 };
	cr_assert_eq(parse_text(FEED_FORMAT_PLAIN,
				"a.example\r\n"
				"HTTPS://B.Example\n"
				"http://c.example:80/\n"
				"http://d.example:http/\n"      /* not a port */
				"http://e.example/?q=1\n"       /* a query is narrower than the host */
				"example.com##.ad-banner\n"     /* Adblock cosmetic rule: not a name */
				"..double.example\n"
				".\n"
				"*.\n"
				"0.0.0.0 f.example\n",          /* a hosts line in a plain list */
				NULL, &g, &st), 0);
	assert_names(&g, want, N(want));
	cr_assert_eq(st.unsupported, 1);
	cr_assert_eq(st.invalid, 6);
	got_free(&g);
}

/* ---- lines, samples, stopping ---- */

Test(feed_parse, long_lines_are_invalid_not_truncated)
{
	size_t len = FEED_MAX_LINE + 1;
	char *doc = malloc(len + 32);
	cr_assert_not_null(doc);
	memset(doc, 'a', len);
	strcpy(doc + len, "\nok.example\n");
	struct feed_parse_stats st;
	struct got g = { 0 };
	cr_assert_eq(parse_text(FEED_FORMAT_PLAIN, doc, NULL, &g, &st), 0);
	static const char *const want[] = { "b ok.example" };
	assert_names(&g, want, N(want));
	cr_assert_eq(st.invalid, 1);
	cr_assert(strstr(st.invalid_samples[0], "line 1: line too long: aaaa") == st.invalid_samples[0]);
	cr_assert_eq(strlen(st.invalid_samples[0]), FEED_SAMPLE_LEN - 1);
	cr_assert_str_eq(st.invalid_samples[0] + FEED_SAMPLE_LEN - 4, "...");
	got_free(&g);

	/* At the limit, a line is read (and refused here, for what it says). */
	doc[FEED_MAX_LINE] = '\n';
	cr_assert_eq(parse_text(FEED_FORMAT_HOSTS, doc, NULL, &g, &st), 0);
	cr_assert_eq(st.invalid, 2);
	cr_assert(strstr(st.invalid_samples[0], "line 1: not an address") == st.invalid_samples[0]);
	got_free(&g);
	free(doc);
}

Test(feed_parse, samples_stop_at_five_but_counting_goes_on)
{
	struct feed_parse_stats st;
	struct got g = { 0 };
	cr_assert_eq(parse_text(FEED_FORMAT_PLAIN, "-a-\n!ok\nb..\nc..\nd..\ne..\nf..\ng..\n", NULL,
				&g, &st), 0);
	cr_assert_eq(st.invalid, 6);
	cr_assert_eq(st.n_samples, FEED_SAMPLES);
	cr_assert_str_eq(st.invalid_samples[4], "line 7: bad name: f..");
	got_free(&g);
}

Test(feed_parse, callback_stops_the_parse)
{
	struct feed_parse_stats st;
	struct got g = { .stop_after = 2 };
	cr_assert_eq(parse_text(FEED_FORMAT_HOSTS, "0.0.0.0 a.example b.example c.example\n"
				"0.0.0.0 d.example\n", NULL, &g, &st), -ECANCELED);
	cr_assert_eq(g.n, 2);
	cr_assert_eq(st.lines, 1);
	got_free(&g);
	g.stop_after = 1;
	cr_assert_eq(parse_text(FEED_FORMAT_RPZ, "a.example CNAME .\nb.example CNAME .\n", NULL, &g,
				&st), -ECANCELED);
	cr_assert_eq(g.n, 1);
	got_free(&g);
}

Test(feed_parse, names_at_the_length_limits)
{
	/* Labels of 63 bytes, 253 bytes in all: the longest name there is. */
	char name[254], doc[1024];
	memset(name, 'a', 253);
	name[253] = '\0';
	name[63] = name[127] = name[191] = '.';
	struct feed_parse_stats st;
	struct got g = { 0 };
	snprintf(doc, sizeof doc, "%s.\n*.%s\nx%s\n%s\n", name, name, name,
		 "x6789012345678901234567890123456789012345678901234567890123456789.example");
	cr_assert_eq(parse_text(FEED_FORMAT_PLAIN, doc, NULL, &g, &st), 0);
	cr_assert_eq(g.n, 2);
	cr_assert_str_eq(g.v[0] + 2, name);
	cr_assert_str_eq(g.v[1] + 2, name);
	cr_assert_eq(st.invalid, 2);  /* 254 bytes; a 64-byte label */
	got_free(&g);
}

/* ---- MISP ---- */

#define EVENT1 "5f3c2a1e-8b4d-4c6a-9f2e-1a2b3c4d5e6f"
#define EVENT2 "0b9d7e2c-3f1a-4e5b-8c6d-7e8f9a0b1c2d"

static int manifest_file(const char *file, char (**uuids)[FEED_UUID_LEN + 1], size_t *n,
			 struct feed_parse_stats *st, char *err)
{
	size_t len;
	char *data = slurp(file, &len);
	memset(st, 0, sizeof *st);
	int rc = feed_misp_manifest(data, len, uuids, n, st, err, 256);
	free(data);
	return rc;
}

static int event_file(const char *file, struct got *g, struct feed_parse_stats *st, char *err)
{
	size_t len;
	char *data = slurp(file, &len);
	int rc = feed_misp_event(data, len, collect, g, st, err, 256);
	free(data);
	return rc;
}

Test(feed_parse, misp_manifest)
{
	char (*uuids)[FEED_UUID_LEN + 1];
	size_t n;
	struct feed_parse_stats st;
	char err[256];
	cr_assert_eq(manifest_file(FEEDS "misp/manifest.json", &uuids, &n, &st, err), 0);
	cr_assert_eq(n, 2);
	cr_assert_str_eq(uuids[0], EVENT2);  /* sorted */
	cr_assert_str_eq(uuids[1], EVENT1);
	cr_assert_eq(st.lines, 2);
	cr_assert_eq(st.invalid, 0);
	free(uuids);

	cr_assert_eq(manifest_file(FEEDS "misp/manifest-broken.json", &uuids, &n, &st, err), 0);
	cr_assert_eq(n, 2);
	cr_assert_str_eq(uuids[0], EVENT2);
	cr_assert_str_eq(uuids[1], EVENT1);
	cr_assert_eq(st.lines, 4);
	cr_assert_eq(st.invalid, 2);
	cr_assert_str_eq(st.invalid_samples[0], "key 3: not a UUID: ../../../etc/passwd");
	free(uuids);
}

Test(feed_parse, misp_manifest_whole_document_failures)
{
	char (*uuids)[FEED_UUID_LEN + 1] = (void *)1;
	size_t n = 7;
	struct feed_parse_stats st = { 0 };
	char err[256] = "";
	cr_assert_eq(feed_misp_manifest("{\"a\": ", 6, &uuids, &n, &st, err, sizeof err), -EINVAL);
	cr_assert_null(uuids);
	cr_assert_eq(n, 0);
	cr_assert(strstr(err, "manifest: ") == err, "%s", err);
	cr_assert_eq(feed_misp_manifest("[1]", 3, &uuids, &n, &st, err, sizeof err), -EINVAL);
	cr_assert_str_eq(err, "manifest: not a JSON object");
	cr_assert_eq(feed_misp_manifest("{}", 2, &uuids, &n, &st, NULL, 0), 0);
	cr_assert_null(uuids);
	cr_assert_eq(n, 0);
	cr_assert_eq(feed_misp_manifest(NULL, 0, &uuids, &n, &st, NULL, 0), -EINVAL);
	/* A NUL inside the JSON text ends nothing early: jansson refuses it. */
	cr_assert_eq(feed_misp_manifest("{\"" EVENT1 "\":{}}\0junk", 44 + 5, &uuids, &n, &st, NULL, 0),
		     -EINVAL);
}

static const char *const event1[] = {
	"b secure-login.gov-portal.example",
	"b mail.phish-kit.example",
	"b ministry-update.example",
	"b cdn-files.phish-kit.example",
};

static const char *const event2[] = {
	"b beacon.c2-relay.example",
	"b team-server.example",
	"b dga-family.example",
	"b fallback.c2-relay.example",
};

Test(feed_parse, misp_events)
{
	struct feed_parse_stats st = { 0 };
	struct got g = { 0 };
	char err[256];
	cr_assert_eq(event_file(FEEDS "misp/" EVENT1 ".json", &g, &st, err), 0);
	assert_names(&g, event1, N(event1));
	cr_assert_eq(st.lines, 10);
	cr_assert_eq(st.skipped, 5);     /* url, ip-dst twice, email-src, a deleted domain */
	cr_assert_eq(st.not_to_ids, 1);
	cr_assert_eq(st.invalid, 0);
	got_free(&g);

	/* Counters add up across the events of one feed. */
	cr_assert_eq(event_file(FEEDS "misp/" EVENT2 ".json", &g, &st, err), 0);
	assert_names(&g, event2, N(event2));
	cr_assert_eq(st.lines, 17);
	cr_assert_eq(st.entries, 8);
	cr_assert_eq(st.skipped, 7);     /* + sha256, an attribute of a deleted object */
	cr_assert_eq(st.not_to_ids, 2);
	cr_assert_eq(st.wildcards, 1);
	cr_assert_eq(st.invalid, 0);
	got_free(&g);
}

Test(feed_parse, misp_event_with_garbage)
{
	struct feed_parse_stats st = { 0 };
	struct got g = { 0 };
	char err[256];
	cr_assert_eq(event_file(FEEDS "misp/event-broken.json", &g, &st, err), 0);
	assert_names(&g, event2, N(event2));
	cr_assert_eq(st.lines, 17);
	cr_assert_eq(st.entries, 4);
	cr_assert_eq(st.skipped, 2);
	cr_assert_eq(st.not_to_ids, 1);
	cr_assert_eq(st.invalid, 10);
	cr_assert_eq(st.lines, st.entries + st.skipped + st.not_to_ids + st.invalid);
	cr_assert_str_eq(st.invalid_samples[0], "attribute 2: bad name: bad_label!.example");
	cr_assert_str_eq(st.invalid_samples[2],
			 "attribute 7: bad name: \\xd0\\xbf\\xd1\\x80\\xd0\\xb8\\xd0\\xbc\\xd0\\xb5"
			 "\\xd1\\x80.example");
	cr_assert_str_eq(st.invalid_samples[3], "attribute 8: bad name: 192.0.2.99");
	cr_assert_str_eq(st.invalid_samples[4], "attribute 9: bad name: ");
	got_free(&g);
}

Test(feed_parse, misp_event_whole_document_failures)
{
	struct feed_parse_stats st = { 0 };
	struct got g = { 0 };
	char err[256];
	const char *bad[][2] = {
		{ "{\"Event\": {\"Attribute\": [", "event: " },
		{ "{\"event\": {}}", "event: no \"Event\" object" },
		{ "{\"Event\": []}", "event: no \"Event\" object" },
		{ "{\"Event\": {\"Attribute\": {}}}", "event: \"Attribute\" is not an array" },
		{ "{\"Event\": {\"Object\": 1}}", "event: \"Object\" is not an array" },
	};
	for (size_t i = 0; i < N(bad); i++) {
		cr_assert_eq(feed_misp_event(bad[i][0], strlen(bad[i][0]), collect, &g, &st, err,
					     sizeof err), -EINVAL, "%s", bad[i][0]);
		cr_assert(strncmp(err, bad[i][1], strlen(bad[i][1])) == 0, "%s", err);
	}
	cr_assert_eq(feed_misp_event("{\"Event\": {}}", 13, collect, &g, &st, NULL, 0), 0);
	cr_assert_eq(st.lines, 0);
	cr_assert_eq(g.n, 0);
}

Test(feed_parse, misp_callback_stops)
{
	struct feed_parse_stats st = { 0 };
	struct got g = { .stop_after = 4 };
	char err[256];
	/* The fourth entry of event 2 is inside an Object: the stop must end the object loop. */
	cr_assert_eq(event_file(FEEDS "misp/" EVENT2 ".json", &g, &st, err), -ECANCELED);
	cr_assert_eq(g.n, 4);
	cr_assert_eq(st.lines, 5);
	got_free(&g);
}
