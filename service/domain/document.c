/* The stored document (a PDF: signed DPA, TOM document, TIA) as a resource: its
 * metadata. Upload, download and delete are api/documents.c; the bytes live in
 * chunks (store.h). */
#include "subreg/collections.h"
#include "subreg/fields.h"
#include "subreg/resource.h"

static const field DOCUMENT_FIELDS[] = {
    SERVER_FIELDS,
    {.name = "filename", .type = FT_STRING, .min = 1, .max = 200},
    {.name = "content_type", .type = FT_STRING, .min = 1, .max = 100},
    {.name = "size", .type = FT_INT, .min = 0, .max = 2147483647},
    {.name = "sha256", .type = FT_STRING, .min = 64, .max = 64},
    {.name = "uploaded_by", .type = FT_STRING, .min = 1, .max = 255},
    {0},
};

static const field F_SHA = {.type = FT_STRING, .min = 64, .max = 64};
static const filter_def DOCUMENT_FILTERS[] = {{"sha256", "sha256", &F_SHA, NULL}, {0}};

const resource RES_DOCUMENT = {
    .type = "document",
    .collection = COLL_DOCUMENTS,
    .path = "/v1/documents",
    .item_path = "/v1/documents/{id}",
    .id_prefix = "doc_",
    .fields = DOCUMENT_FIELDS,
    .filters = DOCUMENT_FILTERS,
    .routes = R_LIST, /* the rest is below */
    .read_role = ROLE_READER,
    .write_role = ROLE_EDITOR,
    .delete_role = ROLE_ADMIN,
    .events = EVENTS_CHANGES,
};
