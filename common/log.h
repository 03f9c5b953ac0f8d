/* log.h -- the one structured logger every Aegis daemon uses.
 *
 * A line is an event name followed by key=value pairs ("logfmt"), written to stderr or, with
 * target "journald", to the systemd journal with the matching priority. The logger owns no
 * memory the caller sees; it is safe to call from any thread (each line is one write()).
 */
#ifndef AEGIS_LOG_H
#define AEGIS_LOG_H

#include <stdbool.h>

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };
enum log_target { LOG_TARGET_STDERR, LOG_TARGET_JOURNALD };

/* Names the daemon in every line. Until called, lines go to stderr at level info. */
void log_init(const char *daemon_name);
void log_set_level(enum log_level level);
void log_set_target(enum log_target target);
bool log_enabled(enum log_level level);

/* Parses "error", "warn", "info", "debug" / "stderr", "journald"; -1 on anything else. */
int log_level_parse(const char *name);
int log_target_parse(const char *name);

/* Emits "ts=... level=... daemon=... event=<event> <kv_fmt...>". kv_fmt is printf-style and
 * should produce key=value pairs; values with spaces are the caller's to quote (%q is not
 * available: use log_quote). Newlines in the result are flattened so one event is one line. */
void log_emit(enum log_level level, const char *event, const char *kv_fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Copies s into buf as a double-quoted logfmt value (escaping quotes and backslashes,
 * truncating to fit) and returns buf, so it can be used as a %s argument. */
const char *log_quote(char *buf, unsigned long buflen, const char *s);

/* The kv format is optional: log_info("started") or log_info("started", "port=%d", port). */
#define log_err(event, ...)   log_emit(LOG_LEVEL_ERROR, event, "" __VA_ARGS__)
#define log_warn(event, ...)  log_emit(LOG_LEVEL_WARN, event, "" __VA_ARGS__)
#define log_info(event, ...)  log_emit(LOG_LEVEL_INFO, event, "" __VA_ARGS__)
#define log_debug(event, ...) do { if (log_enabled(LOG_LEVEL_DEBUG)) \
		log_emit(LOG_LEVEL_DEBUG, event, "" __VA_ARGS__); } while (0)

#endif
