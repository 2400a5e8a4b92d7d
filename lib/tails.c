/*  tails.c - the schedule of tail frames: a doubly linked list of the
    streams that published since their last tail, walked when the
    earliest of them is due. A stream that keeps publishing stays on the
    list and only moves its own time on, so the publish path never
    searches or reorders anything. */
#include "tails.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/*  After a stream's last event, in ms: the first tail catches a loss
    soon, the later ones get through to a subscriber whose queue was
    still full at the first. */
static const int64_t s_after_ms[ZMESH__TAILS_PER_QUIET] = {100, 1000, 10000};

struct zmesh__tails {
    zmesh__pubstream_t *head;
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

static int64_t
s_due(const zmesh__pubstream_t *stream)
{
    return stream->last_us + s_after_ms[stream->tails] * 1000;
}

void
zmesh__tails_list(zmesh__tails_t *self, zmesh__pubstream_t *stream)
{
    assert(!stream->listed && stream->tails == 0);
    stream->prev = NULL;
    stream->next = self->head;
    if (self->head)
        self->head->prev = stream;
    self->head = stream;
    stream->listed = true;
    self->count++;
    int64_t due = s_due(stream);
    if (self->next_us == 0 || due < self->next_us)
        self->next_us = due;
}

static void
s_unlist(zmesh__tails_t *self, zmesh__pubstream_t *stream)
{
    if (stream->prev)
        stream->prev->next = stream->next;
    else
        self->head = stream->next;
    if (stream->next)
        stream->next->prev = stream->prev;
    stream->prev = stream->next = NULL;
    stream->listed = false;
    self->count--;
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
    int64_t next = 0;
    for (zmesh__pubstream_t *stream = self->head, *after; stream;
         stream = after) {
        after = stream->next;
        if (s_due(stream) <= now_us) {
            if (send)
                send(arg, stream);
            sent++;
            // One frame says it all: the times already passed are skipped.
            while (stream->tails < ZMESH__TAILS_PER_QUIET &&
                   s_due(stream) <= now_us)
                stream->tails++;
            if (stream->tails == ZMESH__TAILS_PER_QUIET) {
                s_unlist(self, stream);
                continue;
            }
        }
        int64_t due = s_due(stream);
        if (next == 0 || due < next)
            next = due;
    }
    self->next_us = next;
    return sent;
}

size_t
zmesh__tails_listed(const zmesh__tails_t *self)
{
    return self->count;
}
