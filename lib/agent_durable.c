/*  agent_durable.c - the agent's side of durable consumers
    (proto/relay.md#durable-consumers). durable.c keeps each consumer's
    state and talks to its relay through the agent's requests and direct
    messages (and names publishers it learns of from the relay, in
    agent.c's table); this file decides, for each live event the agent is
    about to hand out, what a consumer's pattern makes of it, and turns
    what durable.c has ready into the application's next event. */
#include "agent_private.h"
#include "clock.h"
#include "codec.h"
#include "durable.h"
#include "zmesh.h"

#include <czmq.h>
#include <string.h>

static int
s_durable_request(void *arg, const char *peer, const char *topic,
                  const void *payload, size_t size, int timeout_ms,
                  uint64_t *req)
{
    return zmesh_agent_request(arg, peer, topic, payload, size, timeout_ms,
                               req);
}

static int
s_durable_send(void *arg, const char *peer, const char *topic,
               const void *payload, size_t size)
{
    return zmesh_agent_send(arg, peer, topic, payload, size);
}

// A live message or gap the agent is about to hand out: a durable
// consumer's pattern may want it held, dropped, or marked as its own.
bool
zmesh__agent_durable_pass(zmesh_agent_t *self)
{
    if (zmesh__durable_count(self->durable) == 0)
        return true;
    zmesh_event_t *event = &self->event;
    const char *consumer = NULL;
    bool give;
    if (event->type == ZMESH_EVENT_MESSAGE) {
        zmesh__frame_t frame;
        zmq_msg_t *msg = zmesh__agent_event_frame(self, &frame);
        if (!msg)
            return true; // no memory to hold it: handed out as it is
        give = zmesh__durable_live(self->durable, zmq_msg_data(msg),
                                   zmq_msg_size(msg), &frame, zmesh__clock_ms(),
                                   &consumer);
    } else if (event->type == ZMESH_EVENT_GAP) {
        uint8_t publisher[ZMESH__ID_SIZE];
        if (zmesh__id_from_hex(event->peer_id, publisher) != 0)
            return true;
        give = zmesh__durable_live_gap(self->durable, event->topic, publisher,
                                       event->sequence, event->gap_last,
                                       zmesh__clock_ms(), &consumer);
    } else
        return true;
    if (!consumer)
        return true; // no durable consumer's: as any event
    if (give) {
        event->consumer = consumer;
        event->deliveries = 1;
    }
    return give;
}

// An event from the relay, the hold or a redelivery, into self->event.
bool
zmesh__agent_durable_next(zmesh_agent_t *self)
{
    zmesh__durable_event_t d;
    if (!zmesh__durable_next(self->durable, zmesh__clock_ms(), &d))
        return false;
    zmesh_event_t *event = &self->event;
    memset(event, 0, sizeof *event);
    event->type = d.type;
    event->consumer = d.consumer;
    event->reason = d.reason;
    event->group = "";
    if (d.type == ZMESH_EVENT_LOST) {
        event->topic = "";
        event->payload = "";
        event->peer_name = "";
        event->peer_id = "";
        event->sequence = d.first;
        event->gap_last = d.last;
        return true;
    }
    event->topic = d.frame.topic;
    event->payload = d.type == ZMESH_EVENT_MESSAGE ? d.frame.payload : "";
    event->payload_size =
        d.type == ZMESH_EVENT_MESSAGE ? d.frame.payload_size : 0;
    event->peer_name = zmesh__agent_publisher_name(self, d.frame.publisher);
    event->peer_id = self->cached_id_hex;
    event->timestamp_us = d.frame.timestamp_us;
    if (d.type == ZMESH_EVENT_GAP) {
        event->sequence = d.first;
        event->gap_last = d.last;
        self->gaps++;
        self->events_missing += d.last - d.first + 1;
        return true;
    }
    event->sequence = d.frame.sequence;
    event->stream_sequence = d.rseq;
    event->deliveries = d.deliveries;
    event->redelivered = d.deliveries > 1;
    self->events_received++;
    return true;
}

int
zmesh_agent_subscribe_durable(zmesh_agent_t *self, const char *consumer,
                              const char *pattern,
                              const zmesh_durable_options_t *options)
{
    if (!self || !consumer || !pattern)
        return ZMESH_EINVAL;
    size_t name_size = strlen(consumer);
    if (name_size < 1 || name_size > 64 ||
        strspn(consumer, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                         "0123456789_.-") != name_size)
        return ZMESH_EINVAL;
    if (zmesh__pattern_check(pattern, strlen(pattern)) != 0)
        return ZMESH_EPATTERN;
    if (pattern[0] == '$')
        return ZMESH_ERESERVED;
    if (!self->started)
        return ZMESH_ESTATE;
    if (!self->durable) {
        zmesh__durable_io_t io = {s_durable_request, s_durable_send,
                                  zmesh__agent_durable_name};
        if (zmesh__durable_new(&self->durable, &io, self) != 0)
            return ZMESH_ENOMEM;
    }
    int rc = zmesh__durable_add(self->durable, consumer, pattern, options);
    if (rc != 0)
        return rc;
    // Live first: what is published from now on is held while the relay
    // is read (proto/relay.md#switching-to-live).
    rc = zmesh_agent_subscribe(self, pattern);
    if (rc < 0)
        return rc;
    zmesh__durable_service(self->durable, zmesh__clock_ms());
    return 0;
}

int
zmesh_agent_ack(zmesh_agent_t *self, const zmesh_event_t *event)
{
    if (!self || !event || event->type != ZMESH_EVENT_MESSAGE ||
        !event->consumer || !*event->consumer)
        return ZMESH_EINVAL;
    if (!self->started)
        return ZMESH_ESTATE;
    uint8_t publisher[ZMESH__ID_SIZE];
    if (zmesh__id_from_hex(event->peer_id, publisher) != 0)
        return ZMESH_EINVAL;
    return zmesh__durable_ack(self->durable, event->consumer, publisher,
                              event->topic, event->sequence,
                              event->stream_sequence, zmesh__clock_ms());
}
