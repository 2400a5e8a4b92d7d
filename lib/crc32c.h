/*  crc32c.h - CRC-32C (Castagnoli), the checksum of every record and
    header the store writes (proto/relay-log.md#crc32c). Reflected
    polynomial 0x82F63B78, initial value and final XOR 0xFFFFFFFF, so the
    CRC of "123456789" is 0xE3069283. Talks to nothing. */
#ifndef ZMESH_CRC32C_H_INCLUDED
#define ZMESH_CRC32C_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*  The check value of the ASCII bytes "123456789". */
#define ZMESH__CRC32C_CHECK 0xE3069283u

/*  Returns the CRC-32C of `size` bytes at `data`, continuing from `crc`:
    pass 0 to start, and the previous result to go on, so
    zmesh__crc32c(zmesh__crc32c(0, a, n), b, m) is the CRC of a then b.
    `data` may be NULL when `size` is 0. Uses the SSE4.2 crc32 instruction
    when the CPU has it (checked once, at the first call), else
    zmesh__crc32c_sw. Any thread. */
uint32_t zmesh__crc32c(uint32_t crc, const void *data, size_t size);

/*  The same CRC in portable C (table-driven, slicing by 8). Exposed so the
    tests can hold the two implementations against each other. */
uint32_t zmesh__crc32c_sw(uint32_t crc, const void *data, size_t size);

/*  True when zmesh__crc32c uses the CPU's crc32 instruction. */
bool zmesh__crc32c_hw(void);

#endif
