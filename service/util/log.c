#include "subreg/log.h"

#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "subreg/util.h"

static int min_level = LOG_INFO;
static const char *const NAMES[] = {"debug", "info", "warn", "error"};

bool log_enabled(int level)
{
    return level >= min_level;
}

void log_set_level(int level)
{
    min_level = level;
}

int log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, NAMES[i]) == 0) return i;
    return -1;
}

static void json_string(strbuf *sb, const char *s)
{
    sb_puts(sb, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            char e[2] = {'\\', (char)*p};
            sb_append(sb, e, 2);
        } else if (*p < 0x20 || *p == 0x7f) {
            sb_printf(sb, "\\u%04x", *p);
        } else {
            sb_append(sb, (const char *)p, 1);
        }
    }
    sb_puts(sb, "\"");
}

void log_field(strbuf *fields, const char *name, const char *value)
{
    sb_printf(fields, ",\"%s\":", name);
    json_string(fields, value ? value : "");
}

void log_field_int(strbuf *fields, const char *name, long long value)
{
    sb_printf(fields, ",\"%s\":%lld", name, value);
}

void log_event(int level, const char *msg, const char *fields)
{
    if (level < min_level) return;
    char ts[32];
    int64_t ms = now_ms();
    format_rfc3339(ms, ts);
    ts[19] = '\0'; /* drop the Z, add milliseconds */
    strbuf qm = {0};
    json_string(&qm, msg);
    /* One fprintf per line: stdio locks the stream, so lines never interleave. */
    fprintf(stderr, "{\"ts\":\"%s.%03dZ\",\"level\":\"%s\",\"msg\":%s%s}\n", ts, (int)(ms % 1000), NAMES[level],
            qm.data, fields ? fields : "");
    sb_free(&qm);
}

void log_msgf(int level, const char *fmt, ...)
{
    if (level < min_level) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    log_event(level, buf, NULL);
}
