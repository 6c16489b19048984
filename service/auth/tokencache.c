/* A bounded cache of verified tokens (see auth_internal.h). Direct-mapped by the
 * SHA-256 of the whole token, a mutex per slot: a token is verified once per key
 * set and then answered from here until its exp (plus leeway). */
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <string.h>

#include "auth_internal.h"

typedef struct {
    pthread_mutex_t mu;
    bool used;
    unsigned char hash[SHA256_DIGEST_LENGTH];
    uint64_t keys_gen;
    int64_t valid_until; /* seconds */
    principal who;
} slot;

struct token_cache {
    int n;
    slot *slots;
};

token_cache *token_cache_new(int slots)
{
    token_cache *c = xcalloc(1, sizeof *c);
    c->n = slots;
    c->slots = xcalloc((size_t)slots, sizeof *c->slots);
    for (int i = 0; i < slots; i++) pthread_mutex_init(&c->slots[i].mu, NULL);
    return c;
}

void token_cache_free(token_cache *c)
{
    if (!c) return;
    for (int i = 0; i < c->n; i++) pthread_mutex_destroy(&c->slots[i].mu);
    OPENSSL_cleanse(c->slots, (size_t)c->n * sizeof *c->slots);
    free(c->slots);
    free(c);
}

void token_hash(const char *token, unsigned char out[32])
{
    SHA256((const unsigned char *)token, strlen(token), out);
}

static slot *slot_for(token_cache *c, const unsigned char hash[32])
{
    uint32_t k;
    memcpy(&k, hash, sizeof k);
    return &c->slots[k % (uint32_t)c->n];
}

bool token_cache_get(token_cache *c, const unsigned char hash[32], uint64_t keys_gen, int64_t now, principal *out)
{
    if (!c) return false;
    slot *s = slot_for(c, hash);
    pthread_mutex_lock(&s->mu);
    bool hit = s->used && s->keys_gen == keys_gen && now <= s->valid_until &&
               CRYPTO_memcmp(s->hash, hash, SHA256_DIGEST_LENGTH) == 0;
    if (hit) *out = s->who;
    pthread_mutex_unlock(&s->mu);
    return hit;
}

void token_cache_put(token_cache *c, const unsigned char hash[32], uint64_t keys_gen, int64_t valid_until,
                     const principal *who)
{
    if (!c) return;
    slot *s = slot_for(c, hash);
    pthread_mutex_lock(&s->mu);
    s->used = true;
    memcpy(s->hash, hash, SHA256_DIGEST_LENGTH);
    s->keys_gen = keys_gen;
    s->valid_until = valid_until;
    s->who = *who;
    pthread_mutex_unlock(&s->mu);
}
