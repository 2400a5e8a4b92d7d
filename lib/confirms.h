/*  confirms.h - a publisher's events waiting for a relay to confirm it
    stored them (proto/relay.md#publisher-confirms): each frame, so
    unconfirmed ones can be sent again straight to a relay, and the
    deadline at which each is reported as timed out. Bounded in events
    and bytes. Used from the application thread only. Talks to nothing:
    the agent sends and reports through the callbacks. */
#ifndef ZMESH_CONFIRMS_H_INCLUDED
#define ZMESH_CONFIRMS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#define ZMESH__CONFIRMS_EVENTS_MAX 65536
#define ZMESH__CONFIRMS_BYTES_MAX (64 * 1024 * 1024)
/*  An unconfirmed event is sent again to a relay after this, and again
    every this long. */
#define ZMESH__CONFIRMS_RESEND_MS 1000

typedef struct zmesh__confirms zmesh__confirms_t;

/*  Reports one event's outcome: status 0 (stored) or a ZMESH_E* code,
    with a reason for people ("" when stored). */
typedef void(zmesh__confirms_report_fn)(void *arg, const char *topic,
                                        uint64_t seq, int status,
                                        const char *reason);

/*  Takes the frames to send again in one batch: `count` frames. Returns
    0 when they went out (their resend clock restarts), or < 0 when they
    could not (no relay: they are tried again at the next resend). */
typedef int(zmesh__confirms_resend_fn)(void *arg, const void *const *frames,
                                       const size_t *sizes, size_t count);

int zmesh__confirms_new(zmesh__confirms_t **confirms);
void zmesh__confirms_destroy(zmesh__confirms_t **confirms);

/*  Keeps `frame` (event `seq` of `topic`, the message published: a
    reference is taken with zmq_msg_copy, the caller keeps its own) until
    it is confirmed, failed or times out at now_ms + timeout_ms. Errors:
    ZMESH_EFULL (ZMESH__CONFIRMS_EVENTS_MAX events or BYTES_MAX bytes
    kept), ZMESH_ENOMEM. */
int zmesh__confirms_add(zmesh__confirms_t *self, const char *topic,
                        uint64_t seq, zmq_msg_t *frame, int64_t now_ms,
                        int timeout_ms);

/*  Settles the events first..last of `topic` that are waiting: each is
    reported with `status` and `reason` and forgotten; sequences not
    waiting are ignored. Returns how many were settled. */
size_t zmesh__confirms_settle(zmesh__confirms_t *self, const char *topic,
                              uint64_t first, uint64_t last, int status,
                              const char *reason,
                              zmesh__confirms_report_fn *report, void *arg);

/*  Does what is due at now_ms: reports events past their deadline as
    timed out (ZMESH_ETIMEDOUT, with `timeout_reason`), then hands events
    waiting ZMESH__CONFIRMS_RESEND_MS since they were last sent to
    `resend` in batches of at most `batch_max` frames and `batch_bytes`
    bytes, oldest first. */
void zmesh__confirms_service(zmesh__confirms_t *self, int64_t now_ms,
                             const char *timeout_reason, size_t batch_max,
                             size_t batch_bytes,
                             zmesh__confirms_report_fn *report,
                             zmesh__confirms_resend_fn *resend, void *arg);

/*  When zmesh__confirms_service next has something to do (ms, monotonic),
    or 0 when nothing waits. */
int64_t zmesh__confirms_deadline(const zmesh__confirms_t *self);

size_t zmesh__confirms_size(const zmesh__confirms_t *self);

#endif
