/*  peer.h - what one agent knows of one remote agent: its identity and
    endpoints from HELLO, the patterns it publishes and wants, liveness,
    and the DEALER this agent talks to it through. Owned and used only by
    the control thread (control.c). Also builds the public peer snapshot
    (zmesh_peer_list_t). */
#ifndef ZMESH_PEER_H_INCLUDED
#define ZMESH_PEER_H_INCLUDED

#include "codec.h"
#include "socket.h"

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum {
    ZMESH__PEER_CONNECTING = 0, /* we sent HELLO, have not had theirs */
    ZMESH__PEER_JOINED = 1      /* its HELLO arrived: a full peer */
} zmesh__peer_state_t;

typedef struct zmesh__peer zmesh__peer_t;

/*  Creates a peer with a known id and control endpoint, found through
    `origin` (a static string: "beacon", "seed", "gossip", "hello"), and
    connects a DEALER to the endpoint with routing id 0x01 + `self_id`.
    NULL on failure (logged). */
zmesh__peer_t *zmesh__peer_new(const uint8_t id[ZMESH__ID_SIZE],
                               const char *endpoint, const char *origin,
                               const uint8_t self_id[ZMESH__ID_SIZE],
                               const zmesh__socket_opts_t *opts,
                               int64_t now_ms);
void zmesh__peer_destroy(zmesh__peer_t **peer);

const uint8_t *zmesh__peer_id(const zmesh__peer_t *self);
const char *zmesh__peer_id_hex(const zmesh__peer_t *self);
const char *zmesh__peer_name(const zmesh__peer_t *self);
const char *zmesh__peer_endpoint(const zmesh__peer_t *self);
const char *zmesh__peer_data_endpoint(const zmesh__peer_t *self);
const char *zmesh__peer_origin(const zmesh__peer_t *self);
zmesh__peer_state_t zmesh__peer_state(const zmesh__peer_t *self);
uint64_t zmesh__peer_subs_generation(const zmesh__peer_t *self);

/*  Takes the HELLO's identity, endpoints, patterns and headers (the
    strings move from `hello` to the peer; `hello` is left without them)
    and marks the peer joined. */
void zmesh__peer_apply_hello(zmesh__peer_t *self, zmesh__msg_t *hello);

/*  Replaces the patterns with an ADVERTISE's, unless its generation of
    subscriptions is older than what the peer has. Strings move as above. */
void zmesh__peer_apply_advertise(zmesh__peer_t *self, zmesh__msg_t *msg);

/*  Liveness bookkeeping. */
void zmesh__peer_heard(zmesh__peer_t *self, int64_t now_ms);
int64_t zmesh__peer_last_heard(const zmesh__peer_t *self);
int64_t zmesh__peer_created(const zmesh__peer_t *self);
int64_t zmesh__peer_last_ping(const zmesh__peer_t *self);
void zmesh__peer_pinged(zmesh__peer_t *self, int64_t now_ms);

/*  A LEAVING beacon (UDP) can overtake the peer's last control messages
    (TCP): the peer is removed at `when_ms` rather than at once, unless
    its BYE comes first. 0: not leaving. */
void zmesh__peer_set_leaving(zmesh__peer_t *self, int64_t when_ms);
int64_t zmesh__peer_leaving(const zmesh__peer_t *self);

/*  True when the peer answers requests on `topic` (zmesh_agent_serve). */
bool zmesh__peer_serves_topic(const zmesh__peer_t *self, const char *topic);
size_t zmesh__peer_serves_size(const zmesh__peer_t *self);
const char *zmesh__peer_serve_pattern(const zmesh__peer_t *self, size_t i);

/*  True when one of the peer's wanted patterns matches `topic`. */
bool zmesh__peer_wants_topic(const zmesh__peer_t *self, const char *topic);

/*  Queue groups (proto/wire.md#deliver): the group name under which the
    peer takes `topic` (restricted to `group` when not NULL), or NULL. */
const char *zmesh__peer_group_for(const zmesh__peer_t *self, const char *topic,
                                  const char *group);
size_t zmesh__peer_groups_size(const zmesh__peer_t *self);
/*  The patterns the peer wants with back-pressure (proto/wire.md#credit). */
size_t zmesh__peer_bp_size(const zmesh__peer_t *self);
const char *zmesh__peer_bp_pattern(const zmesh__peer_t *self, size_t i);
const char *zmesh__peer_group_pattern(const zmesh__peer_t *self, size_t i);
const char *zmesh__peer_group_name(const zmesh__peer_t *self, size_t i);

/*  True when one of the peer's published patterns intersects one of
    `patterns`: this agent should connect its SUB to the peer. */
bool zmesh__peer_publishes_any(const zmesh__peer_t *self, char *const *patterns,
                               size_t count);

/*  The largest batch frame (proto/wire.md#batch-frame) the peer said in
    the HELLO it joined with that it reads, 0 for none: set by the control
    thread then, so that it stays what the outbox was told while the peer
    is joined. */
uint64_t zmesh__peer_batch(const zmesh__peer_t *self);
void zmesh__peer_set_batch(zmesh__peer_t *self, uint64_t batch);

/*  Whether that HELLO said the peer reads tail frames
    (proto/wire.md#tail-frame); set likewise. */
bool zmesh__peer_reads_tails(const zmesh__peer_t *self);
void zmesh__peer_set_reads_tails(zmesh__peer_t *self, bool reads);

/*  Whether this agent's SUB is connected to the peer's data endpoint. */
bool zmesh__peer_data_connected(const zmesh__peer_t *self);
void zmesh__peer_set_data_connected(zmesh__peer_t *self, bool connected);

/*  Encodes `msg` and sends it on the peer's DEALER without blocking (a
    peer whose queue is full loses the message, and liveness deals with a
    peer that stays that way). 0, or the codec's or ZMESH_EAGAIN. */
int zmesh__peer_send(zmesh__peer_t *self, const zmesh__msg_t *msg);

/*  The same on any DEALER, such as a seed probe that is no peer yet. */
int zmesh__peer_send_on(zsock_t *dealer, const zmesh__msg_t *msg);

/*  Builds the public snapshot of `count` peers (JOINED ones only). NULL on
    out of memory. */
zmesh_peer_list_t *zmesh__peer_list_new(zmesh__peer_t *const *peers,
                                        size_t count, int64_t now_ms);

#endif
