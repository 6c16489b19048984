/* Stored documents: signed DPAs, TOM documents, TIAs as PDF. Upload, download
 * byte-identical (ETag = sha256), delete unless an agreement, TOM document or TIA
 * still refers to it. Bytes live in chunks (store_put_chunks); the metadata
 * document, written last and with its audit record, makes an upload visible. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "subreg/api.h"
#include "subreg/fields.h"
#include "subreg/json.h"
#include "subreg/log.h"
#include "subreg/resource.h"

#define CHUNK_BYTES (255 * 1024)


static bool valid_filename(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 200 || !utf8_valid(s, n)) return false;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == '/' || *p == '\\' || *p == '"' || *p == 0x7f) return false;
    return true;
}

static void handle_upload(req *r)
{
    if (!req_check_query(r, (const char *const[]){"filename", NULL})) return;
    const char *ct = req_header(r, "Content-Type");
    if (!ct || strncasecmp(ct, "application/pdf", 15) != 0 || (ct[15] && ct[15] != ';' && ct[15] != ' ')) {
        respond_problem(r, 415, "unsupported-media-type", "upload a PDF with Content-Type: application/pdf");
        return;
    }
    if (r->body_len < 5 || memcmp(r->body, "%PDF-", 5) != 0) {
        respond_problem(r, 415, "unsupported-media-type", "the body is not a PDF (it does not start with %PDF-)");
        return;
    }
    const char *filename = req_query(r, "filename");
    if (filename && !valid_filename(filename)) {
        respond_problem(r, 400, "malformed-request", "filename: 1 to 200 characters, no control characters, / \\ or \"");
        return;
    }
    char sha[65];
    sha256_hex(r->body, r->body_len, sha);
    char *id = new_id("doc_");
    store_status st = store_put_chunks(id, (const unsigned char *)r->body, r->body_len, CHUNK_BYTES);
    if (st != ST_OK) {
        store_delete_chunks(id);
        respond_store_error(r, st);
        free(id);
        return;
    }
    cJSON *doc = cJSON_CreateObject();
    if (filename) cJSON_AddStringToObject(doc, "filename", filename);
    cJSON_AddStringToObject(doc, "content_type", "application/pdf");
    cJSON_AddNumberToObject(doc, "size", (double)r->body_len);
    cJSON_AddStringToObject(doc, "sha256", sha);
    cJSON_AddStringToObject(doc, "uploaded_by", r->who.sub);
    st = doc_write(&RES_DOCUMENT, REQ_ORIGIN(r), NULL, id, NULL, doc, NULL);
    if (st != ST_OK) {
        store_delete_chunks(id);
        respond_store_error(r, st);
    } else {
        char loc[128], etag[70];
        snprintf(loc, sizeof loc, "/v1/documents/%s", id);
        snprintf(etag, sizeof etag, "\"%s\"", sha);
        req_add_header(r, "Location", loc);
        req_add_header(r, "ETag", etag);
        respond_json(r, 201, doc);
    }
    cJSON_Delete(doc);
    free(id);
}

static bool send_chunk(const unsigned char *data, size_t len, void *ctx)
{
    return respond_stream_write(ctx, data, len);
}

static cJSON *load_meta(req *r)
{
    cJSON *meta = NULL;
    store_status st = store_get(RES_DOCUMENT.collection, r->param, &meta);
    if (st != ST_OK) {
        respond_store_error(r, st);
        return NULL;
    }
    return meta;
}

static void handle_download(req *r)
{
    if (!req_check_query(r, NULL)) return;
    cJSON *meta = load_meta(r);
    if (!meta) return;
    const char *sha = json_get_str(meta, "sha256");
    const char *filename = json_get_str(meta, "filename");
    size_t size = (size_t)cJSON_GetNumberValue(json_get(meta, "size"));
    char etag[70];
    snprintf(etag, sizeof etag, "\"%s\"", sha ? sha : "");
    req_add_header(r, "ETag", etag);
    req_add_header(r, "Cache-Control", "private, no-cache");
    const char *inm = req_header(r, "If-None-Match");
    if (inm && strstr(inm, etag)) {
        respond_empty(r, 304);
        cJSON_Delete(meta);
        return;
    }
    /* RFC 6266: an ASCII fallback and the UTF-8 name percent-encoded (RFC 8187) */
    if (!filename || !*filename) filename = "document.pdf";
    strbuf disp = {0};
    sb_puts(&disp, "attachment; filename=\"");
    for (const unsigned char *p = (const unsigned char *)filename; *p; p++)
        if ((*p & 0xC0) != 0x80) /* one "_" per non-ASCII character, not per byte */
            sb_append(&disp, *p < 0x20 || *p > 0x7e || *p == '"' || *p == '\\' ? "_" : (const char *)p, 1);
    sb_puts(&disp, "\"; filename*=UTF-8''");
    for (const unsigned char *p = (const unsigned char *)filename; *p; p++) {
        if (isalnum(*p) || strchr("!#$&+-.^_`|~", *p)) sb_append(&disp, (const char *)p, 1);
        else sb_printf(&disp, "%%%02X", *p);
    }
    req_add_header(r, "Content-Disposition", disp.data);
    sb_free(&disp);
    respond_stream_begin(r, 200, "application/pdf", size);
    size_t total = 0;
    store_status st = store_read_chunks(r->param, send_chunk, r, &total);
    if (st != ST_OK || total != size)
        log_msgf(LOG_ERROR, "document %s: sent %zu of %zu bytes (%s)", r->param, total, size, store_status_name(st));
    cJSON_Delete(meta);
}

static void handle_delete_document(req *r)
{
    const char *im = req_header(r, "If-Match");
    if (!im) {
        respond_problem(r, 428, "precondition-required", "this request needs If-Match with the document's ETag");
        return;
    }
    cJSON *meta = load_meta(r);
    if (!meta) return;
    char etag[70];
    snprintf(etag, sizeof etag, "\"%s\"", json_get_str(meta, "sha256"));
    if (!if_match_allows(im, etag)) {
        respond_problem(r, 412, "precondition-failed", "If-Match does not match the document's ETag");
        cJSON_Delete(meta);
        return;
    }
    if (refuse_if_referenced(r, RES_DOCUMENT.collection, r->param)) {
        cJSON_Delete(meta);
        return;
    }
    store_status st = doc_write(&RES_DOCUMENT, REQ_ORIGIN(r), NULL, r->param, meta, NULL, NULL);
    cJSON_Delete(meta);
    if (st != ST_OK) {
        respond_store_error(r, st);
        return;
    }
    /* The metadata is gone, so the bytes are unreachable; a crash here leaves
     * orphan chunks, never a document without bytes. */
    store_delete_chunks(r->param);
    respond_empty(r, 204);
}

int document_routes(route *out, int cap, long max_document_bytes)
{
    const route rs[] = {
        {"POST", "/v1/documents", handle_upload, RES_DOCUMENT.write_role, &RES_DOCUMENT, max_document_bytes},
        {"GET", "/v1/documents/{id}", handle_download, RES_DOCUMENT.read_role, &RES_DOCUMENT, 0},
        {"DELETE", "/v1/documents/{id}", handle_delete_document, RES_DOCUMENT.delete_role, &RES_DOCUMENT, 0},
    };
    return add_routes(out, cap, rs, sizeof rs / sizeof rs[0]);
}
