/* Every resource descriptor, for harnesses that pick one from an input byte: the
 * generic ones (RESOURCES) and the publication, which its own handlers write. */
#ifndef SUBREG_FUZZ_DESCRIPTORS_H
#define SUBREG_FUZZ_DESCRIPTORS_H

#include "subreg/resource.h"

static inline int fuzz_ndescriptors(void)
{
    int n = 0;
    while (RESOURCES[n]) n++;
    return n + 1;
}

static inline const resource *fuzz_descriptor(uint8_t pick)
{
    int n = fuzz_ndescriptors();
    int i = pick % n;
    return i == n - 1 ? &RES_PUBLICATION : RESOURCES[i];
}

#endif
