/*  outbox_test.c - a publisher's pending batch against a real XPUB on
    loopback (an ephemeral port) and a SUB in the same process: a burst
    goes out as one batch frame, a batch of one as a plain frame; a topic
    change, max_events and the payload byte limit each send the batch
    first; which events zmesh__outbox_wants batches; the control thread's
    side (zmesh__outbox_expire and the eventfd that wakes it); and an
    application thread publishing in bursts while a control thread sends
    what it leaves behind, every event received once and in order. Every
    event sent is also checked in the retransmit buffer (retain), served
    as the frame it would have been on its own. The XPUB's sends are
    watched (zmq_msg_send is wrapped, below): two threads must never be in
    one at once, and under -fsanitize=thread every send must be ordered
    after the one before (outbox.h's rule for the shared XPUB). */
#define _GNU_SOURCE /* RTLD_NEXT on C libraries older than POSIX 2024 */

#include "clock.h"
#include "codec.h"
#include "outbox.h"
#include "retain.h"
#include "zmesh.h"

#include <dlfcn.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "test_payload.h"
#include <zmq.h>

static const uint8_t s_id[16] = {0x0b, 0x0c, 1, 2,  3,  4,  5,  6,
                                 7,    8,    9, 10, 11, 12, 13, 14};

/*  zmq_msg_send, wrapped: the outbox (linked statically into this test)
    and the test's own sends go through it. On the watched socket it
    counts overlapping sends, which the XPUB's rule forbids, and writes a
    plain variable, so that ThreadSanitizer reports two sends from
    different threads that no lock or atomic orders. */
static int (*s_real_send)(zmq_msg_t *, void *, int);
static void *s_watched;
static atomic_int s_in_send;
static atomic_int s_overlaps;
static unsigned long s_sends;           /* plain on purpose */
static _Thread_local bool s_is_control; /* set by the control thread */
static atomic_ulong s_control_sends;

int
zmq_msg_send(zmq_msg_t *msg, void *socket, int flags)
{
    if (socket != s_watched)
        return s_real_send(msg, socket, flags);
    // Relaxed: an order made here would hide from ThreadSanitizer the
    // very lack of order it is to find.
    if (atomic_fetch_add_explicit(&s_in_send, 1, memory_order_relaxed) != 0)
        atomic_fetch_add_explicit(&s_overlaps, 1, memory_order_relaxed);
    s_sends++;
    if (s_is_control)
        atomic_fetch_add_explicit(&s_control_sends, 1, memory_order_relaxed);
    int rc = s_real_send(msg, socket, flags);
    atomic_fetch_sub_explicit(&s_in_send, 1, memory_order_relaxed);
    return rc;
}

/*  The largest payload the outbox batches (outbox.c's S_EVENT_BYTES_MAX). */
#define S_EVENT_MAX (ZMESH__OUTBOX_BYTES / 4)

/*  Events the tests keep track of, at most. */
#define S_EVENTS_MAX 6000

/*  The payload size the tests give event `seq` unless they say otherwise. */
static size_t
s_size(uint64_t seq)
{
    return 1 + (size_t)(seq * 13 % 60);
}

/*  One event as the SUB received it (or as the publisher sent it). */
typedef struct {
    char topic[32];
    uint64_t seq;
    int64_t timestamp_us;
    size_t size;
} s_event_t;

/*  The events received, in order, and the messages they came in. */
typedef struct {
    size_t count;
    size_t messages;
    s_event_t events[S_EVENTS_MAX];
} s_got_t;

typedef struct {
    void *ctx;
    void *xpub;
    void *sub;
    zmesh__retain_t *retain;
    zmesh__outbox_t *outbox;
    s_got_t got;
} s_net_t;

static int
s_setup(void **state)
{
    if (!s_real_send) {
        void *real = dlsym(RTLD_NEXT, "zmq_msg_send");
        assert_non_null(real);
        memcpy(&s_real_send, &real, sizeof s_real_send);
    }
    s_net_t *net = calloc(1, sizeof *net);
    assert_non_null(net);
    net->ctx = zmq_ctx_new();
    assert_non_null(net->ctx);
    net->xpub = zmq_socket(net->ctx, ZMQ_XPUB);
    net->sub = zmq_socket(net->ctx, ZMQ_SUB);
    assert_non_null(net->xpub);
    assert_non_null(net->sub);
    // No high-water marks: nothing the tests send may be dropped.
    int zero = 0, timeout = 5000;
    assert_int_equal(zmq_setsockopt(net->xpub, ZMQ_SNDHWM, &zero, sizeof zero),
                     0);
    assert_int_equal(zmq_setsockopt(net->xpub, ZMQ_LINGER, &zero, sizeof zero),
                     0);
    assert_int_equal(zmq_setsockopt(net->sub, ZMQ_RCVHWM, &zero, sizeof zero),
                     0);
    assert_int_equal(zmq_setsockopt(net->sub, ZMQ_LINGER, &zero, sizeof zero),
                     0);
    assert_int_equal(
        zmq_setsockopt(net->sub, ZMQ_RCVTIMEO, &timeout, sizeof timeout), 0);
    assert_int_equal(zmq_bind(net->xpub, "tcp://127.0.0.1:*"), 0);
    char endpoint[256];
    size_t size = sizeof endpoint;
    assert_int_equal(
        zmq_getsockopt(net->xpub, ZMQ_LAST_ENDPOINT, endpoint, &size), 0);
    assert_int_equal(zmq_setsockopt(net->sub, ZMQ_SUBSCRIBE, "", 0), 0);
    assert_int_equal(zmq_connect(net->sub, endpoint), 0);
    // The subscription reaching the XPUB says the SUB will get what is
    // sent from now on (at most 5 s).
    zmq_pollitem_t item = {net->xpub, 0, ZMQ_POLLIN, 0};
    assert_int_equal(zmq_poll(&item, 1, 5000), 1);
    uint8_t subscription[8];
    assert_int_equal(zmq_recv(net->xpub, subscription, sizeof subscription, 0),
                     1);
    assert_int_equal(subscription[0], 1);
    s_watched = net->xpub;
    s_sends = 0;
    atomic_store(&s_control_sends, 0);
    atomic_store(&s_overlaps, 0);
    assert_int_equal(zmesh__retain_new(&net->retain, 8 * 1024 * 1024), 0);
    assert_int_equal(
        zmesh__outbox_new(&net->outbox, net->xpub, net->retain, s_id), 0);
    *state = net;
    return 0;
}

static int
s_teardown(void **state)
{
    s_net_t *net = *state;
    assert_int_equal(atomic_load(&s_overlaps), 0);
    s_watched = NULL;
    zmesh__outbox_destroy(&net->outbox);
    zmesh__outbox_destroy(&net->outbox); /* a pointer to NULL is fine */
    zmesh__retain_destroy(&net->retain);
    zmq_close(net->sub);
    zmq_close(net->xpub);
    zmq_ctx_term(net->ctx);
    free(net);
    return 0;
}

/*  Adds event `seq` of `topic` (payload of `size` bytes, s_payload's for
    seq), stamped `timestamp_us`, as the application does: under the lock. */
static void
s_add(s_net_t *net, const char *topic, uint64_t seq, int64_t timestamp_us,
      size_t size)
{
    uint8_t payload[S_EVENT_MAX];
    assert_true(size <= sizeof payload);
    s_payload(payload, size, seq);
    zmesh__outbox_lock(net->outbox);
    zmesh__outbox_add(net->outbox, topic, strlen(topic), seq, timestamp_us,
                      payload, size);
    zmesh__outbox_unlock(net->outbox);
}

static void
s_flush(s_net_t *net)
{
    zmesh__outbox_lock(net->outbox);
    zmesh__outbox_flush(net->outbox);
    zmesh__outbox_unlock(net->outbox);
}

/*  Whether the SUB has a message within `ms`. */
static bool
s_readable(s_net_t *net, long ms)
{
    zmq_pollitem_t item = {net->sub, 0, ZMQ_POLLIN, 0};
    int rc = zmq_poll(&item, 1, ms);
    assert_true(rc >= 0);
    return rc == 1;
}

/*  Nothing arrives: what was sent over loopback is there well within the
    wait. */
static void
s_expect_nothing(s_net_t *net)
{
    assert_false(s_readable(net, 50));
}

/*  Receives one message (at most 5 s) and appends its events to net->got,
    checking each: the publisher, its payload (s_payload's for its seq, of
    a size that is taken from the frame), flags 0, and within a batch
    consecutive sequences and one timestamp. Returns the number of events
    in it; *batched says whether it was a batch frame. */
static size_t
s_recv(s_net_t *net, bool *batched)
{
    zmq_msg_t msg;
    assert_int_equal(zmq_msg_init(&msg), 0);
    int rc = zmq_msg_recv(&msg, net->sub, 0);
    assert_true(rc >= 0);
    const void *data = zmq_msg_data(&msg);
    size_t size = zmq_msg_size(&msg);
    zmesh__frame_t single;
    bool plain = zmesh__frame_decode(data, size, &single) == 0;
    zmesh__batch_t batch;
    assert_int_equal(zmesh__batch_decode(data, size, &batch), 0);
    // A plain frame reads as a batch of one, and a batch is never plain.
    assert_int_equal(plain, batch.left == 0);
    if (batched)
        *batched = !plain;
    size_t n = 0;
    uint64_t first = batch.frame.sequence;
    do {
        const zmesh__frame_t *f = &batch.frame;
        assert_true(net->got.count < S_EVENTS_MAX);
        s_event_t *event = &net->got.events[net->got.count++];
        assert_true(f->topic_size < sizeof event->topic);
        memcpy(event->topic, f->topic, f->topic_size);
        event->topic[f->topic_size] = '\0';
        event->seq = f->sequence;
        event->timestamp_us = f->timestamp_us;
        event->size = f->payload_size;
        assert_int_equal(f->sequence, first + n);
        assert_int_equal(f->flags, 0);
        assert_memory_equal(f->publisher, s_id, 16);
        assert_true(f->payload_size <= S_EVENT_MAX ||
                    (plain && f->payload_size <= 65538));
        uint8_t *expected = malloc(f->payload_size);
        assert_non_null(expected);
        s_payload(expected, f->payload_size, f->sequence);
        assert_memory_equal(f->payload, expected, f->payload_size);
        free(expected);
        n++;
    } while (zmesh__batch_next(&batch));
    assert_false(zmesh__batch_next(&batch));
    net->got.messages++;
    zmq_msg_close(&msg);
    return n;
}

/*  Receives a message that must hold `count` events of `topic` from seq
    `first`, stamped `timestamp_us` (the batch's first event's), each of
    s_size(seq) bytes unless `size` is not 0. */
static void
s_expect(s_net_t *net, const char *topic, uint64_t first, size_t count,
         int64_t timestamp_us, size_t size)
{
    size_t at = net->got.count;
    bool batched = false;
    assert_int_equal(s_recv(net, &batched), count);
    assert_int_equal(batched, count > 1);
    for (size_t i = 0; i < count; i++) {
        const s_event_t *event = &net->got.events[at + i];
        assert_string_equal(event->topic, topic);
        assert_int_equal(event->seq, first + i);
        assert_int_equal(event->timestamp_us, timestamp_us);
        assert_int_equal(event->size, size ? size : s_size(first + i));
    }
}

/*  The retained frames of `topic`, compared with the frames each event of
    that topic received would have been on its own. */
typedef struct {
    const s_got_t *got;
    const char *topic;
    size_t next; /* in got->events, where to look from */
    size_t taken;
    size_t bad;
} s_compare_t;

static bool
s_visit_compare(void *arg, uint64_t seq, const void *frame, size_t size)
{
    s_compare_t *cmp = arg;
    const s_event_t *event = NULL;
    while (cmp->next < cmp->got->count) {
        const s_event_t *e = &cmp->got->events[cmp->next++];
        if (strcmp(e->topic, cmp->topic) == 0) {
            event = e;
            break;
        }
    }
    cmp->taken++;
    if (!event || event->seq != seq) {
        cmp->bad++;
        return true;
    }
    size_t topic_size = strlen(cmp->topic);
    size_t expected_size = zmesh__frame_size(topic_size, event->seq,
                                             event->timestamp_us, event->size);
    uint8_t *payload = malloc(event->size);
    uint8_t *expected = malloc(expected_size);
    if (!payload || !expected) {
        cmp->bad++;
    } else {
        s_payload(payload, event->size, event->seq);
        int n = zmesh__frame_encode(cmp->topic, topic_size, s_id, event->seq,
                                    event->timestamp_us, payload, event->size,
                                    expected, expected_size);
        if (n < 0 || (size_t)n != size || memcmp(expected, frame, size) != 0)
            cmp->bad++;
    }
    free(payload);
    free(expected);
    return true;
}

// Every event of `topic` received is retained, as its own frame.
static void
s_expect_retained(s_net_t *net, const char *topic)
{
    size_t expected = 0;
    for (size_t i = 0; i < net->got.count; i++)
        expected += strcmp(net->got.events[i].topic, topic) == 0;
    s_compare_t cmp = {&net->got, topic, 0, 0, 0};
    size_t n = zmesh__retain_range(net->retain, topic, strlen(topic), 1,
                                   UINT64_MAX, NULL, s_visit_compare, &cmp);
    assert_int_equal(n, expected);
    assert_int_equal(cmp.taken, expected);
    assert_int_equal(cmp.bad, 0);
}

static void
s_stats(s_net_t *net, uint64_t batches, uint64_t batched)
{
    uint64_t b = 0, e = 0, unsent = 0;
    zmesh__outbox_stats(net->outbox, &b, &e, &unsent);
    assert_int_equal(b, batches);
    assert_int_equal(e, batched);
    assert_int_equal(unsent, 0);
}

/* ------------------------------------------------------------------------ */

// Ten events of one topic, then a flush: one message, a batch of ten.
static void
test_batch_of_ten(void **state)
{
    s_net_t *net = *state;
    assert_int_equal(zmesh__outbox_pending(net->outbox), 0);
    for (uint64_t seq = 1; seq <= 10; seq++) {
        s_add(net, "o.a", seq, 1000 + (int64_t)seq, s_size(seq));
        assert_int_equal(zmesh__outbox_pending(net->outbox), seq);
    }
    s_expect_nothing(net);
    s_flush(net);
    assert_int_equal(zmesh__outbox_pending(net->outbox), 0);
    s_expect(net, "o.a", 1, 10, 1001, 0);
    s_expect_nothing(net);
    s_stats(net, 1, 10);
    // A flush with nothing pending sends nothing.
    s_flush(net);
    // drain does what flush does, taking the lock itself.
    for (uint64_t seq = 11; seq <= 13; seq++)
        s_add(net, "o.a", seq, 2000 + (int64_t)seq, s_size(seq));
    zmesh__outbox_drain(net->outbox);
    assert_int_equal(zmesh__outbox_pending(net->outbox), 0);
    zmesh__outbox_drain(net->outbox);
    s_expect(net, "o.a", 11, 3, 2011, 0);
    s_expect_nothing(net);
    s_stats(net, 2, 13);
    s_expect_retained(net, "o.a");
}

// A batch of one goes out as the plain frame it would have been.
static void
test_batch_of_one(void **state)
{
    s_net_t *net = *state;
    s_add(net, "o.one", 7, 123456789, 40);
    assert_int_equal(zmesh__outbox_pending(net->outbox), 1);
    zmesh__outbox_drain(net->outbox);
    zmq_msg_t msg;
    assert_int_equal(zmq_msg_init(&msg), 0);
    assert_true(zmq_msg_recv(&msg, net->sub, 0) >= 0);
    zmesh__frame_t frame;
    assert_int_equal(
        zmesh__frame_decode(zmq_msg_data(&msg), zmq_msg_size(&msg), &frame), 0);
    assert_int_equal(frame.topic_size, 5);
    assert_memory_equal(frame.topic, "o.one", 5);
    assert_int_equal(frame.sequence, 7);
    assert_int_equal(frame.timestamp_us, 123456789);
    assert_int_equal(frame.flags, 0);
    assert_int_equal(frame.payload_size, 40);
    uint8_t expected[40];
    s_payload(expected, 40, 7);
    assert_memory_equal(frame.payload, expected, 40);
    // Byte for byte the frame zmesh__frame_encode makes, and the one kept.
    uint8_t encoded[256];
    int n = zmesh__frame_encode("o.one", 5, s_id, 7, 123456789, expected, 40,
                                encoded, sizeof encoded);
    assert_int_equal(n, (int)zmq_msg_size(&msg));
    assert_memory_equal(encoded, zmq_msg_data(&msg), (size_t)n);
    zmq_msg_close(&msg);
    net->got.events[0] = (s_event_t){"o.one", 7, 123456789, 40};
    net->got.count = 1;
    s_expect_retained(net, "o.one");
    // Not counted as a batch.
    s_stats(net, 0, 0);
    s_expect_nothing(net);
}

// A topic change sends the batch of the topic before first, in order.
static void
test_topic_change(void **state)
{
    s_net_t *net = *state;
    for (uint64_t seq = 1; seq <= 3; seq++)
        s_add(net, "o.a", seq, 100, s_size(seq));
    s_expect_nothing(net);
    s_add(net, "o.b", 1, 200, s_size(1));
    assert_int_equal(zmesh__outbox_pending(net->outbox), 1);
    s_expect(net, "o.a", 1, 3, 100, 0);
    s_add(net, "o.b", 2, 201, s_size(2));
    s_expect_nothing(net);
    // A topic that is the one before with a byte more, then the one before
    // again: a batch each (of one: plain frames).
    s_add(net, "o.bb", 1, 300, s_size(1));
    s_add(net, "o.b", 3, 400, s_size(3));
    s_add(net, "o.c", 1, 500, s_size(1));
    s_flush(net);
    s_expect(net, "o.b", 1, 2, 200, 0);
    s_expect(net, "o.bb", 1, 1, 300, 0);
    s_expect(net, "o.b", 3, 1, 400, 0);
    s_expect(net, "o.c", 1, 1, 500, 0);
    s_expect_nothing(net);
    s_stats(net, 2, 5);
    s_expect_retained(net, "o.a");
    s_expect_retained(net, "o.b");
    s_expect_retained(net, "o.bb");
    s_expect_retained(net, "o.c");
}

// A batch that reaches max_events goes at once.
static void
test_max_events(void **state)
{
    s_net_t *net = *state;
    zmesh__outbox_configure(net->outbox, 4, 1);
    for (uint64_t seq = 1; seq <= 3; seq++)
        s_add(net, "o.m", seq, 10, s_size(seq));
    s_expect_nothing(net);
    s_add(net, "o.m", 4, 10, s_size(4));
    assert_int_equal(zmesh__outbox_pending(net->outbox), 0);
    s_expect(net, "o.m", 1, 4, 10, 0);
    for (uint64_t seq = 5; seq <= 10; seq++)
        s_add(net, "o.m", seq, 20 + (int64_t)seq, s_size(seq));
    s_expect(net, "o.m", 5, 4, 25, 0);
    assert_int_equal(zmesh__outbox_pending(net->outbox), 2);
    s_expect_nothing(net);
    s_flush(net);
    s_expect(net, "o.m", 9, 2, 29, 0);
    s_stats(net, 3, 10);
    // Two at most: batches of two.
    zmesh__outbox_configure(net->outbox, 2, 1);
    s_add(net, "o.m", 11, 30, s_size(11));
    s_add(net, "o.m", 12, 31, s_size(12));
    assert_int_equal(zmesh__outbox_pending(net->outbox), 0);
    s_expect(net, "o.m", 11, 2, 30, 0);
    // The most a batch may hold.
    zmesh__outbox_configure(net->outbox, ZMESH__OUTBOX_EVENTS_MAX, 1);
    for (uint64_t seq = 13; seq < 13 + ZMESH__OUTBOX_EVENTS_MAX; seq++)
        s_add(net, "o.m", seq, 40, 1);
    assert_int_equal(zmesh__outbox_pending(net->outbox), 0);
    s_expect(net, "o.m", 13, ZMESH__OUTBOX_EVENTS_MAX, 40, 1);
    s_stats(net, 5, 12 + ZMESH__OUTBOX_EVENTS_MAX);
    s_expect_nothing(net);
    s_expect_retained(net, "o.m");
}

// Payload bytes over ZMESH__OUTBOX_BYTES: the batch so far goes first.
static void
test_bytes_split(void **state)
{
    s_net_t *net = *state;
    // The biggest payloads batched: four fill a batch exactly.
    for (uint64_t seq = 1; seq <= 10; seq++)
        s_add(net, "o.big", seq, 50, S_EVENT_MAX);
    s_expect(net, "o.big", 1, 4, 50, S_EVENT_MAX);
    s_expect(net, "o.big", 5, 4, 50, S_EVENT_MAX);
    assert_int_equal(zmesh__outbox_pending(net->outbox), 2);
    s_flush(net);
    s_expect(net, "o.big", 9, 2, 50, S_EVENT_MAX);
    s_stats(net, 3, 10);
    // Up to the byte: 3000 + 3 * 4096 + 1000 + 96 = 16384 is one batch...
    size_t sizes[6] = {3000, S_EVENT_MAX, S_EVENT_MAX, S_EVENT_MAX, 1000, 96};
    for (size_t i = 0; i < 6; i++)
        s_add(net, "o.big", 11 + i, 60, sizes[i]);
    s_expect_nothing(net);
    s_flush(net);
    size_t at = net->got.count;
    assert_int_equal(s_recv(net, NULL), 6);
    size_t total = 0;
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(net->got.events[at + i].seq, 11 + i);
        assert_int_equal(net->got.events[at + i].size, sizes[i]);
        total += sizes[i];
    }
    assert_int_equal(total, ZMESH__OUTBOX_BYTES);
    // ...and a byte more is two.
    sizes[5] = 97;
    for (size_t i = 0; i < 6; i++)
        s_add(net, "o.big", 17 + i, 70, sizes[i]);
    at = net->got.count;
    assert_int_equal(s_recv(net, NULL), 5);
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(net->got.events[at + i].seq, 17 + i);
        assert_int_equal(net->got.events[at + i].size, sizes[i]);
    }
    s_flush(net);
    s_expect(net, "o.big", 22, 1, 70, 97);
    s_stats(net, 5, 21);
    s_expect_nothing(net);
    s_expect_retained(net, "o.big");
}

// Which events the application batches: small ones, in a burst, with
// batching on.
static void
test_wants(void **state)
{
    s_net_t *net = *state;
    zmesh__outbox_t *o = net->outbox;
    const int64_t t = 1700000000000000;
    // The first event: nothing before it, so no burst.
    assert_false(zmesh__outbox_wants(o, 10, t));
    assert_true(zmesh__outbox_wants(o, 10, t + 3));
    assert_true(zmesh__outbox_wants(o, 10, t + 3 + ZMESH__OUTBOX_BURST_US));
    assert_true(zmesh__outbox_wants(o, 10, t + 3 + ZMESH__OUTBOX_BURST_US));
    // A pause longer than a burst's.
    int64_t now = t + 3 + 2 * ZMESH__OUTBOX_BURST_US + 1;
    assert_false(zmesh__outbox_wants(o, 10, now));
    assert_true(zmesh__outbox_wants(o, 10, ++now));
    // Too big, even in a burst (it still counts as the last publish).
    assert_false(zmesh__outbox_wants(o, S_EVENT_MAX + 1, ++now));
    assert_true(zmesh__outbox_wants(o, S_EVENT_MAX, ++now));
    assert_false(zmesh__outbox_wants(o, 1000000, ++now));
    // The wall clock going back is no burst.
    assert_false(zmesh__outbox_wants(o, 10, now - 1));
    now += 1;
    assert_true(zmesh__outbox_wants(o, 10, ++now));
    // Batching off: 0 or 1 event per batch.
    zmesh__outbox_configure(o, 1, 1);
    assert_false(zmesh__outbox_wants(o, 10, ++now));
    assert_false(zmesh__outbox_wants(o, 1, ++now));
    zmesh__outbox_configure(o, 0, 1);
    assert_false(zmesh__outbox_wants(o, 10, ++now));
    zmesh__outbox_configure(o, 2, 1);
    assert_true(zmesh__outbox_wants(o, 10, ++now));
    // Nothing was sent by any of that.
    s_expect_nothing(net);
}

// The burst's clock runs from when a publish that sent something
// returned, not from its start: sending takes time on a slow or busy
// machine, and counting it as a pause would keep a burst from ever
// batching there. Times in the past (t) against the clock the outbox
// reads when it restarts the burst's clock (now, far later).
static void
test_burst_clock_restarts_after_a_send(void **state)
{
    s_net_t *net = *state;
    zmesh__outbox_t *o = net->outbox;
    const int64_t t = 1700000000000000;
    // A batch that fills sends itself from zmesh__outbox_add.
    zmesh__outbox_configure(o, 2, 1);
    assert_false(zmesh__outbox_wants(o, 10, t));
    assert_true(zmesh__outbox_wants(o, 10, t + 1));
    s_add(net, "o.clock", 1, t + 1, 10);
    assert_true(zmesh__outbox_wants(o, 10, t + 2));
    s_add(net, "o.clock", 2, t + 2, 10);
    s_expect(net, "o.clock", 1, 2, t + 1, 10);
    // The next is measured from now: one published right after, by the
    // old clock, is no burst.
    assert_false(zmesh__outbox_wants(o, 10, t + 3));
    // Adding to a batch sends nothing and leaves the clock alone.
    assert_true(zmesh__outbox_wants(o, 10, t + 4));
    s_add(net, "o.clock", 3, t + 4, 10);
    assert_true(zmesh__outbox_wants(o, 10, t + 5));
    s_flush(net);
    s_expect(net, "o.clock", 3, 1, t + 4, 10);
    // An event sent on its own: the same.
    zmesh__outbox_sent(o);
    assert_false(zmesh__outbox_wants(o, 10, t + 6));
    int64_t later = zmesh__wall_clock_us() + 60 * 1000000;
    assert_false(zmesh__outbox_wants(o, 10, later));
    assert_true(zmesh__outbox_wants(o, 10, later + 1));
}

static bool
s_fd_readable(s_net_t *net)
{
    struct pollfd item = {zmesh__outbox_fd(net->outbox), POLLIN, 0};
    int rc = poll(&item, 1, 0);
    assert_true(rc >= 0);
    return rc == 1 && (item.revents & POLLIN);
}

// The control thread's side, with times given: a batch is sent once
// max_delay_ms old and not before; the wait until then; -1 after a look
// that found nothing opened since the one before, and then the eventfd
// to wake it when a batch is opened.
static void
test_expire(void **state)
{
    s_net_t *net = *state;
    const int delay = 5;
    zmesh__outbox_configure(net->outbox, 64, delay);
    assert_true(zmesh__outbox_fd(net->outbox) >= 0);
    // Nothing opened yet: not watching.
    assert_int_equal(
        zmesh__outbox_expire(net->outbox, zmesh__clock_ms(), false), -1);
    assert_false(s_fd_readable(net));

    // Opening a batch wakes the control thread.
    int64_t before = zmesh__clock_ms();
    for (uint64_t seq = 1; seq <= 3; seq++)
        s_add(net, "o.e", seq, 77, s_size(seq));
    int64_t after = zmesh__clock_ms();
    assert_true(s_fd_readable(net));
    // Not due yet: the wait is what remains of max_delay_ms.
    long due = zmesh__outbox_expire(net->outbox, before, true);
    assert_true(due >= delay && due <= delay + (after - before));
    assert_false(s_fd_readable(net)); /* the signal was taken */
    assert_int_equal(zmesh__outbox_pending(net->outbox), 3);
    s_expect_nothing(net);
    if (after - before == 0) {
        // One millisecond before it is due, still not.
        assert_int_equal(
            zmesh__outbox_expire(net->outbox, after + delay - 1, false), 1);
        assert_int_equal(zmesh__outbox_pending(net->outbox), 3);
    }
    // Due: sent. Nothing was opened since the last look, so it stops
    // watching.
    assert_int_equal(zmesh__outbox_expire(net->outbox, after + delay, false),
                     -1);
    assert_int_equal(zmesh__outbox_pending(net->outbox), 0);
    s_expect(net, "o.e", 1, 3, 77, 0);
    assert_false(s_fd_readable(net));
    assert_int_equal(
        zmesh__outbox_expire(net->outbox, after + 10 * delay, false), -1);

    // A batch opened while it does not watch signals again; a first look
    // that is late sends it at once, and watches one more period.
    s_add(net, "o.e", 4, 88, s_size(4));
    after = zmesh__clock_ms();
    assert_true(s_fd_readable(net));
    assert_int_equal(zmesh__outbox_expire(net->outbox, after + delay, true),
                     delay);
    s_expect(net, "o.e", 4, 1, 88, 0);
    assert_false(s_fd_readable(net));
    // While it watches, a new batch needs no signal.
    before = zmesh__clock_ms();
    s_add(net, "o.e", 5, 99, s_size(5));
    s_add(net, "o.e", 6, 99, s_size(6));
    after = zmesh__clock_ms();
    assert_false(s_fd_readable(net));
    due = zmesh__outbox_expire(net->outbox, before, false);
    assert_true(due >= delay && due <= delay + (after - before));
    s_expect_nothing(net);
    assert_int_equal(zmesh__outbox_expire(net->outbox, after + delay, false),
                     -1);
    s_expect(net, "o.e", 5, 2, 99, 0);

    // A batch the application opened and sent itself between two looks:
    // one more period of watching, then none.
    s_add(net, "o.e", 7, 111, s_size(7));
    s_add(net, "o.e", 8, 111, s_size(8));
    assert_true(s_fd_readable(net));
    zmesh__outbox_drain(net->outbox);
    s_expect(net, "o.e", 7, 2, 111, 0);
    int64_t now = zmesh__clock_ms();
    assert_int_equal(zmesh__outbox_expire(net->outbox, now, true), delay);
    assert_int_equal(zmesh__outbox_expire(net->outbox, now + delay, false), -1);
    assert_int_equal(zmesh__outbox_expire(net->outbox, now + 2 * delay, false),
                     -1);
    assert_false(s_fd_readable(net));
    s_expect_nothing(net);
    s_stats(net, 3, 7);
    s_expect_retained(net, "o.e");
}

/* ------------------------------------------------------------------------ */
/*  Two threads, as in an agent: the application publishes in bursts, as
    zmesh_agent_publish does (a batch when zmesh__outbox_wants says so,
    else drain and send on its own without the lock), and leaves its last
    batch behind; a control thread runs zmesh__outbox_expire on the real
    clock, polling the eventfd. */

typedef struct {
    s_net_t *net;
    atomic_bool done;     /* the application has published all */
    s_event_t *published; /* in publish order; the application's */
    size_t count;
    size_t alone; /* events sent on their own */
    uint64_t looks, waits;
    int failures; /* the control thread's */
} s_threads_t;

static double
s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint32_t
s_random(uint32_t *state)
{
    *state = *state * 1664525u + 1013904223u;
    return *state >> 8;
}

static void
s_publish_alone(s_threads_t *run, const char *topic, uint64_t seq,
                int64_t now_us, const uint8_t *payload, size_t size)
{
    s_net_t *net = run->net;
    // The XPUB is this thread's once no batch is pending.
    zmesh__outbox_drain(net->outbox);
    size_t topic_size = strlen(topic);
    size_t frame_size = zmesh__frame_size(topic_size, seq, now_us, size);
    zmq_msg_t msg;
    if (zmq_msg_init_size(&msg, frame_size) != 0)
        abort();
    zmesh__frame_encode(topic, topic_size, s_id, seq, now_us, payload, size,
                        zmq_msg_data(&msg), frame_size);
    zmesh__retain_add_msg(net->retain, topic, topic_size, seq, &msg);
    if (zmq_msg_send(&msg, net->xpub, 0) < 0)
        abort();
    run->alone++;
}

static void *
s_application(void *arg)
{
    s_threads_t *run = arg;
    s_net_t *net = run->net;
    static const char *topics[3] = {"t.a", "t.b", "t.c"};
    uint64_t seqs[3] = {0, 0, 0};
    uint32_t random = 12345;
    uint8_t payload[S_EVENT_MAX + 100];
    double end = s_now() + 0.2;
    size_t limit = S_EVENTS_MAX - 8;
    int topic = 0;
    for (int burst = 0; burst < 1000 && run->count < limit && s_now() < end;
         burst++) {
        size_t length = 1 + s_random(&random) % 40;
        if (s_random(&random) % 3 == 0)
            topic = (int)(s_random(&random) % 3);
        for (size_t i = 0; i < length && run->count < limit; i++) {
            // Now and then a topic change or a big event inside a burst.
            if (s_random(&random) % 29 == 0)
                topic = (topic + 1) % 3;
            size_t size = s_random(&random) % 37 == 0
                              ? S_EVENT_MAX + 1 + s_random(&random) % 50
                              : 1 + s_random(&random) % 200;
            uint64_t seq = ++seqs[topic];
            s_payload(payload, size, seq);
            int64_t now_us = zmesh__wall_clock_us();
            if (zmesh__outbox_wants(net->outbox, size, now_us)) {
                zmesh__outbox_lock(net->outbox);
                zmesh__outbox_add(net->outbox, topics[topic], 3, seq, now_us,
                                  payload, size);
                zmesh__outbox_unlock(net->outbox);
            } else
                s_publish_alone(run, topics[topic], seq, now_us, payload, size);
            s_event_t *event = &run->published[run->count++];
            snprintf(event->topic, sizeof event->topic, "%s", topics[topic]);
            event->seq = seq;
            event->size = size;
        }
        // A pause (or none) before the next burst: long enough, at times,
        // for the control thread to send the batch left behind.
        uint32_t pause = s_random(&random) % 4;
        if (pause > 0) {
            struct timespec ts = {0, (long)pause * 500000L};
            nanosleep(&ts, NULL);
        }
    }
    // A last batch, left behind: only the control thread can send it.
    for (int i = 0; i < 3; i++) {
        uint64_t seq = ++seqs[topic];
        s_payload(payload, 8, seq);
        zmesh__outbox_lock(net->outbox);
        zmesh__outbox_add(net->outbox, topics[topic], 3, seq,
                          zmesh__wall_clock_us(), payload, 8);
        zmesh__outbox_unlock(net->outbox);
        s_event_t *event = &run->published[run->count++];
        snprintf(event->topic, sizeof event->topic, "%s", topics[topic]);
        event->seq = seq;
        event->size = 8;
    }
    atomic_store(&run->done, true);
    return NULL;
}

static void *
s_control(void *arg)
{
    s_threads_t *run = arg;
    zmesh__outbox_t *outbox = run->net->outbox;
    s_is_control = true;
    bool signalled = false;
    double start = s_now();
    // At least 300 ms, until the application is done and nothing is left
    // pending, and never past 10 s (valgrind is slow).
    for (int i = 0; i < 1000000; i++) {
        double elapsed = s_now() - start;
        if (elapsed > 10)
            break;
        if (elapsed > 0.3 && atomic_load(&run->done)) {
            zmesh__outbox_lock(outbox);
            size_t pending = zmesh__outbox_pending(outbox);
            zmesh__outbox_unlock(outbox);
            if (pending == 0)
                break;
        }
        long due = zmesh__outbox_expire(outbox, zmesh__clock_ms(), signalled);
        run->looks++;
        if (due < -1)
            run->failures++;
        // Wakes at least every 10 ms to look at the clock.
        struct pollfd item = {zmesh__outbox_fd(outbox), POLLIN, 0};
        int rc = poll(&item, 1, due < 0 || due > 10 ? 10 : (int)due);
        if (rc < 0)
            run->failures++;
        signalled = rc == 1 && (item.revents & POLLIN);
        run->waits += signalled;
    }
    return NULL;
}

static void
test_two_threads(void **state)
{
    s_net_t *net = *state;
    s_threads_t run;
    memset(&run, 0, sizeof run);
    run.net = net;
    atomic_init(&run.done, false);
    run.published = calloc(S_EVENTS_MAX, sizeof *run.published);
    assert_non_null(run.published);
    pthread_t control, application;
    assert_int_equal(pthread_create(&control, NULL, s_control, &run), 0);
    assert_int_equal(pthread_create(&application, NULL, s_application, &run),
                     0);
    assert_int_equal(pthread_join(application, NULL), 0);
    assert_int_equal(pthread_join(control, NULL), 0);
    assert_int_equal(run.failures, 0);
    assert_true(run.looks > 0);
    assert_true(run.count > 3);
    // The batch left behind was sent by the control thread.
    assert_int_equal(zmesh__outbox_pending(net->outbox), 0);

    // Every event once, in the order published.
    for (int i = 0; i < S_EVENTS_MAX && net->got.count < run.count; i++)
        s_recv(net, NULL);
    s_expect_nothing(net);
    assert_int_equal(net->got.count, run.count);
    for (size_t i = 0; i < run.count; i++) {
        assert_string_equal(net->got.events[i].topic, run.published[i].topic);
        assert_int_equal(net->got.events[i].seq, run.published[i].seq);
        assert_int_equal(net->got.events[i].size, run.published[i].size);
    }
    uint64_t batches = 0, batched = 0, unsent = 0;
    zmesh__outbox_stats(net->outbox, &batches, &batched, &unsent);
    assert_int_equal(unsent, 0);
    assert_true(batches >= 1 && batched <= run.count - run.alone);
    assert_true(net->got.messages <= run.count);
    assert_int_equal(s_sends, net->got.messages);
    assert_int_equal(atomic_load(&s_overlaps), 0);
    // At least the batch left behind went from the control thread.
    unsigned long control_sends = atomic_load(&s_control_sends);
    assert_true(control_sends >= 1);
    s_expect_retained(net, "t.a");
    s_expect_retained(net, "t.b");
    s_expect_retained(net, "t.c");
    print_message("%zu events in %zu messages (%zu alone, %llu batches of "
                  "%llu events); control: %llu looks, %llu signals, %lu "
                  "sends\n",
                  run.count, net->got.messages, run.alone,
                  (unsigned long long)batches, (unsigned long long)batched,
                  (unsigned long long)run.looks, (unsigned long long)run.waits,
                  control_sends);
    free(run.published);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_batch_of_ten, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_batch_of_one, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_topic_change, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_max_events, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_bytes_split, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_wants, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_burst_clock_restarts_after_a_send,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_expire, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_two_threads, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
