/*  relay_consumer_test.c - a relay's durable consumers without the
    network: pattern coverage, the strict decoders of $relay.consume,
    $relay.next and $relay.ack, and the consumer set on a real store:
    create and attach (conflicts, stream choice, settings), start
    positions, records handed out with delivery counts, acks by relay
    sequence and by live position moving the floor, max_deliver, the
    state saved and loaded again (the blob round trip), a corrupt
    consumer file kept out of service, and records retention deleted
    reported as lost. Each test works in its own mkdtemp directory. */
#include "clock.h"
#include "codec.h"
#include "relay.h"
#include "relay_consumer.h"
#include "store.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

/* ------------------------------------------------------------------------ */
/*  Helpers                                                                 */

static bool
s_covers(const char *a, const char *b)
{
    return zmesh__relay_pattern_covers(a, strlen(a), b, strlen(b));
}

/*  A msgpack payload built from a tiny format: the caller packs. */
typedef struct {
    msgpack_sbuffer buf;
    msgpack_packer pk;
} s_req_t;

static void
s_req_init(s_req_t *r)
{
    msgpack_sbuffer_init(&r->buf);
    msgpack_packer_init(&r->pk, &r->buf, msgpack_sbuffer_write);
}

static void
s_str(s_req_t *r, const char *text)
{
    msgpack_pack_str(&r->pk, strlen(text));
    msgpack_pack_str_body(&r->pk, text, strlen(text));
}

/*  An answer, unpacked, with lookups by key. */
typedef struct {
    msgpack_unpacked unpacked;
} s_answer_t;

static void
s_answer(s_answer_t *a, const msgpack_sbuffer *out)
{
    msgpack_unpacked_init(&a->unpacked);
    size_t offset = 0;
    assert_int_equal(
        msgpack_unpack_next(&a->unpacked, out->data, out->size, &offset),
        MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(offset, out->size);
    assert_int_equal(a->unpacked.data.type, MSGPACK_OBJECT_MAP);
}

static const msgpack_object *
s_get(const s_answer_t *a, const char *key)
{
    const msgpack_object_map *map = &a->unpacked.data.via.map;
    for (uint32_t i = 0; i < map->size; i++)
        if (map->ptr[i].key.via.str.size == strlen(key) &&
            memcmp(map->ptr[i].key.via.str.ptr, key, strlen(key)) == 0)
            return &map->ptr[i].val;
    return NULL;
}

static uint64_t
s_u(const s_answer_t *a, const char *key)
{
    const msgpack_object *v = s_get(a, key);
    assert_non_null(v);
    assert_int_equal(v->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    return v->via.u64;
}

static bool
s_is_error(const s_answer_t *a, const char *code)
{
    const msgpack_object *v = s_get(a, "code");
    return v && v->type == MSGPACK_OBJECT_STR &&
           v->via.str.size == strlen(code) &&
           memcmp(v->via.str.ptr, code, strlen(code)) == 0;
}

typedef struct {
    char root[64];
    char path[128];
    zmesh__store_t *store;
    zmesh__relay_consumers_t *set;
    msgpack_sbuffer out;
} s_env_t;

static void
s_env_open_set(s_env_t *e)
{
    assert_int_equal(zmesh__relay_consumers_new(&e->set, 1 << 20, NULL, NULL),
                     0);
    const char *patterns[] = {"orders.>", "audit.*"};
    assert_true(zmesh__relay_consumers_add_stream(e->set, "orders", patterns, 2,
                                                  e->store) >= 0);
}

static void
s_env_init(s_env_t *e)
{
    snprintf(e->root, sizeof e->root, "/tmp/zmesh-consumer-XXXXXX");
    assert_non_null(mkdtemp(e->root));
    snprintf(e->path, sizeof e->path, "%s/orders", e->root);
    zmesh__store_config_t sc = {.sync = ZMESH__STORE_SYNC_NEVER,
                                .segment_bytes = 4096};
    e->store = NULL;
    assert_int_equal(zmesh__store_open(&e->store, e->path, &sc), 0);
    msgpack_sbuffer_init(&e->out);
    s_env_open_set(e);
}

static void
s_env_free(s_env_t *e)
{
    zmesh__relay_consumers_destroy(&e->set);
    zmesh__store_destroy(&e->store);
    msgpack_sbuffer_destroy(&e->out);
    char command[160];
    snprintf(command, sizeof command, "rm -rf '%s'", e->root);
    assert_int_equal(system(command), 0);
}

static const uint8_t s_pub[16] = {1, 2,  3,  4,  5,  6,  7,  8,
                                  9, 10, 11, 12, 13, 14, 15, 16};

static uint64_t
s_append(s_env_t *e, const char *topic, uint64_t seq, uint32_t flags)
{
    uint8_t frame[512];
    const uint8_t payload[] = {0x01};
    int n =
        zmesh__frame_encode(topic, strlen(topic), s_pub, seq, 1700000000000000,
                            payload, 1, frame, sizeof frame);
    assert_true(n > 0);
    uint64_t rseq;
    assert_int_equal(zmesh__store_append(e->store, frame, (size_t)n, flags,
                                         1700000000000000, &rseq),
                     0);
    return rseq;
}

/*  $relay.consume {consumer, pattern[, start]}; returns the rc. */
static int
s_consume(s_env_t *e, const char *name, const char *pattern, const char *start,
          s_answer_t *a)
{
    s_req_t r;
    s_req_init(&r);
    msgpack_pack_map(&r.pk, start ? 3 : 2);
    s_str(&r, "consumer");
    s_str(&r, name);
    s_str(&r, "pattern");
    s_str(&r, pattern);
    if (start) {
        s_str(&r, "start");
        s_str(&r, start);
    }
    int rc = zmesh__relay_consumers_consume(e->set, r.buf.data, r.buf.size,
                                            1700000000000001, &e->out);
    msgpack_sbuffer_destroy(&r.buf);
    s_answer(a, &e->out);
    return rc;
}

/*  $relay.next {consumer, max}: the events' relay sequences in rseqs[]. */
static size_t
s_next(s_env_t *e, const char *name, uint32_t max, uint64_t *rseqs,
       uint32_t *deliveries, s_answer_t *a)
{
    s_req_t r;
    s_req_init(&r);
    msgpack_pack_map(&r.pk, 2);
    s_str(&r, "consumer");
    s_str(&r, name);
    s_str(&r, "max");
    msgpack_pack_uint32(&r.pk, max);
    assert_int_equal(
        zmesh__relay_consumers_next(e->set, r.buf.data, r.buf.size, &e->out),
        0);
    msgpack_sbuffer_destroy(&r.buf);
    s_answer(a, &e->out);
    const msgpack_object *events = s_get(a, "events");
    assert_non_null(events);
    assert_int_equal(events->type, MSGPACK_OBJECT_ARRAY);
    for (uint32_t i = 0; i < events->via.array.size; i++) {
        const msgpack_object *ev = &events->via.array.ptr[i];
        assert_int_equal(ev->via.array.size, 5);
        rseqs[i] = ev->via.array.ptr[0].via.u64;
        assert_int_equal(ev->via.array.ptr[2].type, MSGPACK_OBJECT_BIN);
        if (deliveries)
            deliveries[i] = (uint32_t)ev->via.array.ptr[4].via.u64;
    }
    return events->via.array.size;
}

/*  $relay.ack {consumer, acks[, live: one position]} as a request. */
static uint64_t
s_ack(s_env_t *e, const char *name, const uint64_t *acks, size_t n,
      const char *live_topic, uint64_t live_seq)
{
    s_req_t r;
    s_req_init(&r);
    msgpack_pack_map(&r.pk, live_topic ? 3 : 2);
    s_str(&r, "consumer");
    s_str(&r, name);
    s_str(&r, "acks");
    msgpack_pack_array(&r.pk, n);
    for (size_t i = 0; i < n; i++)
        msgpack_pack_uint64(&r.pk, acks[i]);
    if (live_topic) {
        s_str(&r, "live");
        msgpack_pack_array(&r.pk, 1);
        msgpack_pack_array(&r.pk, 3);
        msgpack_pack_bin(&r.pk, 16);
        msgpack_pack_bin_body(&r.pk, s_pub, 16);
        s_str(&r, live_topic);
        msgpack_pack_uint64(&r.pk, live_seq);
    }
    assert_int_equal(
        zmesh__relay_consumers_ack(e->set, r.buf.data, r.buf.size, &e->out), 0);
    msgpack_sbuffer_destroy(&r.buf);
    s_answer_t a;
    s_answer(&a, &e->out);
    uint64_t floor = s_u(&a, "floor");
    msgpack_unpacked_destroy(&a.unpacked);
    return floor;
}

/* ------------------------------------------------------------------------ */

static void
test_covers(void **state)
{
    (void)state;
    assert_true(s_covers("orders.>", "orders.>"));
    assert_true(s_covers("orders.>", "orders.eu.*"));
    assert_true(s_covers("orders.>", "orders.eu.created"));
    assert_true(s_covers(">", "a.b"));
    assert_true(s_covers("*.b", "a.b"));
    assert_true(s_covers("*.*", "*.b"));
    assert_true(s_covers("a.*.c", "a.x.c"));
    assert_true(s_covers("a", "a"));
    assert_false(s_covers("orders.>", "orders"));
    assert_false(s_covers("orders.*", "orders.>"));
    assert_false(s_covers("orders.*", "orders.a.b"));
    assert_false(s_covers("a.b", "a.*"));
    assert_false(s_covers("a.b", "a.>"));
    assert_false(s_covers("*.b", "a.c"));
    assert_false(s_covers("a.*", "a"));
    assert_false(s_covers("audit.*", "orders.x"));
    // '$' topics are matched by no leading wildcard.
    assert_false(s_covers(">", "$relay.x"));
    assert_false(s_covers("*.x", "$relay.x"));
    assert_true(s_covers("$relay.>", "$relay.x"));
}

static void
test_decoders(void **state)
{
    (void)state;
    char err[256];
    zmesh__relay_consume_t c;
    zmesh__relay_next_t n;
    zmesh__relay_ack_t a;
    // {"consumer":"c","pattern":"a.>"}
    const uint8_t ok[] = {0x82, 0xa8, 'c',  'o', 'n',  's', 'u', 'm',
                          'e',  'r',  0xa1, 'c', 0xa7, 'p', 'a', 't',
                          't',  'e',  'r',  'n', 0xa3, 'a', '.', '>'};
    assert_int_equal(
        zmesh__relay_consume_decode(ok, sizeof ok, &c, err, sizeof err), 0);
    assert_string_equal(c.consumer, "c");
    assert_string_equal(c.pattern, "a.>");
    assert_int_equal(c.start, ZMESH__RELAY_START_ALL);
    assert_int_equal(c.ack_wait_ms, 30000);
    assert_int_equal(c.max_ack_pending, 1000);
    // Bad payloads, each packed here.
    for (int k = 0; k < 14; k++) {
        s_req_t r;
        s_req_init(&r);
        int kind = 0;
        switch (k) {
        case 0: msgpack_pack_array(&r.pk, 0); break; // not a map
        case 1:                                      // no pattern
            msgpack_pack_map(&r.pk, 1);
            s_str(&r, "consumer");
            s_str(&r, "c");
            break;
        case 2: // bad pattern
            msgpack_pack_map(&r.pk, 2);
            s_str(&r, "consumer");
            s_str(&r, "c");
            s_str(&r, "pattern");
            s_str(&r, "a.>.b");
            break;
        case 3: // bad name
            msgpack_pack_map(&r.pk, 2);
            s_str(&r, "consumer");
            s_str(&r, "c d");
            s_str(&r, "pattern");
            s_str(&r, "a");
            break;
        case 4: // start seq without seq
            msgpack_pack_map(&r.pk, 3);
            s_str(&r, "consumer");
            s_str(&r, "c");
            s_str(&r, "pattern");
            s_str(&r, "a");
            s_str(&r, "start");
            s_str(&r, "seq");
            break;
        case 5: // ack_wait out of range
            msgpack_pack_map(&r.pk, 3);
            s_str(&r, "consumer");
            s_str(&r, "c");
            s_str(&r, "pattern");
            s_str(&r, "a");
            s_str(&r, "ack_wait_ms");
            msgpack_pack_uint32(&r.pk, 99);
            break;
        case 6: // key twice
            msgpack_pack_map(&r.pk, 3);
            s_str(&r, "consumer");
            s_str(&r, "c");
            s_str(&r, "consumer");
            s_str(&r, "c");
            s_str(&r, "pattern");
            s_str(&r, "a");
            break;
        case 7: // max_deliver as a string
            msgpack_pack_map(&r.pk, 3);
            s_str(&r, "consumer");
            s_str(&r, "c");
            s_str(&r, "pattern");
            s_str(&r, "a");
            s_str(&r, "max_deliver");
            s_str(&r, "3");
            break;
        case 8: // next: max 0
            kind = 1;
            msgpack_pack_map(&r.pk, 2);
            s_str(&r, "consumer");
            s_str(&r, "c");
            s_str(&r, "max");
            msgpack_pack_uint32(&r.pk, 0);
            break;
        case 9: // next: no consumer
            kind = 1;
            msgpack_pack_map(&r.pk, 0);
            break;
        case 10: // next: from negative
            kind = 1;
            msgpack_pack_map(&r.pk, 2);
            s_str(&r, "consumer");
            s_str(&r, "c");
            s_str(&r, "from");
            msgpack_pack_int64(&r.pk, -1);
            break;
        case 11: // ack: acks not uints
            kind = 2;
            msgpack_pack_map(&r.pk, 2);
            s_str(&r, "consumer");
            s_str(&r, "c");
            s_str(&r, "acks");
            msgpack_pack_array(&r.pk, 1);
            s_str(&r, "1");
            break;
        case 12: // ack: live publisher of 15 bytes
            kind = 2;
            msgpack_pack_map(&r.pk, 2);
            s_str(&r, "consumer");
            s_str(&r, "c");
            s_str(&r, "live");
            msgpack_pack_array(&r.pk, 1);
            msgpack_pack_array(&r.pk, 3);
            msgpack_pack_bin(&r.pk, 15);
            msgpack_pack_bin_body(&r.pk, s_pub, 15);
            s_str(&r, "a");
            msgpack_pack_uint32(&r.pk, 1);
            break;
        case 13: // ack: more than 10000 items
            kind = 2;
            msgpack_pack_map(&r.pk, 2);
            s_str(&r, "consumer");
            s_str(&r, "c");
            s_str(&r, "acks");
            msgpack_pack_array(&r.pk, 10001);
            for (int i = 0; i < 10001; i++)
                msgpack_pack_uint32(&r.pk, 1);
            break;
        }
        int rc = kind == 0 ? zmesh__relay_consume_decode(r.buf.data, r.buf.size,
                                                         &c, err, sizeof err)
                 : kind == 1
                     ? zmesh__relay_next_decode(r.buf.data, r.buf.size, &n, err,
                                                sizeof err)
                     : zmesh__relay_ack_decode(r.buf.data, r.buf.size, 1 << 20,
                                               &a, err, sizeof err);
        if (rc != ZMESH_EPROTO)
            fail_msg("case %d decoded (%d)", k, rc);
        assert_true(strlen(err) > 0);
        msgpack_sbuffer_destroy(&r.buf);
    }
    // Not msgpack at all, empty, too large; unknown keys are ignored.
    assert_int_equal(zmesh__relay_next_decode("\xc1", 1, &n, err, sizeof err),
                     ZMESH_EPROTO);
    assert_int_equal(zmesh__relay_next_decode(NULL, 0, &n, err, sizeof err),
                     ZMESH_EPROTO);
    uint8_t big[5000];
    memset(big, 0xc0, sizeof big);
    assert_int_equal(
        zmesh__relay_consume_decode(big, sizeof big, &c, err, sizeof err),
        ZMESH_EPROTO);
    s_req_t r;
    s_req_init(&r);
    msgpack_pack_map(&r.pk, 3);
    s_str(&r, "consumer");
    s_str(&r, "c.1");
    s_str(&r, "future");
    msgpack_pack_nil(&r.pk);
    s_str(&r, "acks");
    msgpack_pack_array(&r.pk, 2);
    msgpack_pack_uint32(&r.pk, 7);
    msgpack_pack_uint32(&r.pk, 9);
    assert_int_equal(zmesh__relay_ack_decode(r.buf.data, r.buf.size, 1 << 20,
                                             &a, err, sizeof err),
                     0);
    assert_string_equal(a.consumer, "c.1");
    assert_int_equal(a.acks_count, 2);
    assert_int_equal(a.acks[1], 9);
    zmesh__relay_ack_clear(&a);
    msgpack_sbuffer_destroy(&r.buf);
}

static void
test_consume_next_ack(void **state)
{
    (void)state;
    s_env_t e;
    s_env_init(&e);
    // 1..4 orders.a, 5 other.x (no stream pattern, but stored here), 6..8
    // orders.b.
    for (uint64_t s = 1; s <= 4; s++)
        s_append(&e, "orders.a", s, 0);
    s_append(&e, "other.x", 1, 0);
    for (uint64_t s = 1; s <= 3; s++)
        s_append(&e, "orders.b", s, 0);
    s_answer_t a;
    assert_int_equal(s_consume(&e, "c1", "orders.*", NULL, &a), 0);
    assert_true(s_get(&a, "created")->via.boolean);
    assert_int_equal(s_u(&a, "floor"), 0);
    assert_int_equal(s_u(&a, "pending"), 7);
    assert_int_equal(s_u(&a, "last"), 8);
    msgpack_unpacked_destroy(&a.unpacked);
    // Not covered by any stream; a conflict; attach again.
    assert_int_equal(s_consume(&e, "c2", "billing.>", NULL, &a),
                     ZMESH_ENOTFOUND);
    assert_true(s_is_error(&a, "not_found"));
    msgpack_unpacked_destroy(&a.unpacked);
    assert_int_equal(s_consume(&e, "c1", "orders.a", NULL, &a), ZMESH_ESTATE);
    assert_true(s_is_error(&a, "conflict"));
    msgpack_unpacked_destroy(&a.unpacked);
    assert_int_equal(s_consume(&e, "c1", "orders.*", "new", &a), 0);
    assert_false(s_get(&a, "created")->via.boolean);
    assert_int_equal(s_u(&a, "floor"), 0); // start ignored on attach
    msgpack_unpacked_destroy(&a.unpacked);

    uint64_t rseqs[16];
    uint32_t del[16];
    size_t n = s_next(&e, "c1", 3, rseqs, del, &a);
    assert_int_equal(n, 3);
    assert_int_equal(rseqs[0], 1);
    assert_int_equal(rseqs[2], 3);
    assert_int_equal(del[0], 1);
    assert_int_equal(s_u(&a, "next"), 4);
    msgpack_unpacked_destroy(&a.unpacked);
    n = s_next(&e, "c1", 100, rseqs, del, &a);
    assert_int_equal(n, 7);        // from the floor again: delivered twice
    assert_int_equal(rseqs[4], 6); // 5 is not the filter's
    assert_int_equal(del[0], 2);
    assert_int_equal(del[3], 1);
    assert_int_equal(s_u(&a, "next"), 9);
    msgpack_unpacked_destroy(&a.unpacked);
    // Acks out of order: the floor moves only over settled records.
    uint64_t acks1[] = {2, 3};
    assert_int_equal(s_ack(&e, "c1", acks1, 2, NULL, 0), 0);
    uint64_t acks2[] = {1, 999};
    assert_int_equal(s_ack(&e, "c1", acks2, 2, NULL, 0), 3);
    // A live position acknowledges orders.a 4 and orders.b up to 2; the
    // floor passes 5 (not the filter's) and stops at 8 (orders.b 3).
    assert_int_equal(s_ack(&e, "c1", NULL, 0, "orders.a", 4), 5);
    assert_int_equal(s_ack(&e, "c1", NULL, 0, "orders.b", 2), 7);
    assert_int_equal(zmesh__relay_consumers_floor(e.set, "c1"), 7);
    // As a message (no answer).
    s_req_t r;
    s_req_init(&r);
    msgpack_pack_map(&r.pk, 2);
    s_str(&r, "consumer");
    s_str(&r, "c1");
    s_str(&r, "acks");
    msgpack_pack_array(&r.pk, 1);
    msgpack_pack_uint32(&r.pk, 8);
    assert_int_equal(
        zmesh__relay_consumers_ack(e.set, r.buf.data, r.buf.size, NULL), 0);
    msgpack_sbuffer_destroy(&r.buf);
    assert_int_equal(zmesh__relay_consumers_floor(e.set, "c1"), 8);
    n = s_next(&e, "c1", 100, rseqs, NULL, &a);
    assert_int_equal(n, 0);
    assert_int_equal(s_u(&a, "next"), 9);
    msgpack_unpacked_destroy(&a.unpacked);
    // Unknown consumer.
    s_req_init(&r);
    msgpack_pack_map(&r.pk, 1);
    s_str(&r, "consumer");
    s_str(&r, "nobody");
    assert_int_equal(
        zmesh__relay_consumers_next(e.set, r.buf.data, r.buf.size, &e.out),
        ZMESH_ENOTFOUND);
    msgpack_sbuffer_destroy(&r.buf);
    s_env_free(&e);
}

// A live position acknowledged before its record is stored (the consumer
// had the event live first) settles the record once it is stored: the
// floor moves on the relay's tick, without another request.
static void
test_live_ack_before_the_record_is_stored(void **state)
{
    (void)state;
    s_env_t e;
    s_env_init(&e);
    s_append(&e, "orders.a", 1, 0);
    s_answer_t a;
    assert_int_equal(s_consume(&e, "c1", "orders.*", NULL, &a), 0);
    msgpack_unpacked_destroy(&a.unpacked);
    assert_int_equal(s_ack(&e, "c1", NULL, 0, "orders.a", 3), 1);
    s_append(&e, "orders.a", 2, 0);
    s_append(&e, "orders.a", 3, 0);
    assert_int_equal(zmesh__relay_consumers_floor(e.set, "c1"), 1);
    int64_t now = zmesh__clock_ms() + 10 * ZMESH__RELAY_SAVE_MS;
    zmesh__relay_consumers_tick(e.set, now, false);
    assert_int_equal(zmesh__relay_consumers_floor(e.set, "c1"), 3);
    // Stored later still, and past the position: waits for its ack.
    s_append(&e, "orders.a", 4, 0);
    zmesh__relay_consumers_tick(e.set, now + 10 * ZMESH__RELAY_SAVE_MS, false);
    assert_int_equal(zmesh__relay_consumers_floor(e.set, "c1"), 3);
    s_env_free(&e);
}

static void
test_start_positions_and_max_deliver(void **state)
{
    (void)state;
    s_env_t e;
    s_env_init(&e);
    s_append(&e, "orders.a", 1, 0); // 1
    s_append(&e, "orders.b", 1, 0); // 2
    s_append(&e, "orders.a", 2, 0); // 3
    s_append(&e, "orders.b", 2, 0); // 4
    s_append(&e, "orders.c", 1, 0); // 5
    s_answer_t a;
    uint64_t rseqs[16];
    assert_int_equal(s_consume(&e, "new", "orders.>", "new", &a), 0);
    assert_int_equal(s_u(&a, "floor"), 5);
    msgpack_unpacked_destroy(&a.unpacked);
    assert_int_equal(s_consume(&e, "last", "orders.>", "last", &a), 0);
    assert_int_equal(s_u(&a, "pending"), 3);
    msgpack_unpacked_destroy(&a.unpacked);
    size_t n = s_next(&e, "last", 10, rseqs, NULL, &a);
    assert_int_equal(n, 3);
    assert_int_equal(rseqs[0], 3);
    assert_int_equal(rseqs[1], 4);
    assert_int_equal(rseqs[2], 5);
    msgpack_unpacked_destroy(&a.unpacked);
    // start seq, and max_deliver 2 settles a record after two deliveries.
    s_req_t r;
    s_req_init(&r);
    msgpack_pack_map(&r.pk, 5);
    s_str(&r, "consumer");
    s_str(&r, "seq");
    s_str(&r, "pattern");
    s_str(&r, "orders.>");
    s_str(&r, "start");
    s_str(&r, "seq");
    s_str(&r, "seq");
    msgpack_pack_uint32(&r.pk, 4);
    s_str(&r, "max_deliver");
    msgpack_pack_uint32(&r.pk, 2);
    assert_int_equal(zmesh__relay_consumers_consume(e.set, r.buf.data,
                                                    r.buf.size, 1, &e.out),
                     0);
    msgpack_sbuffer_destroy(&r.buf);
    s_answer(&a, &e.out);
    assert_int_equal(s_u(&a, "floor"), 3);
    assert_int_equal(s_u(&a, "max_deliver"), 2);
    msgpack_unpacked_destroy(&a.unpacked);
    assert_int_equal(s_next(&e, "seq", 10, rseqs, NULL, &a), 2);
    msgpack_unpacked_destroy(&a.unpacked);
    assert_int_equal(s_next(&e, "seq", 10, rseqs, NULL, &a), 2);
    assert_int_equal(s_u(&a, "floor"), 5);
    msgpack_unpacked_destroy(&a.unpacked);
    assert_int_equal(s_next(&e, "seq", 10, rseqs, NULL, &a), 0);
    msgpack_unpacked_destroy(&a.unpacked);
    s_env_free(&e);
}

static void
test_saved_and_loaded(void **state)
{
    (void)state;
    s_env_t e;
    s_env_init(&e);
    for (uint64_t s = 1; s <= 6; s++)
        s_append(&e, "orders.a", s, 0);
    s_answer_t a;
    assert_int_equal(s_consume(&e, "keep", "orders.a", NULL, &a), 0);
    msgpack_unpacked_destroy(&a.unpacked);
    uint64_t rseqs[16];
    uint32_t del[16];
    assert_int_equal(s_next(&e, "keep", 10, rseqs, NULL, &a), 6);
    msgpack_unpacked_destroy(&a.unpacked);
    uint64_t acks[] = {1, 2, 5};
    assert_int_equal(s_ack(&e, "keep", acks, 3, NULL, 0), 2);
    assert_int_equal(s_ack(&e, "keep", NULL, 0, "orders.a", 3), 3);
    // Destroy saves; a new set loads the floor, the acks above it, the
    // live positions and the delivery counts.
    zmesh__relay_consumers_destroy(&e.set);
    s_env_open_set(&e);
    assert_int_equal(zmesh__relay_consumers_floor(e.set, "keep"), 3);
    assert_int_equal(s_next(&e, "keep", 10, rseqs, del, &a), 2);
    assert_int_equal(rseqs[0], 4);
    assert_int_equal(rseqs[1], 6);
    assert_int_equal(del[0], 2);
    msgpack_unpacked_destroy(&a.unpacked);
    // orders.a 2 stored again (rseq 7) is at or below the live position.
    assert_int_equal(s_append(&e, "orders.a", 2, 0), 7);
    uint64_t rest[] = {4, 6};
    assert_int_equal(s_ack(&e, "keep", rest, 2, NULL, 0), 7);
    // The blob as saved passes the fuzz target's round trip.
    uint8_t *blob = malloc(ZMESH__STORE_CONSUMER_BLOB_MAX);
    assert_non_null(blob);
    zmesh__relay_consumers_tick(e.set, 0, true);
    uint64_t floor;
    size_t size;
    assert_true(zmesh__store_consumer_load(e.store, "keep", &floor, blob,
                                           ZMESH__STORE_CONSUMER_BLOB_MAX,
                                           &size) >= 0);
    assert_int_equal(floor, 7);
    assert_int_equal(zmesh__relay_consumer_blob_check(blob, size), 0);
    assert_int_equal(zmesh__relay_consumer_blob_check(blob, size - 1),
                     ZMESH_EPROTO);
    // A blob this version cannot read: out of service, files untouched.
    assert_int_equal(zmesh__store_consumer_save(e.store, "bad", 1, "\x80", 1),
                     0);
    zmesh__relay_consumers_destroy(&e.set);
    s_env_open_set(&e);
    assert_int_equal(zmesh__relay_consumers_floor(e.set, "bad"), -1);
    assert_int_equal(zmesh__relay_consumers_unusable(e.set, 0), 1);
    assert_int_equal(s_consume(&e, "bad", "orders.a", NULL, &a), ZMESH_ESYS);
    assert_true(s_is_error(&a, "unavailable"));
    msgpack_unpacked_destroy(&a.unpacked);
    assert_int_equal(zmesh__store_consumer_load(e.store, "bad", &floor, blob,
                                                ZMESH__STORE_CONSUMER_BLOB_MAX,
                                                &size),
                     0);
    assert_int_equal(size, 1);
    free(blob);
    s_env_free(&e);
}

static void
test_lost_to_retention(void **state)
{
    (void)state;
    s_env_t e;
    s_env_init(&e);
    s_answer_t a;
    assert_int_equal(s_consume(&e, "slow", "orders.>", NULL, &a), 0);
    msgpack_unpacked_destroy(&a.unpacked);
    // 4096-byte segments: enough records for several.
    for (uint64_t s = 1; s <= 300; s++)
        s_append(&e, "orders.a", s, 0);
    zmesh__store_destroy(&e.store);
    zmesh__store_config_t sc = {.sync = ZMESH__STORE_SYNC_NEVER,
                                .segment_bytes = 4096,
                                .max_events = 100};
    zmesh__relay_consumers_destroy(&e.set);
    assert_int_equal(zmesh__store_open(&e.store, e.path, &sc), 0);
    assert_true(zmesh__store_retention(e.store, 0) > 0);
    uint64_t first = zmesh__store_first_seq(e.store);
    assert_true(first > 1);
    s_env_open_set(&e);
    uint64_t rseqs[16];
    assert_int_equal(s_next(&e, "slow", 1, rseqs, NULL, &a), 1);
    assert_int_equal(rseqs[0], first);
    const msgpack_object *lost = s_get(&a, "lost");
    assert_non_null(lost);
    assert_int_equal(lost->via.array.ptr[0].via.u64, 1);
    assert_int_equal(lost->via.array.ptr[1].via.u64, first - 1);
    assert_int_equal(s_u(&a, "floor"), first - 1);
    msgpack_unpacked_destroy(&a.unpacked);
    // Reported once.
    assert_int_equal(s_next(&e, "slow", 1, rseqs, NULL, &a), 1);
    assert_null(s_get(&a, "lost"));
    msgpack_unpacked_destroy(&a.unpacked);
    s_env_free(&e);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_covers),
        cmocka_unit_test(test_decoders),
        cmocka_unit_test(test_consume_next_ack),
        cmocka_unit_test(test_live_ack_before_the_record_is_stored),
        cmocka_unit_test(test_start_positions_and_max_deliver),
        cmocka_unit_test(test_saved_and_loaded),
        cmocka_unit_test(test_lost_to_retention),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
