/* netpolicy: which addresses a webhook delivery may connect to (by default
 * public unicast only, with the reason of a refusal), the allow-list that opens
 * ranges (SUBREG_WEBHOOK_ALLOW_NETS) and its parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <sys/un.h>

#include "subreg/webhook.h"

/* The policy's answer for a textual IPv4 or IPv6 address (NULL: allowed). */
static const char *refuse(const netpolicy *p, const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1) v4->sin_family = AF_INET;
    else if (inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1) v6->sin6_family = AF_INET6;
    else fail_msg("not an address: %s", ip);
    return netpolicy_refuse(p, (const struct sockaddr *)&ss);
}

static void expect_refused(const netpolicy *p, const char *ip, const char *why)
{
    const char *got = refuse(p, ip);
    if (!got) fail_msg("%s is allowed, expected refused as %s", ip, why);
    if (strcmp(got, why) != 0) fail_msg("%s refused as \"%s\", expected \"%s\"", ip, got, why);
}

static void expect_allowed(const netpolicy *p, const char *ip)
{
    const char *got = refuse(p, ip);
    if (got) fail_msg("%s refused as %s, expected allowed", ip, got);
}

static netpolicy parsed(const char *cidrs)
{
    netpolicy p;
    char err[160] = "";
    if (!netpolicy_parse(&p, cidrs, err, sizeof err)) fail_msg("\"%s\" refused: %s", cidrs, err);
    return p;
}

static void test_public_addresses_are_allowed(void **state)
{
    (void)state;
    netpolicy none = parsed(NULL);
    expect_allowed(&none, "93.184.215.14");
    expect_allowed(&none, "8.8.8.8");
    expect_allowed(&none, "1.1.1.1");
    expect_allowed(&none, "2606:4700:4700::1111");
    expect_allowed(&none, "2a01:4f8::1");
}

static void test_ipv4_classes_are_refused(void **state)
{
    (void)state;
    netpolicy none = parsed("");
    expect_refused(&none, "127.0.0.1", "loopback");
    expect_refused(&none, "127.255.255.254", "loopback");
    expect_refused(&none, "10.0.0.1", "private");
    expect_refused(&none, "10.255.255.254", "private");
    expect_refused(&none, "172.16.0.1", "private");
    expect_refused(&none, "172.31.255.254", "private");
    expect_refused(&none, "192.168.1.1", "private");
    expect_refused(&none, "100.64.0.1", "shared (CGNAT)");
    expect_refused(&none, "100.127.255.254", "shared (CGNAT)");
    expect_refused(&none, "169.254.169.254", "link-local (metadata)"); /* the cloud metadata service */
    expect_refused(&none, "169.254.0.1", "link-local (metadata)");
    expect_refused(&none, "0.0.0.0", "unspecified");
    expect_refused(&none, "224.0.0.1", "multicast");
    expect_refused(&none, "239.255.255.250", "multicast");
    expect_refused(&none, "240.0.0.1", "reserved");
    expect_refused(&none, "255.255.255.255", "reserved");
    expect_refused(&none, "192.0.2.10", "documentation");
    expect_refused(&none, "198.51.100.10", "documentation");
    expect_refused(&none, "203.0.113.10", "documentation");
    expect_refused(&none, "198.18.0.1", "benchmarking");
    expect_refused(&none, "192.0.0.8", "IETF protocol assignments");
}

static void test_ipv4_range_edges(void **state)
{
    (void)state;
    netpolicy none = parsed(NULL);
    /* just outside 172.16.0.0/12, 100.64.0.0/10, 169.254.0.0/16 and 198.18.0.0/15 */
    expect_allowed(&none, "172.15.255.255");
    expect_allowed(&none, "172.32.0.1");
    expect_allowed(&none, "100.63.255.255");
    expect_allowed(&none, "100.128.0.1");
    expect_allowed(&none, "169.253.255.255");
    expect_allowed(&none, "169.255.0.1");
    expect_allowed(&none, "198.17.255.255");
    expect_allowed(&none, "198.20.0.1");
    expect_allowed(&none, "11.0.0.1");
    expect_allowed(&none, "126.255.255.255");
    expect_allowed(&none, "128.0.0.1");
    expect_allowed(&none, "223.255.255.254");
}

static void test_ipv6_classes_are_refused(void **state)
{
    (void)state;
    netpolicy none = parsed(NULL);
    expect_refused(&none, "::1", "loopback");
    expect_refused(&none, "::", "unspecified");
    expect_refused(&none, "fc00::1", "unique local");
    expect_refused(&none, "fd12:3456::1", "unique local");
    expect_refused(&none, "fdff:ffff::1", "unique local");
    expect_refused(&none, "fe80::1", "link-local");
    expect_refused(&none, "febf::1", "link-local");
    expect_refused(&none, "ff02::1", "multicast");
    expect_refused(&none, "2001:db8::1", "documentation");
    expect_refused(&none, "64:ff9b::a00:1", "NAT64 of a refused IPv4 address");
    expect_refused(&none, "100::1", "discard");
    expect_refused(&none, "::a00:1", "IPv4-compatible");
    /* fc00::/7 ends at fdff:...; fe80::/10 at febf:... */
    expect_allowed(&none, "fbff::1");
    expect_allowed(&none, "fe7f::1");
}

/* The IANA special-purpose registries (IPv4 and IPv6), written out here from the
 * registries themselves: each entry's first and last address is refused. */
static void test_every_special_purpose_range_is_refused(void **state)
{
    (void)state;
    static const char *const rows[][3] = {
        /* IPv4 Special-Purpose Address Registry */
        {"0.0.0.0", "0.255.255.255", "unspecified"},
        {"10.0.0.0", "10.255.255.255", "private"},
        {"100.64.0.0", "100.127.255.255", "shared (CGNAT)"},
        {"127.0.0.0", "127.255.255.255", "loopback"},
        {"169.254.0.0", "169.254.255.255", "link-local (metadata)"},
        {"172.16.0.0", "172.31.255.255", "private"},
        {"192.0.0.0", "192.0.0.255", "IETF protocol assignments"}, /* incl. 192.0.0.9, .10, .170 */
        {"192.0.2.0", "192.0.2.255", "documentation"},
        {"192.31.196.0", "192.31.196.255", "AS112"},
        {"192.52.193.0", "192.52.193.255", "AMT"},
        {"192.88.99.0", "192.88.99.255", "6to4 relay anycast"},
        {"192.168.0.0", "192.168.255.255", "private"},
        {"192.175.48.0", "192.175.48.255", "AS112 direct delegation"},
        {"198.18.0.0", "198.19.255.255", "benchmarking"},
        {"198.51.100.0", "198.51.100.255", "documentation"},
        {"203.0.113.0", "203.0.113.255", "documentation"},
        {"240.0.0.0", "255.255.255.255", "reserved"}, /* incl. the limited broadcast */
        {"224.0.0.0", "239.255.255.255", "multicast"},
        /* IPv6 Special-Purpose Address Registry */
        {"::", "::", "unspecified"},
        {"::1", "::1", "loopback"},
        {"::ffff:0.0.0.0", "::ffff:255.255.255.255", "IPv4-mapped"},
        {"::ffff:0:0.0.0.0", "::ffff:0:255.255.255.255", "IPv4-translated"},
        {"64:ff9b:1::", "64:ff9b:1:ffff:ffff:ffff:ffff:ffff", "local-use NAT64"},
        {"100::", "100::ffff:ffff:ffff:ffff", "discard"},
        {"100:0:0:1::", "100:0:0:1:ffff:ffff:ffff:ffff", "dummy prefix"},
        {"2001::", "2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff", "IETF protocol assignments"}, /* Teredo, ORCHIDv2 ... */
        {"2001:db8::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "documentation"},
        {"2620:4f:8000::", "2620:4f:8000:ffff:ffff:ffff:ffff:ffff", "AS112 direct delegation"},
        {"3fff::", "3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", "documentation"},
        {"5f00::", "5f00:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "segment routing"},
        {"fc00::", "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "unique local"},
        {"fe80::", "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "link-local"},
        {"fec0::", "feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "site-local"},
        {"ff00::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "multicast"},
        {"::2", "::ffff:ffff", "IPv4-compatible"},
    };
    netpolicy none = parsed(NULL);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        expect_refused(&none, rows[i][0], rows[i][2]);
        expect_refused(&none, rows[i][1], rows[i][2]);
    }
    /* just outside some of them */
    expect_allowed(&none, "192.31.195.255");
    expect_allowed(&none, "192.52.194.0");
    expect_allowed(&none, "2001:200::1");
    expect_allowed(&none, "2620:4f:8001::1");
    expect_allowed(&none, "4000::1");
    expect_allowed(&none, "5f01::1");
}

/* 6to4 (2002::/16) and the well-known NAT64 prefix (64:ff9b::/96) carry an IPv4
 * address: judged by it (and the IPv4 allow-list). */
static void test_embedded_ipv4_is_judged(void **state)
{
    (void)state;
    netpolicy none = parsed(NULL);
    expect_allowed(&none, "2002:808:808::1");       /* 8.8.8.8 */
    expect_allowed(&none, "64:ff9b::8.8.8.8");
    expect_refused(&none, "2002:7f00:1::1", "6to4 of a refused IPv4 address");
    expect_refused(&none, "2002:a9fe:a9fe::", "6to4 of a refused IPv4 address"); /* metadata */
    expect_refused(&none, "2002:c0a8:101:ffff::1", "6to4 of a refused IPv4 address");
    expect_refused(&none, "64:ff9b::169.254.169.254", "NAT64 of a refused IPv4 address");
    expect_refused(&none, "64:ff9b::10.1.2.3", "NAT64 of a refused IPv4 address");
    netpolicy loop = parsed("127.0.0.0/8");
    expect_allowed(&loop, "2002:7f00:1::1");
    expect_refused(&loop, "2002:a00:1::1", "6to4 of a refused IPv4 address");
}

static void test_ipv4_mapped_ipv6_is_refused_whatever_it_maps(void **state)
{
    (void)state;
    netpolicy none = parsed(NULL);
    expect_refused(&none, "::ffff:127.0.0.1", "IPv4-mapped");
    expect_refused(&none, "::ffff:10.0.0.1", "IPv4-mapped");
    expect_refused(&none, "::ffff:169.254.169.254", "IPv4-mapped");
    expect_refused(&none, "::ffff:8.8.8.8", "IPv4-mapped");
    /* an IPv4 allow-list does not open the mapped form */
    netpolicy loop = parsed("127.0.0.0/8");
    expect_allowed(&loop, "127.0.0.1");
    expect_refused(&loop, "::ffff:127.0.0.1", "IPv4-mapped");
}

static void test_allow_list_opens_only_its_range(void **state)
{
    (void)state;
    netpolicy p = parsed("127.0.0.0/8");
    expect_allowed(&p, "127.0.0.1");
    expect_allowed(&p, "127.9.9.9");
    expect_refused(&p, "::1", "loopback"); /* IPv6 loopback is another family */
    expect_refused(&p, "10.0.0.1", "private");
    expect_refused(&p, "169.254.169.254", "link-local (metadata)");

    /* a prefix that ends inside a byte */
    p = parsed("100.64.0.0/12");
    expect_allowed(&p, "100.64.0.1");
    expect_allowed(&p, "100.79.255.254");
    expect_refused(&p, "100.80.0.1", "shared (CGNAT)");
    p = parsed("10.1.0.0/16, 192.168.7.0/24");
    expect_allowed(&p, "10.1.200.3");
    expect_refused(&p, "10.2.0.1", "private");
    expect_allowed(&p, "192.168.7.77");
    expect_refused(&p, "192.168.8.1", "private");
    /* one address, without a length */
    p = parsed("172.16.5.5");
    expect_allowed(&p, "172.16.5.5");
    expect_refused(&p, "172.16.5.6", "private");
    /* IPv6 */
    p = parsed("fd00:1::/32,::1");
    expect_allowed(&p, "fd00:1::5");
    expect_allowed(&p, "fd00:1:ffff::5");
    expect_refused(&p, "fd00:2::5", "unique local");
    expect_allowed(&p, "::1");
    expect_refused(&p, "127.0.0.1", "loopback");
    /* public addresses stay allowed with any list */
    expect_allowed(&p, "8.8.8.8");
}

static void test_netpolicy_lists(void **state)
{
    (void)state;
    netpolicy p = parsed("127.0.0.0/8,10.1.0.0/16,fd00::/8");
    assert_true(netpolicy_lists(&p, "127.0.0.1"));
    assert_true(netpolicy_lists(&p, "10.1.2.3"));
    assert_true(netpolicy_lists(&p, "fd12::1"));
    assert_false(netpolicy_lists(&p, "10.2.0.1"));
    assert_false(netpolicy_lists(&p, "8.8.8.8"));
    assert_false(netpolicy_lists(&p, "::1"));
    assert_false(netpolicy_lists(&p, "::ffff:127.0.0.1"));
    assert_false(netpolicy_lists(&p, "localhost"));
    assert_false(netpolicy_lists(&p, ""));
    netpolicy none = parsed(NULL);
    assert_false(netpolicy_lists(&none, "127.0.0.1"));
}

static void test_not_an_ip_family_is_refused(void **state)
{
    (void)state;
    netpolicy all = parsed("0.0.0.0/0,::/0");
    struct sockaddr_un un;
    memset(&un, 0, sizeof un);
    un.sun_family = AF_UNIX;
    assert_string_equal(netpolicy_refuse(&all, (const struct sockaddr *)&un), "not an IP address");
    /* /0 opens its whole family */
    expect_allowed(&all, "127.0.0.1");
    expect_allowed(&all, "::1");
}

static void test_parse_accepts_cidr_lists(void **state)
{
    (void)state;
    netpolicy p = parsed(NULL);
    assert_int_equal(p.n, 0);
    p = parsed("");
    assert_int_equal(p.n, 0);
    p = parsed("127.0.0.0/8, 10.0.0.0/8,::1/128,fe80::/10,192.168.1.1");
    assert_int_equal(p.n, 5);
    assert_int_equal(p.nets[0].family, AF_INET);
    assert_int_equal(p.nets[0].bits, 8);
    assert_int_equal(p.nets[2].family, AF_INET6);
    assert_int_equal(p.nets[2].bits, 128);
    assert_int_equal(p.nets[3].bits, 10);
    assert_int_equal(p.nets[4].bits, 32); /* an address alone is one host */
    p = parsed("::/0,0.0.0.0/0");
    assert_int_equal(p.nets[0].bits, 0);
}

static void test_parse_refuses_bad_cidrs(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "127.0.0.0/33", "::/129",      "10.0.0.0/",   "10.0.0.0/x",       "10.0.0.0/8x", "10.0.0.0/-1",
        "localhost",    "300.1.1.1/8", "10.0.0/8",    "127.0.0.0/8;10.0.0.0/8", "fe80::1::2/64",
        "127.0.0.0/8,bogus", "1.2.3.4 /8",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        netpolicy p;
        char err[160] = "";
        if (netpolicy_parse(&p, bad[i], err, sizeof err)) fail_msg("\"%s\" accepted", bad[i]);
        if (!strstr(err, "CIDR")) fail_msg("\"%s\": no reason given (%s)", bad[i], err);
    }
}

static void test_parse_refuses_more_than_the_maximum(void **state)
{
    (void)state;
    char list[NETPOLICY_MAX * 16 + 32] = "";
    for (int i = 0; i < NETPOLICY_MAX; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s10.%d.0.0/16", i ? "," : "", i);
    netpolicy p = parsed(list);
    assert_int_equal(p.n, NETPOLICY_MAX);
    strcat(list, ",10.200.0.0/16");
    char err[160] = "";
    assert_false(netpolicy_parse(&p, list, err, sizeof err));
    assert_non_null(strstr(err, "CIDR"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_public_addresses_are_allowed),
        cmocka_unit_test(test_ipv4_classes_are_refused),
        cmocka_unit_test(test_ipv4_range_edges),
        cmocka_unit_test(test_ipv6_classes_are_refused),
        cmocka_unit_test(test_ipv4_mapped_ipv6_is_refused_whatever_it_maps),
        cmocka_unit_test(test_every_special_purpose_range_is_refused),
        cmocka_unit_test(test_embedded_ipv4_is_judged),
        cmocka_unit_test(test_allow_list_opens_only_its_range),
        cmocka_unit_test(test_netpolicy_lists),
        cmocka_unit_test(test_not_an_ip_family_is_refused),
        cmocka_unit_test(test_parse_accepts_cidr_lists),
        cmocka_unit_test(test_parse_refuses_bad_cidrs),
        cmocka_unit_test(test_parse_refuses_more_than_the_maximum),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
