/* Test fixtures as JSON written with single quotes, so that they stay readable
 * in C strings: parse_q("{'id':'sp_1'}"). Include after <cmocka.h>; a fixture
 * that does not parse fails the test. */
#ifndef SUBREG_TEST_JSON_Q_H
#define SUBREG_TEST_JSON_Q_H

#include <stdlib.h>
#include <string.h>

#include "subreg/json.h"

static inline cJSON *parse_q(const char *text)
{
    char *s = strdup(text);
    assert_non_null(s);
    for (char *p = s; *p; p++)
        if (*p == '\'') *p = '"';
    char err[128];
    cJSON *v = json_parse_strict(s, strlen(s), err, sizeof err);
    if (!v) fail_msg("fixture does not parse (%s): %s", err, s);
    free(s);
    return v;
}

#endif
