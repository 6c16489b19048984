/* util: dates, timestamps, identifiers, base64url, UTF-8. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "subreg/csv.h"
#include "subreg/util.h"

static void test_dates(void **state)
{
    (void)state;
    assert_true(is_valid_date("2024-02-29"));
    assert_false(is_valid_date("2023-02-29"));
    assert_false(is_valid_date("2026-02-30"));
    assert_false(is_valid_date("2026-13-01"));
    assert_false(is_valid_date("2026-1-01"));
    assert_false(is_valid_date("2026-01-01x"));
    assert_true(is_valid_date("2000-02-29"));
    assert_false(is_valid_date("1900-02-29"));
    assert_int_equal(date_to_days("1970-01-01"), 0);
    assert_int_equal(date_to_days("2022-12-28") - date_to_days("2022-12-27"), 1);
}

static void test_rfc3339(void **state)
{
    (void)state;
    int64_t ms;
    assert_true(parse_rfc3339("2026-11-27T14:00:00Z", &ms));
    char out[32];
    format_rfc3339(ms, out);
    assert_string_equal(out, "2026-11-27T14:00:00Z");
    assert_true(parse_rfc3339("2026-11-27T15:00:00+01:00", &ms));
    format_rfc3339(ms, out);
    assert_string_equal(out, "2026-11-27T14:00:00Z");
    assert_true(parse_rfc3339("2026-11-27T14:00:00.250Z", &ms));
    assert_int_equal(ms % 1000, 250);
    assert_false(parse_rfc3339("2026-11-27 14:00:00Z", &ms));
    assert_false(parse_rfc3339("2026-11-27T14:00:00", &ms));
    assert_false(parse_rfc3339("2026-11-27T24:00:00Z", &ms));
    assert_false(parse_rfc3339("2026-11-27T14:00:00Zjunk", &ms));
    /* second 60 only as a leap second: 23:59:60 in UTC, also written with an offset */
    assert_true(parse_rfc3339("2016-12-31T23:59:60Z", &ms));
    assert_true(parse_rfc3339("2017-01-01T00:59:60+01:00", &ms));
    assert_true(parse_rfc3339("2016-12-31T18:59:60-05:00", &ms));
    assert_false(parse_rfc3339("2026-11-27T14:00:60Z", &ms));
    assert_false(parse_rfc3339("2016-12-31T23:59:60+01:00", &ms));
}

static void test_ids_are_ordered_and_unique(void **state)
{
    (void)state;
    char *prev = new_id("sp_");
    assert_int_equal(strlen(prev), 29);
    for (int i = 0; i < 50; i++) {
        char *id = new_id("sp_");
        assert_string_not_equal(id, prev);
        /* Same millisecond: the random part decides, so only check time order on
         * the 10 time characters. */
        assert_true(strncmp(id, prev, 13) >= 0);
        free(prev);
        prev = id;
    }
    free(prev);
}

static void test_b64url(void **state)
{
    (void)state;
    const char *cases[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *want[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        char *e = b64url_encode(cases[i], strlen(cases[i]));
        assert_string_equal(e, want[i]);
        unsigned char *d;
        size_t n;
        assert_true(b64url_decode(e, strlen(e), &d, &n));
        assert_int_equal(n, strlen(cases[i]));
        assert_memory_equal(d, cases[i], n);
        free(d);
        free(e);
    }
    unsigned char *d;
    size_t n;
    assert_false(b64url_decode("Zm9v+", 5, &d, &n));
    assert_false(b64url_decode("Z", 1, &d, &n));
    assert_false(b64url_decode("Zh", 2, &d, &n)); /* non-canonical trailing bits */
}

static void test_utf8(void **state)
{
    (void)state;
    assert_true(utf8_valid("Grüße", strlen("Grüße")));
    assert_true(utf8_valid("\xf0\x9f\x98\x80", 4));
    assert_false(utf8_valid("\xc3", 1));
    assert_false(utf8_valid("\xc0\xaf", 2));         /* overlong '/' */
    assert_false(utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
    assert_false(utf8_valid("\xf4\x90\x80\x80", 4)); /* above U+10FFFF */
    assert_false(utf8_valid("\xff", 1));
}

/* What XML 1.0 allows (issue 16): text_valid refuses, sb_put_text replaces by U+FFFD. */
static void test_xml_text(void **state)
{
    (void)state;
    assert_true(text_valid("Grüße\t\r\n\xef\xbf\xbd\xf0\x9f\x98\x80", strlen("Grüße\t\r\n\xef\xbf\xbd\xf0\x9f\x98\x80")));
    static const char *const bad[] = {"\x01", "\x0b", "\x1f", "\xef\xbf\xbe" /* U+FFFE */, "\xef\xbf\xbf" /* U+FFFF */,
                                      "\xed\xa0\x80" /* lone surrogate */, "\xff", "\xc3", NULL};
    for (const char *const *b = bad; *b; b++) {
        assert_false(text_valid(*b, strlen(*b)));
        strbuf sb = {0};
        sb_puts(&sb, "a");
        sb_put_text(&sb, *b, strlen(*b));
        sb_put_text(&sb, "z", 1);
        assert_true(text_valid(sb.data, sb.len));
        assert_non_null(strstr(sb.data, "\xef\xbf\xbd"));
        assert_int_equal(sb.data[0], 'a');
        assert_int_equal(sb.data[sb.len - 1], 'z');
        sb_free(&sb);
    }
    strbuf sb = {0};
    sb_put_text(&sb, "x\x01y\xef\xbf\xbez\xff", 8);
    assert_string_equal(sb.data, "x\xef\xbf\xbdy\xef\xbf\xbdz\xef\xbf\xbd");
    sb_free(&sb);
}

static void test_sha256(void **state)
{
    (void)state;
    char hex[65];
    sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

/* The floor of a time is no greater than any id made at that time or later, and
 * greater than every id made a millisecond or more before it. */
static void test_id_floor(void **state)
{
    (void)state;
    int64_t t = now_ms();
    char before[40], at[40], later[40];
    new_id_floor("au_", t - 1, before, sizeof before);
    new_id_floor("au_", t, at, sizeof at);
    char *id = new_id("au_");
    new_id_floor("au_", now_ms() + 1, later, sizeof later);
    assert_int_equal(strlen(at), 13);
    assert_true(strcmp(before, at) < 0);
    assert_true(strcmp(at, id) <= 0);
    assert_true(strcmp(id, later) < 0);
    free(id);
    char zero[40], max[40];
    new_id_floor("au_", -5, zero, sizeof zero);
    assert_string_equal(zero, "au_0000000000");
    new_id_floor("au_", 0xFFFFFFFFFFFFll, max, sizeof max);
    assert_string_equal(max, "au_7ZZZZZZZZZ");
}

/* CSV: records as "line|cell|cell…" joined by "\n". */
static bool collect(const csv_record *rec, int line, void *ctx)
{
    strbuf *out = ctx;
    sb_printf(out, "%d", line);
    for (int i = 0; i < rec->n; i++) sb_printf(out, "|%s", rec->cells[i]);
    sb_puts(out, "\n");
    return true;
}

static void check_csv(const char *in, char delim, const char *want)
{
    strbuf out = {0};
    char err[128] = "";
    assert_true(csv_parse(in, strlen(in), delim, collect, &out, err, sizeof err));
    assert_string_equal(out.data ? out.data : "", want);
    sb_free(&out);
}

static void test_csv(void **state)
{
    (void)state;
    /* BOM, CRLF, quoted separators, quotes and line breaks; the record's row */
    check_csv("\xEF\xBB\xBF" "a;b\r\n\"x;y\";\"say \"\"hi\"\"\"\r\n\"two\nlines\";z\r\n", ';',
              "1|a|b\n2|x;y|say \"hi\"\n3|two\nlines|z\n");
    check_csv("a,b\n\n1,\n", ',', "1|a|b\n3|1|\n"); /* blank line skipped, empty last cell kept */
    check_csv("a,b", ',', "1|a|b\n");                  /* no final line break */
    check_csv("\"a\nb\",c\nd,e\n", ',', "1|a\nb|c\n2|d|e\n"); /* a line break in quotes is no row */
    check_csv("\"\",x\n", ',', "1||x\n");             /* an empty quoted field */
    assert_int_equal(csv_guess_delimiter("Firma;Sitzland;\"a,b,c\"\n1,2,3,4", 40), ';');
    assert_int_equal(csv_guess_delimiter("\xEF\xBB\xBF" "legal_name,hq_country\n", 27), ',');
    strbuf out = {0};
    char err[128] = "";
    assert_false(csv_parse("a,\"open\nstill open", 19, ',', collect, &out, err, sizeof err));
    assert_non_null(strstr(err, "row 1"));
    sb_free(&out);
    strbuf wide = {0};
    for (int i = 0; i < CSV_MAX_CELLS + 1; i++) sb_puts(&wide, i ? ",x" : "x");
    assert_false(csv_parse(wide.data, wide.len, ',', collect, &out, err, sizeof err));
    assert_non_null(strstr(err, "more than 256 cells"));
    sb_free(&wide);
    for (int i = 0; i < CSV_MAX_CELLS; i++) sb_puts(&wide, ",");  /* 257 empty cells, no final line break */
    assert_false(csv_parse(wide.data, wide.len, ',', collect, &out, err, sizeof err));
    wide.len = CSV_MAX_CELLS - 1;                                  /* 256 cells: read */
    assert_true(csv_parse(wide.data, wide.len, ',', collect, &out, err, sizeof err));
    sb_free(&wide);
    sb_free(&out);
}

/* The legal team's day: its date and its first instant in the zone set. */
static void test_local_zone(void **state)
{
    (void)state;
    char err[300], d[16];
    assert_false(local_zone_set("Mars/Olympus_Mons", err, sizeof err));
    assert_non_null(strstr(err, "not a time zone"));
    assert_false(local_zone_set("../../etc/passwd", err, sizeof err));
    assert_false(local_zone_set("", err, sizeof err));
    assert_true(local_zone_set("Europe/Berlin", err, sizeof err));
    assert_string_equal(local_zone(), "Europe/Berlin");
    int64_t t;
    assert_true(parse_rfc3339("2025-02-28T23:30:00Z", &t));
    format_local_date(t, d);
    assert_string_equal(d, "2025-03-01"); /* 00:30 in Berlin */
    assert_true(parse_rfc3339("2025-02-28T22:59:59Z", &t));
    format_local_date(t, d);
    assert_string_equal(d, "2025-02-28");
    assert_true(parse_rfc3339("2025-03-01T00:00:00+01:00", &t));
    assert_int_equal(local_day_start_ms("2025-03-01"), t);
    assert_true(parse_rfc3339("2025-07-01T00:00:00+02:00", &t)); /* summer time */
    assert_int_equal(local_day_start_ms("2025-07-01"), t);
    assert_true(local_zone_set("UTC", err, sizeof err));
    assert_true(parse_rfc3339("2025-03-01T00:00:00Z", &t));
    assert_int_equal(local_day_start_ms("2025-03-01"), t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dates),   cmocka_unit_test(test_rfc3339), cmocka_unit_test(test_ids_are_ordered_and_unique),
        cmocka_unit_test(test_b64url),  cmocka_unit_test(test_utf8),    cmocka_unit_test(test_sha256),
        cmocka_unit_test(test_xml_text), cmocka_unit_test(test_id_floor), cmocka_unit_test(test_csv),
        cmocka_unit_test(test_local_zone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
