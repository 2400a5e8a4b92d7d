/*  repair.h - a subscriber's repairs under way. When a stream (publisher
    incarnation, topic) shows a gap, the agent asks the publisher for the
    missing events (NAK) and opens a session here: the stream's later
    events are held until the answers (REPAIR) fill the gap or a deadline
    passes, then everything is released in sequence order and whatever is
    still missing is reported as a gap by the stream bookkeeping
    (streams.h). Used by the application thread only; talks to nothing.
    proto/wire.md#nak. */
#ifndef ZMESH_REPAIR_H_INCLUDED
#define ZMESH_REPAIR_H_INCLUDED

#include "codec.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

typedef struct zmesh__repair zmesh__repair_t;

/*  A request the caller must send to the publisher. */
typedef struct {
    char topic[ZMESH_TOPIC_MAX + 1];
    uint8_t publisher[ZMESH__ID_SIZE];
    uint64_t req;
    uint64_t first;
    uint64_t last;
    bool join;
} zmesh__nak_t;

/*  At most `max_sessions` streams under repair and `max_bytes` of frames
    held across them; a session that would pass either limit is not
    opened (the caller reports the gap at once) or is released early. */
int zmesh__repair_new(zmesh__repair_t **repair, size_t max_sessions,
                      size_t max_bytes);
void zmesh__repair_destroy(zmesh__repair_t **repair);

/*  Number of open sessions: 0 means every frame can pass at once. */
size_t zmesh__repair_sessions(const zmesh__repair_t *self);

typedef enum {
    ZMESH__REPAIR_PASS = 0, /* no repair of this stream: judge it now */
    ZMESH__REPAIR_HELD = 1, /* held; *msg was moved into the session */
    ZMESH__REPAIR_NAK = 2,  /* held, and it shows a further gap: send *nak */
    ZMESH__REPAIR_DUPLICATE = 3 /* the session holds it already: drop it */
} zmesh__repair_verdict_t;

/*  For a live frame (decoded from *msg): holds it if its stream is under
    repair. A held frame that skips sequences past the ones already asked
    for asks for those too (NAK). A tail frame (ZMESH__FRAME_TAIL) of a
    stream whose last event is L is held as a marker: the caller gives
    it sequence L + 1 (in `frame`, not in the bytes), every event up to L
    not asked for yet is asked for, and an event L + 1 that comes (live or
    repaired) takes the marker's place. */
zmesh__repair_verdict_t zmesh__repair_hold(zmesh__repair_t *self,
                                           const zmesh__frame_t *frame,
                                           zmq_msg_t *msg, zmesh__nak_t *nak);

/*  Opens a session for the stream of `frame`, whose events first..last
    are missing, holding *msg (moved) until `deadline` (monotonic ms;
    every answer moves it as far on again, so a timeout means silence).
    `join`: the stream was first seen at frame->sequence and first..last
    precede it (a slow joiner). A tail frame is held as in
    zmesh__repair_hold. Fills *nak and returns true; false when a
    limit is reached or memory is short (nothing taken). */
bool zmesh__repair_open(zmesh__repair_t *self, const zmesh__frame_t *frame,
                        zmq_msg_t *msg, uint64_t first, uint64_t last,
                        bool join, int64_t deadline, zmesh__nak_t *nak);

/*  Opens a history session: the publisher was asked (HISTORY, number
    `req`) for the last events it keeps of topics matching `pattern`;
    until the answer is complete or `deadline` passes, that publisher's
    live frames matching the pattern are held, so the history comes
    first. False at the session limit or out of memory. */
bool zmesh__repair_history_open(zmesh__repair_t *self,
                                const uint8_t publisher[ZMESH__ID_SIZE],
                                const char *pattern, uint64_t req,
                                int64_t deadline);

/*  An answer to request `req` from `sender`: its frames (bytes copied;
    frames of another publisher or stream, or duplicates, are dropped and
    counted in *rejected), `done` when it was the last answer, `vouched`
    when the publisher says these are all events since the subscriber
    joined. Unknown requests (timed out already) are ignored: returns
    false. */
bool zmesh__repair_answer(zmesh__repair_t *self,
                          const uint8_t sender[ZMESH__ID_SIZE], uint64_t req,
                          void *const *frames, const size_t *sizes,
                          size_t count, bool done, bool vouched,
                          uint64_t *rejected);

/*  Ends every session of a publisher that left: they are released at the
    next zmesh__repair_release. */
void zmesh__repair_abandon(zmesh__repair_t *self,
                           const uint8_t publisher[ZMESH__ID_SIZE]);

/*  Called for each session released, before its frames: the caller
    rewinds its stream bookkeeping. `vouched` as in zmesh__repair_answer
    (false for sessions that are not joins). For a history session topic
    is "" (its frames are of many streams): the history's frames come
    first, each topic's in order, then the live ones held meanwhile. */
typedef void(zmesh__repair_session_fn)(void *arg,
                                       const uint8_t publisher[ZMESH__ID_SIZE],
                                       const char *topic, size_t topic_size,
                                       bool join, bool vouched);

/*  Called for each released frame, in sequence order: the callee takes
    the message (zmq_msg_move). `repaired` for frames that came in a
    REPAIR. */
typedef void(zmesh__repair_frame_fn)(void *arg, zmq_msg_t *msg, uint64_t seq,
                                     bool repaired);

/*  Releases sessions that are complete (every request answered), past
    their deadline at `now`, abandoned, or all of them if `all`. Returns
    the number released. */
size_t zmesh__repair_release(zmesh__repair_t *self, int64_t now, bool all,
                             zmesh__repair_session_fn *on_session,
                             zmesh__repair_frame_fn *on_frame, void *arg);

/*  The earliest deadline of the open sessions, or 0 when none. */
int64_t zmesh__repair_deadline(const zmesh__repair_t *self);

/*  Counters. */
typedef struct {
    uint64_t naks;        /* requests made */
    uint64_t repaired;    /* frames that arrived in answers and were kept */
    uint64_t timeouts;    /* sessions released at their deadline */
    uint64_t refused;     /* sessions not opened: a limit was reached */
    uint64_t held_bytes;  /* now */
    uint64_t held_frames; /* now */
    uint64_t history;     /* history frames received */
} zmesh__repair_stats_t;

void zmesh__repair_stats(const zmesh__repair_t *self,
                         zmesh__repair_stats_t *stats);

#endif
