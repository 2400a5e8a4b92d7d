/*  retain.h - a publisher's memory of the event frames it sent: a
    retransmit buffer bounded in bytes, to answer NAKs (gap repair and
    "join" requests), and the last N events of chosen topics, to answer
    HISTORY requests from late joiners. Shared by the application thread,
    which adds every published frame, and the control thread, which serves
    requests: every function except new and destroy is thread-safe.
    Talks to topic (pattern matching) and codec (a batched event's own
    frame) only. */
#ifndef ZMESH_RETAIN_H_INCLUDED
#define ZMESH_RETAIN_H_INCLUDED

#include "zmesh.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

/*  Limits, so memory stays bounded whatever the application publishes or a
    peer asks. */
#define ZMESH__RETAIN_HISTORY_MAX 10000        /* events kept per pattern */
#define ZMESH__RETAIN_PATTERNS_MAX 64          /* history patterns */
#define ZMESH__RETAIN_HISTORY_TOPICS_MAX 65536 /* topics with a history */
#define ZMESH__RETAIN_MARKS_MAX 4096           /* peers with a join mark */

typedef struct zmesh__retain zmesh__retain_t;

/*  Creates an empty memory. `max_bytes` is the retransmit budget in bytes
    of frames (their sizes, not counting bookkeeping); 0 disables the
    retransmit buffer, and then only history is kept. On success *retain
    is the new object, owned by the caller (free it with
    zmesh__retain_destroy). Errors: ZMESH_EINVAL (retain NULL),
    ZMESH_ENOMEM. Any thread. */
int zmesh__retain_new(zmesh__retain_t **retain, size_t max_bytes);

/*  Frees the object and every frame it holds and sets *retain to NULL.
    Accepts NULL and a pointer to NULL. No other thread may be using it. */
void zmesh__retain_destroy(zmesh__retain_t **retain);

/*  Keeps the last `count` events of every topic matching `pattern` (a
    NUL-terminated pattern, proto/wire.md#topics) for HISTORY, whatever the
    byte budget. A topic matching several patterns keeps the largest count.
    A later call for the same pattern replaces its count; count 0 removes
    the pattern. History starts with the events added after the call; a
    lower count (or a removal) drops the oldest kept events at once. At
    most ZMESH__RETAIN_HISTORY_TOPICS_MAX topics have a history: past that
    the history of the topic added to least recently is dropped (counted as
    history_dropped). Errors: ZMESH_EPATTERN (NULL or invalid pattern),
    ZMESH_EINVAL (count over ZMESH__RETAIN_HISTORY_MAX), ZMESH_ETOOBIG (a
    new pattern beyond ZMESH__RETAIN_PATTERNS_MAX), ZMESH_ENOTFOUND (count
    0 for a pattern that is not set). On error nothing changes. Any
    thread; the pattern is copied. */
int zmesh__retain_set_history(zmesh__retain_t *self, const char *pattern,
                              size_t count);

/*  Records one published frame: copies `size` bytes of `frame` (usually
    encoded by zmesh__frame_encode) under (topic, seq). `topic` (`topic_size`
    bytes, need not be NUL-terminated) must be a valid topic ('$' topics
    too); `seq` must be greater than every seq added before for this topic
    (the caller guarantees it; events added out of order would be served
    out of order). The frame goes into the retransmit buffer unless it is
    larger than max_bytes, evicting the oldest frames (of any topic) until
    the buffer's frames fit the budget; it also goes into the topic's
    history when a history pattern matches the topic. A frame kept by
    neither is dropped and counted (not_kept); that is not an error.
    Errors: ZMESH_EINVAL (topic NULL, empty or over ZMESH_TOPIC_MAX bytes,
    frame NULL with size > 0), ZMESH_ETOPIC (invalid topic syntax; checked
    only when the topic has no entry yet, and not at all while the buffer
    is disabled and no history pattern could want the frame), ZMESH_ENOMEM
    (nothing kept; counted as add_failures). Cost: one lock, a copy of
    the frame, and one allocation unless the record evicted by the
    previous add can be reused; no hashing when the topic is that of the
    previous add. Any thread
    (meant for the application's publishing thread). */
int zmesh__retain_add(zmesh__retain_t *self, const char *topic,
                      size_t topic_size, uint64_t seq, const void *frame,
                      size_t size);

/*  zmesh__retain_add for a frame that is a ZeroMQ message about to be
    sent: keeps a reference to it (zmq_msg_copy), so the caller still owns
    and sends `frame`. No copy of the bytes, and the message's memory is
    freed by whichever thread lets go of it last: here, on eviction, in
    the steady state. Same errors, plus ZMESH_EINVAL for a NULL frame. */
int zmesh__retain_add_msg(zmesh__retain_t *self, const char *topic,
                          size_t topic_size, uint64_t seq, zmq_msg_t *frame);

/*  Records the `count` events of a batch frame (proto/wire.md#batch-frame)
    about to be sent, as zmesh__retain_add_msg would each under one lock:
    event i has sequence first_seq + i and its payload from offsets[i] up
    to offsets[i + 1] (the frame's end for the last). The batch is kept by
    reference; a range or history visit gets each event as a frame of its
    own (publisher, its sequence, timestamp_us, no flags), which is what a
    REPAIR or HISTORY carries. Its size in the budget is that frame's. All
    batches share one `publisher` (the agent's). An event only the
    history keeps gets a frame of its own (then, or when the buffer lets
    it go), so that it does not keep its whole batch alive. Errors as
    zmesh__retain_add, plus ZMESH_EINVAL for offsets that are not
    increasing inside the frame (nothing is kept then); events before one
    that fails for want of memory stay kept. */
int zmesh__retain_add_batch(zmesh__retain_t *self, const char *topic,
                            size_t topic_size, zmq_msg_t *frame,
                            const uint8_t publisher[16], uint64_t first_seq,
                            int64_t timestamp_us, const uint32_t *offsets,
                            size_t count);

/*  Marks "now" for `peer` (a 16-byte agent id), to call when that peer's
    sync token (proto/wire.md#sync-token) reaches the publisher: a later
    range with since_peer = peer then serves only events added after this
    call. Marking again moves the mark to now. At most
    ZMESH__RETAIN_MARKS_MAX peers are marked; past that the oldest mark is
    dropped. Memory for a new mark failing to allocate leaves the peer
    unmarked (its join requests are then served nothing, which the
    requester sees as a gap). Any thread. */
void zmesh__retain_mark(zmesh__retain_t *self, const uint8_t peer[16]);

/*  Forgets the peer's mark, e.g. when it leaves. Unknown peers are
    ignored. Any thread. */
void zmesh__retain_unmark(zmesh__retain_t *self, const uint8_t peer[16]);

/*  True when `peer` has a mark and every frame of `topic` (`topic_size`
    bytes) added since that mark is still held by one of the stores: none
    was evicted, dropped from history, over max_bytes without a history,
    or failed to be added. A range with since_peer = peer then visits all
    of them that fall in its bounds, so the publisher can vouch for a join
    answer (proto/wire.md#nak: `join` 1 in the last REPAIR). Call it after
    the range: losses in between only make it false. Conservative: false
    also when the topic's entry was freed and made again since the mark
    while frames of other topics were lost. False for an unknown peer
    and for a NULL, empty or over-long topic. Any thread. */
bool zmesh__retain_intact(zmesh__retain_t *self, const uint8_t peer[16],
                          const char *topic, size_t topic_size);

/*  The visitor of range and history: gets one kept frame (borrowed, valid
    only during the call) and returns true to take it and go on, false to
    leave this frame untaken and stop (e.g. the answer is full; the
    caller knows the last seq it took and may ask again from there). It
    runs under the object's lock: it must only copy, and must not call
    into this object. */
typedef bool(zmesh__retain_visit_fn)(void *arg, uint64_t seq, const void *frame,
                                     size_t size);

/*  Visits, in sequence order, the kept frames of `topic` (`topic_size`
    bytes, need not be NUL-terminated) with first <= seq <= last, from the
    retransmit buffer and the history together, each seq once. When
    `since_peer` is non-NULL, only frames added after that peer's mark are
    visited, and none at all if the peer has no mark. Returns the number of
    frames taken (visit returned true). Inputs from the network are safe:
    an unknown, empty, over-long or invalid topic, or first > last, visits
    nothing. Cost: proportional to the topic's frames with seq >= first
    (and added after the mark), so recent ranges are cheap. Any thread
    (meant for the control thread). */
size_t zmesh__retain_range(zmesh__retain_t *self, const char *topic,
                           size_t topic_size, uint64_t first, uint64_t last,
                           const uint8_t *since_peer,
                           zmesh__retain_visit_fn *visit, void *arg);

/*  Visits the history of every topic matching `pattern` (NUL-terminated):
    each topic's kept events in sequence order, topics in no particular
    order. Returns the number of frames taken; an invalid or NULL pattern
    visits nothing. Frames only in the retransmit buffer are not history.
    Any thread (meant for the control thread). */
size_t zmesh__retain_history(zmesh__retain_t *self, const char *pattern,
                             zmesh__retain_visit_fn *visit, void *arg);

/*  Counters for STATS; a consistent snapshot. */
typedef struct {
    uint64_t bytes;           /* frame bytes in the retransmit buffer */
    uint64_t frames;          /* frames in the retransmit buffer */
    uint64_t history_frames;  /* frames kept as history (some are in both) */
    uint64_t held_bytes;      /* frame bytes held in all, each frame once */
    uint64_t topics;          /* topics with at least one frame held */
    uint64_t history_topics;  /* topics with a history */
    uint64_t marks;           /* peers with a join mark */
    uint64_t evicted;         /* frames pushed out of the buffer by budget */
    uint64_t not_kept;        /* frames over max_bytes and with no history */
    uint64_t history_dropped; /* histories dropped at the topic limit */
    uint64_t served;          /* frames taken by range and history visitors */
    uint64_t add_failures;    /* adds that failed for want of memory */
} zmesh__retain_stats_t;

/*  Fills *out with the current counters. Any thread. */
void zmesh__retain_stats(zmesh__retain_t *self, zmesh__retain_stats_t *out);

#endif
