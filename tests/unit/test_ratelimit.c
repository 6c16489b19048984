/* ratelimit: the public paths' token buckets. Two addresses that hash to one
 * set never reset each other's bucket, and a set full of buckets in use refuses
 * a newcomer rather than hand it a fresh burst (issue 16). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../service/http/http_internal.h"

/* n addresses of 10.x.y.z sharing one set; out holds n strings of 16 bytes */
static void same_set(char out[][16], int n)
{
    char first[16] = "";
    int found = 0;
    for (int i = 0; found < n && i < 1 << 24; i++) {
        char ip[16];
        snprintf(ip, sizeof ip, "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        if (!found) snprintf(first, sizeof first, "%s", ip);
        if (rate_set_of(ip) == rate_set_of(first)) snprintf(out[found++], 16, "%s", ip);
    }
    assert_int_equal(found, n);
}

static int setup(void **state)
{
    (void)state;
    static netpolicy none;
    http_cfg.public_rate_per_min = 60; /* a burst of 10 */
    rate_limit_init(&none);
    return 0;
}

static void test_colliding_addresses_keep_their_own_buckets(void **state)
{
    (void)state;
    char ip[2][16];
    same_set(ip, 2);
    int allowed[2] = {0, 0}, retry = 0;
    for (int i = 0; i < 60; i++) allowed[i % 2] += rate_allow(ip[i % 2], &retry);
    assert_in_range(allowed[0], 10, 11);
    assert_in_range(allowed[1], 10, 11);
}

static void test_a_full_set_refuses_newcomers(void **state)
{
    (void)state;
    char ip[9][16];
    same_set(ip, 9);
    int retry = 0;
    for (int i = 0; i < 8; i++) assert_true(rate_allow(ip[i], &retry)); /* 8 buckets in use */
    retry = 0;
    assert_false(rate_allow(ip[8], &retry));
    assert_in_range(retry, 1, 2);
    for (int i = 0; i < 8; i++) assert_true(rate_allow(ip[i], &retry)); /* theirs are intact */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_colliding_addresses_keep_their_own_buckets, setup),
        cmocka_unit_test_setup(test_a_full_set_refuses_newcomers, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
