/* The strict JSON parser (util/json.c) and the JSON <-> BSON mapping.
 *
 * Properties: a refusal names its reason; what is accepted is valid UTF-8 without
 * NUL; its serialisation is accepted again and serialises to the same text
 * (parse -> serialise -> parse is stable) and to the same tree; an object that
 * json_to_bson takes comes back from BSON as the same tree, and the stored
 * document's straight-to-text path (bson_write_api_json, list pages) says what
 * the tree path (bson_to_api_json) says. */
#include <math.h>

#include "fuzz.h"
#include "subreg/json.h"
#include "subreg/util.h"

static bool all_finite(const cJSON *v)
{
    if (cJSON_IsNumber(v)) return isfinite(v->valuedouble);
    for (const cJSON *c = v->child; c; c = c->next)
        if (!all_finite(c)) return false;
    return true;
}

static void check_bson(const cJSON *v)
{
    bson_t b = BSON_INITIALIZER;
    if (!json_to_bson(v, &b)) {
        /* only keys MongoDB would misread are refused */
        bson_destroy(&b);
        return;
    }
    cJSON *back = bson_to_json(&b);
    CHECK(cJSON_Compare(v, back, true), "JSON -> BSON -> JSON changed the document");
    cJSON_Delete(back);

    if (!json_get(v, "id") || !json_get(v, "_id")) {
        /* the API's view: "_id" shown as "id", other top-level '_' members dropped */
        cJSON *tree = bson_to_api_json(&b);
        for (cJSON *c = tree->child, *next; c; c = next) {
            next = c->next;
            if (c->string[0] == '_') cJSON_Delete(cJSON_DetachItemViaPointer(tree, c));
        }
        strbuf text = {0};
        bson_write_api_json(&b, &text);
        char err[200] = "";
        cJSON *parsed = json_parse_strict(text.data, text.len, err, sizeof err);
        CHECK(parsed, "bson_write_api_json wrote JSON the strict parser refuses (%s): %s", err, text.data);
        CHECK(cJSON_Compare(parsed, tree, true), "list text and tree differ:\n  text %s", text.data);
        cJSON_Delete(parsed);
        cJSON_Delete(tree);
        sb_free(&text);
    }
    bson_destroy(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256] = "";
    cJSON *v = json_parse_strict((const char *)data, size, err, sizeof err);
    if (!v) {
        CHECK(err[0] != '\0', "refused without a reason");
        return 0;
    }
    CHECK(utf8_valid((const char *)data, size), "accepted invalid UTF-8");
    CHECK(!memchr(data, '\0', size), "accepted a NUL byte");

    char *text = json_dump(v);
    cJSON *again = json_parse_strict(text, strlen(text), err, sizeof err);
    CHECK(again, "its own serialisation is refused (%s): %s", err, text);
    char *text2 = json_dump(again);
    CHECK(strcmp(text, text2) == 0, "serialisation not stable:\n  %s\n  %s", text, text2);
    bool finite = all_finite(v);
    if (finite) CHECK(cJSON_Compare(v, again, true), "parse -> serialise -> parse changed the tree: %s", text);
    if (finite && cJSON_IsObject(v)) check_bson(v);

    free(text);
    free(text2);
    cJSON_Delete(again);
    cJSON_Delete(v);
    return 0;
}
