/* What the libFuzzer harnesses share (tests/fuzz/README.md): a property check
 * that stops the run with a report libFuzzer records as a crash, and helpers to
 * cut one input into the pieces a harness needs. */
#ifndef SUBREG_FUZZ_H
#define SUBREG_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A property of the code under test: on failure names it and aborts (libFuzzer
 * writes the input as crash-<sha1>). */
#define CHECK(cond, ...)                                                                                               \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "\nproperty failed (%s:%d): %s\n  ", __FILE__, __LINE__, #cond);                           \
            fprintf(stderr, __VA_ARGS__);                                                                              \
            fputc('\n', stderr);                                                                                       \
            abort();                                                                                                   \
        }                                                                                                              \
    } while (0)

/* data[0..size) as a C string, cut at the first NUL (what a C caller sees). */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s) abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* Splits data at the byte sep (0xFF never occurs in UTF-8, so it separates JSON
 * texts and strings cleanly): the n-th piece (0-based), or an empty one. */
static inline void fuzz_piece(const uint8_t *data, size_t size, uint8_t sep, int n, const uint8_t **p,
                              size_t *len)
{
    size_t start = 0;
    for (int k = 0; k < n; k++) {
        const uint8_t *s = start < size ? memchr(data + start, sep, size - start) : NULL;
        if (!s) {
            *p = data + size;
            *len = 0;
            return;
        }
        start = (size_t)(s - data) + 1;
    }
    const uint8_t *e = start < size ? memchr(data + start, sep, size - start) : NULL;
    *p = data + start;
    *len = (e ? (size_t)(e - data) : size) - start;
}

#endif
