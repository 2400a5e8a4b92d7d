/*  tap_table.c - the string-keyed counter table behind mesh-tap's stats
    and topic sets: entries in an array in the order first seen (so output
    is stable), found through an open-addressing index of FNV-1a hashes
    that doubles when half full. No deletion: the tool's tables only grow,
    up to the limit given at creation.
*/
#include "tap_table.h"

#include "zmesh.h"

#include <stdlib.h>
#include <string.h>

struct tap_table {
    tap_entry_t *entries;
    size_t size;
    size_t capacity; // of entries
    size_t max_entries;
    size_t *index; // entry number + 1, 0 for an empty slot
    size_t index_size;
};

static uint64_t
s_hash(const char *key)
{
    uint64_t hash = 14695981039346656037u;
    for (const unsigned char *c = (const unsigned char *)key; *c; c++) {
        hash ^= *c;
        hash *= 1099511628211u;
    }
    return hash;
}

int
tap_table_new(tap_table_t **table, size_t max_entries)
{
    tap_table_t *self = calloc(1, sizeof *self);
    if (!self)
        return ZMESH_ENOMEM;
    self->max_entries = max_entries;
    self->index_size = 64;
    self->index = calloc(self->index_size, sizeof *self->index);
    if (!self->index) {
        free(self);
        return ZMESH_ENOMEM;
    }
    *table = self;
    return 0;
}

void
tap_table_destroy(tap_table_t **table)
{
    if (!table || !*table)
        return;
    tap_table_t *self = *table;
    for (size_t i = 0; i < self->size; i++) {
        free(self->entries[i].key);
        free(self->entries[i].label);
    }
    free(self->entries);
    free(self->index);
    free(self);
    *table = NULL;
}

/*  The index slot where `key` is, or the empty slot where it would go. */
static size_t
s_slot(const tap_table_t *self, const char *key)
{
    size_t mask = self->index_size - 1;
    size_t slot = (size_t)s_hash(key) & mask;
    while (self->index[slot] != 0 &&
           strcmp(self->entries[self->index[slot] - 1].key, key) != 0)
        slot = (slot + 1) & mask;
    return slot;
}

static int
s_grow_index(tap_table_t *self)
{
    size_t size = self->index_size * 2;
    size_t *index = calloc(size, sizeof *index);
    if (!index)
        return ZMESH_ENOMEM;
    free(self->index);
    self->index = index;
    self->index_size = size;
    for (size_t i = 0; i < self->size; i++)
        self->index[s_slot(self, self->entries[i].key)] = i + 1;
    return 0;
}

tap_entry_t *
tap_table_get(tap_table_t *self, const char *key, bool *created)
{
    *created = false;
    size_t slot = s_slot(self, key);
    if (self->index[slot] != 0)
        return &self->entries[self->index[slot] - 1];
    if (self->size >= self->max_entries)
        return NULL;
    if (self->size == self->capacity) {
        size_t capacity = self->capacity ? self->capacity * 2 : 16;
        tap_entry_t *entries =
            realloc(self->entries, capacity * sizeof *entries);
        if (!entries)
            return NULL;
        self->entries = entries;
        self->capacity = capacity;
    }
    if ((self->size + 1) * 2 > self->index_size) {
        if (s_grow_index(self) != 0)
            return NULL;
        slot = s_slot(self, key);
    }
    char *copy = strdup(key);
    if (!copy)
        return NULL;
    tap_entry_t *entry = &self->entries[self->size];
    memset(entry, 0, sizeof *entry);
    entry->key = copy;
    self->index[slot] = ++self->size;
    *created = true;
    return entry;
}

int
tap_table_set_label(tap_entry_t *entry, const char *label)
{
    char *copy = strdup(label);
    if (!copy)
        return ZMESH_ENOMEM;
    free(entry->label);
    entry->label = copy;
    return 0;
}

size_t
tap_table_size(const tap_table_t *self)
{
    return self->size;
}

tap_entry_t *
tap_table_entry(tap_table_t *self, size_t i)
{
    return &self->entries[i];
}
