/*  crc32c_test.c - CRC-32C against published check values (the standard
    "123456789" check and the iSCSI vectors of RFC 3720 B.4), against a
    bit-at-a-time reference written here from the definition, and the
    dispatching function (SSE4.2 where the CPU has it) against the
    portable one over every length and alignment up to a few hundred
    bytes; continuing a CRC equals computing it in one go. */
#include "crc32c.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

/*  The definition, one bit at a time. */
static uint32_t
s_reference(const uint8_t *p, size_t n)
{
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = crc & 1 ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
    }
    return ~crc;
}

static void
test_check_values(void **state)
{
    (void)state;
    uint8_t zeros[32], ones[32], up[32], down[32];
    memset(zeros, 0, sizeof zeros);
    memset(ones, 0xff, sizeof ones);
    for (int i = 0; i < 32; i++) {
        up[i] = (uint8_t)i;
        down[i] = (uint8_t)(31 - i);
    }
    const struct {
        const char *what;
        const void *data;
        size_t size;
        uint32_t crc;
    } cases[] = {
        {"empty", "", 0, 0x00000000u},
        {"check", "123456789", 9, ZMESH__CRC32C_CHECK},
        {"check literal", "123456789", 9, 0xE3069283u},
        {"a", "a", 1, 0xC1D04330u},
        {"32 zeros", zeros, 32, 0x8A9136AAu},
        {"32 ones", ones, 32, 0x62A8AB43u},
        {"32 incrementing", up, 32, 0x46DD794Eu},
        {"32 decrementing", down, 32, 0x113FDB5Cu},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint32_t sw = zmesh__crc32c_sw(0, cases[i].data, cases[i].size);
        uint32_t any = zmesh__crc32c(0, cases[i].data, cases[i].size);
        uint32_t ref = s_reference(cases[i].data, cases[i].size);
        if (sw != cases[i].crc || any != cases[i].crc || ref != cases[i].crc)
            fail_msg("%s: want %08x, sw %08x, dispatch %08x, reference %08x",
                     cases[i].what, cases[i].crc, sw, any, ref);
    }
    assert_int_equal(zmesh__crc32c(0, NULL, 0), 0);
}

static void
test_implementations_agree(void **state)
{
    (void)state;
    static uint8_t buf[600];
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < sizeof buf; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buf[i] = (uint8_t)x;
    }
    printf("crc32c: hardware path %s\n",
           zmesh__crc32c_hw() ? "in use" : "not available");
    // Every alignment against every length, so the 8-byte loops, their
    // tails and unaligned loads all get exercised.
    for (size_t align = 0; align < 16; align++)
        for (size_t n = 0; n + align <= 300; n++) {
            uint32_t ref = s_reference(buf + align, n);
            uint32_t sw = zmesh__crc32c_sw(0, buf + align, n);
            uint32_t any = zmesh__crc32c(0, buf + align, n);
            if (sw != ref || any != ref)
                fail_msg("align %zu len %zu: ref %08x sw %08x dispatch %08x",
                         align, n, ref, sw, any);
        }
    assert_int_equal(zmesh__crc32c(0, buf, sizeof buf),
                     zmesh__crc32c_sw(0, buf, sizeof buf));
}

static void
test_continuation(void **state)
{
    (void)state;
    const char *text = "The quick brown fox jumps over the lazy dog, twice.";
    size_t n = strlen(text);
    uint32_t whole = zmesh__crc32c(0, text, n);
    for (size_t cut = 0; cut <= n; cut++) {
        uint32_t a = zmesh__crc32c(0, text, cut);
        assert_int_equal(zmesh__crc32c(a, text + cut, n - cut), whole);
        uint32_t b = zmesh__crc32c_sw(0, text, cut);
        assert_int_equal(zmesh__crc32c_sw(b, text + cut, n - cut), whole);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_values),
        cmocka_unit_test(test_implementations_agree),
        cmocka_unit_test(test_continuation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
