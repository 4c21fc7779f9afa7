/* X25519 (RFC 7748) in plain C99 for the Cortex-M0/M0+ (RP2040): 16 limbs of 16 bits, because
 * ARMv6-M's MULS gives only the low 32 bits of a product and the natmod links no libgcc (no
 * __aeabi_lmul): a 16x16-bit product fits MULS exactly; sums go into uint64_t, whose additions and
 * constant shifts the compiler does inline (ADDS/ADCS). No libc, no tables, constant-time ladder.
 *
 * NOT linked into roam6_native yet (the rp2040 bundle has ~250 B left within 64 KB): it is what
 * `roam6 bench ipsec --m0` runs on an emulated Cortex-M0 (unicorn) to count the cycles of one
 * X25519 for the handshake estimate (README Performance; host_tools/roam6_host/ipsec/m0_estimate.py),
 * checked there against roam6.ipsec.x25519 (RFC 7748 §5.2 vector).
 *
 * Field elements are < 2^256 (not fully reduced) between operations; 2^256 = 38 (mod p). */
#include <stdint.h>

typedef uint32_t fe[16];          /* limb i: bits 16i..16i+15, each < 2^16 */

void r6_fe_add(fe r, const fe a, const fe b) {
    uint32_t c = 0;
    int i, k;
    for (i = 0; i < 16; i++) {
        c += a[i] + b[i];
        r[i] = c & 0xFFFF;
        c >>= 16;
    }
    for (k = 0; k < 2; k++) {     /* 2^256 * c = 38c: fold the carry (twice covers its own carry) */
        c *= 38;
        for (i = 0; i < 16; i++) {
            c += r[i];
            r[i] = c & 0xFFFF;
            c >>= 16;
        }
    }
}

void r6_fe_sub(fe r, const fe a, const fe b) {
    int32_t c = 0;
    int i, k;
    for (i = 0; i < 16; i++) {
        c += (int32_t)a[i] - (int32_t)b[i];
        r[i] = (uint32_t)c & 0xFFFF;
        c >>= 16;                 /* arithmetic: 0 or -1 */
    }
    for (k = 0; k < 2; k++) {     /* a borrow of 2^256 = 38: subtract 38 (twice covers its own borrow) */
        c *= 38;
        for (i = 0; i < 16; i++) {
            c += (int32_t)r[i];
            r[i] = (uint32_t)c & 0xFFFF;
            c >>= 16;
        }
    }
}

void r6_fe_mul(fe r, const fe a, const fe b) {
    uint32_t t[32];
    uint64_t acc = 0;
    int i, k;
    for (k = 0; k < 31; k++) {    /* product scanning: column k */
        int lo = k < 16 ? 0 : k - 15, hi = k < 16 ? k : 15;
        for (i = lo; i <= hi; i++)
            acc += a[i] * b[k - i];       /* 16 x 16 -> 32 bits: one MULS */
        t[k] = (uint32_t)acc & 0xFFFF;
        acc >>= 16;
    }
    t[31] = (uint32_t)acc;
    acc = 0;
    for (i = 0; i < 16; i++) {    /* t[16..31] * 2^256 = 38 * t[16..31] */
        acc += t[i] + 38 * t[i + 16];
        r[i] = (uint32_t)acc & 0xFFFF;
        acc >>= 16;
    }
    for (k = 0; k < 2; k++) {
        uint32_t c = (uint32_t)acc * 38;
        acc = 0;
        for (i = 0; i < 16; i++) {
            acc += (uint64_t)r[i] + (i == 0 ? c : 0);
            r[i] = (uint32_t)acc & 0xFFFF;
            acc >>= 16;
        }
    }
}

static void fe_sq_n(fe r, const fe a, int n) {
    int i;
    r6_fe_mul(r, a, a);
    for (i = 1; i < n; i++)
        r6_fe_mul(r, r, r);
}

static void fe_copy(fe r, const fe a) {
    int i;
    for (i = 0; i < 16; i++)
        r[i] = a[i];
}

static void fe_cswap(fe a, fe b, uint32_t bit) {
    uint32_t m = 0 - bit, i, x;
    for (i = 0; i < 16; i++) {
        x = m & (a[i] ^ b[i]);
        a[i] ^= x;
        b[i] ^= x;
    }
}

/* z^(p-2) = z^(2^255-21): 254 squarings, 11 multiplications (the usual chain) */
static void fe_invert(fe out, const fe z) {
    fe t0, t1, t2, t3;
    fe_sq_n(t0, z, 1);            /* 2 */
    fe_sq_n(t1, t0, 2);           /* 8 */
    r6_fe_mul(t1, z, t1);         /* 9 */
    r6_fe_mul(t0, t0, t1);        /* 11 */
    fe_sq_n(t2, t0, 1);           /* 22 */
    r6_fe_mul(t1, t1, t2);        /* 2^5 - 1 */
    fe_sq_n(t2, t1, 5);
    r6_fe_mul(t1, t2, t1);        /* 2^10 - 1 */
    fe_sq_n(t2, t1, 10);
    r6_fe_mul(t2, t2, t1);        /* 2^20 - 1 */
    fe_sq_n(t3, t2, 20);
    r6_fe_mul(t2, t3, t2);        /* 2^40 - 1 */
    fe_sq_n(t2, t2, 10);
    r6_fe_mul(t1, t2, t1);        /* 2^50 - 1 */
    fe_sq_n(t2, t1, 50);
    r6_fe_mul(t2, t2, t1);        /* 2^100 - 1 */
    fe_sq_n(t3, t2, 100);
    r6_fe_mul(t2, t3, t2);        /* 2^200 - 1 */
    fe_sq_n(t2, t2, 50);
    r6_fe_mul(t1, t2, t1);        /* 2^250 - 1 */
    fe_sq_n(t1, t1, 5);           /* 2^255 - 32 */
    r6_fe_mul(out, t1, t0);       /* 2^255 - 21 */
}

/* out = k * u (32 bytes each, little-endian, RFC 7748 §5) */
void r6_x25519(uint8_t *out, const uint8_t *scalar, const uint8_t *u) {
    uint8_t k[32];
    fe x1, x2, z2, x3, z3, a, aa, b, bb, e, c, d, da, cb, a24;
    uint32_t swap = 0, bit;
    int i, t;
    for (i = 0; i < 32; i++)
        k[i] = scalar[i];
    k[0] &= 248;
    k[31] = (k[31] & 127) | 64;
    for (i = 0; i < 16; i++) {
        x1[i] = u[2 * i] | ((uint32_t)u[2 * i + 1] << 8);
        x2[i] = z2[i] = z3[i] = a24[i] = 0;
    }
    x1[15] &= 0x7FFF;
    x2[0] = z3[0] = 1;
    a24[0] = 121665 & 0xFFFF;
    a24[1] = 121665 >> 16;
    fe_copy(x3, x1);
    for (t = 254; t >= 0; t--) {
        bit = (k[t >> 3] >> (t & 7)) & 1;
        swap ^= bit;
        fe_cswap(x2, x3, swap);
        fe_cswap(z2, z3, swap);
        swap = bit;
        r6_fe_add(a, x2, z2);
        r6_fe_mul(aa, a, a);
        r6_fe_sub(b, x2, z2);
        r6_fe_mul(bb, b, b);
        r6_fe_sub(e, aa, bb);
        r6_fe_add(c, x3, z3);
        r6_fe_sub(d, x3, z3);
        r6_fe_mul(da, d, a);
        r6_fe_mul(cb, c, b);
        r6_fe_add(x3, da, cb);
        r6_fe_mul(x3, x3, x3);
        r6_fe_sub(z3, da, cb);
        r6_fe_mul(z3, z3, z3);
        r6_fe_mul(z3, x1, z3);
        r6_fe_mul(x2, aa, bb);
        r6_fe_mul(z2, a24, e);
        r6_fe_add(z2, aa, z2);
        r6_fe_mul(z2, e, z2);
    }
    fe_cswap(x2, x3, swap);
    fe_cswap(z2, z3, swap);
    fe_invert(z2, z2);
    r6_fe_mul(x2, x2, z2);
    /* freeze: subtract p while x2 >= p (at most twice for x2 < 2^256) */
    for (t = 0; t < 2; t++) {
        int32_t c2 = 19;          /* x2 + 19 >= 2^255 <=> x2 >= p */
        for (i = 0; i < 15; i++)
            c2 = (c2 + (int32_t)x2[i]) >> 16;
        c2 = (c2 + (int32_t)x2[15]) >> 15;   /* 1 if x2 >= p */
        c2 *= 19;
        for (i = 0; i < 16; i++) {
            c2 += (int32_t)x2[i];
            x2[i] = (uint32_t)c2 & 0xFFFF;
            c2 >>= 16;
        }
        x2[15] &= 0x7FFF;         /* x2 - p = x2 + 19 - 2^255 */
    }
    for (i = 0; i < 16; i++) {
        out[2 * i] = (uint8_t)x2[i];
        out[2 * i + 1] = (uint8_t)(x2[i] >> 8);
    }
}
