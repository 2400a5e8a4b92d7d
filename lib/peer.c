/*  peer.c - one remote agent as the control thread sees it: identity and
    endpoints (from the beacon or seed first, then from its HELLO), the
    patterns it publishes and wants, when it was last heard, and the DEALER
    through which this agent sends it control messages. It does not decide
    anything: joining, expiry and data connections are control.c's job.
    It also builds the public zmesh_peer_list_t snapshot, a deep copy the
    application owns, so the control thread never shares live state.
*/
#include "peer.h"
#include "log.h"
#include "topic.h"

#include <stdlib.h>
#include <string.h>

struct zmesh__peer {
    uint8_t id[ZMESH__ID_SIZE];
    char id_hex[33];
    zmesh__peer_state_t state;
    const char *origin;
    char *name;
    char *endpoint;
    char *data_endpoint;
    char *host;
    char *version;
    uint64_t pid;
    zmesh__header_t *headers;
    size_t headers_count;
    char **pubs;
    size_t pubs_count;
    char **subs;
    size_t subs_count;
    char **group_patterns; /* queue-group subscriptions */
    char **group_names;
    size_t groups_count;
    char **bp_subs; /* wanted with back-pressure */
    size_t bp_subs_count;
    char **serves; /* answers requests for */
    size_t serves_count;
    uint64_t subs_generation;
    zsock_t *dealer;
    int64_t created_ms;
    int64_t last_heard_ms;
    int64_t last_ping_ms;
    int64_t leaving_ms; /* its LEAVING beacon came: remove it then */
    bool data_connected;
    uint64_t batch;
    bool reads_tails;
};

static void
s_strings_free(char **items, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(items[i]);
    free(items);
}

static void
s_headers_free(zmesh__header_t *headers, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        free(headers[i].key);
        free(headers[i].value);
    }
    free(headers);
}

zmesh__peer_t *
zmesh__peer_new(const uint8_t id[ZMESH__ID_SIZE], const char *endpoint,
                const char *origin, const uint8_t self_id[ZMESH__ID_SIZE],
                const zmesh__socket_opts_t *opts, int64_t now_ms)
{
    zmesh__peer_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    memcpy(self->id, id, ZMESH__ID_SIZE);
    zmesh__id_to_hex(id, self->id_hex);
    self->origin = origin;
    self->endpoint = strdup(endpoint);
    self->name = strdup("");
    self->created_ms = now_ms;
    self->last_heard_ms = now_ms;
    self->last_ping_ms = now_ms;
    self->dealer = zmesh__socket_new(ZMQ_DEALER, opts);
    if (!self->endpoint || !self->name || !self->dealer) {
        zmesh__peer_destroy(&self);
        return NULL;
    }
    // proto/wire.md#control-transport: routing id 0x01 + our id.
    uint8_t routing_id[1 + ZMESH__ID_SIZE] = {0x01};
    memcpy(routing_id + 1, self_id, ZMESH__ID_SIZE);
    void *handle = zsock_resolve(self->dealer);
    zmq_setsockopt(handle, ZMQ_ROUTING_ID, routing_id, sizeof routing_id);
    // A peer that stops reading must not make us queue without bound;
    // liveness expires it instead.
    int hwm = 1000;
    zmq_setsockopt(handle, ZMQ_SNDHWM, &hwm, sizeof hwm);
    if (zmq_connect(handle, endpoint) != 0) {
        zmesh__log(ZMESH_LOG_WARNING, "cannot connect to peer %s at %s: %s",
                   self->id_hex, endpoint, zmq_strerror(zmq_errno()));
        zmesh__peer_destroy(&self);
        return NULL;
    }
    return self;
}

void
zmesh__peer_destroy(zmesh__peer_t **peer)
{
    if (!peer || !*peer)
        return;
    zmesh__peer_t *self = *peer;
    zsock_destroy(&self->dealer);
    free(self->name);
    free(self->endpoint);
    free(self->data_endpoint);
    free(self->host);
    free(self->version);
    s_headers_free(self->headers, self->headers_count);
    s_strings_free(self->pubs, self->pubs_count);
    s_strings_free(self->subs, self->subs_count);
    s_strings_free(self->group_patterns, self->groups_count);
    s_strings_free(self->group_names, self->groups_count);
    s_strings_free(self->bp_subs, self->bp_subs_count);
    s_strings_free(self->serves, self->serves_count);
    free(self);
    *peer = NULL;
}

const uint8_t *
zmesh__peer_id(const zmesh__peer_t *self)
{
    return self->id;
}

const char *
zmesh__peer_id_hex(const zmesh__peer_t *self)
{
    return self->id_hex;
}

const char *
zmesh__peer_name(const zmesh__peer_t *self)
{
    return self->name;
}

const char *
zmesh__peer_endpoint(const zmesh__peer_t *self)
{
    return self->endpoint;
}

const char *
zmesh__peer_data_endpoint(const zmesh__peer_t *self)
{
    return self->data_endpoint ? self->data_endpoint : "";
}

const char *
zmesh__peer_origin(const zmesh__peer_t *self)
{
    return self->origin;
}

zmesh__peer_state_t
zmesh__peer_state(const zmesh__peer_t *self)
{
    return self->state;
}

uint64_t
zmesh__peer_subs_generation(const zmesh__peer_t *self)
{
    return self->subs_generation;
}

// Moves a string field out of a decoded message into *slot.
static void
s_take(char **slot, char **from)
{
    if (!*from)
        return;
    free(*slot);
    *slot = *from;
    *from = NULL;
}

static void
s_take_patterns(zmesh__peer_t *self, zmesh__msg_t *msg)
{
    s_strings_free(self->pubs, self->pubs_count);
    s_strings_free(self->subs, self->subs_count);
    s_strings_free(self->group_patterns, self->groups_count);
    s_strings_free(self->group_names, self->groups_count);
    s_strings_free(self->bp_subs, self->bp_subs_count);
    s_strings_free(self->serves, self->serves_count);
    self->serves = msg->serves;
    self->serves_count = msg->serves_count;
    msg->serves = NULL;
    msg->serves_count = 0;
    self->bp_subs = msg->bp_subs;
    self->bp_subs_count = msg->bp_subs_count;
    msg->bp_subs = NULL;
    msg->bp_subs_count = 0;
    self->pubs = msg->pubs;
    self->pubs_count = msg->pubs_count;
    self->subs = msg->subs;
    self->subs_count = msg->subs_count;
    self->group_patterns = msg->group_patterns;
    self->group_names = msg->group_names;
    self->groups_count = msg->groups_count;
    self->subs_generation = msg->subs_generation;
    msg->pubs = msg->subs = NULL;
    msg->pubs_count = msg->subs_count = 0;
    msg->group_patterns = msg->group_names = NULL;
    msg->groups_count = 0;
}

void
zmesh__peer_apply_hello(zmesh__peer_t *self, zmesh__msg_t *hello)
{
    s_take(&self->name, &hello->name);
    s_take(&self->endpoint, &hello->endpoint);
    s_take(&self->data_endpoint, &hello->data_endpoint);
    s_take(&self->host, &hello->host);
    s_take(&self->version, &hello->version_text);
    self->pid = hello->pid;
    s_headers_free(self->headers, self->headers_count);
    self->headers = hello->headers;
    self->headers_count = hello->headers_count;
    hello->headers = NULL;
    hello->headers_count = 0;
    s_take_patterns(self, hello);
    self->state = ZMESH__PEER_JOINED;
}

void
zmesh__peer_apply_advertise(zmesh__peer_t *self, zmesh__msg_t *msg)
{
    // Each ADVERTISE carries the full sets; an older generation of
    // subscriptions would roll back what the peer told us since.
    if (msg->subs_generation < self->subs_generation)
        return;
    s_take_patterns(self, msg);
}

void
zmesh__peer_heard(zmesh__peer_t *self, int64_t now_ms)
{
    self->last_heard_ms = now_ms;
}

int64_t
zmesh__peer_last_heard(const zmesh__peer_t *self)
{
    return self->last_heard_ms;
}

int64_t
zmesh__peer_created(const zmesh__peer_t *self)
{
    return self->created_ms;
}

int64_t
zmesh__peer_last_ping(const zmesh__peer_t *self)
{
    return self->last_ping_ms;
}

void
zmesh__peer_set_leaving(zmesh__peer_t *self, int64_t when_ms)
{
    if (self->leaving_ms == 0 || when_ms < self->leaving_ms)
        self->leaving_ms = when_ms;
}

int64_t
zmesh__peer_leaving(const zmesh__peer_t *self)
{
    return self->leaving_ms;
}

void
zmesh__peer_pinged(zmesh__peer_t *self, int64_t now_ms)
{
    self->last_ping_ms = now_ms;
}

bool
zmesh__peer_serves_topic(const zmesh__peer_t *self, const char *topic)
{
    size_t topic_size = strlen(topic);
    for (size_t i = 0; i < self->serves_count; i++)
        if (zmesh__pattern_match(self->serves[i], strlen(self->serves[i]),
                                 topic, topic_size))
            return true;
    return false;
}

bool
zmesh__peer_wants_topic(const zmesh__peer_t *self, const char *topic)
{
    size_t topic_size = strlen(topic);
    for (size_t i = 0; i < self->subs_count; i++)
        if (zmesh__pattern_match(self->subs[i], strlen(self->subs[i]), topic,
                                 topic_size))
            return true;
    return false;
}

const char *
zmesh__peer_group_for(const zmesh__peer_t *self, const char *topic,
                      const char *group)
{
    size_t topic_size = strlen(topic);
    for (size_t i = 0; i < self->groups_count; i++)
        if ((!group || strcmp(self->group_names[i], group) == 0) &&
            zmesh__pattern_match(self->group_patterns[i],
                                 strlen(self->group_patterns[i]), topic,
                                 topic_size))
            return self->group_names[i];
    return NULL;
}

size_t
zmesh__peer_serves_size(const zmesh__peer_t *self)
{
    return self->serves_count;
}

const char *
zmesh__peer_serve_pattern(const zmesh__peer_t *self, size_t i)
{
    return i < self->serves_count ? self->serves[i] : NULL;
}

size_t
zmesh__peer_bp_size(const zmesh__peer_t *self)
{
    return self->bp_subs_count;
}

const char *
zmesh__peer_bp_pattern(const zmesh__peer_t *self, size_t i)
{
    return i < self->bp_subs_count ? self->bp_subs[i] : NULL;
}

size_t
zmesh__peer_groups_size(const zmesh__peer_t *self)
{
    return self->groups_count;
}

const char *
zmesh__peer_group_pattern(const zmesh__peer_t *self, size_t i)
{
    return i < self->groups_count ? self->group_patterns[i] : NULL;
}

const char *
zmesh__peer_group_name(const zmesh__peer_t *self, size_t i)
{
    return i < self->groups_count ? self->group_names[i] : NULL;
}

bool
zmesh__peer_publishes_any(const zmesh__peer_t *self, char *const *patterns,
                          size_t count)
{
    for (size_t i = 0; i < self->pubs_count; i++)
        for (size_t j = 0; j < count; j++)
            if (zmesh__patterns_intersect(self->pubs[i], strlen(self->pubs[i]),
                                          patterns[j], strlen(patterns[j])))
                return true;
    return false;
}

bool
zmesh__peer_data_connected(const zmesh__peer_t *self)
{
    return self->data_connected;
}

void
zmesh__peer_set_data_connected(zmesh__peer_t *self, bool connected)
{
    self->data_connected = connected;
}

uint64_t
zmesh__peer_batch(const zmesh__peer_t *self)
{
    return self->batch;
}

void
zmesh__peer_set_batch(zmesh__peer_t *self, uint64_t batch)
{
    self->batch = batch;
}

bool
zmesh__peer_reads_tails(const zmesh__peer_t *self)
{
    return self->reads_tails;
}

void
zmesh__peer_set_reads_tails(zmesh__peer_t *self, bool reads)
{
    self->reads_tails = reads;
}

int
zmesh__peer_send_on(zsock_t *dealer, const zmesh__msg_t *msg)
{
    void *bytes;
    size_t size;
    int rc = zmesh__msg_encode(msg, &bytes, &size);
    if (rc < 0)
        return rc;
    rc = zmq_send(zsock_resolve(dealer), bytes, size, ZMQ_DONTWAIT);
    free(bytes);
    return rc < 0 ? ZMESH_EAGAIN : 0;
}

int
zmesh__peer_send(zmesh__peer_t *self, const zmesh__msg_t *msg)
{
    return zmesh__peer_send_on(self->dealer, msg);
}

/* ------------------------------------------------------------------------ */
/*  The public snapshot                                                     */

typedef struct {
    char *name;
    char *id;
    char *endpoint;
    char *data_endpoint;
    char *host;
    char *version;
    uint64_t pid;
    const char *origin;
    int64_t last_seen_ms;
    int connected;
    char **pubs;
    size_t pubs_count;
    char **subs;
    size_t subs_count;
    char **serves;
    size_t serves_count;
    zmesh__header_t *headers;
    size_t headers_count;
} s_entry_t;

struct zmesh_peer_list {
    s_entry_t *entries;
    size_t count;
};

static char **
s_strings_dup(char *const *items, size_t count)
{
    char **copy = calloc(count + 1, sizeof *copy);
    if (!copy)
        return NULL;
    for (size_t i = 0; i < count; i++) {
        copy[i] = strdup(items[i]);
        if (!copy[i]) {
            s_strings_free(copy, i);
            return NULL;
        }
    }
    return copy;
}

static void
s_entry_clear(s_entry_t *entry)
{
    free(entry->name);
    free(entry->id);
    free(entry->endpoint);
    free(entry->data_endpoint);
    free(entry->host);
    free(entry->version);
    s_strings_free(entry->pubs, entry->pubs_count);
    s_strings_free(entry->subs, entry->subs_count);
    s_strings_free(entry->serves, entry->serves_count);
    s_headers_free(entry->headers, entry->headers_count);
}

static int
s_entry_fill(s_entry_t *entry, const zmesh__peer_t *peer, int64_t now_ms)
{
    entry->name = strdup(peer->name);
    entry->id = strdup(peer->id_hex);
    entry->endpoint = strdup(peer->endpoint);
    entry->data_endpoint = strdup(zmesh__peer_data_endpoint(peer));
    entry->host = strdup(peer->host ? peer->host : "");
    entry->version = strdup(peer->version ? peer->version : "");
    entry->pid = peer->pid;
    entry->origin = peer->origin;
    entry->last_seen_ms = now_ms - peer->last_heard_ms;
    entry->connected = peer->data_connected;
    entry->pubs = s_strings_dup(peer->pubs, peer->pubs_count);
    entry->pubs_count = entry->pubs ? peer->pubs_count : 0;
    entry->subs = s_strings_dup(peer->subs, peer->subs_count);
    entry->subs_count = entry->subs ? peer->subs_count : 0;
    entry->serves = s_strings_dup(peer->serves, peer->serves_count);
    entry->serves_count = entry->serves ? peer->serves_count : 0;
    entry->headers = calloc(peer->headers_count + 1, sizeof *entry->headers);
    if (entry->headers) {
        for (size_t i = 0; i < peer->headers_count; i++) {
            entry->headers[i].key = strdup(peer->headers[i].key);
            entry->headers[i].value = strdup(peer->headers[i].value);
            entry->headers_count = i + 1;
            if (!entry->headers[i].key || !entry->headers[i].value)
                return ZMESH_ENOMEM;
        }
    }
    if (!entry->name || !entry->id || !entry->endpoint ||
        !entry->data_endpoint || !entry->host || !entry->version ||
        !entry->pubs || !entry->subs || !entry->serves || !entry->headers)
        return ZMESH_ENOMEM;
    return 0;
}

zmesh_peer_list_t *
zmesh__peer_list_new(zmesh__peer_t *const *peers, size_t count, int64_t now_ms)
{
    zmesh_peer_list_t *list = calloc(1, sizeof *list);
    if (!list)
        return NULL;
    list->entries = calloc(count + 1, sizeof *list->entries);
    if (!list->entries) {
        free(list);
        return NULL;
    }
    for (size_t i = 0; i < count; i++) {
        if (peers[i]->state != ZMESH__PEER_JOINED)
            continue;
        s_entry_t *entry = &list->entries[list->count++];
        if (s_entry_fill(entry, peers[i], now_ms) != 0) {
            zmesh_peer_list_destroy(&list);
            return NULL;
        }
    }
    return list;
}

void
zmesh_peer_list_destroy(zmesh_peer_list_t **list)
{
    if (!list || !*list)
        return;
    for (size_t i = 0; i < (*list)->count; i++)
        s_entry_clear(&(*list)->entries[i]);
    free((*list)->entries);
    free(*list);
    *list = NULL;
}

size_t
zmesh_peer_list_size(const zmesh_peer_list_t *list)
{
    return list ? list->count : 0;
}

// Accessors return "" / 0 for an index out of range rather than crash:
// they are the application's side of the API.
static const s_entry_t *
s_at(const zmesh_peer_list_t *list, size_t i)
{
    return list && i < list->count ? &list->entries[i] : NULL;
}

const char *
zmesh_peer_name(const zmesh_peer_list_t *list, size_t i)
{
    const s_entry_t *e = s_at(list, i);
    return e ? e->name : "";
}

const char *
zmesh_peer_id(const zmesh_peer_list_t *list, size_t i)
{
    const s_entry_t *e = s_at(list, i);
    return e ? e->id : "";
}

const char *
zmesh_peer_endpoint(const zmesh_peer_list_t *list, size_t i)
{
    const s_entry_t *e = s_at(list, i);
    return e ? e->endpoint : "";
}

const char *
zmesh_peer_data_endpoint(const zmesh_peer_list_t *list, size_t i)
{
    const s_entry_t *e = s_at(list, i);
    return e ? e->data_endpoint : "";
}

const char *
zmesh_peer_origin(const zmesh_peer_list_t *list, size_t i)
{
    const s_entry_t *e = s_at(list, i);
    return e ? e->origin : "";
}

int64_t
zmesh_peer_last_seen_ms(const zmesh_peer_list_t *list, size_t i)
{
    const s_entry_t *e = s_at(list, i);
    return e ? e->last_seen_ms : 0;
}

int
zmesh_peer_connected(const zmesh_peer_list_t *list, size_t i)
{
    const s_entry_t *e = s_at(list, i);
    return e ? e->connected : 0;
}

size_t
zmesh_peer_publishes_size(const zmesh_peer_list_t *list, size_t i)
{
    const s_entry_t *e = s_at(list, i);
    return e ? e->pubs_count : 0;
}

const char *
zmesh_peer_publishes(const zmesh_peer_list_t *list, size_t i, size_t j)
{
    const s_entry_t *e = s_at(list, i);
    return e && j < e->pubs_count ? e->pubs[j] : "";
}

size_t
zmesh_peer_wants_size(const zmesh_peer_list_t *list, size_t i)
{
    const s_entry_t *e = s_at(list, i);
    return e ? e->subs_count : 0;
}

const char *
zmesh_peer_wants(const zmesh_peer_list_t *list, size_t i, size_t j)
{
    const s_entry_t *e = s_at(list, i);
    return e && j < e->subs_count ? e->subs[j] : "";
}

size_t
zmesh_peer_serves_size(const zmesh_peer_list_t *list, size_t i)
{
    const s_entry_t *e = s_at(list, i);
    return e ? e->serves_count : 0;
}

const char *
zmesh_peer_serves(const zmesh_peer_list_t *list, size_t i, size_t j)
{
    const s_entry_t *e = s_at(list, i);
    return e && j < e->serves_count ? e->serves[j] : "";
}

size_t
zmesh_peer_headers_size(const zmesh_peer_list_t *list, size_t i)
{
    const s_entry_t *e = s_at(list, i);
    return e ? e->headers_count : 0;
}

const char *
zmesh_peer_header_key(const zmesh_peer_list_t *list, size_t i, size_t j)
{
    const s_entry_t *e = s_at(list, i);
    return e && j < e->headers_count ? e->headers[j].key : "";
}

const char *
zmesh_peer_header_value(const zmesh_peer_list_t *list, size_t i, size_t j)
{
    const s_entry_t *e = s_at(list, i);
    return e && j < e->headers_count ? e->headers[j].value : "";
}

const char *
zmesh_peer_host(const zmesh_peer_list_t *list, size_t i)
{
    const s_entry_t *e = s_at(list, i);
    return e ? e->host : "";
}

uint64_t
zmesh_peer_pid(const zmesh_peer_list_t *list, size_t i)
{
    const s_entry_t *e = s_at(list, i);
    return e ? e->pid : 0;
}

const char *
zmesh_peer_version(const zmesh_peer_list_t *list, size_t i)
{
    const s_entry_t *e = s_at(list, i);
    return e ? e->version : "";
}
