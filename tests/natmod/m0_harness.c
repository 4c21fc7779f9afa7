/* Entry points for running firmware/natmod/r6_core.c on an emulated Cortex-M0 (test_cortex_m0.py).
 * Built with the natmod's own flags for armv6m and linked with -nostdlib: it also proves that the
 * core needs nothing from libc or libgcc. Arguments arrive in r0-r3 (AAPCS); longer argument
 * lists come as a word-aligned block. */
#include "r6_core.h"

uint32_t h_sum16(const uint8_t *p, uint32_t n) {
    return r6_sum16(p, n);
}

/* SHA-1 of p[0..n) fed in two updates split at `split` (exercises the partial-block path). */
void h_sha1(const uint8_t *p, uint32_t n, uint32_t split, uint8_t *out) {
    r6_sha1_ctx c;
    r6_sha1_init(&c);
    r6_sha1_update(&c, p, split);
    r6_sha1_update(&c, p + split, n - split);
    r6_sha1_final(&c, out);
}

typedef struct {
    const uint8_t *key;
    uint32_t klen;
    const uint8_t *a;
    uint32_t na;
    const uint8_t *b;
    uint32_t nb;
    const uint8_t *c;
    uint32_t nc;
} hmac_args;

void h_hmac(const hmac_args *args, uint8_t *out) {
    r6_hmac_key k;
    r6_hmac_prepare(&k, args->key, args->klen);
    r6_hmac_parts(&k, args->a, args->na, args->b, args->nb, args->c, args->nc, out);
}
