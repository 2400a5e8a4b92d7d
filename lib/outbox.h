/*  outbox.h - a publisher's batch of events not sent yet. Consecutive
    events of one topic published in a burst go out as one batch frame
    (proto/wire.md#batch-frame): ZeroMQ's cost is per message, and at
    small sizes it, not the mesh, is what limits throughput. The
    application thread fills the batch (zmesh_agent_publish) and sends it
    when it is full, when the topic changes, when the burst ends and at
    its next call into the agent; the control thread sends a batch the
    application left behind once it is `max_delay_ms` old, so an event
    never waits on an application that went to do something else.

    Both threads send on the XPUB, so the outbox has a lock, and a
    rule keeps that safe: the control thread touches the XPUB only under
    the lock and only while a batch is pending, and the application
    thread uses the XPUB only under the lock or after zmesh__outbox_drain
    (when no batch is pending, and none can be until it publishes again).
    Talks to codec (the frame) and retain (kept for repairs). */
#ifndef ZMESH_OUTBOX_H_INCLUDED
#define ZMESH_OUTBOX_H_INCLUDED

#include "retain.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*  Defaults and limits of zmesh_agent_set_batching. */
#define ZMESH__OUTBOX_EVENTS 64       /* events in one batch, default */
#define ZMESH__OUTBOX_EVENTS_MAX 1024 /* = ZMESH__BATCH_MAX */
#define ZMESH__OUTBOX_DELAY_MS 1      /* default max_delay_ms */
#define ZMESH__OUTBOX_DELAY_MAX_MS 1000
#define ZMESH__OUTBOX_BYTES (16 * 1024) /* payload bytes in one batch */
/*  An event published more than this after the publish before it
    returned is not in a burst: it is sent at once, on its own. Measured
    from the return, not the start, so that a machine on which sending
    one event takes longer than this still batches a burst. */
#define ZMESH__OUTBOX_BURST_US 5
/*  The least maximum message size an agent may set: a reader that says
    it reads smaller batch frames is taken to read none. */
#define ZMESH__OUTBOX_READER_MIN 4096

typedef struct zmesh__outbox zmesh__outbox_t;

/*  Creates an empty outbox that sends on `xpub` (a libzmq socket handle)
    as publisher `id`, keeping what it sends in `retained` (NULL: keeps
    nothing). Errors: ZMESH_ENOMEM, ZMESH_ESYS (no eventfd). */
int zmesh__outbox_new(zmesh__outbox_t **outbox, void *xpub,
                      zmesh__retain_t *retained, const uint8_t id[16]);

/*  Frees it; a pending batch is dropped (call zmesh__outbox_drain first).
    Accepts NULL and a pointer to NULL. Neither thread may be using it. */
void zmesh__outbox_destroy(zmesh__outbox_t **outbox);

/*  Batches of at most `max_events` events (0 or 1: no batching), sent by
    the control thread once `max_delay_ms` old. Application thread, no
    batch pending. */
void zmesh__outbox_configure(zmesh__outbox_t *self, size_t max_events,
                             int max_delay_ms);

/*  Whether an event of `size` payload bytes, published at `now_us` (the
    wall clock, read anyway for its timestamp), goes into a batch: batching
    is on, every reader reads batches, the event is small, and it comes in
    a burst (within ZMESH__OUTBOX_BURST_US of the return of the publish
    before it). Updates the burst's clock. Application thread. */
bool zmesh__outbox_wants(zmesh__outbox_t *self, size_t size, int64_t now_us);

/*  Tells the burst's clock that a publish which sent a frame (an event on
    its own) returns now. Application thread. */
void zmesh__outbox_sent(zmesh__outbox_t *self);

/*  The largest batch frame every joined peer reads (the least of their
    HELLOs' `batch`, proto/wire.md#batch-frame; UINT64_MAX with none
    joined): below 4096, and so while a peer that predates batch frames
    has joined, every event goes in a frame of its own, since any peer
    could be a subscriber; otherwise batches stay within it. `tails`:
    some peer is joined and every joined peer reads tail frames
    (proto/wire.md#tail-frame), so they are worth sending. Control
    thread, at each join and leave. */
void zmesh__outbox_set_readers(zmesh__outbox_t *self, uint64_t frame_max,
                               bool tails);

/*  What zmesh__outbox_set_readers last said of tail frames (false before
    it was ever called). Any thread. */
bool zmesh__outbox_tails_read(const zmesh__outbox_t *self);

void zmesh__outbox_lock(zmesh__outbox_t *self);
void zmesh__outbox_unlock(zmesh__outbox_t *self);

/*  Events in the pending batch (0: none). Application thread, or under
    the lock. */
size_t zmesh__outbox_pending(const zmesh__outbox_t *self);

/*  Adds an event (`payload`, already checked) with sequence `seq` of
    `topic` (valid, `topic_size` bytes) to the batch, under the lock. A
    pending batch of another topic, or one without room, is sent first;
    a batch that is then full is sent at once. `seq` must follow the
    batch's last (the caller's sequence). A failure to send is counted
    (zmesh__outbox_unsent), never returned: the events are then missing
    for subscribers, who see a gap. */
void zmesh__outbox_add(zmesh__outbox_t *self, const char *topic,
                       size_t topic_size, uint64_t seq, int64_t timestamp_us,
                       const void *payload, size_t size);

/*  Sends the pending batch, if any, under the lock. */
void zmesh__outbox_flush(zmesh__outbox_t *self);

/*  zmesh__outbox_flush with the lock taken, when a batch is pending: what
    the application thread calls before it uses the XPUB without the lock
    (and at every call into the agent). Costs nothing when none is. */
void zmesh__outbox_drain(zmesh__outbox_t *self);

/*  For the control thread's poll: a descriptor that becomes readable when
    the application opens a batch while the control thread is not
    watching, and the wait until zmesh__outbox_expire is due next (-1: not
    watching, nothing to wait for). */
int zmesh__outbox_fd(const zmesh__outbox_t *self);

/*  Control thread, after each wake: takes the fd's signal (`signalled`:
    the fd was readable), sends a batch that has been pending for
    max_delay_ms, and says how long until it is due again (-1: no batch
    was opened since it last looked, so it stops watching until the fd
    says otherwise). `now_ms`: monotonic. */
long zmesh__outbox_expire(zmesh__outbox_t *self, int64_t now_ms,
                          bool signalled);

/*  A descriptor for the application's own loop (zmesh_agent_fd's set):
    readable after the control thread sent a batch and found input
    waiting on the XPUB (a subscriber's sync token). ZeroMQ's descriptor
    tells of new input only once, to whichever thread next uses the
    socket, so without this an application waiting on the agent's fd
    would not hear of it. zmesh__outbox_woken quiets it; application
    thread, cheap when it is quiet. */
int zmesh__outbox_app_fd(const zmesh__outbox_t *self);
void zmesh__outbox_woken(zmesh__outbox_t *self);

/*  Counters: batch frames sent, events sent in them, and events lost
    because their batch could not be made (no memory) or sent. */
void zmesh__outbox_stats(zmesh__outbox_t *self, uint64_t *batches,
                         uint64_t *batched, uint64_t *unsent);

#endif
