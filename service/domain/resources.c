/* Every resource the generic handlers serve, in routing order. */
#include "subreg/resource.h"

const resource *const RESOURCES[] = {&RES_SUBPROCESSOR, &RES_AGREEMENT, &RES_TRANSFER, &RES_TOM, &RES_CUSTOMER,
                                     &RES_DOCUMENT,     &RES_OBJECTION, &RES_COUNTRY,  &RES_ADEQUACY, &RES_SCC_SET,
                                     &RES_WEBHOOK,      &RES_DELIVERY,  &RES_EVENT,    NULL};
