/*  durable.h - the consuming side of durable consumers
    (proto/relay.md#durable-consumers, #switching-to-live): per consumer,
    attach to a relay, read what was missed with credit, hold live events
    meanwhile, switch to live with no gap and no duplicate, keep what the
    application has not acknowledged (redelivering it after ack_wait,
    dropping it after max_deliver) and tell the relay what was
    acknowledged. Used from the application thread only; it sends through
    the agent's callbacks and hands events to the agent, which gives them
    to the application. Talks to codec (frames) and topic (matching). */
#ifndef ZMESH_DURABLE_H_INCLUDED
#define ZMESH_DURABLE_H_INCLUDED

#include "codec.h"
#include "zmesh.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZMESH__DURABLE_SUBS_MAX 16
#define ZMESH__DURABLE_HELD_MAX 10000 /* live events held while catching up */
#define ZMESH__DURABLE_HELD_BYTES (64 * 1024 * 1024)
#define ZMESH__DURABLE_REQUEST_MS 5000   /* wait for a relay's answer */
#define ZMESH__DURABLE_RETRY_MS 1000     /* ask again: no relay, no answer */
#define ZMESH__DURABLE_REFUSED_MS 5000   /* ask again: the relay refused */
#define ZMESH__DURABLE_ACK_DELAY_MS 50   /* acknowledgements are batched */
#define ZMESH__DURABLE_FETCH_MAX 100     /* records per $relay.next */
#define ZMESH__DURABLE_STREAMS_MAX 65536 /* streams whose position is kept */

typedef struct zmesh__durable zmesh__durable_t;

/*  How the module talks to relays. request: a DIRECT request to `peer`
    (32 hex digits) or, with peer NULL, to any agent serving the topic;
    sets *req and returns 0, or a ZMESH_E* code. send: a message (req 0).
    name (may be NULL): a publisher's name (`id` is 32 hex digits) as a
    relay told it with stored events, for events whose publisher is not
    a peer any more; called before those events are handed out. */
typedef struct {
    int (*request)(void *arg, const char *peer, const char *topic,
                   const void *payload, size_t size, int timeout_ms,
                   uint64_t *req);
    int (*send)(void *arg, const char *peer, const char *topic,
                const void *payload, size_t size);
    void (*name)(void *arg, const char *id, const char *name);
} zmesh__durable_io_t;

/*  An event for the application, valid until the next call of
    zmesh__durable_next or zmesh__durable_destroy. */
typedef struct {
    zmesh_event_type_t type; /* MESSAGE, GAP or LOST */
    const char *consumer;
    zmesh__frame_t frame; /* MESSAGE; GAP: topic, publisher, timestamp */
    uint64_t rseq;        /* MESSAGE from the relay; 0 when live */
    unsigned deliveries;  /* MESSAGE */
    uint64_t first, last; /* GAP: publisher sequences; LOST: relay's */
    const char *reason;   /* GAP, LOST */
} zmesh__durable_event_t;

typedef struct {
    uint64_t delivered;    /* messages handed out, redeliveries included */
    uint64_t redelivered;  /* ... again after ack_wait */
    uint64_t duplicates;   /* dropped: handed out already */
    uint64_t terminated;   /* dropped after max_deliver */
    uint64_t refused;      /* $relay.consume or $relay.next errors */
    uint64_t held_dropped; /* live events dropped from a full hold (the
                              relay has them) */
} zmesh__durable_stats_t;

int zmesh__durable_new(zmesh__durable_t **durable,
                       const zmesh__durable_io_t *io, void *arg);
/*  Frees everything; call zmesh__durable_flush first to send what was
    acknowledged. Accepts NULL. */
void zmesh__durable_destroy(zmesh__durable_t **durable);

/*  Adds consumer `name` for `pattern` (both checked by the caller) with
    `options` (NULL: defaults). Errors: ZMESH_EINVAL (bad options, or the
    name is taken), ZMESH_ETOOBIG (ZMESH__DURABLE_SUBS_MAX), ZMESH_ENOMEM. */
int zmesh__durable_add(zmesh__durable_t *self, const char *name,
                       const char *pattern,
                       const zmesh_durable_options_t *options);

size_t zmesh__durable_count(const zmesh__durable_t *self);

/*  A live message (or gap) the agent delivered in order, whose topic a
    durable consumer's pattern matches. Returns true when the application
    gets it now (then *consumer is set and the module keeps a copy until
    it is acknowledged); false when it was held or dropped. Returns false
    with *consumer NULL when no consumer's pattern matches: the agent
    hands it out as any event. */
bool zmesh__durable_live(zmesh__durable_t *self, const void *data, size_t size,
                         const zmesh__frame_t *frame, int64_t now_ms,
                         const char **consumer);
bool zmesh__durable_live_gap(zmesh__durable_t *self, const char *topic,
                             const uint8_t publisher[ZMESH__ID_SIZE],
                             uint64_t first, uint64_t last, int64_t now_ms,
                             const char **consumer);

/*  A REPLY for request `req`: true when it was one of the module's
    (then it was handled). `status` as zmesh_event_status. */
bool zmesh__durable_reply(zmesh__durable_t *self, uint64_t req,
                          const char *peer_id, int status, const void *payload,
                          size_t size, int64_t now_ms);

/*  Peer `peer_id` left: if it was a consumer's relay, attach again. */
void zmesh__durable_peer_left(zmesh__durable_t *self, const char *peer_id);

/*  Does what is due: requests, acknowledgements, redeliveries. */
void zmesh__durable_service(zmesh__durable_t *self, int64_t now_ms);

/*  When zmesh__durable_service next has something to do, 0 for never. */
int64_t zmesh__durable_deadline(const zmesh__durable_t *self);

/*  Whether zmesh__durable_next has an event. */
bool zmesh__durable_ready(const zmesh__durable_t *self);

/*  The next event from the relay, the hold or a redelivery, if any. */
bool zmesh__durable_next(zmesh__durable_t *self, int64_t now_ms,
                         zmesh__durable_event_t *event);

/*  Acknowledges message (publisher, topic, seq) of `consumer` (rseq 0 for
    a live one). Errors: ZMESH_EINVAL (no such consumer), ZMESH_ENOTFOUND
    (not waiting for an acknowledgement). */
int zmesh__durable_ack(zmesh__durable_t *self, const char *consumer,
                       const uint8_t publisher[ZMESH__ID_SIZE],
                       const char *topic, uint64_t seq, uint64_t rseq,
                       int64_t now_ms);

/*  Sends every pending acknowledgement now (to relays attached). */
void zmesh__durable_flush(zmesh__durable_t *self, int64_t now_ms);

void zmesh__durable_stats(const zmesh__durable_t *self,
                          zmesh__durable_stats_t *stats);

#endif
