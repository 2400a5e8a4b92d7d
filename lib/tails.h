/*  tails.h - a publisher's streams, and when to say where each one ends.
    A subscriber sees a loss only when a later event of the stream comes,
    and after a stream's last event none does: the end of a burst that a
    stalled subscriber's full queue dropped would be lost in silence. So
    once a stream goes quiet, its publisher sends a tail frame with the
    stream's last sequence (proto/wire.md#tail-frame) 0.1, 1 and 10 s
    after its last event, and a subscriber that lacks events up to it
    asks for them as for any gap. This module keeps each stream's
    sequence and that schedule; the agent sends the frames. Application
    thread only (the XPUB is its own). Talks to nothing.

    The schedule is one queue per tail (the first, second, third after
    the last event), each in the order its streams' times come due, so
    a run touches only the streams that are due, however many published
    lately: a service with a topic per order does not pay per topic on
    every publish. */
#ifndef ZMESH_TAILS_H_INCLUDED
#define ZMESH_TAILS_H_INCLUDED

#include "zmesh.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*  How many tail frames follow a stream's last event. */
#define ZMESH__TAILS_PER_QUIET 3

/*  One stream the agent publishes: made by zmesh__tails_stream_new, owned
    by the caller (free() it once zmesh__tails_destroy has run). */
typedef struct zmesh__pubstream {
    uint64_t sequence; /* the last one published; 0: none yet */
    int64_t last_us;   /* when, in µs on the caller's clock (the wall
                          clock, never set back: zmesh__tails_next) */
    int64_t queued_us; /* last_us when it joined its queue (it may have
                          published since: the queue is then early) */
    unsigned tails;    /* tail frames due since then, so far: the queue */
    bool listed;       /* in a queue: a tail frame is to come */
    struct zmesh__pubstream *prev, *next;
    size_t topic_size;
    char topic[ZMESH_TOPIC_MAX + 1];
} zmesh__pubstream_t;

typedef struct zmesh__tails zmesh__tails_t;

int zmesh__tails_new(zmesh__tails_t **tails);
/*  Frees the schedule, not the streams. Accepts NULL and a pointer to
    NULL. */
void zmesh__tails_destroy(zmesh__tails_t **tails);

/*  A stream of `topic` (valid, `topic_size` bytes), with nothing
    published yet. NULL when memory is short. */
zmesh__pubstream_t *zmesh__tails_stream_new(const char *topic,
                                            size_t topic_size);

/*  The schedule starts again for a stream that has just published
    (stream->sequence, at `now_us`). Cheap: the publish path calls it,
    and only a stream that was quiet (its first tail sent, or none to
    come) is moved. True when the next tail frame is now due earlier
    (zmesh__tails_next), for a caller that sets a timer for it. */
bool zmesh__tails_list(zmesh__tails_t *self, zmesh__pubstream_t *stream);
static inline bool
zmesh__tails_published(zmesh__tails_t *self, zmesh__pubstream_t *stream,
                       int64_t now_us)
{
    stream->last_us = now_us;
    if (stream->listed && stream->tails == 0)
        return false; // its queue finds the new time when it comes to it
    return zmesh__tails_list(self, stream);
}

/*  When the next tail frame is due (microseconds on the caller's clock,
    which must never go back), or 0 when none is. May be early (a stream
    published since), never late. */
int64_t zmesh__tails_next(const zmesh__tails_t *self);

/*  Calls `send` for every stream whose tail frame is due at `now_us`
    (one call however many of its times have passed), and takes streams
    whose last tail is sent off the list; `send` NULL moves the schedule
    on without sending. Returns the tails that were due. */
typedef void(zmesh__tails_send_fn)(void *arg, const zmesh__pubstream_t *stream);
size_t zmesh__tails_run(zmesh__tails_t *self, int64_t now_us,
                        zmesh__tails_send_fn *send, void *arg);

/*  Streams with a tail frame still to come. */
size_t zmesh__tails_listed(const zmesh__tails_t *self);

#endif
