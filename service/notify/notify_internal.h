/* Shared between webhooks.c (the API: URL policy, rotation, ping, redeliver) and
 * the delivery thread's files (delivery.h). */
#ifndef SUBREG_NOTIFY_INTERNAL_H
#define SUBREG_NOTIFY_INTERNAL_H

#include "subreg/api.h"
#include "subreg/notify.h"
#include "subreg/resource.h"
#include "subreg/store.h"
#include "subreg/webhook.h"

extern notify_settings notify_cfg;
extern netpolicy webhook_nets;

bool url_host_port(const char *url, char *host, size_t hostlen, char *port, size_t portlen, bool *https);
const char *url_refused(const char *url, char *why, size_t whylen);

/* Sends a ping to hook now; *result = {delivery_id, success, status_code, latency_ms, error}. */
store_status deliver_ping(const cJSON *hook, cJSON **result);
/* Puts a delivery back on the schedule, due now. */
store_status schedule_redelivery(const cJSON *delivery);

#endif
