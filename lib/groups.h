/*  groups.h - a publisher's queue-group deliveries: which events each
    member holds unacknowledged (its in-flight count is what load
    balancing by credit looks at), and the events waiting for a member
    with credit. When a member leaves, its unacknowledged events are
    handed back for delivery to another member. Bookkeeping only, for the
    control thread; talks to nothing. proto/wire.md#deliver. */
#ifndef ZMESH_GROUPS_H_INCLUDED
#define ZMESH_GROUPS_H_INCLUDED

#include "codec.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct zmesh__groups zmesh__groups_t;

/*  One event on its way to a group. */
typedef struct {
    char group[ZMESH_NAME_MAX + 1];
    char topic[ZMESH_TOPIC_MAX + 1];
    void *frame;
    size_t size;
    bool redelivered; /* it went to a member that left without acking */
} zmesh__delivery_t;

/*  Each member holds at most `credit` events unacknowledged; at most
    `backlog_max` events wait for credit across all groups. */
int zmesh__groups_new(zmesh__groups_t **groups, size_t credit,
                      size_t backlog_max);
void zmesh__groups_destroy(zmesh__groups_t **groups);

/*  Events member `member` holds unacknowledged. */
size_t zmesh__groups_inflight(zmesh__groups_t *self,
                              const uint8_t member[ZMESH__ID_SIZE]);
size_t zmesh__groups_credit(const zmesh__groups_t *self);

/*  Records that `delivery` (taken) went to `member`; returns its number
    for DELIVER, 0 when memory is short (the delivery is then freed). */
uint64_t zmesh__groups_sent(zmesh__groups_t *self,
                            const uint8_t member[ZMESH__ID_SIZE],
                            zmesh__delivery_t *delivery);

/*  Takes back delivery `req` from `member` (e.g. its DELIVER could not be
    sent); NULL when the member does not hold it. */
zmesh__delivery_t *zmesh__groups_take(zmesh__groups_t *self,
                                      const uint8_t member[ZMESH__ID_SIZE],
                                      uint64_t req);

/*  The member acknowledged `req`: true when it held it. */
bool zmesh__groups_ack(zmesh__groups_t *self,
                       const uint8_t member[ZMESH__ID_SIZE], uint64_t req);

/*  Takes back the next unacknowledged delivery of a member that left
    (marked redelivered); NULL when none is left. */
zmesh__delivery_t *zmesh__groups_orphan(zmesh__groups_t *self,
                                        const uint8_t member[ZMESH__ID_SIZE]);

/*  Puts a delivery (taken) in the backlog; false (and freed) when the
    backlog is full: the caller counts and logs the loss. */
bool zmesh__groups_wait(zmesh__groups_t *self, zmesh__delivery_t *delivery);

/*  The oldest waiting delivery of `group` (any group when NULL), left in
    place, or NULL. */
zmesh__delivery_t *zmesh__groups_peek(zmesh__groups_t *self, const char *group);

/*  Takes the oldest waiting delivery of `group` (any group when NULL), or
    NULL. */
zmesh__delivery_t *zmesh__groups_next(zmesh__groups_t *self, const char *group);
size_t zmesh__groups_waiting(const zmesh__groups_t *self);

/*  A delivery with a copy of `frame`; NULL on out of memory. */
zmesh__delivery_t *zmesh__delivery_new(const char *group, const char *topic,
                                       const void *frame, size_t size);
void zmesh__delivery_destroy(zmesh__delivery_t **delivery);

#endif
