/* roam6 native hot paths: plain C99, no MicroPython, no libc calls.
 *
 * Shared by the MicroPython binding (roam6_native.c) and the Cortex-M0 emulation harness in
 * tests/natmod/. Every buffer may start at any address (memoryview slices, packets inside
 * packets) and the RP2040's Cortex-M0+ faults on unaligned 16/32-bit loads, so buffers are only
 * ever read byte by byte. No 64-bit shifts or divides: the natmod linker does not link libgcc.
 */
#ifndef R6_CORE_H
#define R6_CORE_H

#include <stddef.h>
#include <stdint.h>

/* Sum of big-endian 16-bit words of p[0..n), odd tail zero-padded, NOT folded.
 * Exact for n <= R6_SUM_CHUNK (result < 2^31); callers split longer buffers. */
#define R6_SUM_CHUNK 65536u
uint32_t r6_sum16(const uint8_t *p, size_t n);

/* SHA-1 (FIPS 180-4) */
typedef struct {
    uint32_t h[5];
    uint32_t total;   /* bytes hashed so far (messages < 512 MiB) */
    uint32_t fill;    /* bytes waiting in buf */
    uint8_t buf[64];
} r6_sha1_ctx;

void r6_sha1_init(r6_sha1_ctx *c);
void r6_sha1_update(r6_sha1_ctx *c, const uint8_t *p, size_t n);
void r6_sha1_final(r6_sha1_ctx *c, uint8_t out[20]);

/* HMAC-SHA1 key schedule: the SHA-1 states after the ipad and opad blocks, so a key used again
 * (the MN-HA key, Kbm) costs two compressions less per message. */
typedef struct {
    uint32_t inner[5];
    uint32_t outer[5];
} r6_hmac_key;

void r6_hmac_prepare(r6_hmac_key *k, const uint8_t *key, size_t klen);
/* HMAC over the concatenation of up to three parts (NULL/0 for an absent part). */
void r6_hmac_parts(const r6_hmac_key *k, const uint8_t *a, size_t na, const uint8_t *b, size_t nb,
    const uint8_t *c, size_t nc, uint8_t out[20]);

/* The outer hash alone, for an inner digest computed elsewhere (hashlib, for long messages). */
void r6_hmac_parts_outer(const r6_hmac_key *k, const uint8_t inner[20], uint8_t out[20]);

#endif
