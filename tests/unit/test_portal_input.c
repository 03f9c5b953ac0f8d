/* test_portal_input.c -- what the portal accepts from outside: prefixes, domain names, list
 * files (plain and CSV) with the line of the first problem, CSV quoting on export, routes. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "listio.h"
#include "routes.h"
#include "snapshot.h"
#include "valid.h"

static bool cidr_ok(const char *text)
{
	const char *why;
	return valid_cidr_text(text, &why) == 0;
}

Test(cidr, accepts_networks)
{
	cr_assert(cidr_ok("10.0.0.0/8"));
	cr_assert(cidr_ok("192.0.2.0/24"));
	cr_assert(cidr_ok("192.0.2.7/32"));
	cr_assert(cidr_ok("2001:db8::/32"));
	cr_assert(cidr_ok("2001:db8:0:1::/64"));
	cr_assert(cidr_ok("::1/128"));
}

Test(cidr, refuses_the_rest_with_a_reason)
{
	const char *bad[] = { "", "10.0.0.0", "10.0.0.0/", "10.0.0.0/33", "10.0.0.1/8",
			      "10.0.0.0/08", "10.0.0.0/+8", "10.1/16", "10.0.0.0/8 ", " 10.0.0.0/8",
			      "2001:db8::1/32", "2001:db8::/129", "::ffff:10.0.0.0/104",
			      "0.0.0.0/0", "10.0.0.0/7", "::/0", "2001::/15", "example.com/24",
			      "10.0.0.0/8/8", "300.0.0.0/8" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		const char *why = NULL;
		cr_assert_eq(valid_cidr_text(bad[i], &why), -EINVAL, "%s", bad[i]);
		cr_assert(why && *why);
	}
	const char *why;
	valid_cidr_text("10.0.0.1/8", &why);
	cr_assert(strstr(why, "bits set"), "%s", why);
}

static const char *norm(const char *text)
{
	static char out[SNAPSHOT_NAME_TEXT_MAX];
	return snapshot_name_text(text, strlen(text), out) == 0 ? out : NULL;
}

Test(names, normalise_like_the_dns_name_domain)
{
	cr_assert_str_eq(norm("Example.COM."), "example.com");
	cr_assert_str_eq(norm("*.ads.example"), "ads.example");
	cr_assert_str_eq(norm("_dmarc.example.org"), "_dmarc.example.org");
	cr_assert_str_eq(norm("xn--bcher-kva.example"), "xn--bcher-kva.example");
	cr_assert_null(norm("10.0.0.1"), "an address is not a name");
	cr_assert_null(norm("example.123"));
	cr_assert_null(norm(""));
	cr_assert_null(norm("."));
	cr_assert_null(norm("a..b"));
	cr_assert_null(norm("bücher.example"), "IDN goes in as A-labels");
	cr_assert_null(norm("has space.example"));
	char label[80];
	memset(label, 'a', 64);
	strcpy(label + 64, ".example");
	cr_assert_null(norm(label), "a 64-byte label");
}

struct got {
	char names[8][SNAPSHOT_NAME_TEXT_MAX];
	char comments[8][600];
	int n;
};

static int take(void *arg, const char *domain, const char *comment)
{
	struct got *g = arg;
	if (g->n >= 8)
		return -E2BIG;
	strcpy(g->names[g->n], domain);
	strcpy(g->comments[g->n], comment);
	g->n++;
	return 0;
}

static int parse(enum listio_format f, const char *text, struct got *g, struct listio_error *e)
{
	memset(g, 0, sizeof *g);
	return listio_parse(f, text, strlen(text), take, g, e);
}

Test(listio, plain_lists)
{
	struct got g;
	struct listio_error e;
	cr_assert_eq(parse(LISTIO_PLAIN, "# header\n\nA.example\r\n  b.example  \nc.example", &g, &e), 0);
	cr_assert_eq(g.n, 3);
	cr_assert_str_eq(g.names[0], "a.example");
	cr_assert_str_eq(g.names[1], "b.example");
	cr_assert_str_eq(g.names[2], "c.example");
	cr_assert_eq(parse(LISTIO_PLAIN, "ok.example\n\nbad name\nlater.example\n", &g, &e), -EINVAL);
	cr_assert_eq(e.line, 3);
	cr_assert_eq(g.n, 1, "nothing after the bad line");
}

Test(listio, csv_rfc4180)
{
	struct got g;
	struct listio_error e;
	const char *text = "Domain,Comment\r\n"
			   "a.example,plain comment\r\n"
			   "\"b.example\",\"with, comma and \"\"quotes\"\"\"\r\n"
			   "d.example\r\n"
			   "\r\n";
	cr_assert_eq(parse(LISTIO_CSV, text, &g, &e), 0, "%u: %s", e.line, e.reason);
	cr_assert_eq(g.n, 3);
	cr_assert_str_eq(g.comments[0], "plain comment");
	cr_assert_str_eq(g.comments[1], "with, comma and \"quotes\"");
	cr_assert_str_eq(g.names[2], "d.example");
	cr_assert_str_eq(g.comments[2], "");
	/* A quoted line break is valid CSV but not a valid comment; the error names the line the
	 * record starts on, and lines after it are counted right. */
	cr_assert_eq(parse(LISTIO_CSV, "a.example,\"two\nlines\"\n", &g, &e), -EINVAL);
	cr_assert_eq(e.line, 1);
	cr_assert_eq(parse(LISTIO_CSV, "a.example,\"x\ny\"z\n", &g, &e), -EINVAL);
	cr_assert_eq(e.line, 1);
	cr_assert_eq(parse(LISTIO_CSV, "a.example\nb.example\nc d\n", &g, &e), -EINVAL);
	cr_assert_eq(e.line, 3);
}

Test(listio, csv_errors_name_the_line)
{
	struct got g;
	struct listio_error e;
	cr_assert_eq(parse(LISTIO_CSV, "a.example\nb.example,\"open\n", &g, &e), -EINVAL);
	cr_assert_eq(e.line, 2);
	cr_assert_eq(parse(LISTIO_CSV, "a.example,x\"y\n", &g, &e), -EINVAL);
	cr_assert_eq(e.line, 1);
	cr_assert_eq(parse(LISTIO_CSV, "a.example,\"x\"y\n", &g, &e), -EINVAL);
	cr_assert_eq(parse(LISTIO_CSV, "a.example,b,c\n", &g, &e), -EINVAL);
	cr_assert(strstr(e.reason, "two columns"));
	cr_assert_eq(parse(LISTIO_CSV, "a.example,ok\n\"\"\"\",x\n", &g, &e), -EINVAL);
	cr_assert_eq(e.line, 2);
	char big[700] = "a.example,";
	memset(big + 10, 'x', 600);
	big[610] = '\0';
	cr_assert_eq(parse(LISTIO_CSV, big, &g, &e), -EINVAL);
	cr_assert(strstr(e.reason, "500"));
	cr_assert_eq(parse(LISTIO_CSV, "a.example,\x01\n", &g, &e), -EINVAL);
}

Test(listio, csv_field_writer)
{
	char buf[64];
	cr_assert_eq(listio_csv_field(buf, sizeof buf, "plain", 1), 5);
	cr_assert_str_eq(buf, "plain");
	listio_csv_field(buf, sizeof buf, "a,b \"c\"", 1);
	cr_assert_str_eq(buf, "\"a,b \"\"c\"\"\"");
	listio_csv_field(buf, sizeof buf, "=1+1", 1);
	cr_assert_str_eq(buf, "\"'=1+1\"", "a formula is defused");
	listio_csv_field(buf, sizeof buf, "-x.example", 0);
	cr_assert_str_eq(buf, "-x.example", "a domain is written as it is");
	cr_assert_eq(listio_csv_field(buf, 4, "abcdefgh", 0), 8, "the size needed");
	cr_assert_str_eq(buf, "abc");
}

Test(routes, match_capture_and_method)
{
	const char *params[3] = { 0 };
	char buf[256], allow[64];
	unsigned status;
	const struct route *rt = routes_match("GET", "/v1/tenants/0b7c9a1e-0000-4000-8000-000000000001",
					      params, buf, sizeof buf, &status, allow, sizeof allow);
	cr_assert_not_null(rt);
	cr_assert_str_eq(rt->pattern, "/v1/tenants/{tenant_id}");
	cr_assert_str_eq(params[0], "0b7c9a1e-0000-4000-8000-000000000001");
	rt = routes_match("GET", "/v1/tenants/school-1", params, buf, sizeof buf, &status, allow,
			  sizeof allow);
	cr_assert_null(rt, "a non-UUID id names nothing");
	cr_assert_eq(status, 404);
	rt = routes_match("PUT", "/v1/tenants", params, buf, sizeof buf, &status, allow, sizeof allow);
	cr_assert_null(rt);
	cr_assert_eq(status, 405);
	cr_assert_str_eq(allow, "GET, POST");
	rt = routes_match("DELETE", "/v1/lists/0b7c9a1e-0000-4000-8000-000000000001/entries/a.example",
			  params, buf, sizeof buf, &status, allow, sizeof allow);
	cr_assert_not_null(rt);
	cr_assert_str_eq(params[1], "a.example");
	cr_assert_null(routes_match("GET", "/v1/tenants/", params, buf, sizeof buf, &status, allow,
				    sizeof allow));
	cr_assert_null(routes_match("GET", "/v1//tenants", params, buf, sizeof buf, &status, allow,
				    sizeof allow));
	cr_assert_null(routes_match("GET", "v1/tenants", params, buf, sizeof buf, &status, allow,
				    sizeof allow));
}
