/*  agent_internal.h - what the library's own services (mesh-relay's
    engine) need of an agent beyond the public API. Not installed. */
#ifndef ZMESH_AGENT_INTERNAL_H_INCLUDED
#define ZMESH_AGENT_INTERNAL_H_INCLUDED

#include "zmesh.h"

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

#endif
