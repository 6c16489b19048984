/* cursor: opaque tokens and ?limit parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "subreg/cursor.h"
#include "subreg/util.h"

static void test_round_trip(void **state)
{
    (void)state;
    for (int d = 0; d < 2; d++) {
        char *tok = cursor_encode("sp_01M8ERRB9VGMJYXAW2P0M2PQ1B", d);
        assert_null(strchr(tok, '='));
        bool desc = !d;
        char *id = cursor_decode(tok, &desc);
        assert_string_equal(id, "sp_01M8ERRB9VGMJYXAW2P0M2PQ1B");
        assert_int_equal(desc, d); /* the direction travels with the cursor */
        free(id);
        free(tok);
    }
}

static void test_refuses_foreign_tokens(void **state)
{
    (void)state;
    bool d;
    assert_null(cursor_decode("", &d));
    assert_null(cursor_decode("not base64!", &d));
    char *plain = b64url_encode("sp_123", 6); /* no version prefix */
    assert_null(cursor_decode(plain, &d));
    free(plain);
    char *inj = b64url_encode("c1:{\"$gt\":\"\"}", 13); /* prefix, but not an id */
    assert_null(cursor_decode(inj, &d));
    free(inj);
    char *empty = b64url_encode("c1:", 3);
    assert_null(cursor_decode(empty, &d));
    free(empty);
}

static void test_limit(void **state)
{
    (void)state;
    int l;
    assert_true(parse_limit(NULL, &l));
    assert_int_equal(l, 50);
    assert_true(parse_limit("1", &l));
    assert_int_equal(l, 1);
    assert_true(parse_limit("200", &l));
    assert_int_equal(l, 200);
    assert_true(parse_limit("201", &l));
    assert_int_equal(l, 200);
    assert_true(parse_limit("999999", &l));
    assert_int_equal(l, 200);
    assert_false(parse_limit("0", &l));
    assert_false(parse_limit("-1", &l));
    assert_false(parse_limit("abc", &l));
    assert_false(parse_limit("", &l));
    assert_false(parse_limit("10x", &l));
    /* api.md: "larger is clamped" — however many digits */
    assert_true(parse_limit("99999999999999999999999999", &l));
    assert_int_equal(l, 200);
    assert_true(parse_limit("0000000000000000000000007", &l));
    assert_int_equal(l, 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_refuses_foreign_tokens),
        cmocka_unit_test(test_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
