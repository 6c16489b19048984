/* log: JSON lines on stderr. One line per event; values are JSON-escaped, so a
 * client cannot forge log lines. Tokens are never logged. */
#ifndef SUBREG_LOG_H
#define SUBREG_LOG_H

enum { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

#include <stdbool.h>

#include "subreg/util.h"

void log_set_level(int level);
bool log_enabled(int level);
int log_level_parse(const char *s); /* -1 if unknown */
/* fields: extra members as a JSON fragment (",\"k\":v..."), built with
 * log_field / log_field_int, or NULL. */
void log_event(int level, const char *msg, const char *fields);
/* Appends ,"name":"value" to fields, the value JSON-escaped (the one escaper of
 * every log line: a client-chosen path or name cannot forge a line). */
void log_field(strbuf *fields, const char *name, const char *value);
void log_field_int(strbuf *fields, const char *name, long long value);
void log_msgf(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
