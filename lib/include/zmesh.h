/*  zmesh.h - the public API of libzmesh, a brokerless event mesh.

    A service creates one agent, names the mesh it belongs to, starts it, and
    from then on the agent finds the other agents of that mesh by itself
    (UDP beacons on this host by default, LAN broadcast, multicast or static
    seeds when configured), tells them which topics it publishes and wants,
    and moves msgpack events straight from publisher to subscriber over
    ZeroMQ. The wire protocol is specified in proto/wire.md.

    Conventions, for every function below:
    - Return values: an int >= 0 is success, < 0 is one of the ZMESH_E*
      codes; zmesh_strerror() turns it into a sentence. A call that fails
      leaves the agent as it was.
    - Ownership: a `T **` argument passes ownership (the pointer is set to
      NULL when the call succeeds); a `const T *` is borrowed for the call.
      Strings and events returned by the agent are owned by the agent and
      stay valid for as long as each function says.
    - Threads: an agent is not thread-safe. Call all functions for one agent
      from one thread at a time (the "application thread"). The agent runs
      its discovery and control plane in a background thread of its own, so
      peers stay alive while the application is busy; events published and
      received move between the application thread and the network directly,
      with no thread hop (see docs/threading.md).
    - The library prints nothing and installs no signal handlers. Install a
      log sink with zmesh_log_set() to see what it does.
*/
#ifndef ZMESH_H_INCLUDED
#define ZMESH_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__) && __GNUC__ >= 4
#define ZMESH_EXPORT __attribute__((visibility("default")))
#else
#define ZMESH_EXPORT
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define ZMESH_VERSION_MAJOR 0
#define ZMESH_VERSION_MINOR 2
#define ZMESH_VERSION_PATCH 0

/*  The wire protocol version this library speaks (proto/wire.md#versions). */
#define ZMESH_PROTOCOL_VERSION 1

/*  Default UDP port of discovery beacons. */
#define ZMESH_DEFAULT_BEACON_PORT 5677

/*  Limits on names, enforced at the API and on the wire. */
#define ZMESH_TOPIC_MAX 255        /* bytes in a topic or pattern */
#define ZMESH_NAME_MAX 64          /* bytes in a service or mesh name */
#define ZMESH_HEADER_KEY_MAX 64    /* bytes in a header key */
#define ZMESH_HEADER_VALUE_MAX 255 /* bytes in a header value */

/*  Error codes. Every public function returns one of these (negated values
    are what the functions return; the names are the negative numbers). */
enum {
    ZMESH_OK = 0,
    ZMESH_EINVAL = -1,     /* an argument is NULL, empty or out of range */
    ZMESH_ENOMEM = -2,     /* out of memory */
    ZMESH_EAGAIN = -3,     /* nothing to receive within the timeout */
    ZMESH_ETIMEDOUT = -4,  /* a wait ran out before its condition held */
    ZMESH_EPROTO = -5,     /* bytes that break the wire protocol */
    ZMESH_ESTATE = -6,     /* not allowed in the agent's current state */
    ZMESH_ETOPIC = -7,     /* a topic name breaks the topic syntax */
    ZMESH_EPATTERN = -8,   /* a subscription pattern breaks the syntax */
    ZMESH_ERESERVED = -9,  /* a '$' topic is reserved for the mesh itself */
    ZMESH_ETOOBIG = -10,   /* a message is larger than the configured limit */
    ZMESH_ENOTFOUND = -11, /* no such pattern, peer or key */
    ZMESH_EADDR = -12,     /* an address or interface cannot be used */
    ZMESH_ESYS = -13,      /* a system or ZeroMQ call failed (see the log) */
    ZMESH_EPAYLOAD = -14,  /* the payload is not one well-formed msgpack
                              object */
    ZMESH_EJSON = -15,     /* text that is not valid JSON */
    ZMESH_EGONE = -16,     /* the peer has left the mesh */
    ZMESH_EFULL = -17      /* a queue on the way is full */
};

/*  Returns a static, human-readable sentence for an error code. Never
    returns NULL; unknown codes get "unknown error". Any thread. */
ZMESH_EXPORT const char *zmesh_strerror(int err);

/*  Returns the library version as "MAJOR.MINOR.PATCH". Any thread. */
ZMESH_EXPORT const char *zmesh_version(void);

/* ------------------------------------------------------------------------ */
/*  Logging                                                                 */

typedef enum {
    ZMESH_LOG_ERROR = 0,
    ZMESH_LOG_WARNING = 1,
    ZMESH_LOG_NOTICE = 2,
    ZMESH_LOG_INFO = 3,
    ZMESH_LOG_DEBUG = 4
} zmesh_log_level_t;

/*  A log sink. `message` is one line without a trailing newline, valid only
    during the call. Called from any of the library's threads, so the sink
    must be thread-safe. */
typedef void(zmesh_log_fn)(zmesh_log_level_t level, const char *message,
                           void *arg);

/*  Installs the process-wide log sink; NULL silences the library again.
    Messages above `level` are not formatted at all. Call it before creating
    agents: it is not synchronised with running agents. */
ZMESH_EXPORT void zmesh_log_set(zmesh_log_fn *sink, zmesh_log_level_t level,
                                void *arg);

/*  A ready-made sink that writes "zmesh: LEVEL: message" lines to stderr. */
ZMESH_EXPORT void zmesh_log_stderr(zmesh_log_level_t level, const char *message,
                                   void *arg);

/* ------------------------------------------------------------------------ */
/*  Topics                                                                  */

/*  Topics are NATS-style: tokens of UTF-8 separated by '.', none empty, no
    spaces or control characters, at most ZMESH_TOPIC_MAX bytes. Patterns
    add two wildcards, each a whole token: '*' matches exactly one token,
    '>' (last token only) matches one or more tokens. Topics starting with
    '$' are reserved for the mesh (e.g. "$mesh.peer.joined"); applications
    may subscribe to them but not publish them.

    zmesh_topic_check returns 0 for a valid publishable topic, else
    ZMESH_ETOPIC (syntax), ZMESH_ERESERVED ('$' topic) or ZMESH_EINVAL
    (NULL).
    zmesh_pattern_check returns 0 for a valid pattern, else ZMESH_EPATTERN
    or ZMESH_EINVAL (NULL).
    zmesh_pattern_match returns 1 when `topic` matches `pattern`, 0 when it
    does not or either is invalid. Any thread. */
ZMESH_EXPORT int zmesh_topic_check(const char *topic);
ZMESH_EXPORT int zmesh_pattern_check(const char *pattern);
ZMESH_EXPORT int zmesh_pattern_match(const char *pattern, const char *topic);

/* ------------------------------------------------------------------------ */
/*  Agent lifecycle and configuration                                       */

typedef struct zmesh_agent zmesh_agent_t;

/*  How an agent finds its peers. */
typedef enum {
    /*  Beacons to 127.255.255.255: only agents on this host. The default,
        so an unconfigured agent never sends on the LAN. */
    ZMESH_DISCOVERY_HOST = 0,
    /*  Beacons broadcast on one named interface (its IPv4 broadcast
        address); data and control endpoints bind to that interface. */
    ZMESH_DISCOVERY_LAN = 1,
    /*  Beacons to a multicast group (zmesh_agent_set_multicast_group,
        default 239.192.90.77) on one named interface. */
    ZMESH_DISCOVERY_MULTICAST = 2,
    /*  No beacons at all: peers come only from seeds and their gossip.
        Endpoints bind to the interface when one is given, else to
        127.0.0.1. */
    ZMESH_DISCOVERY_NONE = 3
} zmesh_discovery_t;

/*  Creates an agent for the service `name` (1..ZMESH_NAME_MAX bytes of
    UTF-8, no spaces or control characters; the same rule holds for mesh
    names and header keys). The agent is not started: configure it, then
    call zmesh_agent_start(). On success *agent is the caller's, to be
    freed with zmesh_agent_destroy().
    Errors: ZMESH_EINVAL (bad name or NULL), ZMESH_ENOMEM. */
ZMESH_EXPORT int zmesh_agent_new(zmesh_agent_t **agent, const char *name);

/*  Stops the agent if it runs (peers are told BYE at once), closes its
    sockets, frees it and sets *agent to NULL. Events already handed out
    become invalid. Accepts NULL and a pointer to NULL. */
ZMESH_EXPORT void zmesh_agent_destroy(zmesh_agent_t **agent);

/*  Configuration. Each of these may be called only before start
    (ZMESH_ESTATE afterwards) and returns ZMESH_EINVAL for a bad value.

    set_mesh: the mesh name (default "default"). Agents only talk to agents
      with the same mesh name; the beacon carries a hash of it.
    set_discovery: the scope, and the interface name or IPv4 address
      (required for LAN and MULTICAST, optional for NONE, ignored for HOST).
      ZMESH_EADDR at start if the interface does not exist or has no IPv4
      address.
    set_multicast_group: IPv4 multicast group for ZMESH_DISCOVERY_MULTICAST.
    set_beacon_port: UDP port of beacons (default ZMESH_DEFAULT_BEACON_PORT;
      every agent of a mesh must use the same one).
    set_beacon_interval: ms between beacons and between pings (default
      1000, range 10..60000).
    set_peer_timeout: ms of silence after which a peer is expired (default
      5000, range 3 x beacon interval .. 600000).
    add_seed: the control endpoint "tcp://HOST:PORT" of another agent, to
      contact directly (repeatable, at most 64). Peers learned from seeds
      gossip the peers they know, so one seed is enough to join a mesh.
    set_header: a key/value shown to peers in HELLO (at most 32 headers;
      setting a key again replaces it; the value is 0..255 bytes of UTF-8
      without control characters).
    set_max_msg_size: largest frame accepted from the network, in bytes
      (default 1 MiB, at least 4096); larger frames are dropped by ZeroMQ
      and the connection that sent them is closed.
    set_linger: ms that destroy waits to flush events still queued for
      connected subscribers (default 1000; 0 drops them).
    set_retransmit_buffer: bytes of recently published event frames kept
      to repair subscribers' gaps (default 8 MiB; 0 keeps none, so every
      loss is reported as a gap). See "Reliable delivery" below.
    set_repair_timeout: ms a subscriber waits without hearing from a
      publisher it asked to repair a gap before it reports the gap (each
      part of the answer restarts the wait; default 300, at most 60000; 0
      turns repair off: gaps are reported at once).
    set_batching: events of one topic published in a burst (each within
      5 microseconds of the return of the publish before it) go out as one
      frame of at most `max_events` (default 64, at most 1024; 0 or 1
      sends every event in a frame of its own), and a batch the
      application leaves waiting is sent `max_delay_ms` after its first
      event (default 1, 1..1000) by the agent's thread. Batching costs no
      latency to an event published after a pause, and saves ZeroMQ's
      per-message cost in a burst: at 16-byte events it more than
      doubles throughput. Confirmed events, events a queue group or a
      back-pressure subscriber takes, and payloads over 4 KiB always go on
      their own. See zmesh_agent_publish.
    set_backpressure_wait: ms zmesh_agent_publish may wait for a
      back-pressure subscriber that is too far behind (default 1000, at
      most 60000; 0 never waits). See zmesh_agent_subscribe_backpressure.
    set_history: keep the last `count` events of every topic matching
      `pattern` (at most 10000, 0 removes the setting, at most 64
      patterns) for subscribers that ask for history. ZMESH_EPATTERN for
      a bad pattern. */
ZMESH_EXPORT int zmesh_agent_set_mesh(zmesh_agent_t *agent, const char *mesh);
ZMESH_EXPORT int zmesh_agent_set_discovery(zmesh_agent_t *agent,
                                           zmesh_discovery_t scope,
                                           const char *interface_name);
ZMESH_EXPORT int zmesh_agent_set_multicast_group(zmesh_agent_t *agent,
                                                 const char *group);
ZMESH_EXPORT int zmesh_agent_set_beacon_port(zmesh_agent_t *agent, int port);
ZMESH_EXPORT int zmesh_agent_set_beacon_interval(zmesh_agent_t *agent,
                                                 int interval_ms);
ZMESH_EXPORT int zmesh_agent_set_peer_timeout(zmesh_agent_t *agent,
                                              int timeout_ms);
ZMESH_EXPORT int zmesh_agent_add_seed(zmesh_agent_t *agent,
                                      const char *endpoint);
ZMESH_EXPORT int zmesh_agent_set_header(zmesh_agent_t *agent, const char *key,
                                        const char *value);
ZMESH_EXPORT int zmesh_agent_set_max_msg_size(zmesh_agent_t *agent,
                                              size_t bytes);
ZMESH_EXPORT int zmesh_agent_set_linger(zmesh_agent_t *agent, int linger_ms);
ZMESH_EXPORT int zmesh_agent_set_retransmit_buffer(zmesh_agent_t *agent,
                                                   size_t bytes);
ZMESH_EXPORT int zmesh_agent_set_repair_timeout(zmesh_agent_t *agent,
                                                int timeout_ms);
ZMESH_EXPORT int zmesh_agent_set_history(zmesh_agent_t *agent,
                                         const char *pattern, size_t count);
ZMESH_EXPORT int zmesh_agent_set_backpressure_wait(zmesh_agent_t *agent,
                                                   int wait_ms);
ZMESH_EXPORT int zmesh_agent_set_batching(zmesh_agent_t *agent,
                                          size_t max_events, int max_delay_ms);

/*  Binds the agent's sockets, starts its background thread and begins
    discovery. A new start is a new incarnation with a new id.
    Errors: ZMESH_ESTATE (already started), ZMESH_EADDR (interface or
    beacon port unusable), ZMESH_ESYS. */
ZMESH_EXPORT int zmesh_agent_start(zmesh_agent_t *agent);

/*  The service name given to zmesh_agent_new. Owned by the agent. */
ZMESH_EXPORT const char *zmesh_agent_name(const zmesh_agent_t *agent);

/*  The agent's id for this incarnation: 32 lowercase hex digits, or "" if
    not started. Owned by the agent, valid until destroy. */
ZMESH_EXPORT const char *zmesh_agent_id(const zmesh_agent_t *agent);

/*  The control (ROUTER) endpoint peers reach this agent on, e.g.
    "tcp://127.0.0.1:43121" - what other agents use as a seed. "" if not
    started. Owned by the agent. */
ZMESH_EXPORT const char *zmesh_agent_endpoint(const zmesh_agent_t *agent);

/* ------------------------------------------------------------------------ */
/*  Publishing and subscribing                                              */

/*  Subscribes to `pattern`. Takes effect at once, also for publishers that
    are already connected; the agent connects to every peer that publishes
    a matching topic. Subscribing twice to one pattern is allowed and
    counted (unsubscribe as often). Works before and after start.
    Errors: ZMESH_EPATTERN, ZMESH_EINVAL, ZMESH_ENOMEM. */
ZMESH_EXPORT int zmesh_agent_subscribe(zmesh_agent_t *agent,
                                       const char *pattern);

/*  Queue groups. Subscribes to `pattern` as a member of `group` (a name
    like a service name): each event on a matching topic goes to exactly
    one live member of the group, while plain subscribers still get
    every event. The publisher sends each member at most 64 events it has
    not acknowledged and gives the next event to the member with the
    fewest (load balancing by credit); with none to spare, events wait at
    the publisher (at most 10000, then they are dropped and counted in
    group_dropped). A group exists for a publisher while it knows a member:
    events published while it knows none are not kept for the group (a
    member that joins gets what is published once the publisher has
    heard of it), but the unacknowledged events of a last member that
    leaves wait for the next one. A member acknowledges an event when its
   application takes it from zmesh_agent_recv (zmesh_event_group names the
   group). When a member leaves (BYE, or silence past the peer timeout), the
    events it had not acknowledged go to another member, marked
    zmesh_event_redelivered. An event can therefore reach a group twice
    only when the first member had taken it yet its acknowledgement never
    arrived: it crashed in the instant between the two, its link to the
    publisher was cut for longer than the peer timeout while it kept
    working, or its queue to the publisher was full. The second copy is
    always marked redelivered, but it may be taken before the first one
    is; an application that must never act twice keeps its own record of
    what it did (e.g. by publisher id and sequence) and checks it for
    every event it takes. Members in the publishing agent itself get none
    of its own events; each member holds at most 64 unacknowledged events
    per publisher.
    Group events bypass sequence tracking (each member sees a part of a
    stream). Subscribing twice is counted. Errors: ZMESH_EPATTERN,
    ZMESH_EINVAL (bad group name, more than 256 subscriptions),
    ZMESH_ENOMEM; unsubscribe: ZMESH_ENOTFOUND. */
ZMESH_EXPORT int zmesh_agent_subscribe_group(zmesh_agent_t *agent,
                                             const char *pattern,
                                             const char *group);
ZMESH_EXPORT int zmesh_agent_unsubscribe_group(zmesh_agent_t *agent,
                                               const char *pattern,
                                               const char *group);

/*  Back-pressure. Subscribes to `pattern` (as zmesh_agent_subscribe), and
    asks publishers of matching topics to wait for this subscriber rather
    than let it fall behind: it reports its progress (a CREDIT with the
    first event of a stream its application takes, and every 64th after),
    and a publisher lets it be at most 512 events behind on a stream
    once it has reported; further, zmesh_agent_publish waits for it,
    up to the publisher's back-pressure wait (zmesh_agent_set_backpressure_
    wait, default 1000 ms). One that does not catch up by then is not
    waited for again until it reports progress; what it misses meanwhile
    is repaired or reported as a gap, as for any subscriber. The default
    (zmesh_agent_subscribe) is the other policy: the publisher never waits,
    a subscriber that falls behind loses events at ZeroMQ's queues and
    gets them repaired or reported. So only back-pressure subscribers can
    slow a publisher (and with it its other subscribers), and only by that
    bounded wait per stream. Errors as zmesh_agent_subscribe; unsubscribe
    with zmesh_agent_unsubscribe. */
ZMESH_EXPORT int zmesh_agent_subscribe_backpressure(zmesh_agent_t *agent,
                                                    const char *pattern);

/*  Subscribes to `pattern` (as zmesh_agent_subscribe) and asks each
    publisher of matching topics, when this agent connects to it, for the
    last events it keeps of them (the publisher's zmesh_agent_set_history).
    They are delivered, each topic's in order, before that publisher's
    live events (which wait for them at most twice the repair timeout),
    without duplicates. Publishers this agent is already connected to when
    it is called give no history (their live events would overtake it):
    call it before start, or before those publishers appear. Errors as
    zmesh_agent_subscribe. */
ZMESH_EXPORT int zmesh_agent_subscribe_history(zmesh_agent_t *agent,
                                               const char *pattern);

/*  Drops one subscription to `pattern`. Errors: ZMESH_ENOTFOUND,
    ZMESH_EPATTERN, ZMESH_ERESERVED (the agent's own subscription to its
    relay confirms, $relay.confirm.<its id>). */
ZMESH_EXPORT int zmesh_agent_unsubscribe(zmesh_agent_t *agent,
                                         const char *pattern);

/*  Declares that this agent publishes topics matching `pattern`, so peers
    that want them connect before the first publish. Publishing a topic
    that no declared pattern covers declares that topic by itself.
    Errors: ZMESH_EPATTERN, ZMESH_ERESERVED, ZMESH_ENOMEM. */
ZMESH_EXPORT int zmesh_agent_advertise(zmesh_agent_t *agent,
                                       const char *pattern);

/*  Publishes one event. `payload` must hold exactly one msgpack object of
    `size` bytes; it is copied and passed to subscribers unchanged. Returns
    at once: the event is queued on every connected subscriber (ZeroMQ
    drops it for a subscriber whose queue is full). Each event gets the
    next sequence number of its topic, starting at 1.
    Batching: an event published within a few microseconds of the one
    before it (a burst) may wait, with the events of the same topic after
    it, to go out as one frame (proto/wire.md#batch-frame); an event after
    a pause goes at once. A waiting batch goes out when it is full, when
    another topic or an event that goes on its own is published, at the
    next zmesh_agent_recv,
    zmesh_agent_wait_subscribers, zmesh_agent_flush or destroy, and at
    the latest (the application having gone to do something else) after
    the agent's batch delay, 1 ms by default. Events of a batch carry the
    timestamp of its first. See zmesh_agent_set_batching.
    Errors: ZMESH_ESTATE (not started), ZMESH_ETOPIC, ZMESH_ERESERVED,
    ZMESH_EPAYLOAD (not one msgpack object), ZMESH_ETOOBIG (larger than the
    max message size), ZMESH_ESYS. */
ZMESH_EXPORT int zmesh_agent_publish(zmesh_agent_t *agent, const char *topic,
                                     const void *payload, size_t size);

/*  Sends the events zmesh_agent_publish batched and still holds, now,
    rather than at the next recv or after the batch delay. Errors:
    ZMESH_EINVAL, ZMESH_ESTATE (not started). */
ZMESH_EXPORT int zmesh_agent_flush(zmesh_agent_t *agent);

/*  Publishes one event like zmesh_agent_publish and asks the mesh's
    relays (mesh-relay) to confirm they stored it (proto/relay.md
    #publisher-confirms). *sequence (if not NULL) gets the event's
    sequence number. Exactly one ZMESH_EVENT_CONFIRM with this topic and
    sequence follows: status 0 once a relay has stored the event (synced
    to disk under its stream's sync policy), else ZMESH_ETIMEDOUT (no
    confirm within the confirm timeout; zmesh_event_reason says whether a
    relay was there at all) or ZMESH_EFULL (the relay could not store it,
    e.g. its disk is full; the reason says why). Until then the agent
    keeps a copy, and sends unconfirmed events again, straight to a relay,
    every second: so events a relay missed while it restarted are stored
    once it is back. Errors: those of zmesh_agent_publish, and ZMESH_EFULL
    when 65,536 events or 64 MiB already wait for a confirm, outcomes not
    yet received counting as waiting (receive events to let confirms in,
    then publish again). */
ZMESH_EXPORT int zmesh_agent_publish_confirmed(zmesh_agent_t *agent,
                                               const char *topic,
                                               const void *payload, size_t size,
                                               uint64_t *sequence);

/*  How long a confirmed publish waits for its confirm before it is
    reported as timed out: 1..3600000 ms, default 10000. Any time. Errors:
    ZMESH_EINVAL. */
ZMESH_EXPORT int zmesh_agent_set_confirm_timeout(zmesh_agent_t *agent,
                                                 int timeout_ms);

/*  Waits until the peers that want `topic` (one of their patterns matches
    it) are really subscribed to this agent, so that an event published
    next reaches them; useful before a one-shot publish, e.g. from a
    script. If no advertised pattern covers `topic`, it is advertised
    first (as zmesh_agent_publish would), since subscribers connect only
    to publishers of what they want. It returns when no peer is still
    half-discovered (heard by beacon or seed, HELLO not yet in), every peer
    known to want the topic has its subscription in place (proto/wire.md
    #sync-token), and either at least `min_peers` such peers exist
    (min_peers > 0) or discovery has settled (min_peers == 0: one and a
    half beacon intervals since start, so every live peer was heard).
    Returns the number of subscribed peers (>= 0), or ZMESH_ETIMEDOUT after
    `timeout_ms`, ZMESH_ESTATE (not started), ZMESH_ETOPIC,
    ZMESH_ERESERVED, ZMESH_EINVAL. Peer events that arrive meanwhile are
    kept for zmesh_agent_recv. */
ZMESH_EXPORT int zmesh_agent_wait_subscribers(zmesh_agent_t *agent,
                                              const char *topic, int min_peers,
                                              int timeout_ms);

/* ------------------------------------------------------------------------ */
/*  Receiving                                                               */

typedef struct zmesh_event zmesh_event_t;

typedef enum {
    ZMESH_EVENT_MESSAGE = 1,     /* an event on a subscribed topic */
    ZMESH_EVENT_PEER_JOINED = 2, /* a peer was discovered and said HELLO */
    ZMESH_EVENT_PEER_LEFT = 3,   /* a peer said BYE, fell silent, or was
                                    replaced by a new incarnation */
    ZMESH_EVENT_GAP = 4,         /* events of one publisher's topic were
                                    lost: sequence .. gap_last never came */
    ZMESH_EVENT_DIRECT = 5,      /* a direct message from a peer */
    ZMESH_EVENT_REQUEST = 6,     /* a request on a topic this agent
                                    serves: answer with zmesh_agent_reply */
    ZMESH_EVENT_REPLY = 7,       /* the outcome of zmesh_agent_request: a
                                    reply, or zmesh_event_status says why
                                    there is none */
    ZMESH_EVENT_CONFIRM = 8,     /* the outcome of a confirmed publish:
                                    stored by a relay (status 0), or not */
    ZMESH_EVENT_LOST = 9         /* a durable consumer's relay deleted
                                    stored events (retention) before the
                                    consumer had them: relay sequences
                                    sequence .. gap_last */
} zmesh_event_type_t;

/*  Waits up to `timeout_ms` (0: do not wait, -1: forever) for the next
    event (a message, a gap, a peer joining or leaving) and sets *event to
    it. The event is owned by the agent and valid until the next call of
    zmesh_agent_recv or zmesh_agent_destroy; other calls meanwhile (such
    as zmesh_agent_publish) leave it alone. The SUB connects to new
    publishers while the application thread is in this call (or any other
    of the agent's), so a subscriber should be in it regularly.
    Errors: ZMESH_EAGAIN (nothing within the timeout), ZMESH_ESTATE (not
    started), ZMESH_EINVAL. */
ZMESH_EXPORT int zmesh_agent_recv(zmesh_agent_t *agent, int timeout_ms,
                                  const zmesh_event_t **event);

/*  A file descriptor for the application's own poll/epoll/select loop. It
    becomes readable when the agent may have something to do; it is
    edge-like, so when it is readable call zmesh_agent_recv(agent, 0, ...)
    until it returns ZMESH_EAGAIN. Owned by the agent; do not close it or
    read from it. ZMESH_ESTATE if not started. */
ZMESH_EXPORT int zmesh_agent_fd(zmesh_agent_t *agent);

/*  Event accessors. Strings are NUL-terminated and live as long as the
    event. For peer events, topic is "", payload is empty and sequence and
    timestamp are 0. A gap event has the topic, publisher (peer name and
    id) and timestamp of the message that revealed it, and an empty
    payload. */
ZMESH_EXPORT zmesh_event_type_t zmesh_event_type(const zmesh_event_t *event);
ZMESH_EXPORT const char *zmesh_event_topic(const zmesh_event_t *event);
ZMESH_EXPORT const void *zmesh_event_payload(const zmesh_event_t *event,
                                             size_t *size);
/*  The publisher (for messages) or the peer (for peer events). A message
    a durable consumer reads from a relay after its publisher left has the
    name the relay knew; "" when nobody knows it. */
ZMESH_EXPORT const char *zmesh_event_peer_name(const zmesh_event_t *event);
ZMESH_EXPORT const char *zmesh_event_peer_id(const zmesh_event_t *event);
/*  Per-topic sequence number given by the publisher, from 1. For a gap,
    the first missing one.

    Reliable delivery. Sequences per (publisher, topic) are checked for
    every message: a subscriber never gets one twice or out of order.
    When some are lost (a full queue, a dropped connection) the agent asks
    the publisher for them (a NAK on the control plane); the publisher
    sends them again from its retransmit buffer, and they are delivered
    in order, zmesh_event_repaired() saying so, before the later events
    of that stream, which wait meanwhile (other streams do not). What the
    publisher no longer holds, or what does not come within the repair
    timeout, is reported as a ZMESH_EVENT_GAP naming the publisher, the
    topic and the missing range, just before the message after it.
    A subscriber that connects while a publisher is already publishing
    (a slow joiner) starts each stream cleanly: events published after
    its subscription reached the publisher are delivered (repaired if
    need be), earlier ones are not expected; if the publisher can no
    longer vouch for that (its buffer moved on), the missing range from 1
    is reported as a gap. A loss at the very end of a stream, which no
    later event reveals, is revealed by the publisher's tail frames: a
    quiet stream's publisher says where it ends, 0.1, 1 and 10 s after
    its last event, and what is missing up to there is repaired, or
    reported as a gap with no message after it. The publisher sends them
    when its application next calls into the agent (any publish or
    receive, or a wake of zmesh_agent_fd), not after
    zmesh_agent_destroy; a subscriber stalled through all three, or a
    publisher that died, leaves such a loss unseen until the stream's
    next event. Unsubscribing forgets the streams no
    pattern wants any more (what they miss later was not wanted), and a
    subscriber tracks at most 65,536 streams: past that it starts them
    all again, and a loss spanning that moment is not reported. */
ZMESH_EXPORT uint64_t zmesh_event_sequence(const zmesh_event_t *event);

/*  For ZMESH_EVENT_GAP, the last missing sequence number (inclusive;
    equal to zmesh_event_sequence for a single lost event); 0 otherwise. */
ZMESH_EXPORT uint64_t zmesh_event_gap_last(const zmesh_event_t *event);
/*  For a queue-group message, the group's name; "" otherwise. */
ZMESH_EXPORT const char *zmesh_event_group(const zmesh_event_t *event);
/*  1 for a queue-group message that went to another member first, which
    left without acknowledging it (see zmesh_agent_subscribe_group), and
    for a durable consumer's message delivered before (see
    zmesh_agent_subscribe_durable). */
ZMESH_EXPORT int zmesh_event_redelivered(const zmesh_event_t *event);
/*  1 when this message was lost on the way and sent again by its
    publisher (a repair), else 0. */
ZMESH_EXPORT int zmesh_event_repaired(const zmesh_event_t *event);
/*  Publish time on the publisher's clock, microseconds since the epoch. */
ZMESH_EXPORT int64_t zmesh_event_timestamp(const zmesh_event_t *event);
/*  For ZMESH_EVENT_PEER_LEFT, why: "bye", "timeout" or "restarted"; for a
    join, how the peer was found: "beacon", "seed", "gossip" or "hello". "" for
    messages. */
ZMESH_EXPORT const char *zmesh_event_reason(const zmesh_event_t *event);

/*  For requests and replies, the number zmesh_agent_request gave the
    request; 0 for other events. */
ZMESH_EXPORT uint64_t zmesh_event_request_id(const zmesh_event_t *event);

/*  For ZMESH_EVENT_REPLY: 0 when the payload is the responder's reply,
    else why there is none: ZMESH_ETIMEDOUT (no reply within the timeout),
    ZMESH_EGONE (the responder left first), ZMESH_EFULL (the responder's
    queue to its application was full), ZMESH_ENOTFOUND (the agent asked
    does not serve that topic, zmesh_agent_serve). 0 for other events. */
ZMESH_EXPORT int zmesh_event_status(const zmesh_event_t *event);

/* ------------------------------------------------------------------------ */
/*  Durable consumers                                                       */

/*  Where a new durable consumer starts (an existing one goes on from where
    it acknowledged, whatever is asked). */
typedef enum {
    ZMESH_START_ALL = 0,  /* every event the relay holds */
    ZMESH_START_NEW = 1,  /* events stored after the consumer is created */
    ZMESH_START_LAST = 2, /* per topic, the last event stored, then on */
    ZMESH_START_SEQ = 3,  /* from relay sequence start_sequence */
    ZMESH_START_TIME = 4  /* from the first event stored at or after
                             start_time_us */
} zmesh_start_t;

/*  Options of zmesh_agent_subscribe_durable; zero them (or pass NULL) for
    the defaults. */
typedef struct {
    const char *stream;  /* the relay's stream; NULL: the first that
                            covers the pattern */
    zmesh_start_t start; /* for a new consumer */
    uint64_t start_sequence;
    int64_t start_time_us; /* microseconds since the epoch */
    int ack_wait_ms;       /* 0: 30000; an event not acknowledged within
                              it is delivered again */
    int max_deliver;       /* 0: no limit; after that many deliveries an
                              unacknowledged event is dropped (counted) */
    int max_ack_pending;   /* 0: 1000; events delivered and not yet
                              acknowledged, at most (1..10000) */
} zmesh_durable_options_t;

/*  Subscribes to `pattern` as durable consumer `consumer` (1..64 of
    [A-Za-z0-9_.-]), kept by the mesh's relay (mesh-relay with a stream
    that covers the pattern): what was published while this consumer was
    away comes first, from the relay, then live events straight from
    their publishers, in order per (publisher, topic), with no gap and no
    duplicate at the switch (proto/relay.md#durable-consumers). Messages
    have zmesh_event_consumer() set; acknowledge each with
    zmesh_agent_ack once processed, or it comes again after ack_wait_ms
    (zmesh_event_redelivered then says 1). Events the relay could not
    store arrive as ZMESH_EVENT_GAP; events it deleted before this
    consumer read them as ZMESH_EVENT_LOST. While no relay is there the
    agent keeps asking (every second) and live events wait. Call after
    zmesh_agent_start. At most 16 durable subscriptions per agent.
    Errors: ZMESH_EINVAL (bad name or options), ZMESH_EPATTERN,
    ZMESH_ERESERVED, ZMESH_ESTATE (not started), ZMESH_ETOOBIG (too many),
    ZMESH_ENOMEM; a second call with the same consumer name: ZMESH_EINVAL.
    What the relay refuses (no stream covers the pattern, the consumer
    exists with another pattern) is logged and counted
    (durable_refused), and the agent asks again every 5 s. */
ZMESH_EXPORT int
zmesh_agent_subscribe_durable(zmesh_agent_t *agent, const char *consumer,
                              const char *pattern,
                              const zmesh_durable_options_t *options);

/*  Acknowledges a durable consumer's message (one received from
    zmesh_agent_recv, the latest or an earlier one: only its consumer,
    publisher id, topic, sequence and relay sequence are used). The relay
    learns of acknowledgements within 50 ms, and at zmesh_agent_destroy.
    Errors: ZMESH_EINVAL (not a durable consumer's message), ZMESH_ENOTFOUND
    (not waiting for an acknowledgement: acknowledged already, or dropped
    after max_deliver), ZMESH_ESTATE. */
ZMESH_EXPORT int zmesh_agent_ack(zmesh_agent_t *agent,
                                 const zmesh_event_t *event);

/*  For a durable consumer's message, gap or loss: the consumer's name;
    "" for other events. */
ZMESH_EXPORT const char *zmesh_event_consumer(const zmesh_event_t *event);

/*  For a durable consumer's message that came from the relay, its relay
    sequence; 0 for one that came live, and for other events. */
ZMESH_EXPORT uint64_t zmesh_event_stream_sequence(const zmesh_event_t *event);

/*  For a durable consumer's message, how many times it was delivered
    (1 the first time); 0 for other events. */
ZMESH_EXPORT unsigned zmesh_event_deliveries(const zmesh_event_t *event);

/*  Tells the agent that the events of stream (publisher, topic) up to
    `last_sequence` were already handled, e.g. stored before this process
    restarted: the stream goes on from there, so events after it that
    were lost are repaired (or reported as a gap) instead of the stream
    starting afresh. For services that keep what they receive, such as
    mesh-relay. `publisher_id` is 32 hex digits (zmesh_event_peer_id).
    Errors: ZMESH_EINVAL, ZMESH_ETOPIC, ZMESH_ESTATE (not started). */
ZMESH_EXPORT int zmesh_agent_resume_stream(zmesh_agent_t *agent,
                                           const char *publisher_id,
                                           const char *topic,
                                           uint64_t last_sequence);

/* ------------------------------------------------------------------------ */
/*  Direct messages and requests                                           */

/*  Point-to-point on the control plane: a message or request goes to one
    agent, not to subscribers. `peer` names it by id (32 hex digits) or by
    service name; when several agents have that name, the one that joined
    last is taken. The receiving application gets it from zmesh_agent_recv
    whatever it subscribes to, with the sender as peer name and id.

    zmesh_agent_send: one direct message (ZMESH_EVENT_DIRECT at the peer).
    `payload` is one msgpack object; `topic` may be a '$' topic (mesh
    services such as mesh-relay use those). Delivery is not confirmed;
    what is known at once is returned: ZMESH_ENOTFOUND (no such peer),
   ZMESH_EGONE (it left), ZMESH_EFULL (its queue is full), ZMESH_ETOPIC,
    ZMESH_EPAYLOAD, ZMESH_ETOOBIG, ZMESH_ESTATE, ZMESH_EINVAL. */
ZMESH_EXPORT int zmesh_agent_send(zmesh_agent_t *agent, const char *peer,
                                  const char *topic, const void *payload,
                                  size_t size);

/*  Declares that this agent answers requests on topics matching
    `pattern` (it gets them as ZMESH_EVENT_REQUEST and should reply to
    each). Requests on other topics are refused for it at once, the
    requester's reply event saying ZMESH_ENOTFOUND, so an agent that only
    subscribes (a mesh-tap, say) is never asked. Works before and after
    start; serving twice is counted. Errors: ZMESH_EPATTERN, ZMESH_EINVAL,
    ZMESH_ENOMEM; unserve: ZMESH_ENOTFOUND. */
ZMESH_EXPORT int zmesh_agent_serve(zmesh_agent_t *agent, const char *pattern);
ZMESH_EXPORT int zmesh_agent_unserve(zmesh_agent_t *agent, const char *pattern);

/*  zmesh_agent_request: asks `peer`, or with peer NULL any one agent that
    serves `topic` (zmesh_agent_serve; in turn, when several do), and
    returns at once with *request_id set. Exactly one ZMESH_EVENT_REPLY with
   that request id follows: the reply, or a status saying why there is none (at
   the latest after `timeout_ms`, 1..600000); either way its peer name and id
   are those of the agent asked. A reply that comes after that is dropped and
   counted. Errors as for zmesh_agent_send, with ZMESH_ENOTFOUND also when no
   agent serves `topic`. The first requests to an agent, and its replies,
   go through both agents' threads; once each side's data subscription is
   in effect at the other (about a second after the first request), they
   are events on the data plane, which halves a round trip
   (proto/wire.md#requests-on-the-data-plane). */
ZMESH_EXPORT int zmesh_agent_request(zmesh_agent_t *agent, const char *peer,
                                     const char *topic, const void *payload,
                                     size_t size, int timeout_ms,
                                     uint64_t *request_id);

/*  Answers a ZMESH_EVENT_REQUEST (the event just received, or one of
    earlier: only its peer id and request id are used, so copy those and
    call zmesh_agent_reply_to for a later answer). Each request is
    answered once. Errors: ZMESH_EINVAL (not a request), ZMESH_EGONE (the
    requester has left: the reply is dropped and counted), ZMESH_EFULL,
    ZMESH_EPAYLOAD, ZMESH_ETOOBIG, ZMESH_ESTATE. */
ZMESH_EXPORT int zmesh_agent_reply(zmesh_agent_t *agent,
                                   const zmesh_event_t *request,
                                   const void *payload, size_t size);
ZMESH_EXPORT int zmesh_agent_reply_to(zmesh_agent_t *agent, const char *peer_id,
                                      uint64_t request_id, const void *payload,
                                      size_t size);

/* ------------------------------------------------------------------------ */
/*  Peers                                                                   */

typedef struct zmesh_peer_list zmesh_peer_list_t;

/*  A snapshot of the peers this agent knows now. On success *list is the
    caller's, to be freed with zmesh_peer_list_destroy().
    Errors: ZMESH_ESTATE (not started), ZMESH_ENOMEM, ZMESH_ETIMEDOUT (the
    agent's thread did not answer within 5 s). */
ZMESH_EXPORT int zmesh_agent_peers(zmesh_agent_t *agent,
                                   zmesh_peer_list_t **list);
ZMESH_EXPORT void zmesh_peer_list_destroy(zmesh_peer_list_t **list);

/*  Accessors; `i` must be < zmesh_peer_list_size(). Strings live as long
    as the list. */
ZMESH_EXPORT size_t zmesh_peer_list_size(const zmesh_peer_list_t *list);
ZMESH_EXPORT const char *zmesh_peer_name(const zmesh_peer_list_t *list,
                                         size_t i);
ZMESH_EXPORT const char *zmesh_peer_id(const zmesh_peer_list_t *list, size_t i);
/*  The peer's control (ROUTER) and data (PUB) endpoints. */
ZMESH_EXPORT const char *zmesh_peer_endpoint(const zmesh_peer_list_t *list,
                                             size_t i);
ZMESH_EXPORT const char *zmesh_peer_data_endpoint(const zmesh_peer_list_t *list,
                                                  size_t i);
/*  The host name, process id and library version the peer reported. */
ZMESH_EXPORT const char *zmesh_peer_host(const zmesh_peer_list_t *list,
                                         size_t i);
ZMESH_EXPORT uint64_t zmesh_peer_pid(const zmesh_peer_list_t *list, size_t i);
ZMESH_EXPORT const char *zmesh_peer_version(const zmesh_peer_list_t *list,
                                            size_t i);
/*  How the peer was found: "beacon", "seed", "gossip" or "hello". */
ZMESH_EXPORT const char *zmesh_peer_origin(const zmesh_peer_list_t *list,
                                           size_t i);
/*  Milliseconds since anything was last heard from the peer. */
ZMESH_EXPORT int64_t zmesh_peer_last_seen_ms(const zmesh_peer_list_t *list,
                                             size_t i);
/*  1 when this agent's data socket is connected to the peer's. */
ZMESH_EXPORT int zmesh_peer_connected(const zmesh_peer_list_t *list, size_t i);
/*  The patterns the peer publishes (advertised) and wants (subscribed). */
ZMESH_EXPORT size_t zmesh_peer_publishes_size(const zmesh_peer_list_t *list,
                                              size_t i);
ZMESH_EXPORT const char *zmesh_peer_publishes(const zmesh_peer_list_t *list,
                                              size_t i, size_t j);
ZMESH_EXPORT size_t zmesh_peer_wants_size(const zmesh_peer_list_t *list,
                                          size_t i);
ZMESH_EXPORT const char *zmesh_peer_wants(const zmesh_peer_list_t *list,
                                          size_t i, size_t j);
/*  The patterns the peer answers requests for (zmesh_agent_serve). */
ZMESH_EXPORT size_t zmesh_peer_serves_size(const zmesh_peer_list_t *list,
                                           size_t i);
ZMESH_EXPORT const char *zmesh_peer_serves(const zmesh_peer_list_t *list,
                                           size_t i, size_t j);
/*  The peer's headers (zmesh_agent_set_header on its side). */
ZMESH_EXPORT size_t zmesh_peer_headers_size(const zmesh_peer_list_t *list,
                                            size_t i);
ZMESH_EXPORT const char *zmesh_peer_header_key(const zmesh_peer_list_t *list,
                                               size_t i, size_t j);
ZMESH_EXPORT const char *zmesh_peer_header_value(const zmesh_peer_list_t *list,
                                                 size_t i, size_t j);

/* ------------------------------------------------------------------------ */
/*  Counters                                                                */

/*  What an agent has done and rejected since start. Every rejection is
    also logged (rate-limited) at ZMESH_LOG_WARNING. */
typedef struct {
    uint64_t events_published;      /* zmesh_agent_publish calls that sent */
    uint64_t events_received;       /* message events handed to the app */
    uint64_t frames_rejected;       /* data frames dropped as malformed */
    uint64_t data_reconnects;       /* data connections dropped and made again
                                       (publisher restarted, or it sent a frame
                                       over the size limit) */
    uint64_t backlog_dropped;       /* events and peer events dropped because
                                       the application stopped reading (more
                                       than 64 MiB or 10000 peer events held) */
    uint64_t gaps;                  /* ZMESH_EVENT_GAP events delivered */
    uint64_t events_missing;        /* events those gaps name, in all */
    uint64_t duplicates_dropped;    /* events dropped as delivered already */
    uint64_t control_rejected;      /* control messages dropped as malformed
                                       or from an unknown protocol version */
    uint64_t beacons_received;      /* valid beacons of this mesh */
    uint64_t beacons_rejected;      /* datagrams that are not valid beacons */
    uint64_t beacons_foreign;       /* valid beacons of other meshes or
                                       protocol versions, ignored */
    uint64_t peers_joined;          /* peers that joined since start */
    uint64_t peers_left;            /* peers that left since start */
    uint64_t repair_requests;       /* NAKs sent for gaps seen */
    uint64_t events_repaired;       /* lost events that came again in time */
    uint64_t repair_timeouts;       /* repairs given up at the timeout */
    uint64_t repairs_rejected;      /* frames in repairs that were not of the
                                       stream asked for (dropped) */
    uint64_t events_resent;         /* events this agent sent again to its
                                       subscribers */
    uint64_t retransmit_bytes;      /* bytes in the retransmit buffer now */
    uint64_t directs_sent;          /* direct messages and requests sent */
    uint64_t directs_received;      /* ... received and handed to the app */
    uint64_t replies_received;      /* replies matched to a request */
    uint64_t requests_timed_out;    /* requests that got no reply in time */
    uint64_t replies_dropped;       /* replies to requesters that left, or
                                       that came after their timeout */
    uint64_t group_received;        /* queue-group events taken here */
    uint64_t group_delivered;       /* queue-group events sent to members */
    uint64_t group_redelivered;     /* ... sent again after a member left */
    uint64_t group_dropped;         /* ... lost: no member for 10000 events */
    uint64_t backpressure_waits;    /* publishes that waited for a
                                       back-pressure subscriber */
    uint64_t backpressure_timeouts; /* ... in vain, until the wait ran out */
    uint64_t requests_refused;      /* requests for topics not served here,
                                       answered ZMESH_ENOTFOUND */
    uint64_t confirms_ok;           /* confirmed publishes stored by a relay */
    uint64_t confirms_failed;       /* ... not: timed out, or refused */
    uint64_t confirms_resent;       /* events sent again to a relay */
    uint64_t durable_delivered;     /* durable consumers' messages handed to
                                       the app (redeliveries included) */
    uint64_t durable_redelivered;   /* ... again, after ack_wait_ms */
    uint64_t durable_duplicates;    /* ... dropped: given to the app already */
    uint64_t durable_terminated;    /* ... dropped after max_deliver */
    uint64_t durable_refused;       /* $relay.consume answered with an error */
    uint64_t batches_sent;          /* batch frames published (several events
                                       each: zmesh_agent_set_batching) */
    uint64_t events_batched;        /* events published in them */
    uint64_t events_unsent;         /* published events lost before they left:
                                       no memory for their batch frame */
    uint64_t tails_sent;            /* tail frames published: where a quiet
                                       stream ends (see "Reliable delivery") */
    uint64_t tail_gaps;             /* tail frames received that showed
                                       events missing at a stream's end */
} zmesh_stats_t;

/*  Fills *stats. Errors: ZMESH_ESTATE (not started), ZMESH_EINVAL,
    ZMESH_ETIMEDOUT (the agent's thread did not answer within 5 s). */
ZMESH_EXPORT int zmesh_agent_stats(zmesh_agent_t *agent, zmesh_stats_t *stats);

/*  Counters in detail, as groups of named values:
    - kind "agent", name = the service name: every zmesh_stats_t field (by
      its name there) and queue_depth (events waiting for the application),
      held_bytes, streams (tracked), repairs_open, requests_open;
    - kind "peer", name = a publisher's id (32 hex digits), for what this
      agent received from it: received, repaired, gaps, missing,
      duplicates, lag_us (delivery minus publish time, sampled; clocks of
      other hosts may differ), topics;
    - kind "topic", name = a topic: sent (published here) and the same
      receive counters summed over publishers.
    At most 128 peer and 256 topic groups (the busiest); "agent" counts
    the rest in peers_omitted and topics_omitted. */
typedef struct zmesh_counters zmesh_counters_t;

/*  This agent's counters. On success *counters is the caller's, to be
    freed with zmesh_counters_destroy(). Errors: ZMESH_ESTATE, ZMESH_ENOMEM,
    ZMESH_ETIMEDOUT (the agent's thread did not answer within 5 s). */
ZMESH_EXPORT int zmesh_agent_counters(zmesh_agent_t *agent,
                                      zmesh_counters_t **counters);

/*  Asks another agent (by id or service name) for its counters with a
    STATS message (proto/wire.md#stats) and waits up to `timeout_ms` for
    the answer; events that arrive meanwhile are kept for recv. The other
    agent's application thread answers when it is in any zmesh call, so an
    application that never calls in does not answer. Errors:
    ZMESH_ENOTFOUND (no such peer), ZMESH_ETIMEDOUT, ZMESH_ESTATE,
    ZMESH_EINVAL, ZMESH_ENOMEM. */
ZMESH_EXPORT int zmesh_agent_query_counters(zmesh_agent_t *agent,
                                            const char *peer, int timeout_ms,
                                            zmesh_counters_t **counters);

/*  Accessors: groups i < zmesh_counters_size, keys j < zmesh_counters_keys.
    Strings live as long as the set. zmesh_counters_get returns the value
    of `key` in group i, or 0 when it is not there. */
ZMESH_EXPORT size_t zmesh_counters_size(const zmesh_counters_t *counters);
ZMESH_EXPORT const char *zmesh_counters_kind(const zmesh_counters_t *counters,
                                             size_t i);
ZMESH_EXPORT const char *zmesh_counters_name(const zmesh_counters_t *counters,
                                             size_t i);
ZMESH_EXPORT size_t zmesh_counters_keys(const zmesh_counters_t *counters,
                                        size_t i);
ZMESH_EXPORT const char *zmesh_counters_key(const zmesh_counters_t *counters,
                                            size_t i, size_t j);
ZMESH_EXPORT uint64_t zmesh_counters_value(const zmesh_counters_t *counters,
                                           size_t i, size_t j);
ZMESH_EXPORT uint64_t zmesh_counters_get(const zmesh_counters_t *counters,
                                         size_t i, const char *key);
ZMESH_EXPORT void zmesh_counters_destroy(zmesh_counters_t **counters);

/* ------------------------------------------------------------------------ */
/*  JSON and msgpack                                                        */

/*  Converts one JSON value to one msgpack object: objects to maps, arrays
    to arrays, integers that fit to int/uint, other numbers to float64,
    strings to str, true/false/null to their msgpack twins. On success
    *out (malloc'ed, the caller frees it with free()) holds *out_size bytes.
    Errors: ZMESH_EJSON (not exactly one valid JSON value, or nested deeper
    than 64), ZMESH_EINVAL, ZMESH_ENOMEM. Any thread. */
ZMESH_EXPORT int zmesh_json_to_msgpack(const char *json, size_t json_size,
                                       void **out, size_t *out_size);

/*  Converts one msgpack object to compact JSON. Maps whose keys are not
    strings get their keys rendered as JSON text; bin and ext become base64
    strings (ext as {"ext":TYPE,"base64":"..."}); NaN and infinities become
    null. An ext counts as one level of nesting (it becomes an object).
    On success *out is a NUL-terminated malloc'ed string the caller frees
    with free(). Output is capped at 32 times the input plus 64 KiB
    (maps used as map keys double their escaping at each level); past that
    the call fails with ZMESH_ENOMEM.
    Errors: ZMESH_EPAYLOAD (not exactly one well-formed msgpack object, or
    nested deeper than 64), ZMESH_EINVAL, ZMESH_ENOMEM. Any thread. */
ZMESH_EXPORT int zmesh_msgpack_to_json(const void *msgpack, size_t size,
                                       char **out);

#ifdef __cplusplus
}
#endif

#endif
