/*  durable_test.c - the consuming side of durable consumers, with a fake
    relay: attach, catch up with credit, hold live events meanwhile and
    switch to live without duplicates, send a stream back to the relay on
    a gap, redeliver after the ack wait and drop after max_deliver, batch
    acknowledgements (by relay sequence and as live positions), report
    retention losses. Also the publisher's confirm table: settle, resend
    after a second, time out. */
#include "codec.h"
#include "confirms.h"
#include "durable.h"
#include "zmesh.h"

#include <msgpack.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zmq.h>

static const uint8_t s_pub[16] = {7};

/* What the module sent: the last request and message. */
typedef struct {
    int requests;
    char topic[64];
    char peer[40];
    uint64_t req;
    msgpack_unpacked body;
    bool has_body;
    int sends;
    msgpack_unpacked sent;
    bool has_sent;
    int fail_requests; /* answer the next ones with ZMESH_ENOTFOUND */
    char *body_bytes;  /* what body and sent point into (msgpack-c does) */
    char *sent_bytes;
    char names[4][80]; /* "id=name" the module passed on */
    int names_count;
} s_relay_t;

static char *
s_keep(char **slot, const void *payload, size_t size)
{
    free(*slot);
    *slot = malloc(size);
    memcpy(*slot, payload, size);
    return *slot;
}

static int
s_request(void *arg, const char *peer, const char *topic, const void *payload,
          size_t size, int timeout_ms, uint64_t *req)
{
    (void)timeout_ms;
    s_relay_t *r = arg;
    if (r->fail_requests > 0) {
        r->fail_requests--;
        return ZMESH_ENOTFOUND;
    }
    r->requests++;
    snprintf(r->topic, sizeof r->topic, "%s", topic);
    snprintf(r->peer, sizeof r->peer, "%s", peer ? peer : "");
    *req = r->req = 100 + (uint64_t)r->requests;
    if (r->has_body)
        msgpack_unpacked_destroy(&r->body);
    msgpack_unpacked_init(&r->body);
    size_t off = 0;
    payload = s_keep(&r->body_bytes, payload, size);
    assert_int_equal(msgpack_unpack_next(&r->body, payload, size, &off),
                     MSGPACK_UNPACK_SUCCESS);
    r->has_body = true;
    return 0;
}

static int
s_send(void *arg, const char *peer, const char *topic, const void *payload,
       size_t size)
{
    (void)peer;
    s_relay_t *r = arg;
    assert_string_equal(topic, "$relay.ack");
    r->sends++;
    if (r->has_sent)
        msgpack_unpacked_destroy(&r->sent);
    msgpack_unpacked_init(&r->sent);
    size_t off = 0;
    payload = s_keep(&r->sent_bytes, payload, size);
    assert_int_equal(msgpack_unpack_next(&r->sent, payload, size, &off),
                     MSGPACK_UNPACK_SUCCESS);
    r->has_sent = true;
    return 0;
}

static void
s_name(void *arg, const char *id, const char *name)
{
    s_relay_t *r = arg;
    assert_true(r->names_count < 4);
    snprintf(r->names[r->names_count++], sizeof r->names[0], "%s=%s", id, name);
}

static const msgpack_object *
s_get(const msgpack_object *map, const char *key)
{
    assert_int_equal(map->type, MSGPACK_OBJECT_MAP);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->via.str.size == strlen(key) &&
            memcmp(k->via.str.ptr, key, k->via.str.size) == 0)
            return &map->via.map.ptr[i].val;
    }
    return NULL;
}

typedef struct {
    zmesh__durable_t *d;
    s_relay_t relay;
} s_fixture_t;

static int
s_setup(void **state)
{
    s_fixture_t *f = calloc(1, sizeof *f);
    zmesh__durable_io_t io = {s_request, s_send, s_name};
    assert_int_equal(zmesh__durable_new(&f->d, &io, &f->relay), 0);
    *state = f;
    return 0;
}

static int
s_teardown(void **state)
{
    s_fixture_t *f = *state;
    zmesh__durable_destroy(&f->d);
    if (f->relay.has_body)
        msgpack_unpacked_destroy(&f->relay.body);
    if (f->relay.has_sent)
        msgpack_unpacked_destroy(&f->relay.sent);
    free(f->relay.body_bytes);
    free(f->relay.sent_bytes);
    free(f);
    return 0;
}

typedef struct {
    uint8_t bytes[128];
    size_t size;
    zmesh__frame_t frame;
} s_frame_t;

static void
s_make(s_frame_t *f, const char *topic, uint64_t seq)
{
    const uint8_t payload[] = {0xc0};
    int size = zmesh__frame_encode(topic, strlen(topic), s_pub, seq, 1000,
                                   payload, 1, f->bytes, sizeof f->bytes);
    assert_true(size > 0);
    f->size = (size_t)size;
    assert_int_equal(zmesh__frame_decode(f->bytes, f->size, &f->frame), 0);
}

/*  Packs a $relay.next answer: records rseq_first.. for sequences seqs,
    in a map with `extra` more entries for the caller to pack. */
static void
s_pack_next(msgpack_packer *pk, const uint64_t *seqs, size_t n,
            uint64_t rseq_first, uint64_t next, uint64_t last, uint32_t extra)
{
    msgpack_pack_map(pk, 4 + extra);
    msgpack_pack_str_with_body(pk, "events", 6);
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++) {
        s_frame_t fr;
        s_make(&fr, "orders.new", seqs[i]);
        msgpack_pack_array(pk, 5);
        msgpack_pack_uint64(pk, rseq_first + i);
        msgpack_pack_int64(pk, 1);
        msgpack_pack_bin_with_body(pk, fr.bytes, fr.size);
        msgpack_pack_uint64(pk, 0);
        msgpack_pack_uint64(pk, 1);
    }
    msgpack_pack_str_with_body(pk, "next", 4);
    msgpack_pack_uint64(pk, next);
    msgpack_pack_str_with_body(pk, "floor", 5);
    msgpack_pack_uint64(pk, 0);
    msgpack_pack_str_with_body(pk, "last", 4);
    msgpack_pack_uint64(pk, last);
}

static void
s_answer(s_fixture_t *f, msgpack_sbuffer *buf, int64_t now)
{
    assert_true(zmesh__durable_reply(f->d, f->relay.req, "relay", 0, buf->data,
                                     buf->size, now));
    msgpack_sbuffer_destroy(buf);
}

/*  A $relay.next answer: records rseq_first.. for sequences seqs. */
static void
s_answer_next(s_fixture_t *f, const uint64_t *seqs, size_t n,
              uint64_t rseq_first, uint64_t next, uint64_t last, int64_t now)
{
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    s_pack_next(&pk, seqs, n, rseq_first, next, last, 0);
    s_answer(f, &buf, now);
}

// A $relay.next answer names the publishers of its records: the module
// passes each well-formed entry on (the agent's names for events whose
// publisher left) and ignores the rest, before the events are handed out.
static void s_attach(s_fixture_t *f, const zmesh_durable_options_t *options,
                     int64_t now);

static void
test_publisher_names_are_passed_on(void **state)
{
    s_fixture_t *f = *state;
    s_attach(f, NULL, 1);
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    s_pack_next(&pk, NULL, 0, 0, 1, 0, 1);
    msgpack_pack_str_with_body(&pk, "names", 5);
    const char *entries[][2] = {
        {"0700000000000000000000000000000A", "shop"}, // spelt lower case
        {"07000000000000000000000000000000", ""},     // empty name
        {"0700", "short-id"},
        {"0700000000000000000000000000000x", "not-hex"},
        {"07000000000000000000000000000001", "billing"},
    };
    msgpack_pack_map(&pk, 6);
    for (size_t i = 0; i < 5; i++) {
        msgpack_pack_str_with_body(&pk, entries[i][0], strlen(entries[i][0]));
        msgpack_pack_str_with_body(&pk, entries[i][1], strlen(entries[i][1]));
    }
    msgpack_pack_str_with_body(&pk, "07000000000000000000000000000002", 32);
    msgpack_pack_uint64(&pk, 7); // not a string
    s_answer(f, &buf, 1);
    assert_int_equal(f->relay.names_count, 2);
    assert_string_equal(f->relay.names[0],
                        "0700000000000000000000000000000a=shop");
    assert_string_equal(f->relay.names[1],
                        "07000000000000000000000000000001=billing");
}

static void
s_attach(s_fixture_t *f, const zmesh_durable_options_t *options, int64_t now)
{
    assert_int_equal(zmesh__durable_add(f->d, "billing", "orders.>", options),
                     0);
    zmesh__durable_service(f->d, now);
    assert_string_equal(f->relay.topic, "$relay.consume");
    assert_string_equal(f->relay.peer, ""); // any relay
    const uint8_t answer[] = {0x81, 0xa5, 'f', 'l', 'o', 'o', 'r', 0x00};
    assert_true(zmesh__durable_reply(f->d, f->relay.req, "relay", 0, answer,
                                     sizeof answer, now));
    zmesh__durable_service(f->d, now);
    assert_string_equal(f->relay.topic, "$relay.next");
    assert_string_equal(f->relay.peer, "relay");
}

/*  Takes every event the module has for the application. */
static size_t
s_drain(s_fixture_t *f, uint64_t *seqs, size_t cap, int64_t now)
{
    size_t n = 0;
    zmesh__durable_event_t e;
    while (zmesh__durable_next(f->d, now, &e)) {
        assert_true(n < cap);
        seqs[n++] =
            e.type == ZMESH_EVENT_MESSAGE ? e.frame.sequence : 1000 + e.first;
    }
    return n;
}

static void
test_catch_up_then_live_without_duplicates(void **state)
{
    s_fixture_t *f = *state;
    s_attach(f, NULL, 1);
    // Live 3 and 4 arrive while catching up: held.
    const char *consumer;
    s_frame_t fr;
    for (uint64_t seq = 3; seq <= 4; seq++) {
        s_make(&fr, "orders.new", seq);
        assert_false(zmesh__durable_live(f->d, fr.bytes, fr.size, &fr.frame, 1,
                                         &consumer));
        assert_string_equal(consumer, "billing");
    }
    // The relay has 1..3; then nothing more.
    const uint64_t stored[] = {1, 2, 3};
    s_answer_next(f, stored, 3, 1, 4, 3, 1);
    zmesh__durable_service(f->d, 1);
    s_answer_next(f, NULL, 0, 0, 4, 3, 1);
    uint64_t got[16];
    size_t n = s_drain(f, got, 16, 1);
    assert_int_equal(n, 4); // 1 2 3 from the relay, 4 held; 3 once
    for (size_t i = 0; i < n; i++)
        assert_int_equal(got[i], i + 1);
    // Now live: 5 passes straight through, 4 again is dropped.
    s_make(&fr, "orders.new", 5);
    assert_true(
        zmesh__durable_live(f->d, fr.bytes, fr.size, &fr.frame, 1, &consumer));
    s_make(&fr, "orders.new", 4);
    assert_false(
        zmesh__durable_live(f->d, fr.bytes, fr.size, &fr.frame, 1, &consumer));
    zmesh__durable_stats_t stats;
    zmesh__durable_stats(f->d, &stats);
    assert_int_equal(stats.duplicates, 2);
    assert_int_equal(stats.delivered, 5);
    // Other topics are not the consumer's.
    s_make(&fr, "audit.x", 1);
    assert_false(
        zmesh__durable_live(f->d, fr.bytes, fr.size, &fr.frame, 1, &consumer));
    assert_null(consumer);
}

static void
test_acks_go_by_rseq_and_live_position(void **state)
{
    s_fixture_t *f = *state;
    s_attach(f, NULL, 1);
    const uint64_t stored[] = {1, 2};
    s_answer_next(f, stored, 2, 10, 12, 11, 1);
    zmesh__durable_service(f->d, 1);
    s_answer_next(f, NULL, 0, 0, 12, 11, 1);
    uint64_t got[4];
    assert_int_equal(s_drain(f, got, 4, 1), 2);
    const char *consumer;
    s_frame_t fr;
    s_make(&fr, "orders.new", 3);
    assert_true(
        zmesh__durable_live(f->d, fr.bytes, fr.size, &fr.frame, 1, &consumer));
    // Acknowledging 2 and 3 but not 1: rseq 11 goes, the position stays 0.
    assert_int_equal(
        zmesh__durable_ack(f->d, "billing", s_pub, "orders.new", 2, 11, 5), 0);
    assert_int_equal(
        zmesh__durable_ack(f->d, "billing", s_pub, "orders.new", 3, 0, 5), 0);
    assert_int_equal(
        zmesh__durable_ack(f->d, "billing", s_pub, "orders.new", 3, 0, 5),
        ZMESH_ENOTFOUND);
    zmesh__durable_service(f->d, 10); // before the batching delay
    assert_int_equal(f->relay.sends, 0);
    zmesh__durable_service(f->d, 60);
    assert_int_equal(f->relay.sends, 1);
    const msgpack_object *acks = s_get(&f->relay.sent.data, "acks");
    assert_int_equal(acks->via.array.size, 1);
    assert_int_equal(acks->via.array.ptr[0].via.u64, 11);
    const msgpack_object *live = s_get(&f->relay.sent.data, "live");
    assert_int_equal(live->via.array.size, 1);
    assert_int_equal(live->via.array.ptr[0].via.array.ptr[2].via.u64, 0);
    // Then 1: the position moves to 3.
    assert_int_equal(
        zmesh__durable_ack(f->d, "billing", s_pub, "orders.new", 1, 10, 70), 0);
    zmesh__durable_flush(f->d, 70);
    assert_int_equal(f->relay.sends, 2);
    live = s_get(&f->relay.sent.data, "live");
    assert_int_equal(live->via.array.ptr[0].via.array.ptr[2].via.u64, 3);
}

static void
test_untaken_events_hold_the_position_back(void **state)
{
    s_fixture_t *f = *state;
    s_attach(f, NULL, 1);
    const uint64_t stored[] = {1, 2};
    s_answer_next(f, stored, 2, 1, 3, 2, 1);
    // The application takes and acknowledges 1 only, then stops: 2 must
    // not be acknowledged for it.
    zmesh__durable_event_t e;
    assert_true(zmesh__durable_next(f->d, 1, &e));
    assert_int_equal(
        zmesh__durable_ack(f->d, "billing", s_pub, "orders.new", 1, 1, 1), 0);
    zmesh__durable_flush(f->d, 1);
    const msgpack_object *live = s_get(&f->relay.sent.data, "live");
    assert_int_equal(live->via.array.ptr[0].via.array.ptr[2].via.u64, 1);
}

static void
test_redelivery_and_max_deliver(void **state)
{
    s_fixture_t *f = *state;
    zmesh_durable_options_t o = {.ack_wait_ms = 100, .max_deliver = 2};
    s_attach(f, &o, 1);
    const uint64_t stored[] = {1};
    s_answer_next(f, stored, 1, 1, 2, 1, 1);
    zmesh__durable_event_t e;
    assert_true(zmesh__durable_next(f->d, 1, &e));
    assert_int_equal(e.deliveries, 1);
    assert_false(zmesh__durable_next(f->d, 50, &e));
    zmesh__durable_service(f->d, 150); // past the ack wait: again
    assert_true(zmesh__durable_next(f->d, 150, &e));
    assert_int_equal(e.deliveries, 2);
    assert_int_equal(e.rseq, 1);
    zmesh__durable_service(f->d, 300); // twice is the limit: dropped
    assert_false(zmesh__durable_next(f->d, 300, &e));
    zmesh__durable_stats_t stats;
    zmesh__durable_stats(f->d, &stats);
    assert_int_equal(stats.redelivered, 1);
    assert_int_equal(stats.terminated, 1);
    assert_int_equal(
        zmesh__durable_ack(f->d, "billing", s_pub, "orders.new", 1, 1, 300),
        ZMESH_ENOTFOUND);
}

static void
test_window_limits_what_is_asked(void **state)
{
    s_fixture_t *f = *state;
    zmesh_durable_options_t o = {.max_ack_pending = 2};
    s_attach(f, &o, 1);
    const msgpack_object *max = s_get(&f->relay.body.data, "max");
    assert_int_equal(max->via.u64, 2);
    const uint64_t stored[] = {1, 2};
    s_answer_next(f, stored, 2, 1, 3, 5, 1);
    int before = f->relay.requests;
    zmesh__durable_service(f->d, 1);
    assert_int_equal(f->relay.requests, before); // the window is full
    zmesh__durable_event_t e;
    assert_true(zmesh__durable_next(f->d, 1, &e));
    assert_int_equal(
        zmesh__durable_ack(f->d, "billing", s_pub, "orders.new", 1, 1, 1), 0);
    zmesh__durable_service(f->d, 100);
    assert_int_equal(f->relay.requests, before + 1);
    max = s_get(&f->relay.body.data, "max");
    assert_int_equal(max->via.u64, 1);
}

static void
test_live_gap_asks_the_relay_first(void **state)
{
    s_fixture_t *f = *state;
    s_attach(f, NULL, 1);
    s_answer_next(f, NULL, 0, 0, 1, 0, 1); // nothing stored: live
    const char *consumer;
    s_frame_t fr;
    s_make(&fr, "orders.new", 1);
    assert_true(
        zmesh__durable_live(f->d, fr.bytes, fr.size, &fr.frame, 1, &consumer));
    // 2..3 lost on the live path: held, and the relay is asked.
    assert_false(
        zmesh__durable_live_gap(f->d, "orders.new", s_pub, 2, 3, 1, &consumer));
    s_make(&fr, "orders.new", 4);
    assert_false(
        zmesh__durable_live(f->d, fr.bytes, fr.size, &fr.frame, 1, &consumer));
    zmesh__durable_service(f->d, 1);
    assert_string_equal(f->relay.topic, "$relay.next");
    // The relay had 2 but not 3: 2 comes, then the gap for 3 only, then 4.
    const uint64_t stored[] = {2};
    s_answer_next(f, stored, 1, 2, 3, 2, 1);
    zmesh__durable_service(f->d, 1);
    s_answer_next(f, NULL, 0, 0, 3, 2, 1);
    uint64_t got[8];
    size_t n = s_drain(f, got, 8, 1);
    assert_int_equal(n, 3);
    assert_int_equal(got[0], 2);
    assert_int_equal(got[1], 1003); // a gap of 3 (first 3)
    assert_int_equal(got[2], 4);
}

static void
test_no_relay_asks_again(void **state)
{
    s_fixture_t *f = *state;
    f->relay.fail_requests = 1;
    assert_int_equal(zmesh__durable_add(f->d, "billing", "orders.>", NULL), 0);
    zmesh__durable_service(f->d, 1);
    assert_int_equal(f->relay.requests, 0);
    assert_int_equal(zmesh__durable_deadline(f->d),
                     1 + ZMESH__DURABLE_RETRY_MS);
    zmesh__durable_service(f->d, 1 + ZMESH__DURABLE_RETRY_MS);
    assert_int_equal(f->relay.requests, 1);
    // A refusal waits longer.
    const uint8_t refusal[] = {0x82, 0xa5, 'e', 'r', 'r', 'o', 'r',  0xa1,
                               'x',  0xa4, 'c', 'o', 'd', 'e', 0xa1, 'y'};
    assert_true(zmesh__durable_reply(f->d, f->relay.req, "relay", 0, refusal,
                                     sizeof refusal, 1000));
    assert_int_equal(zmesh__durable_deadline(f->d),
                     1000 + ZMESH__DURABLE_REFUSED_MS);
    assert_int_equal(zmesh__durable_add(f->d, "billing", "x.>", NULL),
                     ZMESH_EINVAL); // the name is taken
    zmesh_durable_options_t bad = {.max_ack_pending = 20000};
    assert_int_equal(zmesh__durable_add(f->d, "other", "x.>", &bad),
                     ZMESH_EINVAL);
}

/* ------------------------------------------------------------------------ */
/*  Confirms                                                                */

typedef struct {
    int reports, ok, failed, resends;
    size_t resent;
} s_outcomes_t;

static void
s_report(void *arg, const char *topic, uint64_t seq, int status,
         const char *reason)
{
    (void)topic;
    (void)seq;
    (void)reason;
    s_outcomes_t *o = arg;
    o->reports++;
    if (status == 0)
        o->ok++;
    else
        o->failed++;
}

static int
s_resend(void *arg, const void *const *frames, const size_t *sizes,
         size_t count)
{
    s_outcomes_t *o = arg;
    o->resends++;
    o->resent += count;
    // What is sent again is the frame that was kept, byte for byte.
    for (size_t i = 0; i < count; i++) {
        assert_int_equal(sizes[i], 5);
        assert_memory_equal(frames[i], "frame", 5);
    }
    return 0;
}

// zmesh__confirms_add of a message made from `bytes`, as publishing does;
// the message is closed (sent) afterwards, and the module keeps its own
// reference.
static int
s_confirms_add(zmesh__confirms_t *c, const char *topic, uint64_t seq,
               const void *bytes, size_t size, int64_t now, int timeout)
{
    zmq_msg_t msg;
    assert_int_equal(zmq_msg_init_size(&msg, size), 0);
    memcpy(zmq_msg_data(&msg), bytes, size);
    int rc = zmesh__confirms_add(c, topic, seq, &msg, now, timeout);
    zmq_msg_close(&msg);
    return rc;
}

static void
test_confirms_settle_resend_and_time_out(void **state)
{
    (void)state;
    zmesh__confirms_t *c = NULL;
    assert_int_equal(zmesh__confirms_new(&c), 0);
    for (uint64_t seq = 1; seq <= 10; seq++)
        assert_int_equal(s_confirms_add(c, "a", seq, "frame", 5, 0, 5000), 0);
    s_outcomes_t o = {0};
    // 3..5 stored; 20..30 were never waited for.
    assert_int_equal(zmesh__confirms_settle(c, "a", 3, 5, 0, "", s_report, &o),
                     3);
    assert_int_equal(
        zmesh__confirms_settle(c, "a", 20, 30, 0, "", s_report, &o), 0);
    assert_int_equal(zmesh__confirms_settle(c, "b", 1, 10, 0, "", s_report, &o),
                     0);
    assert_int_equal(o.ok, 3);
    zmesh__confirms_service(c, 999, "late", 4, 1 << 20, s_report, s_resend, &o);
    assert_int_equal(o.resends, 0); // not due yet
    assert_int_equal(zmesh__confirms_deadline(c), ZMESH__CONFIRMS_RESEND_MS);
    zmesh__confirms_service(c, 1000, "late", 4, 1 << 20, s_report, s_resend,
                            &o);
    assert_int_equal(o.resent, 7); // in batches of at most 4
    assert_int_equal(o.resends, 2);
    assert_int_equal(zmesh__confirms_deadline(c), 2000);
    zmesh__confirms_service(c, 5000, "late", 4, 1 << 20, s_report, s_resend,
                            &o);
    assert_int_equal(o.failed, 7);
    assert_int_equal(zmesh__confirms_size(c), 0);
    assert_int_equal(zmesh__confirms_deadline(c), 0);
    zmesh__confirms_destroy(&c);
    assert_null(c);
}

static void
test_confirms_are_bounded(void **state)
{
    (void)state;
    zmesh__confirms_t *c = NULL;
    assert_int_equal(zmesh__confirms_new(&c), 0);
    static char big[ZMESH__CONFIRMS_BYTES_MAX / 2 + 1];
    assert_int_equal(s_confirms_add(c, "a", 1, big, sizeof big, 0, 100), 0);
    assert_int_equal(s_confirms_add(c, "a", 2, big, sizeof big, 0, 100),
                     ZMESH_EFULL);
    zmesh__confirms_destroy(&c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_catch_up_then_live_without_duplicates, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_acks_go_by_rseq_and_live_position,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_untaken_events_hold_the_position_back, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_redelivery_and_max_deliver,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_window_limits_what_is_asked,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_live_gap_asks_the_relay_first,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_no_relay_asks_again, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_publisher_names_are_passed_on,
                                        s_setup, s_teardown),
        cmocka_unit_test(test_confirms_settle_resend_and_time_out),
        cmocka_unit_test(test_confirms_are_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
