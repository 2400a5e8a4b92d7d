/*  frame_fuzz.c - libFuzzer target for the data-plane decoders,
    zmesh__frame_decode, zmesh__batch_decode (with zmesh__batch_next) and
    zmesh__msgpack_check, on arbitrary bytes. Beyond "no crash, no leak, no
    hang" it checks that a decoded frame lies inside its input and
    re-encodes to a frame that decodes to the same values; that the batch
    decoder takes every single event's frame the same way, and walks a
    batch to exactly left + 1 events with consecutive sequences and
    well-formed payloads back to back up to the end, which re-encode to a
    batch that decodes to the same events; and that whatever the checker
    accepts, msgpack-c (after an independent walk here has found where the
    object ends and how deep it nests) also unpacks. Without libFuzzer,
    replay_main.c runs it over corpus/frame. */
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

static bool
s_same_event(const zmesh__frame_t *a, const zmesh__frame_t *b)
{
    return a->topic_size == b->topic_size &&
           memcmp(a->topic, b->topic, a->topic_size) == 0 &&
           memcmp(a->publisher, b->publisher, ZMESH__ID_SIZE) == 0 &&
           a->sequence == b->sequence && a->timestamp_us == b->timestamp_us &&
           a->flags == b->flags && a->payload_size == b->payload_size &&
           memcmp(a->payload, b->payload, a->payload_size) == 0;
}

/*  Walks a batch that zmesh__batch_decode took from data[0..size) to its
    end into `events`, checking every event against the first; returns
    how many there were. */
static size_t
s_walk_batch(zmesh__batch_t *b, const uint8_t *data, size_t size,
             zmesh__frame_t *events)
{
    const uint8_t *end = data + size;
    const zmesh__frame_t first = b->frame;
    uint32_t left = b->left;
    CHECK(left < ZMESH__BATCH_MAX);
    CHECK(b->end == end);
    CHECK(first.topic == (const char *)data);
    CHECK(first.topic_size >= 1 && first.topic_size <= ZMESH_TOPIC_MAX);
    CHECK(first.topic[first.topic_size] == '\0');
    CHECK(memchr(first.topic, 0, first.topic_size) == NULL);
    CHECK(first.sequence >= 1);
    // The last event's sequence does not wrap.
    CHECK(first.sequence + left >= first.sequence);
    CHECK(!(first.flags & ZMESH__FRAME_BATCH));
    const uint8_t *at = first.payload; // where the next payload starts
    CHECK(at > (const uint8_t *)first.topic + first.topic_size + 1 && at < end);
    size_t n = 0;
    do {
        const zmesh__frame_t *f = &b->frame;
        CHECK(b->left == left - n);
        CHECK(f->topic == first.topic && f->topic_size == first.topic_size);
        CHECK(memcmp(f->publisher, first.publisher, ZMESH__ID_SIZE) == 0);
        CHECK(f->timestamp_us == first.timestamp_us);
        CHECK(f->flags == first.flags);
        CHECK(f->sequence == first.sequence + n);
        const uint8_t *p = f->payload;
        CHECK(p == at && f->payload_size >= 1 &&
              f->payload_size <= (size_t)(end - p));
        CHECK(zmesh__msgpack_check(p, f->payload_size) == 0);
        s_check_payload(p, f->payload_size);
        events[n++] = *f;
        at = p + f->payload_size;
    } while (n <= left && zmesh__batch_next(b));
    CHECK(n == (size_t)left + 1);
    CHECK(at == end);
    CHECK(b->left == 0 && !zmesh__batch_next(b));
    return n;
}

/*  Every frame the single-event decoder takes, the batch decoder takes as
    one event; a batch it takes walks to good events, and re-encoded as a
    publisher would (a batch header and the payloads, or a plain frame for
    one event) decodes to the same events again. */
static void
s_check_batch(const uint8_t *data, size_t size)
{
    static zmesh__frame_t events[2][ZMESH__BATCH_MAX];
    zmesh__frame_t single;
    bool is_single = zmesh__frame_decode(data, size, &single) == 0;
    zmesh__batch_t b;
    if (zmesh__batch_decode(data, size, &b) != 0) {
        CHECK(!is_single);
        return;
    }
    if (is_single)
        CHECK(b.left == 0 && s_same_event(&b.frame, &single));
    size_t n = s_walk_batch(&b, data, size, events[0]);
    CHECK(n == 1 || !is_single); // more than one is never a single frame

    // Flag bits above 0x7f are dropped by the decoder, so that any decoded
    // event can be written again (a repair keeps a batched event so).
    const zmesh__frame_t *f = &events[0][0];
    CHECK(f->flags <= 0x7f && !(f->flags & ZMESH__FRAME_BATCH));
    unsigned flags = f->flags;
    size_t cap = size + ZMESH__FRAME_OVERHEAD;
    uint8_t *out = malloc(cap);
    CHECK(out);
    size_t out_size;
    if (n == 1) {
        int rc = zmesh__frame_encode_flags(
            f->topic, f->topic_size, f->publisher, f->sequence, f->timestamp_us,
            flags, f->payload, f->payload_size, out, cap);
        CHECK(rc > 0);
        out_size = (size_t)rc;
    } else {
        size_t head = zmesh__batch_head_size(f->topic_size, f->sequence,
                                             f->timestamp_us, n);
        CHECK(zmesh__batch_head_encode(f->topic, f->topic_size, f->publisher,
                                       f->sequence, f->timestamp_us, flags, n,
                                       out, head - 1) == ZMESH_ETOOBIG);
        int rc = zmesh__batch_head_encode(f->topic, f->topic_size, f->publisher,
                                          f->sequence, f->timestamp_us, flags,
                                          n, out, cap);
        CHECK(rc > 0 && (size_t)rc == head);
        out_size = head;
        for (size_t i = 0; i < n; i++) {
            CHECK(events[0][i].payload_size <= cap - out_size);
            memcpy(out + out_size, events[0][i].payload,
                   events[0][i].payload_size);
            out_size += events[0][i].payload_size;
        }
    }
    // The encoders' output is canonical: it can never be longer.
    CHECK(out_size <= size);
    zmesh__batch_t again;
    CHECK(zmesh__batch_decode(out, out_size, &again) == 0);
    CHECK(s_walk_batch(&again, out, out_size, events[1]) == n);
    for (size_t i = 0; i < n; i++) {
        events[0][i].flags = flags;
        CHECK(s_same_event(&events[0][i], &events[1][i]));
    }
    free(out);
}

/*  The envelope of a request or reply on the data plane: what decodes
    stays inside the input, holds one well-formed payload, and is written
    again to the same meaning. */
static void
s_check_rr(const uint8_t *data, size_t size)
{
    for (int request = 0; request < 2; request++) {
        zmesh__rr_t rr;
        if (zmesh__rr_decode(data, size, request, &rr) != 0)
            continue;
        CHECK(rr.req >= 1);
        CHECK((const uint8_t *)rr.payload >= data &&
              (const uint8_t *)rr.payload + rr.payload_size == data + size);
        CHECK(zmesh__msgpack_check(rr.payload, rr.payload_size) == 0);
        if (request) {
            CHECK(rr.topic_size >= 1 && rr.topic_size <= ZMESH_TOPIC_MAX);
            CHECK(memchr(rr.topic, 0, rr.topic_size) == NULL);
        }
        size_t head =
            zmesh__rr_head_size(rr.req, request ? rr.topic_size : 0, rr.status);
        uint8_t *out = malloc(head + rr.payload_size);
        CHECK(out);
        CHECK(zmesh__rr_head_encode(rr.req, rr.topic,
                                    request ? rr.topic_size : 0, rr.status,
                                    out) == head);
        memcpy(out + head, rr.payload, rr.payload_size);
        zmesh__rr_t again;
        CHECK(zmesh__rr_decode(out, head + rr.payload_size, request, &again) ==
              0);
        CHECK(again.req == rr.req && again.status == rr.status &&
              again.topic_size == rr.topic_size &&
              again.payload_size == rr.payload_size);
        CHECK(!request || memcmp(again.topic, rr.topic, rr.topic_size) == 0);
        free(out);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    s_check_payload(data, size);
    s_check_batch(data, size);
    s_check_rr(data, size);

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
