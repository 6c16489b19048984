/* The import's CSV reader (util/csv.c) on any bytes, with the separator it
 * guesses and with the other one.
 *
 * Properties:
 * - no crash, leak or overread whatever the bytes (unterminated quotes, bare CRs,
 *   a BOM anywhere, NULs);
 * - a record's line numbers never go backwards and never exceed the input's lines;
 * - written back by RFC 4180 (each cell quoted, "" for a quote, CRLF) and read
 *   again, a readable input gives the same records: the reader and the format
 *   agree, so what a spreadsheet writes is what the import sees. */
#include "fuzz.h"
#include "subreg/csv.h"

typedef struct {
    strbuf text; /* the records as RFC 4180 */
    strbuf flat; /* the records as count|cell… for comparing */
    int records, last_line, max_line;
} seen;

static bool record(const csv_record *rec, int line, void *ctx)
{
    seen *s = ctx;
    CHECK(rec->n >= 1, "a record without cells at line %d", line);
    CHECK(!(rec->n == 1 && !rec->cells[0][0]), "a blank line at %d is a record", line);
    CHECK(line >= s->last_line && line <= s->max_line, "line %d after %d (of %d)", line, s->last_line, s->max_line);
    s->last_line = line;
    s->records++;
    sb_printf(&s->flat, "%d", rec->n);
    for (int i = 0; i < rec->n; i++) {
        const char *c = rec->cells[i];
        sb_printf(&s->flat, "|%zu:", strlen(c));
        sb_puts(&s->flat, c);
        sb_puts(&s->text, i ? ",\"" : "\"");
        for (const char *p = c; *p; p++) sb_append(&s->text, *p == '"' ? "\"\"" : p, *p == '"' ? 2 : 1);
        sb_puts(&s->text, "\"");
    }
    sb_puts(&s->text, "\r\n");
    sb_puts(&s->flat, "\n");
    return true;
}

static void one(const char *in, size_t n, char delim)
{
    seen a = {.max_line = 1}, b = {.max_line = 1};
    for (size_t i = 0; i < n; i++) a.max_line += in[i] == '\n' || in[i] == '\r';
    char err[160];
    bool ok = csv_parse(in, n, delim, record, &a, err, sizeof err);
    /* cells hold no NUL in the written form: compare only inputs without one */
    if (ok && !memchr(in, '\0', n)) {
        b.max_line = a.records * 2 + 2 + (int)n;
        const char *t = a.text.data ? a.text.data : "";
        CHECK(csv_parse(t, a.text.len, ',', record, &b, err, sizeof err), "the written form does not read: %s", err);
        const char *fa = a.flat.data ? a.flat.data : "", *fb = b.flat.data ? b.flat.data : "";
        CHECK(strcmp(fa, fb) == 0, "read again:\n%s\nfirst:\n%s", fb, fa);
    }
    sb_free(&a.text);
    sb_free(&a.flat);
    sb_free(&b.text);
    sb_free(&b.flat);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    char guess = csv_guess_delimiter(in, size);
    CHECK(guess == ',' || guess == ';', "guessed %c", guess);
    one(in, size, guess);
    one(in, size, guess == ',' ? ';' : ',');
    return 0;
}
