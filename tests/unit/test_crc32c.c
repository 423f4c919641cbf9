/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of common/crc32c: published check values, the hardware path against
 * the portable one on seeded random buffers (every length class the hardware
 * loop treats differently, at every alignment), and incremental use.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/crc32c.h"
#include "tests/lib/testutil.h"

/* Long enough for several of the hardware path's 3 x 8 KiB blocks. */
#define TEST_BUF_BYTES (200 * 1024)

static void fill_random(uint8_t *p, size_t n, uint64_t *rng)
{
    for (size_t i = 0; i < n; i++) {
        p[i] = (uint8_t)tu_rand(rng);
    }
}

/* The check value of the CRC catalogue and the iSCSI vectors of RFC 3720, B.4. */
static void test_crc32c_known_vectors(void **state)
{
    (void)state;
    uint8_t buf[32];
    assert_int_equal(crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(crc32c_portable(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(crc32c(0, NULL, 0), 0u);
    assert_int_equal(crc32c_portable(0, "", 0), 0u);

    memset(buf, 0, sizeof(buf));
    assert_int_equal(crc32c(0, buf, sizeof(buf)), 0x8A9136AAu);
    assert_int_equal(crc32c_portable(0, buf, sizeof(buf)), 0x8A9136AAu);
    memset(buf, 0xff, sizeof(buf));
    assert_int_equal(crc32c(0, buf, sizeof(buf)), 0x62A8AB43u);
    assert_int_equal(crc32c_portable(0, buf, sizeof(buf)), 0x62A8AB43u);
    for (int i = 0; i < 32; i++) {
        buf[i] = (uint8_t)i;
    }
    assert_int_equal(crc32c(0, buf, sizeof(buf)), 0x46DD794Eu);
    assert_int_equal(crc32c_portable(0, buf, sizeof(buf)), 0x46DD794Eu);
    for (int i = 0; i < 32; i++) {
        buf[i] = (uint8_t)(31 - i);
    }
    assert_int_equal(crc32c(0, buf, sizeof(buf)), 0x113FDB5Cu);
    assert_int_equal(crc32c_portable(0, buf, sizeof(buf)), 0x113FDB5Cu);
}

static void test_crc32c_hw_flag_is_boolean(void **state)
{
    (void)state;
    int hw = crc32c_hw_available();
    assert_true(hw == 0 || hw == 1);
    /* Stable: the choice is made once. */
    assert_int_equal(crc32c_hw_available(), hw);
}

/* Lengths at and around every boundary of the hardware loop: the 8-byte step,
 * the three 256-byte blocks (768), the three 8 KiB blocks (24576). */
static const size_t edge_lengths[] = {
    0,   1,   7,    8,    9,    15,   16,   63,    64,    255,   256,   257,   767,
    768, 769, 1535, 1536, 1537, 8191, 8192, 24575, 24576, 24577, 49152, 49160, 100003,
};

static void test_crc32c_hw_matches_portable_at_edges(void **state)
{
    (void)state;
    uint64_t rng = tu_seed("test_crc32c_hw_matches_portable_at_edges");
    uint8_t *buf = malloc(TEST_BUF_BYTES + 8);
    assert_non_null(buf);
    fill_random(buf, TEST_BUF_BYTES + 8, &rng);
    for (size_t i = 0; i < sizeof(edge_lengths) / sizeof(edge_lengths[0]); i++) {
        for (size_t align = 0; align < 8; align++) {
            size_t len = edge_lengths[i];
            uint32_t seed_crc = (uint32_t)tu_rand(&rng);
            assert_int_equal(crc32c(seed_crc, buf + align, len),
                             crc32c_portable(seed_crc, buf + align, len));
        }
    }
    free(buf);
}

static void test_crc32c_hw_matches_portable_random(void **state)
{
    (void)state;
    uint64_t rng = tu_seed("test_crc32c_hw_matches_portable_random");
    uint8_t *buf = malloc(TEST_BUF_BYTES);
    assert_non_null(buf);
    for (int round = 0; round < 2000; round++) {
        /* Mostly short buffers, now and then a long one. */
        size_t max = (round % 16 == 0) ? TEST_BUF_BYTES : 2048;
        size_t len = (size_t)(tu_rand(&rng) % max);
        size_t off = (size_t)(tu_rand(&rng) % (TEST_BUF_BYTES - len + 1));
        fill_random(buf + off, len, &rng);
        uint32_t seed_crc = (round % 2 == 0) ? 0 : (uint32_t)tu_rand(&rng);
        uint32_t hw = crc32c(seed_crc, buf + off, len);
        uint32_t sw = crc32c_portable(seed_crc, buf + off, len);
        if (hw != sw) {
            fail_msg("round %d len %zu off %zu: crc32c %08x portable %08x", round, len, off, hw,
                     sw);
        }
    }
    free(buf);
}

static void test_crc32c_incremental_equals_one_shot(void **state)
{
    (void)state;
    uint64_t rng = tu_seed("test_crc32c_incremental_equals_one_shot");
    uint8_t *buf = malloc(TEST_BUF_BYTES);
    assert_non_null(buf);
    fill_random(buf, TEST_BUF_BYTES, &rng);
    for (int round = 0; round < 300; round++) {
        size_t len = (size_t)(tu_rand(&rng) % TEST_BUF_BYTES);
        uint32_t whole = crc32c(0, buf, len);
        assert_int_equal(crc32c_portable(0, buf, len), whole);
        /* Cut into a random number of random pieces. */
        uint32_t crc = 0;
        uint32_t crc_sw = 0;
        size_t pos = 0;
        while (pos < len) {
            size_t piece = 1 + (size_t)(tu_rand(&rng) % (len - pos));
            if (tu_rand(&rng) % 4 == 0) {
                piece = SIZE_MAX;
            }
            piece = piece < len - pos ? piece : len - pos;
            crc = crc32c(crc, buf + pos, piece);
            crc_sw = crc32c_portable(crc_sw, buf + pos, piece);
            pos += piece;
        }
        assert_int_equal(crc, whole);
        assert_int_equal(crc_sw, whole);
    }
    free(buf);
}

/* A flipped bit anywhere changes the CRC (CRC-32C detects every 1-bit error). */
static void test_crc32c_detects_single_bit_flips(void **state)
{
    (void)state;
    uint64_t rng = tu_seed("test_crc32c_detects_single_bit_flips");
    uint8_t buf[1000];
    fill_random(buf, sizeof(buf), &rng);
    uint32_t good = crc32c(0, buf, sizeof(buf));
    for (size_t bit = 0; bit < sizeof(buf) * 8; bit++) {
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_not_equal(crc32c(0, buf, sizeof(buf)), good);
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    assert_int_equal(crc32c(0, buf, sizeof(buf)), good);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_known_vectors),
        cmocka_unit_test(test_crc32c_hw_flag_is_boolean),
        cmocka_unit_test(test_crc32c_hw_matches_portable_at_edges),
        cmocka_unit_test(test_crc32c_hw_matches_portable_random),
        cmocka_unit_test(test_crc32c_incremental_equals_one_shot),
        cmocka_unit_test(test_crc32c_detects_single_bit_flips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
