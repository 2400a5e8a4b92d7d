/*  streams_test.c - the per-stream sequence verdicts: first, next, gap,
    old; streams kept apart by publisher and by topic, also when the
    one-stream cache is in play; forgetting a publisher; the bound on the
    number of streams. */
#include "streams.h"
#include "zmesh.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

static const uint8_t s_a[16] = {1};
static const uint8_t s_b[16] = {2};

static zmesh__seq_verdict_t
s_track(zmesh__streams_t *streams, const uint8_t *id, const char *topic,
        uint64_t sequence, uint64_t *first, uint64_t *last)
{
    *first = *last = 0;
    return zmesh__streams_track(streams, id, topic, strlen(topic), sequence,
                                first, last);
}

static void
test_verdicts(void **state)
{
    (void)state;
    zmesh__streams_t *streams = NULL;
    assert_int_equal(zmesh__streams_new(&streams, 100), 0);
    uint64_t first, last;
    // A stream starts wherever the subscriber came in.
    assert_int_equal(s_track(streams, s_a, "t.x", 7, &first, &last),
                     ZMESH__SEQ_FIRST);
    assert_int_equal(s_track(streams, s_a, "t.x", 8, &first, &last),
                     ZMESH__SEQ_NEXT);
    assert_int_equal(s_track(streams, s_a, "t.x", 8, &first, &last),
                     ZMESH__SEQ_OLD);
    assert_int_equal(s_track(streams, s_a, "t.x", 3, &first, &last),
                     ZMESH__SEQ_OLD);
    assert_int_equal(s_track(streams, s_a, "t.x", 12, &first, &last),
                     ZMESH__SEQ_GAP);
    assert_int_equal(first, 9);
    assert_int_equal(last, 11);
    // Old events after a gap stay old: the gap was reported, never filled.
    assert_int_equal(s_track(streams, s_a, "t.x", 10, &first, &last),
                     ZMESH__SEQ_OLD);
    assert_int_equal(s_track(streams, s_a, "t.x", 13, &first, &last),
                     ZMESH__SEQ_NEXT);
    assert_int_equal(s_track(streams, s_a, "t.x", 15, &first, &last),
                     ZMESH__SEQ_GAP);
    assert_int_equal(first, 14);
    assert_int_equal(last, 14);
    zmesh__streams_destroy(&streams);
    assert_null(streams);
}

// A tail frame's last sequence against what was delivered: the missing
// end, for streams being tracked only, and nothing recorded.
static void
test_tail(void **state)
{
    (void)state;
    zmesh__streams_t *streams = NULL;
    assert_int_equal(zmesh__streams_new(&streams, 100), 0);
    uint64_t first = 0, last = 0;
    // Not tracked: a tail starts no stream.
    assert_false(zmesh__streams_tail(streams, s_a, "t.x", 3, 9, &first, &last));
    assert_int_equal(zmesh__streams_size(streams), 0);
    assert_int_equal(s_track(streams, s_a, "t.x", 5, &first, &last),
                     ZMESH__SEQ_FIRST);
    // Nothing missing: the tail is the last one delivered, or older.
    assert_false(zmesh__streams_tail(streams, s_a, "t.x", 3, 5, &first, &last));
    assert_false(zmesh__streams_tail(streams, s_a, "t.x", 3, 2, &first, &last));
    // 6..8 missing at the end; the stream itself is unchanged.
    assert_true(zmesh__streams_tail(streams, s_a, "t.x", 3, 8, &first, &last));
    assert_int_equal(first, 6);
    assert_int_equal(last, 8);
    assert_int_equal(s_track(streams, s_a, "t.x", 6, &first, &last),
                     ZMESH__SEQ_NEXT);
    // Another stream in the cache: the table is asked, and other
    // publishers' and topics' streams are apart.
    assert_int_equal(s_track(streams, s_b, "t.x", 1, &first, &last),
                     ZMESH__SEQ_FIRST);
    assert_true(zmesh__streams_tail(streams, s_a, "t.x", 3, 7, &first, &last));
    assert_int_equal(first, 7);
    assert_int_equal(last, 7);
    assert_false(zmesh__streams_tail(streams, s_b, "t.x", 3, 1, &first, &last));
    assert_false(zmesh__streams_tail(streams, s_a, "t.y", 3, 7, &first, &last));
    assert_false(
        zmesh__streams_tail(streams, s_a, "t.xx", 4, 7, &first, &last));
    assert_int_equal(zmesh__streams_size(streams), 2);
    zmesh__streams_destroy(&streams);
}

static void
test_streams_are_apart(void **state)
{
    (void)state;
    zmesh__streams_t *streams = NULL;
    assert_int_equal(zmesh__streams_new(&streams, 100), 0);
    uint64_t first, last;
    // Interleaved streams defeat the one-stream cache on every call.
    for (uint64_t i = 1; i <= 50; i++) {
        zmesh__seq_verdict_t expect =
            i == 1 ? ZMESH__SEQ_FIRST : ZMESH__SEQ_NEXT;
        assert_int_equal(s_track(streams, s_a, "t.x", i, &first, &last),
                         expect);
        assert_int_equal(s_track(streams, s_b, "t.x", i, &first, &last),
                         expect);
        assert_int_equal(s_track(streams, s_a, "t.y", i, &first, &last),
                         expect);
        // A topic that is a prefix of another is another stream.
        assert_int_equal(s_track(streams, s_a, "t.xx", i, &first, &last),
                         expect);
    }
    assert_int_equal(zmesh__streams_size(streams), 4);
    zmesh__streams_forget(streams, s_a);
    assert_int_equal(zmesh__streams_size(streams), 1);
    assert_int_equal(s_track(streams, s_a, "t.x", 99, &first, &last),
                     ZMESH__SEQ_FIRST);
    assert_int_equal(s_track(streams, s_b, "t.x", 51, &first, &last),
                     ZMESH__SEQ_NEXT);
    zmesh__streams_destroy(&streams);
}

static void
test_rewind(void **state)
{
    (void)state;
    zmesh__streams_t *streams = NULL;
    assert_int_equal(zmesh__streams_new(&streams, 100), 0);
    uint64_t first, last;
    assert_int_equal(s_track(streams, s_a, "t.x", 1, &first, &last),
                     ZMESH__SEQ_FIRST);
    assert_int_equal(s_track(streams, s_a, "t.x", 5, &first, &last),
                     ZMESH__SEQ_GAP);
    // A repair is under way: 2..4 and then 5 are judged again.
    zmesh__streams_rewind(streams, s_a, "t.x", 3, 1);
    for (uint64_t seq = 2; seq <= 5; seq++)
        assert_int_equal(s_track(streams, s_a, "t.x", seq, &first, &last),
                         ZMESH__SEQ_NEXT);
    // Back to none delivered: the next after 0 is 1.
    zmesh__streams_rewind(streams, s_a, "t.x", 3, 0);
    assert_int_equal(s_track(streams, s_a, "t.x", 3, &first, &last),
                     ZMESH__SEQ_GAP);
    assert_int_equal(first, 1);
    assert_int_equal(last, 2);
    // Another stream is untouched; dropping makes the next a FIRST.
    assert_int_equal(s_track(streams, s_b, "t.x", 9, &first, &last),
                     ZMESH__SEQ_FIRST);
    zmesh__streams_drop(streams, s_a, "t.x", 3);
    assert_int_equal(zmesh__streams_size(streams), 1);
    assert_int_equal(s_track(streams, s_a, "t.x", 40, &first, &last),
                     ZMESH__SEQ_FIRST);
    assert_int_equal(s_track(streams, s_b, "t.x", 10, &first, &last),
                     ZMESH__SEQ_NEXT);
    zmesh__streams_destroy(&streams);
}

static void
test_bounded(void **state)
{
    (void)state;
    zmesh__streams_t *streams = NULL;
    assert_int_equal(zmesh__streams_new(&streams, 8), 0);
    uint64_t first, last;
    char topic[16];
    for (int i = 0; i < 20; i++) {
        snprintf(topic, sizeof topic, "t.%d", i);
        assert_int_equal(s_track(streams, s_a, topic, 1, &first, &last),
                         ZMESH__SEQ_FIRST);
        assert_true(zmesh__streams_size(streams) <= 8);
    }
    assert_int_equal(zmesh__streams_resets(streams), 2);
    zmesh__streams_destroy(&streams);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verdicts),          cmocka_unit_test(test_tail),
        cmocka_unit_test(test_streams_are_apart), cmocka_unit_test(test_rewind),
        cmocka_unit_test(test_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
