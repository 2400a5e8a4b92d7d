/*  agent_direct.c - point-to-point traffic of an agent: direct messages,
    requests and their replies, both ways. Sending goes through the
    control thread, which owns the connection to each peer; what peers
    send comes back on the notify pipe and waits for the application with
    the other peer events. Every request ends exactly once: with its
    reply, at its deadline, or when its peer leaves (requests.h). */
#include "agent_private.h"
#include "clock.h"
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
    zmesh__direct_t how = {ZMESH__MSG_DIRECT, req, 0, peer == NULL};
    uint8_t to[ZMESH__ID_SIZE];
    rc = s_direct(self, &how, peer, topic, payload, size, to);
    if (rc != 0)
        return rc;
    rc = zmesh__requests_add(self->requests, req, to,
                             zmesh__clock_ms() + timeout_ms);
    if (rc != 0)
        return rc; // cannot happen: the size was checked above
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
    zmesh__direct_t how = {ZMESH__MSG_REPLY, request_id, ZMESH__REPLY_OK,
                           false};
    rc = s_direct(self, &how, peer_id, "", payload, size, NULL);
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
zmesh__agent_requests_expire(zmesh_agent_t *self, const uint8_t *gone)
{
    if (zmesh__requests_size(self->requests) == 0)
        return;
    zmesh__requests_expire_all(self->requests, zmesh__clock_ms(), gone,
                               s_request_ended, self);
}
