/*  groups.c - queue-group bookkeeping on the publisher's control thread:
    per member, the deliveries it has not acknowledged (a list in sending
    order, so a member that leaves hands them back oldest first), and one
    backlog for deliveries no member had credit for. Credit is small
    (tens of events), so acknowledgements search a member's list from the
    front, where the oldest, soonest acknowledged, are. */
#include "groups.h"
#include "zmesh.h"

#include <czmq.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint64_t req;
    zmesh__delivery_t *delivery;
} s_inflight_t;

struct zmesh__groups {
    zhashx_t *members; /* member id hex -> zlistx_t of s_inflight_t * */
    zlistx_t *backlog; /* zmesh__delivery_t *, oldest first */
    size_t credit;
    size_t backlog_max;
    uint64_t last_req;
};

zmesh__delivery_t *
zmesh__delivery_new(const char *group, const char *topic, const void *frame,
                    size_t size)
{
    zmesh__delivery_t *d = calloc(1, sizeof *d);
    if (!d || !(d->frame = malloc(size ? size : 1))) {
        free(d);
        return NULL;
    }
    snprintf(d->group, sizeof d->group, "%s", group);
    snprintf(d->topic, sizeof d->topic, "%s", topic);
    memcpy(d->frame, frame, size);
    d->size = size;
    return d;
}

void
zmesh__delivery_destroy(zmesh__delivery_t **delivery)
{
    if (!delivery || !*delivery)
        return;
    free((*delivery)->frame);
    free(*delivery);
    *delivery = NULL;
}

static void
s_inflight_free(void **item)
{
    s_inflight_t *f = *item;
    if (f) {
        zmesh__delivery_destroy(&f->delivery);
        free(f);
    }
    *item = NULL;
}

static void
s_list_free(void **item)
{
    zlistx_destroy((zlistx_t **)item);
}

static void
s_delivery_free(void **item)
{
    zmesh__delivery_destroy((zmesh__delivery_t **)item);
}

int
zmesh__groups_new(zmesh__groups_t **groups, size_t credit, size_t backlog_max)
{
    if (!groups || credit == 0)
        return ZMESH_EINVAL;
    zmesh__groups_t *self = calloc(1, sizeof *self);
    if (!self)
        return ZMESH_ENOMEM;
    self->members = zhashx_new();
    self->backlog = zlistx_new();
    if (!self->members || !self->backlog) {
        zmesh__groups_destroy(&self);
        return ZMESH_ENOMEM;
    }
    zhashx_set_destructor(self->members, s_list_free);
    zlistx_set_destructor(self->backlog, s_delivery_free);
    self->credit = credit;
    self->backlog_max = backlog_max;
    *groups = self;
    return 0;
}

void
zmesh__groups_destroy(zmesh__groups_t **groups)
{
    if (!groups || !*groups)
        return;
    zhashx_destroy(&(*groups)->members);
    zlistx_destroy(&(*groups)->backlog);
    free(*groups);
    *groups = NULL;
}

static zlistx_t *
s_member(zmesh__groups_t *self, const uint8_t member[ZMESH__ID_SIZE],
         bool create)
{
    char hex[33];
    zmesh__id_to_hex(member, hex);
    zlistx_t *list = zhashx_lookup(self->members, hex);
    if (!list && create && (list = zlistx_new()) != NULL) {
        zlistx_set_destructor(list, s_inflight_free);
        if (zhashx_insert(self->members, hex, list) != 0)
            zlistx_destroy(&list);
    }
    return list;
}

size_t
zmesh__groups_inflight(zmesh__groups_t *self,
                       const uint8_t member[ZMESH__ID_SIZE])
{
    zlistx_t *list = s_member(self, member, false);
    return list ? zlistx_size(list) : 0;
}

size_t
zmesh__groups_credit(const zmesh__groups_t *self)
{
    return self->credit;
}

uint64_t
zmesh__groups_sent(zmesh__groups_t *self, const uint8_t member[ZMESH__ID_SIZE],
                   zmesh__delivery_t *delivery)
{
    zlistx_t *list = s_member(self, member, true);
    s_inflight_t *f = list ? calloc(1, sizeof *f) : NULL;
    if (!f || !zlistx_add_end(list, f)) {
        free(f);
        zmesh__delivery_destroy(&delivery);
        return 0;
    }
    f->req = ++self->last_req;
    f->delivery = delivery;
    return f->req;
}

zmesh__delivery_t *
zmesh__groups_take(zmesh__groups_t *self, const uint8_t member[ZMESH__ID_SIZE],
                   uint64_t req)
{
    zlistx_t *list = s_member(self, member, false);
    if (!list)
        return NULL;
    for (s_inflight_t *f = zlistx_first(list); f; f = zlistx_next(list))
        if (f->req == req) {
            zlistx_detach_cur(list);
            zmesh__delivery_t *delivery = f->delivery;
            free(f);
            return delivery;
        }
    return NULL;
}

bool
zmesh__groups_ack(zmesh__groups_t *self, const uint8_t member[ZMESH__ID_SIZE],
                  uint64_t req)
{
    zmesh__delivery_t *delivery = zmesh__groups_take(self, member, req);
    bool held = delivery != NULL;
    zmesh__delivery_destroy(&delivery);
    return held;
}

zmesh__delivery_t *
zmesh__groups_orphan(zmesh__groups_t *self,
                     const uint8_t member[ZMESH__ID_SIZE])
{
    zlistx_t *list = s_member(self, member, false);
    s_inflight_t *f = list ? zlistx_detach(list, NULL) : NULL;
    if (!f) {
        if (list) {
            char hex[33];
            zmesh__id_to_hex(member, hex);
            zhashx_delete(self->members, hex);
        }
        return NULL;
    }
    zmesh__delivery_t *delivery = f->delivery;
    free(f);
    delivery->redelivered = true;
    return delivery;
}

bool
zmesh__groups_wait(zmesh__groups_t *self, zmesh__delivery_t *delivery)
{
    if (zlistx_size(self->backlog) >= self->backlog_max ||
        !zlistx_add_end(self->backlog, delivery)) {
        zmesh__delivery_destroy(&delivery);
        return false;
    }
    return true;
}

zmesh__delivery_t *
zmesh__groups_peek(zmesh__groups_t *self, const char *group)
{
    for (zmesh__delivery_t *d = zlistx_first(self->backlog); d;
         d = zlistx_next(self->backlog))
        if (!group || strcmp(d->group, group) == 0)
            return d;
    return NULL;
}

zmesh__delivery_t *
zmesh__groups_next(zmesh__groups_t *self, const char *group)
{
    for (zmesh__delivery_t *d = zlistx_first(self->backlog); d;
         d = zlistx_next(self->backlog))
        if (!group || strcmp(d->group, group) == 0)
            return zlistx_detach_cur(self->backlog);
    return NULL;
}

size_t
zmesh__groups_waiting(const zmesh__groups_t *self)
{
    return zlistx_size(self->backlog);
}
