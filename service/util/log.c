#include "subreg/log.h"

#include <cjson/cJSON.h>
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

void log_event(int level, const char *msg, const char *fields)
{
    if (level < min_level) return;
    char ts[32];
    int64_t ms = now_ms();
    format_rfc3339(ms, ts);
    ts[19] = '\0'; /* drop the Z, add milliseconds */
    cJSON *m = cJSON_CreateString(msg);
    char *qm = cJSON_PrintUnformatted(m);
    cJSON_Delete(m);
    /* One fprintf per line: stdio locks the stream, so lines never interleave. */
    fprintf(stderr, "{\"ts\":\"%s.%03dZ\",\"level\":\"%s\",\"msg\":%s%s}\n", ts, (int)(ms % 1000), NAMES[level],
            qm ? qm : "\"\"", fields ? fields : "");
    free(qm);
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
