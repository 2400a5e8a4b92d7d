/*  frame_fuzz.c - libFuzzer target for the data-plane decoders,
    zmesh__frame_decode and zmesh__msgpack_check, on arbitrary bytes. Beyond
    "no crash, no leak, no hang" it checks that a decoded frame lies inside
    its input and re-encodes to a frame that decodes to the same values,
    and that whatever the checker accepts, msgpack-c (after an independent
    walk here has found where the object ends and how deep it nests) also
    unpacks. Without libFuzzer, replay_main.c runs it over corpus/frame. */
#include "codec.h"

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond))                                                           \
            abort();                                                           \
    } while (0)

static uint64_t
s_be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/*  A second, deliberately simple walk over one object that the codec has
    already accepted: returns the bytes it takes and sets *depth to its
    nesting (containers count, empty ones too). Trusts the lengths, which
    is safe only because the codec checked them; the CHECKs catch a codec
    that accepted something this walk cannot finish. Recursion is bounded
    by the codec's depth limit of 64. */
static size_t
s_walk(const uint8_t *p, size_t left, int *depth)
{
    CHECK(left >= 1);
    uint8_t c = p[0];
    size_t head = 1, body = 0;
    uint64_t items = 0;
    *depth = 0;
    if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3)
        return 1;
    if (c >= 0x80 && c <= 0x9f)
        items = (uint64_t)(c & 0x0f) * (c <= 0x8f ? 2 : 1);
    else if (c >= 0xa0 && c <= 0xbf)
        body = c & 0x1f;
    else if (c >= 0xc4 && c <= 0xc6) {
        head = 1 + ((size_t)1 << (c - 0xc4));
        CHECK(left >= head);
        body = s_be(p + 1, head - 1);
    } else if (c >= 0xc7 && c <= 0xc9) {
        head = 2 + ((size_t)1 << (c - 0xc7));
        CHECK(left >= head);
        body = s_be(p + 1, head - 2);
    } else if (c == 0xca || c == 0xcb)
        body = c == 0xca ? 4 : 8;
    else if (c >= 0xcc && c <= 0xcf)
        body = (size_t)1 << (c - 0xcc);
    else if (c >= 0xd0 && c <= 0xd3)
        body = (size_t)1 << (c - 0xd0);
    else if (c >= 0xd4 && c <= 0xd8) {
        head = 2;
        body = (size_t)1 << (c - 0xd4);
    } else if (c >= 0xd9 && c <= 0xdb) {
        head = 1 + ((size_t)1 << (c - 0xd9));
        CHECK(left >= head);
        body = s_be(p + 1, head - 1);
    } else if (c >= 0xdc && c <= 0xdf) {
        head = c == 0xdc || c == 0xde ? 3 : 5;
        CHECK(left >= head);
        items = s_be(p + 1, head - 1) * (c >= 0xde ? 2 : 1);
    } else
        CHECK(0); // 0xc1
    bool container = (c >= 0x80 && c <= 0x9f) || (c >= 0xdc && c <= 0xdf);
    CHECK(left >= head && left - head >= body);
    size_t used = head + body;
    if (!container)
        return used;
    *depth = 1;
    for (uint64_t i = 0; i < items; i++) {
        int d;
        used += s_walk(p + used, left - used, &d);
        if (d + 1 > *depth)
            *depth = d + 1;
    }
    return used;
}

static void
s_check_payload(const uint8_t *data, size_t size)
{
    if (zmesh__msgpack_check(data, size) != 0)
        return;
    int depth;
    CHECK(s_walk(data, size, &depth) == size);
    CHECK(depth <= 64);
    // msgpack-c's unpacker keeps 32 open containers at most; below that it
    // must agree. The codec bounded every count by the input's size, so
    // its allocations stay small.
    if (depth > 32)
        return;
    msgpack_zone zone;
    CHECK(msgpack_zone_init(&zone, 1024));
    msgpack_object obj;
    size_t offset = 0;
    CHECK(msgpack_unpack((const char *)data, size, &offset, &zone, &obj) ==
          MSGPACK_UNPACK_SUCCESS);
    msgpack_zone_destroy(&zone);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    s_check_payload(data, size);

    zmesh__frame_t frame;
    if (zmesh__frame_decode(data, size, &frame) != 0)
        return 0;
    const uint8_t *end = data + size;
    CHECK(frame.topic == (const char *)data);
    CHECK(frame.topic_size >= 1 && frame.topic_size <= ZMESH_TOPIC_MAX);
    CHECK(frame.topic[frame.topic_size] == '\0');
    CHECK(memchr(frame.topic, 0, frame.topic_size) == NULL);
    CHECK(frame.sequence >= 1);
    const uint8_t *payload = frame.payload;
    CHECK(payload > data && payload + frame.payload_size == end);
    CHECK(zmesh__msgpack_check(payload, frame.payload_size) == 0);

    size_t cap = size + ZMESH__FRAME_OVERHEAD;
    uint8_t *out = malloc(cap);
    CHECK(out);
    int n = zmesh__frame_encode(frame.topic, frame.topic_size, frame.publisher,
                                frame.sequence, frame.timestamp_us,
                                frame.payload, frame.payload_size, out, cap);
    CHECK(n > 0 && (size_t)n <= cap);
    zmesh__frame_t again;
    CHECK(zmesh__frame_decode(out, (size_t)n, &again) == 0);
    CHECK(again.topic_size == frame.topic_size &&
          memcmp(again.topic, frame.topic, frame.topic_size) == 0);
    CHECK(memcmp(again.publisher, frame.publisher, ZMESH__ID_SIZE) == 0);
    CHECK(again.sequence == frame.sequence);
    CHECK(again.timestamp_us == frame.timestamp_us);
    CHECK(again.payload_size == frame.payload_size &&
          memcmp(again.payload, frame.payload, frame.payload_size) == 0);
    // The encoder's output is canonical: it can never be longer.
    CHECK((size_t)n <= size);
    free(out);
    return 0;
}
