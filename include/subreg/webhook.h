/* webhook: the pure parts of outgoing webhooks — Standard Webhooks signatures,
 * which network addresses a delivery may connect to, the retry schedule and the
 * event payload. notify/ does the I/O. */
#ifndef SUBREG_WEBHOOK_H
#define SUBREG_WEBHOOK_H

#include <cjson/cJSON.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* "whsec_" + base64 of 32 random bytes. Caller frees. */
char *webhook_new_secret(void);

/* "v1,<base64 HMAC-SHA256 of id.timestamp.body>" with the key in secret
 * ("whsec_<base64>"). Returns false for a malformed secret. */
bool webhook_sign(const char *secret, const char *msg_id, int64_t timestamp, const char *body, size_t len,
                  char *out, size_t outlen);

/* Network policy: by default only public unicast addresses; allow lists CIDRs
 * (IPv4 and IPv6) that are permitted anyway. */
#define NETPOLICY_MAX 32
typedef struct {
    int family;
    unsigned char addr[16];
    int bits;
} cidr;

typedef struct {
    int n;
    cidr nets[NETPOLICY_MAX];
} netpolicy;

bool netpolicy_parse(netpolicy *p, const char *cidrs, char *err, size_t errlen);
/* True when the textual address (IPv4 or IPv6) lies in one of the listed nets. */
bool netpolicy_lists(const netpolicy *p, const char *ip);
/* NULL when the address may be connected to, else why not ("loopback", ...). */
const char *netpolicy_refuse(const netpolicy *p, const struct sockaddr *sa);

/* Seconds to wait before attempt k (k = 1 is the first). schedule is a comma
 * list of seconds; past its end there are no more attempts (returns -1). */
int64_t retry_delay(const char *schedule, int attempt);
/* Parses a Retry-After value (seconds or an HTTP-date) into seconds from now. */
int64_t parse_retry_after(const char *value, int64_t now_s);
/* Milliseconds until the next attempt: the schedule's delay (seconds, < 0: no
 * more attempts) with ±10 % jitter from rnd, but never before what the receiver
 * asked for (retry_after_s, < 0: nothing) — jitter only lengthens that wait. */
int64_t retry_wait_ms(int64_t schedule_s, int64_t retry_after_s, uint32_t rnd);

/* The event envelope {"type", "timestamp", "data"} for an audit record. The
 * event type is "<entity_type>.<created|updated|deleted>", or for publications
 * "publication.announced" / "publication.effective". NULL for records that emit
 * no event. */
cJSON *webhook_event_from_audit(const cJSON *record, const char *public_base);
bool event_type_matches(const cJSON *subscribed, const char *type);

#endif
