/*  agent.c - the public zmesh_agent_* API and the data path. The
    application thread owns the data sockets: it publishes straight into
    the XPUB and receives straight from the SUB, with no thread hop on any
    event (docs/threading.md has the measurements behind that choice). The
    control plane runs in the actor of control.c; this file starts it,
    forwards pattern changes to it, and acts on what it reports through the
    notify pipe: connect the SUB to a publisher, disconnect, peer joined or
    left. Frames that fail decoding are counted and dropped here.
*/
#include "clock.h"
#include "codec.h"
#include "control.h"
#include "log.h"
#include "socket.h"
#include "streams.h"
#include "topic.h"
#include "utf8.h"
#include "zmesh.h"

#include "beacon.h"

#include <arpa/inet.h>
#include <czmq.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define S_MAX_SEEDS 64
#define S_MAX_HEADERS 32
#define S_MAX_PEER_EVENTS 10000 /* queued for an application not reading */
#define S_AUTO_ADVERTISE_MAX 256
#define S_SERVICE_EVERY 64 /* data operations between control checks */
#define S_REPLY_TIMEOUT_MS 5000
#define S_TOKEN_SIZE (1 + ZMESH__ID_SIZE + 8)
#define S_LOG_INTERVAL_MS 10000
#define S_HELD_BYTES_MAX (64 * 1024 * 1024) /* held across disconnects */
#define S_RECONNECT_MIN_MS 100
#define S_DROP_GRACE_MS 50  /* after a drop, for the last frames to land */
#define S_STREAMS_MAX 65536 /* streams whose sequence a subscriber tracks */
#define S_WAKE_NONE 0
#define S_WAKE_NOW 1  /* something is ready for zmesh_agent_recv */
#define S_WAKE_TICK 2 /* a connection timer will be due soon */
#define S_RECONNECT_MAX_MS 5000

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

/*  A frame read from the SUB ahead of time, see s_hold_pending. */
typedef struct s_held {
    zmq_msg_t msg;
    struct s_held *next;
} s_held_t;

typedef struct {
    zmesh_event_type_t type;
    char id[33];
    char *name;
    char *reason;
} s_peer_event_t;

struct zmesh_event {
    zmesh_event_type_t type;
    const char *topic;
    const void *payload;
    size_t payload_size;
    const char *peer_name;
    const char *peer_id;
    const char *reason;
    uint64_t sequence;
    uint64_t gap_last;
    int64_t timestamp_us;
};

struct zmesh_agent {
    /* configuration, fixed at start */
    char name[ZMESH_NAME_MAX + 1];
    char mesh[ZMESH_NAME_MAX + 1];
    zmesh_discovery_t scope;
    char iface[64];
    char group[INET_ADDRSTRLEN];
    int beacon_port;
    int beacon_interval_ms;
    int peer_timeout_ms;
    size_t max_msg_size;
    int linger_ms;
    char *seeds[S_MAX_SEEDS];
    size_t seeds_count;
    zmesh__header_t headers[S_MAX_HEADERS];
    size_t headers_count;

    /* patterns; may change at any time */
    zmesh__topic_index_t *subs;
    zmesh__topic_index_t *pubs;
    uint64_t subs_generation;
    size_t auto_advertised;

    /* running state */
    bool started;
    uint8_t id[ZMESH__ID_SIZE];
    char id_hex[33];
    char endpoint[256];
    char data_endpoint[256];
    zactor_t *actor;
    zsock_t *xpub;
    zsock_t *sub;
    zsock_t *notify;
    zsock_t *monitor; /* ZMQ_EVENT_DISCONNECTED of the SUB's connections */
    void *xpub_handle;
    void *sub_handle;
    int epoll_fd;
    int wake_fd;    /* timerfd in the epoll set, see s_wake_update */
    int wake_state; /* S_WAKE_* it is armed for */
    uint8_t token[S_TOKEN_SIZE]; /* the sync token now subscribed */
    unsigned service_countdown;

    /* publishing: sequence per topic, with the last topic cached */
    zhashx_t *streams; /* topic -> uint64_t * next sequence */
    char last_topic[ZMESH_TOPIC_MAX + 1];
    size_t last_topic_size;
    uint64_t *last_sequence;

    /* receiving */
    zmq_msg_t msg;
    bool msg_live;                /* msg initialised (from start to stop) */
    zmesh__streams_t *streams_in; /* sequence per (publisher, topic) */
    zmesh_event_t stashed;        /* a message that follows a gap event */
    bool has_stashed;
    s_held_t *held_head; /* frames already read from the SUB, oldest first */
    s_held_t *held_tail;
    size_t held_bytes;
    zmesh_event_t event;
    s_peer_event_t *peer_event; /* the one handed out, if any */
    zlistx_t *peer_events;      /* s_peer_event_t * queued */
    zhashx_t *names;            /* peer id hex -> name */
    zlistx_t *departed;         /* ids of left peers whose names linger */
    zhashx_t *ready;            /* peer id hex -> uint64_t * generation */
    zhashx_t *connections;      /* data endpoint -> s_connection_t */
    size_t timers;              /* connections with a close or reconnect due */
    uint8_t cached_id[ZMESH__ID_SIZE];
    char cached_id_hex[33];
    /* The publisher name of the current event is a copy: the names table
       may change under it (a peer rejoins) while the application still
       holds the event, e.g. during zmesh_agent_publish. */
    char cached_name[ZMESH_NAME_MAX + 1];
    bool cached_name_valid;
    char cached_topic[ZMESH_TOPIC_MAX + 1];
    size_t cached_topic_size; /* 0: nothing cached */
    bool cached_topic_wanted;

    /* counters kept on this thread */
    uint64_t events_published;
    uint64_t events_received;
    uint64_t frames_rejected;
    uint64_t peer_events_dropped;
    uint64_t frames_dropped; /* held frames beyond S_HELD_BYTES_MAX */
    uint64_t gaps;
    uint64_t events_missing;
    uint64_t duplicates_dropped;
    uint64_t data_reconnects;
    uint64_t queries;         /* numbers the queries to the control thread */
    bool in_multipart;        /* dropping the parts of a multi-part message */
    zmesh_agent_t *live_next; /* in s_live while started */
    zmesh__log_limit_t bad_frame_log;
    zmesh__log_limit_t backlog_log;
    zmesh__log_limit_t reconnect_log;
};

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

static void
s_free_value(void **item)
{
    free(*item);
    *item = NULL;
}

static void
s_peer_event_free(void **item)
{
    s_peer_event_t *event = *item;
    if (event) {
        free(event->name);
        free(event->reason);
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
    self->epoll_fd = -1;
    self->wake_fd = -1;
    self->streams = zhashx_new();
    self->names = zhashx_new();
    self->ready = zhashx_new();
    self->connections = zhashx_new();
    self->peer_events = zlistx_new();
    self->departed = zlistx_new();
    if (zmesh__streams_new(&self->streams_in, S_STREAMS_MAX) != 0 ||
        zmesh__topic_index_new(&self->subs) != 0 ||
        zmesh__topic_index_new(&self->pubs) != 0 || !self->streams ||
        !self->names || !self->ready || !self->connections ||
        !self->peer_events || !self->departed) {
        zmesh_agent_destroy(&self);
        return ZMESH_ENOMEM;
    }
    zhashx_set_destructor(self->streams, s_free_value);
    zhashx_set_destructor(self->names, s_free_value);
    zhashx_set_destructor(self->ready, s_free_value);
    zhashx_set_destructor(self->connections, s_free_value);
    zlistx_set_destructor(self->peer_events, s_peer_event_free);
    zlistx_set_destructor(self->departed, s_free_value);
    *agent = self;
    return 0;
}

static void s_live_remove(zmesh_agent_t *self);
static void s_reply_discard(const char *command, zframe_t *payload);

static void
s_stop(zmesh_agent_t *self)
{
    s_live_remove(self);
    if (self->msg_live) {
        zmq_msg_close(&self->msg);
        self->msg_live = false;
    }
    s_peer_event_free((void **)&self->peer_event);
    while (self->held_head) {
        s_held_t *held = self->held_head;
        self->held_head = held->next;
        zmq_msg_close(&held->msg);
        free(held);
    }
    self->held_tail = NULL;
    self->held_bytes = 0;
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
    if (self->wake_fd >= 0)
        close(self->wake_fd);
    self->wake_fd = -1;
    self->wake_state = S_WAKE_NONE;
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
    for (size_t i = 0; i < self->headers_count; i++) {
        free(self->headers[i].key);
        free(self->headers[i].value);
    }
    zmesh__topic_index_destroy(&self->subs);
    zmesh__topic_index_destroy(&self->pubs);
    zmesh__streams_destroy(&self->streams_in);
    zhashx_destroy(&self->streams);
    zhashx_destroy(&self->names);
    zhashx_destroy(&self->ready);
    zhashx_destroy(&self->connections);
    s_peer_event_free((void **)&self->peer_event);
    zlistx_destroy(&self->peer_events);
    zlistx_destroy(&self->departed);
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
    if (self->seeds_count == S_MAX_SEEDS)
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
    if (self->headers_count == S_MAX_HEADERS || !key_copy) {
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
    uint8_t token[S_TOKEN_SIZE];
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

static int
s_send_patterns(zmesh_agent_t *self, bool subs)
{
    zmesh__patterns_t *patterns =
        s_patterns_of(subs ? self->subs : self->pubs, self->subs_generation);
    if (!patterns)
        return ZMESH_ENOMEM;
    zsock_send(self->actor, "sp", subs ? "SUBS" : "PUBS", patterns);
    return 0;
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

static bool
s_still_wanted(void *arg, const char *topic, size_t topic_size)
{
    zmesh_agent_t *self = arg;
    return zmesh__topic_index_match(self->subs, topic, topic_size);
}

int
zmesh_agent_unsubscribe(zmesh_agent_t *self, const char *pattern)
{
    if (!self || !pattern)
        return ZMESH_EINVAL;
    if (zmesh__pattern_check(pattern, strlen(pattern)) != 0)
        return ZMESH_EPATTERN;
    int rc = zmesh__topic_index_remove(self->subs, pattern);
    if (rc <= 0)
        return rc;
    zmesh__streams_retain(self->streams_in, s_still_wanted, self);
    return s_subscription_change(self, pattern, false);
}

int
zmesh_agent_advertise(zmesh_agent_t *self, const char *pattern)
{
    if (!self || !pattern)
        return ZMESH_EINVAL;
    if (zmesh__pattern_check(pattern, strlen(pattern)) != 0)
        return ZMESH_EPATTERN;
    if (pattern[0] == '$')
        return ZMESH_ERESERVED;
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
        ok = cfg->subs && cfg->pubs;
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
    self->msg_live = true;
    self->subs_generation++;
    for (size_t i = 0; i < zmesh__topic_index_size(self->subs); i++)
        s_filter_set(self, zmesh__topic_index_at(self->subs, i), true);
    s_token_update(self);

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
    self->wake_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    struct epoll_event wake = {.events = EPOLLIN};
    wake.data.fd = self->wake_fd;
    if (self->epoll_fd < 0 || self->wake_fd < 0 ||
        epoll_ctl(self->epoll_fd, EPOLL_CTL_ADD, self->wake_fd, &wake) != 0 ||
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

static void
s_peer_event_push(zmesh_agent_t *self, zmesh_event_type_t type, const char *id,
                  const char *name, const char *reason)
{
    if (zlistx_size(self->peer_events) >= S_MAX_PEER_EVENTS) {
        self->peer_events_dropped++;
        zmesh__log_limited(&self->backlog_log, S_LOG_INTERVAL_MS,
                           "peer event dropped: the application has not "
                           "read %d queued events",
                           S_MAX_PEER_EVENTS);
        return;
    }
    s_peer_event_t *event = calloc(1, sizeof *event);
    if (!event)
        return;
    event->type = type;
    snprintf(event->id, sizeof event->id, "%s", id);
    event->name = strdup(name);
    event->reason = strdup(reason);
    if (!event->name || !event->reason) {
        s_peer_event_free((void **)&event);
        return;
    }
    zlistx_add_end(self->peer_events, event);
}

static void
s_names_set(zmesh_agent_t *self, const char *id, const char *name)
{
    char *copy = strdup(name);
    if (copy)
        zhashx_update(self->names, id, copy);
    self->cached_name_valid = false;
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

// zmq_disconnect throws away what the SUB has received from that
// connection but we have not read yet: the last events of a publisher
// that just left. So before any disconnect, everything the SUB holds is
// read into our own queue, which recv serves first, in order.
static void
s_hold_pending(zmesh_agent_t *self)
{
    for (;;) {
        s_held_t *held = malloc(sizeof *held);
        if (!held)
            return;
        zmq_msg_init(&held->msg);
        if (zmq_msg_recv(&held->msg, self->sub_handle, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&held->msg);
            free(held);
            return;
        }
        size_t size = zmq_msg_size(&held->msg);
        if (self->held_bytes + size > S_HELD_BYTES_MAX) {
            // The application has not read for a long while: losing these
            // is counted and said, never silent.
            zmq_msg_close(&held->msg);
            free(held);
            self->frames_dropped++;
            zmesh__log_limited(&self->backlog_log, S_LOG_INTERVAL_MS,
                               "event dropped: %d MiB already held for an "
                               "application that does not read",
                               S_HELD_BYTES_MAX >> 20);
            continue;
        }
        held->next = NULL;
        if (self->held_tail)
            self->held_tail->next = held;
        else
            self->held_head = held;
        self->held_tail = held;
        self->held_bytes += size;
    }
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

static void
s_on_notify(zmesh_agent_t *self, zmsg_t *msg)
{
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
        s_peer_event_push(self, ZMESH_EVENT_PEER_JOINED, a, b, c);
    } else if (streq(what, "LEFT") && b && c) {
        s_names_retire(self, a);
        zhashx_delete(self->ready, a);
        s_peer_event_push(self, ZMESH_EVENT_PEER_LEFT, a, b, c);
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
    if (size != 1 + S_TOKEN_SIZE || data[1] != 0xff ||
        (data[0] != 0 && data[0] != 1))
        return;
    char id[33];
    zmesh__id_to_hex(data + 2, id);
    uint64_t generation = 0;
    for (int i = 0; i < 8; i++)
        generation = generation << 8 | data[2 + ZMESH__ID_SIZE + i];
    uint64_t *known = zhashx_lookup(self->ready, id);
    if (data[0] == 1) {
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
        zmesh__log_limited(&self->reconnect_log, S_LOG_INTERVAL_MS,
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

static void
s_drain_notify(zmesh_agent_t *self)
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
    for (int i = 0; i < 1024; i++) {
        uint8_t buf[64];
        int n = zmq_recv(self->xpub_handle, buf, sizeof buf, ZMQ_DONTWAIT);
        if (n < 0)
            break;
        s_on_subscription(self, buf, (size_t)n);
    }
}

// The sockets' descriptors in zmesh_agent_fd's epoll set tell of new
// input only. Work the agent has already taken in (peer events drained
// from the notify pipe during a publish, frames held across a
// disconnect, the message after a gap) or a connection timer coming due
// would leave an application that waits on the fd stranded, so a timerfd
// in the set is armed for those: at once, or soon. It is touched only
// when what it should say changes, so a busy stream costs no system call.
static void
s_wake_update(zmesh_agent_t *self)
{
    int want = zlistx_size(self->peer_events) > 0 || self->held_head ||
                       self->has_stashed
                   ? S_WAKE_NOW
               : self->timers > 0 ? S_WAKE_TICK
                                  : S_WAKE_NONE;
    if (want == self->wake_state || self->wake_fd < 0)
        return;
    struct itimerspec when = {{0, 0}, {0, 0}};
    if (want == S_WAKE_NOW)
        when.it_value.tv_nsec = 1;
    else if (want == S_WAKE_TICK)
        when.it_value.tv_nsec = S_DROP_GRACE_MS * 1000000L;
    timerfd_settime(self->wake_fd, 0, &when, NULL);
    self->wake_state = want;
}

static void
s_wake_consume(zmesh_agent_t *self)
{
    if (self->wake_state == S_WAKE_NONE)
        return;
    uint64_t expirations;
    if (read(self->wake_fd, &expirations, sizeof expirations) < 0 &&
        self->wake_state == S_WAKE_TICK)
        return; // not due yet: leave it armed
    self->wake_state = S_WAKE_NONE;
}

// Drains the notify pipe, the monitor and the XPUB's subscription
// messages, each bounded so a flood cannot keep the application thread
// here, and runs the connection timers.
static void
s_service(zmesh_agent_t *self)
{
    self->service_countdown = S_SERVICE_EVERY;
    s_connections_expire(self);
    s_drain_notify(self);
    s_drain_monitor(self);
    s_drain_subscriptions(self);
    s_wake_update(self);
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
static uint64_t *
s_stream_new(zmesh_agent_t *self, const char *topic, size_t size, int *rc)
{
    *rc = zmesh__topic_check(topic, size);
    if (*rc != 0)
        return NULL;
    s_advertise_topic(self, topic, size);
    uint64_t *sequence = calloc(1, sizeof *sequence);
    if (!sequence || zhashx_insert(self->streams, topic, sequence) != 0) {
        free(sequence);
        *rc = ZMESH_ENOMEM;
        return NULL;
    }
    return sequence;
}

int
zmesh_agent_publish(zmesh_agent_t *self, const char *topic, const void *payload,
                    size_t size)
{
    if (!self || !topic || (!payload && size > 0))
        return ZMESH_EINVAL;
    if (!self->started)
        return ZMESH_ESTATE;
    // Checked before anything changes: a failed publish leaves no trace.
    if (size > self->max_msg_size)
        return ZMESH_ETOOBIG;
    if (zmesh__msgpack_check(payload, size) != 0)
        return ZMESH_EPAYLOAD;
    uint64_t *sequence = self->last_sequence;
    size_t topic_size;
    if (!sequence || strcmp(topic, self->last_topic) != 0) {
        topic_size = strnlen(topic, ZMESH_TOPIC_MAX + 1);
        if (topic_size > ZMESH_TOPIC_MAX)
            return ZMESH_ETOPIC;
        sequence = zhashx_lookup(self->streams, topic);
        if (!sequence) {
            int rc;
            sequence = s_stream_new(self, topic, topic_size, &rc);
            if (!sequence)
                return rc;
        }
        memcpy(self->last_topic, topic, topic_size + 1);
        self->last_sequence = sequence;
        self->last_topic_size = topic_size;
    } else
        topic_size = self->last_topic_size;
    // Encoded straight into the message ZeroMQ sends: no copy of ours.
    int64_t now_us = zmesh__wall_clock_us();
    size_t frame_size =
        zmesh__frame_size(topic_size, *sequence + 1, now_us, size);
    if (frame_size > self->max_msg_size)
        return ZMESH_ETOOBIG;
    zmq_msg_t msg;
    if (zmq_msg_init_size(&msg, frame_size) != 0)
        return ZMESH_ENOMEM;
    zmesh__frame_encode(topic, topic_size, self->id, *sequence + 1, now_us,
                        payload, size, zmq_msg_data(&msg), frame_size);
    if (zmq_msg_send(&msg, self->xpub_handle, 0) < 0) {
        zmq_msg_close(&msg);
        return ZMESH_ESYS;
    }
    (*sequence)++;
    self->events_published++;
    if (--self->service_countdown == 0)
        s_service(self);
    return 0;
}

/* ------------------------------------------------------------------------ */
/*  Receiving                                                               */

static const char *
s_publisher_name(zmesh_agent_t *self, const uint8_t id[ZMESH__ID_SIZE])
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
        zmesh__log_limited(&self->bad_frame_log, S_LOG_INTERVAL_MS,
                           "event with an invalid topic dropped");
    }
    memcpy(self->cached_topic, topic, size);
    self->cached_topic_size = size;
    self->cached_topic_wanted = wanted;
    return wanted;
}

// Turns the frame in self->msg into the current event; false when it is
// malformed or not wanted (it is then counted or just skipped).
static bool
s_deliver(zmesh_agent_t *self)
{
    zmesh__frame_t frame;
    // An event is one frame. Every part of a multi-part message is
    // dropped, the last one too, which alone would look like an event.
    bool part = zmq_msg_more(&self->msg) || self->in_multipart;
    self->in_multipart = zmq_msg_more(&self->msg);
    if (part || zmesh__frame_decode(zmq_msg_data(&self->msg),
                                    zmq_msg_size(&self->msg), &frame) != 0) {
        self->frames_rejected++;
        zmesh__log_limited(&self->bad_frame_log, S_LOG_INTERVAL_MS,
                           "malformed event frame (%zu bytes) dropped",
                           zmq_msg_size(&self->msg));
        return false;
    }
    if (!s_topic_wanted(self, frame.topic, frame.topic_size))
        return false;
    zmesh_event_t *event = &self->event;
    event->type = ZMESH_EVENT_MESSAGE;
    event->topic = frame.topic;
    event->payload = frame.payload;
    event->payload_size = frame.payload_size;
    event->peer_name = s_publisher_name(self, frame.publisher);
    event->peer_id = self->cached_id_hex;
    event->reason = "";
    event->sequence = frame.sequence;
    event->gap_last = 0;
    event->timestamp_us = frame.timestamp_us;
    // proto/wire.md#sequences: in order, or a gap said out loud first, and
    // never the same event twice.
    uint64_t first, last;
    switch (zmesh__streams_track(self->streams_in, frame.publisher, frame.topic,
                                 frame.topic_size, frame.sequence, &first,
                                 &last)) {
    case ZMESH__SEQ_OLD: self->duplicates_dropped++; return false;
    case ZMESH__SEQ_GAP:
        self->stashed = *event;
        self->has_stashed = true;
        event->type = ZMESH_EVENT_GAP;
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
        break;
    case ZMESH__SEQ_FIRST:
    case ZMESH__SEQ_NEXT: break;
    }
    self->events_received++;
    return true;
}

static bool
s_pop_peer_event(zmesh_agent_t *self)
{
    s_peer_event_t *pe = zlistx_detach(self->peer_events, NULL);
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
    return true;
}

// Takes the next frame, from the held queue first (older) or the SUB,
// into self->msg, which stays initialised while the agent runs so ZeroMQ
// can reuse it. False when none is waiting.
static bool
s_next_frame(zmesh_agent_t *self)
{
    s_held_t *held = self->held_head;
    if (!held)
        return zmq_msg_recv(&self->msg, self->sub_handle, ZMQ_DONTWAIT) >= 0;
    self->held_head = held->next;
    if (!self->held_head)
        self->held_tail = NULL;
    self->held_bytes -= zmq_msg_size(&held->msg);
    zmq_msg_move(&self->msg, &held->msg);
    zmq_msg_close(&held->msg);
    free(held);
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
    s_wake_update(self);
    return rc;
}

static int
s_recv(zmesh_agent_t *self, int timeout_ms, const zmesh_event_t **event)
{
    if (self->peer_event)
        s_peer_event_free((void **)&self->peer_event);
    if (self->has_stashed) {
        // The message after a gap event: its frame is still in self->msg.
        self->has_stashed = false;
        self->event = self->stashed;
        *event = &self->event;
        return 0;
    }
    // The clock is read only once there is nothing to take at once: on a
    // busy stream every event would otherwise pay for it.
    int64_t deadline = 0;
    for (unsigned skipped = 0;;) {
        if (zlistx_size(self->peer_events) > 0 && s_pop_peer_event(self)) {
            *event = &self->event;
            return 0;
        }
        if (s_next_frame(self)) {
            if (--self->service_countdown == 0)
                s_service(self);
            if (s_deliver(self)) {
                *event = &self->event;
                return 0;
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
        zmq_pollitem_t items[4] = {
            {self->sub_handle, 0, ZMQ_POLLIN, 0},
            {zsock_resolve(self->notify), 0, ZMQ_POLLIN, 0},
            {self->xpub_handle, 0, ZMQ_POLLIN, 0},
            {zsock_resolve(self->monitor), 0, ZMQ_POLLIN, 0}};
        int ready = zmq_poll(items, 4, wait);
        if (ready < 0 && zmq_errno() != EINTR)
            return ZMESH_ESYS;
        if (items[1].revents & ZMQ_POLLIN)
            s_drain_notify(self);
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
    void *pointer = NULL;
    if (zframe_size(payload) == sizeof pointer)
        memcpy(&pointer, zframe_data(payload), sizeof pointer);
    if (streq(command, "PEERS"))
        zmesh_peer_list_destroy((zmesh_peer_list_t **)&pointer);
    else if (streq(command, "WANT"))
        zmesh__want_destroy((zmesh__want_t **)&pointer);
}

// Sends a query and waits for its reply's payload frame. Each query has a
// number its reply echoes, so a reply that comes after its query gave up
// is recognised and discarded instead of answering the next query.
static int
s_query(zmesh_agent_t *self, const char *command, const char *arg,
        zframe_t **payload)
{
    // The number travels as text: czmq's '8' picture has a byte order of
    // its own, and text is what both ends read alike.
    char number[24];
    snprintf(number, sizeof number, "%llu",
             (unsigned long long)++self->queries);
    if (zsock_send(self->actor, "sss", command, number, arg ? arg : "") != 0)
        return ZMESH_ESYS;
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

// A query whose reply is one pointer (NULL meaning out of memory).
static int
s_query_pointer(zmesh_agent_t *self, const char *command, const char *arg,
                void **reply)
{
    zframe_t *frame = NULL;
    int rc = s_query(self, command, arg, &frame);
    if (rc != 0)
        return rc;
    *reply = NULL;
    if (zframe_size(frame) == sizeof *reply)
        memcpy(reply, zframe_data(frame), sizeof *reply);
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
    int rc = s_query_pointer(self, "PEERS", NULL, &reply);
    if (rc == 0)
        *list = reply;
    return rc;
}

int
zmesh_agent_stats(zmesh_agent_t *self, zmesh_stats_t *stats)
{
    if (!self || !stats)
        return ZMESH_EINVAL;
    if (!self->started)
        return ZMESH_ESTATE;
    zframe_t *frame = NULL;
    int rc = s_query(self, "STATS", NULL, &frame);
    if (rc != 0)
        return rc;
    zmesh__control_stats_t control;
    if (!frame || zframe_size(frame) != sizeof control) {
        zframe_destroy(&frame);
        return ZMESH_ESYS;
    }
    memcpy(&control, zframe_data(frame), sizeof control);
    zframe_destroy(&frame);
    memset(stats, 0, sizeof *stats);
    stats->events_published = self->events_published;
    stats->events_received = self->events_received;
    stats->frames_rejected = self->frames_rejected;
    stats->data_reconnects = self->data_reconnects;
    stats->backlog_dropped = self->frames_dropped + self->peer_events_dropped;
    stats->gaps = self->gaps;
    stats->events_missing = self->events_missing;
    stats->duplicates_dropped = self->duplicates_dropped;
    stats->control_rejected = control.control_rejected;
    stats->beacons_received = control.beacons_received;
    stats->beacons_rejected = control.beacons_rejected;
    stats->beacons_foreign = control.beacons_foreign;
    stats->peers_joined = control.peers_joined;
    stats->peers_left = control.peers_left;
    return 0;
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
    int64_t deadline = zmesh__clock_ms() + timeout_ms;
    for (;;) {
        s_service(self);
        void *reply = NULL;
        int rc = s_query_pointer(self, "WANT", topic, &reply);
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
        if (done)
            return (int)ready;
        int64_t now = zmesh__clock_ms();
        if (now >= deadline)
            return ZMESH_ETIMEDOUT;
        zmq_pollitem_t items[2] = {
            {zsock_resolve(self->notify), 0, ZMQ_POLLIN, 0},
            {self->xpub_handle, 0, ZMQ_POLLIN, 0}};
        long wait = deadline - now < 20 ? (long)(deadline - now) : 20;
        zmq_poll(items, 2, wait);
    }
}
