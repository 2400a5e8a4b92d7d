/*  tails.c - the schedule of tail frames: one doubly linked queue per
    tail, each in the order of its streams' last events. The times after
    a stream's last event are the same for every stream, so each queue is
    in the order its streams come due, and a run pops due streams from
    the fronts only. A stream that keeps publishing stays where it is in
    the first queue and only moves its own time on: when the front of
    the queue reaches it, it goes to the back again, so the publish path
    never searches or reorders anything. */
#include "tails.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/*  After a stream's last event, in ms: the first tail catches a loss
    soon, the later ones get through to a subscriber whose queue was
    still full at the first. */
static const int64_t s_after_ms[ZMESH__TAILS_PER_QUIET] = {100, 1000, 10000};

typedef struct {
    zmesh__pubstream_t *head, *tail;
} s_queue_t;

struct zmesh__tails {
    s_queue_t queues[ZMESH__TAILS_PER_QUIET]; /* by the tail due next */
    size_t count;
    int64_t next_us; /* 0: nothing listed */
};

int
zmesh__tails_new(zmesh__tails_t **tails)
{
    assert(tails);
    *tails = calloc(1, sizeof **tails);
    return *tails ? 0 : ZMESH_ENOMEM;
}

void
zmesh__tails_destroy(zmesh__tails_t **tails)
{
    if (!tails || !*tails)
        return;
    free(*tails);
    *tails = NULL;
}

zmesh__pubstream_t *
zmesh__tails_stream_new(const char *topic, size_t topic_size)
{
    assert(topic && topic_size <= ZMESH_TOPIC_MAX);
    zmesh__pubstream_t *stream = calloc(1, sizeof *stream);
    if (!stream)
        return NULL;
    memcpy(stream->topic, topic, topic_size);
    stream->topic_size = topic_size;
    return stream;
}

// When the stream's next tail is due, by its time now.
static int64_t
s_due(const zmesh__pubstream_t *stream)
{
    return stream->last_us + s_after_ms[stream->tails] * 1000;
}

// When the front of queue `k` comes due (0: empty): early for a stream
// that published since it joined.
static int64_t
s_front_due(const zmesh__tails_t *self, unsigned k)
{
    const zmesh__pubstream_t *front = self->queues[k].head;
    return front ? front->queued_us + s_after_ms[k] * 1000 : 0;
}

static void
s_next_update(zmesh__tails_t *self)
{
    int64_t next = 0;
    for (unsigned k = 0; k < ZMESH__TAILS_PER_QUIET; k++) {
        int64_t due = s_front_due(self, k);
        if (due != 0 && (next == 0 || due < next))
            next = due;
    }
    self->next_us = next;
}

// Puts a listed stream into the queue of its next tail, in the order of
// their times: at the back, almost always (a stream that just published
// has the latest time of all), so the walk from the back is short.
static void
s_push(zmesh__tails_t *self, zmesh__pubstream_t *stream)
{
    s_queue_t *queue = &self->queues[stream->tails];
    stream->queued_us = stream->last_us;
    zmesh__pubstream_t *after = queue->tail;
    while (after && after->queued_us > stream->queued_us)
        after = after->prev;
    stream->prev = after;
    stream->next = after ? after->next : queue->head;
    if (stream->next)
        stream->next->prev = stream;
    else
        queue->tail = stream;
    if (after)
        after->next = stream;
    else
        queue->head = stream;
    int64_t due = s_due(stream);
    if (self->next_us == 0 || due < self->next_us)
        self->next_us = due;
}

static void
s_unlink(zmesh__tails_t *self, zmesh__pubstream_t *stream)
{
    s_queue_t *queue = &self->queues[stream->tails];
    if (stream->prev)
        stream->prev->next = stream->next;
    else
        queue->head = stream->next;
    if (stream->next)
        stream->next->prev = stream->prev;
    else
        queue->tail = stream->prev;
    stream->prev = stream->next = NULL;
}

bool
zmesh__tails_list(zmesh__tails_t *self, zmesh__pubstream_t *stream)
{
    int64_t before = self->next_us;
    if (stream->listed)
        s_unlink(self, stream);
    else {
        stream->listed = true;
        self->count++;
    }
    stream->tails = 0;
    s_push(self, stream);
    return self->next_us != before;
}

int64_t
zmesh__tails_next(const zmesh__tails_t *self)
{
    return self->next_us;
}

size_t
zmesh__tails_run(zmesh__tails_t *self, int64_t now_us,
                 zmesh__tails_send_fn *send, void *arg)
{
    size_t sent = 0;
    // The last queue first, so that a stream moved on to a later queue is
    // not looked at again in this run.
    for (unsigned k = ZMESH__TAILS_PER_QUIET; k-- > 0;) {
        s_queue_t *queue = &self->queues[k];
        zmesh__pubstream_t *stream;
        while ((stream = queue->head) != NULL &&
               stream->queued_us + s_after_ms[k] * 1000 <= now_us) {
            s_unlink(self, stream);
            if (s_due(stream) > now_us) {
                s_push(self, stream); // it published since: not yet
                continue;
            }
            if (send)
                send(arg, stream);
            sent++;
            // One frame says it all: the times already passed are skipped.
            while (stream->tails < ZMESH__TAILS_PER_QUIET &&
                   s_due(stream) <= now_us)
                stream->tails++;
            if (stream->tails == ZMESH__TAILS_PER_QUIET) {
                stream->listed = false;
                self->count--;
            } else
                s_push(self, stream);
        }
    }
    s_next_update(self);
    return sent;
}

size_t
zmesh__tails_listed(const zmesh__tails_t *self)
{
    return self->count;
}
