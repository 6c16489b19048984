/* fields: field descriptors and enums shared by several resources. */
#ifndef SUBREG_FIELDS_H
#define SUBREG_FIELDS_H

#include "subreg/schema.h"

/* The server-owned members every resource starts with. */
#define SERVER_FIELDS                                                                                                  \
    {.name = "id", .type = FT_STRING, .flags = FF_READONLY},                                                           \
        {.name = "version", .type = FT_INT, .flags = FF_READONLY},                                                     \
        {.name = "created_at", .type = FT_DATETIME, .flags = FF_READONLY},                                             \
        {.name = "updated_at", .type = FT_DATETIME, .flags = FF_READONLY}

/* Reference data: the id is chosen by the client (an admin) and never changes. */
#define CLIENT_ID_FIELDS                                                                                               \
    {.name = "id", .type = FT_REF, .flags = FF_REQUIRED | FF_IMMUTABLE},                                               \
        {.name = "version", .type = FT_INT, .flags = FF_READONLY},                                                     \
        {.name = "created_at", .type = FT_DATETIME, .flags = FF_READONLY},                                             \
        {.name = "updated_at", .type = FT_DATETIME, .flags = FF_READONLY}

extern const field FIELD_COUNTRY;  /* a country code */
extern const field FIELD_SERVICE_REF; /* the id of a service (/v1/services) */

/* The services a subprocessor serves, a customer buys or an objection is for:
 * absent means every service. */
#define SERVICES_FIELD                                                                                                 \
    {.name = "services", .type = FT_ARRAY, .flags = FF_UNIQUE, .min = 1, .max = 50, .item = &FIELD_SERVICE_REF}
extern const field FIELD_BOOL;

#endif
