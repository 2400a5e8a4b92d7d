/*  agent.c - the public zmesh_agent_* API and the data path. The
    application thread owns the data sockets: it publishes straight into
    the XPUB and receives straight from the SUB, with no thread hop on any
    event (docs/threading.md has the measurements behind that choice). The
    control plane runs in the actor of control.c; this file starts it,
    forwards pattern changes to it, and acts on what it reports through the
    notify pipe: connect the SUB to a publisher, disconnect, peer joined or
    left. Frames that fail decoding are counted and dropped here.
    Counters, direct messages, publisher confirms and durable consumers
    have files of their own (agent_private.h says which).
*/
#include "agent_private.h"
#include "clock.h"
#include "codec.h"
#include "confirms.h"
#include "control.h"
#include "durable.h"
#include "log.h"
#include "repair.h"
#include "requests.h"
#include "retain.h"
#include "socket.h"
#include "streams.h"
#include "tails.h"
#include "topic.h"
#include "utf8.h"
#include "zmesh.h"

#include "beacon.h"

#include <arpa/inet.h>
#include <czmq.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define S_MAX_PEER_EVENTS 10000 /* queued for an application not reading */
#define S_AUTO_ADVERTISE_MAX 256
#define S_SERVICE_EVERY 64 /* data operations between control checks */
#define S_REPLY_TIMEOUT_MS 5000
#define S_HELD_BYTES_MAX (64 * 1024 * 1024) /* held across disconnects */
#define S_RECONNECT_MIN_MS 100
#define S_DROP_GRACE_MS 50  /* after a drop, for the last frames to land */
#define S_STREAMS_MAX 65536 /* streams whose sequence a subscriber tracks */
#define S_RECONNECT_MAX_MS 5000
#define S_RETRANSMIT_BYTES (8 * 1024 * 1024) /* default retransmit buffer */
#define S_REPAIR_TIMEOUT_MS 300              /* default wait for a repair */
#define S_REPAIR_SESSIONS 256                /* streams under repair at once */
#define S_REPAIR_HELD_BYTES (32 * 1024 * 1024) /* held while repairing */
#define S_CONFIRM_TIMEOUT_MS 10000             /* default confirm wait */
/*  Back-pressure (proto/wire.md#back-pressure): a subscriber reports its
    progress every S_CREDIT_EVERY events of a stream; a publisher lets at
    most a window of events of a stream be unconsumed by such a subscriber
    before it waits: a quarter of its XPUB's high-water mark, between
    S_CREDIT_WINDOW_MIN and S_CREDIT_WINDOW_MAX (250 under ZeroMQ's
    default of 1000). ZeroMQ's own view of its queue lags: the reading
    side reports progress every half high-water mark, and the writing
    side takes the report in only when it processes commands (s_bp_wait
    makes it, every S_CREDIT_EVERY events). So window + half the mark +
    what the credit lags must stay under the mark, or ZeroMQ drops what
    it believes does not fit. */
#define S_CREDIT_EVERY 64
#define S_CREDIT_WINDOW_MIN (2 * S_CREDIT_EVERY)
#define S_CREDIT_WINDOW_MAX 512
#define S_BP_WAIT_MS 1000
#define S_VIEW_MAX 4096 /* pairs in a BPVIEW or SERVEVIEW */

/*  One data connection of the SUB. A connection we no longer want is not
    closed at once but when the publisher closes it or at a deadline, see
    s_connection_change; one that drops while wanted is made again after a
    delay that grows while it keeps dropping, see s_on_monitor. */
typedef struct {
    size_t count;         /* peers announcing this endpoint */
    int64_t closing_at;   /* 0 while wanted */
    int64_t reconnect_at; /* 0 unless a reconnect is due */
    int64_t dropped_at;   /* when it last dropped */
    int backoff_ms;       /* the next reconnect delay */
} s_connection_t;

/*  A back-pressure subscriber's progress on one of our streams. */
typedef struct {
    uint64_t acked; /* the last event it consumed */
    bool overrun;   /* waited for in vain; not waited for until it moves */
} s_credit_t;

// Text that goes into HELLO must be what the codec accepts (UTF-8, no
// control characters), or the agent could never introduce itself.
static bool
s_text_ok(const char *text, size_t min, size_t max, bool spaces)
{
    size_t size = text ? strlen(text) : 0;
    if (size < min || size > max)
        return false;
    const uint8_t *p = (const uint8_t *)text;
    for (size_t i = 0; i < size;) {
        if (p[i] < 0x20 || p[i] == 0x7f || (!spaces && p[i] == ' '))
            return false;
        size_t n = zmesh__utf8_sequence(p + i, size - i);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

static bool
s_name_ok(const char *name)
{
    return s_text_ok(name, 1, ZMESH_NAME_MAX, false);
}

void
zmesh__agent_free_value(void **item)
{
    free(*item);
    *item = NULL;
}

// The pointer a frame between this thread and the control thread
// carries (ownership moves with it: control.h), or NULL when it is none.
static void *
s_frame_pointer(zframe_t *frame)
{
    void *pointer = NULL;
    if (frame && zframe_size(frame) == sizeof pointer)
        memcpy(&pointer, zframe_data(frame), sizeof pointer);
    return pointer;
}

static void
s_peer_event_free(void **item)
{
    zmesh__agent_peer_event_t *event = *item;
    if (event) {
        if (event->backlog)
            atomic_fetch_sub(event->backlog, event->accounted);
        free(event->name);
        free(event->reason);
        free(event->topic);
        free(event->payload);
        free(event->group);
        free(event);
    }
    *item = NULL;
}

/* ------------------------------------------------------------------------ */
/*  Lifecycle and configuration                                             */

int
zmesh_agent_new(zmesh_agent_t **agent, const char *name)
{
    if (!agent || !s_name_ok(name))
        return ZMESH_EINVAL;
    zmesh_agent_t *self = calloc(1, sizeof *self);
    if (!self)
        return ZMESH_ENOMEM;
    strcpy(self->name, name);
    strcpy(self->mesh, "default");
    self->scope = ZMESH_DISCOVERY_HOST;
    strcpy(self->group, "239.192.90.77");
    self->beacon_port = ZMESH_DEFAULT_BEACON_PORT;
    self->beacon_interval_ms = 1000;
    self->peer_timeout_ms = 5000;
    self->max_msg_size = 1024 * 1024;
    self->linger_ms = 1000;
    self->retransmit_bytes = S_RETRANSMIT_BYTES;
    self->batch_events = ZMESH__OUTBOX_EVENTS;
    self->batch_delay_ms = ZMESH__OUTBOX_DELAY_MS;
    self->repair_timeout_ms = S_REPAIR_TIMEOUT_MS;
    self->bp_wait_ms = S_BP_WAIT_MS;
    self->confirm_timeout_ms = S_CONFIRM_TIMEOUT_MS;
    self->epoll_fd = -1;
    self->now_fd = self->tick_fd = self->tail_fd = -1;
    self->streams = zhashx_new();
    self->names = zhashx_new();
    self->ready = zhashx_new();
    self->reach = zhashx_new();
    self->relays = zhashx_new();
    self->connections = zhashx_new();
    self->peer_events = zlistx_new();
    self->departed = zlistx_new();
    if (zmesh__streams_new(&self->streams_in, S_STREAMS_MAX) != 0 ||
        zmesh__tails_new(&self->tails) != 0 ||
        zmesh__topic_index_new(&self->subs) != 0 ||
        zmesh__topic_index_new(&self->pubs) != 0 ||
        zmesh__topic_index_new(&self->history) != 0 ||
        zmesh__topic_index_new(&self->group_view) != 0 ||
        zmesh__topic_index_new(&self->bp_subs) != 0 ||
        zmesh__topic_index_new(&self->serves) != 0 ||
        !(self->credits = zhashx_new()) || !self->streams || !self->names ||
        !self->ready || !self->reach || !self->relays || !self->connections ||
        !self->peer_events || !self->departed) {
        zmesh_agent_destroy(&self);
        return ZMESH_ENOMEM;
    }
    zhashx_set_destructor(self->streams, zmesh__agent_free_value);
    zhashx_set_destructor(self->credits, zmesh__agent_free_value);
    zhashx_set_destructor(self->names, zmesh__agent_free_value);
    zhashx_set_destructor(self->ready, zmesh__agent_free_value);
    zhashx_set_destructor(self->reach, zmesh__agent_free_value);
    zhashx_set_destructor(self->relays, zmesh__agent_free_value);
    zhashx_set_destructor(self->connections, zmesh__agent_free_value);
    zlistx_set_destructor(self->peer_events, s_peer_event_free);
    zlistx_set_destructor(self->departed, zmesh__agent_free_value);
    *agent = self;
    return 0;
}

/*  Frame queues: what is taken off self->msg's path for later. */

// Moves *msg to the end of the queue; false (msg untouched) when memory
// is short.
static bool
s_queue_push(zmesh__agent_queue_t *queue, zmq_msg_t *msg, bool repaired,
             bool settled)
{
    zmesh__agent_held_t *held = malloc(sizeof *held);
    if (!held)
        return false;
    zmq_msg_init(&held->msg);
    zmq_msg_move(&held->msg, msg);
    held->repaired = repaired;
    held->settled = settled;
    held->next = NULL;
    if (queue->tail)
        queue->tail->next = held;
    else
        queue->head = held;
    queue->tail = held;
    queue->bytes += zmq_msg_size(&held->msg);
    return true;
}

// Moves the oldest frame into *msg; false when the queue is empty.
static bool
s_queue_pop(zmesh__agent_queue_t *queue, zmq_msg_t *msg, bool *repaired,
            bool *settled)
{
    zmesh__agent_held_t *held = queue->head;
    if (!held)
        return false;
    queue->head = held->next;
    if (!queue->head)
        queue->tail = NULL;
    queue->bytes -= zmq_msg_size(&held->msg);
    zmq_msg_move(msg, &held->msg);
    zmq_msg_close(&held->msg);
    *repaired = held->repaired;
    *settled = held->settled;
    free(held);
    return true;
}

static void
s_queue_clear(zmesh__agent_queue_t *queue)
{
    while (queue->head) {
        zmesh__agent_held_t *held = queue->head;
        queue->head = held->next;
        zmq_msg_close(&held->msg);
        free(held);
    }
    queue->tail = NULL;
    queue->bytes = 0;
}

static void s_live_remove(zmesh_agent_t *self);
static void s_reply_discard(const char *command, zframe_t *payload);

static void
s_stop(zmesh_agent_t *self)
{
    // Events published last go out before the actor says BYE for us.
    if (self->outbox)
        zmesh__outbox_drain(self->outbox);
    // What the application acknowledged reaches the relay before we leave.
    if (self->started && self->durable)
        zmesh__durable_flush(self->durable, zmesh__clock_ms());
    s_live_remove(self);
    if (self->msg_live) {
        zmq_msg_close(&self->msg);
        zmq_msg_close(&self->batch_msg);
        self->msg_live = false;
    }
    s_peer_event_free((void **)&self->peer_event);
    s_queue_clear(&self->held);
    s_queue_clear(&self->settled);
    zmesh__repair_destroy(&self->repair);
    zmesh__requests_destroy(&self->requests);
    // A reply that came after its query timed out carries memory only we
    // can free; zactor_destroy would drop the message with it.
    if (self->actor) {
        zmq_pollitem_t item = {zsock_resolve(self->actor), 0, ZMQ_POLLIN, 0};
        while (zmq_poll(&item, 1, 0) > 0) {
            char *command = NULL, *number = NULL;
            zframe_t *frame = NULL;
            if (zsock_recv(self->actor, "ssf", &command, &number, &frame) != 0)
                break;
            if (command && frame)
                s_reply_discard(command, frame);
            zstr_free(&command);
            zstr_free(&number);
            zframe_destroy(&frame);
        }
    }
    // The actor says BYE to every peer before it returns.
    zactor_destroy(&self->actor);
    // Notifications not taken yet may carry memory only we free.
    if (self->notify) {
        zmq_pollitem_t item = {zsock_resolve(self->notify), 0, ZMQ_POLLIN, 0};
        while (zmq_poll(&item, 1, 0) > 0) {
            zmsg_t *msg = zmsg_recv(self->notify);
            if (!msg)
                break;
            bool groups = zframe_streq(zmsg_first(msg), "GROUPS");
            bool stats = zframe_streq(zmsg_first(msg), "STATS");
            void *pointer =
                groups || stats ? s_frame_pointer(zmsg_last(msg)) : NULL;
            if (groups)
                zmesh__patterns_destroy((zmesh__patterns_t **)&pointer);
            else if (stats)
                zmesh_counters_destroy((zmesh_counters_t **)&pointer);
            zmsg_destroy(&msg);
        }
    }
    zmesh__outbox_destroy(&self->outbox);   // the actor used it until now
    zmesh__retain_destroy(&self->retained); // and this too
    // libzmq's I/O thread writes monitor events with a blocking send: were
    // the SUB still monitored when our reader is gone, its teardown events
    // would block that thread, and with it every socket of the process.
    if (self->sub_handle && self->monitor)
        zmq_socket_monitor(self->sub_handle, NULL, 0);
    if (self->xpub)
        zsock_set_linger(self->xpub, self->linger_ms);
    zsock_destroy(&self->xpub);
    zsock_destroy(&self->sub);
    self->xpub_handle = self->sub_handle = NULL;
    zsock_destroy(&self->notify);
    zsock_destroy(&self->monitor);
    if (self->epoll_fd >= 0)
        close(self->epoll_fd);
    self->epoll_fd = -1;
    if (self->now_fd >= 0)
        close(self->now_fd);
    if (self->tick_fd >= 0)
        close(self->tick_fd);
    if (self->tail_fd >= 0)
        close(self->tail_fd);
    self->now_fd = self->tick_fd = self->tail_fd = -1;
    self->tail_armed_us = 0;
    self->now_armed = self->tick_armed = false;
    self->started = false;
}

void
zmesh_agent_destroy(zmesh_agent_t **agent)
{
    if (!agent || !*agent)
        return;
    zmesh_agent_t *self = *agent;
    s_stop(self);
    for (size_t i = 0; i < self->seeds_count; i++)
        free(self->seeds[i]);
    for (size_t i = 0; i < self->history_size; i++)
        free(self->history_patterns[i]);
    for (size_t i = 0; i < self->headers_count; i++) {
        free(self->headers[i].key);
        free(self->headers[i].value);
    }
    zmesh__topic_index_destroy(&self->subs);
    zmesh__topic_index_destroy(&self->pubs);
    zmesh__topic_index_destroy(&self->history);
    zmesh__topic_index_destroy(&self->group_view);
    zmesh__topic_index_destroy(&self->bp_subs);
    zmesh__topic_index_destroy(&self->serves);
    zhashx_destroy(&self->credits);
    zmesh__agent_view_clear(&self->bp_view);
    zmesh__agent_view_clear(&self->serve_view);
    free(self->rr_buf);
    for (size_t i = 0; i < self->group_subs; i++) {
        free(self->group_patterns[i]);
        free(self->group_names[i]);
    }
    zmesh__streams_destroy(&self->streams_in);
    zmesh__tails_destroy(&self->tails);
    zhashx_destroy(&self->streams);
    zhashx_destroy(&self->names);
    zhashx_destroy(&self->ready);
    zhashx_destroy(&self->reach);
    zhashx_destroy(&self->relays);
    zhashx_destroy(&self->connections);
    s_peer_event_free((void **)&self->peer_event);
    zlistx_destroy(&self->peer_events);
    zlistx_destroy(&self->departed);
    zmesh__confirms_destroy(&self->confirms);
    zmesh__agent_outcomes_clear(self);
    zmesh__durable_destroy(&self->durable);
    free(self);
    *agent = NULL;
}

#define S_CONFIGURABLE(self)                                                   \
    do {                                                                       \
        if (!(self))                                                           \
            return ZMESH_EINVAL;                                               \
        if ((self)->started)                                                   \
            return ZMESH_ESTATE;                                               \
    } while (0)

int
zmesh_agent_set_mesh(zmesh_agent_t *self, const char *mesh)
{
    S_CONFIGURABLE(self);
    if (!s_name_ok(mesh))
        return ZMESH_EINVAL;
    strcpy(self->mesh, mesh);
    return 0;
}

int
zmesh_agent_set_discovery(zmesh_agent_t *self, zmesh_discovery_t scope,
                          const char *interface_name)
{
    S_CONFIGURABLE(self);
    if (scope != ZMESH_DISCOVERY_HOST && scope != ZMESH_DISCOVERY_LAN &&
        scope != ZMESH_DISCOVERY_MULTICAST && scope != ZMESH_DISCOVERY_NONE)
        return ZMESH_EINVAL;
    bool needs_iface =
        scope == ZMESH_DISCOVERY_LAN || scope == ZMESH_DISCOVERY_MULTICAST;
    size_t size = interface_name ? strlen(interface_name) : 0;
    if ((needs_iface && size == 0) || size >= sizeof self->iface)
        return ZMESH_EINVAL;
    self->scope = scope;
    strcpy(self->iface, scope == ZMESH_DISCOVERY_HOST || !interface_name
                            ? ""
                            : interface_name);
    return 0;
}

int
zmesh_agent_set_multicast_group(zmesh_agent_t *self, const char *group)
{
    S_CONFIGURABLE(self);
    struct in_addr addr;
    if (!group || inet_pton(AF_INET, group, &addr) != 1 ||
        (ntohl(addr.s_addr) >> 28) != 0xe)
        return ZMESH_EINVAL;
    strcpy(self->group, group);
    return 0;
}

int
zmesh_agent_set_beacon_port(zmesh_agent_t *self, int port)
{
    S_CONFIGURABLE(self);
    if (port < 1 || port > 65535)
        return ZMESH_EINVAL;
    self->beacon_port = port;
    return 0;
}

int
zmesh_agent_set_beacon_interval(zmesh_agent_t *self, int interval_ms)
{
    S_CONFIGURABLE(self);
    if (interval_ms < 10 || interval_ms > 60000)
        return ZMESH_EINVAL;
    self->beacon_interval_ms = interval_ms;
    if (self->peer_timeout_ms < 3 * interval_ms)
        self->peer_timeout_ms = 3 * interval_ms;
    return 0;
}

int
zmesh_agent_set_peer_timeout(zmesh_agent_t *self, int timeout_ms)
{
    S_CONFIGURABLE(self);
    if (timeout_ms < 3 * self->beacon_interval_ms || timeout_ms > 600000)
        return ZMESH_EINVAL;
    self->peer_timeout_ms = timeout_ms;
    return 0;
}

int
zmesh_agent_add_seed(zmesh_agent_t *self, const char *endpoint)
{
    S_CONFIGURABLE(self);
    if (!endpoint || strncmp(endpoint, "tcp://", 6) != 0 ||
        strlen(endpoint) > 255 || !strrchr(endpoint + 6, ':'))
        return ZMESH_EINVAL;
    if (self->seeds_count == ZMESH__AGENT_MAX_SEEDS)
        return ZMESH_EINVAL;
    char *copy = strdup(endpoint);
    if (!copy)
        return ZMESH_ENOMEM;
    self->seeds[self->seeds_count++] = copy;
    return 0;
}

int
zmesh_agent_set_header(zmesh_agent_t *self, const char *key, const char *value)
{
    S_CONFIGURABLE(self);
    if (!s_text_ok(key, 1, ZMESH_HEADER_KEY_MAX, false) ||
        !s_text_ok(value, 0, ZMESH_HEADER_VALUE_MAX, true))
        return ZMESH_EINVAL;
    char *copy = strdup(value);
    if (!copy)
        return ZMESH_ENOMEM;
    for (size_t i = 0; i < self->headers_count; i++)
        if (strcmp(self->headers[i].key, key) == 0) {
            free(self->headers[i].value);
            self->headers[i].value = copy;
            return 0;
        }
    char *key_copy = strdup(key);
    if (self->headers_count == ZMESH__AGENT_MAX_HEADERS || !key_copy) {
        free(copy);
        free(key_copy);
        return key_copy ? ZMESH_EINVAL : ZMESH_ENOMEM;
    }
    self->headers[self->headers_count].key = key_copy;
    self->headers[self->headers_count].value = copy;
    self->headers_count++;
    return 0;
}

int
zmesh_agent_set_max_msg_size(zmesh_agent_t *self, size_t bytes)
{
    S_CONFIGURABLE(self);
    if (bytes < 4096 || bytes > (size_t)INT32_MAX)
        return ZMESH_EINVAL;
    self->max_msg_size = bytes;
    return 0;
}

int
zmesh_agent_set_linger(zmesh_agent_t *self, int linger_ms)
{
    S_CONFIGURABLE(self);
    if (linger_ms < 0)
        return ZMESH_EINVAL;
    self->linger_ms = linger_ms;
    return 0;
}

int
zmesh_agent_set_retransmit_buffer(zmesh_agent_t *self, size_t bytes)
{
    S_CONFIGURABLE(self);
    self->retransmit_bytes = bytes;
    return 0;
}

int
zmesh_agent_set_batching(zmesh_agent_t *self, size_t max_events,
                         int max_delay_ms)
{
    S_CONFIGURABLE(self);
    if (max_events > ZMESH__OUTBOX_EVENTS_MAX || max_delay_ms < 1 ||
        max_delay_ms > ZMESH__OUTBOX_DELAY_MAX_MS)
        return ZMESH_EINVAL;
    self->batch_events = max_events;
    self->batch_delay_ms = max_delay_ms;
    return 0;
}

int
zmesh_agent_set_repair_timeout(zmesh_agent_t *self, int timeout_ms)
{
    S_CONFIGURABLE(self);
    if (timeout_ms < 0 || timeout_ms > 60000)
        return ZMESH_EINVAL;
    self->repair_timeout_ms = timeout_ms;
    return 0;
}

int
zmesh_agent_set_history(zmesh_agent_t *self, const char *pattern, size_t count)
{
    S_CONFIGURABLE(self);
    if (!pattern)
        return ZMESH_EINVAL;
    int rc = zmesh__pattern_check(pattern, strlen(pattern));
    if (rc != 0)
        return rc;
    if (count > ZMESH__RETAIN_HISTORY_MAX)
        return ZMESH_EINVAL;
    size_t i = 0;
    while (i < self->history_size &&
           strcmp(self->history_patterns[i], pattern) != 0)
        i++;
    if (i == self->history_size) {
        if (i == ZMESH__AGENT_HISTORY_MAX)
            return ZMESH_EINVAL;
        if (!(self->history_patterns[i] = strdup(pattern)))
            return ZMESH_ENOMEM;
        self->history_size++;
    }
    self->history_counts[i] = count;
    return 0;
}

const char *
zmesh_agent_name(const zmesh_agent_t *self)
{
    return self ? self->name : "";
}

const char *
zmesh_agent_id(const zmesh_agent_t *self)
{
    return self && self->started ? self->id_hex : "";
}

const char *
zmesh_agent_endpoint(const zmesh_agent_t *self)
{
    return self && self->started ? self->endpoint : "";
}

/* ------------------------------------------------------------------------ */
/*  Subscriptions on the SUB socket                                         */

static void
s_filter_set(zmesh_agent_t *self, const char *pattern, bool on)
{
    char filter[ZMESH_TOPIC_MAX + 2];
    size_t size =
        zmesh__pattern_filter(pattern, strlen(pattern), filter, sizeof filter);
    zmq_setsockopt(self->sub_handle, on ? ZMQ_SUBSCRIBE : ZMQ_UNSUBSCRIBE,
                   filter, size);
}

// proto/wire.md#sync-token: 0xFF, our id, generation big-endian. The new
// token goes after the filters it vouches for; the old one is dropped.
static void
s_token_update(zmesh_agent_t *self)
{
    uint8_t token[ZMESH__AGENT_TOKEN_SIZE];
    token[0] = 0xff;
    memcpy(token + 1, self->id, ZMESH__ID_SIZE);
    for (int i = 0; i < 8; i++)
        token[1 + ZMESH__ID_SIZE + i] =
            (uint8_t)(self->subs_generation >> (56 - 8 * i));
    zmq_setsockopt(self->sub_handle, ZMQ_SUBSCRIBE, token, sizeof token);
    if (self->token[0] == 0xff)
        zmq_setsockopt(self->sub_handle, ZMQ_UNSUBSCRIBE, self->token,
                       sizeof self->token);
    memcpy(self->token, token, sizeof token);
}

// A copy of an index's patterns for the control thread. NULL when out of
// memory.
static zmesh__patterns_t *
s_patterns_of(const zmesh__topic_index_t *index, uint64_t generation)
{
    size_t count = zmesh__topic_index_size(index);
    char **items = calloc(count + 1, sizeof *items);
    if (!items)
        return NULL;
    for (size_t i = 0; i < count; i++)
        items[i] = (char *)zmesh__topic_index_at(index, i);
    zmesh__patterns_t *patterns = zmesh__patterns_new(items, count, generation);
    free(items);
    return patterns;
}

// Hands the control thread a new set of patterns (SUBS, PUBS, HISTORY,
// BPSUBS, SERVES: control.h); before start there is no control thread,
// and it gets them all at start.
static int
s_send_index(zmesh_agent_t *self, const char *command,
             const zmesh__topic_index_t *index, uint64_t generation)
{
    if (!self->started)
        return 0;
    zmesh__patterns_t *patterns = s_patterns_of(index, generation);
    if (!patterns)
        return ZMESH_ENOMEM;
    zsock_send(self->actor, "sp", command, patterns);
    return 0;
}

static int
s_send_patterns(zmesh_agent_t *self, bool subs)
{
    return s_send_index(self, subs ? "SUBS" : "PUBS",
                        subs ? self->subs : self->pubs, self->subs_generation);
}

static int
s_subscription_change(zmesh_agent_t *self, const char *pattern, bool on)
{
    self->cached_topic_size = 0;
    if (!self->started)
        return 0;
    s_filter_set(self, pattern, on);
    self->subs_generation++;
    s_token_update(self);
    return s_send_patterns(self, true);
}

int
zmesh_agent_subscribe(zmesh_agent_t *self, const char *pattern)
{
    if (!self || !pattern)
        return ZMESH_EINVAL;
    if (zmesh__pattern_check(pattern, strlen(pattern)) != 0)
        return ZMESH_EPATTERN;
    int rc = zmesh__topic_index_add(self->subs, pattern);
    if (rc <= 0)
        return rc;
    return s_subscription_change(self, pattern, true);
}

// Tells the control thread our queue-group subscriptions (it advertises
// them).
static int
s_send_group_subs(zmesh_agent_t *self)
{
    if (!self->started)
        return 0;
    zmesh__patterns_t *patterns =
        zmesh__patterns_new(self->group_patterns, self->group_subs, 0);
    zmesh__patterns_t *names =
        zmesh__patterns_new(self->group_names, self->group_subs, 0);
    if (!patterns || !names ||
        zsock_send(self->actor, "spp", "GROUPSUBS", patterns, names) != 0) {
        zmesh__patterns_destroy(&patterns);
        zmesh__patterns_destroy(&names);
        return ZMESH_ENOMEM;
    }
    return 0;
}

static size_t
s_group_sub_find(zmesh_agent_t *self, const char *pattern, const char *group)
{
    size_t i = 0;
    while (i < self->group_subs &&
           (strcmp(self->group_patterns[i], pattern) != 0 ||
            strcmp(self->group_names[i], group) != 0))
        i++;
    return i;
}

int
zmesh_agent_subscribe_group(zmesh_agent_t *self, const char *pattern,
                            const char *group)
{
    if (!self || !pattern || !group || !s_name_ok(group))
        return ZMESH_EINVAL;
    if (zmesh__pattern_check(pattern, strlen(pattern)) != 0)
        return ZMESH_EPATTERN;
    size_t i = s_group_sub_find(self, pattern, group);
    if (i < self->group_subs) {
        self->group_counts[i]++;
        return 0;
    }
    if (i == ZMESH__AGENT_GROUP_SUBS_MAX)
        return ZMESH_EINVAL;
    self->group_patterns[i] = strdup(pattern);
    self->group_names[i] = strdup(group);
    if (!self->group_patterns[i] || !self->group_names[i]) {
        free(self->group_patterns[i]);
        free(self->group_names[i]);
        return ZMESH_ENOMEM;
    }
    self->group_counts[i] = 1;
    self->group_subs++;
    return s_send_group_subs(self);
}

int
zmesh_agent_unsubscribe_group(zmesh_agent_t *self, const char *pattern,
                              const char *group)
{
    if (!self || !pattern || !group)
        return ZMESH_EINVAL;
    size_t i = s_group_sub_find(self, pattern, group);
    if (i == self->group_subs)
        return ZMESH_ENOTFOUND;
    if (--self->group_counts[i] > 0)
        return 0;
    free(self->group_patterns[i]);
    free(self->group_names[i]);
    self->group_subs--;
    self->group_patterns[i] = self->group_patterns[self->group_subs];
    self->group_names[i] = self->group_names[self->group_subs];
    self->group_counts[i] = self->group_counts[self->group_subs];
    return s_send_group_subs(self);
}

// Updates the served patterns, here and at the control thread.
static int
s_serve_change(zmesh_agent_t *self, const char *pattern, bool on)
{
    if (!self || !pattern)
        return ZMESH_EINVAL;
    if (zmesh__pattern_check(pattern, strlen(pattern)) != 0)
        return ZMESH_EPATTERN;
    // Requests for us on the data plane first: a pattern in the index is
    // one the next call takes as told already.
    int rc = on && self->started ? zmesh__agent_rr_serve(self) : 0;
    if (rc != 0)
        return rc;
    rc = on ? zmesh__topic_index_add(self->serves, pattern)
            : zmesh__topic_index_remove(self->serves, pattern);
    if (rc <= 0)
        return rc;
    return s_send_index(self, "SERVES", self->serves, 0);
}

int
zmesh_agent_serve(zmesh_agent_t *self, const char *pattern)
{
    return s_serve_change(self, pattern, true);
}

int
zmesh_agent_unserve(zmesh_agent_t *self, const char *pattern)
{
    return s_serve_change(self, pattern, false);
}

int
zmesh_agent_subscribe_backpressure(zmesh_agent_t *self, const char *pattern)
{
    int rc = zmesh_agent_subscribe(self, pattern);
    if (rc != 0)
        return rc;
    rc = zmesh__topic_index_add(self->bp_subs, pattern);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return 0;
    zmesh__streams_clear_marks(self->streams_in);
    return s_send_index(self, "BPSUBS", self->bp_subs, 0);
}

int
zmesh_agent_set_backpressure_wait(zmesh_agent_t *self, int wait_ms)
{
    S_CONFIGURABLE(self);
    if (wait_ms < 0 || wait_ms > 60000)
        return ZMESH_EINVAL;
    self->bp_wait_ms = wait_ms;
    return 0;
}

int
zmesh_agent_subscribe_history(zmesh_agent_t *self, const char *pattern)
{
    int rc = zmesh_agent_subscribe(self, pattern);
    if (rc != 0)
        return rc;
    rc = zmesh__topic_index_add(self->history, pattern);
    if (rc < 0)
        return rc;
    return rc == 1 ? s_send_index(self, "HISTORY", self->history, 0) : 0;
}

static bool
s_still_wanted(void *arg, const char *topic, size_t topic_size)
{
    zmesh_agent_t *self = arg;
    return zmesh__topic_index_match(self->subs, topic, topic_size);
}

// Drops every reference to `pattern`; true if it was there.
static bool
s_drop_all(zmesh__topic_index_t *index, const char *pattern)
{
    int rc = zmesh__topic_index_remove(index, pattern);
    for (int i = 0; rc == 0 && i < 1000000; i++)
        rc = zmesh__topic_index_remove(index, pattern);
    return rc == 1;
}

int
zmesh_agent_unsubscribe(zmesh_agent_t *self, const char *pattern)
{
    if (!self || !pattern)
        return ZMESH_EINVAL;
    if (zmesh__pattern_check(pattern, strlen(pattern)) != 0)
        return ZMESH_EPATTERN;
    if (streq(pattern, self->confirm_topic) ||
        streq(pattern, self->rr_request_topic) ||
        streq(pattern, self->rr_reply_topic))
        return ZMESH_ERESERVED; // the agent's own: confirms, requests, replies
    int rc = zmesh__topic_index_remove(self->subs, pattern);
    if (rc <= 0)
        return rc;
    // A history or back-pressure subscription ends with the pattern's last
    // subscription, however many times it was asked for.
    // (Out of memory here only delays the change to the next one.)
    if (s_drop_all(self->history, pattern))
        s_send_index(self, "HISTORY", self->history, 0);
    if (s_drop_all(self->bp_subs, pattern)) {
        zmesh__streams_clear_marks(self->streams_in);
        s_send_index(self, "BPSUBS", self->bp_subs, 0);
    }
    zmesh__streams_retain(self->streams_in, s_still_wanted, self);
    return s_subscription_change(self, pattern, false);
}

int
zmesh_agent_advertise(zmesh_agent_t *self, const char *pattern)
{
    if (pattern && pattern[0] == '$' &&
        zmesh__pattern_check(pattern, strlen(pattern)) == 0)
        return ZMESH_ERESERVED;
    return zmesh__agent_advertise_reserved(self, pattern);
}

int
zmesh__agent_advertise_reserved(zmesh_agent_t *self, const char *pattern)
{
    if (!self || !pattern)
        return ZMESH_EINVAL;
    if (zmesh__pattern_check(pattern, strlen(pattern)) != 0)
        return ZMESH_EPATTERN;
    int rc = zmesh__topic_index_add(self->pubs, pattern);
    if (rc <= 0 || !self->started)
        return rc < 0 ? rc : 0;
    return s_send_patterns(self, false);
}

/* ------------------------------------------------------------------------ */
/*  Start                                                                   */

/*  Started agents, so that an application that exits without destroying
    one does not crash: czmq's exit handler closes every socket, the
    control thread's included, under the running thread, and czmq's actor
    wrapper then aborts. Our handler, registered after czmq's, runs first
    and stops each agent properly (peers even get their BYE). */
static pthread_mutex_t s_live_lock = PTHREAD_MUTEX_INITIALIZER;
static zmesh_agent_t *s_live;

static void
s_live_remove(zmesh_agent_t *self)
{
    pthread_mutex_lock(&s_live_lock);
    for (zmesh_agent_t **at = &s_live; *at; at = &(*at)->live_next)
        if (*at == self) {
            *at = self->live_next;
            self->live_next = NULL;
            break;
        }
    pthread_mutex_unlock(&s_live_lock);
}

/*  The agents stopped at exit stay listed here: the application still
    owns them (it may even destroy them in a later exit handler), and a
    leak checker running at exit sees them as reachable, as they are. */
static zmesh_agent_t *s_stopped_at_exit;

static void
s_at_exit(void)
{
    pthread_mutex_lock(&s_live_lock);
    s_stopped_at_exit = s_live;
    s_live = NULL;
    pthread_mutex_unlock(&s_live_lock);
    for (zmesh_agent_t *agent = s_stopped_at_exit; agent;
         agent = agent->live_next)
        s_stop(agent); // not in s_live: keeps live_next
}

// Once per process: the library installs no signal handlers (czmq would
// install SIGINT and SIGTERM handlers on first use), czmq's own log lines
// would otherwise go to stdout, and czmq's default limit of 1024 sockets
// is lifted to what the system allows.
static void
s_library_init(void)
{
    zsys_handler_set(NULL);
    zsys_set_logstream(NULL);
    zsys_set_max_sockets(0);
    zsys_init();
    atexit(s_at_exit);
}

static zmesh__control_config_t *
s_control_config(zmesh_agent_t *self, const char *bind_address,
                 const char *notify_endpoint)
{
    zmesh__control_config_t *cfg = calloc(1, sizeof *cfg);
    if (!cfg)
        return NULL;
    strcpy(cfg->name, self->name);
    strcpy(cfg->mesh, self->mesh);
    cfg->scope = self->scope;
    strcpy(cfg->iface, self->iface);
    strcpy(cfg->group, self->group);
    strcpy(cfg->bind_address, bind_address);
    cfg->beacon_port = self->beacon_port;
    cfg->beacon_interval_ms = self->beacon_interval_ms;
    cfg->peer_timeout_ms = self->peer_timeout_ms;
    cfg->max_msg_size = self->max_msg_size;
    memcpy(cfg->id, self->id, ZMESH__ID_SIZE);
    strcpy(cfg->data_endpoint, self->data_endpoint);
    strcpy(cfg->notify_endpoint, notify_endpoint);
    cfg->retained = self->retained;
    cfg->outbox = self->outbox;
    cfg->backlog = &self->backlog;
    cfg->seeds = calloc(self->seeds_count + 1, sizeof *cfg->seeds);
    cfg->headers = calloc(self->headers_count + 1, sizeof *cfg->headers);
    bool ok = cfg->seeds && cfg->headers;
    for (size_t i = 0; ok && i < self->seeds_count; i++) {
        cfg->seeds[i] = strdup(self->seeds[i]);
        cfg->seeds_count = i + 1;
        ok = cfg->seeds[i] != NULL;
    }
    for (size_t i = 0; ok && i < self->headers_count; i++) {
        cfg->headers[i].key = strdup(self->headers[i].key);
        cfg->headers[i].value = strdup(self->headers[i].value);
        cfg->headers_count = i + 1;
        ok = cfg->headers[i].key && cfg->headers[i].value;
    }
    if (ok) {
        cfg->subs = s_patterns_of(self->subs, self->subs_generation);
        cfg->pubs = s_patterns_of(self->pubs, self->subs_generation);
        cfg->history = s_patterns_of(self->history, 0);
        cfg->group_patterns =
            zmesh__patterns_new(self->group_patterns, self->group_subs, 0);
        cfg->group_names =
            zmesh__patterns_new(self->group_names, self->group_subs, 0);
        cfg->bp_subs = s_patterns_of(self->bp_subs, 0);
        cfg->serves = s_patterns_of(self->serves, 0);
        ok = cfg->subs && cfg->pubs && cfg->history && cfg->group_patterns &&
             cfg->group_names && cfg->bp_subs && cfg->serves;
    }
    if (!ok)
        zmesh__control_config_destroy(&cfg); // never reached the actor
    return cfg;
}

static int
s_epoll_add(zmesh_agent_t *self, void *handle)
{
    int fd;
    size_t size = sizeof fd;
    if (zmq_getsockopt(handle, ZMQ_FD, &fd, &size) != 0)
        return ZMESH_ESYS;
    struct epoll_event ev = {.events = EPOLLIN};
    ev.data.fd = fd;
    return epoll_ctl(self->epoll_fd, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0
                                                                  : ZMESH_ESYS;
}

static int
s_start(zmesh_agent_t *self)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, s_library_init);
    zuuid_t *uuid = zuuid_new();
    if (!uuid)
        return ZMESH_ENOMEM;
    memcpy(self->id, zuuid_data(uuid), ZMESH__ID_SIZE);
    zuuid_destroy(&uuid);
    zmesh__id_to_hex(self->id, self->id_hex);
    // Requests for us on the data plane: under this incarnation's id (a
    // start that failed before had another).
    if (self->rr_request_topic[0]) {
        zmesh__topic_index_remove(self->subs, self->rr_request_topic);
        self->rr_request_topic[0] = '\0';
    }
    if (zmesh__topic_index_size(self->serves) > 0) {
        int rr = zmesh__agent_rr_serve(self);
        if (rr != 0)
            return rr;
    }

    char address[INET_ADDRSTRLEN] = "127.0.0.1";
    if (self->scope != ZMESH_DISCOVERY_HOST && self->iface[0] != '\0') {
        char broadcast[INET_ADDRSTRLEN];
        if (zmesh__iface_resolve(self->iface, address, broadcast) != 0) {
            zmesh__log(ZMESH_LOG_ERROR,
                       "interface '%s' does not exist or has no IPv4 address",
                       self->iface);
            return ZMESH_EADDR;
        }
    }
    zmesh__socket_opts_t opts = {self->max_msg_size, self->linger_ms};
    self->xpub = zmesh__socket_new(ZMQ_XPUB, &opts);
    self->sub = zmesh__socket_new(ZMQ_SUB, &opts);
    self->notify = zmesh__socket_new(ZMQ_PAIR, &opts);
    if (!self->xpub || !self->sub || !self->notify)
        return ZMESH_ESYS;
    self->xpub_handle = zsock_resolve(self->xpub);
    self->sub_handle = zsock_resolve(self->sub);
    int hwm = 0;
    size_t hwm_size = sizeof hwm;
    if (zmq_getsockopt(self->xpub_handle, ZMQ_SNDHWM, &hwm, &hwm_size) != 0 ||
        hwm <= 0)
        hwm = 4 * S_CREDIT_WINDOW_MAX; // 0 is no limit
    self->credit_window = (uint64_t)hwm / 4;
    if (self->credit_window < S_CREDIT_WINDOW_MIN)
        self->credit_window = S_CREDIT_WINDOW_MIN;
    if (self->credit_window > S_CREDIT_WINDOW_MAX)
        self->credit_window = S_CREDIT_WINDOW_MAX;
    int rc = zmesh__socket_bind_tcp(self->xpub, address, self->data_endpoint,
                                    sizeof self->data_endpoint);
    if (rc != 0)
        return rc;
    int unlimited = 0;
    zmq_setsockopt(zsock_resolve(self->notify), ZMQ_RCVHWM, &unlimited,
                   sizeof unlimited);
    char notify_endpoint[64];
    snprintf(notify_endpoint, sizeof notify_endpoint,
             "inproc://zmesh-notify-%s", self->id_hex);
    if (zmq_bind(zsock_resolve(self->notify), notify_endpoint) != 0)
        return ZMESH_ESYS;

    // libzmq does not reconnect after a protocol error, such as a frame
    // over ZMQ_MAXMSGSIZE: the monitor tells us, and s_on_monitor
    // reconnects, so one bad frame cannot cut us off a publisher for good.
    char monitor_endpoint[64];
    snprintf(monitor_endpoint, sizeof monitor_endpoint,
             "inproc://zmesh-monitor-%s", self->id_hex);
    self->monitor = zmesh__socket_new(ZMQ_PAIR, &opts);
    if (!self->monitor)
        return ZMESH_ESYS;
    // libzmq's I/O thread sends monitor events with a blocking send: with
    // a high-water mark, an application busy elsewhere while connections
    // drop would stop every socket of the process. Unlimited; the queue
    // grows only with drops, which reconnect backoff keeps slow.
    zmq_setsockopt(zsock_resolve(self->monitor), ZMQ_RCVHWM, &unlimited,
                   sizeof unlimited);
    if (zmq_socket_monitor(self->sub_handle, monitor_endpoint,
                           ZMQ_EVENT_DISCONNECTED) != 0 ||
        zmq_connect(zsock_resolve(self->monitor), monitor_endpoint) != 0)
        return ZMESH_ESYS;

    self->service_countdown = S_SERVICE_EVERY;
    zmq_msg_init(&self->msg);
    zmq_msg_init(&self->batch_msg);
    self->batch.left = 0;
    self->msg_live = true;
    self->subs_generation++;
    for (size_t i = 0; i < zmesh__topic_index_size(self->subs); i++)
        s_filter_set(self, zmesh__topic_index_at(self->subs, i), true);
    s_token_update(self);

    if (zmesh__repair_new(&self->repair, S_REPAIR_SESSIONS,
                          S_REPAIR_HELD_BYTES) != 0 ||
        zmesh__requests_new(&self->requests, ZMESH__AGENT_REQUESTS_MAX) != 0 ||
        zmesh__retain_new(&self->retained, self->retransmit_bytes) != 0)
        return ZMESH_ENOMEM;
    rc = zmesh__outbox_new(&self->outbox, self->xpub_handle, self->retained,
                           self->id);
    if (rc != 0)
        return rc;
    zmesh__outbox_configure(self->outbox, self->batch_events,
                            self->batch_delay_ms);
    // Checked when set (zmesh_agent_set_history): only memory can fail.
    for (size_t i = 0; i < self->history_size; i++) {
        if (self->history_counts[i] == 0)
            continue;
        rc = zmesh__retain_set_history(
            self->retained, self->history_patterns[i], self->history_counts[i]);
        if (rc != 0)
            return rc;
    }

    zmesh__control_config_t *cfg =
        s_control_config(self, address, notify_endpoint);
    if (!cfg)
        return ZMESH_ENOMEM;
    self->actor = zactor_new(zmesh__control_actor, cfg);
    if (!self->actor)
        return ZMESH_ESYS;
    char *command = NULL;
    int start_rc = ZMESH_ESYS;
    if (zsock_recv(self->actor, "si", &command, &start_rc) != 0 || !command ||
        strcmp(command, "START") != 0)
        start_rc = ZMESH_ESYS;
    zstr_free(&command);
    if (start_rc != 0)
        return start_rc;
    char *endpoint = zstr_recv(self->actor);
    if (!endpoint)
        return ZMESH_ESYS;
    snprintf(self->endpoint, sizeof self->endpoint, "%s", endpoint);
    zstr_free(&endpoint);

    self->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    self->now_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    self->tick_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    self->tail_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    struct epoll_event now = {.events = EPOLLIN}, tick = {.events = EPOLLIN},
                       tail = {.events = EPOLLIN}, sent = {.events = EPOLLIN};
    now.data.fd = self->now_fd;
    tick.data.fd = self->tick_fd;
    tail.data.fd = self->tail_fd;
    sent.data.fd = zmesh__outbox_app_fd(self->outbox);
    if (self->epoll_fd < 0 || self->now_fd < 0 || self->tick_fd < 0 ||
        self->tail_fd < 0 ||
        epoll_ctl(self->epoll_fd, EPOLL_CTL_ADD, self->now_fd, &now) != 0 ||
        epoll_ctl(self->epoll_fd, EPOLL_CTL_ADD, self->tick_fd, &tick) != 0 ||
        epoll_ctl(self->epoll_fd, EPOLL_CTL_ADD, self->tail_fd, &tail) != 0 ||
        epoll_ctl(self->epoll_fd, EPOLL_CTL_ADD, sent.data.fd, &sent) != 0 ||
        s_epoll_add(self, self->sub_handle) != 0 ||
        s_epoll_add(self, self->xpub_handle) != 0 ||
        s_epoll_add(self, zsock_resolve(self->notify)) != 0 ||
        s_epoll_add(self, zsock_resolve(self->monitor)) != 0)
        return ZMESH_ESYS;
    return 0;
}

int
zmesh_agent_start(zmesh_agent_t *self)
{
    if (!self)
        return ZMESH_EINVAL;
    if (self->started)
        return ZMESH_ESTATE;
    int rc = s_start(self);
    if (rc != 0) {
        s_stop(self);
        memset(self->token, 0, sizeof self->token);
        return rc;
    }
    self->started = true;
    pthread_mutex_lock(&s_live_lock);
    self->live_next = s_live;
    s_live = self;
    pthread_mutex_unlock(&s_live_lock);
    zmesh__log(ZMESH_LOG_INFO,
               "agent %s (%s) started in mesh '%s': control %s, data %s",
               self->name, self->id_hex, self->mesh, self->endpoint,
               self->data_endpoint);
    return 0;
}

/* ------------------------------------------------------------------------ */
/*  What the control thread and the XPUB tell this thread                  */

// Queues an event for recv. Replies are not bounded here: each request
// in flight (a bounded number) ends in exactly one.
zmesh__agent_peer_event_t *
zmesh__agent_event_push(zmesh_agent_t *self, zmesh_event_type_t type,
                        const char *id, const char *name, const char *reason)
{
    if (type != ZMESH_EVENT_REPLY &&
        zlistx_size(self->peer_events) >= S_MAX_PEER_EVENTS) {
        self->peer_events_dropped++;
        zmesh__log_limited(&self->backlog_log, ZMESH__AGENT_LOG_INTERVAL_MS,
                           "peer event dropped: the application has not "
                           "read %d queued events",
                           S_MAX_PEER_EVENTS);
        return NULL;
    }
    zmesh__agent_peer_event_t *event = calloc(1, sizeof *event);
    if (!event)
        return NULL;
    event->type = type;
    snprintf(event->id, sizeof event->id, "%s", id);
    event->name = strdup(name);
    event->reason = strdup(reason);
    if (!event->name || !event->reason ||
        !zlistx_add_end(self->peer_events, event)) {
        s_peer_event_free((void **)&event);
        return NULL;
    }
    return event;
}

static void
s_names_set(zmesh_agent_t *self, const char *id, const char *name)
{
    char *copy = strdup(name);
    if (copy)
        zhashx_update(self->names, id, copy);
    self->cached_name_valid = false;
    // A publisher first named by a relay (zmesh__agent_durable_name) that turns
    // out to be alive: its name must not be trimmed with the departed.
    for (const char *gone = zlistx_first(self->departed); gone;
         gone = zlistx_next(self->departed))
        if (streq(gone, id)) {
            zlistx_delete(self->departed, zlistx_cursor(self->departed));
            break;
        }
}

// A departed peer's name is kept a while: its last events may still sit
// in the SUB queue behind the LEFT notice.
static void
s_names_retire(zmesh_agent_t *self, const char *id)
{
    char *copy = strdup(id);
    if (copy)
        zlistx_add_end(self->departed, copy);
    // Its streams are forgotten only now, long after it left: its last
    // events (and a gap before them) may still be on their way, and an
    // id is never reused, so keeping them a while costs only memory.
    while (zlistx_size(self->departed) > 256) {
        const char *oldest = zlistx_first(self->departed);
        uint8_t oldest_id[ZMESH__ID_SIZE];
        if (zmesh__id_from_hex(oldest, oldest_id) == 0)
            zmesh__streams_forget(self->streams_in, oldest_id);
        zhashx_delete(self->names, oldest);
        zlistx_delete(self->departed, zlistx_cursor(self->departed));
    }
    self->cached_name_valid = false;
}

const char *
zmesh__agent_peer_name(zmesh_agent_t *self, const char *id)
{
    const char *name = zhashx_lookup(self->names, id);
    return name ? name : "";
}

// A publisher's name as a relay knows it, for events read from the relay
// after the publisher left. A peer's own word wins; one we never met is
// kept like a departed peer's name, so the table stays bounded.
void
zmesh__agent_durable_name(void *arg, const char *id, const char *name)
{
    zmesh_agent_t *self = arg;
    if (zhashx_lookup(self->names, id))
        return;
    s_names_set(self, id, name);
    s_names_retire(self, id);
}

// zmq_disconnect throws away what the SUB has received from that
// connection but we have not read yet: the last events of a publisher
// that just left. So before any disconnect, everything the SUB holds is
// read into our own queue, which recv serves first, in order.
static void
s_hold_pending(zmesh_agent_t *self)
{
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    while (zmq_msg_recv(&msg, self->sub_handle, ZMQ_DONTWAIT) >= 0) {
        if (self->held.bytes + zmq_msg_size(&msg) > S_HELD_BYTES_MAX ||
            !s_queue_push(&self->held, &msg, false, false)) {
            // The application has not read for a long while: losing these
            // is counted and said, never silent.
            self->frames_dropped++;
            zmesh__log_limited(&self->backlog_log, ZMESH__AGENT_LOG_INTERVAL_MS,
                               "event dropped: %d MiB already held for an "
                               "application that does not read",
                               S_HELD_BYTES_MAX >> 20);
        }
    }
    zmq_msg_close(&msg);
}

// Connections with a close or a reconnect due are counted in self->timers,
// so s_service looks at the table only when one is.
static void
s_connection_arm(zmesh_agent_t *self, s_connection_t *conn, int64_t *slot,
                 int64_t when)
{
    bool was = conn->closing_at || conn->reconnect_at;
    *slot = when;
    bool is = conn->closing_at || conn->reconnect_at;
    if (is && !was)
        self->timers++;
    else if (was && !is)
        self->timers--;
}

static void
s_connection_close(zmesh_agent_t *self, const char *endpoint)
{
    s_connection_t *conn = zhashx_lookup(self->connections, endpoint);
    if (!conn)
        return;
    s_connection_arm(self, conn, &conn->closing_at, 0);
    s_connection_arm(self, conn, &conn->reconnect_at, 0);
    s_hold_pending(self);
    zmq_disconnect(self->sub_handle, endpoint);
    zhashx_delete(self->connections, endpoint);
}

// A publisher that leaves says BYE on the control plane, which can
// overtake its last events on the data connection. So a connection we no
// longer want stays open until the publisher closes it (the monitor's
// DISCONNECTED: everything it sent has arrived) or, for a publisher that
// stays up but no longer has what we want, until a deadline.
static void
s_connection_change(zmesh_agent_t *self, const char *endpoint, bool up)
{
    s_connection_t *conn = zhashx_lookup(self->connections, endpoint);
    if (up) {
        if (!conn) {
            conn = calloc(1, sizeof *conn);
            if (!conn)
                return;
            conn->backoff_ms = S_RECONNECT_MIN_MS;
            zhashx_insert(self->connections, endpoint, conn);
            if (zmq_connect(self->sub_handle, endpoint) != 0)
                zmesh__log(ZMESH_LOG_WARNING, "cannot connect to %s: %s",
                           endpoint, zmq_strerror(zmq_errno()));
        } else // wanted again before it closed
            s_connection_arm(self, conn, &conn->closing_at, 0);
        conn->count++;
    } else if (conn && conn->count > 0 && --conn->count == 0)
        s_connection_arm(self, conn, &conn->closing_at,
                         zmesh__clock_ms() + self->peer_timeout_ms);
}

static void
s_connections_expire(zmesh_agent_t *self)
{
    if (self->timers == 0)
        return;
    int64_t now = zmesh__clock_ms();
    zlistx_t *due = zlistx_new();
    if (!due)
        return;
    for (s_connection_t *conn = zhashx_first(self->connections); conn;
         conn = zhashx_next(self->connections)) {
        const char *endpoint = zhashx_cursor(self->connections);
        if (conn->closing_at && now >= conn->closing_at)
            zlistx_add_end(due, (void *)endpoint);
        else if (conn->reconnect_at && now >= conn->reconnect_at) {
            s_connection_arm(self, conn, &conn->reconnect_at, 0);
            if (conn->closing_at)
                continue; // no longer wanted: its close is due instead
            self->data_reconnects++;
            s_hold_pending(self);
            zmq_disconnect(self->sub_handle, endpoint);
            zmq_connect(self->sub_handle, endpoint);
        }
    }
    for (const char *endpoint = zlistx_first(due); endpoint;
         endpoint = zlistx_next(due)) {
        char copy[256];
        snprintf(copy, sizeof copy, "%s", endpoint);
        s_connection_close(self, copy);
    }
    zlistx_destroy(&due);
}

static void s_repair_release(zmesh_agent_t *self, bool all);

// A REPAIR answered one of our NAKs (or the control thread answered it
// for a publisher that is gone).
static void
s_on_repair(zmesh_agent_t *self, zmsg_t *msg)
{
    zframe_t *header = zmsg_pop(msg);
    zmesh__repair_note_t note;
    if (!header || zframe_size(header) != sizeof note) {
        zframe_destroy(&header);
        return;
    }
    memcpy(&note, zframe_data(header), sizeof note);
    zframe_destroy(&header);
    size_t count = zmsg_size(msg);
    void **frames = calloc(count + 1, sizeof *frames);
    size_t *sizes = calloc(count + 1, sizeof *sizes);
    if (frames && sizes) {
        size_t i = 0;
        for (zframe_t *f = zmsg_first(msg); f && i < count;
             f = zmsg_next(msg), i++) {
            frames[i] = zframe_data(f);
            sizes[i] = zframe_size(f);
        }
        zmesh__repair_answer(self->repair, note.sender, note.req, frames, sizes,
                             count, note.done, note.vouched,
                             &self->repairs_rejected);
    }
    free(frames);
    free(sizes);
    // What the sessions keep they count against their own limit.
    size_t total = 0;
    for (zframe_t *f = zmsg_first(msg); f; f = zmsg_next(msg))
        total += zframe_size(f);
    atomic_fetch_sub(&self->backlog, total);
    s_repair_release(self, false);
}

// Whether peer `id` wants back-pressure from us at all.
static bool
s_bp_wanted(zmesh_agent_t *self, const char *id)
{
    for (size_t i = 0; i < self->bp_view.size; i++)
        if (streq(self->bp_view.ids[i], id))
            return true;
    return false;
}

void
zmesh__agent_view_clear(zmesh__agent_view_t *view)
{
    for (size_t i = 0; i < view->size; i++)
        free(view->patterns[i]);
    free(view->patterns);
    free(view->ids);
    view->patterns = NULL;
    view->ids = NULL;
    view->size = 0;
}

void
zmesh__agent_view_set(zmesh__agent_view_t *view, zmsg_t *msg)
{
    zframe_t *what = zmsg_pop(msg);
    zframe_destroy(&what);
    size_t pairs = zmsg_size(msg) / 2;
    if (pairs > S_VIEW_MAX)
        pairs = S_VIEW_MAX;
    zmesh__agent_view_clear(view);
    if (pairs > 0) {
        view->ids = calloc(pairs, sizeof *view->ids);
        view->patterns = calloc(pairs, sizeof *view->patterns);
        if (!view->ids || !view->patterns) {
            zmesh__agent_view_clear(view);
            return;
        }
    }
    for (size_t i = 0; i < pairs; i++) {
        char *id = zmsg_popstr(msg);
        char *pattern = zmsg_popstr(msg);
        if (id && pattern && strlen(id) == 32) {
            memcpy(view->ids[view->size], id, 33);
            view->patterns[view->size++] = pattern;
            pattern = NULL;
        }
        zstr_free(&id);
        zstr_free(&pattern);
    }
}

// Which peers want what with back-pressure: "BPVIEW", then id, pattern
// pairs. Progress of peers no longer in it is forgotten.
static void
s_on_bp_view(zmesh_agent_t *self, zmsg_t *msg)
{
    zmesh__agent_view_set(&self->bp_view, msg);
    zlistx_t *gone = zlistx_new();
    for (void *c = zhashx_first(self->credits); c && gone;
         c = zhashx_next(self->credits)) {
        const char *key = zhashx_cursor(self->credits);
        bool kept = false;
        for (size_t i = 0; i < self->bp_view.size && !kept; i++)
            kept = strncmp(key, self->bp_view.ids[i], 32) == 0;
        if (!kept)
            zlistx_add_end(gone, (void *)key);
    }
    for (const char *key = gone ? zlistx_first(gone) : NULL; key;
         key = zlistx_next(gone)) {
        char copy[32 + ZMESH_TOPIC_MAX + 1];
        snprintf(copy, sizeof copy, "%s", key);
        zhashx_delete(self->credits, copy);
    }
    zlistx_destroy(&gone);
}

static void
s_bp_refresh(zmesh_agent_t *self)
{
    int events;
    size_t size = sizeof events;
    zmq_getsockopt(self->xpub_handle, ZMQ_EVENTS, &events, &size);
}

// Before publishing event `seq` of `topic`: every back-pressure subscriber
// of it may be at most a window of events behind. One that is further
// is waited for, up to the back-pressure wait; one that does not catch up
// by then is marked overrun and not waited for again until it reports
// progress (so a dead-slow one costs one wait, not one per event), and
// what it then misses it gets as a gap and repairs.
// Whether a back-pressure subscriber's pattern matches `topic`.
static bool
s_bp_counts(zmesh_agent_t *self, const char *topic, size_t topic_size)
{
    for (size_t i = 0; i < self->bp_view.size; i++) {
        const char *pattern = self->bp_view.patterns[i];
        if (zmesh__pattern_match(pattern, strlen(pattern), topic, topic_size))
            return true;
    }
    return false;
}

static void
s_bp_wait(zmesh_agent_t *self, const char *topic, size_t topic_size,
          uint64_t seq)
{
    for (size_t i = 0; i < self->bp_view.size; i++) {
        const char *pattern = self->bp_view.patterns[i];
        if (!zmesh__pattern_match(pattern, strlen(pattern), topic, topic_size))
            continue;
        char key[32 + ZMESH_TOPIC_MAX + 1];
        snprintf(key, sizeof key, "%s%.*s", self->bp_view.ids[i],
                 (int)topic_size, topic);
        // A subscriber is waited for once it is connected (its sync token
        // reached our XPUB) or has said where it is. Counting from the
        // first event published after its token, not from its first
        // CREDIT: that takes a control round trip, in which a publisher
        // at full speed would overrun ZeroMQ's queues before it ever
        // waited.
        s_credit_t *credit = zhashx_lookup(self->credits, key);
        if (!credit && zhashx_lookup(self->ready, self->bp_view.ids[i]) &&
            (credit = calloc(1, sizeof *credit)) != NULL) {
            credit->acked = seq - 1;
            if (zhashx_insert(self->credits, key, credit) != 0) {
                free(credit);
                credit = NULL;
            }
        }
        if (!credit || credit->overrun)
            continue;
        // ZeroMQ takes in its reader's progress reports only when it
        // processes commands, which a busy sender does once a millisecond
        // or so: until then the queue looks fuller than it is, and what
        // does not seem to fit is dropped. Asking for ZMQ_EVENTS makes it.
        if (++self->bp_sends % S_CREDIT_EVERY == 0)
            s_bp_refresh(self);
        if (seq - credit->acked <= self->credit_window)
            continue;
        self->bp_waits++;
        int64_t deadline = zmesh__clock_ms() + self->bp_wait_ms;
        for (;;) {
            // The view or the table may change while we drain: look again.
            credit = zhashx_lookup(self->credits, key);
            if (!credit || seq - credit->acked <= self->credit_window)
                break;
            int64_t left = deadline - zmesh__clock_ms();
            if (left <= 0) {
                credit->overrun = true;
                self->bp_timeouts++;
                zmesh__log_limited(&self->backlog_log,
                                   ZMESH__AGENT_LOG_INTERVAL_MS,
                                   "a back-pressure subscriber of %.*s is "
                                   "%llu events behind after %d ms: no "
                                   "longer waiting for it",
                                   (int)topic_size, topic,
                                   (unsigned long long)(seq - credit->acked),
                                   self->bp_wait_ms);
                break;
            }
            zmq_pollitem_t item = {zsock_resolve(self->notify), 0, ZMQ_POLLIN,
                                   0};
            if (zmq_poll(&item, 1, left < 10 ? (long)left : 10) > 0)
                zmesh__agent_drain_notify(self);
        }
        s_bp_refresh(self);
        if (i >= self->bp_view.size)
            break; // the view shrank meanwhile
    }
}

// The patterns peers take in queue groups changed.
static void
s_on_group_view(zmesh_agent_t *self, zmsg_t *msg)
{
    zframe_t *what = zmsg_pop(msg);
    zframe_t *frame = zmsg_pop(msg);
    zmesh__patterns_t *patterns = s_frame_pointer(frame);
    zmesh__topic_index_t *view = NULL;
    if (patterns && zmesh__topic_index_new(&view) == 0) {
        for (size_t i = 0; i < patterns->count; i++)
            zmesh__topic_index_add(view, patterns->items[i]);
        zmesh__topic_index_destroy(&self->group_view);
        self->group_view = view;
    }
    zmesh__patterns_destroy(&patterns);
    zframe_destroy(&what);
    zframe_destroy(&frame);
}

// An event for us as a member of a queue group: "DELIVER", publisher id,
// req, group, redelivered, frame. It waits with the other non-data events
// and is acknowledged when the application takes it (s_pop_peer_event).
static void
s_on_delivery(zmesh_agent_t *self, zmsg_t *msg)
{
    char *what = zmsg_popstr(msg);
    char *id = zmsg_popstr(msg);
    char *req = zmsg_popstr(msg);
    char *group = zmsg_popstr(msg);
    char *again = zmsg_popstr(msg);
    zframe_t *frame = zmsg_pop(msg);
    size_t accounted = frame ? zframe_size(frame) : 0; // control.h backlog
    zmesh__frame_t decoded;
    uint8_t sender[ZMESH__ID_SIZE];
    // Only the publisher's own events: a peer cannot hand us another's.
    if (id && req && group && again && frame &&
        zmesh__id_from_hex(id, sender) == 0 &&
        zmesh__frame_decode(zframe_data(frame), zframe_size(frame), &decoded) ==
            0 &&
        memcmp(decoded.publisher, sender, ZMESH__ID_SIZE) == 0) {
        char *topic = strndup(decoded.topic, decoded.topic_size);
        void *payload = malloc(decoded.payload_size + 1);
        char *group_copy = strdup(group);
        // Pushed as a reply so the peer-event limit does not apply: the
        // publisher sends at most its credit of unacknowledged events.
        zmesh__agent_peer_event_t *event =
            topic && payload && group_copy
                ? zmesh__agent_event_push(self, ZMESH_EVENT_REPLY, id,
                                          zmesh__agent_peer_name(self, id), "")
                : NULL;
        if (event) {
            event->type = ZMESH_EVENT_MESSAGE;
            event->topic = topic;
            memcpy(payload, decoded.payload, decoded.payload_size);
            event->payload = payload;
            event->payload_size = decoded.payload_size;
            event->req = strtoull(req, NULL, 10);
            event->group = group_copy;
            event->redelivered = streq(again, "1");
            event->sequence = decoded.sequence;
            event->timestamp_us = decoded.timestamp_us;
            event->backlog = &self->backlog;
            event->accounted = accounted; // given back when it is freed
            accounted = 0;
        } else {
            free(topic);
            free(payload);
            free(group_copy);
        }
    }
    atomic_fetch_sub(&self->backlog, accounted);
    zstr_free(&what);
    zstr_free(&id);
    zstr_free(&req);
    zstr_free(&group);
    zstr_free(&again);
    zframe_destroy(&frame);
}

// A peer's answer to our STATS question: kept if it is the one awaited.
static void
s_on_stats_answer(zmesh_agent_t *self, zmsg_t *msg)
{
    char *what = zmsg_popstr(msg);
    char *id = zmsg_popstr(msg);
    char *req = zmsg_popstr(msg);
    zframe_t *frame = zmsg_pop(msg);
    zmesh_counters_t *counters = s_frame_pointer(frame);
    if (req && self->stats_wait != 0 &&
        strtoull(req, NULL, 10) == self->stats_wait && !self->stats_answer) {
        self->stats_answer = counters;
        counters = NULL;
    }
    zmesh_counters_destroy(&counters); // late, or not ours
    zstr_free(&what);
    zstr_free(&id);
    zstr_free(&req);
    zframe_destroy(&frame);
}

static void
s_on_notify(zmesh_agent_t *self, zmsg_t *msg)
{
    if (zframe_streq(zmsg_first(msg), "REPAIR")) {
        zframe_t *what = zmsg_pop(msg);
        zframe_destroy(&what);
        s_on_repair(self, msg);
        return;
    }
    if (zframe_streq(zmsg_first(msg), "DIRECT") ||
        zframe_streq(zmsg_first(msg), "REPLY")) {
        zmesh__agent_on_direct(self, msg);
        return;
    }
    if (zframe_streq(zmsg_first(msg), "STATS")) {
        s_on_stats_answer(self, msg);
        return;
    }
    if (zframe_streq(zmsg_first(msg), "GROUPS")) {
        s_on_group_view(self, msg);
        return;
    }
    if (zframe_streq(zmsg_first(msg), "DELIVER")) {
        s_on_delivery(self, msg);
        return;
    }
    if (zframe_streq(zmsg_first(msg), "BPVIEW")) {
        s_on_bp_view(self, msg);
        return;
    }
    if (zframe_streq(zmsg_first(msg), "SERVEVIEW")) {
        zmesh__agent_view_set(&self->serve_view, msg);
        return;
    }
    char *what = zmsg_popstr(msg);
    char *a = zmsg_popstr(msg);
    char *b = zmsg_popstr(msg);
    char *c = zmsg_popstr(msg);
    if (!what || !a)
        ;
    else if (streq(what, "CONNECT"))
        s_connection_change(self, a, true);
    else if (streq(what, "DISCONNECT"))
        s_connection_change(self, a, false);
    else if (streq(what, "JOINED") && b && c) {
        s_names_set(self, a, b);
        zmesh__agent_event_push(self, ZMESH_EVENT_PEER_JOINED, a, b, c);
    } else if (streq(what, "HISTORY") && b && c) {
        // Live events of that publisher wait for its history.
        uint8_t id[ZMESH__ID_SIZE];
        int64_t wait =
            2 * (int64_t)(self->repair_timeout_ms > 0 ? self->repair_timeout_ms
                                                      : S_REPAIR_TIMEOUT_MS);
        if (zmesh__id_from_hex(a, id) == 0)
            zmesh__repair_history_open(self->repair, id, c,
                                       strtoull(b, NULL, 10),
                                       zmesh__clock_ms() + wait);
    } else if (streq(what, "CREDIT") && b && c) {
        // A back-pressure subscriber's progress on one of our streams.
        char key[32 + ZMESH_TOPIC_MAX + 1];
        snprintf(key, sizeof key, "%s%s", a, b);
        // Only for a stream we publish, and no further than we did: the
        // table stays bounded by our topics, and a made-up sequence
        // cannot wrap the arithmetic in s_bp_wait.
        zmesh__pubstream_t *published = zhashx_lookup(self->streams, b);
        uint64_t claimed = strtoull(c, NULL, 10);
        s_credit_t *credit = zhashx_lookup(self->credits, key);
        if (!published || claimed > published->sequence)
            credit = NULL;
        else if (!credit && s_bp_wanted(self, a) &&
                 (credit = calloc(1, sizeof *credit)) != NULL &&
                 zhashx_insert(self->credits, key, credit) != 0) {
            free(credit);
            credit = NULL;
        }
        if (credit && claimed > credit->acked) {
            credit->acked = claimed;
            credit->overrun = false;
        }
    } else if (streq(what, "STATSQ") && b) {
        // A peer asks for our counters (mesh-tap peers, for one).
        zmesh_counters_t *counters = NULL;
        if (zmesh__agent_counters_build(self, &counters) == 0 &&
            zsock_send(self->actor, "sssp", "STATSA", a, b, counters) != 0)
            zmesh_counters_destroy(&counters);
    } else if (streq(what, "LEFT") && b && c) {
        uint8_t id[ZMESH__ID_SIZE];
        if (zmesh__id_from_hex(a, id) == 0) {
            zmesh__repair_abandon(self->repair, id);
            zmesh__retain_unmark(self->retained, id);
            // Its requests end as gone, but not before a reply it sent on
            // the data plane as it left has had time to come in.
            zmesh__requests_peer_left(self->requests, id,
                                      zmesh__clock_ms() + S_DROP_GRACE_MS);
        }
        s_names_retire(self, a);
        zmesh__agent_serve_view_forget(self, a);
        zhashx_delete(self->ready, a);
        zhashx_delete(self->reach, a);
        zhashx_delete(self->relays, a);
        zmesh__agent_event_push(self, ZMESH_EVENT_PEER_LEFT, a, b, c);
    }
    zstr_free(&what);
    zstr_free(&a);
    zstr_free(&b);
    zstr_free(&c);
}

// Subscription messages on the XPUB: we only care about sync tokens
// (proto/wire.md#sync-token); topic filters are ZeroMQ's business.
static void
s_on_subscription(zmesh_agent_t *self, const uint8_t *data, size_t size)
{
    if (size != 1 + ZMESH__AGENT_TOKEN_SIZE || data[1] != 0xff ||
        (data[0] != 0 && data[0] != 1))
        return;
    char id[33];
    zmesh__id_to_hex(data + 2, id);
    uint64_t generation = 0;
    for (int i = 0; i < 8; i++)
        generation = generation << 8 | data[2 + ZMESH__ID_SIZE + i];
    uint64_t *known = zhashx_lookup(self->ready, id);
    if (data[0] == 1) {
        // From here on that subscriber gets what we publish: a slow
        // joiner's NAK is answered from this mark (proto/wire.md#nak).
        // Each new generation of its subscriptions moves the mark on, so a
        // topic it wants again after an unsubscribe does not get back
        // what it had (the cost: wire.md#nak, the join mark).
        zmesh__retain_mark(self->retained, data + 2);
        if (!known) {
            known = calloc(1, sizeof *known);
            if (!known)
                return;
            zhashx_insert(self->ready, id, known);
        }
        if (generation > *known)
            *known = generation;
    } else if (known && *known == generation)
        zhashx_delete(self->ready, id); // that subscriber went away
}

// A data connection we still want was dropped: by the publisher going
// away (libzmq reconnects by itself then, and connecting again is
// harmless), or by libzmq after a protocol error such as an oversized
// frame, after which it would never reconnect.
static void
s_on_monitor(zmesh_agent_t *self, zmsg_t *msg)
{
    zframe_t *event = zmsg_first(msg);
    char *endpoint = NULL;
    zframe_t *address = zmsg_next(msg);
    if (!event || zframe_size(event) < 2 || !address)
        return;
    endpoint = zframe_strdup(address);
    s_connection_t *conn =
        endpoint ? zhashx_lookup(self->connections, endpoint) : NULL;
    // libzmq reports the drop before it hands over the last frames it
    // decoded from that connection, so nothing is closed here: the close
    // or reconnect comes after a grace period, in s_connections_expire,
    // once those frames are in the SUB's queue to be held.
    int64_t grace = zmesh__clock_ms() + S_DROP_GRACE_MS;
    if (conn && conn->closing_at) {
        if (conn->closing_at > grace) // the publisher is done
            s_connection_arm(self, conn, &conn->closing_at, grace);
    } else if (conn && !conn->reconnect_at) {
        // Made again after a delay, not at once: an endpoint that accepts
        // and drops connections must not turn into a storm of them. The
        // delay doubles while the connection keeps dropping.
        int64_t now = zmesh__clock_ms();
        if (conn->dropped_at == 0 ||
            now - conn->dropped_at > 10 * S_RECONNECT_MAX_MS)
            conn->backoff_ms = S_RECONNECT_MIN_MS;
        conn->dropped_at = now;
        zmesh__log_limited(&self->reconnect_log, ZMESH__AGENT_LOG_INTERVAL_MS,
                           "data connection to %s dropped (publisher gone, "
                           "or it sent a frame over the %zu-byte limit): "
                           "reconnecting in %d ms",
                           endpoint, self->max_msg_size, conn->backoff_ms);
        s_connection_arm(self, conn, &conn->reconnect_at,
                         now + conn->backoff_ms);
        conn->backoff_ms = conn->backoff_ms * 2 > S_RECONNECT_MAX_MS
                               ? S_RECONNECT_MAX_MS
                               : conn->backoff_ms * 2;
    }
    free(endpoint);
}

// Drains the notify pipe and the XPUB's subscription messages, bounded so
// a flood cannot keep the application thread here.
// Reads up to `max` waiting messages from `sock` without blocking and
// hands each to `on`: the bound keeps a flood from holding this thread.
static void
s_drain(zmesh_agent_t *self, zsock_t *sock, int max,
        void (*on)(zmesh_agent_t *, zmsg_t *))
{
    void *handle = zsock_resolve(sock);
    for (int i = 0; i < max; i++) {
        int events = 0;
        size_t size = sizeof events;
        zmq_getsockopt(handle, ZMQ_EVENTS, &events, &size);
        if (!(events & ZMQ_POLLIN))
            break;
        zmsg_t *msg = zmsg_recv(sock);
        if (!msg)
            break;
        on(self, msg);
        zmsg_destroy(&msg);
    }
}

void
zmesh__agent_drain_notify(zmesh_agent_t *self)
{
    s_drain(self, self->notify, 256, s_on_notify);
}

static void
s_drain_monitor(zmesh_agent_t *self)
{
    s_drain(self, self->monitor, 64, s_on_monitor);
}

static void
s_drain_subscriptions(zmesh_agent_t *self)
{
    // Under the outbox's lock: the control thread may be sending a batch
    // the application left (outbox.h).
    zmesh__outbox_lock(self->outbox);
    for (int i = 0; i < 1024; i++) {
        uint8_t buf[64];
        int n = zmq_recv(self->xpub_handle, buf, sizeof buf, ZMQ_DONTWAIT);
        if (n < 0)
            break;
        s_on_subscription(self, buf, (size_t)n);
    }
    zmesh__outbox_unlock(self->outbox);
}

// The sockets' descriptors in zmesh_agent_fd's epoll set tell of new
// input only. Work the agent has already taken in (peer events drained
// from the notify pipe during a publish, frames held across a
// disconnect, the message after a gap) would leave an application that
// waits on the fd stranded, so an eventfd in the set is made readable for
// it; and while a timer (a connection's, a repair's, a request's, a
// confirm's, a durable consumer's) may come due, a timerfd in the set
// fires every S_DROP_GRACE_MS. Each is touched only when what it should
// say changes, so a busy stream costs no system call; and only when the
// application may wait on the fd next: after a zmesh_agent_recv that
// returned nothing (one that returned an event is called again, see
// zmesh_agent_fd) or another call that took input in. The timer is
// periodic rather than set for each wait: setting a timer is dear on a
// VM, and done per event it cost a confirming publisher a third of its
// time.
void
zmesh__agent_wake_update(zmesh_agent_t *self)
{
    if (self->now_fd < 0)
        return;
    bool now = zlistx_size(self->peer_events) > 0 || self->outcomes_count > 0 ||
               self->held.head || self->settled.head || self->has_stashed;
    bool tick = self->timers > 0 || zmesh__repair_sessions(self->repair) > 0 ||
                zmesh__requests_size(self->requests) > 0 ||
                zmesh__durable_count(self->durable) > 0 ||
                (self->confirms && zmesh__confirms_size(self->confirms) > 0);
    if (now && !self->now_armed) {
        uint64_t one = 1;
        if (write(self->now_fd, &one, sizeof one) == sizeof one)
            self->now_armed = true;
    }
    if (tick != self->tick_armed) {
        struct itimerspec when = {{0, 0}, {0, 0}};
        if (tick) {
            when.it_value.tv_nsec = S_DROP_GRACE_MS * 1000000L;
            when.it_interval = when.it_value;
            self->tick_due_ms = zmesh__clock_ms() + S_DROP_GRACE_MS;
        }
        if (timerfd_settime(self->tick_fd, 0, &when, NULL) == 0)
            self->tick_armed = tick;
    }
}

// Quiets the fd for what recv is about to look at anyway.
static void
s_wake_consume(zmesh_agent_t *self)
{
    zmesh__outbox_woken(self->outbox); // recv looks at the XPUB anyway
    if (self->tail_armed_us != 0 && zmesh__clock_ms() >= self->tail_fire_ms) {
        // Fired, or about to (a one-shot timer stays readable until
        // read): recv sends the tails that are due and sets it for the
        // next. Not fired yet (it is up to a ms early): read later.
        uint64_t fired;
        if (read(self->tail_fd, &fired, sizeof fired) == sizeof fired)
            self->tail_armed_us = 0;
    }
    uint64_t count;
    if (self->now_armed) {
        self->now_armed = false;
        ssize_t n = read(self->now_fd, &count, sizeof count);
        (void)n; // a readable eventfd reads; if not, it was quiet already
    }
    if (self->tick_armed && zmesh__clock_ms() >= self->tick_due_ms) {
        // Fired (else spare the read); the next expiry is a period on.
        if (read(self->tick_fd, &count, sizeof count) == sizeof count)
            for (int64_t now = zmesh__clock_ms(); self->tick_due_ms <= now;)
                self->tick_due_ms += S_DROP_GRACE_MS;
    }
}

// Drains the notify pipe, the monitor and the XPUB's subscription
// messages, each bounded so a flood cannot keep the application thread
// here, and runs the connection timers.

static void
s_service(zmesh_agent_t *self)
{
    self->service_countdown = S_SERVICE_EVERY;
    s_connections_expire(self);
    zmesh__agent_drain_notify(self);
    s_drain_monitor(self);
    s_drain_subscriptions(self);
    zmesh__agent_timers_run(self);
}

/* ------------------------------------------------------------------------ */
/*  Publishing                                                              */

// Makes sure peers know this agent publishes `topic` (valid): a topic no
// advertised pattern covers is advertised by itself; past
// S_AUTO_ADVERTISE_MAX such topics the agent advertises ">" instead, so a
// service that makes up topics (orders.<id>.created) cannot grow HELLO
// without bound.
static void
s_advertise_topic(zmesh_agent_t *self, const char *topic, size_t size)
{
    if (zmesh__topic_index_match(self->pubs, topic, size))
        return; // once ">" is advertised, always
    const char *pattern = topic;
    if (self->auto_advertised++ == S_AUTO_ADVERTISE_MAX) {
        zmesh__log(ZMESH_LOG_WARNING,
                   "more than %d topics published without an advertised "
                   "pattern: advertising '>'; call zmesh_agent_advertise "
                   "with a pattern instead",
                   S_AUTO_ADVERTISE_MAX);
        pattern = ">";
    }
    if (zmesh__topic_index_add(self->pubs, pattern) == 1)
        s_send_patterns(self, false);
}

// Every topic gets its own sequence, from its first publish, which also
// advertises the topic if need be.
static zmesh__pubstream_t *
s_stream_new(zmesh_agent_t *self, const char *topic, size_t size, bool reserved,
             int *rc)
{
    *rc = zmesh__topic_check(topic, size);
    if (*rc == ZMESH_ERESERVED && reserved)
        *rc = 0;
    if (*rc != 0)
        return NULL;
    s_advertise_topic(self, topic, size);
    zmesh__pubstream_t *stream = zmesh__tails_stream_new(topic, size);
    if (!stream || zhashx_insert(self->streams, topic, stream) != 0) {
        free(stream);
        *rc = ZMESH_ENOMEM;
        return NULL;
    }
    return stream;
}

// The tail frames' schedule's time: the wall clock, read anyway for each
// publish, held where it was while the wall clock is set back, so that
// the schedule's queues stay in order (tails.h); a step back delays tail
// frames by as much, no more.
static int64_t
s_tails_clock(zmesh_agent_t *self, int64_t wall_us)
{
    if (wall_us > self->tails_clock_us)
        self->tails_clock_us = wall_us;
    return self->tails_clock_us;
}

// An application that waits on zmesh_agent_fd is woken when a tail frame
// is due: tail_fd is set for the earliest, when that moves earlier than
// it is set for (a quiet stream publishes again) or it fired, never per
// event.
// The schedule is on the wall clock (s_tails_clock), as the publishes it
// follows are stamped; the timer and the test that it fired
// (s_wake_consume) are on the monotonic one, so a wall clock set back
// cannot leave the fd readable with nobody to read it.
static void
s_tails_arm(zmesh_agent_t *self)
{
    int64_t due = zmesh__tails_next(self->tails);
    // Set early enough already (or nothing is due): left alone. An early
    // wake finds nothing due and sets it again (s_tails_due); setting a
    // timer is a system call, which a busy publisher must not pay often.
    if (self->tail_fd < 0 || due == 0 ||
        (self->tail_armed_us != 0 && self->tail_armed_us <= due))
        return;
    struct itimerspec when = {{0, 0}, {0, 0}};
    int64_t wait_us = due - s_tails_clock(self, zmesh__wall_clock_us());
    if (wait_us < 1)
        wait_us = 1; // 0 would disarm it
    when.it_value.tv_sec = wait_us / 1000000;
    when.it_value.tv_nsec = (long)(wait_us % 1000000) * 1000;
    // Read before the timer starts, so that the time it has fired by is
    // never later than it fires (a fired timer keeps the fd readable until
    // it is read), and at most a ms earlier (a read then finds nothing).
    int64_t start_ms = zmesh__clock_ms();
    if (timerfd_settime(self->tail_fd, 0, &when, NULL) == 0) {
        self->tail_armed_us = due;
        self->tail_fire_ms = start_ms + wait_us / 1000;
    }
}

typedef struct {
    zmesh_agent_t *agent;
    int64_t now_us; /* the wall clock, for the frames' timestamp */
} s_tail_ctx_t;

// One tail frame (proto/wire.md#tail-frame): the stream's topic and last
// sequence, nil for a payload. Like an event it goes to the subscribers
// whose filters match; unlike one it is not kept for repairs.
static void
s_tail_send(void *arg, const zmesh__pubstream_t *stream)
{
    s_tail_ctx_t *ctx = arg;
    zmesh_agent_t *self = ctx->agent;
    size_t size = zmesh__frame_size_flags(stream->topic_size, stream->sequence,
                                          ctx->now_us, ZMESH__FRAME_TAIL, 1);
    zmq_msg_t msg;
    if (zmq_msg_init_size(&msg, size) != 0)
        return; // the next one, if any, says it
    zmesh__frame_encode_flags(stream->topic, stream->topic_size, self->id,
                              stream->sequence, ctx->now_us, ZMESH__FRAME_TAIL,
                              ZMESH__TAIL_PAYLOAD, 1, zmq_msg_data(&msg), size);
    if (zmq_msg_send(&msg, self->xpub_handle, 0) < 0) {
        zmq_msg_close(&msg);
        return;
    }
    self->tails_sent++;
}

// Sends the tail frames due at `at_us` (s_tails_clock of `now_us`, the
// wall clock), after any batch (whose events they follow). While a
// joined peer predates tail frames none is sent, but the schedule moves
// on all the same.
static void
s_tails_run(zmesh_agent_t *self, int64_t at_us, int64_t now_us)
{
    zmesh__outbox_drain(self->outbox); // and the XPUB is ours alone
    s_tail_ctx_t ctx = {self, now_us};
    if (zmesh__outbox_tails_read(self->outbox))
        zmesh__tails_run(self->tails, at_us, s_tail_send, &ctx);
    else
        zmesh__tails_run(self->tails, at_us, NULL, NULL);
    s_tails_arm(self);
}

// Runs the tail frames' schedule when one is due, reading the clock only
// while one is to come, and sets the timer again if it fired early (the
// wall clock was set back). Returns the ms until the next one is due
// (rounded up; -1: none is). Application thread, at its calls into the
// agent.
static long
s_tails_due(zmesh_agent_t *self)
{
    int64_t next = zmesh__tails_next(self->tails);
    if (next == 0)
        return -1;
    int64_t now_us = zmesh__wall_clock_us();
    int64_t at_us = s_tails_clock(self, now_us);
    if (at_us >= next) {
        s_tails_run(self, at_us, now_us);
        next = zmesh__tails_next(self->tails);
        if (next == 0)
            return -1;
    } else if (self->tail_armed_us == 0)
        s_tails_arm(self);
    return next > at_us ? (long)((next - at_us) / 1000 + 1) : 0;
}

// The bookkeeping of a publish (at `now_us`) that went out or into the
// batch.
static int
s_published(zmesh_agent_t *self, zmesh__pubstream_t *stream, int64_t now_us,
            uint64_t *published)
{
    stream->sequence++;
    self->events_published++;
    if (published)
        *published = stream->sequence;
    // A stream of one event needs no tail frame: a subscriber that lost
    // it has no stream to miss it from (proto/wire.md#tail-frame).
    int64_t at_us = s_tails_clock(self, now_us);
    if (stream->sequence >= 2 &&
        zmesh__tails_published(self->tails, stream, at_us))
        s_tails_arm(self);
    int64_t next = zmesh__tails_next(self->tails);
    if (next != 0 && at_us >= next) // another stream's tail is due
        s_tails_run(self, at_us, now_us);
    if (--self->service_countdown == 0) {
        s_service(self);
        zmesh__agent_wake_update(self);
    }
    return 0;
}

// One publish; `flags` go into the frame (ZMESH__FRAME_CONFIRM: a copy is
// also kept until a relay confirms it). `reserved`: '$' topics allowed.
static int
s_publish(zmesh_agent_t *self, const char *topic, const void *payload,
          size_t size, unsigned flags, bool reserved, uint64_t *published)
{
    if (!self || !topic || (!payload && size > 0))
        return ZMESH_EINVAL;
    if (!self->started)
        return ZMESH_ESTATE;
    if (topic[0] == '$' && !reserved)
        return ZMESH_ERESERVED; // even for a stream the agent has already
    // Checked before anything changes: a failed publish leaves no trace.
    if (size > self->max_msg_size)
        return ZMESH_ETOOBIG;
    if (zmesh__msgpack_check(payload, size) != 0)
        return ZMESH_EPAYLOAD;
    zmesh__pubstream_t *stream = self->last_stream;
    size_t topic_size;
    if (!stream || strcmp(topic, self->last_topic) != 0) {
        topic_size = strnlen(topic, ZMESH_TOPIC_MAX + 1);
        if (topic_size > ZMESH_TOPIC_MAX)
            return ZMESH_ETOPIC;
        stream = zhashx_lookup(self->streams, topic);
        if (!stream) {
            int rc;
            stream = s_stream_new(self, topic, topic_size, reserved, &rc);
            if (!stream)
                return rc;
        }
        memcpy(self->last_topic, topic, topic_size + 1);
        self->last_stream = stream;
        self->last_topic_size = topic_size;
    } else
        topic_size = self->last_topic_size;
    int64_t now_us = zmesh__wall_clock_us();
    // Events of a burst go out in batches (outbox.h), but for those that
    // need a frame of their own: a confirmed event (kept by its frame),
    // one a queue group takes (sent on in its frame), one a back-pressure
    // subscriber counts (its window is in frames).
    bool grouped =
        zmesh__topic_index_size(self->group_view) > 0 &&
        zmesh__topic_index_match(self->group_view, topic, topic_size);
    bool counted =
        self->bp_view.size > 0 && s_bp_counts(self, topic, topic_size);
    if (flags == 0 && !grouped && !counted &&
        zmesh__outbox_wants(self->outbox, size, now_us)) {
        zmesh__outbox_lock(self->outbox);
        zmesh__outbox_add(self->outbox, topic, topic_size, stream->sequence + 1,
                          now_us, payload, size);
        zmesh__outbox_unlock(self->outbox);
        return s_published(self, stream, now_us, published);
    }
    // On its own, and after the batch before it: the XPUB is ours alone.
    zmesh__outbox_drain(self->outbox);
    if (counted)
        s_bp_wait(self, topic, topic_size, stream->sequence + 1);
    // Encoded straight into the message ZeroMQ sends: no copy of ours.
    size_t frame_size = zmesh__frame_size_flags(
        topic_size, stream->sequence + 1, now_us, flags, size);
    if (frame_size > self->max_msg_size)
        return ZMESH_ETOOBIG;
    zmq_msg_t msg;
    if (zmq_msg_init_size(&msg, frame_size) != 0)
        return ZMESH_ENOMEM;
    zmesh__frame_encode_flags(topic, topic_size, self->id, stream->sequence + 1,
                              now_us, flags, payload, size, zmq_msg_data(&msg),
                              frame_size);
    if (flags & ZMESH__FRAME_CONFIRM) {
        int rc =
            zmesh__agent_confirm_keep(self, topic, stream->sequence + 1, &msg);
        if (rc != 0) {
            zmq_msg_close(&msg);
            return rc;
        }
    }
    // Kept for repairs (proto/wire.md#nak) before sending, since sending
    // empties the message. An XPUB send never blocks and fails only when
    // the context ends, so what is kept was sent.
    zmesh__retain_add_msg(self->retained, topic, topic_size,
                          stream->sequence + 1, &msg);
    // Queue groups that take this topic get it through the control thread
    // (one member each).
    if (grouped)
        zsock_send(self->actor, "sb", "GROUP", zmq_msg_data(&msg), frame_size);
    if (zmq_msg_send(&msg, self->xpub_handle, 0) < 0) {
        zmq_msg_close(&msg);
        return ZMESH_ESYS;
    }
    zmesh__outbox_sent(self->outbox);
    return s_published(self, stream, now_us, published);
}

int
zmesh_agent_publish(zmesh_agent_t *self, const char *topic, const void *payload,
                    size_t size)
{
    return s_publish(self, topic, payload, size, 0, false, NULL);
}

int
zmesh_agent_flush(zmesh_agent_t *self)
{
    if (!self)
        return ZMESH_EINVAL;
    if (!self->started)
        return ZMESH_ESTATE;
    zmesh__outbox_drain(self->outbox);
    return 0;
}

int
zmesh__agent_publish_reserved(zmesh_agent_t *self, const char *topic,
                              const void *payload, size_t size)
{
    return s_publish(self, topic, payload, size, 0, true, NULL);
}

// Subscribes to the topic relays confirm our events on over the data
// plane (agent_internal.h): done at the first confirmed publish, so only
// publishers that want confirms have their SUBs connect to relays.
int
zmesh__agent_subscribe_reserved(zmesh_agent_t *self, const char *topic)
{
    int rc = zmesh__topic_index_add(self->subs, topic);
    if (rc < 0)
        return rc;
    return rc > 0 ? s_subscription_change(self, topic, true) : 0;
}

static int
s_confirm_subscribe(zmesh_agent_t *self)
{
    char topic[sizeof self->confirm_topic];
    snprintf(topic, sizeof topic, "%s%s", ZMESH__CONFIRM_TOPIC_PREFIX,
             self->id_hex);
    int rc = zmesh__agent_subscribe_reserved(self, topic);
    if (rc != 0)
        return rc;
    memcpy(self->confirm_topic, topic, sizeof topic);
    return 0;
}

int
zmesh_agent_publish_confirmed(zmesh_agent_t *self, const char *topic,
                              const void *payload, size_t size,
                              uint64_t *sequence)
{
    if (!self)
        return ZMESH_EINVAL;
    if (!self->started)
        return ZMESH_ESTATE;
    if (!self->confirms && zmesh__confirms_new(&self->confirms) != 0)
        return ZMESH_ENOMEM;
    // Outcomes the application has not taken count too: so both stay
    // bounded for an application that publishes and never receives.
    if (zmesh__confirms_size(self->confirms) + self->outcomes_count >=
        ZMESH__CONFIRMS_EVENTS_MAX)
        return ZMESH_EFULL;
    if (!self->confirm_topic[0]) {
        int rc = s_confirm_subscribe(self);
        if (rc != 0)
            return rc;
    }
    return s_publish(self, topic, payload, size, ZMESH__FRAME_CONFIRM, false,
                     sequence);
}

int
zmesh_agent_set_confirm_timeout(zmesh_agent_t *self, int timeout_ms)
{
    if (!self || timeout_ms < 1 || timeout_ms > 3600000)
        return ZMESH_EINVAL;
    self->confirm_timeout_ms = timeout_ms;
    return 0;
}

/* ------------------------------------------------------------------------ */
/*  Receiving                                                               */

const char *
zmesh__agent_publisher_name(zmesh_agent_t *self,
                            const uint8_t id[ZMESH__ID_SIZE])
{
    if (self->cached_name_valid &&
        memcmp(id, self->cached_id, ZMESH__ID_SIZE) == 0)
        return self->cached_name;
    memcpy(self->cached_id, id, ZMESH__ID_SIZE);
    zmesh__id_to_hex(id, self->cached_id_hex);
    const char *name = zhashx_lookup(self->names, self->cached_id_hex);
    snprintf(self->cached_name, sizeof self->cached_name, "%s",
             name ? name : "");
    self->cached_name_valid = true;
    return self->cached_name;
}

// Whether a received topic is valid and one of our patterns wants it.
// ZeroMQ's prefix filter is coarse ("orders." for "orders.*.created"), so
// the exact decision is ours; the answer for the last topic is cached
// because streams usually repeat topics.
static bool
s_topic_wanted(zmesh_agent_t *self, const char *topic, size_t size)
{
    if (size == self->cached_topic_size &&
        memcmp(topic, self->cached_topic, size) == 0)
        return self->cached_topic_wanted;
    int check = zmesh__topic_check(topic, size);
    bool wanted = (check == 0 || check == ZMESH_ERESERVED) &&
                  zmesh__topic_index_match(self->subs, topic, size);
    if (check != 0 && check != ZMESH_ERESERVED) {
        self->frames_rejected++;
        zmesh__log_limited(&self->bad_frame_log, ZMESH__AGENT_LOG_INTERVAL_MS,
                           "event with an invalid topic dropped");
    }
    memcpy(self->cached_topic, topic, size);
    self->cached_topic_size = size;
    self->cached_topic_wanted = wanted;
    return wanted;
}

// Asks the control thread to send a NAK.
static void
s_send_nak(zmesh_agent_t *self, const zmesh__nak_t *nak)
{
    if (zsock_send(self->actor, "sb", "NAK", nak, sizeof *nak) != 0)
        zmesh__log(ZMESH_LOG_WARNING, "NAK not passed to the control thread");
}

// Opens a repair of the stream of `frame` (decoded from *msg), whose
// events first..last are missing; *msg moves into the session. False
// when repair is off, the publisher is unknown (it left: nobody to ask)
// or a limit is reached; the caller then reports the gap at once.
static bool
s_repair_open_frame(zmesh_agent_t *self, const zmesh__frame_t *frame,
                    zmq_msg_t *msg, uint64_t first, uint64_t last, bool join)
{
    if (self->repair_timeout_ms == 0 || self->event.peer_name[0] == '\0')
        return false;
    zmesh__nak_t nak;
    int64_t deadline = zmesh__clock_ms() + self->repair_timeout_ms;
    // After this, frame points into a moved message: only nak is used.
    if (!zmesh__repair_open(self->repair, frame, msg, first, last, join,
                            deadline, &nak))
        return false;
    // The stream is judged again when the session is released: from just
    // before the gap, or (a join) from whatever comes first.
    size_t topic_size = strlen(nak.topic);
    if (join)
        zmesh__streams_drop(self->streams_in, nak.publisher, nak.topic,
                            topic_size);
    else
        zmesh__streams_rewind(self->streams_in, nak.publisher, nak.topic,
                              topic_size, first - 1);
    s_send_nak(self, &nak);
    return true;
}

// s_repair_open_frame for the current event. The session keeps the
// event's frame: one of its own, if it came in a batch (the event and
// self->frame still point into the batch then).
static bool
s_repair_open(zmesh_agent_t *self, uint64_t first, uint64_t last, bool join)
{
    zmesh__frame_t own;
    zmq_msg_t *msg = zmesh__agent_event_frame(self, &own);
    return msg && s_repair_open_frame(self, &own, msg, first, last, join);
}

static void
s_on_released_session(void *arg, const uint8_t publisher[ZMESH__ID_SIZE],
                      const char *topic, size_t topic_size, bool join,
                      bool vouched)
{
    zmesh_agent_t *self = arg;
    // A join the publisher could not vouch for (it no longer holds all it
    // sent since our subscription): what is missing from 1 on is a gap.
    if (join && !vouched)
        zmesh__streams_rewind(self->streams_in, publisher, topic, topic_size,
                              0);
}

static void
s_on_released_frame(void *arg, zmq_msg_t *msg, uint64_t seq, bool repaired)
{
    (void)seq;
    zmesh_agent_t *self = arg;
    if (!s_queue_push(&self->settled, msg, repaired, true))
        self->frames_dropped++; // out of memory; the next event shows a gap
}

// Moves the frames of finished repairs (answered, timed out, or all when
// `all`) to the settled queue, which recv serves first.
static void
s_repair_release(zmesh_agent_t *self, bool all)
{
    if (zmesh__repair_sessions(self->repair) == 0)
        return;
    zmesh__repair_release(self->repair, zmesh__clock_ms(), all,
                          s_on_released_session, s_on_released_frame, self);
}

zmq_msg_t *
zmesh__agent_event_frame(zmesh_agent_t *self, zmesh__frame_t *frame)
{
    if (self->from_batch && !self->batch_owned) {
        const zmesh__frame_t *f = &self->batch.frame;
        size_t size =
            zmesh__frame_size_flags(f->topic_size, f->sequence, f->timestamp_us,
                                    f->flags, f->payload_size);
        zmq_msg_close(&self->msg);
        if (zmq_msg_init_size(&self->msg, size) != 0) {
            zmq_msg_init(&self->msg);
            return NULL;
        }
        zmesh__frame_encode_flags(f->topic, f->topic_size, f->publisher,
                                  f->sequence, f->timestamp_us, f->flags,
                                  f->payload, f->payload_size,
                                  zmq_msg_data(&self->msg), size);
        self->batch_owned = true;
    }
    if (frame && zmesh__frame_decode(zmq_msg_data(&self->msg),
                                     zmq_msg_size(&self->msg), frame) != 0)
        return NULL; // cannot be: it was decoded before
    return &self->msg;
}

// Decodes the frame just taken into self->msg into self->frame; a batch
// moves on to batch_msg, and its first event is the current one. False,
// counted and logged, when it is malformed.
static bool
s_decode(zmesh_agent_t *self)
{
    self->from_batch = self->batch_owned = false;
    // An event is one frame. Every part of a multi-part message is
    // dropped, the last one too, which alone would look like an event.
    bool part = zmq_msg_more(&self->msg) || self->in_multipart;
    self->in_multipart = zmq_msg_more(&self->msg);
    const uint8_t *data = zmq_msg_data(&self->msg);
    zmesh__batch_t batch;
    // A REPAIR carries frames of single events only, and a batch comes
    // only once the one before is done: repaired frames come from the
    // settled queue, which may be served in the middle of a batch.
    if (part ||
        zmesh__batch_decode(data, zmq_msg_size(&self->msg), &batch) != 0 ||
        (batch.batched && (self->frame_repaired || self->batch.left > 0))) {
        self->frames_rejected++;
        zmesh__log_limited(&self->bad_frame_log, ZMESH__AGENT_LOG_INTERVAL_MS,
                           "malformed event frame (%zu bytes) dropped",
                           zmq_msg_size(&self->msg));
        return false;
    }
    if (batch.batched) {
        // Walked from batch_msg, so that self->msg is free to give an
        // event a frame of its own. A small message's bytes live inside
        // its zmq_msg_t, so the pointers move along with them.
        zmq_msg_move(&self->batch_msg, &self->msg);
        const uint8_t *base = zmq_msg_data(&self->batch_msg);
        batch.frame.topic =
            (const char *)base + ((const uint8_t *)batch.frame.topic - data);
        batch.frame.payload =
            base + ((const uint8_t *)batch.frame.payload - data);
        batch.next = base + (batch.next - data);
        batch.end = base + (batch.end - data);
        self->batch = batch;
        self->from_batch = true;
    }
    self->frame = batch.frame;
    return true;
}

// Makes the current event (its stream's, and the current one of
// streams_in) the gap event for first..last, counted and logged.
static void
s_gap_event(zmesh_agent_t *self, uint64_t first, uint64_t last)
{
    zmesh_event_t *event = &self->event;
    zmesh__stream_stats_t *stream = zmesh__streams_current(self->streams_in);
    if (stream) {
        stream->gaps++;
        stream->missing += last - first + 1;
    }
    event->type = ZMESH_EVENT_GAP;
    event->repaired = false; // the gap is not; the event after may be
    event->payload = "";
    event->payload_size = 0;
    event->sequence = first;
    event->gap_last = last;
    self->gaps++;
    self->events_missing += last - first + 1;
    zmesh__log(ZMESH_LOG_INFO,
               "events %llu..%llu of %s from %s (%s) are missing",
               (unsigned long long)first, (unsigned long long)last,
               event->topic, event->peer_name, event->peer_id);
}

// A tail frame (proto/wire.md#tail-frame): the stream's last event is
// self->frame.sequence. Nothing to deliver unless events up to it are
// missing: they are then asked for as for any gap, with the frame held
// as the repair's marker (repair.h, at that sequence + 1) and judged
// again when the repair is over; what is still missing then is reported
// as a gap with no event after it. True when self->event is that gap.
static bool
s_tail(zmesh_agent_t *self)
{
    zmesh__frame_t marker = self->frame;
    if (marker.sequence == UINT64_MAX)
        return false; // no place after it for a marker; cannot happen
    marker.sequence++;
    if (!self->frame_settled && zmesh__repair_sessions(self->repair) > 0) {
        zmesh__nak_t nak;
        switch (zmesh__repair_hold(self->repair, &marker, &self->msg, &nak)) {
        case ZMESH__REPAIR_PASS: break;
        case ZMESH__REPAIR_NAK: // it showed events missing at the end
            self->tail_gaps++;
            s_send_nak(self, &nak);
            return false;
        case ZMESH__REPAIR_HELD:
        case ZMESH__REPAIR_DUPLICATE: return false;
        }
    }
    const zmesh__frame_t *frame = &self->frame;
    uint64_t first, last;
    if (!zmesh__streams_tail(self->streams_in, frame->publisher, frame->topic,
                             frame->topic_size, frame->sequence, &first, &last))
        return false;
    if (!self->frame_settled) {
        self->tail_gaps++;
        if (s_repair_open_frame(self, &marker, &self->msg, first, last, false))
            return false;
    }
    zmesh__streams_rewind(self->streams_in, frame->publisher, frame->topic,
                          frame->topic_size, last);
    s_gap_event(self, first, last);
    return true;
}

// Turns the current frame (self->frame) into the current event; false
// when it is not wanted (or held, or a duplicate).
static bool
s_deliver(zmesh_agent_t *self)
{
    zmesh__frame_t frame = self->frame;
    if (!s_topic_wanted(self, frame.topic, frame.topic_size))
        return false;
    zmesh_event_t *event = &self->event;
    event->type = ZMESH_EVENT_MESSAGE;
    event->topic = frame.topic;
    event->payload = frame.payload;
    event->payload_size = frame.payload_size;
    event->peer_name = zmesh__agent_publisher_name(self, frame.publisher);
    event->peer_id = self->cached_id_hex;
    event->reason = "";
    event->sequence = frame.sequence;
    event->gap_last = 0;
    event->timestamp_us = frame.timestamp_us;
    event->repaired = self->frame_repaired;
    event->request_id = 0;
    event->status = 0;
    event->group = "";
    event->redelivered = false;
    event->flags = frame.flags;
    event->consumer = NULL;
    event->stream_sequence = 0;
    event->deliveries = 0;
    if (frame.flags & ZMESH__FRAME_TAIL)
        return s_tail(self);
    // A stream under repair keeps its later events back until the repair
    // is over (s_repair_release), so they come in order.
    zmesh__nak_t nak;
    if (!self->frame_settled && zmesh__repair_sessions(self->repair) > 0) {
        // A hold keeps the frame: one of its own for an event of a batch.
        zmesh__frame_t own = frame;
        zmq_msg_t *msg = self->from_batch ? zmesh__agent_event_frame(self, &own)
                                          : &self->msg;
        if (!msg) {
            self->frames_dropped++; // out of memory: the next shows a gap
            return false;
        }
        switch (zmesh__repair_hold(self->repair, &own, msg, &nak)) {
        case ZMESH__REPAIR_PASS: break;
        case ZMESH__REPAIR_DUPLICATE: self->duplicates_dropped++; return false;
        case ZMESH__REPAIR_NAK: s_send_nak(self, &nak); return false;
        case ZMESH__REPAIR_HELD: return false;
        }
    }
    // proto/wire.md#sequences: in order, or a gap said out loud first, and
    // never the same event twice.
    uint64_t first, last;
    switch (zmesh__streams_track(self->streams_in, frame.publisher, frame.topic,
                                 frame.topic_size, frame.sequence, &first,
                                 &last)) {
    case ZMESH__SEQ_OLD: {
        zmesh__stream_stats_t *stream =
            zmesh__streams_current(self->streams_in);
        if (stream)
            stream->duplicates++;
        self->duplicates_dropped++;
        return false;
    }
    case ZMESH__SEQ_GAP:
        if (!self->frame_settled && s_repair_open(self, first, last, false))
            return false;
        self->stashed = *event;
        self->has_stashed = true;
        s_gap_event(self, first, last);
        break;
    case ZMESH__SEQ_FIRST:
        // A slow joiner: what came before its first event may have been
        // published after its subscription was in place (proto/wire.md
        // #nak, join).
        if (frame.sequence > 1 && !self->frame_settled &&
            s_repair_open(self, 1, frame.sequence - 1, true))
            return false;
        break;
    case ZMESH__SEQ_NEXT: break;
    }
    self->events_received++;
    zmesh__stream_stats_t *stream = zmesh__streams_current(self->streams_in);
    if (stream) {
        // The clock is read for one event in 16: lag is a sample.
        if ((stream->received++ & 15) == 0)
            stream->lag_us = zmesh__wall_clock_us() - frame.timestamp_us;
        stream->repaired += self->frame_repaired;
        // Back-pressure subscriptions report progress to the publisher.
        if (stream->mark == 0)
            stream->mark =
                zmesh__topic_index_size(self->bp_subs) > 0 &&
                        zmesh__topic_index_match(self->bp_subs, frame.topic,
                                                 frame.topic_size)
                    ? 1
                    : -1;
        if (stream->mark == 1 && stream->received % S_CREDIT_EVERY == 1) {
            char topic[ZMESH_TOPIC_MAX + 1], seq[24];
            snprintf(topic, sizeof topic, "%.*s", (int)frame.topic_size,
                     frame.topic);
            snprintf(seq, sizeof seq, "%llu",
                     (unsigned long long)frame.sequence);
            zsock_send(self->actor, "ssss", "CREDIT", event->peer_id, topic,
                       seq);
        }
    }
    return true;
}

static bool
s_pop_peer_event(zmesh_agent_t *self)
{
    zmesh__agent_peer_event_t *pe = zlistx_detach(self->peer_events, NULL);
    if (!pe)
        return false;
    self->peer_event = pe;
    zmesh_event_t *event = &self->event;
    memset(event, 0, sizeof *event);
    event->type = pe->type;
    event->topic = "";
    event->payload = "";
    event->peer_name = pe->name;
    event->peer_id = pe->id;
    event->reason = pe->reason;
    if (pe->topic)
        event->topic = pe->topic;
    if (pe->payload) {
        event->payload = pe->payload;
        event->payload_size = pe->payload_size;
    }
    event->request_id = pe->req;
    event->status = pe->status;
    event->sequence = pe->sequence; // a confirm's
    event->group = pe->group ? pe->group : "";
    if (pe->group) {
        // A queue-group event is acknowledged as the application takes
        // it (proto/wire.md#deliver): unacknowledged ones go to another
        // member if this one leaves.
        event->request_id = 0;
        event->sequence = pe->sequence;
        event->timestamp_us = pe->timestamp_us;
        event->redelivered = pe->redelivered;
        char req[24];
        snprintf(req, sizeof req, "%llu", (unsigned long long)pe->req);
        zsock_send(self->actor, "sss", "ACK", pe->id, req);
        self->group_received++;
    }
    return true;
}

// Takes the next frame, from the held queue first (older) or the SUB,
// into self->msg, which stays initialised while the agent runs so ZeroMQ
// can reuse it. False when none is waiting.
static bool
s_next_frame(zmesh_agent_t *self)
{
    // Frames a repair released come before the rest of a batch: their
    // events are older, and the batch's later ones would look like a gap.
    if (s_queue_pop(&self->settled, &self->msg, &self->frame_repaired,
                    &self->frame_settled)) {
        self->frame_ok = s_decode(self);
        return true;
    }
    if (self->batch.left > 0) {
        self->frame_repaired = self->frame_settled = false;
        self->batch_owned = false;
        self->from_batch = zmesh__batch_next(&self->batch);
        self->frame = self->batch.frame;
        self->frame_ok = true;
        return true;
    }
    if (s_queue_pop(&self->held, &self->msg, &self->frame_repaired,
                    &self->frame_settled)) {
        self->frame_ok = s_decode(self);
        return true;
    }
    self->frame_repaired = self->frame_settled = false;
    if (zmq_msg_recv(&self->msg, self->sub_handle, ZMQ_DONTWAIT) < 0)
        return false;
    self->frame_ok = s_decode(self);
    return true;
}

static int s_recv(zmesh_agent_t *self, int timeout_ms,
                  const zmesh_event_t **event);

int
zmesh_agent_recv(zmesh_agent_t *self, int timeout_ms,
                 const zmesh_event_t **event)
{
    if (!self || !event || timeout_ms < -1)
        return ZMESH_EINVAL;
    if (!self->started)
        return ZMESH_ESTATE;
    s_wake_consume(self);
    int rc = s_recv(self, timeout_ms, event);
    if (rc != 0) {
        // s_recv may give up before its wait (a flood of unwanted frames),
        // where tail frames are sent: the fd's wake for them was taken.
        s_tails_due(self);
        zmesh__agent_wake_update(self);
    }
    return rc;
}

static int
s_recv(zmesh_agent_t *self, int timeout_ms, const zmesh_event_t **event)
{
    // A batch goes out before we wait for anything, maybe for its answer;
    // and the poll below uses the XPUB (outbox.h).
    zmesh__outbox_drain(self->outbox);
    if (self->peer_event)
        s_peer_event_free((void **)&self->peer_event);
    if (self->outcome.topic)
        zmesh__agent_outcome_release(self);
    if (self->has_stashed) {
        // The message after a gap event: its frame is still in self->msg.
        self->has_stashed = false;
        self->event = self->stashed;
        if (zmesh__agent_durable_pass(self)) {
            *event = &self->event;
            return 0;
        }
    }
    // The clock is read only once there is nothing to take at once: on a
    // busy stream every event would otherwise pay for it.
    int64_t deadline = 0;
    for (unsigned skipped = 0;;) {
        // Serviced first: what the service drains (a reply, a peer event)
        // is then seen below, not left behind a poll that would not wake
        // for it; and never between taking and judging a frame, since a
        // repair finished meanwhile must release its frames ahead of that
        // frame, or the frame would look like a new gap.
        if (--self->service_countdown == 0)
            s_service(self);
        zmesh__agent_requests_expire(self);
        if (zlistx_size(self->peer_events) > 0 && s_pop_peer_event(self)) {
            if (!zmesh__agent_internal_event(self)) {
                *event = &self->event;
                return 0;
            }
            s_peer_event_free((void **)&self->peer_event);
            continue;
        }
        if (zmesh__agent_outcome_next(self)) {
            *event = &self->event;
            return 0;
        }
        if (self->durable && zmesh__agent_durable_next(self)) {
            *event = &self->event;
            return 0;
        }
        s_repair_release(self, false);
        if (s_next_frame(self)) {
            // A request or reply on the data plane is a peer event as if it
            // had come through the control thread, the library's own ones
            // (a relay's answers to durable consumers) included.
            int rr = -1;
            if (self->frame_ok && s_deliver(self) &&
                !zmesh__agent_confirm_frame(self) &&
                (rr = zmesh__agent_rr_take(self)) != 0 &&
                (rr == -1 || !zmesh__agent_internal_event(self))) {
                if (rr == 1 || zmesh__agent_durable_pass(self)) {
                    *event = &self->event;
                    return 0;
                }
                // A gap held for a durable consumer: the message after it
                // is in self->msg, and must be judged before the next frame.
                if (self->has_stashed) {
                    self->has_stashed = false;
                    self->event = self->stashed;
                    if (zmesh__agent_durable_pass(self)) {
                        *event = &self->event;
                        return 0;
                    }
                }
            }
            // Unwanted or bad frames in a flood must not make us miss the
            // deadline.
            if (++skipped % 256 == 0) {
                if (deadline == 0)
                    deadline = timeout_ms < 0 ? INT64_MAX
                                              : zmesh__clock_ms() + timeout_ms;
                else if (zmesh__clock_ms() >= deadline)
                    return ZMESH_EAGAIN;
            }
            continue;
        }
        // Nothing to take: one poll over the agent's sockets, then only
        // those that have something are served. A round trip thus costs
        // one poll, not a check of every socket before and after it.
        int64_t now = zmesh__clock_ms();
        if (deadline == 0)
            deadline = timeout_ms < 0 ? INT64_MAX : now + timeout_ms;
        s_connections_expire(self);
        long wait = now >= deadline         ? 0
                    : deadline == INT64_MAX ? -1
                                            : (long)(deadline - now);
        if (self->timers > 0 && (wait < 0 || wait > S_RECONNECT_MIN_MS))
            wait = S_RECONNECT_MIN_MS; // a close or reconnect is due soon
        zmesh__agent_timers_run(self);
        if (zlistx_size(self->peer_events) > 0 || self->outcomes_count > 0 ||
            zmesh__durable_ready(self->durable))
            continue; // a timer made something to take
        int64_t dues[4] = {
            zmesh__repair_deadline(self->repair),
            zmesh__requests_deadline(self->requests),
            self->confirms ? zmesh__confirms_deadline(self->confirms) : 0,
            zmesh__durable_deadline(self->durable)};
        for (int i = 0; i < 4; i++)
            if (dues[i] > 0) {
                long until = dues[i] > now ? (long)(dues[i] - now) : 0;
                if (wait < 0 || wait > until)
                    wait = until;
            }
        // Tail frames due go out now; the next one ends the wait.
        long until = s_tails_due(self);
        if (until >= 0 && (wait < 0 || wait > until))
            wait = until;
        // What the agent published meanwhile (a durable consumer's
        // request, say) goes out before we wait; and the poll uses the
        // XPUB, which is ours alone only while no batch is pending.
        zmesh__outbox_drain(self->outbox);
        zmq_pollitem_t items[4] = {
            {self->sub_handle, 0, ZMQ_POLLIN, 0},
            {zsock_resolve(self->notify), 0, ZMQ_POLLIN, 0},
            {self->xpub_handle, 0, ZMQ_POLLIN, 0},
            {zsock_resolve(self->monitor), 0, ZMQ_POLLIN, 0}};
        int ready = zmq_poll(items, 4, wait);
        if (ready < 0 && zmq_errno() != EINTR)
            return ZMESH_ESYS;
        if (items[1].revents & ZMQ_POLLIN)
            zmesh__agent_drain_notify(self);
        if (items[3].revents & ZMQ_POLLIN)
            s_drain_monitor(self);
        if (items[2].revents & ZMQ_POLLIN)
            s_drain_subscriptions(self);
        if (ready <= 0 && zmesh__clock_ms() >= deadline)
            return ZMESH_EAGAIN;
    }
}

int
zmesh_agent_fd(zmesh_agent_t *self)
{
    if (!self)
        return ZMESH_EINVAL;
    return self->started ? self->epoll_fd : ZMESH_ESTATE;
}

zmesh_event_type_t
zmesh_event_type(const zmesh_event_t *event)
{
    return event->type;
}

const char *
zmesh_event_topic(const zmesh_event_t *event)
{
    return event->topic;
}

const void *
zmesh_event_payload(const zmesh_event_t *event, size_t *size)
{
    if (size)
        *size = event->payload_size;
    return event->payload;
}

const char *
zmesh_event_peer_name(const zmesh_event_t *event)
{
    return event->peer_name;
}

const char *
zmesh_event_peer_id(const zmesh_event_t *event)
{
    return event->peer_id;
}

uint64_t
zmesh_event_sequence(const zmesh_event_t *event)
{
    return event->sequence;
}

int64_t
zmesh_event_timestamp(const zmesh_event_t *event)
{
    return event->timestamp_us;
}

const char *
zmesh_event_group(const zmesh_event_t *event)
{
    return event && event->group ? event->group : "";
}

int
zmesh_event_redelivered(const zmesh_event_t *event)
{
    return event && event->redelivered ? 1 : 0;
}

const char *
zmesh_event_consumer(const zmesh_event_t *event)
{
    return event && event->consumer ? event->consumer : "";
}

uint64_t
zmesh_event_stream_sequence(const zmesh_event_t *event)
{
    return event ? event->stream_sequence : 0;
}

unsigned
zmesh_event_deliveries(const zmesh_event_t *event)
{
    return event ? event->deliveries : 0;
}

unsigned
zmesh__event_flags(const zmesh_event_t *event)
{
    return event && event->type == ZMESH_EVENT_MESSAGE ? event->flags : 0;
}

int
zmesh_event_repaired(const zmesh_event_t *event)
{
    return event && event->repaired ? 1 : 0;
}

uint64_t
zmesh_event_gap_last(const zmesh_event_t *event)
{
    return event->gap_last;
}

const char *
zmesh_event_reason(const zmesh_event_t *event)
{
    return event->reason;
}

/* ------------------------------------------------------------------------ */
/*  Queries to the control thread                                           */

// A reply that arrived after its query timed out: free what it carries.
static void
s_reply_discard(const char *command, zframe_t *payload)
{
    void *pointer = s_frame_pointer(payload);
    if (streq(command, "PEERS"))
        zmesh_peer_list_destroy((zmesh_peer_list_t **)&pointer);
    else if (streq(command, "WANT"))
        zmesh__want_destroy((zmesh__want_t **)&pointer);
}

// Sends a query (the command, its number, then `args`, which it takes)
// and waits for its reply's payload frame. Each query has a number its
// reply echoes, so a reply that comes after its query gave up is
// recognised and discarded instead of answering the next query.
int
zmesh__agent_query_msg(zmesh_agent_t *self, const char *command, zmsg_t **args,
                       zframe_t **payload)
{
    // The number travels as text: czmq's '8' picture has a byte order of
    // its own, and text is what both ends read alike.
    char number[24];
    snprintf(number, sizeof number, "%llu",
             (unsigned long long)++self->queries);
    if (zmsg_pushstr(*args, number) != 0 || zmsg_pushstr(*args, command) != 0 ||
        zmsg_send(args, self->actor) != 0) {
        zmsg_destroy(args);
        return ZMESH_ESYS;
    }
    int64_t deadline = zmesh__clock_ms() + S_REPLY_TIMEOUT_MS;
    for (;;) {
        int64_t left = deadline - zmesh__clock_ms();
        zmq_pollitem_t item = {zsock_resolve(self->actor), 0, ZMQ_POLLIN, 0};
        if (left <= 0 || zmq_poll(&item, 1, (long)left) <= 0)
            return ZMESH_ETIMEDOUT;
        char *reply_command = NULL, *reply_number = NULL;
        zframe_t *frame = NULL;
        if (zsock_recv(self->actor, "ssf", &reply_command, &reply_number,
                       &frame) != 0 ||
            !reply_command || !reply_number || !frame) {
            zstr_free(&reply_command);
            zstr_free(&reply_number);
            zframe_destroy(&frame);
            return ZMESH_ESYS;
        }
        bool ours =
            streq(reply_number, number) && streq(reply_command, command);
        if (!ours)
            s_reply_discard(reply_command, frame);
        zstr_free(&reply_command);
        zstr_free(&reply_number);
        if (ours) {
            *payload = frame;
            return 0;
        }
        zframe_destroy(&frame);
    }
}

int
zmesh__agent_query(zmesh_agent_t *self, const char *command, const char *arg,
                   zframe_t **payload)
{
    zmsg_t *args = zmsg_new();
    if (!args || zmsg_addstr(args, arg ? arg : "") != 0) {
        zmsg_destroy(&args);
        return ZMESH_ENOMEM;
    }
    return zmesh__agent_query_msg(self, command, &args, payload);
}

// A query whose reply is one pointer (NULL meaning out of memory).
int
zmesh__agent_query_pointer(zmesh_agent_t *self, const char *command,
                           const char *arg, void **reply)
{
    zframe_t *frame = NULL;
    int rc = zmesh__agent_query(self, command, arg, &frame);
    if (rc != 0)
        return rc;
    *reply = s_frame_pointer(frame);
    zframe_destroy(&frame);
    return *reply ? 0 : ZMESH_ENOMEM;
}

int
zmesh_agent_peers(zmesh_agent_t *self, zmesh_peer_list_t **list)
{
    if (!self || !list)
        return ZMESH_EINVAL;
    if (!self->started)
        return ZMESH_ESTATE;
    void *reply = NULL;
    int rc = zmesh__agent_query_pointer(self, "PEERS", NULL, &reply);
    if (rc == 0)
        *list = reply;
    return rc;
}

int
zmesh_agent_wait_subscribers(zmesh_agent_t *self, const char *topic,
                             int min_peers, int timeout_ms)
{
    if (!self || !topic || min_peers < 0 || timeout_ms < 0)
        return ZMESH_EINVAL;
    if (!self->started)
        return ZMESH_ESTATE;
    size_t topic_size = strnlen(topic, ZMESH_TOPIC_MAX + 1);
    int check = zmesh__topic_check(topic, topic_size);
    if (check != 0)
        return check;
    // Subscribers connect only to publishers of what they want: waiting
    // for them is only useful once peers know we publish this topic.
    s_advertise_topic(self, topic, topic_size);
    zmesh__outbox_drain(self->outbox); // the poll below uses the XPUB
    int64_t deadline = zmesh__clock_ms() + timeout_ms;
    for (;;) {
        s_service(self);
        void *reply = NULL;
        int rc = zmesh__agent_query_pointer(self, "WANT", topic, &reply);
        if (rc != 0)
            return rc;
        zmesh__want_t *want = reply;
        size_t ready = 0;
        for (size_t i = 0; i < want->count; i++) {
            char id[33];
            zmesh__id_to_hex(want->peers[i].id, id);
            uint64_t *generation = zhashx_lookup(self->ready, id);
            if (generation && *generation >= want->peers[i].generation)
                ready++;
        }
        bool done =
            want->pending == 0 && ready == want->count &&
            (min_peers > 0 ? ready >= (size_t)min_peers : want->settled);
        zmesh__want_destroy(&want);
        int64_t now = zmesh__clock_ms();
        if (done || now >= deadline) {
            zmesh__agent_wake_update(self); // for what the service took in
            return done ? (int)ready : ZMESH_ETIMEDOUT;
        }
        zmesh__outbox_drain(self->outbox); // the poll uses the XPUB
        zmq_pollitem_t items[2] = {
            {zsock_resolve(self->notify), 0, ZMQ_POLLIN, 0},
            {self->xpub_handle, 0, ZMQ_POLLIN, 0}};
        long wait = deadline - now < 20 ? (long)(deadline - now) : 20;
        zmq_poll(items, 2, wait);
    }
}
