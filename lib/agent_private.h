/*  agent_private.h - what the files of the agent share: the agent and
    event structures, the types kept in them, and the functions one file
    of the agent calls in another. agent.c holds the agent's life cycle,
    configuration, subscriptions and data path; the rest is split by job
    into agent_counters.c (statistics and counters in detail),
    agent_direct.c (direct messages, requests and replies),
    agent_confirms.c (publisher confirms) and agent_durable.c (durable
    consumers). All of it runs on the application thread that owns the
    agent. Private to those files: not installed, and not for the
    library's services either, which get agent_internal.h. */
#ifndef ZMESH_AGENT_PRIVATE_H_INCLUDED
#define ZMESH_AGENT_PRIVATE_H_INCLUDED

#include "agent_internal.h"
#include "codec.h"
#include "confirms.h"
#include "durable.h"
#include "log.h"
#include "outbox.h"
#include "repair.h"
#include "requests.h"
#include "retain.h"
#include "streams.h"
#include "tails.h"
#include "topic.h"
#include "zmesh.h"

#include <czmq.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZMESH__AGENT_MAX_SEEDS 64
#define ZMESH__AGENT_MAX_HEADERS 32
#define ZMESH__AGENT_HISTORY_MAX 64     /* history patterns */
#define ZMESH__AGENT_REQUESTS_MAX 65536 /* requests in flight */
#define ZMESH__AGENT_GROUP_SUBS_MAX 256 /* queue-group subscriptions */
/*  $relay.store requests in flight, at most (agent_confirms.c). */
#define ZMESH__AGENT_STORE_REQUESTS 64
/*  A sync token: 0xFF, an agent id, a generation (proto/wire.md#sync-token). */
#define ZMESH__AGENT_TOKEN_SIZE (1 + ZMESH__ID_SIZE + 8)
/*  Rate-limited log lines: at most one in this long from each limit. */
#define ZMESH__AGENT_LOG_INTERVAL_MS 10000

/*  A frame read from the SUB ahead of time (see s_hold_pending), or
    released by a repair session (see s_repair_release). */
typedef struct zmesh__agent_held {
    zmq_msg_t msg;
    bool repaired; /* it came in a REPAIR */
    bool settled;  /* its stream's repair is over: a gap is reported */
    struct zmesh__agent_held *next;
} zmesh__agent_held_t;

typedef struct {
    zmesh__agent_held_t *head;
    zmesh__agent_held_t *tail;
    size_t bytes;
} zmesh__agent_queue_t;

/*  An event that is not a data frame: a peer joining or leaving, a direct
    message, a request or a reply. */
typedef struct {
    zmesh_event_type_t type;
    char id[33];
    char *name;
    char *reason;
    char *topic;   /* direct messages and requests */
    void *payload; /* ... and replies */
    size_t payload_size;
    uint64_t req;
    int status;
    char *group; /* a queue-group delivery, acknowledged when taken */
    atomic_size_t *backlog; /* what it counts there, given back when freed */
    size_t accounted;
    bool redelivered;
    uint64_t sequence;
    int64_t timestamp_us;
} zmesh__agent_peer_event_t;

/*  The outcome of a confirmed publish, waiting for the application. Not a
    peer event: those are capped for an application that does not read,
    and every confirmed publish gets its outcome (zmesh.h). Their number
    is bounded with the confirms pending (zmesh_agent_publish_confirmed). */
typedef struct {
    char *topic;
    char *reason; /* NULL: stored */
    uint64_t seq;
    int status;
    char relay[33]; /* "" unless stored */
} zmesh__agent_outcome_t;

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
    bool repaired;
    uint64_t request_id;
    int status;
    const char *group;
    bool redelivered;
    unsigned flags;           /* of the event frame */
    const char *consumer;     /* a durable consumer's event: its name */
    uint64_t stream_sequence; /* ... from the relay: the relay sequence */
    unsigned deliveries;      /* ... how many times delivered */
};

/*  What the control thread tells of its joined peers' patterns of one
    kind ("BPVIEW": wanted with back-pressure, "SERVEVIEW": served):
    pairs of a peer's id (32 hex digits) and one of its patterns. */
typedef struct {
    char (*ids)[33];
    char **patterns;
    size_t size;
} zmesh__agent_view_t;

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
    char *seeds[ZMESH__AGENT_MAX_SEEDS];
    size_t seeds_count;
    size_t retransmit_bytes;
    int repair_timeout_ms;
    size_t batch_events; /* zmesh_agent_set_batching */
    int batch_delay_ms;
    char *history_patterns[ZMESH__AGENT_HISTORY_MAX];
    size_t history_counts[ZMESH__AGENT_HISTORY_MAX];
    size_t history_size;
    zmesh__header_t headers[ZMESH__AGENT_MAX_HEADERS];
    size_t headers_count;

    /* patterns; may change at any time */
    zmesh__topic_index_t *subs;
    zmesh__topic_index_t *pubs;
    zmesh__topic_index_t *history; /* subs that ask for history */
    char
        *group_patterns[ZMESH__AGENT_GROUP_SUBS_MAX]; /* our queue-group subs */
    char *group_names[ZMESH__AGENT_GROUP_SUBS_MAX];
    size_t group_counts[ZMESH__AGENT_GROUP_SUBS_MAX];
    size_t group_subs;
    zmesh__topic_index_t *group_view; /* patterns peers take in groups */
    zmesh__topic_index_t *bp_subs;    /* subs wanted with back-pressure */
    zmesh__topic_index_t *serves;     /* answered requests' patterns */
    int bp_wait_ms;
    /* publishing: the peers that want back-pressure, and their progress */
    zmesh__agent_view_t bp_view;
    /* requests and replies on the data plane (agent_direct.c) */
    zmesh__agent_view_t serve_view; /* who answers requests for what */
    uint64_t serve_turn;            /* the next one asked, round robin */
    char rr_reply_topic[64];        /* "$mesh.reply.<our id>" once we asked */
    char rr_request_topic[64];      /* "$mesh.request.<our id>" once we serve */
    char rr_topic[ZMESH_TOPIC_MAX + 1]; /* a request's topic, handed out */
    uint8_t *rr_buf;                    /* a request or reply being encoded */
    size_t rr_cap;
    zhashx_t *credits; /* id hex + topic -> s_credit_t * */
    uint64_t bp_waits;
    uint64_t bp_timeouts;
    uint64_t bp_sends;      /* publishes a back-pressure subscriber saw */
    uint64_t credit_window; /* see S_CREDIT_EVERY in agent.c */
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
    /* In the epoll set besides the sockets, see zmesh__agent_wake_update: */
    int now_fd;          /* eventfd: something is ready for recv */
    int tick_fd;         /* timerfd: a timer will be due soon */
    bool now_armed;      /* now_fd is readable */
    bool tick_armed;     /* tick_fd fires every S_DROP_GRACE_MS */
    int64_t tick_due_ms; /* ... next at this time */
    uint8_t token[ZMESH__AGENT_TOKEN_SIZE]; /* the sync token now subscribed */
    unsigned service_countdown;

    /* publishing: sequence per topic, with the last topic cached */
    zhashx_t *streams;         /* topic -> zmesh__pubstream_t * */
    zmesh__tails_t *tails;     /* when each says where it ends (tails.h) */
    int tail_fd;               /* timerfd in the epoll set: a tail is due */
    int64_t tail_armed_us;     /* ... for then (wall clock); 0: disarmed */
    int64_t tail_fire_ms;      /* ... and fires at or after (monotonic) */
    int64_t tails_clock_us;    /* the wall clock, never set back (agent.c) */
    zmesh__retain_t *retained; /* what was sent, for repairs and history */
    zmesh__outbox_t *outbox;   /* the batch not sent yet (outbox.h) */
    atomic_size_t backlog;     /* control.h: payload bytes passed on, held */
    char last_topic[ZMESH_TOPIC_MAX + 1];
    size_t last_topic_size;
    zmesh__pubstream_t *last_stream;

    /* receiving */
    zmq_msg_t msg;
    bool msg_live;                /* msg initialised (from start to stop) */
    zmesh__streams_t *streams_in; /* sequence per (publisher, topic) */
    zmesh_event_t stashed;        /* a message that follows a gap event */
    bool has_stashed;
    zmesh__agent_queue_t
        held; /* frames already read from the SUB, oldest first */
    zmesh__agent_queue_t
        settled;         /* frames released by repairs: before `held` */
    bool frame_repaired; /* the frame in self->msg came in a REPAIR */
    bool frame_settled;  /* ... and its stream's repair is over */
    /* The current event, decoded: from self->msg, or (from_batch) an
       event of the batch frame in batch_msg, which `batch` walks. Such an
       event gets a frame of its own in self->msg only when something must
       keep it (a repair, a durable consumer): zmesh__agent_event_frame. */
    zmesh__frame_t frame;
    bool frame_ok; /* well-formed */
    bool from_batch;
    bool batch_owned; /* ... and it has its own frame in self->msg now */
    zmq_msg_t batch_msg;
    zmesh__batch_t batch;           /* batch.left: events of it still to come */
    zmesh__repair_t *repair;        /* streams under repair */
    zmesh__requests_t *requests;    /* our requests in flight */
    uint64_t stats_wait;            /* the STATS answer awaited, if any */
    zmesh_counters_t *stats_answer; /* ... once it came */
    uint64_t repairs_rejected;      /* frames in REPAIRs that did not fit */
    zmesh_event_t event;
    zmesh__agent_peer_event_t *peer_event; /* the one handed out, if any */
    zlistx_t *peer_events; /* zmesh__agent_peer_event_t * queued */
    zhashx_t *names;       /* peer id hex -> name */
    zlistx_t *departed;    /* ids of left peers whose names linger */
    zhashx_t *ready;       /* peer id hex -> uint64_t * generation */
    zhashx_t *connections; /* data endpoint -> s_connection_t */
    size_t timers;         /* connections with a close or reconnect due */
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
    uint64_t tails_sent;
    uint64_t tail_gaps;
    uint64_t data_reconnects;
    uint64_t directs_sent;
    uint64_t directs_received;
    uint64_t replies_received;
    uint64_t requests_timed_out;
    uint64_t replies_dropped;
    uint64_t group_received;
    uint64_t requests_refused;
    /* publisher confirms and durable consumers (lazily made) */
    zmesh__confirms_t *confirms;
    int confirm_timeout_ms;
    bool relay_seen; /* a relay answered or confirmed: for timeout reasons */
    const char *confirm_relay; /* the relay whose confirms are being read */
    zmesh__agent_outcome_t *outcomes; /* a ring of those to hand out */
    size_t outcomes_cap, outcomes_head, outcomes_count;
    zmesh__agent_outcome_t
        outcome; /* the one handed out (its strings are freed next) */
    /* The data-plane topic a relay confirms our events on, once we
       subscribed to it (the first confirmed publish), else "". */
    char confirm_topic[sizeof ZMESH__CONFIRM_TOPIC_PREFIX + 32];
    zhashx_t *reach;  /* peer id hex -> s_reach_t: zmesh__agent_reaches */
    zhashx_t *relays; /* peer id hex -> s_relay_mark_t: s_is_relay */
    uint64_t
        store_reqs[ZMESH__AGENT_STORE_REQUESTS]; /* our $relay.store requests */
    size_t store_reqs_next;
    uint64_t confirms_ok;
    uint64_t confirms_failed;
    uint64_t confirms_resent;
    zmesh__log_limit_t confirm_log;
    zmesh__durable_t *durable;
    uint64_t queries;         /* numbers the queries to the control thread */
    bool in_multipart;        /* dropping the parts of a multi-part message */
    zmesh_agent_t *live_next; /* in s_live while started */
    zmesh__log_limit_t bad_frame_log;
    zmesh__log_limit_t backlog_log;
    zmesh__log_limit_t reconnect_log;
};

/*  agent.c */

/*  A zhashx or zlistx destructor for values that are one allocation. */
void zmesh__agent_free_value(void **item);

/*  Queues a non-data event for zmesh_agent_recv; NULL when the queue is
    full (not for replies) or memory short. */
zmesh__agent_peer_event_t *
zmesh__agent_event_push(zmesh_agent_t *self, zmesh_event_type_t type,
                        const char *id, const char *name, const char *reason);

/*  The name of peer `id` (hex), "" when unknown. */
const char *zmesh__agent_peer_name(zmesh_agent_t *self, const char *id);

/*  The name of publisher `id` for the current event, a copy kept in
    self->cached_name (its hex id in self->cached_id_hex). */
const char *zmesh__agent_publisher_name(zmesh_agent_t *self,
                                        const uint8_t id[ZMESH__ID_SIZE]);

/*  zmesh__durable_io_t's name callback: a publisher's name as a relay
    knows it. */
void zmesh__agent_durable_name(void *arg, const char *id, const char *name);

/*  Takes in what the notify pipe holds (bounded). */
void zmesh__agent_drain_notify(zmesh_agent_t *self);

/*  Makes zmesh_agent_fd say what is waiting, after a call that took input
    in. */
void zmesh__agent_wake_update(zmesh_agent_t *self);

/*  Queries to the control thread (control.h): the command and `args`
    (taken), or one string argument; the reply's payload frame, or the one
    pointer it carries (NULL: out of memory, ZMESH_ENOMEM). */
int zmesh__agent_query_msg(zmesh_agent_t *self, const char *command,
                           zmsg_t **args, zframe_t **payload);
int zmesh__agent_query(zmesh_agent_t *self, const char *command,
                       const char *arg, zframe_t **payload);
int zmesh__agent_query_pointer(zmesh_agent_t *self, const char *command,
                               const char *arg, void **reply);

/*  agent_counters.c */

/*  This agent's counters in detail (zmesh_agent_counters), also what it
    answers a peer's STATS question with. */
int zmesh__agent_counters_build(zmesh_agent_t *self, zmesh_counters_t **out);

/*  agent_direct.c */

/*  A DIRECT or REPLY from a peer, from the notify pipe. */
void zmesh__agent_on_direct(zmesh_agent_t *self, zmsg_t *msg);

/*  Ends the requests past their deadline (that of a request to a peer
    that left is a short grace, zmesh__requests_peer_left) with a reply
    event saying so. */
void zmesh__agent_requests_expire(zmesh_agent_t *self);

/*  agent_confirms.c */

/*  Keeps a published frame until a relay confirms it. */
int zmesh__agent_confirm_keep(zmesh_agent_t *self, const char *topic,
                              uint64_t seq, zmq_msg_t *frame);

/*  The confirm outcomes waiting for the application: the one handed out
    is released by the next recv; all of them at destroy; the next one
    becomes self->event (false: none). */
void zmesh__agent_outcome_release(zmesh_agent_t *self);
void zmesh__agent_outcomes_clear(zmesh_agent_t *self);
bool zmesh__agent_outcome_next(zmesh_agent_t *self);

/*  Takes self->event if it is a relay's confirm on the data plane. */
bool zmesh__agent_confirm_frame(zmesh_agent_t *self);

/*  The frame of the current message event as a ZeroMQ message of its own
    (self->msg), made from its batch when it came in one; its decoded
    form in *frame when `frame` is not NULL. NULL when out of memory. */
zmq_msg_t *zmesh__agent_event_frame(zmesh_agent_t *self, zmesh__frame_t *frame);

/*  Requests to a responder and replies to a requester on the data plane
    (proto/wire.md#requests-on-the-data-plane): topics of these prefixes
    and the receiver's id (32 hex digits). */
#define ZMESH__REQUEST_TOPIC_PREFIX "$mesh.request."
#define ZMESH__REPLY_TOPIC_PREFIX "$mesh.reply."

/*  A BPVIEW or SERVEVIEW message into `view` (its old pairs freed), and
    freeing a view's pairs. */
void zmesh__agent_view_set(zmesh__agent_view_t *view, zmsg_t *msg);
void zmesh__agent_view_clear(zmesh__agent_view_t *view);

/*  Subscribes to a reserved topic of the library's own (`topic`, e.g.
    "$mesh.reply.<our id>"). */
int zmesh__agent_subscribe_reserved(zmesh_agent_t *self, const char *topic);

/*  agent_direct.c: requests and replies on the data plane */

/*  Subscribes to requests for us on the data plane: at start when we
    serve anything, and at the first zmesh_agent_serve after it. */
int zmesh__agent_rr_serve(zmesh_agent_t *self);

/*  Takes self->event if it is a request to us or a reply to us that came
    on the data plane: -1 when it is not, 0 when it was taken and is not
    for the application (a gap, a reply nobody waits for, a request for a
    topic we do not serve: answered), 1 when self->event is now the
    application's REQUEST or REPLY event. */
int zmesh__agent_rr_take(zmesh_agent_t *self);

/*  Forgets what a peer that left served. */
void zmesh__agent_serve_view_forget(zmesh_agent_t *self, const char *id);

/*  Runs the timers of confirms and durable consumers. */
void zmesh__agent_timers_run(zmesh_agent_t *self);

/*  Takes self->event (a peer event) if it is the library's own business:
    a relay's answer to a $relay.store of the confirms or to a durable
    consumer's request, or a confirm sent as a direct message. */
bool zmesh__agent_internal_event(zmesh_agent_t *self);

/*  agent_durable.c */

/*  Whether the live message or gap in self->event is handed out, as far
    as durable consumers are concerned (they may hold it, drop it, or mark
    it as theirs). */
bool zmesh__agent_durable_pass(zmesh_agent_t *self);

/*  The next event of a durable consumer (from its relay, its hold or a
    redelivery) into self->event; false when none is due. */
bool zmesh__agent_durable_next(zmesh_agent_t *self);

#endif
