/* retries: the delay before each attempt of a webhook delivery from the retry
 * schedule (SUBREG_WEBHOOK_RETRY_SCHEDULE), and a receiver's Retry-After in
 * both of its forms (RFC 9110 10.2.3: delay-seconds or an HTTP-date). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "subreg/webhook.h"

static void test_retry_delay_walks_the_schedule(void **state)
{
    (void)state;
    /* the test suite's schedule: at once, then 1 s three times */
    assert_int_equal(retry_delay("0,1,1,1", 1), 0);
    assert_int_equal(retry_delay("0,1,1,1", 2), 1);
    assert_int_equal(retry_delay("0,1,1,1", 4), 1);
    /* a longer one, each attempt its own delay */
    static const int64_t want[] = {0, 30, 300, 1800, 7200, 43200};
    for (int k = 1; k <= 6; k++) assert_int_equal(retry_delay("0,30,300,1800,7200,43200", k), want[k - 1]);
    assert_int_equal(retry_delay("5", 1), 5);
}

static void test_retry_delay_past_the_end_is_no_attempt(void **state)
{
    (void)state;
    assert_int_equal(retry_delay("0,1,1,1", 5), -1);
    assert_int_equal(retry_delay("0,1,1,1", 100), -1);
    assert_int_equal(retry_delay("5", 2), -1);
    assert_int_equal(retry_delay("", 1), -1);
    /* there is no attempt 0 or before */
    assert_int_equal(retry_delay("0,1,1,1", 0), -1);
    assert_int_equal(retry_delay("0,1,1,1", -1), -1);
}

static void test_retry_delay_stops_at_garbage(void **state)
{
    (void)state;
    assert_int_equal(retry_delay("soon", 1), -1);
    assert_int_equal(retry_delay("5,later,7", 1), 5);
    assert_int_equal(retry_delay("5,later,7", 2), -1);
    assert_int_equal(retry_delay("5,later,7", 3), -1);
}

/* 2026-01-01T00:00:00Z, a Thursday */
#define NOW 1767225600

static void test_retry_after_in_seconds(void **state)
{
    (void)state;
    assert_int_equal(parse_retry_after("3", NOW), 3);
    assert_int_equal(parse_retry_after("0", NOW), 0);
    assert_int_equal(parse_retry_after("86400", NOW), 86400);
    assert_int_equal(parse_retry_after("  120", NOW), 120); /* as a header value may arrive */
    assert_int_equal(parse_retry_after("120\r", NOW), 120);
    assert_int_equal(parse_retry_after("120 ", NOW), 120);
    /* a negative delay is no delay */
    assert_int_equal(parse_retry_after("-5", NOW), 0);
}

static void test_retry_after_as_an_http_date(void **state)
{
    (void)state;
    assert_int_equal(parse_retry_after("Thu, 01 Jan 2026 00:00:10 GMT", NOW), 10);
    assert_int_equal(parse_retry_after("Thu, 01 Jan 2026 01:00:00 GMT", NOW), 3600);
    assert_int_equal(parse_retry_after("Fri, 02 Jan 2026 00:00:00 GMT", NOW), 86400);
    /* now, or already past: no wait */
    assert_int_equal(parse_retry_after("Thu, 01 Jan 2026 00:00:00 GMT", NOW), 0);
    assert_int_equal(parse_retry_after("Wed, 31 Dec 2025 23:59:00 GMT", NOW), 0);
    /* the same date seen later asks for less */
    assert_int_equal(parse_retry_after("Thu, 01 Jan 2026 00:00:10 GMT", NOW + 4), 6);
}

static void test_retry_after_garbage(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "soon",
        "3s",
        "1.5",
        "Thu, 01 Jan 2026",           /* no time */
        "2026-01-01T00:00:10Z",        /* RFC 3339 is not an HTTP-date */
        "Thu, 01 Foo 2026 00:00:10 GMT",
        "Thu, 32 Jan 2026 00:00:10 GMT",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (parse_retry_after(bad[i], NOW) != -1) fail_msg("\"%s\" read as %lld", bad[i], (long long)parse_retry_after(bad[i], NOW));
    assert_int_equal(parse_retry_after(NULL, NOW), -1);
}

/* Jitter spreads the schedule ±10 %, but a wait the receiver asked for
 * (Retry-After) is only ever lengthened, by at most 10 %. */
static void test_jitter_never_shortens_retry_after(void **state)
{
    (void)state;
    for (uint32_t rnd = 0; rnd < 2001; rnd += 50) {
        int64_t plain = retry_wait_ms(60, -1, rnd);
        assert_true(plain >= 54000 && plain <= 66000);
        int64_t asked = retry_wait_ms(60, 120, rnd); /* the receiver asks for more than the schedule */
        assert_true(asked >= 120000 && asked <= 132000);
        int64_t near = retry_wait_ms(60, 59, rnd); /* jitter could have gone below 59 s */
        assert_true(near >= 59000 && near <= 66000);
        assert_int_equal(retry_wait_ms(-1, 30, rnd), -1); /* no attempt left: Retry-After adds none */
    }
    assert_int_equal(retry_wait_ms(60, -1, 0), 54000);
    assert_int_equal(retry_wait_ms(60, 120, 0), 120000);
    assert_int_equal(retry_wait_ms(60, 120, 2000), 132000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry_delay_walks_the_schedule),
        cmocka_unit_test(test_retry_delay_past_the_end_is_no_attempt),
        cmocka_unit_test(test_retry_delay_stops_at_garbage),
        cmocka_unit_test(test_retry_after_in_seconds),
        cmocka_unit_test(test_retry_after_as_an_http_date),
        cmocka_unit_test(test_retry_after_garbage),
        cmocka_unit_test(test_jitter_never_shortens_retry_after),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
