/* log: JSON lines on stderr. One line per event; values are JSON-escaped, so a
 * client cannot forge log lines. Tokens are never logged. */
#ifndef SUBREG_LOG_H
#define SUBREG_LOG_H

enum { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

#include <stdbool.h>

void log_set_level(int level);
bool log_enabled(int level);
int log_level_parse(const char *s); /* -1 if unknown */
/* fields: a preformatted JSON fragment of extra members (",\"k\":v..."), or NULL. */
void log_event(int level, const char *msg, const char *fields);
void log_msgf(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
