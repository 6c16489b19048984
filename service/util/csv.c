/* CSV as spreadsheets write it (RFC 4180): fields separated by a comma or, as
 * German Excel writes it, a semicolon; a field in double quotes may hold the
 * separator, line breaks and "" for a quote; records end with CRLF or LF; an
 * UTF-8 byte order mark at the start is skipped. */
#include <stdlib.h>
#include <string.h>

#include "subreg/csv.h"

static size_t bom(const char *s, size_t n)
{
    return n >= 3 && (unsigned char)s[0] == 0xEF && (unsigned char)s[1] == 0xBB && (unsigned char)s[2] == 0xBF ? 3
                                                                                                                 : 0;
}

char csv_guess_delimiter(const char *s, size_t n)
{
    size_t commas = 0, semis = 0;
    bool quoted = false;
    for (size_t i = bom(s, n); i < n; i++) {
        char c = s[i];
        if (c == '"') quoted = !quoted;
        else if (!quoted && (c == '\n' || c == '\r')) break;
        else if (!quoted && c == ',') commas++;
        else if (!quoted && c == ';') semis++;
    }
    return semis > commas ? ';' : ',';
}

static void push_cell(csv_record *r, strbuf *cell)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->cells = realloc(r->cells, (size_t)r->cap * sizeof *r->cells);
        if (!r->cells) abort();
    }
    /* a cell keeps only its bytes (a buffer starts at 256) */
    char *c = cell->data ? realloc(cell->data, cell->len + 1) : calloc(1, 1);
    if (!c) abort();
    r->cells[r->n++] = c;
    *cell = (strbuf){0};
}

static void clear_record(csv_record *r)
{
    for (int i = 0; i < r->n; i++) free(r->cells[i]);
    r->n = 0;
}

bool csv_parse(const char *s, size_t n, char delim, csv_each each, void *ctx, char *err, size_t errlen)
{
    csv_record rec = {0};
    strbuf cell = {0};
    size_t i = bom(s, n);
    int row = 1; /* as a spreadsheet counts: line breaks inside quotes are not rows */
    bool ok = true, stopped = false, any = false;
    while (i < n && !stopped) {
        char c = s[i];
        if (rec.n >= CSV_MAX_CELLS) {
            snprintf(err, errlen, "row %d has more than %d cells", row, CSV_MAX_CELLS);
            ok = false;
            break;
        }
        if (c == '"' && cell.len == 0 && !any) {
            /* a quoted field: up to the closing quote */
            i++;
            bool closed = false;
            while (i < n) {
                if (s[i] == '"') {
                    if (i + 1 < n && s[i + 1] == '"') {
                        sb_append(&cell, "\"", 1);
                        i += 2;
                        continue;
                    }
                    closed = true;
                    i++;
                    break;
                }
                sb_append(&cell, s + i, 1);
                i++;
            }
            if (!closed) {
                snprintf(err, errlen, "a quoted field that begins in row %d is never closed", row);
                ok = false;
                break;
            }
            any = true;
            if (!cell.data) sb_append(&cell, "", 0);
            continue;
        }
        if (c == delim) {
            push_cell(&rec, &cell);
            any = false;
            i++;
        } else if (c == '\r' || c == '\n') {
            push_cell(&rec, &cell);
            any = false;
            i += c == '\r' && i + 1 < n && s[i + 1] == '\n' ? 2 : 1;
            /* a blank line is no record (but a row) */
            if (!(rec.n == 1 && rec.cells[0][0] == '\0')) stopped = !each(&rec, row, ctx);
            clear_record(&rec);
            row++;
        } else {
            sb_append(&cell, s + i, 1);
            i++;
        }
    }
    if (ok && !stopped && (rec.n > 0 || cell.len > 0 || any) && rec.n >= CSV_MAX_CELLS) {
        snprintf(err, errlen, "row %d has more than %d cells", row, CSV_MAX_CELLS);
        ok = false;
    }
    if (ok && !stopped && (rec.n > 0 || cell.len > 0 || any)) {
        push_cell(&rec, &cell);
        if (!(rec.n == 1 && rec.cells[0][0] == '\0')) each(&rec, row, ctx);
    }
    clear_record(&rec);
    free(rec.cells);
    sb_free(&cell);
    return ok;
}
