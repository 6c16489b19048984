/* csv: reading CSV files as spreadsheets write them (RFC 4180, comma or
 * semicolon, CRLF or LF, an optional UTF-8 byte order mark). */
#ifndef SUBREG_CSV_H
#define SUBREG_CSV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "subreg/util.h"

typedef struct {
    char **cells; /* NUL-terminated, owned by the parser (valid during the call) */
    int n;
    int cap;
} csv_record;

/* Called per record with the row it is, as a spreadsheet numbers rows (1 = the
 * first; a line break inside quotes is not a new row; blank lines are rows but
 * no records); return false to stop. */
typedef bool (*csv_each)(const csv_record *rec, int line, void *ctx);

/* ';' when the first record has more semicolons than commas outside quotes,
 * else ','. */
char csv_guess_delimiter(const char *s, size_t n);

/* At most this many cells in a record (bounds a hostile file's memory). */
#define CSV_MAX_CELLS 256

/* Parses s[0..n); false (err set, naming the row) for a quoted field that is
 * never closed or a record of more than CSV_MAX_CELLS cells. */
bool csv_parse(const char *s, size_t n, char delim, csv_each each, void *ctx, char *err, size_t errlen);

#endif
