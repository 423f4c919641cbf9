/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as Kafka's RecordBatch
 * v2 uses it: initial value ~0, final xor ~0, bits processed least significant
 * first. crc32c(0, "123456789", 9) == 0xE3069283.
 *
 * Two implementations that must agree bit for bit:
 *
 *   - Hardware (x86-64 with SSE4.2): the crc32 instruction. It takes 3 cycles
 *     of latency but can start one every cycle, so a single dependent chain
 *     reaches only a third of its throughput. Long buffers are therefore cut
 *     into three equal blocks whose CRCs run as three independent chains, and
 *     the three results are joined afterwards (see "Combining" below).
 *   - Portable: slicing-by-8, eight 256-entry tables that fold eight bytes per
 *     step.
 *
 * Combining. Inside this file a CRC is kept as the raw 32-bit register, without
 * the initial and final inversion. The register update is linear over GF(2):
 * running bytes B from register r gives Z_n(r) ^ run(B, 0), where n = |B| and
 * Z_n is "feed n zero bytes", a fixed 32x32 bit matrix. So for A || B || C with
 * |B| = |C| = n:
 *
 *     crc(A||B||C, r) = Z_n(Z_n(crc(A, r)) ^ crc(B, 0)) ^ crc(C, 0)
 *
 * Z_n is applied through four 256-entry tables, one per byte of the register
 * (Z_n(r) = T0[r & 0xff] ^ T1[(r >> 8) & 0xff] ^ ...), built once for each of
 * the two block sizes used.
 *
 * Tables are computed on first use into static storage, once, under
 * pthread_once; afterwards they are only read, so any thread may use them.
 */
#include "common/crc32c.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "common/assert.h"

#if defined(__x86_64__)
#include <nmmintrin.h>
#define CRC32C_HAVE_X86 1
#else
#define CRC32C_HAVE_X86 0
#endif

/* The reflected Castagnoli polynomial. */
#define CRC32C_POLY 0x82F63B78u

/*
 * Block sizes of the three-chain hardware loop. The long block amortises the
 * two combine steps (8 table loads each) over 24 KiB; the short one lets
 * buffers from about 1 KiB on (a typical small batch) still use three chains.
 * Both must be multiples of 8 (the loop steps 8 bytes per chain).
 */
#define CRC32C_LONG_BLOCK  8192
#define CRC32C_SHORT_BLOCK 256
_Static_assert(CRC32C_LONG_BLOCK % 8 == 0, "blocks are walked 8 bytes at a time");
_Static_assert(CRC32C_SHORT_BLOCK % 8 == 0, "blocks are walked 8 bytes at a time");
_Static_assert(CRC32C_SHORT_BLOCK < CRC32C_LONG_BLOCK, "short block is the fallback");

struct crc32c_tables {
    uint32_t slice[8][256];
    uint32_t zeros_long[4][256];
    uint32_t zeros_short[4][256];
    bool hw;
};

static struct crc32c_tables tables;
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

/* ----------------------------------------------------------- table setup */

/* Feeds n zero bytes to register r a byte at a time: slow (a fraction of a
 * millisecond for the long block), used only to build the zero operators. */
static uint32_t zeros_slow(uint32_t r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        r = (r >> 8) ^ tables.slice[0][r & 0xff];
    }
    return r;
}

/* Builds the four tables of Z_n. Z_n is linear, so the image of any byte
 * value is the xor of the images of its set bits. */
static void zeros_build(uint32_t out[4][256], size_t n)
{
    uint32_t basis[32];
    for (int bit = 0; bit < 32; bit++) {
        basis[bit] = zeros_slow(1u << bit, n);
    }
    for (int k = 0; k < 4; k++) {
        for (uint32_t v = 0; v < 256; v++) {
            uint32_t img = 0;
            for (int b = 0; b < 8; b++) {
                if (v & (1u << b)) {
                    img ^= basis[k * 8 + b];
                }
            }
            out[k][v] = img;
        }
    }
}

static void tables_init(void)
{
    for (uint32_t v = 0; v < 256; v++) {
        uint32_t r = v;
        for (int b = 0; b < 8; b++) {
            r = (r >> 1) ^ (CRC32C_POLY & (0u - (r & 1u)));
        }
        tables.slice[0][v] = r;
    }
    /* slice[k][v]: the register after v is followed by k zero bytes. */
    for (int k = 1; k < 8; k++) {
        for (uint32_t v = 0; v < 256; v++) {
            uint32_t prev = tables.slice[k - 1][v];
            tables.slice[k][v] = (prev >> 8) ^ tables.slice[0][prev & 0xff];
        }
    }
    /* After slice[0]: zeros_slow walks it. */
    zeros_build(tables.zeros_long, CRC32C_LONG_BLOCK);
    zeros_build(tables.zeros_short, CRC32C_SHORT_BLOCK);
#if CRC32C_HAVE_X86
    __builtin_cpu_init();
    tables.hw = __builtin_cpu_supports("sse4.2");
#else
    tables.hw = false;
#endif
}

static const struct crc32c_tables *tables_get(void)
{
    int rc = pthread_once(&tables_once, tables_init);
    /* pthread_once fails only for an invalid once control. */
    SL_ASSERT(rc == 0);
    return &tables;
}

/* ------------------------------------------------------------ portable */

static inline uint32_t le32_load(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t crc_slice8(const struct crc32c_tables *t, uint32_t r, const uint8_t *p, size_t len)
{
    while (len >= 8) {
        uint32_t lo = r ^ le32_load(p);
        uint32_t hi = le32_load(p + 4);
        r = t->slice[7][lo & 0xff] ^ t->slice[6][(lo >> 8) & 0xff] ^
            t->slice[5][(lo >> 16) & 0xff] ^ t->slice[4][lo >> 24] ^ t->slice[3][hi & 0xff] ^
            t->slice[2][(hi >> 8) & 0xff] ^ t->slice[1][(hi >> 16) & 0xff] ^ t->slice[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len > 0) {
        r = (r >> 8) ^ t->slice[0][(r ^ *p) & 0xff];
        p++;
        len--;
    }
    return r;
}

uint32_t crc32c_portable(uint32_t crc, const void *data, size_t len)
{
    const struct crc32c_tables *t = tables_get();
    return ~crc_slice8(t, ~crc, data, len);
}

/* ------------------------------------------------------------ hardware */

#if CRC32C_HAVE_X86

static inline uint32_t zeros_apply(const uint32_t z[4][256], uint32_t r)
{
    return z[0][r & 0xff] ^ z[1][(r >> 8) & 0xff] ^ z[2][(r >> 16) & 0xff] ^ z[3][r >> 24];
}

static inline uint64_t le64_load(const uint8_t *p)
{
    /* memcpy: the pointer may be unaligned; x86 is little-endian. */
    uint64_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

/* Three chains over three adjacent blocks of `block` bytes each; returns the
 * register after all 3 * block bytes. */
__attribute__((target("sse4.2"))) static inline uint32_t
crc_hw_3way(const uint32_t z[4][256], uint32_t r, const uint8_t *p, size_t block)
{
    uint64_t c0 = r;
    uint64_t c1 = 0;
    uint64_t c2 = 0;
    const uint8_t *end = p + block;
    do {
        c0 = _mm_crc32_u64(c0, le64_load(p));
        c1 = _mm_crc32_u64(c1, le64_load(p + block));
        c2 = _mm_crc32_u64(c2, le64_load(p + 2 * block));
        p += 8;
    } while (p < end);
    uint32_t joined = zeros_apply(z, (uint32_t)c0) ^ (uint32_t)c1;
    return zeros_apply(z, joined) ^ (uint32_t)c2;
}

__attribute__((target("sse4.2"))) static uint32_t crc_hw(const struct crc32c_tables *t, uint32_t r,
                                                         const uint8_t *p, size_t len)
{
    /* Aligning the chains' loads is cheap and avoids split-line loads. */
    while (len > 0 && ((uintptr_t)p & 7) != 0) {
        r = _mm_crc32_u8(r, *p);
        p++;
        len--;
    }
    while (len >= 3 * (size_t)CRC32C_LONG_BLOCK) {
        r = crc_hw_3way(t->zeros_long, r, p, CRC32C_LONG_BLOCK);
        p += 3 * CRC32C_LONG_BLOCK;
        len -= 3 * CRC32C_LONG_BLOCK;
    }
    while (len >= 3 * (size_t)CRC32C_SHORT_BLOCK) {
        r = crc_hw_3way(t->zeros_short, r, p, CRC32C_SHORT_BLOCK);
        p += 3 * CRC32C_SHORT_BLOCK;
        len -= 3 * CRC32C_SHORT_BLOCK;
    }
    uint64_t c = r;
    while (len >= 8) {
        c = _mm_crc32_u64(c, le64_load(p));
        p += 8;
        len -= 8;
    }
    r = (uint32_t)c;
    while (len > 0) {
        r = _mm_crc32_u8(r, *p);
        p++;
        len--;
    }
    return r;
}

#endif

/* ---------------------------------------------------------------- public */

uint32_t crc32c(uint32_t crc, const void *data, size_t len)
{
    const struct crc32c_tables *t = tables_get();
#if CRC32C_HAVE_X86
    if (t->hw) {
        return ~crc_hw(t, ~crc, data, len);
    }
#endif
    return ~crc_slice8(t, ~crc, data, len);
}

int crc32c_hw_available(void)
{
    return tables_get()->hw ? 1 : 0;
}
