/* Pagination cursors and ?limit (domain/cursor.c). The first byte picks what
 * the rest is: 0 a cursor token from a client, 1 a last id to encode (bit 0x80:
 * a descending list), 2 a limit.
 *
 * Properties: a token is accepted only when it names a valid id, and is then
 * exactly the token this service issues for that id and direction (no second
 * spelling of a cursor); encode -> decode returns the id and direction, and a
 * string that is not an id never comes back from a cursor; a limit accepted is
 * 1..200 and equals the number given, clamped at 200. */
#include "fuzz.h"
#include "subreg/cursor.h"
#include "subreg/schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    char *s = fuzz_cstr(data + 1, size - 1);
    bool desc_in = data[0] & 0x80;
    switch (data[0] & 3) {
    case 0: {
        bool desc = false;
        char *id = cursor_decode(s, &desc);
        if (id) {
            CHECK(is_id(id), "cursor names \"%s\", not an id", id);
            char *again = cursor_encode(id, desc);
            size_t n = strlen(s);
            while (n && s[n - 1] == '=') n--; /* padding is tolerated, not part of the token */
            CHECK(strlen(again) == n && memcmp(again, s, n) == 0, "a second spelling of cursor %s: %s", again, s);
            free(again);
            free(id);
        }
        break;
    }
    case 1: {
        char *token = cursor_encode(s, desc_in);
        bool desc = !desc_in;
        char *id = cursor_decode(token, &desc);
        if (is_id(s)) {
            CHECK(id && strcmp(id, s) == 0, "id %s did not round-trip (token %s)", s, token);
            CHECK(desc == desc_in, "direction lost");
        } else {
            CHECK(!id, "\"%s\" is not an id but came back from cursor %s", s, token);
        }
        free(id);
        free(token);
        break;
    }
    default: {
        int limit = -1;
        bool ok = parse_limit(s, &limit);
        if (ok) {
            CHECK(limit >= 1 && limit <= 200, "limit %d", limit);
            size_t i = 0;
            while (s[i] == '0') i++;
            bool big = strlen(s + i) > 3 || atoi(s + i) > 200;
            CHECK(big ? limit == 200 : limit == atoi(s + i), "limit %d from \"%s\"", limit, s);
        } else {
            CHECK(limit == 50, "a refused limit left %d", limit);
        }
        break;
    }
    }
    free(s);
    return 0;
}
