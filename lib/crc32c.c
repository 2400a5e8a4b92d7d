/*  crc32c.c - CRC-32C for the store's records. The portable path is
    slicing by 8: eight 256-entry tables, built once on first use, let one
    step fold eight input bytes with eight lookups instead of eight
    dependent steps. On x86-64 CPUs with SSE4.2 the crc32 instruction does
    the same in hardware; the choice is made once at run time, since the
    library is built for the baseline CPU. Both paths give the same bits
    (test/unit/crc32c_test.c compares them); nothing here allocates.
*/
#include "crc32c.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define S_HAVE_SSE42 1
#include <nmmintrin.h>
#else
#define S_HAVE_SSE42 0
#endif

#define S_POLY 0x82F63B78u

static uint32_t s_table[8][256];
static bool s_use_hw;
static pthread_once_t s_once = PTHREAD_ONCE_INIT;

static void
s_init(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ S_POLY : c >> 1;
        s_table[0][n] = c;
    }
    // Table k advances a byte through k further zero bytes, which is what
    // lets eight bytes be looked up independently and XORed together.
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = s_table[0][n];
        for (int k = 1; k < 8; k++) {
            c = s_table[0][c & 0xff] ^ (c >> 8);
            s_table[k][n] = c;
        }
    }
#if S_HAVE_SSE42
    __builtin_cpu_init();
    s_use_hw = __builtin_cpu_supports("sse4.2");
#endif
}

static uint32_t
s_load32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

uint32_t
zmesh__crc32c_sw(uint32_t crc, const void *data, size_t size)
{
    pthread_once(&s_once, s_init);
    const uint8_t *p = data;
    crc = ~crc;
    while (size >= 8) {
        uint32_t lo = crc ^ s_load32(p);
        uint32_t hi = s_load32(p + 4);
        crc = s_table[7][lo & 0xff] ^ s_table[6][(lo >> 8) & 0xff] ^
              s_table[5][(lo >> 16) & 0xff] ^ s_table[4][lo >> 24] ^
              s_table[3][hi & 0xff] ^ s_table[2][(hi >> 8) & 0xff] ^
              s_table[1][(hi >> 16) & 0xff] ^ s_table[0][hi >> 24];
        p += 8;
        size -= 8;
    }
    while (size--)
        crc = s_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

#if S_HAVE_SSE42
__attribute__((target("sse4.2"))) static uint32_t
s_crc_hw(uint32_t crc, const uint8_t *p, size_t size)
{
    uint64_t c = ~crc;
    while (size >= 8) {
        uint64_t word;
        memcpy(&word, p, 8); // x86 is little-endian, as the CRC expects
        c = _mm_crc32_u64(c, word);
        p += 8;
        size -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (size--)
        c32 = _mm_crc32_u8(c32, *p++);
    return ~c32;
}
#endif

uint32_t
zmesh__crc32c(uint32_t crc, const void *data, size_t size)
{
    pthread_once(&s_once, s_init);
#if S_HAVE_SSE42
    if (s_use_hw)
        return s_crc_hw(crc, data, size);
#endif
    return zmesh__crc32c_sw(crc, data, size);
}

bool
zmesh__crc32c_hw(void)
{
    pthread_once(&s_once, s_init);
    return s_use_hw;
}
