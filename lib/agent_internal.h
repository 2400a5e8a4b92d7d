/*  agent_internal.h - what the library's own services (mesh-relay's
    engine) need of an agent beyond the public API. Not installed. */
#ifndef ZMESH_AGENT_INTERNAL_H_INCLUDED
#define ZMESH_AGENT_INTERNAL_H_INCLUDED

#include "zmesh.h"

/*  For a ZMESH_EVENT_MESSAGE, the flags of its event frame
    (ZMESH__FRAME_* in codec.h: ZMESH__FRAME_CONFIRM when its publisher
    wants a relay to confirm it was stored); 0 for other events. */
unsigned zmesh__event_flags(const zmesh_event_t *event);

#endif
