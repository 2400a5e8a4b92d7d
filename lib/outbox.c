/*  outbox.c - the pending batch of a publisher and its two senders (see
    outbox.h for the rule that lets both threads use the XPUB). A batch's
    payloads are gathered in a buffer of the outbox's own and copied once
    into the ZeroMQ message when it is sent: the message can only be
    allocated once its size is known, and a copy of a few kilobytes costs
    far less than the ZeroMQ messages it saves. */
#include "outbox.h"
#include "clock.h"
#include "codec.h"
#include "log.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <zmq.h>

/*  A payload bigger than this is sent on its own: batching saves per
    message costs, which larger events make small. */
#define S_EVENT_BYTES_MAX (ZMESH__OUTBOX_BYTES / 4)

struct zmesh__outbox {
    pthread_mutex_t lock;
    void *xpub;
    zmesh__retain_t *retained;
    uint8_t id[ZMESH__ID_SIZE];
    size_t max_events; /* < 2: no batching */
    int max_delay_ms;
    /* The pending batch; count 0: none. */
    char topic[ZMESH_TOPIC_MAX + 1];
    size_t topic_size;
    uint64_t first_seq;
    int64_t timestamp_us;
    int64_t opened_ms; /* monotonic */
    /* Events in it. Changed under the lock; read without it only by the
       application thread (zmesh__outbox_drain), which alone makes it
       more than 0. Set to 0 only once a flush is over, with release, so
       that an application thread that sees 0 knows the control thread is
       done with the XPUB. */
    atomic_size_t count;
    size_t used; /* payload bytes in `bytes` */
    uint8_t bytes[ZMESH__OUTBOX_BYTES];
    uint32_t offsets[ZMESH__OUTBOX_EVENTS_MAX]; /* each payload's, in bytes */
    /* When the application's last publish returned, near enough: its
       start, but re-read after a publish that sent (see ..._wants). */
    int64_t last_us;
    /* The control thread watches (polls at max_delay_ms) while batches
       are being opened; the application wakes it through `fd` when it
       opens one while it is not watching. */
    int fd;
    int app_fd; /* zmesh__outbox_app_fd */
    atomic_bool app_woken;
    atomic_bool watched;
    atomic_uint_fast64_t opens;
    uint64_t opens_seen; /* control thread's */
    /* zmesh__outbox_set_readers: payload bytes a batch may hold so that
       its frame fits every reader; 0: no batches */
    atomic_size_t room;
    atomic_bool tails_read; /* zmesh__outbox_set_readers */
    uint64_t batches, batched, unsent;
};

static size_t
s_count(const zmesh__outbox_t *self)
{
    return atomic_load_explicit(&self->count, memory_order_acquire);
}

int
zmesh__outbox_new(zmesh__outbox_t **outbox, void *xpub,
                  zmesh__retain_t *retained, const uint8_t id[16])
{
    assert(outbox && xpub && id);
    zmesh__outbox_t *self = calloc(1, sizeof *self);
    if (!self)
        return ZMESH_ENOMEM;
    self->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    self->app_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (self->fd < 0 || self->app_fd < 0) {
        if (self->fd >= 0)
            close(self->fd);
        if (self->app_fd >= 0)
            close(self->app_fd);
        free(self);
        return ZMESH_ESYS;
    }
    atomic_init(&self->app_woken, false);
    pthread_mutex_init(&self->lock, NULL);
    self->xpub = xpub;
    self->retained = retained;
    memcpy(self->id, id, ZMESH__ID_SIZE);
    self->max_events = ZMESH__OUTBOX_EVENTS;
    self->max_delay_ms = ZMESH__OUTBOX_DELAY_MS;
    atomic_init(&self->count, 0);
    atomic_init(&self->watched, false);
    atomic_init(&self->room, sizeof self->bytes);
    atomic_init(&self->tails_read, false);
    atomic_init(&self->opens, 0);
    *outbox = self;
    return 0;
}

void
zmesh__outbox_destroy(zmesh__outbox_t **outbox)
{
    if (!outbox || !*outbox)
        return;
    zmesh__outbox_t *self = *outbox;
    close(self->fd);
    close(self->app_fd);
    pthread_mutex_destroy(&self->lock);
    free(self);
    *outbox = NULL;
}

void
zmesh__outbox_configure(zmesh__outbox_t *self, size_t max_events,
                        int max_delay_ms)
{
    assert(self && s_count(self) == 0);
    assert(max_events <= ZMESH__OUTBOX_EVENTS_MAX);
    self->max_events = max_events;
    self->max_delay_ms = max_delay_ms;
}

bool
zmesh__outbox_wants(zmesh__outbox_t *self, size_t size, int64_t now_us)
{
    int64_t since = now_us - self->last_us;
    self->last_us = now_us;
    return self->max_events > 1 && size <= S_EVENT_BYTES_MAX && since >= 0 &&
           since <= ZMESH__OUTBOX_BURST_US &&
           size <= atomic_load_explicit(&self->room, memory_order_relaxed);
}

bool
zmesh__outbox_tails_read(const zmesh__outbox_t *self)
{
    return atomic_load_explicit(&self->tails_read, memory_order_relaxed);
}

void
zmesh__outbox_set_readers(zmesh__outbox_t *self, uint64_t frame_max, bool tails)
{
    atomic_store(&self->tails_read, tails);
    // The header of a batch frame takes at most the largest topic and the
    // meta (ZMESH__FRAME_OVERHEAD, with a few bytes more for the count).
    size_t head = ZMESH__FRAME_OVERHEAD + 16;
    size_t room = frame_max < ZMESH__OUTBOX_READER_MIN || frame_max <= head
                      ? 0
                      : frame_max - head;
    if (room > sizeof self->bytes)
        room = sizeof self->bytes;
    atomic_store(&self->room, room);
}

void
zmesh__outbox_lock(zmesh__outbox_t *self)
{
    pthread_mutex_lock(&self->lock);
}

void
zmesh__outbox_unlock(zmesh__outbox_t *self)
{
    pthread_mutex_unlock(&self->lock);
}

size_t
zmesh__outbox_pending(const zmesh__outbox_t *self)
{
    return s_count(self);
}

// Sends `msg` (the frame of `count` events) and counts it. XPUB sends do
// not block; they fail only as the context ends.
static void
s_send(zmesh__outbox_t *self, zmq_msg_t *msg, size_t count)
{
    if (zmq_msg_send(msg, self->xpub, 0) < 0) {
        zmq_msg_close(msg);
        self->unsent += count;
        return;
    }
    if (count > 1) {
        self->batches++;
        self->batched += count;
    }
}

// Makes the frame of the pending batch (`count` events) and sends it.
static void
s_flush(zmesh__outbox_t *self, size_t count)
{
    zmq_msg_t msg;
    if (count == 1) {
        // A batch of one is a plain frame, as if it had been sent at once.
        size_t size = zmesh__frame_size(self->topic_size, self->first_seq,
                                        self->timestamp_us, self->used);
        if (zmq_msg_init_size(&msg, size) != 0)
            goto failed;
        zmesh__frame_encode(self->topic, self->topic_size, self->id,
                            self->first_seq, self->timestamp_us, self->bytes,
                            self->used, zmq_msg_data(&msg), size);
        if (self->retained)
            zmesh__retain_add_msg(self->retained, self->topic, self->topic_size,
                                  self->first_seq, &msg);
        s_send(self, &msg, 1);
        return;
    }
    size_t head = zmesh__batch_head_size(self->topic_size, self->first_seq,
                                         self->timestamp_us, count);
    if (zmq_msg_init_size(&msg, head + self->used) != 0)
        goto failed;
    uint8_t *data = zmq_msg_data(&msg);
    zmesh__batch_head_encode(self->topic, self->topic_size, self->id,
                             self->first_seq, self->timestamp_us, 0, count,
                             data, head);
    memcpy(data + head, self->bytes, self->used);
    if (self->retained) {
        for (size_t i = 0; i < count; i++)
            self->offsets[i] += (uint32_t)head;
        zmesh__retain_add_batch(self->retained, self->topic, self->topic_size,
                                &msg, self->id, self->first_seq,
                                self->timestamp_us, self->offsets, count);
    }
    s_send(self, &msg, count);
    return;
failed:
    self->unsent += count;
    zmesh__log(ZMESH_LOG_ERROR,
               "no memory for a frame of %zu events of %s: subscribers will "
               "see them as a gap",
               count, self->topic);
}

// Sends the pending batch; `tell` (the control thread): then, if the send
// took in input waiting on the XPUB, wakes the application's loop. All of
// it before `count` says 0, after which the XPUB is the application's.
static void
s_flush_all(zmesh__outbox_t *self, bool tell)
{
    size_t count = s_count(self);
    if (count == 0)
        return;
    s_flush(self, count);
    self->used = 0;
    int events = 0;
    size_t size = sizeof events;
    if (tell && zmq_getsockopt(self->xpub, ZMQ_EVENTS, &events, &size) == 0 &&
        (events & ZMQ_POLLIN) && !atomic_exchange(&self->app_woken, true)) {
        uint64_t one = 1;
        ssize_t n = write(self->app_fd, &one, sizeof one);
        (void)n; // a full counter is readable already
    }
    atomic_store_explicit(&self->count, 0, memory_order_release);
}

void
zmesh__outbox_flush(zmesh__outbox_t *self)
{
    s_flush_all(self, false);
}

// A flush the application thread does in zmesh__outbox_add: the time it
// takes is the publisher's, not a pause between events, so the burst's
// clock starts again after it.
void
zmesh__outbox_sent(zmesh__outbox_t *self)
{
    // No clock to read when no burst could be batched anyway.
    if (self->max_events > 1 &&
        atomic_load_explicit(&self->room, memory_order_relaxed) > 0)
        self->last_us = zmesh__wall_clock_us();
}

static void
s_flush_restamp(zmesh__outbox_t *self)
{
    zmesh__outbox_flush(self);
    zmesh__outbox_sent(self);
}

void
zmesh__outbox_add(zmesh__outbox_t *self, const char *topic, size_t topic_size,
                  uint64_t seq, int64_t timestamp_us, const void *payload,
                  size_t size)
{
    assert(size > 0 && size <= S_EVENT_BYTES_MAX);
    // The room shrinks when a peer with a smaller limit joins: an event
    // that no longer fits starts a batch of its own, and a batch of one is
    // a plain frame.
    size_t room = atomic_load_explicit(&self->room, memory_order_relaxed);
    if (s_count(self) > 0 && (topic_size != self->topic_size ||
                              memcmp(topic, self->topic, topic_size) != 0 ||
                              self->used + size > room))
        s_flush_restamp(self);
    size_t count = s_count(self);
    if (count == 0) {
        memcpy(self->topic, topic, topic_size);
        self->topic[topic_size] = '\0';
        self->topic_size = topic_size;
        self->first_seq = seq;
        self->timestamp_us = timestamp_us;
        self->opened_ms = zmesh__clock_ms();
        // Seen by a control thread that is about to stop watching (it
        // looks at `opens` after clearing `watched`), or it is woken.
        atomic_fetch_add(&self->opens, 1);
        if (!atomic_load(&self->watched) &&
            !atomic_exchange(&self->watched, true)) {
            uint64_t one = 1;
            ssize_t n = write(self->fd, &one, sizeof one);
            (void)n; // a full counter is readable already
        }
    }
    assert(seq == self->first_seq + count);
    self->offsets[count++] = (uint32_t)self->used;
    memcpy(self->bytes + self->used, payload, size);
    self->used += size;
    atomic_store_explicit(&self->count, count, memory_order_relaxed);
    if (count >= self->max_events)
        s_flush_restamp(self);
}

void
zmesh__outbox_drain(zmesh__outbox_t *self)
{
    if (s_count(self) == 0)
        return; // only this thread opens batches
    pthread_mutex_lock(&self->lock);
    zmesh__outbox_flush(self);
    pthread_mutex_unlock(&self->lock);
}

int
zmesh__outbox_fd(const zmesh__outbox_t *self)
{
    return self->fd;
}

long
zmesh__outbox_expire(zmesh__outbox_t *self, int64_t now_ms, bool signalled)
{
    if (signalled) {
        uint64_t signals;
        ssize_t n = read(self->fd, &signals, sizeof signals);
        (void)n; // another reader cannot have taken it: it is ours
    }
    if (!atomic_load(&self->watched))
        return -1;
    long due = self->max_delay_ms;
    pthread_mutex_lock(&self->lock);
    if (s_count(self) > 0) {
        int64_t age = now_ms - self->opened_ms;
        if (age >= self->max_delay_ms)
            s_flush_all(self, true);
        else
            due = (long)(self->max_delay_ms - age);
    }
    bool pending = s_count(self) > 0;
    pthread_mutex_unlock(&self->lock);
    uint64_t opens = atomic_load(&self->opens);
    if (!pending && opens == self->opens_seen) {
        // Nothing opened since the last look: stop watching, unless a
        // batch was opened meanwhile by an application that saw us still
        // watching (and so did not wake us).
        atomic_store(&self->watched, false);
        if (atomic_load(&self->opens) == opens)
            return -1;
        atomic_store(&self->watched, true);
    }
    self->opens_seen = atomic_load(&self->opens);
    return due;
}

int
zmesh__outbox_app_fd(const zmesh__outbox_t *self)
{
    return self->app_fd;
}

void
zmesh__outbox_woken(zmesh__outbox_t *self)
{
    if (!atomic_load_explicit(&self->app_woken, memory_order_relaxed))
        return;
    // Cleared before the read: a wake the control thread gives after it
    // writes the fd again, and is not lost.
    atomic_store(&self->app_woken, false);
    uint64_t count;
    ssize_t n = read(self->app_fd, &count, sizeof count);
    (void)n;
}

void
zmesh__outbox_stats(zmesh__outbox_t *self, uint64_t *batches, uint64_t *batched,
                    uint64_t *unsent)
{
    pthread_mutex_lock(&self->lock);
    *batches = self->batches;
    *batched = self->batched;
    *unsent = self->unsent;
    pthread_mutex_unlock(&self->lock);
}
