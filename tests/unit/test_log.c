/* test_log.c -- level/target parsing and logfmt quoting. */
#include <criterion/criterion.h>
#include <string.h>

#include "log.h"

Test(log, levels_and_targets_parse)
{
	cr_assert_eq(log_level_parse("error"), LOG_LEVEL_ERROR);
	cr_assert_eq(log_level_parse("debug"), LOG_LEVEL_DEBUG);
	cr_assert_eq(log_level_parse("DEBUG"), -1);
	cr_assert_eq(log_level_parse(""), -1);
	cr_assert_eq(log_target_parse("journald"), LOG_TARGET_JOURNALD);
	cr_assert_eq(log_target_parse("syslog"), -1);
}

Test(log, level_filter)
{
	log_set_level(LOG_LEVEL_WARN);
	cr_assert(log_enabled(LOG_LEVEL_ERROR));
	cr_assert(log_enabled(LOG_LEVEL_WARN));
	cr_assert_not(log_enabled(LOG_LEVEL_INFO));
	log_set_level(LOG_LEVEL_INFO);
}

Test(log, quote_escapes_and_truncates)
{
	char buf[16];
	cr_assert_str_eq(log_quote(buf, sizeof buf, "a b"), "\"a b\"");
	cr_assert_str_eq(log_quote(buf, sizeof buf, "say \"hi\""), "\"say \\\"hi\\\"\"");
	cr_assert_str_eq(log_quote(buf, sizeof buf, NULL), "\"\"");
	log_quote(buf, sizeof buf, "a very long value that does not fit");
	cr_assert_eq(strlen(buf), sizeof buf - 2);
	cr_assert_eq(buf[0], '"');
	cr_assert_eq(buf[strlen(buf) - 1], '"');
	char tiny[2];
	cr_assert_str_eq(log_quote(tiny, sizeof tiny, "x"), "");
}
