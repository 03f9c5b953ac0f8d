/* test_special.c -- which names the resolver answers itself (RFC 6761 and friends). */
#include <criterion/criterion.h>
#include <ldns/ldns.h>
#include <string.h>

#include "special.h"

/* The lowercase wire form of a presentation name, through ldns. */
static uint8_t to_wire(const char *name, uint8_t *out)
{
	ldns_rdf *r = NULL;
	cr_assert_eq(ldns_str2rdf_dname(&r, name), LDNS_STATUS_OK, "%s", name);
	ldns_dname2canonical(r);
	size_t len = ldns_rdf_size(r);
	memcpy(out, ldns_rdf_data(r), len);
	ldns_rdf_deep_free(r);
	return (uint8_t)len;
}

static struct special_match classify(const char *name, const uint8_t *const *exempt)
{
	uint8_t wire[256];
	uint8_t len = to_wire(name, wire);
	struct special_match m = { .answer = (enum special_answer)-1 };
	special_classify(wire, len, exempt, &m);
	return m;
}

/* Asserts the answer and, for a special name, that the zone is the suffix zone_name. */
static void expect(const char *name, enum special_answer answer, const char *zone_name)
{
	struct special_match m = classify(name, NULL);
	cr_assert_eq(m.answer, answer, "%s: answer %d, expected %d", name, m.answer, answer);
	if (answer != SPECIAL_NONE) {
		uint8_t zone[256];
		cr_assert_eq(m.zone_len, to_wire(zone_name, zone), "%s: zone length", name);
	}
}

Test(special, single_label_zones_by_their_tld)
{
	expect("localhost.", SPECIAL_LOOPBACK, "localhost.");
	expect("db.localhost.", SPECIAL_LOOPBACK, "localhost.");
	expect("x.invalid.", SPECIAL_NXDOMAIN, "invalid.");
	expect("a.b.test.", SPECIAL_NXDOMAIN, "test.");
	expect("printer.local.", SPECIAL_NXDOMAIN, "local.");
	expect("duckduckgogg42xjoc72x3sjasowoarfbgcmvfimaftt6twagswzczad.onion.",
	       SPECIAL_NXDOMAIN, "onion.");
}

Test(special, zones_under_arpa)
{
	expect("router.home.arpa.", SPECIAL_NXDOMAIN, "home.arpa.");
	expect("_dns.resolver.arpa.", SPECIAL_NODATA, "resolver.arpa.");
	expect("1.0.0.127.in-addr.arpa.", SPECIAL_NXDOMAIN, "127.in-addr.arpa.");
	expect("4.3.2.10.in-addr.arpa.", SPECIAL_NXDOMAIN, "10.in-addr.arpa.");
	expect("7.1.168.192.in-addr.arpa.", SPECIAL_NXDOMAIN, "168.192.in-addr.arpa.");
	expect("9.9.254.169.in-addr.arpa.", SPECIAL_NXDOMAIN, "254.169.in-addr.arpa.");
	expect("1.2.16.172.in-addr.arpa.", SPECIAL_NXDOMAIN, "16.172.in-addr.arpa.");
	expect("1.2.31.172.in-addr.arpa.", SPECIAL_NXDOMAIN, "31.172.in-addr.arpa.");
	expect("1.d.f.ip6.arpa.", SPECIAL_NXDOMAIN, "d.f.ip6.arpa.");
	expect("1.b.e.f.ip6.arpa.", SPECIAL_NXDOMAIN, "b.e.f.ip6.arpa.");
}

Test(special, ordinary_names_are_not_special)
{
	expect(".", SPECIAL_NONE, NULL);
	expect("example.com.", SPECIAL_NONE, NULL);
	expect("localhost.example.com.", SPECIAL_NONE, NULL);
	expect("test.example.", SPECIAL_NONE, NULL);
	expect("arpa.", SPECIAL_NONE, NULL);
	expect("in-addr.arpa.", SPECIAL_NONE, NULL);
	expect("1.2.32.172.in-addr.arpa.", SPECIAL_NONE, NULL);   /* outside 172.16/12 */
	expect("8.8.8.8.in-addr.arpa.", SPECIAL_NONE, NULL);
	expect("1.c.f.ip6.arpa.", SPECIAL_NONE, NULL);              /* fc00::/8 is not listed */
	expect("tests.", SPECIAL_NONE, NULL);
	expect("onions.", SPECIAL_NONE, NULL);
}

Test(special, exempted_zones_are_forwarded)
{
	uint8_t test_zone[16], lab_zone[32];
	to_wire("test.", test_zone);
	to_wire("lab.home.arpa.", lab_zone);
	const uint8_t *const exempt[] = { test_zone, lab_zone, NULL };

	cr_assert_eq(classify("a.wild.test.", exempt).answer, SPECIAL_NONE);
	cr_assert_eq(classify("test.", exempt).answer, SPECIAL_NONE);
	cr_assert_eq(classify("x.lab.home.arpa.", exempt).answer, SPECIAL_NONE);
	/* The rest of home.arpa. and the other zones stay local. */
	cr_assert_eq(classify("x.home.arpa.", exempt).answer, SPECIAL_NXDOMAIN);
	cr_assert_eq(classify("x.invalid.", exempt).answer, SPECIAL_NXDOMAIN);
}

Test(special, truncated_or_empty_names_are_not_special)
{
	const uint8_t cut[] = { 4, 't', 'e', 's', 't' };   /* no root label */
	struct special_match m = { .answer = SPECIAL_LOOPBACK };
	special_classify(cut, sizeof cut, NULL, &m);
	cr_assert_eq(m.answer, SPECIAL_NONE);
	special_classify(cut, 0, NULL, &m);
	cr_assert_eq(m.answer, SPECIAL_NONE);
}
