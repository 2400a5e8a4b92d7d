/*  resend.h - a publisher answering requests for events it sent before:
    a NAK (gap repair, or a slow joiner's clean start) or a HISTORY (the
    last events kept per topic). The answer is one or more REPAIR messages
    on the requester's DEALER, each within the size limit, the last one
    with done = 1 (proto/wire.md#repair). Runs on the control thread; the
    frames come from the retain buffer the application thread fills. */
#ifndef ZMESH_RESEND_H_INCLUDED
#define ZMESH_RESEND_H_INCLUDED

#include "codec.h"
#include "peer.h"
#include "retain.h"

#include <stddef.h>
#include <stdint.h>

/*  Answers `request` (a decoded NAK or HISTORY from `peer`) from
    `retained` (NULL: nothing kept, the answer is empty), as agent
    `self_id`, in REPAIR messages of at most `budget` bytes of frames
    each (a single larger frame goes alone), and at most `limit` bytes of
    frames in all (the rest is left out, so the requester reports it
    missing: a peer must not make us copy and queue without bound).
    Returns the number of frames sent; *bytes gets their size. */
size_t zmesh__resend(zmesh__peer_t *peer, const uint8_t self_id[ZMESH__ID_SIZE],
                     zmesh__retain_t *retained, const zmesh__msg_t *request,
                     size_t budget, size_t limit, size_t *bytes);

#endif
