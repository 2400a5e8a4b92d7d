/*  counters.c - a set of counter groups, in the same shape as a STATS
    answer on the wire (zmesh__counters_t), so the local answer, the
    remote one and the message between them are one structure. Groups and
    keys are few (the wire caps them at 1024 and 64), so lookups are
    linear. */
#include "counters.h"

#include <stdlib.h>
#include <string.h>

#define S_GROUPS_MAX 1024
#define S_KEYS_MAX 64

struct zmesh_counters {
    zmesh__counters_t *groups;
    size_t count;
    size_t cap;
};

zmesh_counters_t *
zmesh__counters_new(void)
{
    return calloc(1, sizeof(zmesh_counters_t));
}

static void
s_group_clear(zmesh__counters_t *group)
{
    free(group->kind);
    free(group->name);
    for (size_t j = 0; j < group->count; j++)
        free(group->keys[j]);
    free(group->keys);
    free(group->values);
}

void
zmesh_counters_destroy(zmesh_counters_t **counters)
{
    if (!counters || !*counters)
        return;
    zmesh_counters_t *self = *counters;
    for (size_t i = 0; i < self->count; i++)
        s_group_clear(&self->groups[i]);
    free(self->groups);
    free(self);
    *counters = NULL;
}

zmesh__counters_t *
zmesh__counters_group(zmesh_counters_t *self, const char *kind,
                      const char *name)
{
    if (self->count == S_GROUPS_MAX)
        return NULL;
    if (self->count == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 16;
        zmesh__counters_t *grown =
            realloc(self->groups, cap * sizeof *self->groups);
        if (!grown)
            return NULL;
        self->groups = grown;
        self->cap = cap;
    }
    zmesh__counters_t *group = &self->groups[self->count];
    memset(group, 0, sizeof *group);
    group->kind = strdup(kind);
    group->name = strdup(name);
    group->keys = calloc(S_KEYS_MAX, sizeof *group->keys);
    group->values = calloc(S_KEYS_MAX, sizeof *group->values);
    if (!group->kind || !group->name || !group->keys || !group->values) {
        s_group_clear(group);
        return NULL;
    }
    self->count++;
    return group;
}

int
zmesh__counters_add(zmesh__counters_t *group, const char *key, uint64_t value)
{
    for (size_t j = 0; j < group->count; j++)
        if (strcmp(group->keys[j], key) == 0) {
            group->values[j] += value;
            return 0;
        }
    if (group->count == S_KEYS_MAX)
        return ZMESH_EINVAL;
    if (!(group->keys[group->count] = strdup(key)))
        return ZMESH_ENOMEM;
    group->values[group->count++] = value;
    return 0;
}

zmesh__counters_t *
zmesh__counters_find(zmesh_counters_t *self, const char *kind, const char *name)
{
    for (size_t i = 0; i < self->count; i++)
        if (strcmp(self->groups[i].kind, kind) == 0 &&
            strcmp(self->groups[i].name, name) == 0)
            return &self->groups[i];
    return NULL;
}

void
zmesh__counters_lend(const zmesh_counters_t *self, zmesh__msg_t *msg)
{
    // An answer with no groups still needs a non-NULL array (codec.h).
    static zmesh__counters_t none;
    msg->counters = self->count > 0 ? self->groups : &none;
    msg->counters_count = self->count;
}

zmesh_counters_t *
zmesh__counters_take(zmesh__msg_t *msg)
{
    zmesh_counters_t *self = zmesh__counters_new();
    if (!self)
        return NULL;
    self->groups = msg->counters;
    self->count = self->cap = msg->counters_count;
    msg->counters = NULL;
    msg->counters_count = 0;
    return self;
}

size_t
zmesh_counters_size(const zmesh_counters_t *self)
{
    return self ? self->count : 0;
}

const char *
zmesh_counters_kind(const zmesh_counters_t *self, size_t i)
{
    return self && i < self->count ? self->groups[i].kind : "";
}

const char *
zmesh_counters_name(const zmesh_counters_t *self, size_t i)
{
    return self && i < self->count ? self->groups[i].name : "";
}

size_t
zmesh_counters_keys(const zmesh_counters_t *self, size_t i)
{
    return self && i < self->count ? self->groups[i].count : 0;
}

const char *
zmesh_counters_key(const zmesh_counters_t *self, size_t i, size_t j)
{
    return self && i < self->count && j < self->groups[i].count
               ? self->groups[i].keys[j]
               : "";
}

uint64_t
zmesh_counters_value(const zmesh_counters_t *self, size_t i, size_t j)
{
    return self && i < self->count && j < self->groups[i].count
               ? self->groups[i].values[j]
               : 0;
}

uint64_t
zmesh_counters_get(const zmesh_counters_t *self, size_t i, const char *key)
{
    if (!self || i >= self->count || !key)
        return 0;
    for (size_t j = 0; j < self->groups[i].count; j++)
        if (strcmp(self->groups[i].keys[j], key) == 0)
            return self->groups[i].values[j];
    return 0;
}
