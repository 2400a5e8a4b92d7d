/*  agent_direct.c - point-to-point traffic of an agent: direct messages,
    requests and their replies, both ways. Direct messages, and requests
    and replies until the data plane reaches their peer, go through the
    control thread, which owns the connection to each peer; what peers
    send comes back on the notify pipe and waits for the application with
    the other peer events. Once a responder's subscription to requests
    for it is in effect at the requester (and the requester's to replies
    at the responder), requests and replies are events on the data plane
    instead: no thread but the two applications' on the way, which halves
    a round trip (proto/wire.md#requests-on-the-data-plane). Every
    request ends exactly once: with its reply, at its deadline, or when
    its peer leaves (requests.h). */
#include "agent_internal.h"
#include "agent_private.h"
#include "clock.h"
#include "codec.h"
#include "control.h"
#include "requests.h"
#include "streams.h"
#include "topic.h"
#include "zmesh.h"

#include <czmq.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

// Whether `peer` (an id or a name) is one that left: then a failure to
// reach it is ZMESH_EGONE rather than ZMESH_ENOTFOUND.
static bool
s_departed(zmesh_agent_t *self, const char *peer)
{
    for (const char *id = zlistx_first(self->departed); id;
         id = zlistx_next(self->departed))
        if (streq(id, peer) || streq(zmesh__agent_peer_name(self, id), peer))
            return true;
    return false;
}

// The frames of a DIRECT or DIRECTNW command (control.h).
static zmsg_t *
s_direct_args(const zmesh__direct_t *how, const char *peer, const char *topic,
              const void *payload, size_t size)
{
    zmsg_t *args = zmsg_new();
    if (!args || zmsg_addmem(args, how, sizeof *how) != 0 ||
        zmsg_addstr(args, peer ? peer : "") != 0 ||
        zmsg_addstr(args, topic) != 0 || zmsg_addmem(args, payload, size) != 0)
        zmsg_destroy(&args);
    return args;
}

// Has the control thread send a DIRECT or REPLY and says how it went; *to
// (if not NULL) gets the peer it went to.
static int
s_direct(zmesh_agent_t *self, const zmesh__direct_t *how, const char *peer,
         const char *topic, const void *payload, size_t size, uint8_t *to)
{
    zmsg_t *args = s_direct_args(how, peer, topic, payload, size);
    if (!args)
        return ZMESH_ENOMEM;
    zframe_t *frame = NULL;
    int rc = zmesh__agent_query_msg(self, "DIRECT", &args, &frame);
    if (rc != 0)
        return rc;
    zmesh__direct_result_t result;
    if (zframe_size(frame) != sizeof result) {
        zframe_destroy(&frame);
        return ZMESH_ESYS;
    }
    memcpy(&result, zframe_data(frame), sizeof result);
    zframe_destroy(&frame);
    if (result.rc == ZMESH_ENOTFOUND && peer && s_departed(self, peer))
        result.rc = ZMESH_EGONE;
    if (result.rc == 0 && to)
        memcpy(to, result.peer, ZMESH__ID_SIZE);
    return result.rc;
}

// The checks zmesh_agent_send and zmesh_agent_request share.
static int
s_direct_check(zmesh_agent_t *self, const char *topic, const void *payload,
               size_t size)
{
    if (!self || !topic || (!payload && size > 0))
        return ZMESH_EINVAL;
    if (!self->started)
        return ZMESH_ESTATE;
    // '$' topics are allowed point-to-point: mesh services such as
    // mesh-relay speak their own protocols under them.
    int rc = zmesh__topic_check(topic, strnlen(topic, ZMESH_TOPIC_MAX + 1));
    if (rc != 0 && rc != ZMESH_ERESERVED)
        return rc;
    if (size > self->max_msg_size)
        return ZMESH_ETOOBIG;
    return zmesh__msgpack_check(payload, size);
}

int
zmesh_agent_resume_stream(zmesh_agent_t *self, const char *publisher_id,
                          const char *topic, uint64_t last_sequence)
{
    uint8_t id[ZMESH__ID_SIZE];
    if (!self || !publisher_id || !topic ||
        zmesh__id_from_hex(publisher_id, id) != 0 || strlen(publisher_id) != 32)
        return ZMESH_EINVAL;
    if (!self->started)
        return ZMESH_ESTATE;
    size_t size = strnlen(topic, ZMESH_TOPIC_MAX + 1);
    int rc = zmesh__topic_check(topic, size);
    if (rc != 0 && rc != ZMESH_ERESERVED)
        return rc;
    zmesh__streams_rewind(self->streams_in, id, topic, size, last_sequence);
    return 0;
}

// zmesh_agent_send, waiting to learn how it went or not.
static int
s_send(zmesh_agent_t *self, const char *peer, const char *topic,
       const void *payload, size_t size, bool wait)
{
    int rc = s_direct_check(self, topic, payload, size);
    if (rc != 0)
        return rc;
    if (!peer || !*peer)
        return ZMESH_EINVAL;
    zmesh__direct_t how = {ZMESH__MSG_DIRECT, 0, 0, false};
    if (wait)
        rc = s_direct(self, &how, peer, topic, payload, size, NULL);
    else {
        zmsg_t *args = s_direct_args(&how, peer, topic, payload, size);
        if (!args || zmsg_pushstr(args, "DIRECTNW") != 0) {
            zmsg_destroy(&args);
            return ZMESH_ENOMEM;
        }
        // Blocks only while the control thread's pipe is full, and that
        // thread never waits for this one (its notify pipe has no limit).
        if (zmsg_send(&args, self->actor) != 0) {
            zmsg_destroy(&args);
            return ZMESH_ESYS;
        }
    }
    if (rc == 0)
        self->directs_sent++;
    return rc;
}

int
zmesh_agent_send(zmesh_agent_t *self, const char *peer, const char *topic,
                 const void *payload, size_t size)
{
    return s_send(self, peer, topic, payload, size, true);
}

int
zmesh__agent_send_nowait(zmesh_agent_t *self, const char *peer_id,
                         const char *topic, const void *payload, size_t size)
{
    return s_send(self, peer_id, topic, payload, size, false);
}

/* ------------------------------------------------------------------------ */
/*  Requests and replies on the data plane                                  */

// Subscribes to `prefix` + our id and publishes `pattern`, once (`slot`
// remembers the topic): a requester wants replies on "$mesh.reply.<its
// id>" and publishes on "$mesh.request.>" from its first request, a
// responder the other way round from its start, so that each side's SUB
// connects to the other.
static int
s_rr_setup(zmesh_agent_t *self, char slot[64], const char *prefix,
           const char *pattern)
{
    if (slot[0])
        return 0;
    char topic[64];
    snprintf(topic, sizeof topic, "%s%s", prefix, self->id_hex);
    int rc = zmesh__agent_advertise_reserved(self, pattern);
    if (rc == 0)
        rc = zmesh__agent_subscribe_reserved(self, topic);
    if (rc == 0)
        memcpy(slot, topic, sizeof topic);
    return rc;
}

static int
s_rr_ask_setup(zmesh_agent_t *self)
{
    return s_rr_setup(self, self->rr_reply_topic, ZMESH__REPLY_TOPIC_PREFIX,
                      ZMESH__REQUEST_TOPIC_PREFIX ">");
}

int
zmesh__agent_rr_serve(zmesh_agent_t *self)
{
    return s_rr_setup(self, self->rr_request_topic, ZMESH__REQUEST_TOPIC_PREFIX,
                      ZMESH__REPLY_TOPIC_PREFIX ">");
}

// Whether pair i of the serve view answers `topic`.
static bool
s_serves(const zmesh__agent_view_t *view, size_t i, const char *topic,
         size_t topic_size)
{
    return zmesh__pattern_match(view->patterns[i], strlen(view->patterns[i]),
                                topic, topic_size);
}

// The responder a request goes to on the data plane, chosen as the
// control thread would: the peer named by its id, or (peer NULL) the next
// of those that serve `topic`, in turn. False when the control thread
// must choose: a peer named by its service name, or no server known here.
static bool
s_rr_target(zmesh_agent_t *self, const char *peer, const char *topic,
            char id[33])
{
    uint8_t raw[ZMESH__ID_SIZE];
    if (peer) {
        if (strlen(peer) != 32 || zmesh__id_from_hex(peer, raw) != 0)
            return false;
        zmesh__id_to_hex(raw, id); // lowercase, as topics and tables have it
        return true;
    }
    // A peer's pairs are next to each other in the view, so each server
    // is counted once by counting where a run of matches starts.
    const zmesh__agent_view_t *view = &self->serve_view;
    size_t topic_size = strlen(topic), servers = 0;
    const char *last = NULL;
    for (size_t i = 0; i < view->size; i++)
        if (s_serves(view, i, topic, topic_size) &&
            (!last || strcmp(last, view->ids[i]) != 0)) {
            servers++;
            last = view->ids[i];
        }
    if (servers == 0)
        return false;
    size_t pick = (size_t)(self->serve_turn++ % servers);
    last = NULL;
    for (size_t i = 0; i < view->size; i++)
        if (s_serves(view, i, topic, topic_size) &&
            (!last || strcmp(last, view->ids[i]) != 0)) {
            last = view->ids[i];
            if (pick-- == 0) {
                memcpy(id, view->ids[i], 33);
                return true;
            }
        }
    return false;
}

// Publishes a request (topic_size > 0) or a reply to peer `id` on
// `prefix` + id, if what we publish there reaches it now; ZMESH_ENOTFOUND
// when it does not (the caller then goes through the control thread).
static int
s_rr_send(zmesh_agent_t *self, const char *prefix, const char *id, uint64_t req,
          const char *topic, uint64_t status, const void *payload, size_t size)
{
    char channel[64];
    snprintf(channel, sizeof channel, "%s%s", prefix, id);
    if (!zmesh__agent_reaches(self, id, channel))
        return ZMESH_ENOTFOUND;
    size_t topic_size = topic ? strlen(topic) : 0;
    static const uint8_t nil = 0xc0; // a reply that is not OK has no payload
    if (size == 0) {
        payload = &nil;
        size = 1;
    }
    size_t head = zmesh__rr_head_size(req, topic_size, status);
    if (head + size > self->rr_cap) {
        uint8_t *grown = realloc(self->rr_buf, head + size);
        if (!grown)
            return ZMESH_ENOMEM;
        self->rr_buf = grown;
        self->rr_cap = head + size;
    }
    zmesh__rr_head_encode(req, topic, topic_size, status, self->rr_buf);
    memcpy(self->rr_buf + head, payload, size);
    int rc =
        zmesh__agent_publish_reserved(self, channel, self->rr_buf, head + size);
    if (rc == 0)
        self->events_published--; // counted as a request or reply instead
    return rc;
}

// A reply with `status` to request `req` of peer `peer_id`: on the data
// plane when it reaches the requester, else through the control thread.
static int
s_rr_reply(zmesh_agent_t *self, const char *peer_id, uint64_t req,
           uint64_t status, const void *payload, size_t size)
{
    uint8_t raw[ZMESH__ID_SIZE];
    char id[33];
    if (zmesh__id_from_hex(peer_id, raw) == 0) {
        zmesh__id_to_hex(raw, id);
        if (s_rr_send(self, ZMESH__REPLY_TOPIC_PREFIX, id, req, NULL, status,
                      payload, size) == 0)
            return 0;
    }
    zmesh__direct_t how = {ZMESH__MSG_REPLY, req, status, false};
    return s_direct(self, &how, peer_id, "", payload, size, NULL);
}

// A reply's status as the application sees it (zmesh_event_status).
static int
s_reply_status(uint64_t status)
{
    return status == ZMESH__REPLY_OK        ? 0
           : status == ZMESH__REPLY_REFUSED ? ZMESH_EFULL
                                            : ZMESH_ENOTFOUND;
}

int
zmesh__agent_rr_take(zmesh_agent_t *self)
{
    zmesh_event_t *event = &self->event;
    if ((event->type != ZMESH_EVENT_MESSAGE &&
         event->type != ZMESH_EVENT_GAP) ||
        event->topic[0] != '$')
        return -1;
    bool request = self->rr_request_topic[0] &&
                   strcmp(event->topic, self->rr_request_topic) == 0;
    bool reply = !request && self->rr_reply_topic[0] &&
                 strcmp(event->topic, self->rr_reply_topic) == 0;
    if (!request && !reply)
        return -1;
    if (event->type == ZMESH_EVENT_GAP) {
        // What was lost ends at its requester's deadline; the gap itself
        // is nobody's news (nor a gap in the counters, which count what
        // the application is told). The message after it is judged as any.
        self->gaps--;
        self->events_missing -= event->gap_last - event->sequence + 1;
        if (!self->has_stashed)
            return 0;
        self->has_stashed = false;
        self->event = self->stashed;
    }
    self->events_received--; // counted as a message; it is not one
    zmesh__rr_t rr;
    if (zmesh__rr_decode(event->payload, event->payload_size, request, &rr) !=
        0) {
        self->frames_rejected++;
        zmesh__log_limited(&self->bad_frame_log, ZMESH__AGENT_LOG_INTERVAL_MS,
                           "malformed %s from %s (%s) dropped",
                           request ? "request" : "reply", event->peer_name,
                           event->peer_id);
        return 0;
    }
    if (reply) {
        uint8_t sender[ZMESH__ID_SIZE];
        if (zmesh__id_from_hex(event->peer_id, sender) != 0 ||
            !zmesh__requests_answer(self->requests, rr.req, sender)) {
            self->replies_dropped++; // late, or not ours
            return 0;
        }
        event->type = ZMESH_EVENT_REPLY;
        event->topic = "";
        event->request_id = rr.req;
        event->status = s_reply_status(rr.status);
        event->payload = rr.status == ZMESH__REPLY_OK ? rr.payload : "";
        event->payload_size =
            rr.status == ZMESH__REPLY_OK ? rr.payload_size : 0;
        self->replies_received++;
    } else {
        memcpy(self->rr_topic, rr.topic, rr.topic_size);
        self->rr_topic[rr.topic_size] = '\0';
        int check = zmesh__topic_check(self->rr_topic, rr.topic_size);
        if ((check != 0 && check != ZMESH_ERESERVED) ||
            !zmesh__topic_index_match(self->serves, self->rr_topic,
                                      rr.topic_size)) {
            // Nothing here answers that: the requester hears it at once.
            char id[33];
            memcpy(id, event->peer_id, sizeof id);
            s_rr_reply(self, id, rr.req, ZMESH__REPLY_NO_HANDLER, NULL, 0);
            self->requests_refused++;
            return 0;
        }
        event->type = ZMESH_EVENT_REQUEST;
        event->topic = self->rr_topic;
        event->request_id = rr.req;
        event->payload = rr.payload;
        event->payload_size = rr.payload_size;
        self->directs_received++;
    }
    // As a peer event of the same kind has them (s_pop_peer_event).
    event->sequence = 0;
    event->gap_last = 0;
    event->timestamp_us = 0;
    event->repaired = false;
    event->flags = 0;
    return 1;
}

void
zmesh__agent_serve_view_forget(zmesh_agent_t *self, const char *id)
{
    zmesh__agent_view_t *view = &self->serve_view;
    size_t kept = 0;
    for (size_t i = 0; i < view->size; i++) {
        if (strcmp(view->ids[i], id) == 0) {
            free(view->patterns[i]);
            continue;
        }
        memcpy(view->ids[kept], view->ids[i], 33);
        view->patterns[kept++] = view->patterns[i];
    }
    view->size = kept;
}

int
zmesh_agent_request(zmesh_agent_t *self, const char *peer, const char *topic,
                    const void *payload, size_t size, int timeout_ms,
                    uint64_t *request_id)
{
    int rc = s_direct_check(self, topic, payload, size);
    if (rc != 0)
        return rc;
    if (!request_id || timeout_ms < 1 || timeout_ms > 600000 ||
        (peer && !*peer))
        return ZMESH_EINVAL;
    if (zmesh__requests_size(self->requests) >= ZMESH__AGENT_REQUESTS_MAX)
        return ZMESH_EFULL;
    uint64_t req = zmesh__requests_next(self->requests);
    if ((rc = s_rr_ask_setup(self)) != 0)
        return rc;
    uint8_t to[ZMESH__ID_SIZE];
    char target[33];
    int64_t deadline = zmesh__clock_ms() + timeout_ms;
    bool sent = false;
    if (s_rr_target(self, peer, topic, target)) {
        // Recorded before it is sent: publishing may run timers that make
        // requests of their own (durable consumers), and the reply must
        // find it whatever they did.
        zmesh__id_from_hex(target, to);
        if ((rc = zmesh__requests_add(self->requests, req, to, deadline)) != 0)
            return rc;
        sent = s_rr_send(self, ZMESH__REQUEST_TOPIC_PREFIX, target, req, topic,
                         0, payload, size) == 0;
        if (!sent)
            zmesh__requests_answer(self->requests, req, to); // not sent
    }
    if (!sent) {
        zmesh__direct_t how = {ZMESH__MSG_DIRECT, req, 0, peer == NULL};
        rc = s_direct(self, &how, peer, topic, payload, size, to);
        if (rc != 0)
            return rc;
        rc = zmesh__requests_add(self->requests, req, to, deadline);
        if (rc != 0)
            return rc; // cannot happen: the size was checked above
    }
    self->directs_sent++;
    *request_id = req;
    zmesh__agent_wake_update(self);
    return 0;
}

int
zmesh_agent_reply_to(zmesh_agent_t *self, const char *peer_id,
                     uint64_t request_id, const void *payload, size_t size)
{
    if (!self || !peer_id || strlen(peer_id) != 32 || request_id == 0 ||
        (!payload && size > 0))
        return ZMESH_EINVAL;
    if (!self->started)
        return ZMESH_ESTATE;
    if (size > self->max_msg_size)
        return ZMESH_ETOOBIG;
    int rc = zmesh__msgpack_check(payload, size);
    if (rc != 0)
        return rc;
    rc = s_rr_reply(self, peer_id, request_id, ZMESH__REPLY_OK, payload, size);
    if (rc == ZMESH_ENOTFOUND || rc == ZMESH_EGONE) {
        // The requester left: nobody is waiting for this any more.
        self->replies_dropped++;
        rc = ZMESH_EGONE;
    }
    return rc;
}

int
zmesh_agent_reply(zmesh_agent_t *self, const zmesh_event_t *request,
                  const void *payload, size_t size)
{
    if (!request || request->type != ZMESH_EVENT_REQUEST)
        return ZMESH_EINVAL;
    return zmesh_agent_reply_to(self, request->peer_id, request->request_id,
                                payload, size);
}

uint64_t
zmesh_event_request_id(const zmesh_event_t *event)
{
    return event ? event->request_id : 0;
}

int
zmesh_event_status(const zmesh_event_t *event)
{
    return event ? event->status : 0;
}

// A DIRECT or REPLY from a peer: "DIRECT"|"REPLY", id, req, topic|status,
// payload.
void
zmesh__agent_on_direct(zmesh_agent_t *self, zmsg_t *msg)
{
    char *what = zmsg_popstr(msg);
    char *id = zmsg_popstr(msg);
    char *req_text = zmsg_popstr(msg);
    char *third = zmsg_popstr(msg);
    zframe_t *payload = zmsg_pop(msg);
    size_t accounted = payload ? zframe_size(payload) : 0; // control.h
    uint8_t sender[ZMESH__ID_SIZE];
    zmesh__agent_peer_event_t *event = NULL;
    if (!what || !id || !req_text || !third || !payload ||
        zmesh__id_from_hex(id, sender) != 0)
        goto done;
    uint64_t req = strtoull(req_text, NULL, 10);
    if (streq(what, "REPLY")) {
        if (!zmesh__requests_answer(self->requests, req, sender)) {
            self->replies_dropped++; // late, or not ours
            goto done;
        }
        uint64_t status = strtoull(third, NULL, 10);
        event = zmesh__agent_event_push(self, ZMESH_EVENT_REPLY, id,
                                        zmesh__agent_peer_name(self, id), "");
        if (!event)
            goto done;
        event->req = req;
        event->status = status == ZMESH__REPLY_OK        ? 0
                        : status == ZMESH__REPLY_REFUSED ? ZMESH_EFULL
                                                         : ZMESH_ENOTFOUND;
        self->replies_received++;
        if (status == ZMESH__REPLY_OK &&
            (event->payload = malloc(zframe_size(payload) + 1)) != NULL) {
            memcpy(event->payload, zframe_data(payload), zframe_size(payload));
            event->payload_size = zframe_size(payload);
        }
        goto done;
    }
    if (req && !zmesh__topic_index_match(self->serves, third, strlen(third))) {
        // Nothing here answers that: the requester hears it at once.
        zmesh__direct_t how = {ZMESH__MSG_REPLY, req, ZMESH__REPLY_NO_HANDLER,
                               false};
        s_direct(self, &how, id, "", NULL, 0, NULL);
        self->requests_refused++;
        goto done;
    }
    size_t size = zframe_size(payload);
    char *topic = strdup(third);
    void *data = malloc(size + 1);
    event = topic && data
                ? zmesh__agent_event_push(
                      self, req ? ZMESH_EVENT_REQUEST : ZMESH_EVENT_DIRECT, id,
                      zmesh__agent_peer_name(self, id), "")
                : NULL;
    if (event) {
        memcpy(data, zframe_data(payload), size);
        event->topic = topic;
        event->payload = data;
        event->payload_size = size;
        event->req = req;
        self->directs_received++;
        goto done;
    }
    free(topic);
    free(data);
    if (req) {
        // Our application's queue is full (or memory short): the
        // requester hears it now instead of at its timeout.
        zmesh__direct_t how = {ZMESH__MSG_REPLY, req, ZMESH__REPLY_REFUSED,
                               false};
        s_direct(self, &how, id, "", NULL, 0, NULL);
    }
done:
    if (event) { // it holds the payload now: given back when it is freed
        event->backlog = &self->backlog;
        event->accounted = accounted;
        accounted = 0;
    }
    atomic_fetch_sub(&self->backlog, accounted);
    zstr_free(&what);
    zstr_free(&id);
    zstr_free(&req_text);
    zstr_free(&third);
    zframe_destroy(&payload);
}

// Requests that reached their deadline, or whose peer left (`gone`), end
// with a reply event saying so.
static void
s_request_ended(void *arg, uint64_t req, bool left,
                const uint8_t peer[ZMESH__ID_SIZE])
{
    zmesh_agent_t *self = arg;
    // The event names the peer asked, so a failure can say who.
    char id[33];
    zmesh__id_to_hex(peer, id);
    zmesh__agent_peer_event_t *event = zmesh__agent_event_push(
        self, ZMESH_EVENT_REPLY, id, zmesh__agent_peer_name(self, id), "");
    if (!event)
        return; // out of memory
    event->req = req;
    event->status = left ? ZMESH_EGONE : ZMESH_ETIMEDOUT;
    if (!left)
        self->requests_timed_out++;
}

void
zmesh__agent_requests_expire(zmesh_agent_t *self)
{
    if (zmesh__requests_size(self->requests) == 0)
        return;
    zmesh__requests_expire_all(self->requests, zmesh__clock_ms(), NULL,
                               s_request_ended, self);
}
