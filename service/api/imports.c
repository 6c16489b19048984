/* POST /v1/imports: the subprocessor list a legal team already keeps (a CSV
 * from a spreadsheet, or JSON) into the registry, all rows or none.
 *
 * 1. Read: CSV (RFC 4180, UTF-8 with or without BOM, comma or semicolon, headers
 *    in English or German: COLUMNS) or JSON ({"subprocessors": [API bodies]}).
 *    Each row becomes the body the API would take (labels and country names
 *    become codes).
 * 2. Match: a row with an id updates that subprocessor; without, the legal name
 *    (case and surrounding blanks ignored) finds it, or the row creates one.
 * 3. Check every row as the API would (crud_check_state): schema, rules,
 *    references. Any problem: 422 with one entry per row and column, nothing
 *    written. ?dry_run=true stops here and reports what would happen.
 * 4. Write each changed row through the one audited write (doc_write): audit
 *    record and events as for any API write. A row that equals the registry is
 *    left alone, so importing the same file again changes nothing — and an
 *    import cut off by the database (503) is completed by sending it again. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "subreg/api.h"
#include "subreg/collections.h"
#include "subreg/csv.h"
#include "subreg/json.h"
#include "subreg/publication.h"
#include "subreg/resource.h"

#define IMPORT_MAX_ROWS 5000
#define IMPORT_MAX_BYTES (10L * 1024 * 1024)
#define IMPORT_MAX_REPORTED 1000
#define IMPORT_MS_PER_ROW 100 /* a bound for a database gone slow, not the expected time (2-5 ms a row) */

/* The columns a CSV may have: the member they fill, and the header names that
 * mean it (compared case-insensitively, blanks around ignored). The public
 * CSV's own headers are among them, so an exported list imports as it is. */
typedef enum { K_TEXT, K_ENUM, K_ENUMS, K_COUNTRY, K_LOCATIONS, K_CERTS, K_BOOL_DPF, K_BOTH_LANGS, K_LANG } kind;
static const struct {
    const char *member; /* top-level member; K_LANG: "member/lang" */
    kind kind;
    const char *names[6];
} COLUMNS[] = {
    {"id", K_TEXT, {"id", "ID", NULL}},
    {"legal_name", K_TEXT, {"legal_name", "legal name", "Firma", "Name", NULL}},
    {"trading_name", K_TEXT, {"trading_name", "trading name", "Handelsname", NULL}},
    {"hq_country", K_COUNTRY, {"hq_country", "country of the head office", "Sitzland", "Land", NULL}},
    {"category", K_ENUM, {"category", "Kategorie", NULL}},
    {"role", K_ENUM, {"role", "Rolle", NULL}},
    {"status", K_ENUM, {"status", "Status", NULL}},
    {"purpose", K_BOTH_LANGS, {"purpose", "Zweck", NULL}},
    {"purpose/de", K_LANG, {"purpose_de", "purpose (de)", "Zweck (de)", "Zweck_de", NULL}},
    {"purpose/en", K_LANG, {"purpose_en", "purpose (en)", "Zweck (en)", "Zweck_en", NULL}},
    {"data_categories", K_ENUMS, {"data_categories", "data categories", "Datenkategorien", NULL}},
    {"data_subjects", K_ENUMS, {"data_subjects", "data subjects", "Betroffene", "Betroffene Personen", NULL}},
    {"locations", K_LOCATIONS, {"locations", "processing locations", "Orte der Verarbeitung", "Standorte", NULL}},
    {"certifications", K_CERTS, {"certifications", "Zertifizierungen", NULL}},
    {"dpf", K_BOOL_DPF, {"dpf_participating", "EU-US Data Privacy Framework", "DPF", NULL}},
    {"website", K_TEXT, {"website", "Website", "Webseite", NULL}},
    {"privacy_policy_url", K_TEXT, {"privacy_policy_url", "privacy policy", "Datenschutzerklärung", NULL}},
    {"dpa_url", K_TEXT, {"dpa_url", "DPA", "AV-Vertrag", NULL}},
    {"subprocessor_list_url",
     K_TEXT,
     {"subprocessor_list_url", "own subprocessor list", "eigene Unterauftragsverarbeiter", NULL}},
    {"notes", K_TEXT, {"notes", "Notizen", "Bemerkungen", NULL}},
};
#define NCOLUMNS (sizeof COLUMNS / sizeof COLUMNS[0])

typedef enum { A_CREATE, A_UPDATE, A_UNCHANGED } action;
static const char *const ACTIONS[] = {"create", "update", "unchanged"};

typedef struct {
    int row;         /* the spreadsheet's row number (the header is row 1), or the JSON item's number */
    cJSON *given;    /* the members the row gives */
    cJSON *columns;  /* CSV: member → the header as the file spells it */
    const cJSON *cur; /* the subprocessor it updates (a reference in by_id/by_name), or NULL */
    cJSON *client;   /* the state to write */
    action act;
} row;

typedef struct {
    row *rows;
    int n, cap;
    cJSON *errors; /* the report: {row, column, pointer, type, message} */
    int nerrors;
    cJSON *countries; /* lower-case names (de, en) → code */
    cJSON *by_id, *by_name; /* the registry's subprocessors (references) by id and by lower-case legal name */
    int col_of[64];   /* CSV: column index → COLUMNS index, -1 unknown */
    bool header_read;
    char *names[64]; /* CSV: the header as the file spells it */
    int ncols;
    bool too_many;
} import;

static void report(import *im, int rowno, const char *column, const char *pointer, const char *type,
                   const char *message)
{
    if (im->nerrors++ >= IMPORT_MAX_REPORTED) return;
    cJSON *e = cJSON_CreateObject();
    cJSON_AddNumberToObject(e, "row", rowno);
    if (column) cJSON_AddStringToObject(e, "column", column);
    else cJSON_AddNullToObject(e, "column");
    cJSON_AddStringToObject(e, "pointer", pointer ? pointer : "");
    cJSON_AddStringToObject(e, "type", type);
    cJSON_AddStringToObject(e, "message", message);
    cJSON_AddItemToArray(im->errors, e);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) s[--n] = '\0';
    return s;
}

static row *add_row(import *im, int rowno)
{
    if (im->n == im->cap) {
        im->cap = im->cap ? im->cap * 2 : 64;
        im->rows = xrealloc(im->rows, (size_t)im->cap * sizeof *im->rows);
    }
    row *w = &im->rows[im->n++];
    *w = (row){.row = rowno, .given = cJSON_CreateObject(), .columns = cJSON_CreateObject()};
    return w;
}

/* ---- CSV cells into members ------------------------------------------------------ */

static void lower_key(const char *s, char *out, size_t n)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s ? s : "");
    snprintf(out, n, "%s", trim(buf));
    for (char *p = out; *p; p++) *p = (char)tolower((unsigned char)*p);
}

static const char *country_code(import *im, const char *text, char buf[3])
{
    if (strlen(text) == 2 && isalpha((unsigned char)text[0]) && isalpha((unsigned char)text[1])) {
        buf[0] = (char)toupper((unsigned char)text[0]);
        buf[1] = (char)toupper((unsigned char)text[1]);
        buf[2] = '\0';
        return buf;
    }
    char lower[256];
    lower_key(text, lower, sizeof lower);
    const char *code = json_get_str(im->countries, lower);
    return code ? code : text; /* unknown: the schema names the problem */
}

/* Splits a list cell on ';', '|' or line breaks (and ',' when asked). */
static int split(char *s, bool comma, char **parts, int max)
{
    int n = 0;
    for (char *tok = s; tok && n < max;) {
        char *end = tok + strcspn(tok, comma ? ";|\n," : ";|\n");
        char *next = *end ? end + 1 : NULL;
        *end = '\0';
        char *t = trim(tok);
        if (*t) parts[n++] = t;
        tok = next;
    }
    return n;
}

static cJSON *enum_value(const char *text)
{
    const char *key = label_key(text);
    return cJSON_CreateString(key ? key : text);
}

/* "DE (eu-central): Hosting" as the public CSV writes a location; the role
 * is optional (processing). */
static cJSON *location(import *im, char *text)
{
    cJSON *loc = cJSON_CreateObject();
    char *colon = strchr(text, ':');
    if (colon) *colon = '\0';
    char *open = strchr(text, '(');
    if (open) {
        *open = '\0';
        char *close = strchr(open + 1, ')');
        if (close) *close = '\0';
        cJSON_AddStringToObject(loc, "region", trim(open + 1));
    }
    char cc[3];
    cJSON_AddStringToObject(loc, "country", country_code(im, trim(text), cc));
    cJSON_AddItemToObject(loc, "role", colon ? enum_value(trim(colon + 1)) : cJSON_CreateString("processing"));
    /* the region first, as the API writes it */
    cJSON *region = cJSON_DetachItemFromObject(loc, "region");
    if (region) cJSON_AddItemToObject(loc, "region", region);
    return loc;
}

static bool parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "ja", "1", "x", NULL}, *const no[] = {"false", "no", "nein", "0", NULL};
    for (int i = 0; yes[i]; i++)
        if (!strcasecmp(s, yes[i])) return (*out = true);
    for (int i = 0; no[i]; i++)
        if (!strcasecmp(s, no[i])) return !(*out = false);
    return false;
}

/* One cell into the row's members (a cell that cannot be read is reported). */
static void put_cell(import *im, row *w, int ci, const char *header, char *cell)
{
    char *v = trim(cell);
    if (!*v) return; /* empty: not given */
    const char *member = COLUMNS[ci].member;
    char top[32]; /* the top-level member ("purpose" of "purpose/de") */
    snprintf(top, sizeof top, "%.*s", (int)strcspn(member, "/"), member);
    char *parts[64];
    int n;
    switch (COLUMNS[ci].kind) {
    case K_TEXT: cJSON_AddStringToObject(w->given, member, v); break;
    case K_ENUM: cJSON_AddItemToObject(w->given, member, enum_value(v)); break;
    case K_COUNTRY: {
        char cc[3];
        cJSON_AddStringToObject(w->given, member, country_code(im, v, cc));
        break;
    }
    case K_ENUMS:
    case K_LOCATIONS:
    case K_CERTS: {
        cJSON *arr = cJSON_AddArrayToObject(w->given, member);
        n = split(v, COLUMNS[ci].kind == K_ENUMS, parts, 64);
        for (int i = 0; i < n; i++) {
            if (COLUMNS[ci].kind == K_ENUMS) cJSON_AddItemToArray(arr, enum_value(parts[i]));
            else if (COLUMNS[ci].kind == K_LOCATIONS) cJSON_AddItemToArray(arr, location(im, parts[i]));
            else {
                cJSON *c = cJSON_CreateObject();
                cJSON_AddStringToObject(c, "name", parts[i]);
                cJSON_AddItemToArray(arr, c);
            }
        }
        break;
    }
    case K_BOOL_DPF: {
        bool b;
        if (!parse_bool(v, &b)) {
            report(im, w->row, header, "/dpf/participating", "/problems/validation-error",
                   "must be true or false (also yes/no, ja/nein)");
            return;
        }
        cJSON_AddBoolToObject(cJSON_AddObjectToObject(w->given, "dpf"), "participating", b);
        break;
    }
    case K_BOTH_LANGS:
    case K_LANG: {
        cJSON *loc = json_get(w->given, top);
        if (!loc) loc = cJSON_AddObjectToObject(w->given, top);
        if (COLUMNS[ci].kind == K_LANG) {
            cJSON_DeleteItemFromObject(loc, member + strlen(top) + 1);
            cJSON_AddStringToObject(loc, member + strlen(top) + 1, v);
        } else {
            if (!json_get(loc, "de")) cJSON_AddStringToObject(loc, "de", v);
            if (!json_get(loc, "en")) cJSON_AddStringToObject(loc, "en", v);
        }
        break;
    }
    }
    cJSON_DeleteItemFromObject(w->columns, top);
    cJSON_AddStringToObject(w->columns, top, header);
}

static int column_index(const char *name)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", name);
    const char *t = trim(buf);
    for (size_t i = 0; i < NCOLUMNS; i++)
        for (int k = 0; COLUMNS[i].names[k]; k++)
            if (!strcasecmp(t, COLUMNS[i].names[k])) return (int)i;
    return -1;
}

static bool read_header(import *im, const csv_record *rec)
{
    bool ok = true;
    if (rec->n > 64) {
        report(im, 1, NULL, "", "/problems/validation-error", "more than 64 columns");
        return false;
    }
    im->ncols = rec->n;
    for (int i = 0; i < rec->n; i++) im->names[i] = xstrdup(trim(rec->cells[i]));
    for (int i = 0; i < rec->n; i++) {
        im->col_of[i] = column_index(rec->cells[i]);
        if (im->col_of[i] < 0) {
            char msg[256];
            snprintf(msg, sizeof msg,
                     rec->n == 1 ? "unknown column (the header has one column: is the file separated by another "
                                   "character than ',' or ';'?)"
                                 : "unknown column (docs/imports.md lists the columns, in English and German)");
            report(im, 1, rec->cells[i], "", "/problems/validation-error", msg);
            ok = false;
        }
        for (int j = 0; j < i && im->col_of[i] >= 0; j++)
            if (im->col_of[j] == im->col_of[i]) {
                report(im, 1, rec->cells[i], "", "/problems/validation-error",
                       "a second column for the same member");
                ok = false;
            }
    }
    return ok;
}

static bool each_record(const csv_record *rec, int line, void *ctx)
{
    import *im = ctx;
    if (!im->header_read) {
        im->header_read = true;
        return read_header(im, rec);
    }
    bool blank = true; /* a row of empty cells (a spreadsheet's trailing ";;;;") is no row */
    for (int i = 0; i < rec->n && blank; i++) blank = !*trim(rec->cells[i]);
    if (blank) return true;
    if (im->n >= IMPORT_MAX_ROWS) {
        im->too_many = true;
        return false;
    }
    row *w = add_row(im, line);
    if (rec->n != im->ncols) {
        char msg[96];
        snprintf(msg, sizeof msg, "has %d cells, the header %d", rec->n, im->ncols);
        report(im, line, NULL, "", "/problems/validation-error", msg);
    }
    for (int i = 0; i < rec->n && i < im->ncols; i++) put_cell(im, w, im->col_of[i], im->names[i], rec->cells[i]);
    return true;
}

/* ---- matching and checking ------------------------------------------------------- */


/* The column a problem's pointer belongs to, as the file names it. */
static const char *column_for(const row *w, const char *pointer)
{
    char top[64];
    const char *p = pointer && *pointer == '/' ? pointer + 1 : "";
    snprintf(top, sizeof top, "%.*s", (int)strcspn(p, "/"), p);
    return json_get_str(w->columns, top);
}

static void report_errs(import *im, const row *w, const verrors *errs, const char *type)
{
    for (const cJSON *e = errs->list ? errs->list->child : NULL; e; e = e->next) {
        const char *ptr = json_get_str(e, "pointer");
        report(im, w->row, column_for(w, ptr), ptr, type, json_get_str(e, "message"));
    }
}

static store_status match_and_check(import *im, const cJSON *registry)
{
    const resource *res = &RES_SUBPROCESSOR;
    cJSON *by_id = im->by_id = cJSON_CreateObject(), *by_name = im->by_name = cJSON_CreateObject();
    cJSON *seen = cJSON_CreateObject();
    for (const cJSON *sp = registry->child; sp; sp = sp->next) {
        char key[256];
        lower_key(json_get_str(sp, "legal_name"), key, sizeof key);
        cJSON_AddItemReferenceToObject(by_id, json_get_str(sp, "id"), (cJSON *)sp);
        cJSON *same = json_get(by_name, key);
        if (!same) same = cJSON_AddArrayToObject(by_name, key);
        cJSON_AddItemReferenceToArray(same, (cJSON *)sp);
    }
    store_status st = ST_OK;
    for (int i = 0; i < im->n && st == ST_OK; i++) {
        row *w = &im->rows[i];
        const char *id = json_get_str(w->given, "id");
        char key[300];
        if (id) {
            w->cur = json_get(by_id, id);
            if (!w->cur) {
                report(im, w->row, column_for(w, "/id"), "/id", "/problems/unprocessable-entity",
                       "no subprocessor with this id");
                continue;
            }
            snprintf(key, sizeof key, "id:%s", id);
        } else {
            char name[256];
            lower_key(json_get_str(w->given, "legal_name"), name, sizeof name);
            const cJSON *same = json_get(by_name, name);
            if (cJSON_GetArraySize(same) > 1) {
                report(im, w->row, column_for(w, "/legal_name"), "/legal_name", "/problems/conflict",
                       "several subprocessors have this legal name: give the id column");
                continue;
            }
            w->cur = same ? same->child : NULL;
            snprintf(key, sizeof key, w->cur ? "id:%s" : "name:%s", w->cur ? json_get_str(w->cur, "id") : name);
        }
        const cJSON *first = strcmp(key, "name:") ? json_get(seen, key) : NULL; /* no name: the schema says so */
        if (first) {
            char msg[96];
            snprintf(msg, sizeof msg, "the same subprocessor as row %d", (int)cJSON_GetNumberValue(first));
            report(im, w->row, column_for(w, id ? "/id" : "/legal_name"), id ? "/id" : "/legal_name",
                   "/problems/conflict", msg);
            continue;
        }
        cJSON_AddNumberToObject(seen, key, w->row);
        cJSON_DeleteItemFromObject(w->given, "id");
        if (w->cur) {
            w->client = cJSON_Duplicate(w->cur, 1);
            doc_public(w->client);
            schema_strip_server_fields(res->fields, w->client);
            cJSON *was = cJSON_Duplicate(w->client, 1);
            merge_patch(w->client, w->given);
            w->act = cJSON_Compare(was, w->client, true) ? A_UNCHANGED : A_UPDATE;
            cJSON_Delete(was);
        } else {
            w->client = cJSON_Duplicate(w->given, 1);
            schema_apply_defaults(res->fields, w->client);
            w->act = A_CREATE;
        }
        if (w->act == A_UNCHANGED) continue;
        verrors errs;
        verrors_init(&errs);
        char detail[256] = "";
        cJSON *before = w->cur ? doc_public(cJSON_Duplicate(w->cur, 1)) : NULL;
        int status = crud_check_state(res, before, w->client, &errs, detail, sizeof detail, &st);
        cJSON_Delete(before);
        if (status == 400) report_errs(im, w, &errs, "/problems/validation-error");
        else if (status == 422 && errs.count) report_errs(im, w, &errs, "/problems/unprocessable-entity");
        else if (status == 422) report(im, w->row, NULL, "", "/problems/unprocessable-entity", detail);
        verrors_free(&errs);
    }
    cJSON_Delete(seen);
    return st;
}

/* ---- the request ------------------------------------------------------------------ */

/* Country names (German and English, lower case) → codes, for cells that name
 * a country instead of giving its code. */
static store_status load_countries(import *im)
{
    cJSON *all = NULL;
    store_status st = store_list_all(COLL_COUNTRIES, &all);
    if (st != ST_OK) return st;
    im->countries = cJSON_CreateObject();
    for (const cJSON *c = all->child; c; c = c->next)
        for (const char *lang = "de";; lang = "en") {
            char key[256];
            lower_key(json_get_str(json_get(c, "name"), lang), key, sizeof key);
            if (*key && !json_get(im->countries, key)) cJSON_AddStringToObject(im->countries, key, json_get_str(c, "id"));
            if (!strcmp(lang, "en")) break;
        }
    cJSON_Delete(all);
    return ST_OK;
}

/* The body into rows: CSV by its media type, JSON otherwise. false when the
 * body was answered (415, 400). */
static bool read_rows(req *r, import *im)
{
    const char *ct = req_header(r, "Content-Type");
    size_t mlen = ct ? strcspn(ct, "; ") : 0;
    if (ct && mlen == 8 && !strncasecmp(ct, "text/csv", 8)) {
        /* what is wrong with the file is reported like a bad row (422) */
        const char *body = r->body ? r->body : "";
        int line = 1;
        for (const char *p = body, *end = body + r->body_len; p < end; line++) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
            if (!utf8_valid(p, len)) {
                report(im, line, NULL, "", "/problems/validation-error",
                       "not UTF-8 (save the file from the spreadsheet as \"CSV UTF-8\")");
                return true;
            }
            p += len + 1;
        }
        char err[160];
        char delim = csv_guess_delimiter(body, r->body_len);
        if (!csv_parse(body, r->body_len, delim, each_record, im, err, sizeof err)) {
            int at = 1;
            const char *in_row = strstr(err, "row ");
            if (in_row) sscanf(in_row, "row %d", &at);
            report(im, at, NULL, "", "/problems/validation-error", err);
        } else if (!im->header_read) {
            report(im, 1, NULL, "", "/problems/validation-error", "the file is empty: a header row is needed");
        }
        return true;
    }
    cJSON *body = req_json_body(r, "application/json");
    if (!body) return false;
    const cJSON *sps = json_get(body, "subprocessors");
    bool ok = cJSON_IsObject(body) && cJSON_IsArray(sps) && cJSON_GetArraySize(body) == 1;
    if (!ok) {
        respond_problem(r, 400, "malformed-request",
                        "a JSON import is {\"subprocessors\": [ … ]}, each item a subprocessor as the API takes it "
                        "(with \"id\" to update that one); or send text/csv");
        cJSON_Delete(body);
        return false;
    }
    int n = 0;
    for (const cJSON *s = sps->child; s && !im->too_many; s = s->next, n++) {
        if (n >= IMPORT_MAX_ROWS) {
            im->too_many = true;
            break;
        }
        row *w = add_row(im, n + 1);
        if (!cJSON_IsObject(s)) {
            report(im, w->row, NULL, "", "/problems/validation-error", "must be an object");
            continue;
        }
        cJSON_Delete(w->given);
        w->given = cJSON_Duplicate(s, 1);
        const cJSON *id = json_get(w->given, "id");
        if (id && !cJSON_IsString(id)) report(im, w->row, NULL, "/id", "/problems/validation-error", "must be a string");
    }
    cJSON_Delete(body);
    return true;
}

static cJSON *summary(const import *im, bool dry_run)
{
    int count[3] = {0};
    cJSON *out = cJSON_CreateObject(), *items = cJSON_CreateArray();
    cJSON_AddBoolToObject(out, "dry_run", dry_run);
    cJSON_AddNumberToObject(out, "rows", im->n);
    for (int i = 0; i < im->n; i++) {
        const row *w = &im->rows[i];
        count[w->act]++;
        cJSON *it = cJSON_CreateObject();
        cJSON_AddNumberToObject(it, "row", w->row);
        cJSON_AddStringToObject(it, "action", ACTIONS[w->act]);
        const char *id = w->cur ? json_get_str(w->cur, "id") : json_get_str(w->client, "id");
        if (id) cJSON_AddStringToObject(it, "id", id);
        else cJSON_AddNullToObject(it, "id");
        cJSON_AddStringToObject(it, "legal_name", json_get_str(w->client, "legal_name"));
        cJSON_AddItemToArray(items, it);
    }
    cJSON_AddNumberToObject(out, "created", count[A_CREATE]);
    cJSON_AddNumberToObject(out, "updated", count[A_UPDATE]);
    cJSON_AddNumberToObject(out, "unchanged", count[A_UNCHANGED]);
    cJSON_AddItemToObject(out, "items", items);
    return out;
}

/* Writes the changed rows in file order; on a failure stops and says which
 * rows are written (sending the file again completes it). */
static store_status apply(req *r, import *im, int *written)
{
    const resource *res = &RES_SUBPROCESSOR;
    *written = 0;
    for (int i = 0; i < im->n; i++) {
        row *w = &im->rows[i];
        if (w->act == A_UNCHANGED) continue;
        store_status st;
        if (w->act == A_CREATE) {
            char *id = new_id(res->id_prefix);
            st = crud_write_state(res, REQ_ORIGIN(r), id, NULL, NULL, w->client, NULL, NULL, NULL);
            if (st == ST_OK) cJSON_AddStringToObject(w->client, "id", id);
            free(id);
        } else {
            cJSON *before = doc_public(cJSON_Duplicate(w->cur, 1));
            st = crud_write_state(res, REQ_ORIGIN(r), json_get_str(w->cur, "id"), w->cur, before, w->client, NULL,
                                  NULL, NULL);
            cJSON_Delete(before);
        }
        if (st != ST_OK) return st;
        (*written)++;
    }
    return ST_OK;
}

static void handle_import(req *r)
{
    static const char *const allowed[] = {"dry_run", NULL};
    if (!req_check_query(r, allowed)) return;
    bool dry_run;
    if (!req_query_flag(r, "dry_run", &dry_run)) return;
    import im = {.errors = cJSON_CreateArray()};
    cJSON *registry = NULL;
    store_status st = load_countries(&im);
    if (st != ST_OK) {
        respond_store_error(r, st);
        goto done;
    }
    if (!read_rows(r, &im)) goto done;
    if (im.too_many) {
        char d[96];
        snprintf(d, sizeof d, "more than %d rows: split the file", IMPORT_MAX_ROWS);
        respond_problem(r, 422, "unprocessable-entity", d);
        goto done;
    }
    if (im.n == 0 && !im.nerrors) {
        respond_problem(r, 422, "unprocessable-entity", "the file has no rows");
        goto done;
    }
    store_extend_deadline((int64_t)im.n * 2); /* the registry read and each row's reference checks */
    st = store_list_all(RES_SUBPROCESSOR.collection, &registry);
    if (st == ST_OK && !im.nerrors) st = match_and_check(&im, registry);
    if (st != ST_OK) {
        respond_store_error(r, st);
        goto done;
    }
    if (im.nerrors) {
        char d[128];
        snprintf(d, sizeof d, "%d problem%s in the file; nothing was imported", im.nerrors, im.nerrors == 1 ? "" : "s");
        verrors e = {.list = im.errors, .count = im.nerrors};
        im.errors = NULL;
        respond_errors(r, 422, "unprocessable-entity", d, &e);
        verrors_free(&e);
        goto done;
    }
    int written = 0;
    /* each written row is a few database operations: the request deadline
     * (for one document's work) grows with the rows to write */
    store_extend_deadline((int64_t)im.n * IMPORT_MS_PER_ROW);
    if (!dry_run && (st = apply(r, &im, &written)) != ST_OK) {
        /* ST_STALE: a row's subprocessor changed since it was read */
        if (st == ST_STALE) {
            char d[200];
            snprintf(d, sizeof d,
                     "a subprocessor changed while the import was written (%d row%s written); send the file again",
                     written, written == 1 ? "" : "s");
            respond_problem(r, 409, "conflict", d);
        } else if (st == ST_UNAVAILABLE || st == ST_BUSY) {
            char d[200];
            snprintf(d, sizeof d,
                     "the database failed while the import was written (%d row%s written); send the file again "
                     "to complete it",
                     written, written == 1 ? "" : "s");
            req_add_header(r, "Retry-After", "5");
            respond_problem(r, 503, "service-unavailable", d);
        } else {
            respond_store_error(r, st);
        }
        goto done;
    }
    cJSON *out = summary(&im, dry_run);
    respond_json(r, 200, out);
    cJSON_Delete(out);
done:
    for (int i = 0; i < im.n; i++) {
        cJSON_Delete(im.rows[i].given);
        cJSON_Delete(im.rows[i].columns);
        cJSON_Delete(im.rows[i].client);
    }
    for (int i = 0; i < im.ncols; i++) free(im.names[i]);
    free(im.rows);
    cJSON_Delete(im.errors);
    cJSON_Delete(im.countries);
    cJSON_Delete(im.by_id); /* references into registry: before it */
    cJSON_Delete(im.by_name);
    cJSON_Delete(registry);
}

int import_routes(route *out, int cap)
{
    const route rs[] = {
        {"POST", "/v1/imports", handle_import, RES_SUBPROCESSOR.write_role, NULL, IMPORT_MAX_BYTES},
    };
    return add_routes(out, cap, rs, sizeof rs / sizeof rs[0]);
}
