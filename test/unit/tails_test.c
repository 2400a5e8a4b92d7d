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

#define S_SENT_MAX 4096

typedef struct {
    const zmesh__pubstream_t *sent[S_SENT_MAX];
    uint64_t seqs[S_SENT_MAX];
    size_t count;
} s_sent_t;

static void
s_send(void *arg, const zmesh__pubstream_t *stream)
{
    s_sent_t *sent = arg;
    assert_true(sent->count < S_SENT_MAX);
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

// A stream that publishes again while waiting for a later tail starts
// over at once: its next tail is 0.1 s after the new event, not when the
// old schedule said.
static void
test_publishing_again_starts_over(void **state)
{
    (void)state;
    zmesh__tails_t *tails = NULL;
    assert_int_equal(zmesh__tails_new(&tails), 0);
    zmesh__pubstream_t *a = zmesh__tails_stream_new("t.a", 3);
    assert_non_null(a);
    const int64_t t = 1700000000000000;
    s_sent_t sent;
    // The first publish lists it: the next tail is due earlier than none.
    a->sequence = 1;
    assert_true(zmesh__tails_published(tails, a, t));
    assert_int_equal(s_run(tails, t + 100 * MS, &sent), 1);
    assert_int_equal(s_run(tails, t + 1000 * MS, &sent), 1);
    assert_int_equal(zmesh__tails_next(tails), t + 10000 * MS);
    // Waiting for the third: a new event at 5 s moves it up.
    a->sequence = 2;
    assert_true(zmesh__tails_published(tails, a, t + 5000 * MS));
    assert_int_equal(zmesh__tails_next(tails), t + 5100 * MS);
    // Another event while the first tail is to come moves nothing up.
    a->sequence = 3;
    assert_false(zmesh__tails_published(tails, a, t + 5050 * MS));
    assert_int_equal(s_run(tails, t + 5100 * MS, &sent), 0);
    assert_int_equal(zmesh__tails_next(tails), t + 5150 * MS);
    assert_int_equal(s_run(tails, t + 5150 * MS, &sent), 1);
    assert_int_equal(sent.seqs[0], 3);
    assert_int_equal(s_run(tails, t + 6050 * MS, &sent), 1);
    assert_int_equal(s_run(tails, t + 15049 * MS, &sent), 0);
    assert_int_equal(s_run(tails, t + 15050 * MS, &sent), 1);
    assert_int_equal(zmesh__tails_listed(tails), 0);
    zmesh__tails_destroy(&tails);
    free(a);
}

// Many streams, published one after the other and some again later: each
// run sends exactly the streams due by then, in the order they came due,
// and every stream gets its three tails at their times.
static void
test_many_streams_in_order(void **state)
{
    (void)state;
    enum { N = 2000 };
    zmesh__tails_t *tails = NULL;
    assert_int_equal(zmesh__tails_new(&tails), 0);
    zmesh__pubstream_t *streams[N];
    const int64_t t = 1700000000000000;
    for (int i = 0; i < N; i++) {
        char topic[32];
        int n = snprintf(topic, sizeof topic, "o.%d", i);
        streams[i] = zmesh__tails_stream_new(topic, (size_t)n);
        assert_non_null(streams[i]);
        s_publish(tails, streams[i], t + i * MS);
    }
    // The even ones publish again at 3 s: their tails start over.
    for (int i = 0; i < N; i += 2)
        s_publish(tails, streams[i], t + 3000 * MS + i);
    int64_t last_at[N];
    int count[N];
    memset(count, 0, sizeof count);
    for (int64_t now = t; now <= t + 20000 * MS; now += 7 * MS) {
        static s_sent_t sent;
        s_run(tails, now, &sent);
        const zmesh__pubstream_t *const *got = sent.sent;
        size_t n = sent.count;
        for (size_t j = 0; j < n; j++) {
            int i = (int)(strtol(got[j]->topic + 2, NULL, 10));
            int64_t event = i % 2 == 0 ? t + 3000 * MS + i : t + i * MS;
            static const int64_t after[] = {100, 1000, 10000};
            int64_t due = event + after[count[i]] * MS;
            // Sent at the first run at or after its time.
            assert_true(now >= due && now < due + 7 * MS);
            last_at[i] = now;
            count[i]++;
        }
        assert_true(zmesh__tails_next(tails) == 0 ||
                    zmesh__tails_next(tails) > now);
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(count[i], 3);
        assert_true(last_at[i] > t);
        free(streams[i]);
    }
    assert_int_equal(zmesh__tails_listed(tails), 0);
    zmesh__tails_destroy(&tails);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schedule),
        cmocka_unit_test(test_streams_and_catching_up),
        cmocka_unit_test(test_publishing_again_starts_over),
        cmocka_unit_test(test_many_streams_in_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
