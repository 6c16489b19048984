/* cursor: opaque pagination tokens. A cursor names the last id of the previous
 * page; ids are time-ordered, so "after this id" is a stable position even while
 * documents are inserted. Tokens are validated before any use. */
#ifndef SUBREG_CURSOR_H
#define SUBREG_CURSOR_H

#include <stdbool.h>

/* The cursor also carries the list's direction, so a next page keeps it. */
char *cursor_encode(const char *last_id, bool desc);
/* Returns the id (and the direction), or NULL when the token is not one this
 * service issued. */
char *cursor_decode(const char *token, bool *desc);
/* Parses ?limit: default 50, 1.., above 200 clamped. False when malformed. */
bool parse_limit(const char *s, int *limit);

#endif
