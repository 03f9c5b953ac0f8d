/* log.c -- logfmt lines to stderr or the systemd journal. */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <syslog.h>
#include <systemd/sd-journal.h>

static const char *daemon_name = "aegis";
static _Atomic int min_level = LOG_LEVEL_INFO;
static _Atomic int target = LOG_TARGET_STDERR;

static const char *const level_names[] = { "error", "warn", "info", "debug" };
static const int level_priorities[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };

void log_init(const char *name)
{
	daemon_name = name;
}

void log_set_level(enum log_level level)
{
	atomic_store(&min_level, level);
}

void log_set_target(enum log_target t)
{
	atomic_store(&target, t);
}

bool log_enabled(enum log_level level)
{
	return (int)level <= atomic_load(&min_level);
}

int log_level_parse(const char *name)
{
	for (int i = 0; i < (int)(sizeof level_names / sizeof level_names[0]); i++)
		if (strcmp(name, level_names[i]) == 0)
			return i;
	return -1;
}

int log_target_parse(const char *name)
{
	if (strcmp(name, "stderr") == 0)
		return LOG_TARGET_STDERR;
	if (strcmp(name, "journald") == 0)
		return LOG_TARGET_JOURNALD;
	return -1;
}

const char *log_quote(char *buf, unsigned long buflen, const char *s)
{
	unsigned long o = 0;

	if (buflen < 3) {
		if (buflen)
			buf[0] = '\0';
		return buf;
	}
	buf[o++] = '"';
	for (; s && *s && o + 3 < buflen; s++) {
		if (*s == '"' || *s == '\\')
			buf[o++] = '\\';
		buf[o++] = *s;
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}

static void flatten(char *s)
{
	for (; *s; s++)
		if (*s == '\n' || *s == '\r' || *s == '\t')
			*s = ' ';
}

void log_emit(enum log_level level, const char *event, const char *kv_fmt, ...)
{
	char kv[1536], line[2048];
	va_list ap;

	if (!log_enabled(level))
		return;
	va_start(ap, kv_fmt);
	vsnprintf(kv, sizeof kv, kv_fmt, ap);
	va_end(ap);
	flatten(kv);

	if (atomic_load(&target) == LOG_TARGET_JOURNALD) {
		sd_journal_send("PRIORITY=%d", level_priorities[level],
				"SYSLOG_IDENTIFIER=%s", daemon_name,
				"MESSAGE=event=%s%s%s", event, kv[0] ? " " : "", kv,
				"AEGIS_EVENT=%s", event, NULL);
		return;
	}

	struct timespec now;
	struct tm tm;
	char ts[32];
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
	int n = snprintf(line, sizeof line, "ts=%s.%03ldZ level=%s daemon=%s event=%s%s%s\n",
			 ts, now.tv_nsec / 1000000, level_names[level], daemon_name, event,
			 kv[0] ? " " : "", kv);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof line) {
		n = sizeof line - 1;
		line[n - 1] = '\n';
	}
	/* One write() per line keeps lines from different threads whole. */
	ssize_t unused = write(STDERR_FILENO, line, (size_t)n);
	(void)unused;
}
