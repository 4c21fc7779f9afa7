/* roam6_native: MicroPython dynamic native module (py/dynruntime.mk) with roam6's hot paths.
 *
 * Python API (firmware/roam6/accel.py is the only caller; it keeps the same results as the
 * plain-Python functions in roam6.wire.checksum and roam6.crypto):
 *   inet_sum(data, acc=0)            -> acc + sum of big-endian 16-bit words (odd tail padded)
 *   finish(acc)                      -> folded, complemented 16-bit checksum of a running sum
 *   checksum6(src, dst, nh, payload) -> finish(inet_sum(payload, IPv6 pseudo-header sum))
 *   hmac_sha1(key, data)             -> 20-byte HMAC-SHA1
 *   hmac_parts(key, n, a, b=None, c=None) -> first n bytes of HMAC-SHA1(key, a|b|c)
 *   sha1(a, b=None)                  -> 20-byte SHA-1 of a|b (Kbm is SHA1(token|token))
 *   use_hashlib(hashlib.sha1 or None, min_len) -> HMAC messages of min_len bytes and more are
 *                                       hashed by the built-in SHA-1 (faster on long buffers)
 *   API                              -> ROAM6_NATIVE_API below
 * Arguments are anything with the buffer protocol (bytes, bytearray, memoryview slices).
 */
#include "py/dynruntime.h"
#include "r6_core.h"

/* Bumped whenever the Python API below changes; accel.py ignores a module with another value
 * (a stale .mpy left on a board). */
#define ROAM6_NATIVE_API 2

/* HMAC key schedules of the last keys seen: the MN uses the same MN-HA key and Kbm for every
 * BU, so their ipad/opad compressions are done once. Non-static: the natmod linker places
 * zero-initialised globals in .bss only when they are reachable through the GOT. */
#define CACHE_SLOTS 2
uint8_t r6_cache_keys[CACHE_SLOTS][64];
uint32_t r6_cache_lens[CACHE_SLOTS];   /* 0 = empty; else key length + 1 */
r6_hmac_key r6_cache_sched[CACHE_SLOTS];
uint32_t r6_cache_next;

static const r6_hmac_key *schedule_for(const uint8_t *key, size_t klen, r6_hmac_key *scratch) {
    if (klen > 64) {
        r6_hmac_prepare(scratch, key, klen);
        return scratch;
    }
    for (int s = 0; s < CACHE_SLOTS; s++) {
        if (r6_cache_lens[s] != klen + 1) {
            continue;
        }
        const uint8_t *k = r6_cache_keys[s];
        size_t i = 0;
        while (i < klen && k[i] == key[i]) {
            i++;
        }
        if (i == klen) {
            return &r6_cache_sched[s];
        }
    }
    uint32_t s = r6_cache_next;
    r6_cache_next = (s + 1) % CACHE_SLOTS;
    for (size_t i = 0; i < klen; i++) {
        r6_cache_keys[s][i] = key[i];
    }
    r6_cache_lens[s] = klen + 1;
    r6_hmac_prepare(&r6_cache_sched[s], key, klen);
    return &r6_cache_sched[s];
}

/* hashlib.sha1 (set by use_hashlib) and the message length from which it hashes the inner HMAC
 * message: the built-in SHA-1 beats this C on long buffers, the C wins on short ones (no object
 * creation, cached key schedules). A builtin type object is static: no GC root needed. */
mp_obj_t r6_hashlib_sha1;
uint32_t r6_hashlib_min;

static void get_read(mp_obj_t o, mp_buffer_info_t *bi) {
    if (o == mp_const_none) {
        bi->buf = NULL;
        bi->len = 0;
    } else {
        mp_get_buffer_raise(o, bi, MP_BUFFER_READ);
    }
}

static mp_obj_t inet_sum(size_t n_args, const mp_obj_t *args) {
    mp_buffer_info_t bi;
    mp_get_buffer_raise(args[0], &bi, MP_BUFFER_READ);
    const uint8_t *p = bi.buf;
    size_t n = bi.len;
    mp_obj_t acc = n_args > 1 ? args[1] : MP_OBJ_NEW_SMALL_INT(0);
    /* fast path: one chunk, small non-negative accumulator: the sum fits a machine word */
    if (n <= R6_SUM_CHUNK && mp_obj_is_small_int(acc)) {
        mp_int_t a = MP_OBJ_SMALL_INT_VALUE(acc);
        if (a >= 0 && a < 0x40000000) {
            return mp_obj_new_int_from_uint((mp_uint_t)a + r6_sum16(p, n));
        }
    }
    /* exact for any accumulator (Python int semantics) and any length: chunk by chunk */
    while (1) {
        size_t take = n > R6_SUM_CHUNK ? R6_SUM_CHUNK : n;
        acc = mp_binary_op(MP_BINARY_OP_ADD, acc, mp_obj_new_int_from_uint(r6_sum16(p, take)));
        p += take;
        n -= take;
        if (n == 0) {
            return acc;
        }
    }
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(inet_sum_obj, 1, 2, inet_sum);

/* HMAC over parts[0..n_parts) (buffer objects, None skipped) whose total length is total. */
static void hmac_objs(mp_buffer_info_t *key, const mp_obj_t *parts, mp_buffer_info_t *bufs,
    size_t n_parts, size_t total, uint8_t out[20]) {
    r6_hmac_key scratch;
    const r6_hmac_key *k = schedule_for(key->buf, key->len, &scratch);
    if (r6_hashlib_sha1 == MP_OBJ_NULL || r6_hashlib_sha1 == mp_const_none || total < r6_hashlib_min) {
        r6_hmac_parts(k, bufs[0].buf, bufs[0].len, n_parts > 1 ? bufs[1].buf : NULL,
            n_parts > 1 ? bufs[1].len : 0, n_parts > 2 ? bufs[2].buf : NULL, n_parts > 2 ? bufs[2].len : 0, out);
        return;
    }
    /* long message: inner hash = hashlib.sha1(key ^ ipad | parts), outer hash in C */
    uint8_t block[64];
    const uint8_t *kb = key->buf;
    size_t klen = key->len;
    uint8_t hashed[20];
    if (klen > 64) {
        r6_sha1_ctx c;
        r6_sha1_init(&c);
        r6_sha1_update(&c, kb, klen);
        r6_sha1_final(&c, hashed);
        kb = hashed;
        klen = 20;
    }
    for (size_t i = 0; i < 64; i++) {
        block[i] = (uint8_t)((i < klen ? kb[i] : 0) ^ 0x36);
    }
    mp_obj_t arg = mp_obj_new_bytes(block, 64);
    mp_obj_t h = mp_call_function_n_kw(r6_hashlib_sha1, 1, 0, &arg);
    mp_obj_t update = mp_load_attr(h, MP_QSTR_update);
    for (size_t i = 0; i < n_parts; i++) {
        if (parts[i] != mp_const_none) {
            mp_call_function_n_kw(update, 1, 0, &parts[i]);
        }
    }
    mp_obj_t digest = mp_call_function_n_kw(mp_load_attr(h, MP_QSTR_digest), 0, 0, NULL);
    mp_buffer_info_t inner;
    mp_get_buffer_raise(digest, &inner, MP_BUFFER_READ);
    r6_hmac_parts_outer(k, inner.buf, out);
}

/* One's-complement sum of p[0..n) added to a folded accumulator, folded again: any length. Folding
 * early gives the same final checksum as folding the exact sum once (both are the sum mod 0xFFFF,
 * and neither folds a positive sum to 0). */
static uint32_t sum_folded(const uint8_t *p, size_t n, uint32_t acc) {
    while (1) {
        size_t take = n > R6_SUM_CHUNK ? R6_SUM_CHUNK : n;
        acc += r6_sum16(p, take);   /* acc < 2^17 here, the chunk's sum < 2^31: no overflow */
        acc = (acc & 0xFFFF) + (acc >> 16);
        p += take;
        n -= take;
        if (n == 0) {
            return acc;
        }
    }
}

static mp_obj_t finish_small(uint32_t acc) {
    while (acc >> 16) {
        acc = (acc & 0xFFFF) + (acc >> 16);
    }
    return MP_OBJ_NEW_SMALL_INT(~acc & 0xFFFF);
}

static mp_obj_t finish(mp_obj_t acc) {
    if (mp_obj_is_small_int(acc)) {
        mp_int_t a = MP_OBJ_SMALL_INT_VALUE(acc);
        if (a < 0) {
            mp_raise_ValueError(MP_ERROR_TEXT("checksum sum must not be negative"));
        }
        if ((mp_uint_t)a <= 0xFFFFFFFFu) {
            return finish_small((uint32_t)a);
        }
    }
    /* a big int (or 64-bit small int): fold with Python arithmetic until it fits */
    mp_obj_t mask = MP_OBJ_NEW_SMALL_INT(0xFFFF), shift = MP_OBJ_NEW_SMALL_INT(16);
    while (!mp_obj_is_small_int(acc) || (mp_uint_t)MP_OBJ_SMALL_INT_VALUE(acc) > 0xFFFFFFFFu) {
        acc = mp_binary_op(MP_BINARY_OP_ADD, mp_binary_op(MP_BINARY_OP_AND, acc, mask),
            mp_binary_op(MP_BINARY_OP_RSHIFT, acc, shift));
    }
    if (MP_OBJ_SMALL_INT_VALUE(acc) < 0) {
        mp_raise_ValueError(MP_ERROR_TEXT("checksum sum must not be negative"));
    }
    return finish_small((uint32_t)MP_OBJ_SMALL_INT_VALUE(acc));
}
static MP_DEFINE_CONST_FUN_OBJ_1(finish_obj, finish);

static mp_obj_t checksum6(size_t n_args, const mp_obj_t *args) {
    mp_buffer_info_t src, dst, payload;
    mp_get_buffer_raise(args[0], &src, MP_BUFFER_READ);
    mp_get_buffer_raise(args[1], &dst, MP_BUFFER_READ);
    mp_int_t nh = mp_obj_get_int(args[2]);
    mp_get_buffer_raise(args[3], &payload, MP_BUFFER_READ);
    if (nh < 0 || nh > 0xFFFF) {
        mp_raise_ValueError(MP_ERROR_TEXT("next header must be 0..255"));
    }
    uint32_t len = (uint32_t)payload.len;
    uint32_t acc = sum_folded(src.buf, src.len, 0);
    acc = sum_folded(dst.buf, dst.len, acc);
    acc += (len >> 16) + (len & 0xFFFF) + (uint32_t)nh;
    acc = sum_folded(payload.buf, payload.len, acc);
    return finish_small(acc);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(checksum6_obj, 4, 4, checksum6);

static mp_obj_t hmac_sha1(mp_obj_t key_in, mp_obj_t data_in) {
    mp_buffer_info_t key, data;
    mp_get_buffer_raise(key_in, &key, MP_BUFFER_READ);
    mp_get_buffer_raise(data_in, &data, MP_BUFFER_READ);
    uint8_t out[20];
    hmac_objs(&key, &data_in, &data, 1, data.len, out);
    return mp_obj_new_bytes(out, 20);
}
static MP_DEFINE_CONST_FUN_OBJ_2(hmac_sha1_obj, hmac_sha1);

static mp_obj_t hmac_parts(size_t n_args, const mp_obj_t *args) {
    mp_buffer_info_t key;
    mp_get_buffer_raise(args[0], &key, MP_BUFFER_READ);
    mp_int_t n = mp_obj_get_int(args[1]);
    if (n < 0 || n > 20) {
        mp_raise_ValueError(MP_ERROR_TEXT("HMAC-SHA1 output length must be 0..20"));
    }
    mp_obj_t parts[3] = {args[2], n_args > 3 ? args[3] : mp_const_none, n_args > 4 ? args[4] : mp_const_none};
    mp_buffer_info_t bufs[3];
    mp_get_buffer_raise(parts[0], &bufs[0], MP_BUFFER_READ);
    get_read(parts[1], &bufs[1]);
    get_read(parts[2], &bufs[2]);
    uint8_t out[20];
    hmac_objs(&key, parts, bufs, 3, bufs[0].len + bufs[1].len + bufs[2].len, out);
    return mp_obj_new_bytes(out, (size_t)n);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(hmac_parts_obj, 3, 5, hmac_parts);

static mp_obj_t sha1(size_t n_args, const mp_obj_t *args) {
    mp_buffer_info_t a, b;
    mp_get_buffer_raise(args[0], &a, MP_BUFFER_READ);
    get_read(n_args > 1 ? args[1] : mp_const_none, &b);
    r6_sha1_ctx c;
    uint8_t out[20];
    r6_sha1_init(&c);
    r6_sha1_update(&c, a.buf, a.len);
    r6_sha1_update(&c, b.buf, b.len);
    r6_sha1_final(&c, out);
    return mp_obj_new_bytes(out, 20);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(sha1_obj, 1, 2, sha1);

/* use_hashlib(sha1_type_or_None, min_len): hash HMAC messages of min_len bytes or more with it. */
static mp_obj_t use_hashlib(mp_obj_t ctor, mp_obj_t min_len) {
    r6_hashlib_sha1 = ctor;
    r6_hashlib_min = (uint32_t)mp_obj_get_int(min_len);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_2(use_hashlib_obj, use_hashlib);

mp_obj_t mpy_init(mp_obj_fun_bc_t *self, size_t n_args, size_t n_kw, mp_obj_t *args) {
    MP_DYNRUNTIME_INIT_ENTRY
    r6_cache_lens[0] = 0;   /* .bss is zeroed by the loader; be explicit about the empty cache */
    r6_cache_lens[1] = 0;
    r6_cache_next = 0;
    r6_hashlib_sha1 = mp_const_none;
    r6_hashlib_min = 0;
    mp_store_global(MP_QSTR_API, MP_OBJ_NEW_SMALL_INT(ROAM6_NATIVE_API));
    mp_store_global(MP_QSTR_inet_sum, MP_OBJ_FROM_PTR(&inet_sum_obj));
    mp_store_global(MP_QSTR_finish, MP_OBJ_FROM_PTR(&finish_obj));
    mp_store_global(MP_QSTR_checksum6, MP_OBJ_FROM_PTR(&checksum6_obj));
    mp_store_global(MP_QSTR_hmac_sha1, MP_OBJ_FROM_PTR(&hmac_sha1_obj));
    mp_store_global(MP_QSTR_hmac_parts, MP_OBJ_FROM_PTR(&hmac_parts_obj));
    mp_store_global(MP_QSTR_sha1, MP_OBJ_FROM_PTR(&sha1_obj));
    mp_store_global(MP_QSTR_use_hashlib, MP_OBJ_FROM_PTR(&use_hashlib_obj));
    MP_DYNRUNTIME_INIT_EXIT
}
