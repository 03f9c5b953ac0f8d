/* test_safesearch.c -- which names are rewritten to which safe names. */
#include <criterion/criterion.h>
#include <string.h>

#include "safesearch.h"

static const char *target_of(const char *wire, size_t len)
{
	static char text[256];
	uint8_t tlen;
	const uint8_t *t = safesearch_target((const uint8_t *)wire, (uint8_t)len, &tlen);
	if (!t)
		return NULL;
	cr_assert_gt(wire_name_to_text(t, tlen, text, sizeof text), 0);
	return text;
}

#define TARGET(lit) target_of(lit, sizeof(lit))

Test(safesearch, google_in_every_country_with_or_without_www)
{
	cr_assert_str_eq(TARGET("\3www\6google\3com"), "forcesafesearch.google.com");
	cr_assert_str_eq(TARGET("\6google\2de"), "forcesafesearch.google.com");
	cr_assert_str_eq(TARGET("\3www\6google\2co\2uk"), "forcesafesearch.google.com");
	cr_assert_str_eq(TARGET("\3www\6google\3com\2br"), "forcesafesearch.google.com");
}

Test(safesearch, other_google_services_are_left_alone)
{
	cr_assert_null(TARGET("\4mail\6google\3com"));
	cr_assert_null(TARGET("\3www\6google\7example\3com"));
	cr_assert_null(TARGET("\6google"));
	cr_assert_null(TARGET("\3www\7googles\3com"));
	cr_assert_null(TARGET("\x0f" "forcesafesearch\6google\3com"), "the target is not rewritten");
}

Test(safesearch, video_and_other_engines)
{
	cr_assert_str_eq(TARGET("\3www\7youtube\3com"), "restrict.youtube.com");
	cr_assert_str_eq(TARGET("\1m\7youtube\3com"), "restrict.youtube.com");
	cr_assert_str_eq(TARGET("\x08youtubei\x0agoogleapis\3com"), "restrict.youtube.com");
	cr_assert_str_eq(TARGET("\3www\4bing\3com"), "strict.bing.com");
	cr_assert_str_eq(TARGET("\x0a" "duckduckgo\3com"), "safe.duckduckgo.com");
	cr_assert_null(TARGET("\6images\4bing\3com"));
	cr_assert_null(TARGET("\3www\7example\4test"));
}
