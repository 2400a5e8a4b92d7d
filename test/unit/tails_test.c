/*  tails_test.c - when a publisher's tail frames are due: 0.1, 1 and 10 s
    after a stream's last event, each stream on its own clock, one frame
    when several of its times have passed, none once a stream has had all
    three until it publishes again, and a publish that starts the
    schedule again. Times are given, never slept. */
#include "tails.h"
#include "zmesh.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define MS INT64_C(1000) /* microseconds */

typedef struct {
    const zmesh__pubstream_t *sent[8];
    uint64_t seqs[8];
    size_t count;
} s_sent_t;

static void
s_send(void *arg, const zmesh__pubstream_t *stream)
{
    s_sent_t *sent = arg;
    assert_true(sent->count < 8);
    sent->seqs[sent->count] = stream->sequence;
    sent->sent[sent->count++] = stream;
}

static size_t
s_run(zmesh__tails_t *tails, int64_t now, s_sent_t *sent)
{
    memset(sent, 0, sizeof *sent);
    size_t due = zmesh__tails_run(tails, now, s_send, sent);
    assert_int_equal(due, sent->count);
    return due;
}

static void
s_publish(zmesh__tails_t *tails, zmesh__pubstream_t *stream, int64_t now)
{
    stream->sequence++;
    zmesh__tails_published(tails, stream, now);
}

static void
test_schedule(void **state)
{
    (void)state;
    zmesh__tails_t *tails = NULL;
    assert_int_equal(zmesh__tails_new(&tails), 0);
    assert_int_equal(zmesh__tails_next(tails), 0);
    zmesh__pubstream_t *a = zmesh__tails_stream_new("t.a", 3);
    assert_non_null(a);
    assert_string_equal(a->topic, "t.a");
    const int64_t t = 1700000000000000;
    s_sent_t sent;
    // A burst of three: one schedule, from the last.
    for (int i = 0; i < 3; i++)
        s_publish(tails, a, t + i * MS);
    assert_int_equal(zmesh__tails_listed(tails), 1);
    // Early (set by the first event), never late.
    assert_true(zmesh__tails_next(tails) <= t + 2 * MS + 100 * MS);
    assert_int_equal(s_run(tails, t + 101 * MS, &sent), 0);
    assert_int_equal(zmesh__tails_next(tails), t + 102 * MS);
    assert_int_equal(s_run(tails, t + 102 * MS, &sent), 1);
    assert_ptr_equal(sent.sent[0], a);
    assert_int_equal(sent.seqs[0], 3);
    assert_int_equal(zmesh__tails_next(tails), t + 1002 * MS);
    assert_int_equal(s_run(tails, t + 1001 * MS, &sent), 0);
    assert_int_equal(s_run(tails, t + 1002 * MS, &sent), 1);
    assert_int_equal(zmesh__tails_next(tails), t + 10002 * MS);
    assert_int_equal(s_run(tails, t + 10002 * MS, &sent), 1);
    // All three sent: off the list, nothing due, ever.
    assert_int_equal(zmesh__tails_listed(tails), 0);
    assert_int_equal(zmesh__tails_next(tails), 0);
    assert_int_equal(s_run(tails, t + 3600000 * MS, &sent), 0);
    // A publish starts it all again.
    s_publish(tails, a, t + 20000 * MS);
    assert_int_equal(zmesh__tails_next(tails), t + 20100 * MS);
    assert_int_equal(s_run(tails, t + 20100 * MS, &sent), 1);
    assert_int_equal(sent.seqs[0], 4);
    // ... also one in the middle of the schedule.
    s_publish(tails, a, t + 20500 * MS);
    assert_int_equal(s_run(tails, t + 20599 * MS, &sent), 0);
    assert_int_equal(s_run(tails, t + 20600 * MS, &sent), 1);
    assert_int_equal(sent.seqs[0], 5);
    zmesh__tails_destroy(&tails);
    assert_null(tails);
    free(a);
}

// A publisher that was away (the application did not call in) sends one
// tail frame for all the times that passed; streams keep their own
// clocks; a run without a send function moves the schedule on alone.
static void
test_streams_and_catching_up(void **state)
{
    (void)state;
    zmesh__tails_t *tails = NULL;
    assert_int_equal(zmesh__tails_new(&tails), 0);
    zmesh__pubstream_t *a = zmesh__tails_stream_new("t.a", 3);
    zmesh__pubstream_t *b = zmesh__tails_stream_new("t.b", 3);
    zmesh__pubstream_t *c = zmesh__tails_stream_new("t.c", 3);
    assert_true(a && b && c);
    const int64_t t = 1700000000000000;
    s_sent_t sent;
    s_publish(tails, a, t);
    s_publish(tails, b, t + 50 * MS);
    s_publish(tails, c, t + 2000 * MS);
    assert_int_equal(zmesh__tails_listed(tails), 3);
    // At 1.5 s: a's and b's first two times have passed, one frame each.
    assert_int_equal(s_run(tails, t + 1500 * MS, &sent), 2);
    assert_true(sent.sent[0] != sent.sent[1]);
    assert_int_equal(a->tails, 2);
    assert_int_equal(b->tails, 2);
    assert_int_equal(zmesh__tails_next(tails), t + 2100 * MS); // c's
    // An hour later: one each, and every stream is done.
    assert_int_equal(s_run(tails, t + 3600000 * MS, &sent), 3);
    assert_int_equal(zmesh__tails_listed(tails), 0);
    // Without a send function: due, counted, not sent.
    s_publish(tails, b, t + 3600001 * MS);
    assert_int_equal(zmesh__tails_run(tails, t + 3600101 * MS, NULL, NULL), 1);
    assert_int_equal(b->tails, 1);
    assert_int_equal(zmesh__tails_listed(tails), 1);
    // The wall clock stepping back delays a tail, never sends one early.
    assert_int_equal(s_run(tails, t, &sent), 0);
    zmesh__tails_destroy(&tails);
    free(a);
    free(b);
    free(c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schedule),
        cmocka_unit_test(test_streams_and_catching_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
