/*  streams.h - what a subscriber knows of each stream it receives: the
    last sequence number delivered per (publisher incarnation, topic), and
    the verdict on the next one: in order, a gap, or one seen already.
    Pure bookkeeping; talks to nothing. proto/wire.md#sequences. */
#ifndef ZMESH_STREAMS_H_INCLUDED
#define ZMESH_STREAMS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    ZMESH__SEQ_FIRST = 0, /* first event seen on this stream: the baseline */
    ZMESH__SEQ_NEXT = 1,  /* the next one in order */
    ZMESH__SEQ_GAP = 2,   /* later than the next: some are missing */
    ZMESH__SEQ_OLD = 3    /* delivered already (or older): drop it */
} zmesh__seq_verdict_t;

typedef struct zmesh__streams zmesh__streams_t;

/*  At most `max` streams are remembered; past that the table is emptied
    (and zmesh__streams_resets counts it), so every stream starts again
    with a FIRST: a bound on memory for services that make up topics. */
int zmesh__streams_new(zmesh__streams_t **streams, size_t max);
void zmesh__streams_destroy(zmesh__streams_t **streams);

/*  Judges `sequence` on stream (publisher, topic) and records it unless it
    is OLD. For a GAP, *gap_first and *gap_last get the missing range
    (inclusive). `topic` need not be NUL-terminated. ZMESH__SEQ_FIRST also
    when memory runs out (the stream is then not remembered). */
zmesh__seq_verdict_t
zmesh__streams_track(zmesh__streams_t *self, const uint8_t publisher[16],
                     const char *topic, size_t topic_size, uint64_t sequence,
                     uint64_t *gap_first, uint64_t *gap_last);

/*  A tail frame (proto/wire.md#tail-frame) says the stream's last event
    is `last`. True, with the missing range in *gap_first..*gap_last, when
    the stream is tracked and its last delivered event is below that;
    false when nothing is missing or the stream is not tracked (a tail
    starts no stream). Records nothing. */
bool zmesh__streams_tail(zmesh__streams_t *self, const uint8_t publisher[16],
                         const char *topic, size_t topic_size, uint64_t last,
                         uint64_t *gap_first, uint64_t *gap_last);

/*  Sets the last delivered sequence of a stream back to `last` (0: none
    yet, so 1 is the next), so the events after it are judged again when
    they come from a repair. */
void zmesh__streams_rewind(zmesh__streams_t *self, const uint8_t publisher[16],
                           const char *topic, size_t topic_size, uint64_t last);

/*  Forgets one stream, so its next event is a FIRST: a slow joiner's clean
    start. */
void zmesh__streams_drop(zmesh__streams_t *self, const uint8_t publisher[16],
                         const char *topic, size_t topic_size);

/*  Forgets every stream of a publisher that left. */
void zmesh__streams_forget(zmesh__streams_t *self, const uint8_t publisher[16]);

/*  Forgets every stream whose topic `keep` says no to: after an
    unsubscribe, events of the topics no longer wanted are not lost when
    they stop arriving, and must not look lost if the topic is wanted
    again later. */
typedef bool(zmesh__streams_keep_fn)(void *arg, const char *topic,
                                     size_t topic_size);
void zmesh__streams_retain(zmesh__streams_t *self, zmesh__streams_keep_fn *keep,
                           void *arg);

/*  What a subscriber counts per stream, for zmesh_agent_counters. */
typedef struct {
    uint64_t last;       /* the last sequence delivered */
    uint64_t received;   /* messages delivered */
    uint64_t repaired;   /* ... of which came in a repair */
    uint64_t gaps;       /* gap events */
    uint64_t missing;    /* events those gaps name */
    uint64_t duplicates; /* dropped as delivered already */
    int64_t lag_us;      /* delivery time minus publish time, sampled */
    int8_t mark;         /* the caller's: 0 until it sets it */
} zmesh__stream_stats_t;

/*  The counters of the stream the last zmesh__streams_track call judged
    (NULL if it could not be remembered). Valid until the next call of any
    zmesh__streams_ function. */
zmesh__stream_stats_t *zmesh__streams_current(zmesh__streams_t *self);

/*  Calls `fn` for every stream; `publisher_hex` is 32 hex digits. */
typedef void(zmesh__streams_visit_fn)(void *arg, const char *publisher_hex,
                                      const char *topic,
                                      const zmesh__stream_stats_t *stats);
void zmesh__streams_each(zmesh__streams_t *self, zmesh__streams_visit_fn *fn,
                         void *arg);

/*  Sets every stream's mark back to 0. */
void zmesh__streams_clear_marks(zmesh__streams_t *self);

size_t zmesh__streams_size(const zmesh__streams_t *self);
uint64_t zmesh__streams_resets(const zmesh__streams_t *self);

#endif
