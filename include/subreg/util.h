/* util: small helpers shared by every module — a growable string buffer, time
 * formatting and parsing, identifiers, base64url, UTF-8 checks. No I/O beyond
 * reading the clock and the system's random source. */
#ifndef SUBREG_UTIL_H
#define SUBREG_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Growable, always NUL-terminated byte buffer. Zero-initialise, then append. */
typedef struct {
    char *data;
    size_t len;
    size_t cap;
} strbuf;

/* Room for extra more bytes (and the terminating NUL). */
void sb_reserve(strbuf *sb, size_t extra);
void sb_append(strbuf *sb, const char *s, size_t n);
void sb_puts(strbuf *sb, const char *s);
void sb_printf(strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_free(strbuf *sb);

/* Aborts the process on allocation failure: a service that cannot allocate a few
 * bytes cannot answer anyone, and a clear crash beats silent corruption. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t m);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* Wall clock in milliseconds since the epoch; monotonic clock in milliseconds. */
int64_t now_ms(void);
int64_t mono_ms(void);
#define MS_PER_DAY 86400000LL

/* RFC 3339 UTC with second precision: "2026-11-27T14:00:00Z" (21 bytes incl. NUL). */
void format_rfc3339(int64_t epoch_ms, char out[32]);
/* Parses RFC 3339 (with 'Z' or a numeric offset, optional fraction). */
bool parse_rfc3339(const char *s, int64_t *epoch_ms);
/* Calendar date "YYYY-MM-DD" that exists (leap years checked). */
bool is_valid_date(const char *s);
/* Days since 1970-01-01 of a valid date string. */
int64_t date_to_days(const char *s);
/* "YYYY-MM-DD" for a time. */
void format_date(int64_t epoch_ms, char out[16]);

/* The legal team's calendar: "today" and the bounds of a day are taken in one
 * IANA time zone (SUBREG_TIMEZONE), not UTC. local_zone_set validates the name
 * against the tz database (TZDIR or /usr/share/zoneinfo) and makes it the
 * process's zone (TZ, tzset): call it once at start, before any thread. */
bool local_zone_set(const char *zone, char *err, size_t errlen);
/* The zone set (NULL before local_zone_set). */
const char *local_zone(void);
/* "YYYY-MM-DD" of a time in that zone. */
void format_local_date(int64_t epoch_ms, char out[16]);
/* The first instant (epoch ms) of a valid date in that zone: its midnight, or
 * the first time that exists that day. */
int64_t local_day_start_ms(const char *date);

/* Cryptographically random bytes (getrandom). */
void random_bytes(void *buf, size_t n);

/* Time-ordered identifier: prefix + 26 Crockford base32 characters (48-bit
 * millisecond time, 80 random bits). Lexicographic order = creation order. */
char *new_id(const char *prefix);
/* The smallest id new_id(prefix) can give at ms (epoch milliseconds) or later. */
void new_id_floor(const char *prefix, int64_t ms, char *out, size_t len);

/* base64url without padding. Decode returns false on invalid input. */
char *b64url_encode(const void *data, size_t n);
bool b64url_decode(const char *s, size_t slen, unsigned char **out, size_t *outlen);

/* Strict UTF-8 (no overlongs, no surrogates, no code points above U+10FFFF). */
bool utf8_valid(const char *s, size_t n);
/* Text that any of the public forms (XML included) can carry: strict UTF-8 of
 * XML 1.0 characters only (no C0 controls but TAB, LF, CR; no U+FFFE, U+FFFF). */
bool text_valid(const char *s, size_t n);
/* Appends s[0..n) with whatever text_valid refuses (a byte that is not strict
 * UTF-8, a code point XML 1.0 does not allow) replaced by U+FFFD. */
void sb_put_text(strbuf *out, const char *s, size_t n);

/* Case-insensitive ASCII comparison helpers. */
bool str_ieq(const char *a, const char *b);
bool str_istarts(const char *s, const char *prefix);

/* Waits on cv (mu held) for at most ms milliseconds; the background threads'
 * "sleep unless woken". */
#include <pthread.h>
void cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t ms);

/* Lower-case hex SHA-256 of data (65 bytes incl. NUL). */
void sha256_hex(const void *data, size_t n, char out[65]);

#endif
