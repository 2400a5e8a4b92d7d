/*  agent_confirms.c - the publisher's side of publisher confirms
    (proto/relay.md#publisher-confirms): the events kept until a relay
    confirms them (confirms.h), the relays' confirms taken as they come
    (on the data plane, as direct messages or as answers to $relay.store)
    and believed only from peers that are relays, and the outcomes queued
    for the application. Events a relay has not confirmed in time are
    sent to one straight; the timers of durable consumers run on the same
    pass. For a relay, zmesh__agent_reaches tells whether its confirms on
    the data plane reach a publisher yet. */
#include "agent_private.h"
#include "clock.h"
#include "confirms.h"
#include "control.h"
#include "durable.h"
#include "log.h"
#include "mpack.h"
#include "zmesh.h"

#include <czmq.h>
#include <inttypes.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*  How soon zmesh__agent_reaches asks the control thread again: at first
    soon, since the answer often changes within a round trip or two, then
    less and less often. */
#define S_REACH_FIRST_MS 50
#define S_REACH_RETRY_MS 1000
#define S_REACH_MAX 16384  /* peers zmesh__agent_reaches remembers */
#define S_STORE_BATCH 1000 /* frames per $relay.store */

int
zmesh__agent_confirm_keep(zmesh_agent_t *self, const char *topic, uint64_t seq,
                          zmq_msg_t *frame)
{
    if (!self->confirms && zmesh__confirms_new(&self->confirms) != 0)
        return ZMESH_ENOMEM;
    return zmesh__confirms_add(self->confirms, topic, seq, frame,
                               zmesh__clock_ms(), self->confirm_timeout_ms);
}

void
zmesh__agent_outcome_release(zmesh_agent_t *self)
{
    free(self->outcome.topic);
    free(self->outcome.reason);
    self->outcome.topic = self->outcome.reason = NULL;
}

void
zmesh__agent_outcomes_clear(zmesh_agent_t *self)
{
    zmesh__agent_outcome_release(self);
    for (; self->outcomes_count > 0; self->outcomes_count--) {
        zmesh__agent_outcome_t *o = &self->outcomes[self->outcomes_head];
        free(o->topic);
        free(o->reason);
        self->outcomes_head = (self->outcomes_head + 1) % self->outcomes_cap;
    }
    free(self->outcomes);
    self->outcomes = NULL;
    self->outcomes_cap = self->outcomes_head = 0;
}

// Out of memory for an outcome: the application will not hear of it, so
// at least the log says which.
static void
s_outcome_lost(zmesh_agent_t *self, const char *topic, uint64_t seq)
{
    self->peer_events_dropped++;
    zmesh__log(ZMESH_LOG_ERROR,
               "out of memory: the confirm of %s #%" PRIu64
               " cannot be reported",
               topic, seq);
}

// One event's outcome, queued as a ZMESH_EVENT_CONFIRM. The relay that
// confirmed is named when there is one (s_confirm_from sets it).
static void
s_confirm_report(void *arg, const char *topic, uint64_t seq, int status,
                 const char *reason)
{
    zmesh_agent_t *self = arg;
    if (status == 0)
        self->confirms_ok++;
    else
        self->confirms_failed++;
    if (self->outcomes_count == self->outcomes_cap) {
        // Grows by doubling; the ring's items move to the front.
        size_t cap = self->outcomes_cap ? 2 * self->outcomes_cap : 256;
        zmesh__agent_outcome_t *grown = malloc(cap * sizeof *grown);
        if (!grown) {
            s_outcome_lost(self, topic, seq);
            return;
        }
        for (size_t i = 0; i < self->outcomes_count; i++)
            grown[i] =
                self->outcomes[(self->outcomes_head + i) % self->outcomes_cap];
        free(self->outcomes);
        self->outcomes = grown;
        self->outcomes_cap = cap;
        self->outcomes_head = 0;
    }
    zmesh__agent_outcome_t *o =
        &self->outcomes[(self->outcomes_head + self->outcomes_count) %
                        self->outcomes_cap];
    o->topic = strdup(topic);
    o->reason = status != 0 ? strdup(reason) : NULL;
    if (!o->topic || (status != 0 && !o->reason)) {
        free(o->topic);
        free(o->reason);
        s_outcome_lost(self, topic, seq);
        return;
    }
    o->seq = seq;
    o->status = status;
    snprintf(o->relay, sizeof o->relay, "%s",
             status == 0 && self->confirm_relay ? self->confirm_relay : "");
    self->outcomes_count++;
}

// Hands the next confirm outcome out as self->event.
bool
zmesh__agent_outcome_next(zmesh_agent_t *self)
{
    if (self->outcomes_count == 0)
        return false;
    self->outcome = self->outcomes[self->outcomes_head];
    self->outcomes_head = (self->outcomes_head + 1) % self->outcomes_cap;
    self->outcomes_count--;
    zmesh__agent_outcome_t *o = &self->outcome;
    zmesh_event_t *event = &self->event;
    memset(event, 0, sizeof *event);
    event->type = ZMESH_EVENT_CONFIRM;
    event->topic = o->topic;
    event->payload = "";
    event->peer_id = o->relay;
    event->peer_name = *o->relay ? zmesh__agent_peer_name(self, o->relay) : "";
    event->reason = o->reason ? o->reason : "";
    event->group = "";
    event->sequence = o->seq;
    event->status = o->status;
    return true;
}

/*  Whether a peer announced itself a relay (header relay = 1), as the
    control thread last said; a "no" is asked again after a second. */
typedef struct {
    bool yes;
    int64_t retry_ms;
} s_relay_mark_t;

// Only a relay may confirm (proto/relay.md#relay-confirm): confirms from
// any other peer are ignored, or one could forge them.
static bool
s_is_relay(zmesh_agent_t *self, const char *id)
{
    s_relay_mark_t *mark = zhashx_lookup(self->relays, id);
    if (mark && (mark->yes || zmesh__clock_ms() < mark->retry_ms))
        return mark->yes;
    zmesh_peer_list_t *peers = NULL;
    if (zmesh_agent_peers(self, &peers) != 0)
        return false;
    bool yes = false;
    for (size_t i = 0; i < zmesh_peer_list_size(peers); i++) {
        if (strcmp(zmesh_peer_id(peers, i), id) != 0)
            continue;
        for (size_t j = 0; j < zmesh_peer_headers_size(peers, i); j++)
            if (streq(zmesh_peer_header_key(peers, i, j), "relay") &&
                streq(zmesh_peer_header_value(peers, i, j), "1"))
                yes = true;
    }
    zmesh_peer_list_destroy(&peers);
    if (!mark) {
        mark = calloc(1, sizeof *mark);
        if (!mark || zhashx_insert(self->relays, id, mark) != 0) {
            free(mark);
            return yes;
        }
    }
    mark->yes = yes;
    mark->retry_ms = zmesh__clock_ms() + S_REACH_RETRY_MS;
    return yes;
}

// A {"ok": [[topic, first, last]...], "failed": [[topic, first, last,
// reason]...]} from relay `id`: a $relay.confirm, or a $relay.store answer.
static void
s_confirm_from(zmesh_agent_t *self, const char *id, const void *payload,
               size_t size)
{
    if (!self->confirms)
        return;
    if (!s_is_relay(self, id)) {
        self->frames_rejected++;
        zmesh__log_limited(&self->confirm_log, ZMESH__AGENT_LOG_INTERVAL_MS,
                           "confirms from %.8s ignored: not a relay", id);
        return;
    }
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    if (msgpack_unpack_next(&u, payload, size, &off) ==
            MSGPACK_UNPACK_SUCCESS &&
        u.data.type == MSGPACK_OBJECT_MAP) {
        self->relay_seen = true;
        self->confirm_relay = id;
        for (uint32_t k = 0; k < u.data.via.map.size; k++) {
            const msgpack_object *key = &u.data.via.map.ptr[k].key;
            const msgpack_object *list = &u.data.via.map.ptr[k].val;
            bool ok = zmesh__mp_key_is(key, "ok");
            bool failed = zmesh__mp_key_is(key, "failed");
            if ((!ok && !failed) || list->type != MSGPACK_OBJECT_ARRAY)
                continue;
            for (uint32_t i = 0; i < list->via.array.size; i++) {
                const msgpack_object *t = &list->via.array.ptr[i];
                if (t->type != MSGPACK_OBJECT_ARRAY || t->via.array.size < 3 ||
                    t->via.array.ptr[0].type != MSGPACK_OBJECT_STR ||
                    t->via.array.ptr[0].via.str.size > ZMESH_TOPIC_MAX ||
                    t->via.array.ptr[1].type !=
                        MSGPACK_OBJECT_POSITIVE_INTEGER ||
                    t->via.array.ptr[2].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
                    continue;
                char topic[ZMESH_TOPIC_MAX + 1], reason[128] = "";
                snprintf(topic, sizeof topic, "%.*s",
                         (int)t->via.array.ptr[0].via.str.size,
                         t->via.array.ptr[0].via.str.ptr);
                if (failed) {
                    const msgpack_object *r =
                        t->via.array.size > 3 ? &t->via.array.ptr[3] : NULL;
                    snprintf(reason, sizeof reason,
                             "the relay could not "
                             "store it: %.*s",
                             r && r->type == MSGPACK_OBJECT_STR
                                 ? (int)r->via.str.size
                                 : 7,
                             r && r->type == MSGPACK_OBJECT_STR ? r->via.str.ptr
                                                                : "unknown");
                }
                zmesh__confirms_settle(
                    self->confirms, topic, t->via.array.ptr[1].via.u64,
                    t->via.array.ptr[2].via.u64, ok ? 0 : ZMESH_EFULL, reason,
                    s_confirm_report, self);
            }
        }
        self->confirm_relay = NULL;
    }
    msgpack_unpacked_destroy(&u);
}

// Takes a relay's confirms that came on the data plane (self->event, a
// message or a gap on our confirm topic); true when it was one. A lost
// confirm message needs nothing: its events are sent again and confirmed
// then. A message held behind a gap (has_stashed) is taken too.
bool
zmesh__agent_confirm_frame(zmesh_agent_t *self)
{
    zmesh_event_t *event = &self->event;
    if (!self->confirm_topic[0] ||
        (event->type != ZMESH_EVENT_MESSAGE &&
         event->type != ZMESH_EVENT_GAP) ||
        strcmp(event->topic, self->confirm_topic) != 0)
        return false;
    if (event->type == ZMESH_EVENT_GAP) {
        if (!self->has_stashed)
            return true;
        self->has_stashed = false;
        self->event = self->stashed;
        if (strcmp(event->topic, self->confirm_topic) != 0)
            return false; // cannot be: the message after a gap is its own
    }
    s_confirm_from(self, event->peer_id, event->payload, event->payload_size);
    return true;
}

/*  What zmesh__agent_reaches knows of a peer: of the last few topics it
    was asked about (a relay's confirms, and requests and replies, are
    each one topic per peer). */
#define S_REACH_TOPICS 4
typedef struct {
    struct {
        char topic[ZMESH_TOPIC_MAX + 1]; /* "": a free slot */
        uint64_t generation; /* the peer's, once it wanted the topic; 0
                                before */
        int64_t retry_ms;    /* when to ask the control thread again */
        int backoff_ms;      /* the wait before the next retry: doubles
                                from S_REACH_FIRST_MS to S_REACH_RETRY_MS */
    } of[S_REACH_TOPICS];
    unsigned next; /* the slot taken next by a new topic */
} s_reach_t;

bool
zmesh__agent_reaches(zmesh_agent_t *self, const char *peer_id,
                     const char *topic)
{
    if (!self || !self->started || !peer_id || !topic ||
        strlen(topic) > ZMESH_TOPIC_MAX)
        return false;
    const uint64_t *ready = zhashx_lookup(self->ready, peer_id);
    if (!ready)
        return false; // its subscriptions are not (or no more) in effect
    s_reach_t *r = zhashx_lookup(self->reach, peer_id);
    unsigned slot = S_REACH_TOPICS;
    for (unsigned i = 0; r && i < S_REACH_TOPICS; i++)
        if (strcmp(r->of[i].topic, topic) == 0)
            slot = i;
    if (slot < S_REACH_TOPICS) {
        if (r->of[slot].generation > 0)
            return *ready >= r->of[slot].generation;
        if (zmesh__clock_ms() < r->of[slot].retry_ms)
            return false;
    }
    // Past S_REACH_MAX peers, the others are answered no (their confirms
    // go as direct messages) rather than asked about each time: a query
    // is a round trip to the control thread.
    if (!r && zhashx_size(self->reach) >= S_REACH_MAX)
        return false;
    void *reply = NULL;
    if (zmesh__agent_query_pointer(self, "WANT", topic, &reply) != 0)
        return false;
    zmesh__want_t *want = reply;
    uint64_t generation = 0;
    uint8_t id[ZMESH__ID_SIZE];
    if (zmesh__id_from_hex(peer_id, id) == 0)
        for (size_t i = 0; i < want->count; i++)
            if (memcmp(want->peers[i].id, id, ZMESH__ID_SIZE) == 0)
                generation = want->peers[i].generation;
    zmesh__want_destroy(&want);
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r || zhashx_insert(self->reach, peer_id, r) != 0) {
            free(r);
            return false;
        }
    }
    if (slot == S_REACH_TOPICS) {
        slot = r->next;
        r->next = (r->next + 1) % S_REACH_TOPICS;
        snprintf(r->of[slot].topic, sizeof r->of[slot].topic, "%s", topic);
        r->of[slot].backoff_ms = S_REACH_FIRST_MS;
    }
    // A peer whose subscription is on its way (a responder connects to a
    // requester at its first request) is asked about again soon; one that
    // does not want the topic, less and less often.
    r->of[slot].generation = generation;
    r->of[slot].retry_ms = zmesh__clock_ms() + r->of[slot].backoff_ms;
    r->of[slot].backoff_ms = r->of[slot].backoff_ms * 2 > S_REACH_RETRY_MS
                                 ? S_REACH_RETRY_MS
                                 : r->of[slot].backoff_ms * 2;
    return generation > 0 && *ready >= generation;
}

// Events still unconfirmed after a second go straight to a relay.
static int
s_confirm_resend(void *arg, const void *const *frames, const size_t *sizes,
                 size_t count)
{
    zmesh_agent_t *self = arg;
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    zmesh__mp_pack_str(&pk, "frames");
    msgpack_pack_array(&pk, count);
    for (size_t i = 0; i < count; i++) {
        msgpack_pack_bin(&pk, sizes[i]);
        msgpack_pack_bin_body(&pk, frames[i], sizes[i]);
    }
    uint64_t req = 0;
    int rc = zmesh_agent_request(self, NULL, "$relay.store", buf.data, buf.size,
                                 ZMESH__DURABLE_REQUEST_MS, &req);
    msgpack_sbuffer_destroy(&buf);
    if (rc != 0)
        return rc;
    self->relay_seen = true;
    self->confirms_resent += count;
    self->store_reqs[self->store_reqs_next++ % ZMESH__AGENT_STORE_REQUESTS] =
        req;
    return 0;
}

// Timers of confirms and durable consumers: run on the service pass and
// before the agent sleeps.
void
zmesh__agent_timers_run(zmesh_agent_t *self)
{
    if (!self->durable &&
        (!self->confirms || zmesh__confirms_size(self->confirms) == 0))
        return;
    int64_t now = zmesh__clock_ms();
    if (self->confirms && zmesh__confirms_size(self->confirms) > 0) {
        int64_t due = zmesh__confirms_deadline(self->confirms);
        if (due > 0 && due <= now) {
            size_t room = self->max_msg_size > 8192 ? self->max_msg_size - 4096
                                                    : self->max_msg_size / 2;
            zmesh__confirms_service(
                self->confirms, now,
                self->relay_seen ? "not confirmed by a relay in time"
                                 : "no relay in the mesh stores it",
                S_STORE_BATCH, room, s_confirm_report, s_confirm_resend, self);
        }
    }
    if (self->durable) {
        int64_t due = zmesh__durable_deadline(self->durable);
        if (due > 0 && due <= now)
            zmesh__durable_service(self->durable, now);
    }
}

// Peer events that are the library's own business: answers to durable
// consumers' and confirms' requests, and confirms. True when taken.
bool
zmesh__agent_internal_event(zmesh_agent_t *self)
{
    zmesh_event_t *event = &self->event;
    if (event->type == ZMESH_EVENT_REPLY && event->request_id) {
        for (size_t i = 0; i < ZMESH__AGENT_STORE_REQUESTS; i++)
            if (self->store_reqs[i] == event->request_id) {
                self->store_reqs[i] = 0;
                if (event->status == 0)
                    s_confirm_from(self, event->peer_id, event->payload,
                                   event->payload_size);
                return true;
            }
        return zmesh__durable_reply(
            self->durable, event->request_id, event->peer_id, event->status,
            event->payload, event->payload_size, zmesh__clock_ms());
    }
    if (event->type == ZMESH_EVENT_DIRECT &&
        strcmp(event->topic, ZMESH__CONFIRM_TOPIC) == 0) {
        s_confirm_from(self, event->peer_id, event->payload,
                       event->payload_size);
        return true;
    }
    if (event->type == ZMESH_EVENT_PEER_LEFT)
        zmesh__durable_peer_left(self->durable, event->peer_id);
    return false;
}
