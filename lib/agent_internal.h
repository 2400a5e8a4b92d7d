/*  agent_internal.h - what the library's own services (mesh-relay's
    engine) need of an agent beyond the public API. Not installed. */
#ifndef ZMESH_AGENT_INTERNAL_H_INCLUDED
#define ZMESH_AGENT_INTERNAL_H_INCLUDED

#include "zmesh.h"

#include <stdbool.h>

/*  For a ZMESH_EVENT_MESSAGE, the flags of its event frame
    (ZMESH__FRAME_* in codec.h: ZMESH__FRAME_CONFIRM when its publisher
    wants a relay to confirm it was stored); 0 for other events. */
unsigned zmesh__event_flags(const zmesh_event_t *event);

/*  zmesh_agent_send to a peer by id without waiting to learn whether the
    control thread could send it: for senders to whom a lost message is
    repaired by its receiver (mesh-relay's confirms, which a publisher asks
    for again). 0 when queued; a failure to send is logged (debug). */
int zmesh__agent_send_nowait(zmesh_agent_t *self, const char *peer_id,
                             const char *topic, const void *payload,
                             size_t size);

/*  A relay's confirms go to publisher P as events on the data plane,
    topic ZMESH__CONFIRM_TOPIC_PREFIX followed by P's id (32 hex digits),
    which P subscribes to when it first publishes with a confirm
    (proto/relay.md#publisher-confirms); until that subscription is in
    effect at the relay, as DIRECT messages on ZMESH__CONFIRM_TOPIC. */
#define ZMESH__CONFIRM_TOPIC "$relay.confirm"
#define ZMESH__CONFIRM_TOPIC_PREFIX "$relay.confirm."

/*  zmesh_agent_publish and zmesh_agent_advertise for the library's own
    services: the topic or pattern may be a reserved '$' one. */
int zmesh__agent_publish_reserved(zmesh_agent_t *self, const char *topic,
                                  const void *payload, size_t size);
int zmesh__agent_advertise_reserved(zmesh_agent_t *self, const char *pattern);

/*  Whether what this agent publishes on `topic` now reaches peer
    `peer_id` (32 hex digits) on the data plane: the peer wants the topic
    and its subscriptions are in effect at this agent's XPUB (its sync
    token came, proto/wire.md#sync-token). Asked of the control thread
    after 50 ms, then less often, down to once a second, per peer and
    topic (the last 4 topics of each peer asked about) until the answer
    is yes, which is then kept while
    that peer's subscriptions stay in effect here; for at most 16,384
    peers at once (others are answered no). */
bool zmesh__agent_reaches(zmesh_agent_t *self, const char *peer_id,
                          const char *topic);

#endif
