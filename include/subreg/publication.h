/* publication: the public subprocessor list as pure functions — which fields of a
 * subprocessor the public may see, the diff between two published versions, and
 * the rendered forms (JSON, CSV, Atom, HTML). No I/O: api/publications.c feeds them. */
#ifndef SUBREG_PUBLICATION_H
#define SUBREG_PUBLICATION_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <time.h>

#include "subreg/util.h"

/* The public list's paths, relative to the service's base URL (the routes, the
 * links in JSON, Atom and HTML, and the webhook payloads all use these). */
#define PUBLIC_LIST_PATH "/public/v1/subprocessors"
#define PUBLIC_CSV_PATH PUBLIC_LIST_PATH "?format=csv"
#define PUBLIC_FEED_PATH PUBLIC_LIST_PATH "/feed.atom"
#define PUBLIC_VERSIONS_PATH PUBLIC_LIST_PATH "/versions"
#define PUBLIC_PAGE_PATH "/subprocessors"
#define PUBLIC_ANNEX_PATH "/subprocessors/annex"
#define XLSX_MEDIA_TYPE "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

/* The public view of one subprocessor, or NULL when it is not listed (status
 * retired, or public.listed false). Only the members RES_SUBPROCESSOR declares
 * public (public_fields) and a few derived ones: never contacts, notes,
 * identifiers, review dates or contract terms. */
cJSON *public_view(const cJSON *subprocessor);

/* Public views of every listed subprocessor, sorted by legal name then id. */
cJSON *public_items(const cJSON *subprocessors);

/* {"added": [view...], "removed": [view...], "changed": [{"id", "legal_name",
 *  "fields": [{"field", "before", "after"}]}]} between two item arrays (before may
 * be NULL: everything is added). */
cJSON *publication_diff(const cJSON *before, const cJSON *after);

/* Services (what the processor sells; a publication's "services" catalogue).
 * An item serves a service when its "services" member lists it, or when it has
 * none (versions published before services existed). */
bool item_serves(const cJSON *item, const char *service);

/* A publication's catalogue of the stored services: the active ones as {id,
 * name, description, public, sort}, by sort (absent: last) then id. */
cJSON *service_catalogue(const cJSON *services);

/* Gives every item its explicit "services": the ids of the catalogue's services
 * (active ones, in the catalogue's order) its subprocessor serves (the
 * subprocessor's "services", absent: all). No catalogue: items unchanged. */
void assign_services(cJSON *items, const cJSON *subprocessors, const cJSON *services);

/* The diff of a service's view between two versions' items (before NULL:
 * everything added; service NULL: the whole list) — never which services a
 * subprocessor serves: a move into a service is an addition to its view only. */
cJSON *service_diff(const cJSON *before, const cJSON *after, const char *service);

/* {service id: diff} for every service of the catalogue: what was added to,
 * removed from or changed in that service's view between the two versions'
 * items (before NULL: everything added). */
cJSON *service_changes(const cJSON *before, const cJSON *after, const cJSON *services);

/* The customers a version concerns (Art. 28(2)): the ids of the active ones
 * whose view changes — a customer with "services" sees those services' views
 * (changes: service_changes), one without (or none of whose services is in
 * changes: fail closed) sees the whole list (whole: service_diff with service
 * NULL). t: whether any of them sees an addition or
 * change (notice is owed), who (owed, for the caller to free), the longest
 * notice period among those, and the longest objection period among all. */
typedef struct {
    bool any, needs_notice;
    int notice_days, objection_days;
    cJSON *owed;
} notice_terms;
cJSON *affected_customers(const cJSON *customers, const cJSON *whole, const cJSON *changes, notice_terms *t);

/* A publication's members that grow with the registry (its frozen items and
 * each service's changes): read only by the public snapshot, left out of the
 * audit trail and of every other read (store_list_all_omit). */
#define PUBLICATION_FROZEN "items,service_changes"

/* A version published while an earlier one was still announced replaces that
 * announcement ("replaces": its number): the replaced version never takes
 * effect. The publication in pubs that replaced p, or NULL. */
const cJSON *publication_replaced_by(const cJSON *pubs, const cJSON *p);

/* The version in effect at now (epoch ms): the highest number whose effective_at
 * has come, replaced announcements left out (NULL: none yet). */
const cJSON *publication_in_effect(const cJSON *pubs, int64_t now);
bool diff_is_empty(const cJSON *diff);

/* ---- services (issue 12) ----------------------------------------------------
 * A publication's items may carry "services" (the ids of the services the
 * subprocessor serves; none: every service), the publication a "services"
 * catalogue [{id, name, description?, public, sort?}] and "service_changes"
 * {id: diff}. The public forms show only public services. */

/* The public services of pubs' catalogues (a service in several: the newest
 * publication's entry), ordered by (sort, id): a new array of
 * {id, name, description?}. */
cJSON *public_services(const cJSON *pubs);

/* Drops the items' "services" members (in place, items a JSON array of
 * items): no public form names which services a subprocessor serves (the
 * whole list stays as it was for its readers; a service's list is the answer). */
void strip_services(cJSON *items);

/* The public changes of pub (a new diff): service NULL, its "diff"; otherwise
 * service's diff: service_changes[service], or for a version without it the
 * stored diff filtered to the items serving the service. Neither lists the
 * "services" member of an item or a "services" field change. */
cJSON *public_changes(const cJSON *pub, const char *service);

/* What the public renderers read of pub for one service (service NULL: the
 * whole list): an object sharing pub's members (references, no copies) but for
 * "items" (those serving the service) and "diff" (public_changes). Delete it
 * before pub. */
cJSON *publication_view(const cJSON *pub, const char *service);

/* Localised strings: {"de","en"} objects become plain strings in lang. Returns a
 * copy. lang NULL keeps both. */
cJSON *localize(const cJSON *v, const char *lang);

/* The code ("hosting") of a code or of its German or English label ("Hosting",
 * "Datensicherung"), case-insensitively; NULL if none (imports read labels). */
const char *label_key(const char *text);

/* RFC 4180 CSV of items (header + one row per item, CRLF, UTF-8), in lang. */
void render_csv(const cJSON *items, const char *lang, strbuf *out);
/* One worksheet of text cells as an XLSX workbook appended to out (the header
 * row bold and frozen; cell(ctx, row, col, text) appends the text of a cell,
 * rows counted from 0 below the header); dated created: the same cells and
 * date give the same bytes. false if it could not be written. */
typedef void (*xlsx_cell_fn)(void *ctx, int row, int col, strbuf *text);
bool xlsx_sheet(const char *sheet, const char *const *header, int ncols, int nrows, xlsx_cell_fn cell, void *ctx,
                time_t created, strbuf *out);

/* The same rows as an XLSX workbook (libxlsxwriter) appended to out, dated
 * created (the same list and date give the same bytes); false if it could not
 * be written (no memory file, no scratch directory). */
bool render_xlsx(const cJSON *items, const char *lang, time_t created, strbuf *out);

/* Publications passed to the renderers are the stored documents: "number" is
 * the version of the list, "version" the document's own revision. */

/* Atom feed of publications (newest first): one entry per version. base is the
 * absolute URL prefix of the service ("https://example.com"). */
/* service (an entry of public_services, or NULL) is the one service the feed,
 * page or annex is about: its name in the title, "?service=ID" on every link. */
void render_atom(const cJSON *publications, const char *base, const char *updated, const cJSON *service, strbuf *out);

/* The human page: list in effect, upcoming changes, history. lang "de" or "en". */
/* services: public_services (the page's selector; none: no selector). */
void render_html(const cJSON *current, const cJSON *upcoming, const cJSON *history, const char *lang,
                 const cJSON *services, const cJSON *service, strbuf *out);

/* The DPA annex (PUBLIC_ANNEX_PATH): the list in effect as a print-ready page,
 * each printed page headed with the version and its effective date; source_url
 * is where the current list is (the public page's absolute URL). */
void render_annex(const cJSON *current, const char *lang, const char *source_url, const cJSON *service, strbuf *out);

/* An objection's services (its descriptor's io_check, api/publications.c): each
 * one the customer buys and the publication changes; answers 422 otherwise.
 * Checked when they are set or changed (a later change of what the customer
 * buys never keeps an objection from being resolved). */
struct req;
bool objection_check_services(struct req *r, const cJSON *before, const cJSON *objection);

/* A publication was written (its descriptor's after_write): bumps the
 * "publications" stamp and wakes the scheduler (api/scheduler.c). */
void publications_changed(void);

#endif
