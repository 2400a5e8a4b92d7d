/*  test_payload.h - payloads of a chosen size for the unit tests that
    need many distinct, well-formed events (retain_test, outbox_test).
    Include after <cmocka.h>. */
#ifndef ZMESH_TEST_PAYLOAD_H_INCLUDED
#define ZMESH_TEST_PAYLOAD_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

/*  A msgpack object of exactly `size` bytes (>= 1) whose contents depend on
    `tag`: a fixint, a bin 8 or a bin 16. */
static inline void
s_payload(uint8_t *out, size_t size, uint64_t tag)
{
    assert_true(size >= 1 && size <= 3 + 65535);
    size_t head;
    if (size == 1) {
        out[0] = (uint8_t)(tag & 0x7f);
        return;
    }
    if (size - 2 <= 255) {
        out[0] = 0xc4;
        out[1] = (uint8_t)(size - 2);
        head = 2;
    } else {
        out[0] = 0xc5;
        out[1] = (uint8_t)((size - 3) >> 8);
        out[2] = (uint8_t)(size - 3);
        head = 3;
    }
    for (size_t i = head; i < size; i++)
        out[i] = (uint8_t)(tag * 131 + i * 7 + 1);
}

#endif
