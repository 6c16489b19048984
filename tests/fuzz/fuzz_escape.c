/* The public list's renderers (domain/publication.c): CSV (RFC 4180), the Atom
 * feed and the HTML page, with every string of the items and publications taken
 * from the input. The first byte holds flags (language, the purpose localised or
 * plain, how many items); the rest is up to 16 strings separated by 0xFF (an
 * invalid UTF-8 piece becomes "": what is stored is always UTF-8).
 *
 * Properties:
 * - CSV parses back by RFC 4180 into the header and one row of 12 cells per item;
 *   no cell starts with = + - @ tab or CR (formula injection), and the id, legal
 *   name and website cells say exactly what the item says (after the "'" that
 *   defuses a formula);
 * - Atom and HTML: the markup does not depend on the data: the counts of < > "
 *   and ' equal those of the same documents with every string replaced by "x";
 *   every & starts one of the entities the escaper writes; the output is valid
 *   UTF-8;
 * - Atom: every character is an XML 1.0 Char (no C0 controls but tab, CR, LF,
 *   no U+FFFE or U+FFFF), so the feed is well-formed XML whatever was stored. */
#include "fuzz.h"
#include "subreg/json.h"
#include "subreg/publication.h"
#include "subreg/util.h"

#define NSTR 16

typedef struct {
    char *s[NSTR];
} strings;

static const char *S(const strings *t, int k)
{
    return t->s[k % NSTR];
}

static cJSON *localized(const strings *t, int k, bool obj)
{
    if (!obj) return cJSON_CreateString(S(t, k));
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "de", S(t, k));
    cJSON_AddStringToObject(o, "en", S(t, k + 1));
    return o;
}

static cJSON *items_of(const strings *t, int n, bool loc, bool dpf)
{
    cJSON *items = cJSON_CreateArray();
    for (int i = 0; i < n; i++) {
        cJSON *it = cJSON_CreateObject();
        cJSON_AddStringToObject(it, "id", S(t, 4));
        cJSON_AddStringToObject(it, "legal_name", S(t, 1 + i));
        cJSON_AddStringToObject(it, "trading_name", S(t, 5));
        cJSON_AddStringToObject(it, "category", S(t, 6));
        cJSON_AddStringToObject(it, "hq_country", S(t, 7));
        cJSON_AddItemToObject(it, "purpose", localized(t, 8, loc));
        cJSON *dc = cJSON_AddArrayToObject(it, "data_categories");
        cJSON_AddItemToArray(dc, cJSON_CreateString(S(t, 6)));
        cJSON_AddItemToArray(dc, cJSON_CreateString("hosting"));
        cJSON_AddItemToArray(cJSON_AddArrayToObject(it, "data_subjects"), cJSON_CreateString(S(t, 5)));
        cJSON *l = cJSON_CreateObject();
        cJSON_AddStringToObject(l, "country", S(t, 7));
        cJSON_AddStringToObject(l, "region", S(t, 8));
        cJSON_AddStringToObject(l, "role", S(t, 6));
        cJSON_AddItemToArray(cJSON_AddArrayToObject(it, "locations"), l);
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "name", S(t, 5));
        cJSON_AddItemToArray(cJSON_AddArrayToObject(it, "certifications"), c);
        cJSON_AddBoolToObject(it, "dpf_participating", dpf);
        cJSON_AddStringToObject(it, "website", S(t, 0));
        cJSON_AddItemToArray(items, it);
    }
    return items;
}

static cJSON *named(const char *name)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "legal_name", name);
    return o;
}

static cJSON *publication(const strings *t, int number, bool loc, cJSON *items)
{
    cJSON *p = cJSON_CreateObject();
    cJSON_AddNumberToObject(p, "number", number);
    cJSON_AddStringToObject(p, "effective_at", S(t, 10));
    cJSON_AddStringToObject(p, "published_at", S(t, 11));
    cJSON_AddItemToObject(p, "summary", localized(t, 12, loc));
    cJSON *diff = cJSON_AddObjectToObject(p, "diff");
    cJSON_AddItemToArray(cJSON_AddArrayToObject(diff, "added"), named(S(t, 1)));
    cJSON_AddItemToArray(cJSON_AddArrayToObject(diff, "removed"), named(S(t, 2)));
    cJSON *ch = named(S(t, 3));
    cJSON *fields = cJSON_AddArrayToObject(ch, "fields");
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "field", S(t, 14));
    cJSON_AddItemToArray(fields, f);
    f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "field", "legal_name");
    cJSON_AddItemToArray(fields, f);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(diff, "changed"), ch);
    cJSON_AddStringToObject(p, "objection_deadline", S(t, 15));
    cJSON_AddItemToObject(p, "items", items);
    return p;
}

/* ---- checks ---------------------------------------------------------------- */

static bool formula_start(char c)
{
    return c == '=' || c == '+' || c == '-' || c == '@' || c == '\t' || c == '\r';
}

/* Parses RFC 4180 text: rows of cells (cJSON arrays of strings); NULL when the
 * text is not well-formed (a quote inside an unquoted cell, an unterminated
 * quoted cell, a record not ended by CRLF). */
static cJSON *parse_csv(const char *s, size_t len)
{
    cJSON *rows = cJSON_CreateArray(), *row = cJSON_CreateArray();
    strbuf cell = {0};
    size_t i = 0;
    while (i < len) {
        cell.len = 0;
        sb_puts(&cell, "");
        if (s[i] == '"') {
            for (i++;; i++) {
                if (i >= len) goto bad;
                if (s[i] == '"') {
                    if (i + 1 < len && s[i + 1] == '"') i++;
                    else break;
                }
                sb_append(&cell, s + i, 1);
            }
            i++;
        } else {
            while (i < len && s[i] != ',' && s[i] != '\r' && s[i] != '\n') {
                if (s[i] == '"') goto bad;
                sb_append(&cell, s + i++, 1);
            }
        }
        cJSON_AddItemToArray(row, cJSON_CreateString(cell.data));
        if (i < len && s[i] == ',') {
            i++;
            if (i == len) goto bad;
        } else if (i + 1 < len && s[i] == '\r' && s[i + 1] == '\n') {
            i += 2;
            cJSON_AddItemToArray(rows, row);
            row = cJSON_CreateArray();
        } else {
            goto bad;
        }
    }
    if (cJSON_GetArraySize(row) != 0) goto bad;
    cJSON_Delete(row);
    sb_free(&cell);
    return rows;
bad:
    cJSON_Delete(row);
    cJSON_Delete(rows);
    sb_free(&cell);
    return NULL;
}

static void check_csv(const cJSON *items, const char *lang, int nitems)
{
    strbuf out = {0};
    render_csv(items, lang, &out);
    cJSON *rows = parse_csv(out.data, out.len);
    CHECK(rows, "render_csv wrote malformed CSV:\n%s", out.data);
    CHECK(cJSON_GetArraySize(rows) == 1 + nitems, "%d rows for %d items", cJSON_GetArraySize(rows), nitems);
    const cJSON *header = rows->child;
    int r = 0;
    for (const cJSON *row = rows->child; row; row = row->next, r++) {
        CHECK(cJSON_GetArraySize(row) == 12, "row %d has %d cells:\n%s", r, cJSON_GetArraySize(row), out.data);
        for (const cJSON *c = row->child; c; c = c->next)
            CHECK(!formula_start(c->valuestring[0]), "row %d: a cell starts a formula: %s", r, c->valuestring);
        if (row == header) continue;
        const cJSON *item = cJSON_GetArrayItem(items, r - 1);
        static const char *const checked[] = {"id", "legal_name", "website", NULL};
        for (int k = 0; checked[k]; k++) {
            int col = 0;
            for (const cJSON *h = header->child; h && strcmp(h->valuestring, checked[k]) != 0; h = h->next) col++;
            /* the item's text as a public form carries it: what XML 1.0 refuses as U+FFFD */
            strbuf clean = {0};
            const char *raw = json_get_str(item, checked[k]);
            sb_put_text(&clean, raw, strlen(raw));
            const char *want = clean.data ? clean.data : "";
            const char *got = cJSON_GetArrayItem(row, col)->valuestring;
            const char *lead = want;
            while (*lead == ' ') lead++; /* OWASP: a formula after leading spaces too */
            bool defused = formula_start(lead[0]);
            CHECK(defused ? got[0] == '\'' && strcmp(got + 1, want) == 0 : strcmp(got, want) == 0,
                  "column %s says \"%s\", the item \"%s\"", checked[k], got, want);
            sb_free(&clean);
        }
    }
    cJSON_Delete(rows);
    sb_free(&out);
}

static void count_markup(const char *s, size_t n, size_t counts[4])
{
    for (size_t i = 0; i < n; i++) {
        switch (s[i]) {
        case '<': counts[0]++; break;
        case '>': counts[1]++; break;
        case '"': counts[2]++; break;
        case '\'': counts[3]++; break;
        default: break;
        }
    }
}

/* want: the counts of the same documents with every string "x" */
static void check_markup(const char *what, const strbuf *got, const size_t want[4])
{
    size_t a[4] = {0};
    count_markup(got->data, got->len, a);
    CHECK(memcmp(a, want, sizeof a) == 0,
          "%s: the data changed the markup (< > \" ': %zu %zu %zu %zu, not %zu %zu %zu %zu)", what, a[0], a[1], a[2],
          a[3], want[0], want[1], want[2], want[3]);
    static const char *const entities[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&#39;", NULL};
    for (const char *p = got->data; (p = strchr(p, '&')); p++) {
        bool known = false;
        for (int k = 0; entities[k] && !known; k++) known = strncmp(p, entities[k], strlen(entities[k])) == 0;
        CHECK(known, "%s: a raw & in \"%.40s\"", what, p);
    }
    CHECK(utf8_valid(got->data, got->len), "%s is not valid UTF-8", what);
}

/* XML 1.0 section 2.2: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF] */
static void check_xml_chars(const strbuf *xml)
{
    const unsigned char *s = (const unsigned char *)xml->data;
    for (size_t i = 0; i < xml->len;) {
        uint32_t cp = s[i];
        size_t len = cp < 0x80 ? 1 : cp < 0xE0 ? 2 : cp < 0xF0 ? 3 : 4;
        if (len > 1) {
            cp &= 0x3F >> (len - 1);
            for (size_t k = 1; k < len; k++) cp = cp << 6 | (s[i + k] & 0x3F);
        }
        bool ok = cp == 0x9 || cp == 0xA || cp == 0xD || (cp >= 0x20 && cp <= 0xD7FF) ||
                  (cp >= 0xE000 && cp <= 0xFFFD) || (cp >= 0x10000 && cp <= 0x10FFFF);
        CHECK(ok, "the Atom feed holds U+%04X at byte %zu: not an XML character", (unsigned)cp, i);
        i += len;
    }
}

static void render_all(const strings *t, bool de, bool loc, int nitems, bool dpf, bool one, strbuf *atom, strbuf *html)
{
    /* a public service whose name is any text: the selector, the headings, the feed's title */
    cJSON *services = cJSON_CreateArray(), *svc = cJSON_CreateObject(), *name = cJSON_CreateObject();
    cJSON_AddStringToObject(svc, "id", "svc");
    cJSON_AddStringToObject(name, "de", S(t, 1));
    cJSON_AddStringToObject(name, "en", S(t, 2));
    cJSON_AddItemToObject(svc, "name", name);
    cJSON_AddItemToArray(services, svc);
    cJSON *cur = publication(t, 7, loc, items_of(t, nitems, loc, dpf));
    cJSON *up = cJSON_CreateArray(), *hist = cJSON_CreateArray(), *pubs = cJSON_CreateArray();
    cJSON_AddItemToArray(up, publication(t, 8, !loc, cJSON_CreateArray()));
    cJSON_AddItemToArray(hist, cJSON_Duplicate(cur, true));
    cJSON_AddItemToArray(pubs, cJSON_Duplicate(up->child, true));
    cJSON_AddItemToArray(pubs, cJSON_Duplicate(cur, true));
    render_atom(pubs, S(t, 0), S(t, 9), one ? svc : NULL, atom);
    render_html(cur, up, hist, de ? "de" : "en", services, one ? svc : NULL, html);
    cJSON_Delete(services);
    cJSON_Delete(cur);
    cJSON_Delete(up);
    cJSON_Delete(hist);
    cJSON_Delete(pubs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    bool de = data[0] & 1, loc = data[0] & 2, dpf = data[0] & 4, one = data[0] & 32;
    int nitems = (data[0] >> 3) & 3;
    strings t, x;
    for (int k = 0; k < NSTR; k++) {
        const uint8_t *p;
        size_t n;
        fuzz_piece(data + 1, size - 1, 0xFF, k, &p, &n);
        t.s[k] = fuzz_cstr(p, n);
        if (!utf8_valid(t.s[k], strlen(t.s[k]))) t.s[k][0] = '\0';
        x.s[k] = strdup("x");
    }

    cJSON *items = items_of(&t, nitems, loc, dpf);
    check_csv(items, de ? "de" : "en", nitems);
    cJSON_Delete(items);

    /* the markup of the neutral documents, per combination of flags */
    static size_t want[64][2][4];
    static bool known[64];
    int flags = data[0] & 63;
    if (!known[flags]) {
        strbuf atom_x = {0}, html_x = {0};
        render_all(&x, de, loc, nitems, dpf, one, &atom_x, &html_x);
        count_markup(atom_x.data, atom_x.len, want[flags][0]);
        count_markup(html_x.data, html_x.len, want[flags][1]);
        known[flags] = true;
        sb_free(&atom_x);
        sb_free(&html_x);
    }
    strbuf atom = {0}, html = {0};
    render_all(&t, de, loc, nitems, dpf, one, &atom, &html);
    check_markup("Atom", &atom, want[flags][0]);
    check_markup("HTML", &html, want[flags][1]);
    check_xml_chars(&atom);
    sb_free(&atom);
    sb_free(&html);
    for (int k = 0; k < NSTR; k++) {
        free(t.s[k]);
        free(x.s[k]);
    }
    return 0;
}
