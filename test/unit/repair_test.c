/*  repair_test.c - a subscriber's repair sessions: a gap opens one, later
    frames of the stream are held and further gaps asked for, answers fill
    the gap (only from the right publisher and stream, without duplicates),
    and release hands everything over in sequence order when every request
    is answered, at the deadline, when the publisher leaves, or at the byte
    limit. Also the requests-in-flight table of request/reply. */
#include "codec.h"
#include "repair.h"
#include "requests.h"
#include "zmesh.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

static const uint8_t s_pub[16] = {7};
static const uint8_t s_other[16] = {8};

typedef struct {
    uint8_t bytes[128];
    size_t size;
    zmesh__frame_t frame;
} s_frame_t;

static void
s_make(s_frame_t *f, const uint8_t *publisher, const char *topic, uint64_t seq)
{
    const uint8_t payload[] = {0xc0};
    int size = zmesh__frame_encode(topic, strlen(topic), publisher, seq, 1000,
                                   payload, 1, f->bytes, sizeof f->bytes);
    assert_true(size > 0);
    f->size = (size_t)size;
    assert_int_equal(zmesh__frame_decode(f->bytes, f->size, &f->frame), 0);
}

static void
s_msg(zmq_msg_t *msg, const s_frame_t *f)
{
    assert_int_equal(zmq_msg_init_size(msg, f->size), 0);
    memcpy(zmq_msg_data(msg), f->bytes, f->size);
}

/* What release handed over. */
typedef struct {
    uint64_t seqs[64];
    bool repaired[64];
    size_t count;
    size_t sessions;
    bool join;
    bool vouched;
} s_out_t;

static void
s_on_session(void *arg, const uint8_t publisher[16], const char *topic,
             size_t topic_size, bool join, bool vouched)
{
    (void)publisher;
    (void)topic;
    (void)topic_size;
    s_out_t *out = arg;
    out->sessions++;
    out->join = join;
    out->vouched = vouched;
}

static void
s_on_frame(void *arg, zmq_msg_t *msg, uint64_t seq, bool repaired)
{
    s_out_t *out = arg;
    zmesh__frame_t frame;
    // The message handed over is the frame itself.
    assert_int_equal(
        zmesh__frame_decode(zmq_msg_data(msg), zmq_msg_size(msg), &frame), 0);
    assert_int_equal(frame.sequence, seq);
    out->repaired[out->count] = repaired;
    out->seqs[out->count++] = seq;
}

static void
test_gap_filled_in_order(void **state)
{
    (void)state;
    zmesh__repair_t *repair = NULL;
    assert_int_equal(zmesh__repair_new(&repair, 4, 1 << 20), 0);
    s_frame_t f5, f6, f9, f3, f4, f7, f8, wrong;
    s_make(&f5, s_pub, "t.x", 5);
    zmq_msg_t msg;
    s_msg(&msg, &f5);
    zmesh__nak_t nak;
    // 3 and 4 are missing when 5 comes.
    assert_true(
        zmesh__repair_open(repair, &f5.frame, &msg, 3, 4, false, 1000, &nak));
    assert_int_equal(zmq_msg_size(&msg), 0); // moved into the session
    assert_string_equal(nak.topic, "t.x");
    assert_memory_equal(nak.publisher, s_pub, 16);
    assert_int_equal(nak.first, 3);
    assert_int_equal(nak.last, 4);
    assert_false(nak.join);
    uint64_t first_req = nak.req;
    // 6 is held; 9 is held and asks for 7..8.
    s_make(&f6, s_pub, "t.x", 6);
    s_msg(&msg, &f6);
    assert_int_equal(zmesh__repair_hold(repair, &f6.frame, &msg, &nak),
                     ZMESH__REPAIR_HELD);
    s_make(&f9, s_pub, "t.x", 9);
    s_msg(&msg, &f9);
    assert_int_equal(zmesh__repair_hold(repair, &f9.frame, &msg, &nak),
                     ZMESH__REPAIR_NAK);
    assert_int_equal(nak.first, 7);
    assert_int_equal(nak.last, 8);
    uint64_t second_req = nak.req;
    assert_true(second_req != first_req);
    // A duplicate of a held frame; another stream passes.
    s_msg(&msg, &f6);
    assert_int_equal(zmesh__repair_hold(repair, &f6.frame, &msg, &nak),
                     ZMESH__REPAIR_DUPLICATE);
    zmq_msg_close(&msg);
    s_make(&wrong, s_pub, "t.y", 1);
    s_msg(&msg, &wrong);
    assert_int_equal(zmesh__repair_hold(repair, &wrong.frame, &msg, &nak),
                     ZMESH__REPAIR_PASS);
    zmq_msg_close(&msg);

    s_out_t out;
    memset(&out, 0, sizeof out);
    // Nothing is released before the answers or the deadline.
    assert_int_equal(zmesh__repair_release(repair, 10, false, s_on_session,
                                           s_on_frame, &out),
                     0);
    assert_int_equal(zmesh__repair_deadline(repair), 1000);
    // Answers: from the wrong sender (ignored as a whole), then the right
    // one with a frame of another publisher and one of another topic.
    s_make(&f3, s_pub, "t.x", 3);
    s_make(&f4, s_pub, "t.x", 4);
    s_make(&f7, s_pub, "t.x", 7);
    s_make(&f8, s_other, "t.x", 8);
    void *frames[] = {f3.bytes, f4.bytes, f8.bytes, wrong.bytes};
    size_t sizes[] = {f3.size, f4.size, f8.size, wrong.size};
    uint64_t rejected = 0;
    assert_false(zmesh__repair_answer(repair, s_other, first_req, frames, sizes,
                                      2, true, false, &rejected));
    assert_true(zmesh__repair_answer(repair, s_pub, first_req, frames, sizes, 4,
                                     true, false, &rejected));
    assert_int_equal(rejected, 2);
    // One request still open: still held.
    assert_int_equal(zmesh__repair_release(repair, 10, false, s_on_session,
                                           s_on_frame, &out),
                     0);
    void *more[] = {f7.bytes};
    size_t more_sizes[] = {f7.size};
    assert_true(zmesh__repair_answer(repair, s_pub, second_req, more,
                                     more_sizes, 1, true, false, &rejected));
    assert_int_equal(zmesh__repair_release(repair, 10, false, s_on_session,
                                           s_on_frame, &out),
                     1);
    // 3..7 and 9, in order; 8 never came (the stream bookkeeping reports
    // it as a gap).
    const uint64_t expect[] = {3, 4, 5, 6, 7, 9};
    const bool repaired[] = {true, true, false, false, true, false};
    assert_int_equal(out.count, 6);
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(out.seqs[i], expect[i]);
        assert_int_equal(out.repaired[i], repaired[i]);
    }
    assert_int_equal(zmesh__repair_sessions(repair), 0);
    // A late answer to a finished session is ignored.
    assert_false(zmesh__repair_answer(repair, s_pub, first_req, frames, sizes,
                                      1, true, false, &rejected));
    zmesh__repair_stats_t stats;
    zmesh__repair_stats(repair, &stats);
    assert_int_equal(stats.naks, 2);
    assert_int_equal(stats.repaired, 3);
    assert_int_equal(stats.held_bytes, 0);
    zmesh__repair_destroy(&repair);
    assert_null(repair);
}

static void
test_deadline_abandon_and_limits(void **state)
{
    (void)state;
    zmesh__repair_t *repair = NULL;
    s_frame_t f[4];
    assert_int_equal(zmesh__repair_new(&repair, 2, 4096), 0);
    zmq_msg_t msg;
    zmesh__nak_t nak;
    s_out_t out;
    memset(&out, 0, sizeof out);
    // A slow joiner's session: asks with join for 1..9.
    s_make(&f[0], s_pub, "a.b", 10);
    s_msg(&msg, &f[0]);
    assert_true(
        zmesh__repair_open(repair, &f[0].frame, &msg, 1, 9, true, 500, &nak));
    assert_true(nak.join);
    // Another publisher's stream.
    s_make(&f[1], s_other, "a.b", 4);
    s_msg(&msg, &f[1]);
    assert_true(
        zmesh__repair_open(repair, &f[1].frame, &msg, 2, 3, false, 800, &nak));
    // The session limit is 2: a third is refused, the message untouched.
    s_make(&f[2], s_pub, "a.c", 4);
    s_msg(&msg, &f[2]);
    assert_false(
        zmesh__repair_open(repair, &f[2].frame, &msg, 2, 3, false, 800, &nak));
    assert_int_equal(zmq_msg_size(&msg), f[2].size);
    zmq_msg_close(&msg);
    // At 500 the first is due; it was a join, not vouched.
    assert_int_equal(zmesh__repair_release(repair, 500, false, s_on_session,
                                           s_on_frame, &out),
                     1);
    assert_true(out.join);
    assert_false(out.vouched);
    assert_int_equal(out.count, 1);
    assert_int_equal(out.seqs[0], 10);
    // The other publisher leaves: released at once.
    zmesh__repair_abandon(repair, s_other);
    assert_int_equal(zmesh__repair_deadline(repair), 1);
    assert_int_equal(zmesh__repair_release(repair, 501, false, s_on_session,
                                           s_on_frame, &out),
                     1);
    assert_int_equal(out.count, 2);
    assert_int_equal(out.seqs[1], 4);
    zmesh__repair_stats_t stats;
    zmesh__repair_stats(repair, &stats);
    assert_int_equal(stats.timeouts, 1);
    assert_int_equal(stats.refused, 1);
    zmesh__repair_destroy(&repair);
}

static void
test_byte_limit_ends_session(void **state)
{
    (void)state;
    zmesh__repair_t *repair = NULL;
    s_frame_t f;
    s_make(&f, s_pub, "t.x", 2);
    // Room for about three frames.
    assert_int_equal(zmesh__repair_new(&repair, 4, f.size * 3 + 1), 0);
    zmq_msg_t msg;
    zmesh__nak_t nak;
    s_msg(&msg, &f);
    assert_true(
        zmesh__repair_open(repair, &f.frame, &msg, 1, 1, false, 99999, &nak));
    s_out_t out;
    memset(&out, 0, sizeof out);
    for (uint64_t seq = 3; seq <= 6; seq++) {
        s_make(&f, s_pub, "t.x", seq);
        s_msg(&msg, &f);
        assert_int_equal(zmesh__repair_hold(repair, &f.frame, &msg, &nak),
                         ZMESH__REPAIR_HELD);
    }
    // Over the limit: released now, though unanswered and not late.
    assert_int_equal(
        zmesh__repair_release(repair, 0, false, s_on_session, s_on_frame, &out),
        1);
    assert_int_equal(out.count, 5);
    // And release(all) empties everything at stop.
    s_make(&f, s_pub, "t.y", 5);
    s_msg(&msg, &f);
    assert_true(
        zmesh__repair_open(repair, &f.frame, &msg, 1, 4, false, 99999, &nak));
    assert_int_equal(
        zmesh__repair_release(repair, 0, true, s_on_session, s_on_frame, &out),
        1);
    assert_int_equal(zmesh__repair_sessions(repair), 0);
    zmesh__repair_destroy(&repair);
}

typedef struct {
    uint64_t req[8];
    bool left[8];
    uint8_t peer[8][16];
    size_t count;
} s_ended_t;

/*  A tail frame of `topic` whose last event is `last`, and the marker the
    agent holds for it: the same frame, at sequence last + 1. */
static void
s_make_tail(s_frame_t *f, const char *topic, uint64_t last)
{
    int size = zmesh__frame_encode_flags(
        topic, strlen(topic), s_pub, last, 1000, ZMESH__FRAME_TAIL,
        ZMESH__TAIL_PAYLOAD, 1, f->bytes, sizeof f->bytes);
    assert_true(size > 0);
    f->size = (size_t)size;
    zmesh__batch_t b;
    assert_int_equal(zmesh__batch_decode(f->bytes, f->size, &b), 0);
    f->frame = b.frame;
    f->frame.sequence = last + 1;
}

/*  What release handed over, tail markers told apart (a marker's message
    is the tail frame, whose own sequence is the marker's less one). */
typedef struct {
    uint64_t seqs[16];
    bool tail[16];
    size_t count;
} s_marked_t;

static void
s_on_marked(void *arg, zmq_msg_t *msg, uint64_t seq, bool repaired)
{
    (void)repaired;
    s_marked_t *out = arg;
    zmesh__batch_t b;
    assert_int_equal(
        zmesh__batch_decode(zmq_msg_data(msg), zmq_msg_size(msg), &b), 0);
    bool tail = b.frame.flags & ZMESH__FRAME_TAIL;
    assert_int_equal(b.frame.sequence + tail, seq);
    out->tail[out->count] = tail;
    out->seqs[out->count++] = seq;
}

static void
s_no_session(void *arg, const uint8_t publisher[16], const char *topic,
             size_t topic_size, bool join, bool vouched)
{
    (void)arg;
    (void)publisher;
    (void)topic;
    (void)topic_size;
    (void)join;
    (void)vouched;
}

// A tail frame's marker: it opens a session, or joins one, asking for the
// end of the stream but not for its own place; an event at that place,
// live or repaired, takes it; a second tail for the same end is a
// duplicate.
static void
test_tail_marker(void **state)
{
    (void)state;
    zmesh__repair_t *repair = NULL;
    assert_int_equal(zmesh__repair_new(&repair, 4, 1 << 20), 0);
    zmesh__nak_t nak;
    zmq_msg_t msg;
    // The tail says 10 is the last; 8..10 are missing here.
    s_frame_t tail, again, f8, f9, f10, f11, f12;
    s_make_tail(&tail, "t.x", 10);
    s_msg(&msg, &tail);
    assert_true(zmesh__repair_open(repair, &tail.frame, &msg, 8, 10, false,
                                   1000, &nak));
    assert_int_equal(nak.first, 8);
    assert_int_equal(nak.last, 10);
    // The same tail again: held already.
    s_make_tail(&again, "t.x", 10);
    s_msg(&msg, &again);
    assert_int_equal(zmesh__repair_hold(repair, &again.frame, &msg, &nak),
                     ZMESH__REPAIR_DUPLICATE);
    zmq_msg_close(&msg);
    // Event 11 comes live after all: it takes the marker's place, and
    // asks for nothing more (8..10 are asked already).
    s_make(&f11, s_pub, "t.x", 11);
    s_msg(&msg, &f11);
    assert_int_equal(zmesh__repair_hold(repair, &f11.frame, &msg, &nak),
                     ZMESH__REPAIR_HELD);
    // 12, then a later tail (12): its marker at 13 asks for nothing.
    s_make(&f12, s_pub, "t.x", 12);
    s_msg(&msg, &f12);
    assert_int_equal(zmesh__repair_hold(repair, &f12.frame, &msg, &nak),
                     ZMESH__REPAIR_HELD);
    s_make_tail(&again, "t.x", 12);
    s_msg(&msg, &again);
    assert_int_equal(zmesh__repair_hold(repair, &again.frame, &msg, &nak),
                     ZMESH__REPAIR_HELD);
    s_make(&f8, s_pub, "t.x", 8);
    s_make(&f9, s_pub, "t.x", 9);
    s_make(&f10, s_pub, "t.x", 10);
    void *frames[] = {f8.bytes, f9.bytes, f10.bytes};
    size_t sizes[] = {f8.size, f9.size, f10.size};
    uint64_t rejected = 0;
    assert_true(zmesh__repair_answer(repair, s_pub, nak.req, frames, sizes, 3,
                                     true, false, &rejected));
    assert_int_equal(rejected, 0);
    s_marked_t out;
    memset(&out, 0, sizeof out);
    assert_int_equal(zmesh__repair_release(repair, 10, false, s_no_session,
                                           s_on_marked, &out),
                     1);
    const uint64_t expect[] = {8, 9, 10, 11, 12, 13};
    assert_int_equal(out.count, 6);
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(out.seqs[i], expect[i]);
        assert_int_equal(out.tail[i], i == 5);
    }

    // A tail that comes while another gap of its stream is being
    // repaired asks for the end too: 3..4 missing when 5 came, and the
    // tail says 7 is the last.
    s_frame_t f5, f3, f4, f6, f7;
    s_make(&f5, s_pub, "t.x", 5);
    s_msg(&msg, &f5);
    assert_true(
        zmesh__repair_open(repair, &f5.frame, &msg, 3, 4, false, 1000, &nak));
    uint64_t first_req = nak.req;
    s_make_tail(&tail, "t.x", 7);
    s_msg(&msg, &tail);
    assert_int_equal(zmesh__repair_hold(repair, &tail.frame, &msg, &nak),
                     ZMESH__REPAIR_NAK);
    assert_int_equal(nak.first, 6);
    assert_int_equal(nak.last, 7);
    // 7 is repaired, 6 never comes: what is released shows the hole.
    s_make(&f3, s_pub, "t.x", 3);
    s_make(&f4, s_pub, "t.x", 4);
    s_make(&f6, s_pub, "t.x", 6);
    s_make(&f7, s_pub, "t.x", 7);
    void *first_frames[] = {f3.bytes, f4.bytes};
    size_t first_sizes[] = {f3.size, f4.size};
    assert_true(zmesh__repair_answer(repair, s_pub, first_req, first_frames,
                                     first_sizes, 2, true, false, &rejected));
    void *end_frames[] = {f7.bytes};
    size_t end_sizes[] = {f7.size};
    assert_true(zmesh__repair_answer(repair, s_pub, nak.req, end_frames,
                                     end_sizes, 1, true, false, &rejected));
    memset(&out, 0, sizeof out);
    assert_int_equal(zmesh__repair_release(repair, 10, false, s_no_session,
                                           s_on_marked, &out),
                     1);
    const uint64_t expect2[] = {3, 4, 5, 7, 8};
    assert_int_equal(out.count, 5);
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(out.seqs[i], expect2[i]);
        assert_int_equal(out.tail[i], i == 4);
    }
    zmesh__repair_stats_t stats;
    zmesh__repair_stats(repair, &stats);
    assert_int_equal(stats.held_bytes, 0);
    zmesh__repair_destroy(&repair);
}

static void
s_on_ended(void *arg, uint64_t req, bool left, const uint8_t peer[16])
{
    s_ended_t *ended = arg;
    ended->req[ended->count] = req;
    ended->left[ended->count] = left;
    memcpy(ended->peer[ended->count++], peer, 16);
}

static void
test_requests(void **state)
{
    (void)state;
    zmesh__requests_t *requests = NULL;
    assert_int_equal(zmesh__requests_new(&requests, 3), 0);
    uint64_t a = zmesh__requests_next(requests);
    uint64_t b = zmesh__requests_next(requests);
    uint64_t c = zmesh__requests_next(requests);
    assert_true(a != b && b != c);
    assert_int_equal(zmesh__requests_add(requests, a, s_pub, 300), 0);
    assert_int_equal(zmesh__requests_add(requests, b, s_other, 100), 0);
    assert_int_equal(zmesh__requests_add(requests, c, s_pub, 200), 0);
    assert_int_equal(zmesh__requests_add(requests, 99, s_pub, 50), ZMESH_EFULL);
    assert_int_equal(zmesh__requests_deadline(requests), 100);
    // Only the peer asked may answer, once.
    assert_false(zmesh__requests_answer(requests, c, s_other));
    assert_true(zmesh__requests_answer(requests, c, s_pub));
    assert_false(zmesh__requests_answer(requests, c, s_pub));
    s_ended_t ended;
    memset(&ended, 0, sizeof ended);
    // Nothing due at 99; b at 100.
    assert_int_equal(
        zmesh__requests_expire_all(requests, 99, NULL, s_on_ended, &ended), 0);
    assert_int_equal(
        zmesh__requests_expire_all(requests, 100, NULL, s_on_ended, &ended), 1);
    assert_int_equal(ended.req[0], b);
    assert_false(ended.left[0]);
    assert_memory_equal(ended.peer[0], s_other, 16);
    // Its peer leaves: a ends as gone, not due.
    assert_int_equal(
        zmesh__requests_expire_all(requests, 101, s_pub, s_on_ended, &ended),
        1);
    assert_int_equal(ended.req[1], a);
    assert_true(ended.left[1]);
    assert_memory_equal(ended.peer[1], s_pub, 16);
    assert_int_equal(
        zmesh__requests_expire_all(requests, 101, s_pub, s_on_ended, &ended),
        0);
    assert_int_equal(zmesh__requests_size(requests), 0);
    assert_int_equal(zmesh__requests_deadline(requests), 0);
    zmesh__requests_destroy(&requests);
    assert_null(requests);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gap_filled_in_order),
        cmocka_unit_test(test_deadline_abandon_and_limits),
        cmocka_unit_test(test_byte_limit_ends_session),
        cmocka_unit_test(test_tail_marker),
        cmocka_unit_test(test_requests),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
