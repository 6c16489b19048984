#define _GNU_SOURCE
#include "subreg/util.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

static void oom(void)
{
    fputs("{\"level\":\"error\",\"msg\":\"out of memory\"}\n", stderr);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) oom();
    return p;
}

void *xcalloc(size_t n, size_t m)
{
    void *p = calloc(n ? n : 1, m ? m : 1);
    if (!p) oom();
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) oom();
    return q;
}

char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void sb_reserve(strbuf *sb, size_t extra)
{
    if (sb->len + extra + 1 <= sb->cap) return;
    size_t cap = sb->cap ? sb->cap : 256;
    while (cap < sb->len + extra + 1) cap *= 2;
    sb->data = xrealloc(sb->data, cap);
    sb->cap = cap;
}

void sb_append(strbuf *sb, const char *s, size_t n)
{
    sb_reserve(sb, n);
    memcpy(sb->data + sb->len, s, n);
    sb->len += n;
    sb->data[sb->len] = '\0';
}

void sb_puts(strbuf *sb, const char *s)
{
    sb_append(sb, s, strlen(s));
}

void sb_printf(strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n > 0) {
        sb_reserve(sb, (size_t)n);
        vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap2);
        sb->len += (size_t)n;
    }
    va_end(ap2);
}

void sb_free(strbuf *sb)
{
    free(sb->data);
    sb->data = NULL;
    sb->len = sb->cap = 0;
}

int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void format_rfc3339(int64_t epoch_ms, char out[32])
{
    time_t t = (time_t)(epoch_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void format_date(int64_t epoch_ms, char out[16])
{
    time_t t = (time_t)(epoch_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 16, "%Y-%m-%d", &tm);
}

static char *zone_name;

/* A tz database name: letters, digits and _ + - in /-separated parts, none of
 * them . or .., so the name cannot leave the database's directory. */
static bool zone_name_ok(const char *z)
{
    if (!*z || *z == '/' || strlen(z) > 64) return false;
    for (const char *p = z; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("/_+-.", *p)) return false;
    return !strstr(z, "..") && !strstr(z, "//") && z[strlen(z) - 1] != '/';
}

bool local_zone_set(const char *zone, char *err, size_t errlen)
{
    const char *dir = getenv("TZDIR");
    char path[512];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", zone);
    if (!zone_name_ok(zone) || stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "\"%.64s\" is not a time zone of the tz database (no %.200s)", zone, path);
        return false;
    }
    setenv("TZ", zone, 1);
    tzset();
    free(zone_name);
    zone_name = xstrdup(zone);
    return true;
}

const char *local_zone(void)
{
    return zone_name;
}

void format_local_date(int64_t epoch_ms, char out[16])
{
    time_t t = (time_t)(epoch_ms / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(out, 16, "%Y-%m-%d", &tm);
}

int64_t local_day_start_ms(const char *date)
{
    struct tm tm = {.tm_year = atoi(date) - 1900, .tm_mon = atoi(date + 5) - 1, .tm_mday = atoi(date + 8),
                    .tm_isdst = -1};
    /* where the clocks skip midnight, mktime moves into the day's first hour */
    time_t t = mktime(&tm);
    return (int64_t)t * 1000;
}

static int days_in_month(int y, int m)
{
    static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 29;
    return d[m - 1];
}

/* Days from civil (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static bool digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

static bool parse_date_parts(const char *s, int *y, int *m, int *d)
{
    if (!digits(s, 4, y) || s[4] != '-' || !digits(s + 5, 2, m) || s[7] != '-' ||
        !digits(s + 8, 2, d))
        return false;
    if (*y < 1900 || *y > 9999 || *m < 1 || *m > 12 || *d < 1) return false;
    return *d <= days_in_month(*y, *m);
}

bool is_valid_date(const char *s)
{
    int y, m, d;
    return strlen(s) == 10 && parse_date_parts(s, &y, &m, &d);
}

int64_t date_to_days(const char *s)
{
    int y, m, d;
    if (!parse_date_parts(s, &y, &m, &d)) return 0;
    return days_from_civil(y, m, d);
}

bool parse_rfc3339(const char *s, int64_t *epoch_ms)
{
    int y, mo, d, h, mi, se;
    if (strlen(s) < 20 || !parse_date_parts(s, &y, &mo, &d)) return false;
    if ((s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2, &h) || s[13] != ':' ||
        !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &se))
        return false;
    if (h > 23 || mi > 59 || se > 60) return false;
    const char *p = s + 19;
    int ms = 0;
    if (*p == '.') {
        p++;
        int nd = 0;
        while (isdigit((unsigned char)*p)) {
            if (nd < 3) ms = ms * 10 + (*p - '0');
            nd++;
            p++;
        }
        if (nd == 0) return false;
        for (int i = nd; i < 3; i++) ms *= 10;
    }
    int64_t off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (!digits(p + 1, 2, &oh) || p[3] != ':' || !digits(p + 4, 2, &om) || oh > 23 || om > 59)
            return false;
        off = (oh * 60 + om) * 60;
        if (*p == '-') off = -off;
        p += 6;
    } else {
        return false;
    }
    if (*p) return false;
    /* RFC 3339 5.7: second 60 only for a leap second, which is 23:59:60 in UTC. */
    if (se == 60 && ((h * 60 + mi - off / 60) % 1440 + 1440) % 1440 != 23 * 60 + 59) return false;
    int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - off;
    *epoch_ms = secs * 1000 + ms;
    return true;
}

void random_bytes(void *buf, size_t n)
{
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            abort();
        }
        p += r;
        n -= (size_t)r;
    }
}

static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

void new_id_floor(const char *prefix, int64_t ms, char *out, size_t len)
{
    /* new_id's first 10 digits are the 48 bits of milliseconds (the first digit
     * carries 3 of them, like new_id's 128 bits in 26 digits) */
    uint64_t t = ms < 0 ? 0 : (uint64_t)ms & 0xFFFFFFFFFFFFull;
    char digits[11];
    for (int i = 9; i >= 0; i--) {
        digits[i] = alphabet[t & 31];
        t >>= 5;
    }
    digits[10] = '\0';
    snprintf(out, len, "%s%s", prefix, digits);
}

char *new_id(const char *prefix)
{
    unsigned char b[16];
    uint64_t t = (uint64_t)now_ms();
    for (int i = 5; i >= 0; i--) {
        b[i] = (unsigned char)(t & 0xff);
        t >>= 8;
    }
    random_bytes(b + 6, 10);
    size_t plen = strlen(prefix);
    char *out = xmalloc(plen + 27);
    memcpy(out, prefix, plen);
    /* 128 bits → 26 base32 digits (the first carries 3 bits). */
    unsigned __int128 v = 0;
    for (int i = 0; i < 16; i++) v = (v << 8) | b[i];
    for (int i = 25; i >= 0; i--) {
        out[plen + (size_t)i] = alphabet[(unsigned)(v & 31)];
        v >>= 5;
    }
    out[plen + 26] = '\0';
    return out;
}

char *b64url_encode(const void *data, size_t n)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const unsigned char *in = data;
    char *out = xmalloc((n + 2) / 3 * 4 + 1);
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = tbl[v >> 18 & 63];
        out[o++] = tbl[v >> 12 & 63];
        out[o++] = tbl[v >> 6 & 63];
        out[o++] = tbl[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
        out[o++] = tbl[v >> 18 & 63];
        out[o++] = tbl[v >> 12 & 63];
        if (i + 1 < n) out[o++] = tbl[v >> 6 & 63];
    }
    out[o] = '\0';
    return out;
}

static int b64val(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

bool b64url_decode(const char *s, size_t slen, unsigned char **out, size_t *outlen)
{
    while (slen > 0 && s[slen - 1] == '=') slen--;
    if (slen % 4 == 1) return false;
    unsigned char *buf = xmalloc(slen / 4 * 3 + 3);
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < slen; i++) {
        int v = b64val(s[i]);
        if (v < 0) {
            free(buf);
            return false;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (unsigned char)(acc >> bits);
        }
    }
    /* Leftover bits must be zero (canonical encoding only). */
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) {
        free(buf);
        return false;
    }
    *out = buf;
    *outlen = o;
    return true;
}

/* The strict UTF-8 sequence at s (n bytes left): its length, and its code point
 * in *cp; 0 when it is not one (bad byte, overlong, surrogate, above U+10FFFF). */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned c = s[0];
    size_t len;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if ((c & 0xE0) == 0xC0) {
        len = 2;
        *cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3;
        *cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4;
        *cp = c & 0x07;
    } else {
        return 0;
    }
    if (len > n) return 0;
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80) return 0;
        *cp = (*cp << 6) | (s[k] & 0x3F);
    }
    if ((len == 2 && *cp < 0x80) || (len == 3 && *cp < 0x800) || (len == 4 && *cp < 0x10000)) return 0;
    if (*cp > 0x10FFFF || (*cp >= 0xD800 && *cp <= 0xDFFF)) return 0;
    return len;
}

bool utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    uint32_t cp;
    for (size_t i = 0, len; i < n; i += len)
        if (!(len = utf8_next(s + i, n - i, &cp))) return false;
    return true;
}

/* XML 1.0's Char production: TAB, LF, CR, U+0020-U+D7FF, U+E000-U+FFFD,
 * U+10000-U+10FFFF. */
static bool xml_char(uint32_t cp)
{
    return cp == 0x9 || cp == 0xA || cp == 0xD || (cp >= 0x20 && cp <= 0xD7FF) || (cp >= 0xE000 && cp <= 0xFFFD) ||
           (cp >= 0x10000 && cp <= 0x10FFFF);
}

bool text_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    uint32_t cp;
    for (size_t i = 0, len; i < n; i += len)
        if (!(len = utf8_next(s + i, n - i, &cp)) || !xml_char(cp)) return false;
    return true;
}

void sb_put_text(strbuf *out, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    uint32_t cp;
    size_t run = 0; /* start of the bytes not yet copied */
    for (size_t i = 0, len; i < n; i += len) {
        len = utf8_next(s + i, n - i, &cp);
        if (len && xml_char(cp)) continue;
        sb_append(out, str + run, i - run);
        sb_append(out, "\xEF\xBF\xBD", 3); /* U+FFFD */
        if (!len) len = 1;                  /* a bad byte: replace it and go on */
        run = i + len;
    }
    sb_append(out, str + run, n - run);
}

bool str_ieq(const char *a, const char *b)
{
    return strcasecmp(a, b) == 0;
}

bool str_istarts(const char *s, const char *prefix)
{
    return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

#include <openssl/evp.h>

void sha256_hex(const void *data, size_t n, char out[65])
{
    unsigned char md[32];
    unsigned int len = 0;
    EVP_Digest(data, n, md, &len, EVP_sha256(), NULL);
    for (unsigned i = 0; i < 32; i++) snprintf(out + i * 2, 3, "%02x", md[i]);
    out[64] = '\0';
}

void cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t ns = ts.tv_nsec + ms * 1000000;
    ts.tv_sec += ns / 1000000000;
    ts.tv_nsec = ns % 1000000000;
    pthread_cond_timedwait(cv, mu, &ts);
}
