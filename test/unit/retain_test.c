/*  retain_test.c - the publisher's memory of sent frames: ranges inside,
    partly outside and after eviction; the byte budget, exactly; frames
    too big for it; many topics and the freeing of empty ones; history per
    pattern (beyond eviction, replaced, removed, overlapping, the topic
    cap); each seq served once when both stores hold it; join marks, and
    when a join answer can be vouched for; a visitor that stops; the
    counters; max_bytes 0; bad arguments; a randomised run checked against
    a model; adds racing requests from another thread; a frame added as a
    ZeroMQ message is shared, not copied, and let go on eviction. Every
    frame served has its bytes checked. Batch frames (add_batch): each
    event served as a real frame of its own, mixed with single adds, in
    history, in the byte budget as its own frame's size, the batch let go
    with its last event, bad offsets, join marks. */
#include "codec.h"
#include "retain.h"
#include "zmesh.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
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

#define S_FRAME_MAX 512

/*  A test frame: seq (8 bytes, little-endian), the topic and a NUL, then
    filler derived from seq and position, so a visitor can tell a frame
    served under the wrong seq or with damaged bytes. */
static size_t
s_make(unsigned char *buf, size_t size, const char *topic, uint64_t seq)
{
    size_t topic_size = strlen(topic);
    assert_true(size >= 8 + topic_size + 1 && size <= S_FRAME_MAX);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)(seq >> (8 * i));
    memcpy(buf + 8, topic, topic_size + 1);
    for (size_t i = 8 + topic_size + 1; i < size; i++)
        buf[i] = (unsigned char)(seq * 31 + i);
    return size;
}

static int
s_add(zmesh__retain_t *retain, const char *topic, uint64_t seq, size_t size)
{
    unsigned char buf[S_FRAME_MAX];
    s_make(buf, size, topic, seq);
    return zmesh__retain_add(retain, topic, strlen(topic), seq, buf, size);
}

typedef struct {
    char topic[32];
    uint64_t seq;
    size_t size;
} s_entry_t;

/*  What a visitor saw. */
typedef struct {
    size_t calls;
    size_t count;      /* frames taken */
    size_t stop_after; /* refuse the frame after this many; 0: never */
    size_t bad;        /* frames whose bytes do not match their seq */
    size_t unordered;  /* a seq not above the previous one of its topic */
    char last_topic[32];
    uint64_t last_seq;
    s_entry_t seen[256];
} s_seen_t;

static bool
s_visit(void *arg, uint64_t seq, const void *frame, size_t size)
{
    s_seen_t *seen = arg;
    seen->calls++;
    if (seen->stop_after && seen->count == seen->stop_after)
        return false;
    const unsigned char *bytes = frame;
    bool ok = size >= 10 && memchr(bytes + 8, 0, size - 8) != NULL;
    uint64_t embedded = 0;
    for (int i = 0; ok && i < 8; i++)
        embedded |= (uint64_t)bytes[i] << (8 * i);
    ok = ok && embedded == seq;
    const char *topic = ok ? (const char *)bytes + 8 : "";
    size_t topic_size = strlen(topic);
    for (size_t i = 8 + topic_size + 1; ok && i < size; i++)
        ok = bytes[i] == (unsigned char)(seq * 31 + i);
    if (!ok)
        seen->bad++;
    // Topics come in any order, each topic's frames together, in order.
    if (seen->count > 0 && strcmp(seen->last_topic, topic) == 0 &&
        seen->last_seq >= seq)
        seen->unordered++;
    snprintf(seen->last_topic, sizeof seen->last_topic, "%s", topic);
    seen->last_seq = seq;
    if (seen->count < 256) {
        s_entry_t *entry = &seen->seen[seen->count];
        snprintf(entry->topic, sizeof entry->topic, "%s", topic);
        entry->seq = seq;
        entry->size = size;
    }
    seen->count++;
    return true;
}

static size_t
s_range(zmesh__retain_t *retain, const char *topic, uint64_t first,
        uint64_t last, const uint8_t *peer, s_seen_t *seen)
{
    memset(seen, 0, sizeof *seen);
    size_t n = zmesh__retain_range(retain, topic, strlen(topic), first, last,
                                   peer, s_visit, seen);
    assert_int_equal(n, seen->count);
    assert_int_equal(seen->bad, 0);
    assert_int_equal(seen->unordered, 0);
    return n;
}

static size_t
s_history(zmesh__retain_t *retain, const char *pattern, s_seen_t *seen)
{
    memset(seen, 0, sizeof *seen);
    size_t n = zmesh__retain_history(retain, pattern, s_visit, seen);
    assert_int_equal(n, seen->count);
    assert_int_equal(seen->bad, 0);
    assert_int_equal(seen->unordered, 0);
    return n;
}

// Asserts that `seen` holds exactly topic's seqs from..to, in order.
static void
s_expect_run(const s_seen_t *seen, const char *topic, uint64_t from,
             uint64_t to)
{
    assert_int_equal(seen->count, from <= to ? to - from + 1 : 0);
    for (size_t i = 0; i < seen->count && i < 256; i++) {
        assert_string_equal(seen->seen[i].topic, topic);
        assert_int_equal(seen->seen[i].seq, from + i);
    }
}

static zmesh__retain_stats_t
s_stats(zmesh__retain_t *retain)
{
    zmesh__retain_stats_t stats;
    memset(&stats, 0xab, sizeof stats);
    zmesh__retain_stats(retain, &stats);
    return stats;
}

static void
test_ranges(void **state)
{
    (void)state;
    zmesh__retain_t *retain = NULL;
    assert_int_equal(zmesh__retain_new(&retain, 600), 0);
    s_seen_t seen;
    assert_int_equal(s_range(retain, "a.b", 1, 10, NULL, &seen), 0);
    for (uint64_t seq = 1; seq <= 10; seq++)
        assert_int_equal(s_add(retain, "a.b", seq, 60), 0);
    static const struct {
        uint64_t first, last; /* asked */
        uint64_t from, to;    /* served; from > to: nothing */
    } cases[] = {
        {1, 10, 1, 10}, {3, 5, 3, 5},   {7, 7, 7, 7},
        {0, 2, 1, 2},   {9, 20, 9, 10}, {0, UINT64_MAX, 1, 10},
        {11, 20, 1, 0}, {5, 4, 1, 0},   {UINT64_MAX, UINT64_MAX, 1, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        s_range(retain, "a.b", cases[i].first, cases[i].last, NULL, &seen);
        s_expect_run(&seen, "a.b", cases[i].from, cases[i].to);
        assert_int_equal(seen.seen[0].size, seen.count ? 60 : 0);
    }
    // Eleven to fifteen push out one to five.
    for (uint64_t seq = 11; seq <= 15; seq++)
        assert_int_equal(s_add(retain, "a.b", seq, 60), 0);
    s_range(retain, "a.b", 1, 8, NULL, &seen);
    s_expect_run(&seen, "a.b", 6, 8);
    s_range(retain, "a.b", 1, 5, NULL, &seen);
    s_expect_run(&seen, "a.b", 1, 0);
    // Other topics, a prefix of the topic, and a topic that is not
    // NUL-terminated after its size.
    assert_int_equal(s_range(retain, "a.c", 1, 20, NULL, &seen), 0);
    assert_int_equal(s_range(retain, "a", 1, 20, NULL, &seen), 0);
    assert_int_equal(s_range(retain, "a.bb", 1, 20, NULL, &seen), 0);
    memset(&seen, 0, sizeof seen);
    assert_int_equal(
        zmesh__retain_range(retain, "a.bxyz", 3, 1, 20, NULL, s_visit, &seen),
        10);
    // Sequences need not start at 1 nor be contiguous.
    assert_int_equal(s_add(retain, "gaps", 100, 60), 0);
    assert_int_equal(s_add(retain, "gaps", 105, 60), 0);
    assert_int_equal(s_range(retain, "gaps", 101, 104, NULL, &seen), 0);
    assert_int_equal(s_range(retain, "gaps", 101, 105, NULL, &seen), 1);
    assert_int_equal(seen.seen[0].seq, 105);
    zmesh__retain_destroy(&retain);
    assert_null(retain);
    zmesh__retain_destroy(&retain);
    zmesh__retain_destroy(NULL);
}

static void
test_budget_exact(void **state)
{
    (void)state;
    // Each case adds frames of these sizes to one topic (seq 1, 2, ...)
    // and then expects seqs kept_from..n and that many bytes held.
    static const struct {
        size_t max_bytes;
        size_t sizes[8];
        size_t n;
        uint64_t kept_from;
        uint64_t bytes;
    } cases[] = {
        {600, {60, 60, 60, 60, 60, 60, 60, 60}, 8, 1, 480},
        {180, {60, 60, 60}, 3, 1, 180},     /* exactly full */
        {180, {60, 60, 60, 60}, 4, 2, 180}, /* one out */
        {179, {60, 60, 60}, 3, 2, 120},     /* one byte short */
        {1000, {400, 400, 200, 20}, 4, 2, 620},
        {1000, {400, 400, 200, 20, 380}, 5, 2, 1000},
        {1000, {400, 400, 200, 20, 381}, 5, 3, 601},
        {100, {30, 30, 30, 100}, 4, 4, 100}, /* a frame of max_bytes */
        {100, {30, 30, 30, 101}, 4, 1, 90},  /* over: not kept */
        {100, {30, 101, 30, 30}, 4, 1, 90},
        {100, {30, 101, 30, 30, 30}, 5, 3, 90},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        zmesh__retain_t *retain = NULL;
        assert_int_equal(zmesh__retain_new(&retain, cases[i].max_bytes), 0);
        size_t oversize = 0, kept = 0;
        for (size_t j = 0; j < cases[i].n; j++) {
            assert_int_equal(s_add(retain, "b.t", j + 1, cases[i].sizes[j]), 0);
            if (cases[i].sizes[j] > cases[i].max_bytes)
                oversize++;
        }
        for (size_t j = cases[i].kept_from - 1; j < cases[i].n; j++)
            kept += cases[i].sizes[j] <= cases[i].max_bytes;
        s_seen_t seen;
        s_range(retain, "b.t", 1, 100, NULL, &seen);
        assert_int_equal(seen.count, kept);
        uint64_t bytes = 0;
        for (size_t j = 0; j < seen.count; j++) {
            bytes += seen.seen[j].size;
            assert_true(seen.seen[j].seq >= cases[i].kept_from);
            assert_int_equal(seen.seen[j].size,
                             cases[i].sizes[seen.seen[j].seq - 1]);
        }
        if (kept)
            assert_int_equal(seen.seen[0].seq, cases[i].kept_from);
        zmesh__retain_stats_t stats = s_stats(retain);
        assert_int_equal(bytes, cases[i].bytes);
        assert_int_equal(stats.bytes, cases[i].bytes);
        assert_int_equal(stats.held_bytes, cases[i].bytes);
        assert_int_equal(stats.frames, kept);
        assert_int_equal(stats.not_kept, oversize);
        assert_int_equal(stats.evicted, cases[i].n - oversize - kept);
        assert_int_equal(stats.topics, 1);
        zmesh__retain_destroy(&retain);
    }
}

static void
test_eviction_across_topics(void **state)
{
    (void)state;
    zmesh__retain_t *retain = NULL;
    assert_int_equal(zmesh__retain_new(&retain, 300), 0);
    // Oldest first whatever the topic: a1 b1 a2 b2 a3 | b3 ...
    for (uint64_t seq = 1; seq <= 3; seq++) {
        assert_int_equal(s_add(retain, "e.a", seq, 60), 0);
        assert_int_equal(s_add(retain, "e.b", seq, 60), 0);
    }
    s_seen_t seen;
    s_range(retain, "e.a", 1, 9, NULL, &seen);
    s_expect_run(&seen, "e.a", 2, 3);
    s_range(retain, "e.b", 1, 9, NULL, &seen);
    s_expect_run(&seen, "e.b", 1, 3);
    // Five frames of e.c push both others out, and their entries go.
    for (uint64_t seq = 1; seq <= 5; seq++)
        assert_int_equal(s_add(retain, "e.c", seq, 60), 0);
    zmesh__retain_stats_t stats = s_stats(retain);
    assert_int_equal(stats.topics, 1);
    assert_int_equal(stats.frames, 5);
    assert_int_equal(stats.evicted, 6);
    assert_int_equal(s_range(retain, "e.a", 1, 9, NULL, &seen), 0);
    assert_int_equal(s_range(retain, "e.b", 1, 9, NULL, &seen), 0);
    // A topic that comes back starts afresh.
    assert_int_equal(s_add(retain, "e.a", 4, 60), 0);
    s_range(retain, "e.a", 1, 9, NULL, &seen);
    s_expect_run(&seen, "e.a", 4, 4);
    zmesh__retain_destroy(&retain);
}

static void
test_many_topics(void **state)
{
    (void)state;
    zmesh__retain_t *retain = NULL;
    assert_int_equal(zmesh__retain_new(&retain, 100 * 60), 0);
    char topic[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(topic, sizeof topic, "m.%d", i);
        assert_int_equal(s_add(retain, topic, 1, 60), 0);
        // Every few adds, one lookup of a live and of an evicted topic,
        // while the table grows and shrinks around them.
        if (i % 97 == 0 && i >= 100) {
            s_seen_t seen;
            snprintf(topic, sizeof topic, "m.%d", i - 99);
            assert_int_equal(s_range(retain, topic, 1, 1, NULL, &seen), 1);
            snprintf(topic, sizeof topic, "m.%d", i - 100);
            assert_int_equal(s_range(retain, topic, 1, 1, NULL, &seen), 0);
        }
    }
    zmesh__retain_stats_t stats = s_stats(retain);
    assert_int_equal(stats.topics, 100);
    assert_int_equal(stats.frames, 100);
    assert_int_equal(stats.evicted, 19900);
    s_seen_t seen;
    for (int i = 0; i < 20000; i++) {
        snprintf(topic, sizeof topic, "m.%d", i);
        assert_int_equal(s_range(retain, topic, 1, 1, NULL, &seen),
                         i >= 19900 ? 1 : 0);
    }
    // All gone again: a frame of max_bytes from a new topic.
    unsigned char *big = calloc(1, 100 * 60);
    assert_non_null(big);
    assert_int_equal(zmesh__retain_add(retain, "m.big", 5, 1, big, 100 * 60),
                     0);
    free(big);
    stats = s_stats(retain);
    assert_int_equal(stats.topics, 1);
    assert_int_equal(stats.frames, 1);
    assert_int_equal(stats.bytes, 6000);
    zmesh__retain_destroy(&retain);
}

static void
test_history(void **state)
{
    (void)state;
    zmesh__retain_t *retain = NULL;
    // Room for two frames only: history has to outlive the buffer.
    assert_int_equal(zmesh__retain_new(&retain, 120), 0);
    assert_int_equal(zmesh__retain_set_history(retain, "h.>", 5), 0);
    for (uint64_t seq = 1; seq <= 20; seq++)
        assert_int_equal(s_add(retain, "h.x", seq, 60), 0);
    for (uint64_t seq = 1; seq <= 20; seq++)
        assert_int_equal(s_add(retain, "n.x", seq, 60), 0);
    s_seen_t seen;
    s_range(retain, "h.x", 1, 100, NULL, &seen);
    s_expect_run(&seen, "h.x", 16, 20);
    s_range(retain, "n.x", 1, 100, NULL, &seen);
    s_expect_run(&seen, "n.x", 19, 20);
    zmesh__retain_stats_t stats = s_stats(retain);
    assert_int_equal(stats.history_frames, 5);
    assert_int_equal(stats.history_topics, 1);
    assert_int_equal(stats.frames, 2);
    assert_int_equal(stats.held_bytes, 7 * 60);
    assert_int_equal(stats.topics, 2);
    // Frames that are only in the buffer are not history.
    s_history(retain, "h.*", &seen);
    s_expect_run(&seen, "h.x", 16, 20);
    assert_int_equal(s_history(retain, ">", &seen), 5);
    assert_int_equal(s_history(retain, "n.>", &seen), 0);
    assert_int_equal(s_history(retain, "h", &seen), 0);
    assert_int_equal(s_history(retain, "h.x.>", &seen), 0);
    // A lower count drops the oldest at once.
    assert_int_equal(zmesh__retain_set_history(retain, "h.>", 3), 0);
    s_range(retain, "h.x", 1, 100, NULL, &seen);
    s_expect_run(&seen, "h.x", 18, 20);
    assert_int_equal(s_stats(retain).history_frames, 3);
    // A higher count keeps more of what comes next.
    assert_int_equal(zmesh__retain_set_history(retain, "h.>", 10), 0);
    for (uint64_t seq = 21; seq <= 30; seq++)
        assert_int_equal(s_add(retain, "h.x", seq, 60), 0);
    s_history(retain, "h.x", &seen);
    s_expect_run(&seen, "h.x", 21, 30);
    // The n.x frames were pushed out of the buffer: its entry is gone.
    stats = s_stats(retain);
    assert_int_equal(stats.topics, 1);
    assert_int_equal(stats.history_frames, 10);
    // Removal leaves what the buffer holds.
    assert_int_equal(zmesh__retain_set_history(retain, "h.>", 0), 0);
    s_range(retain, "h.x", 1, 100, NULL, &seen);
    s_expect_run(&seen, "h.x", 29, 30);
    stats = s_stats(retain);
    assert_int_equal(stats.history_frames, 0);
    assert_int_equal(stats.history_topics, 0);
    assert_int_equal(stats.held_bytes, 120);
    assert_int_equal(s_history(retain, ">", &seen), 0);
    assert_int_equal(zmesh__retain_set_history(retain, "h.>", 0),
                     ZMESH_ENOTFOUND);
    // History starts with the events added after the call.
    assert_int_equal(zmesh__retain_set_history(retain, "h.x", 4), 0);
    assert_int_equal(s_history(retain, "h.x", &seen), 0);
    assert_int_equal(s_add(retain, "h.x", 31, 60), 0);
    s_history(retain, "h.x", &seen);
    s_expect_run(&seen, "h.x", 31, 31);
    zmesh__retain_destroy(&retain);
}

static void
test_history_patterns(void **state)
{
    (void)state;
    zmesh__retain_t *retain = NULL;
    assert_int_equal(zmesh__retain_new(&retain, 0), 0);
    // A topic matching several patterns keeps the largest count.
    assert_int_equal(zmesh__retain_set_history(retain, "p.>", 2), 0);
    assert_int_equal(zmesh__retain_set_history(retain, "p.x", 4), 0);
    assert_int_equal(zmesh__retain_set_history(retain, "*.y", 3), 0);
    static const struct {
        const char *topic;
        uint64_t kept_from; /* of 1..10 */
    } topics[] = {
        {"p.x", 7},  {"p.y", 8},      {"p.z", 9}, {"q.y", 8},
        {"q.z", 11}, {"$mesh.y", 11}, /* a wildcard first token skips '$' topics
                                       */
    };
    size_t n = sizeof topics / sizeof topics[0];
    for (uint64_t seq = 1; seq <= 10; seq++)
        for (size_t i = 0; i < n; i++)
            assert_int_equal(s_add(retain, topics[i].topic, seq, 60), 0);
    s_seen_t seen;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        s_range(retain, topics[i].topic, 1, 10, NULL, &seen);
        s_expect_run(&seen, topics[i].topic, topics[i].kept_from, 10);
        total += 11 - topics[i].kept_from;
    }
    zmesh__retain_stats_t stats = s_stats(retain);
    assert_int_equal(stats.history_frames, total);
    assert_int_equal(stats.topics, 4);
    assert_int_equal(stats.history_topics, 4);
    assert_int_equal(stats.not_kept, 20);
    assert_int_equal(stats.bytes, 0);
    assert_int_equal(stats.frames, 0);
    assert_int_equal(stats.held_bytes, total * 60);
    // Every topic once, each in seq order (checked by the visitor).
    assert_int_equal(s_history(retain, ">", &seen), total);
    assert_int_equal(s_history(retain, "*.y", &seen), 6);
    // Dropping "p.x" leaves p.x with the 2 of "p.>".
    assert_int_equal(zmesh__retain_set_history(retain, "p.x", 0), 0);
    s_range(retain, "p.x", 1, 10, NULL, &seen);
    s_expect_run(&seen, "p.x", 9, 10);
    // Dropping "p.>" frees p.x and p.z; p.y keeps the 3 of "*.y".
    assert_int_equal(zmesh__retain_set_history(retain, "p.>", 0), 0);
    stats = s_stats(retain);
    assert_int_equal(stats.topics, 2);
    assert_int_equal(stats.history_frames, 6);
    assert_int_equal(s_range(retain, "p.y", 1, 10, NULL, &seen), 3);
    assert_int_equal(zmesh__retain_set_history(retain, "*.y", 0), 0);
    stats = s_stats(retain);
    assert_int_equal(stats.topics, 0);
    assert_int_equal(stats.history_topics, 0);
    assert_int_equal(stats.held_bytes, 0);
    zmesh__retain_destroy(&retain);
}

static void
test_history_arguments(void **state)
{
    (void)state;
    zmesh__retain_t *retain = NULL;
    assert_int_equal(zmesh__retain_new(&retain, 1000), 0);
    static const struct {
        const char *pattern;
        size_t count;
        int rc;
    } cases[] = {
        {NULL, 1, ZMESH_EPATTERN},
        {"", 1, ZMESH_EPATTERN},
        {"a..b", 1, ZMESH_EPATTERN},
        {"a.>.b", 1, ZMESH_EPATTERN},
        {"a b", 1, ZMESH_EPATTERN},
        {"a", ZMESH__RETAIN_HISTORY_MAX + 1, ZMESH_EINVAL},
        {"a", ZMESH__RETAIN_HISTORY_MAX, 0},
        {"a", 0, 0},
        {"a", 0, ZMESH_ENOTFOUND},
        {"$mesh.>", 1, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(
            zmesh__retain_set_history(retain, cases[i].pattern, cases[i].count),
            cases[i].rc);
    char pattern[ZMESH_TOPIC_MAX + 2];
    memset(pattern, 'a', sizeof pattern - 1);
    pattern[sizeof pattern - 1] = '\0';
    assert_int_equal(zmesh__retain_set_history(retain, pattern, 1),
                     ZMESH_EPATTERN);
    pattern[ZMESH_TOPIC_MAX] = '\0';
    assert_int_equal(zmesh__retain_set_history(retain, pattern, 1), 0);
    // 64 patterns in all, then no more; a set one can still change.
    for (int i = 2; i < ZMESH__RETAIN_PATTERNS_MAX; i++) {
        snprintf(pattern, sizeof pattern, "p%d.>", i);
        assert_int_equal(zmesh__retain_set_history(retain, pattern, 1), 0);
    }
    assert_int_equal(zmesh__retain_set_history(retain, "one.more", 1),
                     ZMESH_ETOOBIG);
    assert_int_equal(zmesh__retain_set_history(retain, "p2.>", 7), 0);
    assert_int_equal(zmesh__retain_set_history(retain, "p3.>", 0), 0);
    assert_int_equal(zmesh__retain_set_history(retain, "one.more", 1), 0);
    for (uint64_t seq = 1; seq <= 9; seq++) {
        assert_int_equal(s_add(retain, "p2.x", seq, 200), 0);
        assert_int_equal(s_add(retain, "p4.x", seq, 200), 0);
    }
    zmesh__retain_stats_t stats = s_stats(retain);
    assert_int_equal(stats.history_frames, 8);
    // Nothing to visit for a bad pattern from the wire.
    s_seen_t seen;
    assert_int_equal(s_history(retain, "p2..x", &seen), 0);
    memset(&seen, 0, sizeof seen);
    assert_int_equal(zmesh__retain_history(retain, NULL, s_visit, &seen), 0);
    assert_int_equal(s_history(retain, "p2.x", &seen), 7);
    zmesh__retain_destroy(&retain);
}

static void
test_history_topic_cap(void **state)
{
    (void)state;
    zmesh__retain_t *retain = NULL;
    assert_int_equal(zmesh__retain_new(&retain, 0), 0);
    assert_int_equal(zmesh__retain_set_history(retain, "c.*", 2), 0);
    char topic[32];
    for (int i = 0; i < ZMESH__RETAIN_HISTORY_TOPICS_MAX; i++) {
        snprintf(topic, sizeof topic, "c.%d", i);
        assert_int_equal(s_add(retain, topic, 1, 16), 0);
    }
    // Touching c.0 again makes c.1 the one added to least recently.
    assert_int_equal(s_add(retain, "c.0", 2, 16), 0);
    zmesh__retain_stats_t stats = s_stats(retain);
    assert_int_equal(stats.history_topics, ZMESH__RETAIN_HISTORY_TOPICS_MAX);
    assert_int_equal(stats.history_dropped, 0);
    assert_int_equal(s_add(retain, "c.new", 1, 16), 0);
    stats = s_stats(retain);
    assert_int_equal(stats.history_topics, ZMESH__RETAIN_HISTORY_TOPICS_MAX);
    assert_int_equal(stats.topics, ZMESH__RETAIN_HISTORY_TOPICS_MAX);
    assert_int_equal(stats.history_dropped, 1);
    assert_int_equal(stats.history_frames,
                     ZMESH__RETAIN_HISTORY_TOPICS_MAX + 1);
    s_seen_t seen;
    assert_int_equal(s_range(retain, "c.1", 1, 9, NULL, &seen), 0);
    assert_int_equal(s_range(retain, "c.0", 1, 9, NULL, &seen), 2);
    assert_int_equal(s_range(retain, "c.2", 1, 9, NULL, &seen), 1);
    assert_int_equal(s_range(retain, "c.new", 1, 9, NULL, &seen), 1);
    // A dropped topic that publishes again has a history again.
    assert_int_equal(s_add(retain, "c.1", 2, 16), 0);
    assert_int_equal(s_range(retain, "c.1", 1, 9, NULL, &seen), 1);
    assert_int_equal(s_range(retain, "c.2", 1, 9, NULL, &seen), 0);
    assert_int_equal(s_stats(retain).history_dropped, 2);
    zmesh__retain_destroy(&retain);
}

static void
test_each_seq_once(void **state)
{
    (void)state;
    zmesh__retain_t *retain = NULL;
    assert_int_equal(zmesh__retain_new(&retain, 10 * 60), 0);
    assert_int_equal(zmesh__retain_set_history(retain, "o.t", 5), 0);
    for (uint64_t seq = 1; seq <= 10; seq++)
        assert_int_equal(s_add(retain, "o.t", seq, 60), 0);
    // 6..10 are in both stores; each comes once.
    s_seen_t seen;
    s_range(retain, "o.t", 1, 10, NULL, &seen);
    s_expect_run(&seen, "o.t", 1, 10);
    s_range(retain, "o.t", 4, 8, NULL, &seen);
    s_expect_run(&seen, "o.t", 4, 8);
    zmesh__retain_stats_t stats = s_stats(retain);
    assert_int_equal(stats.frames, 10);
    assert_int_equal(stats.history_frames, 5);
    assert_int_equal(stats.held_bytes, 600);
    zmesh__retain_destroy(&retain);

    // Over the budget: in history only, between buffer frames.
    assert_int_equal(zmesh__retain_new(&retain, 200), 0);
    assert_int_equal(zmesh__retain_set_history(retain, "o.t", 2), 0);
    assert_int_equal(s_add(retain, "o.t", 1, 60), 0);
    assert_int_equal(s_add(retain, "o.t", 2, S_FRAME_MAX), 0);
    s_range(retain, "o.t", 1, 2, NULL, &seen);
    s_expect_run(&seen, "o.t", 1, 2);
    assert_int_equal(seen.seen[1].size, S_FRAME_MAX);
    // 3 pushes 1 out of history; 1 stays in the buffer, before 2.
    assert_int_equal(s_add(retain, "o.t", 3, 60), 0);
    s_range(retain, "o.t", 1, 3, NULL, &seen);
    s_expect_run(&seen, "o.t", 1, 3);
    // 4 pushes 2 out of history, and 2 is in no store: it goes from the
    // middle of the topic's frames.
    assert_int_equal(s_add(retain, "o.t", 4, 60), 0);
    s_range(retain, "o.t", 1, 4, NULL, &seen);
    assert_int_equal(seen.count, 3);
    assert_int_equal(seen.seen[0].seq, 1);
    assert_int_equal(seen.seen[1].seq, 3);
    assert_int_equal(seen.seen[2].seq, 4);
    zmesh__retain_stats_t after = s_stats(retain);
    assert_int_equal(after.held_bytes, 180);
    assert_int_equal(after.history_frames, 2);
    zmesh__retain_destroy(&retain);
}

static void
test_marks(void **state)
{
    (void)state;
    static const uint8_t a[16] = {0xa};
    static const uint8_t b[16] = {0xb};
    zmesh__retain_t *retain = NULL;
    assert_int_equal(zmesh__retain_new(&retain, 6000), 0);
    s_seen_t seen;
    zmesh__retain_mark(retain, b);
    for (uint64_t seq = 1; seq <= 3; seq++)
        assert_int_equal(s_add(retain, "s.t", seq, 60), 0);
    zmesh__retain_mark(retain, a);
    // Nothing since the mark yet.
    assert_int_equal(s_range(retain, "s.t", 1, 100, a, &seen), 0);
    for (uint64_t seq = 4; seq <= 6; seq++)
        assert_int_equal(s_add(retain, "s.t", seq, 60), 0);
    assert_int_equal(s_add(retain, "s.u", 1, 60), 0);
    s_range(retain, "s.t", 1, 100, a, &seen);
    s_expect_run(&seen, "s.t", 4, 6);
    s_range(retain, "s.t", 5, 100, a, &seen);
    s_expect_run(&seen, "s.t", 5, 6);
    s_range(retain, "s.t", 1, 4, a, &seen);
    s_expect_run(&seen, "s.t", 4, 4);
    s_range(retain, "s.t", 1, 100, b, &seen);
    s_expect_run(&seen, "s.t", 1, 6);
    s_range(retain, "s.t", 1, 100, NULL, &seen);
    s_expect_run(&seen, "s.t", 1, 6);
    s_range(retain, "s.u", 1, 100, a, &seen);
    s_expect_run(&seen, "s.u", 1, 1);
    // A peer without a mark gets nothing, even with frames in range.
    static const uint8_t unknown[16] = {0xc};
    assert_int_equal(s_range(retain, "s.t", 1, 100, unknown, &seen), 0);
    // Marking again moves the mark.
    zmesh__retain_mark(retain, a);
    assert_int_equal(s_add(retain, "s.t", 7, 60), 0);
    s_range(retain, "s.t", 1, 100, a, &seen);
    s_expect_run(&seen, "s.t", 7, 7);
    assert_int_equal(s_stats(retain).marks, 2);
    zmesh__retain_unmark(retain, a);
    zmesh__retain_unmark(retain, unknown);
    assert_int_equal(s_range(retain, "s.t", 1, 100, a, &seen), 0);
    assert_int_equal(s_range(retain, "s.t", 1, 100, b, &seen), 7);
    assert_int_equal(s_stats(retain).marks, 1);
    zmesh__retain_destroy(&retain);
}

static void
test_marks_bounded(void **state)
{
    (void)state;
    zmesh__retain_t *retain = NULL;
    assert_int_equal(zmesh__retain_new(&retain, 6000), 0);
    uint8_t peer[16] = {0};
    for (uint32_t i = 0; i < ZMESH__RETAIN_MARKS_MAX; i++) {
        memcpy(peer, &i, sizeof i);
        zmesh__retain_mark(retain, peer);
    }
    assert_int_equal(s_add(retain, "k.t", 1, 60), 0);
    // Peer 0 marks again, so peer 1 holds the oldest mark.
    uint32_t i = 0;
    memcpy(peer, &i, sizeof i);
    zmesh__retain_mark(retain, peer);
    assert_int_equal(s_add(retain, "k.t", 2, 60), 0);
    i = ZMESH__RETAIN_MARKS_MAX;
    memcpy(peer, &i, sizeof i);
    zmesh__retain_mark(retain, peer);
    assert_int_equal(s_stats(retain).marks, ZMESH__RETAIN_MARKS_MAX);
    assert_int_equal(s_add(retain, "k.t", 3, 60), 0);
    s_seen_t seen;
    static const struct {
        uint32_t peer;
        uint64_t from, to;
    } cases[] = {
        {0, 2, 3},
        {1, 1, 0}, /* dropped */
        {2, 1, 3},
        {ZMESH__RETAIN_MARKS_MAX - 1, 1, 3},
        {ZMESH__RETAIN_MARKS_MAX, 3, 3},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        memcpy(peer, &cases[c].peer, sizeof cases[c].peer);
        s_range(retain, "k.t", 1, 10, peer, &seen);
        s_expect_run(&seen, "k.t", cases[c].from, cases[c].to);
    }
    zmesh__retain_destroy(&retain);
}

static bool
s_intact(zmesh__retain_t *retain, const uint8_t *peer, const char *topic)
{
    return zmesh__retain_intact(retain, peer, topic, strlen(topic));
}

static void
test_intact(void **state)
{
    (void)state;
    static const uint8_t a[16] = {0xa};
    static const uint8_t b[16] = {0xb};
    zmesh__retain_t *retain = NULL;
    assert_int_equal(zmesh__retain_new(&retain, 300), 0);
    assert_int_equal(zmesh__retain_set_history(retain, "i.h", 10), 0);
    assert_false(s_intact(retain, a, "i.a")); /* no mark */
    zmesh__retain_mark(retain, a);
    // Nothing published since the mark is missing, also on no topic.
    assert_true(s_intact(retain, a, "i.a"));
    assert_true(s_intact(retain, a, "i.none"));
    assert_false(s_intact(retain, b, "i.a"));
    for (uint64_t seq = 1; seq <= 3; seq++)
        assert_int_equal(s_add(retain, "i.a", seq, 60), 0);
    for (uint64_t seq = 1; seq <= 2; seq++)
        assert_int_equal(s_add(retain, "i.b", seq, 60), 0);
    assert_true(s_intact(retain, a, "i.a"));
    assert_true(s_intact(retain, a, "i.b"));
    // i.b 3 pushes i.a 1 out: i.a can no longer be vouched for, i.b can.
    assert_int_equal(s_add(retain, "i.b", 3, 60), 0);
    assert_false(s_intact(retain, a, "i.a"));
    assert_true(s_intact(retain, a, "i.b"));
    // A later mark: what was lost came before it.
    zmesh__retain_mark(retain, b);
    assert_true(s_intact(retain, b, "i.a"));
    // Frames pushed out of the buffer but kept as history are not lost.
    for (uint64_t seq = 1; seq <= 8; seq++)
        assert_int_equal(s_add(retain, "i.h", seq, 60), 0);
    assert_true(s_intact(retain, b, "i.h"));
    // All of i.a went, but all of it came before b's mark.
    assert_true(s_intact(retain, b, "i.a"));
    // i.h's entry is newer than a's mark, and a frame was lost in
    // between: perhaps one of i.h, so not vouched for (conservative).
    assert_false(s_intact(retain, a, "i.h"));
    // Over max_bytes without history: never kept, so not vouched for.
    zmesh__retain_mark(retain, b);
    assert_int_equal(s_add(retain, "i.b", 4, 301), 0);
    assert_false(s_intact(retain, b, "i.b"));
    assert_true(s_intact(retain, b, "i.h"));
    // A topic whose entry went and came back since the mark: the lost
    // frame of another topic makes it unsure.
    zmesh__retain_mark(retain, b);
    assert_int_equal(s_add(retain, "i.c", 1, 60), 0);
    for (uint64_t seq = 9; seq <= 13; seq++)
        assert_int_equal(s_add(retain, "i.h", seq, 60), 0);
    assert_int_equal(s_add(retain, "i.c", 2, 60), 0);
    s_seen_t seen;
    s_range(retain, "i.c", 1, 9, b, &seen);
    s_expect_run(&seen, "i.c", 2, 2);
    assert_false(s_intact(retain, b, "i.c"));
    // Dropped from history and not in the buffer: lost.
    zmesh__retain_mark(retain, b);
    assert_true(s_intact(retain, b, "i.h"));
    for (uint64_t seq = 14; seq <= 24; seq++)
        assert_int_equal(s_add(retain, "i.h", seq, 60), 0);
    assert_false(s_intact(retain, b, "i.h"));
    assert_false(s_intact(retain, b, ""));
    zmesh__retain_destroy(&retain);

    // With the buffer disabled and no history, every add is lost.
    assert_int_equal(zmesh__retain_new(&retain, 0), 0);
    zmesh__retain_mark(retain, a);
    assert_true(s_intact(retain, a, "i.a"));
    assert_int_equal(s_add(retain, "i.a", 1, 60), 0);
    assert_false(s_intact(retain, a, "i.a"));
    assert_false(s_intact(retain, a, "i.other"));
    zmesh__retain_mark(retain, a);
    assert_true(s_intact(retain, a, "i.a"));
    // A failed add is lost too.
    unsigned char frame[16] = {0};
    assert_int_equal(zmesh__retain_add(retain, "i.a", 3, 2, frame, SIZE_MAX),
                     ZMESH_ENOMEM);
    assert_false(s_intact(retain, a, "i.a"));
    zmesh__retain_destroy(&retain);
}

static void
test_visitor_stops(void **state)
{
    (void)state;
    zmesh__retain_t *retain = NULL;
    assert_int_equal(zmesh__retain_new(&retain, 6000), 0);
    assert_int_equal(zmesh__retain_set_history(retain, "v.>", 10), 0);
    for (uint64_t seq = 1; seq <= 10; seq++) {
        assert_int_equal(s_add(retain, "v.a", seq, 60), 0);
        assert_int_equal(s_add(retain, "v.b", seq, 60), 0);
    }
    s_seen_t seen;
    memset(&seen, 0, sizeof seen);
    seen.stop_after = 3;
    assert_int_equal(
        zmesh__retain_range(retain, "v.a", 3, 2, 9, NULL, s_visit, &seen), 3);
    assert_int_equal(seen.calls, 4); /* the refused one, then no more */
    assert_int_equal(seen.seen[2].seq, 4);
    memset(&seen, 0, sizeof seen);
    seen.stop_after = 12;
    assert_int_equal(zmesh__retain_history(retain, ">", s_visit, &seen), 12);
    assert_int_equal(seen.calls, 13);
    // Only frames taken count as served: 3 + 12.
    assert_int_equal(s_stats(retain).served, 15);
    zmesh__retain_destroy(&retain);
}

static void
test_max_bytes_zero(void **state)
{
    (void)state;
    zmesh__retain_t *retain = NULL;
    assert_int_equal(zmesh__retain_new(&retain, 0), 0);
    for (uint64_t seq = 1; seq <= 5; seq++)
        assert_int_equal(s_add(retain, "z.a", seq, 60), 0);
    s_seen_t seen;
    assert_int_equal(s_range(retain, "z.a", 1, 5, NULL, &seen), 0);
    zmesh__retain_stats_t stats = s_stats(retain);
    assert_int_equal(stats.not_kept, 5);
    assert_int_equal(stats.topics, 0);
    assert_int_equal(stats.held_bytes, 0);
    assert_int_equal(zmesh__retain_set_history(retain, "z.>", 3), 0);
    for (uint64_t seq = 6; seq <= 10; seq++)
        assert_int_equal(s_add(retain, "z.a", seq, 60), 0);
    s_range(retain, "z.a", 1, 10, NULL, &seen);
    s_expect_run(&seen, "z.a", 8, 10);
    stats = s_stats(retain);
    assert_int_equal(stats.bytes, 0);
    assert_int_equal(stats.frames, 0);
    assert_int_equal(stats.evicted, 0);
    assert_int_equal(stats.history_frames, 3);
    assert_int_equal(stats.held_bytes, 180);
    // A topic found to need no history, dropped twice, gets one when a
    // pattern for it comes.
    assert_int_equal(s_add(retain, "y.a", 1, 60), 0);
    assert_int_equal(s_add(retain, "y.a", 2, 60), 0);
    assert_int_equal(s_stats(retain).not_kept, 7);
    assert_int_equal(zmesh__retain_set_history(retain, "y.a", 1), 0);
    assert_int_equal(s_add(retain, "y.a", 3, 60), 0);
    s_range(retain, "y.a", 1, 10, NULL, &seen);
    s_expect_run(&seen, "y.a", 3, 3);
    assert_int_equal(s_stats(retain).not_kept, 7);
    zmesh__retain_destroy(&retain);
}

static void
test_bad_arguments(void **state)
{
    (void)state;
    zmesh__retain_t *retain = NULL;
    assert_int_equal(zmesh__retain_new(NULL, 10), ZMESH_EINVAL);
    assert_int_equal(zmesh__retain_new(&retain, 6000), 0);
    unsigned char frame[64] = {0};
    char long_topic[ZMESH_TOPIC_MAX + 2];
    memset(long_topic, 'x', sizeof long_topic);
    static const struct {
        const char *topic;
        size_t size; /* SIZE_MAX: strlen */
        int rc;
    } cases[] = {
        {NULL, 3, ZMESH_EINVAL},          {"", SIZE_MAX, ZMESH_EINVAL},
        {"a..b", SIZE_MAX, ZMESH_ETOPIC}, {"a.*", SIZE_MAX, ZMESH_ETOPIC},
        {"a.>", SIZE_MAX, ZMESH_ETOPIC},  {".a", SIZE_MAX, ZMESH_ETOPIC},
        {"a b", SIZE_MAX, ZMESH_ETOPIC},  {"a\0b", 3, ZMESH_ETOPIC},
        {"$mesh.x", SIZE_MAX, 0},         {"ok.x", SIZE_MAX, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t size =
            cases[i].size == SIZE_MAX ? strlen(cases[i].topic) : cases[i].size;
        assert_int_equal(zmesh__retain_add(retain, cases[i].topic, size, 1,
                                           frame, sizeof frame),
                         cases[i].rc);
    }
    assert_int_equal(zmesh__retain_add(retain, long_topic, ZMESH_TOPIC_MAX + 1,
                                       1, frame, sizeof frame),
                     ZMESH_EINVAL);
    assert_int_equal(zmesh__retain_add(retain, "ok.y", 4, 1, NULL, 1),
                     ZMESH_EINVAL);
    // A size no allocation can hold fails cleanly and is counted.
    assert_int_equal(zmesh__retain_add(retain, "ok.y", 4, 1, frame, SIZE_MAX),
                     ZMESH_ENOMEM);
    zmesh__retain_stats_t stats = s_stats(retain);
    assert_int_equal(stats.add_failures, 1);
    assert_int_equal(stats.topics, 2);
    assert_int_equal(stats.frames, 2);
    // Requests from the wire that name nothing kept visit nothing.
    s_seen_t seen;
    memset(&seen, 0, sizeof seen);
    assert_int_equal(
        zmesh__retain_range(retain, NULL, 4, 1, 9, NULL, s_visit, &seen), 0);
    assert_int_equal(
        zmesh__retain_range(retain, "ok.x", 0, 1, 9, NULL, s_visit, &seen), 0);
    assert_int_equal(
        zmesh__retain_range(retain, "ok.x\0", 5, 1, 9, NULL, s_visit, &seen),
        0);
    assert_int_equal(zmesh__retain_range(retain, long_topic, sizeof long_topic,
                                         1, 9, NULL, s_visit, &seen),
                     0);
    assert_int_equal(
        zmesh__retain_range(retain, "ok.x", 4, 1, 9, NULL, s_visit, &seen), 1);
    assert_int_equal(seen.calls, 1);
    zmesh__retain_destroy(&retain);
}

/*  A randomised run against a model: every add is remembered, and the
    expected answer for a topic is worked out from the definition (the
    buffer holds the longest run of newest frames within the budget,
    leaving out those over it; history the newest `count` of the topic). */
#define S_MODEL_ADDS 6000
#define S_MODEL_TOPICS 97
#define S_MODEL_BUDGET 480
#define S_MODEL_HISTORY 3

typedef struct {
    int topic;
    uint64_t seq;
    size_t size;
} s_add_t;

static uint32_t
s_random(uint32_t *state)
{
    *state = *state * 1103515245u + 12345u;
    return *state >> 8;
}

static void
s_model_topic(int i, char *out, size_t cap)
{
    // Topics h.<i> have a history; o.<i> do not.
    snprintf(out, cap, "%c.%d", i % 3 == 0 ? 'h' : 'o', i);
}

static void
s_model_check(zmesh__retain_t *retain, const s_add_t *adds, size_t n,
              int topic_index)
{
    // Kept in the buffer: walk back from the newest add.
    static bool kept[S_MODEL_ADDS];
    memset(kept, 0, sizeof(bool) * n);
    size_t bytes = 0;
    for (size_t i = n; i-- > 0;) {
        if (adds[i].size > S_MODEL_BUDGET)
            continue;
        if (bytes + adds[i].size > S_MODEL_BUDGET)
            break;
        bytes += adds[i].size;
        kept[i] = true;
    }
    size_t history = 0;
    for (size_t i = n; i-- > 0;) {
        if (adds[i].topic != topic_index || topic_index % 3 != 0)
            continue;
        if (history++ < S_MODEL_HISTORY)
            kept[i] = true;
    }
    char topic[32];
    s_model_topic(topic_index, topic, sizeof topic);
    s_seen_t seen;
    s_range(retain, topic, 1, UINT64_MAX, NULL, &seen);
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (adds[i].topic != topic_index || !kept[i])
            continue;
        assert_true(j < seen.count);
        assert_int_equal(seen.seen[j].seq, adds[i].seq);
        assert_int_equal(seen.seen[j].size, adds[i].size);
        j++;
    }
    assert_int_equal(j, seen.count);
    assert_int_equal(s_stats(retain).bytes, bytes);
}

static void
test_model(void **state)
{
    (void)state;
    static s_add_t adds[S_MODEL_ADDS];
    uint64_t next_seq[S_MODEL_TOPICS] = {0};
    zmesh__retain_t *retain = NULL;
    assert_int_equal(zmesh__retain_new(&retain, S_MODEL_BUDGET), 0);
    assert_int_equal(zmesh__retain_set_history(retain, "h.*", S_MODEL_HISTORY),
                     0);
    uint32_t random = 12345;
    char topic[32];
    for (size_t n = 0; n < S_MODEL_ADDS; n++) {
        // Skewed: a few busy topics and a long tail, runs of one topic.
        int t = (int)(s_random(&random) % 8 == 0
                          ? s_random(&random) % S_MODEL_TOPICS
                          : s_random(&random) % 5);
        if (n > 0 && s_random(&random) % 2 == 0)
            t = adds[n - 1].topic;
        size_t size = 16 + s_random(&random) % 100;
        if (s_random(&random) % 50 == 0)
            size = S_FRAME_MAX; /* sometimes the odd huge one */
        next_seq[t] += 1 + (s_random(&random) % 10 == 0);
        adds[n] = (s_add_t){t, next_seq[t], size};
        s_model_topic(t, topic, sizeof topic);
        assert_int_equal(s_add(retain, topic, adds[n].seq, size), 0);
        if (n % 211 == 0 || n == S_MODEL_ADDS - 1)
            for (int i = 0; i < S_MODEL_TOPICS; i++)
                s_model_check(retain, adds, n + 1, i);
    }
    zmesh__retain_destroy(&retain);
}

/*  One thread adds, another serves, for about half a second; the served
    frames must be whole and in order. Meant for -fsanitize=thread as well
    as address. */
typedef struct {
    zmesh__retain_t *retain;
    int failures; /* written by the adder only, read after the join */
    uint64_t adds;
} s_adder_t;

static double
s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *
s_adder(void *arg)
{
    s_adder_t *adder = arg;
    uint64_t seq[8] = {0};
    char topic[16];
    double end = s_now() + 0.5;
    for (uint64_t i = 0; i < 20000000; i++) {
        if (i % 1024 == 0 && s_now() > end)
            break;
        int t = (int)(i % 8);
        snprintf(topic, sizeof topic, "c.%d", t);
        if (s_add(adder->retain, topic, ++seq[t], 24 + i % 100) != 0)
            adder->failures++;
        adder->adds++;
    }
    return NULL;
}

static void
test_concurrent(void **state)
{
    (void)state;
    s_adder_t adder = {0};
    assert_int_equal(zmesh__retain_new(&adder.retain, 64 * 1024), 0);
    assert_int_equal(zmesh__retain_set_history(adder.retain, "c.1", 50), 0);
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, s_adder, &adder), 0);
    // Wait (at most 10 s) for the first frames: valgrind runs one thread
    // at a time and may leave the adder waiting while this one spins.
    struct timespec pause = {0, 1000000};
    for (int i = 0; i < 10000 && s_stats(adder.retain).frames == 0; i++)
        nanosleep(&pause, NULL);
    uint8_t peer[16] = {0};
    size_t served = 0, requests = 0;
    // The adder stops after 0.5 s; serve a little longer than that, and
    // on until something was served, but never past 10 s.
    double start = s_now();
    s_seen_t seen;
    char topic[16];
    for (uint64_t i = 0; i < 10000000; i++) {
        double elapsed = s_now() - start;
        if (elapsed > 10 || (elapsed > 0.6 && served > 0))
            break;
        snprintf(topic, sizeof topic, "c.%d", (int)(i % 8));
        peer[0] = (uint8_t)(i % 5);
        switch (i % 4) {
        case 0:
            served += s_range(adder.retain, topic, 1, UINT64_MAX, NULL, &seen);
            break;
        case 1:
            served += s_range(adder.retain, topic, 1, UINT64_MAX, peer, &seen);
            break;
        case 2: served += s_history(adder.retain, "c.*", &seen); break;
        default:
            zmesh__retain_mark(adder.retain, peer);
            if (i % 7 == 0)
                zmesh__retain_unmark(adder.retain, peer);
            zmesh__retain_stats_t stats = s_stats(adder.retain);
            assert_true(stats.bytes <= 64 * 1024);
            assert_true(stats.history_frames <= 50);
        }
        requests++;
    }
    assert_int_equal(pthread_join(thread, NULL), 0);
    assert_int_equal(adder.failures, 0);
    assert_true(adder.adds > 0);
    assert_true(requests > 0);
    assert_true(served > 0);
    zmesh__retain_stats_t stats = s_stats(adder.retain);
    assert_int_equal(stats.served, served);
    zmesh__retain_destroy(&adder.retain);
}

/*  A frame whose memory says when ZeroMQ lets go of it. */
typedef struct {
    unsigned char bytes[S_FRAME_MAX];
    int freed;
} s_owned_t;

static void
s_owned_free(void *data, void *hint)
{
    (void)data;
    ((s_owned_t *)hint)->freed++;
}

static bool
s_visit_pointer(void *arg, uint64_t seq, const void *frame, size_t size)
{
    (void)seq;
    (void)size;
    *(const void **)arg = frame;
    return true;
}

// The publisher hands over the message it is about to send: the buffer
// keeps a reference (the bytes served are the message's own) that
// outlives the sender's copy, and lets go of it when the frame is
// evicted, so the memory is freed by the thread that adds.
static void
test_message_reference(void **state)
{
    (void)state;
    zmesh__retain_t *retain = NULL;
    assert_int_equal(zmesh__retain_new(&retain, 1000), 0);
    s_owned_t owned = {{0}, 0};
    size_t size = s_make(owned.bytes, 300, "m.a", 1);
    zmq_msg_t msg;
    assert_int_equal(
        zmq_msg_init_data(&msg, owned.bytes, size, s_owned_free, &owned), 0);
    assert_int_equal(zmesh__retain_add_msg(retain, "m.a", 3, 1, &msg), 0);
    assert_int_equal(zmq_msg_close(&msg), 0); // as sending would
    assert_int_equal(owned.freed, 0);
    const void *served = NULL;
    assert_int_equal(zmesh__retain_range(retain, "m.a", 3, 1, 1, NULL,
                                         s_visit_pointer, &served),
                     1);
    assert_ptr_equal(served, owned.bytes);
    s_seen_t seen;
    assert_int_equal(s_range(retain, "m.a", 1, 1, NULL, &seen), 1);
    // Frames of another topic push it out of the 1000-byte budget.
    for (uint64_t seq = 1; seq <= 3; seq++)
        assert_int_equal(s_add(retain, "m.b", seq, 300), 0);
    assert_int_equal(owned.freed, 1);
    assert_int_equal(s_range(retain, "m.a", 1, 1, NULL, &seen), 0);
    assert_int_equal(s_stats(retain).evicted, 1);

    // A frame still held when the buffer goes is let go then.
    s_owned_t last = {{0}, 0};
    size = s_make(last.bytes, 200, "m.c", 7);
    assert_int_equal(
        zmq_msg_init_data(&msg, last.bytes, size, s_owned_free, &last), 0);
    assert_int_equal(zmesh__retain_add_msg(retain, "m.c", 3, 7, &msg), 0);
    assert_int_equal(zmq_msg_close(&msg), 0);
    assert_int_equal(last.freed, 0);
    assert_int_equal(zmesh__retain_add_msg(retain, "m.c", 3, 8, NULL),
                     ZMESH_EINVAL);
    zmesh__retain_destroy(&retain);
    assert_int_equal(last.freed, 1);
}

/* ------------------------------------------------------------------------ */
/*  Batch frames (zmesh__retain_add_batch): each event of a batch is kept
    as a record of its own that refers to the batch message, and served as
    a real frame of its own (decoded here with zmesh__frame_decode). */

#define S_BATCH_MAX 16
#define S_BATCH_BYTES 4096

static const uint8_t s_publisher[16] = {0xde, 0xad, 0xbe, 0xef, 1, 2,  3,  4,
                                        5,    6,    7,    8,    9, 10, 11, 12};

/*  A batch frame being built: its bytes, the offsets add_batch wants
    (from the frame's start) and, when `owned`, a free function that says
    when ZeroMQ let go of the memory. */
typedef struct {
    uint8_t bytes[S_BATCH_BYTES];
    size_t size;
    size_t count;
    uint32_t offsets[S_BATCH_MAX];
    size_t payload_sizes[S_BATCH_MAX];
    int freed;
} s_batch_t;

static void
s_batch_free(void *data, void *hint)
{
    (void)data;
    ((s_batch_t *)hint)->freed++;
}

/*  Builds the batch frame of `count` (2..S_BATCH_MAX) events of `topic`,
    seqs first..first+count-1, payload i of sizes[i] bytes tagged by its
    seq, all stamped `timestamp_us`, and makes `msg` refer to it. */
static void
s_batch_make(s_batch_t *batch, zmq_msg_t *msg, const char *topic,
             uint64_t first, int64_t timestamp_us, const size_t *sizes,
             size_t count)
{
    assert_true(count >= 2 && count <= S_BATCH_MAX);
    memset(batch, 0, sizeof *batch);
    size_t topic_size = strlen(topic);
    size_t head =
        zmesh__batch_head_size(topic_size, first, timestamp_us, count);
    int n = zmesh__batch_head_encode(topic, topic_size, s_publisher, first,
                                     timestamp_us, 0, count, batch->bytes,
                                     sizeof batch->bytes);
    assert_int_equal(n, (int)head);
    size_t at = head;
    for (size_t i = 0; i < count; i++) {
        assert_true(at + sizes[i] <= sizeof batch->bytes);
        batch->offsets[i] = (uint32_t)at;
        batch->payload_sizes[i] = sizes[i];
        s_payload(batch->bytes + at, sizes[i], first + i);
        at += sizes[i];
    }
    batch->size = at;
    batch->count = count;
    // The frame is a real batch: it decodes whole.
    zmesh__batch_t decoded;
    assert_int_equal(zmesh__batch_decode(batch->bytes, at, &decoded), 0);
    assert_int_equal(decoded.left, count - 1);
    assert_int_equal(
        zmq_msg_init_data(msg, batch->bytes, at, s_batch_free, batch), 0);
}

static int
s_batch_add(zmesh__retain_t *retain, const char *topic, zmq_msg_t *msg,
            const s_batch_t *batch, uint64_t first, int64_t timestamp_us)
{
    return zmesh__retain_add_batch(retain, topic, strlen(topic), msg,
                                   s_publisher, first, timestamp_us,
                                   batch->offsets, batch->count);
}

/*  Adds a batch of `count` events of `size` payload bytes each and lets go
    of the sender's copy of the message, as sending would. */
static void
s_batch_add_sent(zmesh__retain_t *retain, s_batch_t *batch, const char *topic,
                 uint64_t first, int64_t timestamp_us, size_t count,
                 size_t size)
{
    size_t sizes[S_BATCH_MAX];
    for (size_t i = 0; i < count; i++)
        sizes[i] = size;
    zmq_msg_t msg;
    s_batch_make(batch, &msg, topic, first, timestamp_us, sizes, count);
    assert_int_equal(
        s_batch_add(retain, topic, &msg, batch, first, timestamp_us), 0);
    assert_int_equal(zmq_msg_close(&msg), 0);
}

/*  Adds one real frame (payload of `size` bytes tagged by seq) through
    add_msg, as a publisher sending an event on its own does. */
static void
s_single_add(zmesh__retain_t *retain, const char *topic, uint64_t seq,
             int64_t timestamp_us, size_t size)
{
    uint8_t payload[S_BATCH_BYTES];
    s_payload(payload, size, seq);
    size_t topic_size = strlen(topic);
    size_t frame_size = zmesh__frame_size(topic_size, seq, timestamp_us, size);
    zmq_msg_t msg;
    assert_int_equal(zmq_msg_init_size(&msg, frame_size), 0);
    assert_int_equal(zmesh__frame_encode(topic, topic_size, s_publisher, seq,
                                         timestamp_us, payload, size,
                                         zmq_msg_data(&msg), frame_size),
                     (int)frame_size);
    assert_int_equal(
        zmesh__retain_add_msg(retain, topic, topic_size, seq, &msg), 0);
    assert_int_equal(zmq_msg_close(&msg), 0);
}

/*  What a visitor saw of real frames: each one decoded, and checked
    against the visit's seq. */
typedef struct {
    char topic[32];
    uint64_t seq;
    int64_t timestamp_us;
    unsigned flags;
    uint8_t publisher[16];
    size_t size; /* of the frame */
    size_t payload_size;
    uint8_t payload[S_BATCH_BYTES];
} s_event_t;

typedef struct {
    size_t count;
    size_t bad; /* frames zmesh__frame_decode refused, or under another seq */
    s_event_t seen[32];
} s_decoded_t;

static bool
s_visit_decode(void *arg, uint64_t seq, const void *frame, size_t size)
{
    s_decoded_t *seen = arg;
    zmesh__frame_t decoded;
    if (zmesh__frame_decode(frame, size, &decoded) != 0 ||
        decoded.sequence != seq || decoded.topic_size >= 32 ||
        decoded.payload_size > S_BATCH_BYTES) {
        seen->bad++;
        return true;
    }
    if (seen->count < 32) {
        s_event_t *entry = &seen->seen[seen->count];
        memcpy(entry->topic, decoded.topic, decoded.topic_size);
        entry->topic[decoded.topic_size] = '\0';
        entry->seq = decoded.sequence;
        entry->timestamp_us = decoded.timestamp_us;
        entry->flags = decoded.flags;
        memcpy(entry->publisher, decoded.publisher, 16);
        entry->size = size;
        entry->payload_size = decoded.payload_size;
        memcpy(entry->payload, decoded.payload, decoded.payload_size);
    }
    seen->count++;
    return true;
}

static size_t
s_range_decoded(zmesh__retain_t *retain, const char *topic, uint64_t first,
                uint64_t last, const uint8_t *peer, s_decoded_t *seen)
{
    memset(seen, 0, sizeof *seen);
    size_t n = zmesh__retain_range(retain, topic, strlen(topic), first, last,
                                   peer, s_visit_decode, seen);
    assert_int_equal(n, seen->count);
    assert_int_equal(seen->bad, 0);
    return n;
}

static size_t
s_history_decoded(zmesh__retain_t *retain, const char *pattern,
                  s_decoded_t *seen)
{
    memset(seen, 0, sizeof *seen);
    size_t n = zmesh__retain_history(retain, pattern, s_visit_decode, seen);
    assert_int_equal(n, seen->count);
    assert_int_equal(seen->bad, 0);
    return n;
}

// Asserts that entry i of `seen` is the event `seq` of `topic`, a frame of
// its own of this publisher, stamped `timestamp_us`, with the payload of
// `size` bytes that s_payload makes for seq.
static void
s_expect_event(const s_decoded_t *seen, size_t i, const char *topic,
               uint64_t seq, int64_t timestamp_us, size_t size)
{
    assert_true(i < seen->count && i < 32);
    assert_string_equal(seen->seen[i].topic, topic);
    assert_int_equal(seen->seen[i].seq, seq);
    assert_int_equal(seen->seen[i].timestamp_us, timestamp_us);
    assert_int_equal(seen->seen[i].flags, 0);
    assert_memory_equal(seen->seen[i].publisher, s_publisher, 16);
    assert_int_equal(seen->seen[i].size,
                     zmesh__frame_size(strlen(topic), seq, timestamp_us, size));
    uint8_t expected[S_BATCH_BYTES];
    s_payload(expected, size, seq);
    assert_int_equal(seen->seen[i].payload_size, size);
    assert_memory_equal(seen->seen[i].payload, expected, size);
}

// The sum of the sizes of the single frames of events first..last of
// `topic`, each with `size` payload bytes.
static uint64_t
s_frames_bytes(const char *topic, uint64_t first, uint64_t last,
               int64_t timestamp_us, size_t size)
{
    uint64_t bytes = 0;
    for (uint64_t seq = first; seq <= last; seq++)
        bytes += zmesh__frame_size(strlen(topic), seq, timestamp_us, size);
    return bytes;
}

// A batch of ten events of different sizes; a range over part of it serves
// each as a frame of its own, with the right seq, payload, timestamp,
// publisher and topic, and no batch flag.
static void
test_batch_range(void **state)
{
    (void)state;
    zmesh__retain_t *retain = NULL;
    assert_int_equal(zmesh__retain_new(&retain, 64 * 1024), 0);
    const int64_t ts = 1700000000123456;
    size_t sizes[10];
    for (size_t i = 0; i < 10; i++)
        sizes[i] = 1 + i * 37; /* a fixint, bin 8s, a bin 16 */
    s_batch_t batch;
    zmq_msg_t msg;
    s_batch_make(&batch, &msg, "b.a", 101, ts, sizes, 10);
    assert_int_equal(s_batch_add(retain, "b.a", &msg, &batch, 101, ts), 0);
    assert_int_equal(zmq_msg_close(&msg), 0);
    assert_int_equal(batch.freed, 0);

    s_decoded_t seen;
    assert_int_equal(s_range_decoded(retain, "b.a", 103, 107, NULL, &seen), 5);
    for (size_t i = 0; i < 5; i++)
        s_expect_event(&seen, i, "b.a", 103 + i, ts, sizes[2 + i]);
    // The whole batch, and ranges that overlap its ends.
    assert_int_equal(s_range_decoded(retain, "b.a", 1, UINT64_MAX, NULL, &seen),
                     10);
    for (size_t i = 0; i < 10; i++)
        s_expect_event(&seen, i, "b.a", 101 + i, ts, sizes[i]);
    assert_int_equal(s_range_decoded(retain, "b.a", 90, 101, NULL, &seen), 1);
    s_expect_event(&seen, 0, "b.a", 101, ts, sizes[0]);
    assert_int_equal(s_range_decoded(retain, "b.a", 110, 200, NULL, &seen), 1);
    s_expect_event(&seen, 0, "b.a", 110, ts, sizes[9]);
    assert_int_equal(s_range_decoded(retain, "b.a", 111, 200, NULL, &seen), 0);
    assert_int_equal(s_range_decoded(retain, "b.other", 1, 200, NULL, &seen),
                     0);

    // Counted as ten frames of their own sizes, not as the batch's.
    zmesh__retain_stats_t stats = s_stats(retain);
    uint64_t bytes = 0;
    for (size_t i = 0; i < 10; i++)
        bytes += zmesh__frame_size(3, 101 + i, ts, sizes[i]);
    assert_int_equal(stats.frames, 10);
    assert_int_equal(stats.bytes, bytes);
    assert_int_equal(stats.held_bytes, bytes);
    assert_int_equal(stats.topics, 1);
    assert_int_equal(stats.served, 5 + 10 + 1 + 1);
    assert_true(bytes != batch.size);

    // A batch small enough for ZeroMQ to copy into the message itself
    // (under its 33-byte limit) is served as well.
    s_batch_t tiny;
    size_t one[2] = {1, 1};
    s_batch_make(&tiny, &msg, "v", 1, 5, one, 2);
    assert_true(tiny.size <= 33);
    zmq_msg_t small;
    assert_int_equal(zmq_msg_init_size(&small, tiny.size), 0);
    memcpy(zmq_msg_data(&small), tiny.bytes, tiny.size);
    assert_int_equal(zmq_msg_close(&msg), 0);
    assert_int_equal(s_batch_add(retain, "v", &small, &tiny, 1, 5), 0);
    assert_int_equal(zmq_msg_close(&small), 0);
    assert_int_equal(s_range_decoded(retain, "v", 1, 2, NULL, &seen), 2);
    s_expect_event(&seen, 0, "v", 1, 5, 1);
    s_expect_event(&seen, 1, "v", 2, 5, 1);

    zmesh__retain_destroy(&retain);
    assert_int_equal(batch.freed, 1);
}

// Events added on their own and in batches, in one topic, are served in
// seq order, each with its own frame's timestamp.
static void
test_batch_mixed(void **state)
{
    (void)state;
    zmesh__retain_t *retain = NULL;
    assert_int_equal(zmesh__retain_new(&retain, 64 * 1024), 0);
    s_batch_t first, second;
    s_single_add(retain, "m.x", 1, 1000, 20);
    s_batch_add_sent(retain, &first, "m.x", 2, 2000, 4, 30); /* 2..5 */
    s_single_add(retain, "m.x", 6, 3000, 40);
    s_batch_add_sent(retain, &second, "m.x", 7, 4000, 2, 50); /* 7, 8 */
    s_single_add(retain, "m.x", 9, 5000, 60);
    // Another topic in between changes nothing for this one.
    s_single_add(retain, "m.y", 1, 6000, 10);
    s_decoded_t seen;
    assert_int_equal(s_range_decoded(retain, "m.x", 1, 9, NULL, &seen), 9);
    for (uint64_t seq = 1; seq <= 9; seq++) {
        int64_t ts = seq == 1   ? 1000
                     : seq <= 5 ? 2000
                     : seq == 6 ? 3000
                     : seq <= 8 ? 4000
                                : 5000;
        size_t size = seq == 1   ? 20
                      : seq <= 5 ? 30
                      : seq == 6 ? 40
                      : seq <= 8 ? 50
                                 : 60;
        s_expect_event(&seen, seq - 1, "m.x", seq, ts, size);
    }
    assert_int_equal(s_range_decoded(retain, "m.x", 4, 7, NULL, &seen), 4);
    s_expect_event(&seen, 0, "m.x", 4, 2000, 30);
    s_expect_event(&seen, 1, "m.x", 5, 2000, 30);
    s_expect_event(&seen, 2, "m.x", 6, 3000, 40);
    s_expect_event(&seen, 3, "m.x", 7, 4000, 50);
    assert_int_equal(s_range_decoded(retain, "m.y", 1, 9, NULL, &seen), 1);
    s_expect_event(&seen, 0, "m.y", 1, 6000, 10);
    zmesh__retain_stats_t stats = s_stats(retain);
    assert_int_equal(stats.frames, 10);
    assert_int_equal(stats.topics, 2);
    zmesh__retain_destroy(&retain);
    assert_int_equal(first.freed, 1);
    assert_int_equal(second.freed, 1);
}

// History over batched events: each kept event has a frame of its own
// from the moment only the history keeps it, so a history of a few events
// does not keep whole batches alive (a history of 1 on 1000 topics kept
// 16 MB of batches while reporting 277 KB).
static void
test_batch_history(void **state)
{
    (void)state;
    zmesh__retain_t *retain = NULL;
    // No retransmit buffer: only history holds anything, from the start.
    assert_int_equal(zmesh__retain_new(&retain, 0), 0);
    assert_int_equal(zmesh__retain_set_history(retain, "h.>", 3), 0);
    s_batch_t first, second;
    s_batch_add_sent(retain, &first, "h.a", 1, 111, 5, 24); /* 1..5 */
    assert_int_equal(first.freed, 1); // its kept events are copies
    s_decoded_t seen;
    assert_int_equal(s_history_decoded(retain, "h.>", &seen), 3);
    for (size_t i = 0; i < 3; i++)
        s_expect_event(&seen, i, "h.a", 3 + i, 111, 24);
    assert_int_equal(s_range_decoded(retain, "h.a", 1, 10, NULL, &seen), 3);
    zmesh__retain_stats_t stats = s_stats(retain);
    assert_int_equal(stats.history_frames, 3);
    assert_int_equal(stats.frames, 0);
    assert_int_equal(stats.bytes, 0);
    assert_int_equal(stats.held_bytes, s_frames_bytes("h.a", 3, 5, 111, 24));

    s_batch_add_sent(retain, &second, "h.a", 6, 222, 2, 40); /* 6, 7 */
    assert_int_equal(second.freed, 1);
    assert_int_equal(s_history_decoded(retain, "h.>", &seen), 3);
    s_expect_event(&seen, 0, "h.a", 5, 111, 24);
    s_expect_event(&seen, 1, "h.a", 6, 222, 40);
    s_expect_event(&seen, 2, "h.a", 7, 222, 40);
    s_single_add(retain, "h.a", 8, 333, 10);
    assert_int_equal(s_history_decoded(retain, "h.>", &seen), 3);
    s_expect_event(&seen, 0, "h.a", 6, 222, 40);
    s_expect_event(&seen, 1, "h.a", 7, 222, 40);
    s_expect_event(&seen, 2, "h.a", 8, 333, 10);
    stats = s_stats(retain);
    assert_int_equal(stats.history_frames, 3);
    assert_int_equal(stats.held_bytes, s_frames_bytes("h.a", 6, 7, 222, 40) +
                                           zmesh__frame_size(3, 8, 333, 10));
    assert_int_equal(zmesh__retain_set_history(retain, "h.>", 1), 0);
    assert_int_equal(s_history_decoded(retain, "h.>", &seen), 1);
    s_expect_event(&seen, 0, "h.a", 8, 333, 10);
    // A batch bigger than the history keeps only its newest events.
    s_batch_t third;
    s_batch_add_sent(retain, &third, "h.b", 1, 444, 6, 16);
    assert_int_equal(third.freed, 1);
    assert_int_equal(s_range_decoded(retain, "h.b", 1, 6, NULL, &seen), 1);
    s_expect_event(&seen, 0, "h.b", 6, 444, 16);
    zmesh__retain_destroy(&retain);

    // With a buffer: the batch lives while the buffer holds any of it,
    // and goes when the buffer lets its last event go, even though the
    // history still has some of its events (as copies).
    size_t frame = zmesh__frame_size(3, 1, 555, 30);
    assert_int_equal(zmesh__retain_new(&retain, 2 * frame), 0);
    assert_int_equal(zmesh__retain_set_history(retain, "h.>", 3), 0);
    s_batch_t fourth;
    s_batch_add_sent(retain, &fourth, "h.c", 1, 555, 5, 30); /* 1..5 */
    stats = s_stats(retain);
    assert_int_equal(stats.frames, 2); // 4 and 5
    assert_int_equal(stats.history_frames, 3);
    assert_int_equal(fourth.freed, 0);
    s_single_add(retain, "h.x", 1, 555, 30);
    s_single_add(retain, "h.x", 2, 555, 30);
    assert_int_equal(fourth.freed, 1); // 4 and 5 left the buffer
    assert_int_equal(s_range_decoded(retain, "h.c", 1, 5, NULL, &seen), 3);
    for (size_t i = 0; i < 3; i++)
        s_expect_event(&seen, i, "h.c", 3 + i, 555, 30);
    zmesh__retain_destroy(&retain);
}

// The byte budget counts each batched event as its own frame's size: the
// batch message itself may even be over the budget. The batch message is
// let go only when its last record goes.
static void
test_batch_budget(void **state)
{
    (void)state;
    const int64_t ts = 42;
    const size_t payload = 100;
    size_t frame = zmesh__frame_size(3, 1, ts, payload); /* seqs < 128 */
    zmesh__retain_t *retain = NULL;
    assert_int_equal(zmesh__retain_new(&retain, 4 * frame + frame / 2), 0);
    s_batch_t first, second;
    s_batch_add_sent(retain, &first, "e.a", 1, ts, 8, payload); /* 1..8 */
    assert_true(first.size > 4 * frame + frame / 2);
    zmesh__retain_stats_t stats = s_stats(retain);
    assert_int_equal(stats.frames, 4);
    assert_int_equal(stats.bytes, 4 * frame);
    assert_int_equal(stats.held_bytes, 4 * frame);
    assert_int_equal(stats.evicted, 4);
    assert_int_equal(stats.not_kept, 0);
    assert_int_equal(first.freed, 0);
    s_decoded_t seen;
    assert_int_equal(s_range_decoded(retain, "e.a", 1, 8, NULL, &seen), 4);
    for (size_t i = 0; i < 4; i++)
        s_expect_event(&seen, i, "e.a", 5 + i, ts, payload);

    s_batch_add_sent(retain, &second, "e.a", 9, ts, 2, payload); /* 9, 10 */
    stats = s_stats(retain);
    assert_int_equal(stats.frames, 4);
    assert_int_equal(stats.bytes, 4 * frame);
    assert_int_equal(stats.evicted, 6);
    assert_int_equal(first.freed, 0);
    // Frames of another topic, of the same size, push out 7 then 8.
    s_single_add(retain, "e.b", 1, ts, payload);
    assert_int_equal(first.freed, 0);
    assert_int_equal(s_range_decoded(retain, "e.a", 1, 10, NULL, &seen), 3);
    s_expect_event(&seen, 0, "e.a", 8, ts, payload);
    s_single_add(retain, "e.b", 2, ts, payload);
    assert_int_equal(first.freed, 1);
    assert_int_equal(second.freed, 0);
    assert_int_equal(s_range_decoded(retain, "e.a", 1, 10, NULL, &seen), 2);
    s_expect_event(&seen, 0, "e.a", 9, ts, payload);
    s_expect_event(&seen, 1, "e.a", 10, ts, payload);
    stats = s_stats(retain);
    assert_int_equal(stats.frames, 4);
    assert_int_equal(stats.bytes, 4 * frame);
    assert_int_equal(stats.held_bytes, 4 * frame);
    assert_int_equal(stats.evicted, 8);
    assert_int_equal(stats.topics, 2);
    // Two more push out the second batch whole.
    s_single_add(retain, "e.b", 3, ts, payload);
    assert_int_equal(second.freed, 0);
    s_single_add(retain, "e.b", 4, ts, payload);
    assert_int_equal(second.freed, 1);
    stats = s_stats(retain);
    assert_int_equal(stats.topics, 1);
    assert_int_equal(s_range_decoded(retain, "e.a", 1, 10, NULL, &seen), 0);

    // An event whose own frame is over the budget is not kept; the
    // others of its batch are.
    s_batch_t third;
    size_t sizes[3] = {payload, 5 * frame, payload};
    zmq_msg_t msg;
    s_batch_make(&third, &msg, "e.c", 1, ts, sizes, 3);
    assert_int_equal(s_batch_add(retain, "e.c", &msg, &third, 1, ts), 0);
    assert_int_equal(zmq_msg_close(&msg), 0);
    stats = s_stats(retain);
    assert_int_equal(stats.not_kept, 1);
    assert_int_equal(s_range_decoded(retain, "e.c", 1, 3, NULL, &seen), 2);
    s_expect_event(&seen, 0, "e.c", 1, ts, payload);
    s_expect_event(&seen, 1, "e.c", 3, ts, payload);
    zmesh__retain_destroy(&retain);
    assert_int_equal(third.freed, 1);
}

// Offsets outside the frame, not increasing, or at 0 are refused, and
// then nothing of the batch is kept. Other bad arguments change nothing.
static void
test_batch_bad_offsets(void **state)
{
    (void)state;
    zmesh__retain_t *retain = NULL;
    assert_int_equal(zmesh__retain_new(&retain, 64 * 1024), 0);
    s_batch_t batch;
    size_t sizes[4] = {10, 10, 10, 10};
    zmq_msg_t msg;
    s_batch_make(&batch, &msg, "x.a", 1, 7, sizes, 4);
    uint32_t good[4];
    memcpy(good, batch.offsets, sizeof good);
    uint32_t size = (uint32_t)batch.size;
    s_decoded_t seen;
    const uint32_t bad[][2] = {
        {3, 0},          // the last at the frame's end: an empty event
        {3, 1},          // past the end (size + 100 below)
        {2, UINT32_MAX}, // one in the middle past the end
        {1, 0},          // not increasing: empty (offsets[0] below)
        {2, 1},          // backward (offsets[1] - 1 below)
        {0, 0},          // at 0, inside where the topic is
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        memcpy(batch.offsets, good, sizeof good);
        uint32_t *at = &batch.offsets[bad[k][0]];
        switch (k) {
        case 0: *at = size; break;
        case 1: *at = size + 100; break;
        case 2: *at = UINT32_MAX; break;
        case 3: *at = batch.offsets[0]; break;
        case 4: *at = batch.offsets[1] - 1; break;
        default: *at = 0; break;
        }
        assert_int_equal(s_batch_add(retain, "x.a", &msg, &batch, 1, 7),
                         ZMESH_EINVAL);
        zmesh__retain_stats_t stats = s_stats(retain);
        assert_int_equal(stats.frames, 0);
        assert_int_equal(stats.held_bytes, 0);
    }
    zmesh__retain_destroy(&retain);

    // Other bad arguments keep nothing.
    assert_int_equal(zmesh__retain_new(&retain, 64 * 1024), 0);
    memcpy(batch.offsets, good, sizeof good);
    assert_int_equal(zmesh__retain_add_batch(retain, "x.a", 3, &msg,
                                             s_publisher, 1, 7, good, 0),
                     ZMESH_EINVAL);
    assert_int_equal(
        zmesh__retain_add_batch(retain, "x.a", 3, &msg, NULL, 1, 7, good, 4),
        ZMESH_EINVAL);
    assert_int_equal(zmesh__retain_add_batch(retain, "x.a", 3, &msg,
                                             s_publisher, 1, 7, NULL, 4),
                     ZMESH_EINVAL);
    assert_int_equal(zmesh__retain_add_batch(retain, "x.a", 3, NULL,
                                             s_publisher, 1, 7, good, 4),
                     ZMESH_EINVAL);
    assert_int_equal(zmesh__retain_add_batch(retain, NULL, 3, &msg, s_publisher,
                                             1, 7, good, 4),
                     ZMESH_EINVAL);
    assert_int_equal(zmesh__retain_add_batch(retain, "x.a", 0, &msg,
                                             s_publisher, 1, 7, good, 4),
                     ZMESH_EINVAL);
    assert_int_equal(zmesh__retain_add_batch(retain, "x..", 3, &msg,
                                             s_publisher, 1, 7, good, 4),
                     ZMESH_ETOPIC);
    zmesh__retain_stats_t stats = s_stats(retain);
    assert_int_equal(stats.frames, 0);
    assert_int_equal(stats.topics, 0);
    assert_int_equal(stats.held_bytes, 0);
    // And the good offsets work.
    assert_int_equal(s_batch_add(retain, "x.a", &msg, &batch, 1, 7), 0);
    assert_int_equal(s_range_decoded(retain, "x.a", 1, 4, NULL, &seen), 4);
    for (size_t i = 0; i < 4; i++)
        s_expect_event(&seen, i, "x.a", 1 + i, 7, 10);
    assert_int_equal(zmq_msg_close(&msg), 0);
    assert_int_equal(batch.freed, 0);
    zmesh__retain_destroy(&retain);
    assert_int_equal(batch.freed, 1);
}

// Join marks count each batched event as an add of its own: a range since
// a mark serves the events added after it, and a batched event lost after
// the mark makes the topic unvouched.
static void
test_batch_marks(void **state)
{
    (void)state;
    static const uint8_t a[16] = {0xa};
    static const uint8_t b[16] = {0xb};
    const int64_t ts = 9;
    size_t frame = zmesh__frame_size(3, 1, ts, 50);
    zmesh__retain_t *retain = NULL;
    assert_int_equal(zmesh__retain_new(&retain, 6 * frame), 0);
    s_batch_t first, second, third;
    zmesh__retain_mark(retain, a);
    s_batch_add_sent(retain, &first, "j.a", 1, ts, 3, 50); /* 1..3 */
    zmesh__retain_mark(retain, b);
    s_batch_add_sent(retain, &second, "j.a", 4, ts, 2, 50); /* 4, 5 */
    s_decoded_t seen;
    assert_int_equal(s_range_decoded(retain, "j.a", 1, 10, a, &seen), 5);
    for (size_t i = 0; i < 5; i++)
        s_expect_event(&seen, i, "j.a", 1 + i, ts, 50);
    assert_int_equal(s_range_decoded(retain, "j.a", 1, 10, b, &seen), 2);
    s_expect_event(&seen, 0, "j.a", 4, ts, 50);
    s_expect_event(&seen, 1, "j.a", 5, ts, 50);
    assert_true(zmesh__retain_intact(retain, a, "j.a", 3));
    assert_true(zmesh__retain_intact(retain, b, "j.a", 3));

    // A mark in the middle of what one add_batch keeps cannot happen
    // (one lock), so marks fall between batches. Three more events push
    // out 1 and 2, which only a's mark covers.
    s_batch_add_sent(retain, &third, "j.a", 6, ts, 3, 50); /* 6..8 */
    assert_int_equal(s_stats(retain).evicted, 2);
    assert_false(zmesh__retain_intact(retain, a, "j.a", 3));
    assert_true(zmesh__retain_intact(retain, b, "j.a", 3));
    assert_int_equal(s_range_decoded(retain, "j.a", 1, 10, a, &seen), 6);
    s_expect_event(&seen, 0, "j.a", 3, ts, 50);
    assert_int_equal(s_range_decoded(retain, "j.a", 1, 10, b, &seen), 5);
    s_expect_event(&seen, 0, "j.a", 4, ts, 50);
    s_expect_event(&seen, 4, "j.a", 8, ts, 50);
    assert_int_equal(first.freed, 0);
    // Pushing out 3 and 4 lets the first batch go and loses one of b's.
    s_single_add(retain, "j.b", 1, ts, 50);
    s_single_add(retain, "j.b", 2, ts, 50);
    assert_int_equal(first.freed, 1);
    assert_false(zmesh__retain_intact(retain, b, "j.a", 3));
    zmesh__retain_mark(retain, a);
    assert_true(zmesh__retain_intact(retain, a, "j.a", 3));
    assert_int_equal(s_range_decoded(retain, "j.a", 1, 10, a, &seen), 0);
    zmesh__retain_destroy(&retain);
    assert_int_equal(second.freed, 1);
    assert_int_equal(third.freed, 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_budget_exact),
        cmocka_unit_test(test_eviction_across_topics),
        cmocka_unit_test(test_many_topics),
        cmocka_unit_test(test_history),
        cmocka_unit_test(test_history_patterns),
        cmocka_unit_test(test_history_arguments),
        cmocka_unit_test(test_history_topic_cap),
        cmocka_unit_test(test_each_seq_once),
        cmocka_unit_test(test_marks),
        cmocka_unit_test(test_marks_bounded),
        cmocka_unit_test(test_intact),
        cmocka_unit_test(test_visitor_stops),
        cmocka_unit_test(test_max_bytes_zero),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_model),
        cmocka_unit_test(test_concurrent),
        cmocka_unit_test(test_message_reference),
        cmocka_unit_test(test_batch_range),
        cmocka_unit_test(test_batch_mixed),
        cmocka_unit_test(test_batch_history),
        cmocka_unit_test(test_batch_budget),
        cmocka_unit_test(test_batch_bad_offsets),
        cmocka_unit_test(test_batch_marks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
