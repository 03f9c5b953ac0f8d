/* test_config.c -- config_load() on good, broken and hostile files. */
#include <criterion/criterion.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

struct sample {
	char *dsn;
	char *mode;
	long long workers;
	bool verbose;
	struct config_strings upstreams;
};

static int check_mode(const char *v, char *err, size_t errlen)
{
	if (strcmp(v, "fast") == 0 || strcmp(v, "safe") == 0)
		return 0;
	snprintf(err, errlen, "'%s' is not fast or safe", v);
	return -1;
}

static const struct config_field fields[] = {
	{ .path = "database.dsn", .type = CONFIG_STRING, .required = true,
	  .offset = offsetof(struct sample, dsn) },
	{ .path = "mode", .type = CONFIG_STRING, .default_string = "safe", .check = check_mode,
	  .offset = offsetof(struct sample, mode) },
	{ .path = "server.workers", .type = CONFIG_INT, .default_int = 2, .min = 1, .max = 64,
	  .offset = offsetof(struct sample, workers) },
	{ .path = "server.verbose", .type = CONFIG_BOOL,
	  .offset = offsetof(struct sample, verbose) },
	{ .path = "server.upstreams", .type = CONFIG_STRING_LIST, .check = check_mode,
	  .offset = offsetof(struct sample, upstreams) },
};
#define NFIELDS (sizeof fields / sizeof fields[0])

static char path[64];

static void write_file(const char *text)
{
	strcpy(path, "/tmp/aegis-test-config-XXXXXX");
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	cr_assert(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	close(fd);
}

static int load(const char *text, struct sample *s, char *err, size_t errlen)
{
	memset(s, 0, sizeof *s);
	write_file(text);
	int rc = config_load(path, fields, NFIELDS, s, err, errlen);
	unlink(path);
	return rc;
}

Test(config, full_file_fills_every_field)
{
	struct sample s;
	char err[256] = "";
	int rc = load("database: { dsn = \"host=db\"; };\n"
		      "mode = \"fast\";\n"
		      "server: { workers = 8; verbose = true; upstreams = [\"fast\", \"safe\"]; };\n",
		      &s, err, sizeof err);
	cr_assert_eq(rc, 0, "error: %s", err);
	cr_assert_str_eq(s.dsn, "host=db");
	cr_assert_str_eq(s.mode, "fast");
	cr_assert_eq(s.workers, 8);
	cr_assert(s.verbose);
	cr_assert_eq(s.upstreams.count, 2);
	cr_assert_str_eq(s.upstreams.items[1], "safe");
	config_free(fields, NFIELDS, &s);
	cr_assert_null(s.dsn);
	cr_assert_null(s.upstreams.items);
}

Test(config, absent_optional_settings_take_defaults)
{
	struct sample s;
	char err[256] = "";
	cr_assert_eq(load("database: { dsn = \"x\"; };\n", &s, err, sizeof err), 0, "%s", err);
	cr_assert_str_eq(s.mode, "safe");
	cr_assert_eq(s.workers, 2);
	cr_assert_not(s.verbose);
	cr_assert_eq(s.upstreams.count, 0);
	config_free(fields, NFIELDS, &s);
}

struct bad_case {
	const char *text;
	const char *expect; /* substring of the error */
};

static void expect_refused(const struct bad_case *c)
{
	struct sample s;
	char err[256] = "";
	cr_assert_eq(load(c->text, &s, err, sizeof err), -1, "accepted: %s", c->text);
	cr_assert(strstr(err, c->expect), "error '%s' lacks '%s'", err, c->expect);
	cr_assert_null(s.dsn, "a refused file must leave nothing allocated");
	cr_assert_null(s.mode);
}

Test(config, broken_files_are_refused_with_the_reason)
{
	static const struct bad_case cases[] = {
		{ "mode = \"fast\";\n", "required setting 'database.dsn' is missing" },
		{ "database: { dsn = \"x\"; };\nmdoe = \"fast\";\n", ":2: unknown setting 'mdoe'" },
		{ "database: { dsn = \"x\"; extra = 1; };\n", "unknown setting 'database.extra'" },
		{ "database: { dsn = \"x\"; };\nnosuch: { a = 1; };\n", "unknown setting group 'nosuch'" },
		{ "database: { dsn = 5; };\n", "database.dsn: expected a string" },
		{ "database: { dsn = \"x\"; };\nserver: { workers = 0; };\n", "outside 1..64" },
		{ "database: { dsn = \"x\"; };\nserver: { workers = \"4\"; };\n", "expected an integer" },
		{ "database: { dsn = \"x\"; };\nserver: { verbose = 1; };\n", "expected true or false" },
		{ "database: { dsn = \"x\"; };\nmode = \"slow\";\n", "mode: 'slow' is not fast or safe" },
		{ "database: { dsn = \"x\"; };\nserver: { upstreams = [\"fast\", \"slow\"]; };\n",
		  "'slow' is not fast or safe" },
		{ "database: { dsn = \"x\"; };\nserver: { upstreams = \"fast\"; };\n",
		  "expected a list of strings" },
		{ "database: { dsn = \"x\"\n", ":2: syntax error" },
		{ "database = { dsn = \"x\"; }; }\n", "syntax error" },
		{ "\x01\x02\x03", "syntax error" },
		{ "database: { dsn = \"x\"; };\nmode = \"fast\";\nmode = \"safe\";\n", "duplicate" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		expect_refused(&cases[i]);
}

Test(config, missing_file_is_refused)
{
	struct sample s = { 0 };
	char err[256] = "";
	cr_assert_eq(config_load("/nonexistent/aegis.conf", fields, NFIELDS, &s, err, sizeof err),
		     -1);
	cr_assert(strstr(err, "/nonexistent/aegis.conf: cannot read"), "%s", err);
}
