#define _GNU_SOURCE /* memfd_create */
#include "subreg/publication.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xlsxwriter.h>

#include "subreg/json.h"
#include "subreg/resource.h"

cJSON *public_view(const cJSON *sp)
{
    const char *status = json_get_str(sp, "status");
    const cJSON *pub = json_get(sp, "public");
    if (!status || strcmp(status, "retired") == 0) return NULL;
    if (cJSON_IsFalse(json_get(pub, "listed"))) return NULL;
    cJSON *v = cJSON_CreateObject();
    /* the members the descriptor declares public, then the derived ones */
    for (const char *const *f = RES_SUBPROCESSOR.public_fields; f && *f; f++) {
        const cJSON *x = json_get(sp, *f);
        if (x) cJSON_AddItemToObject(v, *f, cJSON_Duplicate(x, 1));
    }
    const cJSON *certs = json_get(sp, "certifications");
    if (cJSON_GetArraySize(certs) > 0) {
        cJSON *out = cJSON_AddArrayToObject(v, "certifications");
        for (const cJSON *c = certs->child; c; c = c->next) {
            cJSON *o = cJSON_CreateObject();
            static const char *const cf[] = {"name", "issuer", "valid_until", NULL};
            for (const char *const *f = cf; *f; f++)
                if (json_get(c, *f)) cJSON_AddItemToObject(o, *f, cJSON_Duplicate(json_get(c, *f), 1));
            cJSON_AddItemToArray(out, o);
        }
    }
    const cJSON *dpf = json_get(sp, "dpf");
    if (dpf) cJSON_AddBoolToObject(v, "dpf_participating", cJSON_IsTrue(json_get(dpf, "participating")));
    const cJSON *desc = json_get(pub, "description");
    if (desc) cJSON_AddItemToObject(v, "description", cJSON_Duplicate(desc, 1));
    return v;
}

/* A sort key readers expect: case-insensitive, umlauts with their base letter
 * (DIN 5007-1), ß as ss. */
static void sort_key(const char *s, char *out, size_t outlen)
{
    size_t k = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && k + 3 < outlen; p++) {
        if (p[0] == 0xC3 && p[1]) {
            unsigned char c = p[1];
            const char *rep = c == 0x84 || c == 0xA4 ? "a" : c == 0x96 || c == 0xB6 ? "o" : c == 0x9C || c == 0xBC ? "u"
                              : c == 0x9F                                            ? "ss"
                                                                                     : NULL;
            if (rep) {
                for (const char *r = rep; *r; r++) out[k++] = *r;
                p++;
                continue;
            }
        }
        out[k++] = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    }
    out[k] = '\0';
}

static int cmp_items(const void *a, const void *b)
{
    const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
    char kx[256], ky[256];
    sort_key(json_get_str(x, "legal_name"), kx, sizeof kx);
    sort_key(json_get_str(y, "legal_name"), ky, sizeof ky);
    int c = strcmp(kx, ky);
    return c ? c : strcmp(json_get_str(x, "id"), json_get_str(y, "id"));
}

cJSON *public_items(const cJSON *subprocessors)
{
    int n = cJSON_GetArraySize(subprocessors), k = 0;
    cJSON **views = xcalloc((size_t)n + 1, sizeof *views);
    for (const cJSON *s = subprocessors ? subprocessors->child : NULL; s; s = s->next) {
        cJSON *v = public_view(s);
        if (v && json_get_str(v, "legal_name") && json_get_str(v, "id")) views[k++] = v;
        else cJSON_Delete(v);
    }
    qsort(views, (size_t)k, sizeof *views, cmp_items);
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < k; i++) cJSON_AddItemToArray(arr, views[i]);
    free(views);
    return arr;
}

/* ---- services: each service's view of a version ----------------------------- */

bool item_serves(const cJSON *item, const char *service)
{
    const cJSON *s = json_get(item, "services");
    return !cJSON_IsArray(s) || json_array_has_string(s, service);
}

static int cmp_services(const void *a, const void *b)
{
    const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
    /* unsorted ones after the sorted ones */
    double sx = cJSON_IsNumber(json_get(x, "sort")) ? cJSON_GetNumberValue(json_get(x, "sort")) : 1e9;
    double sy = cJSON_IsNumber(json_get(y, "sort")) ? cJSON_GetNumberValue(json_get(y, "sort")) : 1e9;
    return sx != sy ? (sx < sy ? -1 : 1) : strcmp(json_get_str(x, "id"), json_get_str(y, "id"));
}

cJSON *service_catalogue(const cJSON *services)
{
    int n = cJSON_GetArraySize(services), k = 0;
    cJSON **v = xcalloc((size_t)n + 1, sizeof *v);
    for (const cJSON *s = services ? services->child : NULL; s; s = s->next) {
        const char *status = json_get_str(s, "status");
        if (!json_get_str(s, "id") || (status && strcmp(status, "active") != 0)) continue;
        cJSON *o = cJSON_CreateObject();
        static const char *const keep[] = {"id", "name", "description", "public", "sort", NULL};
        for (const char *const *f = keep; *f; f++)
            if (json_get(s, *f)) cJSON_AddItemToObject(o, *f, cJSON_Duplicate(json_get(s, *f), 1));
        v[k++] = o;
    }
    qsort(v, (size_t)k, sizeof *v, cmp_services);
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < k; i++) cJSON_AddItemToArray(arr, v[i]);
    free(v);
    return arr;
}

void assign_services(cJSON *items, const cJSON *subprocessors, const cJSON *services)
{
    if (cJSON_GetArraySize(services) == 0) return;
    json_index ix;
    json_index_build(&ix, subprocessors, "id");
    for (cJSON *it = items ? items->child : NULL; it; it = it->next) {
        const cJSON *want = json_get(json_index_find(&ix, json_get_str(it, "id")), "services");
        cJSON *arr = cJSON_CreateArray();
        for (const cJSON *s = services->child; s; s = s->next) {
            const char *id = json_get_str(s, "id");
            if (id && (!cJSON_IsArray(want) || json_array_has_string(want, id))) cJSON_AddItemToArray(arr, cJSON_CreateString(id));
        }
        cJSON_DeleteItemFromObjectCaseSensitive(it, "services");
        cJSON_AddItemToObject(it, "services", arr);
    }
    json_index_free(&ix);
}

/* A service's view: copies of the items serving it (service NULL: all items),
 * without their "services" member. */
static cJSON *service_items(const cJSON *items, const char *service)
{
    cJSON *out = cJSON_CreateArray();
    for (const cJSON *it = items ? items->child : NULL; it; it = it->next) {
        if (service && !item_serves(it, service)) continue;
        cJSON *c = cJSON_Duplicate(it, 1);
        cJSON_DeleteItemFromObjectCaseSensitive(c, "services");
        cJSON_AddItemToArray(out, c);
    }
    return out;
}

cJSON *service_diff(const cJSON *before, const cJSON *after, const char *service)
{
    cJSON *b = before ? service_items(before, service) : NULL, *a = service_items(after, service);
    cJSON *d = publication_diff(b, a);
    cJSON_Delete(b);
    cJSON_Delete(a);
    return d;
}

cJSON *service_changes(const cJSON *before, const cJSON *after, const cJSON *services)
{
    cJSON *out = cJSON_CreateObject();
    for (const cJSON *s = services ? services->child : NULL; s; s = s->next) {
        const char *id = json_get_str(s, "id");
        if (id) cJSON_AddItemToObject(out, id, service_diff(before, after, id));
    }
    return out;
}

static bool adds_or_changes(const cJSON *diff)
{
    return cJSON_GetArraySize(json_get(diff, "added")) > 0 || cJSON_GetArraySize(json_get(diff, "changed")) > 0;
}

static int int_member(const cJSON *doc, const char *name)
{
    const cJSON *v = json_get(doc, name);
    return cJSON_IsNumber(v) ? v->valueint : 0;
}

cJSON *affected_customers(const cJSON *customers, const cJSON *whole, const cJSON *changes, notice_terms *t)
{
    memset(t, 0, sizeof *t);
    t->owed = cJSON_CreateArray();
    cJSON *ids = cJSON_CreateArray();
    for (const cJSON *c = customers ? customers->child : NULL; c; c = c->next) {
        const char *id = json_get_str(c, "id"), *status = json_get_str(c, "status");
        if (!id || (status && strcmp(status, "active") != 0)) continue;
        const cJSON *mine = json_get(c, "services");
        bool touched = false, notice = false, scoped = false;
        for (const cJSON *s = cJSON_IsArray(mine) ? mine->child : NULL; s; s = s->next) {
            const cJSON *d = cJSON_IsString(s) ? json_get(changes, s->valuestring) : NULL;
            if (!d) continue;
            scoped = true;
            touched |= !diff_is_empty(d);
            notice |= adds_or_changes(d);
        }
        /* fail closed: a customer none of whose services is in the catalogue
         * (retired, or none defined) is told about the whole list */
        if (!scoped) {
            touched = !diff_is_empty(whole);
            notice = adds_or_changes(whole);
        }
        if (!touched) continue;
        cJSON_AddItemToArray(ids, cJSON_CreateString(id));
        int n = int_member(c, "notice_days"), o = int_member(c, "objection_days");
        t->any = true;
        if (notice) {
            t->needs_notice = true;
            cJSON_AddItemToArray(t->owed, cJSON_CreateString(id));
        }
        if (notice && n > t->notice_days) t->notice_days = n;
        if (o > t->objection_days) t->objection_days = o;
    }
    return ids;
}

static void add_field_change(cJSON *fields, const char *name, const cJSON *before, const cJSON *after)
{
    cJSON *ch = cJSON_CreateObject();
    cJSON_AddStringToObject(ch, "field", name);
    cJSON_AddItemToObject(ch, "before", before ? cJSON_Duplicate(before, 1) : cJSON_CreateNull());
    cJSON_AddItemToObject(ch, "after", after ? cJSON_Duplicate(after, 1) : cJSON_CreateNull());
    cJSON_AddItemToArray(fields, ch);
}

const cJSON *publication_replaced_by(const cJSON *pubs, const cJSON *p)
{
    const cJSON *n = json_get(p, "number");
    for (const cJSON *q = pubs ? pubs->child : NULL; n && q; q = q->next) {
        const cJSON *r = json_get(q, "replaces");
        if (cJSON_IsNumber(r) && r->valuedouble == n->valuedouble) return q;
    }
    return NULL;
}

const cJSON *publication_in_effect(const cJSON *pubs, int64_t now)
{
    const cJSON *best = NULL;
    for (const cJSON *p = pubs ? pubs->child : NULL; p; p = p->next) {
        int64_t eff;
        const char *v = json_get_str(p, "effective_at");
        if (!v || !parse_rfc3339(v, &eff) || eff > now || publication_replaced_by(pubs, p)) continue;
        if (!best || cJSON_GetNumberValue(json_get(p, "number")) > cJSON_GetNumberValue(json_get(best, "number")))
            best = p;
    }
    return best;
}

cJSON *publication_diff(const cJSON *before, const cJSON *after)
{
    cJSON *d = cJSON_CreateObject();
    cJSON *added = cJSON_AddArrayToObject(d, "added");
    cJSON *removed = cJSON_AddArrayToObject(d, "removed");
    cJSON *changed = cJSON_AddArrayToObject(d, "changed");
    json_index old_ix, new_ix;
    json_index_build(&old_ix, before, "id");
    json_index_build(&new_ix, after, "id");
    for (const cJSON *a = after ? after->child : NULL; a; a = a->next) {
        const cJSON *b = json_index_find(&old_ix, json_get_str(a, "id"));
        if (!b) {
            cJSON_AddItemToArray(added, cJSON_Duplicate(a, 1));
            continue;
        }
        cJSON *fields = cJSON_CreateArray();
        /* Fields of the new view in order, then fields only the old one had. */
        for (const cJSON *f = a->child; f; f = f->next) {
            const cJSON *old = json_get(b, f->string);
            if (!old || !cJSON_Compare(old, f, 1)) add_field_change(fields, f->string, old, f);
        }
        for (const cJSON *f = b->child; f; f = f->next)
            if (!json_get(a, f->string)) add_field_change(fields, f->string, f, NULL);
        if (cJSON_GetArraySize(fields) > 0) {
            cJSON *c = cJSON_CreateObject();
            cJSON_AddStringToObject(c, "id", json_get_str(a, "id"));
            cJSON_AddStringToObject(c, "legal_name", json_get_str(a, "legal_name"));
            cJSON_AddItemToObject(c, "fields", fields);
            cJSON_AddItemToArray(changed, c);
        } else {
            cJSON_Delete(fields);
        }
    }
    for (const cJSON *b = before ? before->child : NULL; b; b = b->next)
        if (!json_index_find(&new_ix, json_get_str(b, "id"))) cJSON_AddItemToArray(removed, cJSON_Duplicate(b, 1));
    json_index_free(&old_ix);
    json_index_free(&new_ix);
    return d;
}

bool diff_is_empty(const cJSON *diff)
{
    return cJSON_GetArraySize(json_get(diff, "added")) == 0 && cJSON_GetArraySize(json_get(diff, "removed")) == 0 &&
           cJSON_GetArraySize(json_get(diff, "changed")) == 0;
}

/* ---- services (issue 12) ------------------------------------------------------- */

/* The newest catalogue's order first (it is ordered by sort, then id), then
 * what only older ones have. */
cJSON *public_services(const cJSON *pubs)
{
    cJSON *out = cJSON_CreateArray(), *seen = cJSON_CreateArray();
    const cJSON *last = pubs && pubs->child ? pubs->child->prev : NULL; /* cJSON: the first's prev is the last */
    for (const cJSON *p = last; p; p = p == pubs->child ? NULL : p->prev) {
        const cJSON *cat = json_get(p, "services");
        for (const cJSON *c = cJSON_IsArray(cat) ? cat->child : NULL; c; c = c->next) {
            const char *id = json_get_str(c, "id");
            if (!id || json_find_by_id(seen, id)) continue;
            /* the newest catalogue naming it decides, even when its entry is unusable */
            cJSON *mark = cJSON_CreateObject();
            cJSON_AddStringToObject(mark, "id", id);
            cJSON_AddItemToArray(seen, mark);
            if (!cJSON_IsTrue(json_get(c, "public")) || !cJSON_IsObject(json_get(c, "name"))) continue;
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "id", id);
            cJSON_AddItemToObject(e, "name", cJSON_Duplicate(json_get(c, "name"), 1));
            if (cJSON_IsObject(json_get(c, "description")))
                cJSON_AddItemToObject(e, "description", cJSON_Duplicate(json_get(c, "description"), 1));
            cJSON_AddItemToArray(out, e);
        }
    }
    cJSON_Delete(seen);
    return out;
}

void strip_services(cJSON *items)
{
    for (cJSON *it = items ? items->child : NULL; it; it = it->next)
        cJSON_DeleteItemFromObjectCaseSensitive(it, "services");
}

/* Drops the entries of arr (added or removed items) that do not serve service. */
static void keep_serving(cJSON *arr, const char *service)
{
    for (cJSON *c = arr ? arr->child : NULL, *next; c; c = next) {
        next = c->next;
        if (!item_serves(c, service)) cJSON_Delete(cJSON_DetachItemViaPointer(arr, c));
    }
}

cJSON *public_changes(const cJSON *pub, const char *service)
{
    const cJSON *own = service ? json_get(json_get(pub, "service_changes"), service) : NULL;
    const cJSON *src = own ? own : json_get(pub, "diff");
    cJSON *d = cJSON_IsObject(src) ? cJSON_Duplicate(src, 1) : cJSON_CreateObject();
    static const char *const parts[] = {"added", "removed", "changed"};
    for (int i = 0; i < 3; i++)
        if (!cJSON_IsArray(json_get(d, parts[i]))) {
            cJSON_DeleteItemFromObjectCaseSensitive(d, parts[i]);
            cJSON_AddArrayToObject(d, parts[i]);
        }
    bool filter = service && !own; /* a version without service_changes: filter its diff */
    for (int i = 0; i < 2; i++) {
        cJSON *arr = json_get(d, parts[i]);
        if (filter) keep_serving(arr, service);
        strip_services(arr);
    }
    json_index ix;
    json_index_build(&ix, filter ? json_get(pub, "items") : NULL, "id");
    cJSON *changed = json_get(d, "changed");
    for (cJSON *c = changed->child, *next; c; c = next) {
        next = c->next;
        const cJSON *item = filter ? json_index_find(&ix, json_get_str(c, "id")) : NULL;
        cJSON *fields = json_get(c, "fields");
        for (cJSON *f = fields ? fields->child : NULL, *fnext; f; f = fnext) {
            fnext = f->next;
            const char *name = json_get_str(f, "field");
            if (name && strcmp(name, "services") == 0) cJSON_Delete(cJSON_DetachItemViaPointer(fields, f));
        }
        if ((item && !item_serves(item, service)) || cJSON_GetArraySize(fields) == 0)
            cJSON_Delete(cJSON_DetachItemViaPointer(changed, c));
    }
    json_index_free(&ix);
    return d;
}

cJSON *publication_view(const cJSON *pub, const char *service)
{
    cJSON *v = cJSON_CreateObject();
    for (const cJSON *m = pub->child; m; m = m->next)
        if (m->string && strcmp(m->string, "items") != 0 && strcmp(m->string, "diff") != 0)
            cJSON_AddItemReferenceToObject(v, m->string, (cJSON *)m);
    cJSON *items = json_get(pub, "items");
    if (items && !service) {
        cJSON_AddItemReferenceToObject(v, "items", items);
    } else if (items) {
        cJSON *a = cJSON_AddArrayToObject(v, "items");
        for (cJSON *it = items->child; it; it = it->next)
            if (item_serves(it, service)) cJSON_AddItemReferenceToArray(a, it);
    }
    if (json_get(pub, "diff") || service) cJSON_AddItemToObject(v, "diff", public_changes(pub, service));
    return v;
}

static bool is_localized(const cJSON *v)
{
    if (!cJSON_IsObject(v) || cJSON_GetArraySize(v) != 2) return false;
    return cJSON_IsString(json_get(v, "de")) && cJSON_IsString(json_get(v, "en"));
}

cJSON *localize(const cJSON *v, const char *lang)
{
    if (lang && is_localized(v)) return cJSON_CreateString(json_get_str(v, lang));
    if (cJSON_IsObject(v) || cJSON_IsArray(v)) {
        cJSON *o = cJSON_IsObject(v) ? cJSON_CreateObject() : cJSON_CreateArray();
        for (const cJSON *c = v->child; c; c = c->next) {
            cJSON *x = localize(c, lang);
            if (cJSON_IsObject(v)) cJSON_AddItemToObject(o, c->string, x);
            else cJSON_AddItemToArray(o, x);
        }
        return o;
    }
    return cJSON_Duplicate(v, 1);
}

/* ---- labels ------------------------------------------------------------ */

typedef struct {
    const char *key, *de, *en;
} label;

static const label LABELS[] = {
    {"hosting", "Hosting", "Hosting"},
    {"monitoring", "Monitoring", "Monitoring"},
    {"rmm", "Fernwartung (RMM)", "Remote monitoring and management"},
    {"erp_billing", "ERP und Abrechnung", "ERP and billing"},
    {"email", "E-Mail-Versand", "E-mail delivery"},
    {"newsletter", "Newsletter-Versand", "Newsletter delivery"},
    {"payment", "Zahlungsdienst", "Payment services"},
    {"subcontractor", "Subunternehmer", "Subcontractor"},
    {"other", "Sonstiges", "Other"},
    {"master_contact", "Stamm- und Kontaktdaten", "Master and contact data"},
    {"contract_service", "Vertrags- und Leistungsdaten", "Contract and service data"},
    {"support_communication", "Support- und Kommunikationsdaten", "Support and communication data"},
    {"it_documentation", "IT-Dokumentation", "IT documentation"},
    {"prospects", "Interessenten", "Prospects"},
    {"customers", "Kunden", "Customers"},
    {"service_providers", "Dienstleister", "Service providers"},
    {"partners", "Partner", "Partners"},
    {"processing", "Verarbeitung", "Processing"},
    {"remote_access", "Fernzugriff", "Remote access"},
    {"backup", "Datensicherung", "Backup"},
    {"support", "Support", "Support"},
    {"legal_name", "Firma", "legal name"},
    {"trading_name", "Handelsname", "trading name"},
    {"hq_country", "Sitzland", "country of the head office"},
    {"website", "Website", "website"},
    {"privacy_policy_url", "Datenschutzerklärung", "privacy policy"},
    {"dpa_url", "AV-Vertrag", "DPA"},
    {"subprocessor_list_url", "eigene Unterauftragsverarbeiter", "own subprocessor list"},
    {"category", "Kategorie", "category"},
    {"role", "Rolle", "role"},
    {"purpose", "Zweck", "purpose"},
    {"data_categories", "Datenkategorien", "data categories"},
    {"data_subjects", "Betroffene", "data subjects"},
    {"locations", "Orte der Verarbeitung", "processing locations"},
    {"certifications", "Zertifizierungen", "certifications"},
    {"dpf_participating", "EU-US Data Privacy Framework", "EU-US Data Privacy Framework"},
    {"description", "Beschreibung", "description"},
    {NULL, NULL, NULL},
};

static const char *label_of(const char *key, const char *lang)
{
    for (const label *l = LABELS; l->key; l++)
        if (strcmp(l->key, key) == 0) return strcmp(lang, "de") == 0 ? l->de : l->en;
    return key;
}

const char *label_key(const char *text)
{
    for (const label *l = LABELS; l->key; l++)
        if (!strcasecmp(text, l->key) || !strcasecmp(text, l->de) || !strcasecmp(text, l->en)) return l->key;
    return NULL;
}

static const char *text_of(const cJSON *v, const char *lang)
{
    if (cJSON_IsString(v)) return v->valuestring;
    const char *s = json_get_str(v, lang);
    return s ? s : "";
}

static void join_labels(const cJSON *arr, const char *lang, const char *sep, strbuf *out)
{
    for (const cJSON *c = arr ? arr->child : NULL; c; c = c->next) {
        if (c != arr->child) sb_puts(out, sep);
        sb_puts(out, cJSON_IsString(c) ? label_of(c->valuestring, lang) : "");
    }
}

static void locations_text(const cJSON *locs, const char *lang, const char *sep, strbuf *out)
{
    for (const cJSON *c = locs ? locs->child : NULL; c; c = c->next) {
        if (c != locs->child) sb_puts(out, sep);
        const char *country = json_get_str(c, "country"), *region = json_get_str(c, "region");
        const char *loc_role = json_get_str(c, "role");
        sb_printf(out, "%s", country ? country : "");
        if (region) sb_printf(out, " (%s)", region);
        if (loc_role) sb_printf(out, ": %s", label_of(loc_role, lang));
    }
}

static void certs_text(const cJSON *certs, const char *sep, strbuf *out)
{
    for (const cJSON *c = certs ? certs->child : NULL; c; c = c->next) {
        if (c != certs->child) sb_puts(out, sep);
        sb_puts(out, json_get_str(c, "name") ? json_get_str(c, "name") : "");
    }
}

/* ---- CSV (RFC 4180) ------------------------------------------------------- */

/* OWASP's CSV injection list: a cell starting with = + - @ TAB or CR is a
 * formula (or, for TAB and CR, may become one once a spreadsheet trims it).
 * Leading spaces are looked through: some programs trim them first. */
static bool csv_formula(const char *s)
{
    while (*s == ' ') s++;
    return *s == '=' || *s == '+' || *s == '-' || *s == '@' || *s == '\t' || *s == '\r';
}

static void csv_field(strbuf *out, const char *raw, bool last)
{
    strbuf clean = {0}; /* any stored string: what text_valid refuses becomes U+FFFD */
    sb_put_text(&clean, raw, strlen(raw));
    const char *s = clean.data ? clean.data : "";
    bool quote = strpbrk(s, ",\"\r\n") != NULL || *s == ' ' || (*s && s[strlen(s) - 1] == ' ');
    /* A formula is neutralised with a leading apostrophe, inside quotes. */
    bool formula = csv_formula(s);
    if (quote || formula) {
        sb_puts(out, "\"");
        if (formula) sb_puts(out, "'");
        for (const char *p = s; *p; p++) {
            if (*p == '"') sb_puts(out, "\"\"");
            else sb_append(out, p, 1);
        }
        sb_puts(out, "\"");
    } else {
        sb_puts(out, s);
    }
    sb_free(&clean);
    sb_puts(out, last ? "\r\n" : ",");
}

/* The public list's columns (CSV and XLSX alike) and one item's cell text. */
static const char *const LIST_COLUMNS[] = {"id",           "legal_name",   "trading_name",    "category",
                                           "hq_country",   "purpose",      "data_categories", "data_subjects",
                                           "locations",    "certifications", "dpf_participating", "website", NULL};

static void list_cell(const cJSON *it, const char *c, const char *lang, strbuf *cell)
{
    const cJSON *v = json_get(it, c);
    cell->len = 0;
    if (cell->data) cell->data[0] = '\0';
    if (strcmp(c, "category") == 0 && cJSON_IsString(v)) sb_puts(cell, v->valuestring);
    else if (strcmp(c, "purpose") == 0) sb_puts(cell, text_of(v, lang));
    else if (strcmp(c, "data_categories") == 0 || strcmp(c, "data_subjects") == 0) {
        for (const cJSON *x = v ? v->child : NULL; x; x = x->next) {
            if (x != v->child) sb_puts(cell, ";");
            sb_puts(cell, cJSON_IsString(x) ? x->valuestring : "");
        }
    } else if (strcmp(c, "locations") == 0) locations_text(v, "en", "; ", cell);
    else if (strcmp(c, "certifications") == 0) certs_text(v, "; ", cell);
    else if (strcmp(c, "dpf_participating") == 0) sb_puts(cell, cJSON_IsBool(v) ? (cJSON_IsTrue(v) ? "true" : "false") : "");
    else if (cJSON_IsString(v)) sb_puts(cell, v->valuestring);
    if (!cell->data) sb_append(cell, "", 0);
}

void render_csv(const cJSON *items, const char *lang, strbuf *out)
{
    const char *const *cols = LIST_COLUMNS;
    for (int i = 0; cols[i]; i++) csv_field(out, cols[i], !cols[i + 1]);
    for (const cJSON *it = items ? items->child : NULL; it; it = it->next) {
        strbuf cell = {0};
        for (int i = 0; cols[i]; i++) {
            list_cell(it, cols[i], lang, &cell);
            csv_field(out, cell.data, !cols[i + 1]);
        }
        sb_free(&cell);
    }
}

/* ---- XLSX (libxlsxwriter) ---------------------------------------------------------- */

/* One worksheet of text cells (header bold and frozen) as an XLSX workbook
 * appended to out. Every cell is written as a string, so nothing in it is ever
 * a formula. libxlsxwriter writes to a file: an anonymous memory file
 * (memfd_create), named through /proc/self/fd; its own scratch files go to
 * $TMPDIR or /tmp. The workbook is dated created: the same cells and date give
 * the same bytes. */
static pthread_mutex_t xlsx_lock = PTHREAD_MUTEX_INITIALIZER;

static bool xlsx_sheet_locked(const char *sheet, const char *const *header, int ncols, int nrows, xlsx_cell_fn cell,
                              void *ctx, time_t created, strbuf *out);

/* libxlsxwriter dates the workbook with gmtime() (one static buffer): one
 * workbook at a time (the scheduler's public list and the requests' lists). */
bool xlsx_sheet(const char *sheet, const char *const *header, int ncols, int nrows, xlsx_cell_fn cell, void *ctx,
                time_t created, strbuf *out)
{
    pthread_mutex_lock(&xlsx_lock);
    bool ok = xlsx_sheet_locked(sheet, header, ncols, nrows, cell, ctx, created, out);
    pthread_mutex_unlock(&xlsx_lock);
    return ok;
}

static bool xlsx_sheet_locked(const char *sheet, const char *const *header, int ncols, int nrows, xlsx_cell_fn cell,
                              void *ctx, time_t created, strbuf *out)
{
    int fd = memfd_create("subreg-xlsx", MFD_CLOEXEC);
    if (fd < 0) return false;
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    const char *tmp = getenv("TMPDIR");
    lxw_workbook_options opts = {.tmpdir = (char *)(tmp && *tmp ? tmp : "/tmp")};
    lxw_workbook *wb = workbook_new_opt(path, &opts);
    bool ok = wb != NULL;
    if (ok) {
        lxw_doc_properties props = {.created = created};
        workbook_set_properties(wb, &props);
        lxw_worksheet *ws = workbook_add_worksheet(wb, sheet);
        lxw_format *bold = workbook_add_format(wb);
        format_set_bold(bold);
        for (int c = 0; c < ncols; c++) worksheet_write_string(ws, 0, (lxw_col_t)c, header[c], bold);
        worksheet_freeze_panes(ws, 1, 0);
        strbuf text = {0}, clean = {0};
        for (int r = 0; r < nrows; r++)
            for (int c = 0; c < ncols; c++) {
                text.len = 0;
                cell(ctx, r, c, &text);
                clean.len = 0;
                sb_put_text(&clean, text.data ? text.data : "", text.len); /* XML 1.0 text only */
                if (clean.len) worksheet_write_string(ws, (lxw_row_t)r + 1, (lxw_col_t)c, clean.data, NULL);
            }
        sb_free(&text);
        sb_free(&clean);
        ok = workbook_close(wb) == LXW_NO_ERROR;
    }
    off_t len = ok ? lseek(fd, 0, SEEK_END) : -1;
    if (len > 0) {
        sb_reserve(out, (size_t)len);
        ok = pread(fd, out->data + out->len, (size_t)len, 0) == len;
        if (ok) out->len += (size_t)len;
    } else {
        ok = false;
    }
    close(fd);
    return ok;
}

typedef struct {
    const cJSON **items;
    const char *lang;
} list_rows;

static void list_xlsx_cell(void *ctx, int row, int col, strbuf *out)
{
    const list_rows *l = ctx;
    list_cell(l->items[row], LIST_COLUMNS[col], l->lang, out);
}

bool render_xlsx(const cJSON *items, const char *lang, time_t created, strbuf *out)
{
    int n = cJSON_GetArraySize(items), ncols = 0;
    while (LIST_COLUMNS[ncols]) ncols++;
    list_rows l = {.items = xcalloc((size_t)n + 1, sizeof *l.items), .lang = lang};
    int k = 0;
    for (const cJSON *it = items ? items->child : NULL; it; it = it->next) l.items[k++] = it;
    bool ok = xlsx_sheet(strcmp(lang, "de") == 0 ? "Unterauftragsverarbeiter" : "Subprocessors", LIST_COLUMNS, ncols, n,
                         list_xlsx_cell, &l, created, out);
    free(l.items);
    return ok;
}

/* ---- XML/HTML ------------------------------------------------------------- */

/* Escapes for XML and HTML text and attributes; safe for any stored string:
 * what XML 1.0 does not allow (and bytes that are not UTF-8) becomes U+FFFD. */
static void esc(strbuf *out, const char *raw)
{
    strbuf clean = {0};
    if (raw) sb_put_text(&clean, raw, strlen(raw));
    for (const char *p = clean.data ? clean.data : ""; *p; p++) {
        switch (*p) {
        case '&': sb_puts(out, "&amp;"); break;
        case '<': sb_puts(out, "&lt;"); break;
        case '>': sb_puts(out, "&gt;"); break;
        case '"': sb_puts(out, "&quot;"); break;
        case '\'': sb_puts(out, "&#39;"); break;
        default: sb_append(out, p, 1);
        }
    }
    sb_free(&clean);
}

/* "?service=ID" (sep '?') or "&amp;service=ID" (sep '&') for a link to one
 * service's form; nothing for the whole list. */
static void service_query(strbuf *out, const cJSON *service, char sep)
{
    if (!service) return;
    sb_puts(out, sep == '?' ? "?service=" : "&amp;service=");
    esc(out, json_get_str(service, "id"));
}

static const char *service_name(const cJSON *service, const char *lang)
{
    return text_of(json_get(service, "name"), lang);
}

static void change_summary(const cJSON *diff, const char *lang, strbuf *out)
{
    bool de = strcmp(lang, "de") == 0;
    const cJSON *added = json_get(diff, "added"), *removed = json_get(diff, "removed"),
                *changed = json_get(diff, "changed");
    for (const cJSON *c = added ? added->child : NULL; c; c = c->next) {
        sb_puts(out, de ? "Neu: " : "Added: ");
        esc(out, json_get_str(c, "legal_name"));
        sb_puts(out, ". ");
    }
    for (const cJSON *c = removed ? removed->child : NULL; c; c = c->next) {
        sb_puts(out, de ? "Entfällt: " : "Removed: ");
        esc(out, json_get_str(c, "legal_name"));
        sb_puts(out, ". ");
    }
    for (const cJSON *c = changed ? changed->child : NULL; c; c = c->next) {
        sb_puts(out, de ? "Geändert: " : "Changed: ");
        esc(out, json_get_str(c, "legal_name"));
        sb_puts(out, " (");
        const cJSON *fields = json_get(c, "fields");
        for (const cJSON *f = fields ? fields->child : NULL; f; f = f->next) {
            if (f != fields->child) sb_puts(out, ", ");
            const char *name = json_get_str(f, "field");
            esc(out, name ? label_of(name, lang) : "");
        }
        sb_puts(out, "). ");
    }
}

/* The notice note of a version taking effect before the promised notice period
 * ended (override_notice), with the reason given; nothing otherwise. */
static void override_note(const cJSON *p, const char *lang, const char *before, const char *after, strbuf *out)
{
    if (!cJSON_IsTrue(json_get(p, "override_notice"))) return;
    bool de = strcmp(lang, "de") == 0;
    sb_puts(out, before);
    sb_puts(out, de ? "Die Ankündigungsfrist wurde verkürzt. Grund: " : "The notice period was shortened. Reason: ");
    esc(out, text_of(json_get(p, "override_reason"), lang));
    sb_puts(out, after);
}

void render_atom(const cJSON *pubs, const char *base, const char *updated, const cJSON *service, strbuf *out)
{
    sb_puts(out, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\" "
                 "xml:lang=\"en\">\n  <title>Subprocessors");
    if (service) {
        sb_puts(out, " of ");
        esc(out, service_name(service, "en"));
    }
    sb_puts(out, ": published versions</title>\n  <id>");
    esc(out, base);
    sb_puts(out, PUBLIC_FEED_PATH);
    service_query(out, service, '?');
    sb_puts(out, "</id>\n  <updated>");
    esc(out, updated);
    sb_puts(out, "</updated>\n  <author><name>subreg</name></author>\n  <link rel=\"self\" type=\"application/atom+xml\" href=\"");
    esc(out, base);
    sb_puts(out, PUBLIC_FEED_PATH);
    service_query(out, service, '?');
    sb_puts(out, "\"/>\n  <link rel=\"alternate\" type=\"text/html\" href=\"");
    esc(out, base);
    sb_puts(out, PUBLIC_PAGE_PATH);
    service_query(out, service, '?');
    sb_puts(out, "\"/>\n");
    for (const cJSON *p = pubs ? pubs->child : NULL; p; p = p->next) {
        int n = (int)cJSON_GetNumberValue(json_get(p, "number"));
        const char *eff = json_get_str(p, "effective_at"), *pubd = json_get_str(p, "published_at");
        /* A replaced announcement's entry changed when it was replaced: it no
         * longer announces anything (readers see the entry updated). */
        const cJSON *by = publication_replaced_by(pubs, p);
        const cJSON *replaces = json_get(p, "replaces");
        if (by) {
            sb_printf(out, "  <entry>\n    <title>Version %d, replaced by version %d before it took effect</title>\n    <id>", n,
                      (int)cJSON_GetNumberValue(json_get(by, "number")));
        } else {
            sb_printf(out, "  <entry>\n    <title>Version %d, effective ", n);
            esc(out, eff);
            sb_puts(out, "</title>\n    <id>");
        }
        esc(out, base);
        sb_printf(out, PUBLIC_VERSIONS_PATH "/%d", n);
        service_query(out, service, '?');
        sb_puts(out, "</id>\n    <updated>");
        esc(out, by ? json_get_str(by, "published_at") : pubd);
        sb_puts(out, "</updated>\n    <published>");
        esc(out, pubd);
        sb_puts(out, "</published>\n    <link rel=\"alternate\" type=\"application/json\" href=\"");
        esc(out, base);
        sb_printf(out, PUBLIC_VERSIONS_PATH "/%d", n);
        service_query(out, service, '?');
        sb_puts(out, "\"/>\n");
        if (cJSON_IsNumber(replaces)) {
            sb_puts(out, "    <link rel=\"related\" type=\"application/json\" href=\"");
            esc(out, base);
            sb_printf(out, PUBLIC_VERSIONS_PATH "/%d", (int)replaces->valuedouble);
            service_query(out, service, '?');
            sb_puts(out, "\"/>\n");
        }
        sb_puts(out, "    <summary>");
        if (by)
            sb_printf(out, "Replaced by version %d, which was announced before this version took effect; "
                           "this version does not take effect. ",
                      (int)cJSON_GetNumberValue(json_get(by, "number")));
        if (cJSON_IsNumber(replaces))
            sb_printf(out, "Replaces the announcement of version %d, which does not take effect; "
                           "the changes are against the version in effect. ",
                      (int)replaces->valuedouble);
        override_note(p, "en", "", " ", out);
        esc(out, text_of(json_get(p, "summary"), "en"));
        sb_puts(out, " ");
        change_summary(json_get(p, "diff"), "en", out); /* escapes what it writes */
        sb_puts(out, "</summary>\n  </entry>\n");
    }
    sb_puts(out, "</feed>\n");
}

/* A timestamp for people: "11.12.2026, 16:46 UTC" / "11 Dec 2026, 16:46 UTC";
 * the machine-readable form stays in the <time datetime> attribute. */
static void human_time(strbuf *out, const char *iso, const char *lang)
{
    static const char *const MONTHS[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    int y, mo, d, h, mi;
    if (!iso || sscanf(iso, "%4d-%2d-%2dT%2d:%2d", &y, &mo, &d, &h, &mi) != 5 || mo < 1 || mo > 12) {
        esc(out, iso);
        return;
    }
    if (strcmp(lang, "de") == 0) sb_printf(out, "%02d.%02d.%04d, %02d:%02d UTC", d, mo, y, h, mi);
    else sb_printf(out, "%d %s %04d, %02d:%02d UTC", d, MONTHS[mo - 1], y, h, mi);
}

static void sb_clear(strbuf *sb)
{
    sb->len = 0;
    if (sb->data) sb->data[0] = '\0';
}

/* A cell of the list; its column's name goes into data-label, shown before the
 * text where the rows stack (narrow screens). */
static void html_cell(strbuf *out, const char *column, const char *text)
{
    sb_printf(out, "<td data-label=\"%s\">", column);
    esc(out, text ? text : "");
    sb_puts(out, "</td>");
}

static void html_table(const cJSON *items, const char *lang, const char *caption, strbuf *out)
{
    static const char *const COLS_DE[] = {"Unternehmen", "Zweck", "Kategorie", "Datenkategorien",
                                          "Orte der Verarbeitung", "Zertifizierungen"};
    static const char *const COLS_EN[] = {"Company", "Purpose", "Category", "Data categories",
                                          "Processing locations", "Certifications"};
    const char *const *col = strcmp(lang, "de") == 0 ? COLS_DE : COLS_EN;
    sb_puts(out, "<table>\n<caption>");
    esc(out, caption);
    sb_puts(out, "</caption>\n<thead><tr>");
    for (int c = 0; c < 6; c++) sb_printf(out, "<th scope=\"col\">%s</th>", col[c]);
    sb_puts(out, "</tr></thead>\n<tbody>\n");
    strbuf t = {0};
    for (const cJSON *it = items ? items->child : NULL; it; it = it->next) {
        sb_puts(out, "<tr data-id=\"");
        esc(out, json_get_str(it, "id"));
        sb_puts(out, "\"><th scope=\"row\">");
        esc(out, json_get_str(it, "legal_name"));
        const char *hq = json_get_str(it, "hq_country");
        if (hq) {
            sb_puts(out, " <span class=\"muted\">(");
            esc(out, hq);
            sb_puts(out, ")</span>");
        }
        sb_puts(out, "</th>");
        html_cell(out, col[1], text_of(json_get(it, "purpose"), lang));
        const char *cat = json_get_str(it, "category");
        html_cell(out, col[2], cat ? label_of(cat, lang) : "");
        sb_clear(&t);
        join_labels(json_get(it, "data_categories"), lang, ", ", &t);
        html_cell(out, col[3], t.data);
        sb_clear(&t);
        locations_text(json_get(it, "locations"), lang, "; ", &t);
        html_cell(out, col[4], t.data);
        sb_clear(&t);
        certs_text(json_get(it, "certifications"), ", ", &t);
        html_cell(out, col[5], t.data);
        sb_puts(out, "</tr>\n");
    }
    sb_free(&t);
    sb_puts(out, "</tbody>\n</table>\n");
}

/* The page's service selector: a GET form back to the page (no script). */
static void service_selector(const cJSON *services, const cJSON *service, const char *lang, strbuf *out)
{
    if (cJSON_GetArraySize(services) == 0) return;
    bool de = strcmp(lang, "de") == 0;
    sb_printf(out, "<form class=\"services\" method=\"get\" action=\"" PUBLIC_PAGE_PATH "\">\n"
                   "<label for=\"service\">%s</label>\n<select id=\"service\" name=\"service\">\n"
                   "<option value=\"\"%s>%s</option>\n",
              de ? "Dienst" : "Service", service ? "" : " selected", de ? "Alle Dienste" : "All services");
    for (const cJSON *c = services->child; c; c = c->next) {
        const char *id = json_get_str(c, "id");
        sb_puts(out, "<option value=\"");
        esc(out, id);
        sb_puts(out, service && strcmp(json_get_str(service, "id"), id) == 0 ? "\" selected>" : "\">");
        esc(out, service_name(c, lang));
        sb_puts(out, "</option>\n");
    }
    sb_printf(out, "</select>\n<input type=\"hidden\" name=\"lang\" value=\"%s\">\n"
                   "<button type=\"submit\">%s</button>\n</form>\n",
              de ? "de" : "en", de ? "Anzeigen" : "Show");
}

void render_html(const cJSON *current, const cJSON *upcoming, const cJSON *history, const char *lang,
                 const cJSON *services, const cJSON *service, strbuf *out)
{
    bool de = strcmp(lang, "de") == 0;
    const char *other = de ? "en" : "de";
    strbuf q = {0}, qa = {0}, title = {0}; /* "?service=ID", "&amp;service=ID"; the page's title */
    service_query(&q, service, '?');
    service_query(&qa, service, '&');
    sb_puts(&title, de ? "Unterauftragsverarbeiter" : "Subprocessors");
    if (service) {
        sb_puts(&title, de ? " für " : " for ");
        esc(&title, service_name(service, lang));
    }
    const char *Q = q.data ? q.data : "", *QA = qa.data ? qa.data : "";
    sb_printf(out,
              "<!DOCTYPE html>\n<html lang=\"%s\">\n<head>\n<meta charset=\"utf-8\">\n"
              "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>%s</title>\n"
              "<link rel=\"alternate\" type=\"application/atom+xml\" href=\"" PUBLIC_FEED_PATH "%s\">\n"
              "<style>\nbody{font-family:system-ui,sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem;"
              "color:#1a1a1a;background:#fff;line-height:1.5;overflow-wrap:break-word}\n"
              "table{border-collapse:collapse;width:100%%;margin:1rem 0}\ncaption{text-align:left;font-weight:600;"
              "padding:.5rem 0}\nth,td{border:1px solid #767676;padding:.4rem .6rem;text-align:left;"
              "vertical-align:top}\nthead th{background:#e8e8e8}\n.muted{color:#595959}\n"
              "a{color:#0645ad}\nnav a{margin-right:1rem}\n"
              ".services{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center;margin:1rem 0}"
              ".services select{max-width:100%%}\n"
              /* narrow screens: each row a block, each cell after its column's name */
              "@media (max-width:40rem){body{margin:1rem auto}table,tbody,tr,th,td{display:block}"
              "thead{position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%%)}"
              "tr{border:1px solid #767676;margin:0 0 1rem}th,td{border:0}"
              "td::before{content:attr(data-label) \": \";font-weight:600}}\n"
              /* paper: no navigation, the full width, the header row on every page, rows kept whole */
              "@media print{nav,.formats,.services{display:none}body{margin:0;max-width:none;padding:0;font-size:10pt}"
              "a{color:inherit}thead{display:table-header-group}tr,article{break-inside:avoid}"
              "h2,h3{break-after:avoid}}\n</style>\n</head>\n<body>\n",
              lang, title.data, Q);
    sb_printf(out, "<header>\n<nav aria-label=\"%s\"><a href=\"%s%slang=%s\" hreflang=\"%s\" lang=\"%s\">%s</a></nav>\n",
              de ? "Sprache" : "Language", service ? Q : "?", service ? "&amp;" : "", other, other, other,
              de ? "English" : "Deutsch");
    sb_printf(out, "<h1>%s", de ? "Unterauftrags<wbr>verarbeiter" /* a line break for narrow screens */ : "Subprocessors");
    if (service) {
        sb_puts(out, de ? " für " : " for ");
        esc(out, service_name(service, lang));
    }
    sb_puts(out, "</h1>\n");
    if (current) {
        sb_printf(out, "<p>%s <strong>%d</strong>, %s <time datetime=\"", de ? "Version" : "Version",
                  (int)cJSON_GetNumberValue(json_get(current, "number")), de ? "gültig seit" : "in effect since");
        esc(out, json_get_str(current, "effective_at"));
        sb_puts(out, "\">");
        human_time(out, json_get_str(current, "effective_at"), lang);
        sb_puts(out, "</time>.</p>\n");
        override_note(current, lang, "<p class=\"override\">", "</p>\n", out);
    } else {
        sb_printf(out, "<p>%s</p>\n", de ? "Es ist noch keine Version veröffentlicht." : "No version has been published yet.");
    }
    sb_printf(out, "<p class=\"formats\">%s <a href=\"" PUBLIC_LIST_PATH "%s\" type=\"application/json\">JSON</a>, "
                   "<a href=\"" PUBLIC_LIST_PATH "?format=csv&amp;lang=%s%s\" type=\"text/csv\">CSV</a>, "
                   "<a href=\"" PUBLIC_LIST_PATH "?format=xlsx&amp;lang=%s%s\" "
                   "type=\"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet\">XLSX</a>, "
                   "<a href=\"" PUBLIC_FEED_PATH "%s\" type=\"application/atom+xml\">Atom</a>, "
                   "<a href=\"" PUBLIC_ANNEX_PATH "?lang=%s%s\">%s</a></p>\n",
              de ? "Auch als" : "Also as", Q, lang, QA, lang, QA, Q, lang, QA, de ? "Anlage zum AV-Vertrag" : "DPA annex");
    service_selector(services, service, lang, out);
    sb_puts(out, "</header>\n<main>\n");
    sb_printf(out, "<section aria-labelledby=\"current\">\n<h2 id=\"current\">%s</h2>\n",
              de ? "Aktuelle Liste" : "Current list");
    if (current)
        html_table(json_get(current, "items"), lang, de ? "Unterauftragsverarbeiter in Kraft" : "Subprocessors in effect",
                   out);
    sb_puts(out, "</section>\n");
    sb_printf(out, "<section aria-labelledby=\"upcoming\">\n<h2 id=\"upcoming\">%s</h2>\n",
              de ? "Angekündigte Änderungen" : "Announced changes");
    if (cJSON_GetArraySize(upcoming) == 0)
        sb_printf(out, "<p>%s</p>\n", de ? "Derzeit sind keine Änderungen angekündigt." : "No changes are announced.");
    for (const cJSON *u = upcoming ? upcoming->child : NULL; u; u = u->next) {
        sb_printf(out, "<article>\n<h3>%s %d: %s <time datetime=\"", "Version",
                  (int)cJSON_GetNumberValue(json_get(u, "number")), de ? "wirksam ab" : "effective");
        esc(out, json_get_str(u, "effective_at"));
        sb_puts(out, "\">");
        human_time(out, json_get_str(u, "effective_at"), lang);
        sb_puts(out, "</time></h3>\n");
        const cJSON *replaces = json_get(u, "replaces");
        if (cJSON_IsNumber(replaces))
            sb_printf(out,
                      de ? "<p class=\"replaces\">Ersetzt die Ankündigung von Version %d, die nicht wirksam wird; "
                           "die Änderungen gelten gegenüber der Version in Kraft.</p>\n"
                         : "<p class=\"replaces\">Replaces the announcement of version %d, which does not take "
                           "effect; the changes are against the version in effect.</p>\n",
                      (int)replaces->valuedouble);
        override_note(u, lang, "<p class=\"override\">", "</p>\n", out);
        sb_puts(out, "<p>");
        esc(out, text_of(json_get(u, "summary"), lang));
        sb_puts(out, "</p>\n<p>");
        change_summary(json_get(u, "diff"), lang, out);
        sb_puts(out, "</p>\n");
        const char *dl = json_get_str(u, "objection_deadline");
        if (dl) {
            sb_printf(out, "<p>%s <time datetime=\"", de ? "Einspruch möglich bis" : "Objections possible until");
            esc(out, dl);
            sb_puts(out, "\">");
            human_time(out, dl, lang);
            sb_puts(out, "</time>.</p>\n");
        }
        sb_puts(out, "</article>\n");
    }
    sb_puts(out, "</section>\n");
    sb_printf(out, "<section aria-labelledby=\"history\">\n<h2 id=\"history\">%s</h2>\n<ol reversed>\n",
              de ? "Verlauf" : "History");
    for (const cJSON *h = history ? history->child : NULL; h; h = h->next) {
        int n = (int)cJSON_GetNumberValue(json_get(h, "number"));
        const cJSON *by = publication_replaced_by(upcoming, h);
        if (!by) by = publication_replaced_by(history, h);
        sb_printf(out, "<li><a href=\"" PUBLIC_VERSIONS_PATH "/%d%s\">Version %d</a>, ", n, Q, n);
        if (by) /* announced, never in effect */
            sb_printf(out, de ? "angekündigt für " : "announced for ");
        sb_puts(out, "<time datetime=\"");
        esc(out, json_get_str(h, "effective_at"));
        sb_puts(out, "\">");
        human_time(out, json_get_str(h, "effective_at"), lang);
        sb_puts(out, "</time>");
        if (by)
            sb_printf(out, de ? ", ersetzt durch Version %d, nicht wirksam geworden" : ", replaced by version %d, did not take effect",
                      (int)cJSON_GetNumberValue(json_get(by, "number")));
        if (cJSON_IsTrue(json_get(h, "override_notice")))
            sb_puts(out, de ? " (Ankündigungsfrist verkürzt)" : " (notice period shortened)");
        sb_puts(out, ": ");
        esc(out, text_of(json_get(h, "summary"), lang));
        sb_puts(out, "</li>\n");
    }
    sb_puts(out, "</ol>\n</section>\n</main>\n</body>\n</html>\n");
    sb_free(&q);
    sb_free(&qa);
    sb_free(&title);
}

/* Text inside a CSS string in a <style> element: letters, digits, spaces and
 * UTF-8 beyond ASCII as they are, every other byte (quotes, backslash, <, control
 * characters) as a CSS escape, so the text can neither end the string nor the
 * element. */
static void css_string_text(strbuf *out, const char *raw)
{
    strbuf clean = {0};
    if (raw) sb_put_text(&clean, raw, strlen(raw));
    for (const unsigned char *p = (const unsigned char *)(clean.data ? clean.data : ""); *p; p++) {
        if (*p >= 0x80 || *p == ' ' || (*p >= '0' && *p <= '9') || ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z'))
            sb_append(out, (const char *)p, 1);
        else
            sb_printf(out, "\\%x ", *p);
    }
    sb_free(&clean);
}

/* The DPA annex: the list in effect as a document a legal team attaches to its
 * data processing agreement. Printed, every page names the version and the day
 * it took effect (CSS page margin boxes) and counts its pages. */
void render_annex(const cJSON *current, const char *lang, const char *source_url, const cJSON *service, strbuf *out)
{
    bool de = strcmp(lang, "de") == 0;
    strbuf when = {0}, running = {0}, tb = {0};
    sb_puts(&tb, de ? "Anlage zum Auftragsverarbeitungsvertrag: Unterauftragsverarbeiter"
                    : "Annex to the data processing agreement: subprocessors");
    if (service) {
        sb_puts(&tb, de ? " für " : " for ");
        esc(&tb, service_name(service, lang));
    }
    const char *title = tb.data;
    int number = current ? (int)cJSON_GetNumberValue(json_get(current, "number")) : 0;
    if (current) human_time(&when, json_get_str(current, "effective_at"), lang);
    /* the margin boxes' text is a CSS string: only characters that need no escape there */
    sb_printf(&running, de ? "Unterauftragsverarbeiter, Version %d, gültig seit %s" : "Subprocessors, version %d, in effect since %s",
              number, when.data ? when.data : "");
    if (service) { /* the service on every printed page */
        sb_puts(&running, de ? " \\2014  Dienst: " : " \\2014  Service: ");
        css_string_text(&running, service_name(service, lang));
    }
    sb_printf(out,
              "<!DOCTYPE html>\n<html lang=\"%s\">\n<head>\n<meta charset=\"utf-8\">\n<title>%s</title>\n"
              "<style>\n@page{size:A4;margin:22mm 16mm 18mm;"
              "@top-left{content:\"%s\";font:8pt system-ui,sans-serif;color:#444}"
              "@bottom-right{content:\"%s \" counter(page) \" %s \" counter(pages);font:8pt system-ui,sans-serif;color:#444}}\n"
              "body{font-family:system-ui,sans-serif;color:#1a1a1a;background:#fff;line-height:1.4;max-width:72rem;"
              "margin:2rem auto;padding:0 1rem;overflow-wrap:break-word}\n"
              "table{border-collapse:collapse;width:100%%;margin:1rem 0}\ncaption{text-align:left;font-weight:600;"
              "padding:.5rem 0}\nth,td{border:1px solid #767676;padding:.3rem .5rem;text-align:left;vertical-align:top}\n"
              "thead th{background:#e8e8e8}\n.muted{color:#595959}\n"
              "@media print{body{margin:0;max-width:none;padding:0;font-size:9pt}thead{display:table-header-group}"
              "tr{break-inside:avoid}}\n</style>\n</head>\n<body>\n<main>\n<h1>%s</h1>\n",
              lang, title, running.data, de ? "Seite" : "Page", de ? "von" : "of", title);
    if (current) {
        sb_printf(out, "<p>%s <strong>%d</strong>, %s <time datetime=\"", de ? "Version" : "Version", number,
                  de ? "gültig seit" : "in effect since");
        esc(out, json_get_str(current, "effective_at"));
        sb_printf(out, "\">%s</time>.</p>\n", when.data ? when.data : "");
        override_note(current, lang, "<p class=\"override\">", "</p>\n", out);
        html_table(json_get(current, "items"), lang,
                   de ? "Genehmigte Unterauftragsverarbeiter" : "Approved subprocessors", out);
    } else {
        sb_printf(out, "<p>%s</p>\n", de ? "Es ist noch keine Version veröffentlicht." : "No version has been published yet.");
    }
    sb_printf(out, "<p class=\"muted\">%s ", de ? "Die jeweils gültige Fassung und angekündigte Änderungen:"
                                                 : "The version in effect and announced changes:");
    esc(out, source_url);
    sb_puts(out, "</p>\n</main>\n</body>\n</html>\n");
    sb_free(&when);
    sb_free(&running);
    sb_free(&tb);
}
