/*  control.h - the agent's control plane: a czmq actor thread that owns
    the beacon socket, the ROUTER, one DEALER per peer and the timers, and
    talks to the application thread (agent.c) through two pipes:
    - the actor's own pipe carries commands from the application and the
      replies to its queries;
    - a notify pipe (PAIR, no high-water mark, so the control thread never
      blocks on an application that does not read) carries what the
      application thread must act on: connect or disconnect its SUB, and
      peer joined/left events.
    The wire behaviour is proto/wire.md#discovery and #control-messages. */
#ifndef ZMESH_CONTROL_H_INCLUDED
#define ZMESH_CONTROL_H_INCLUDED

#include "codec.h"
#include "outbox.h"
#include "retain.h"
#include "zmesh.h"

#include <czmq.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/*  A set of patterns with the generation it belongs to; passed by pointer
    through the pipe, ownership moving with it. */
typedef struct {
    char **items;
    size_t count;
    uint64_t generation;
} zmesh__patterns_t;

zmesh__patterns_t *zmesh__patterns_new(char *const *items, size_t count,
                                       uint64_t generation);
void zmesh__patterns_destroy(zmesh__patterns_t **patterns);

/*  Everything the control thread needs, copied at start. */
typedef struct {
    char name[ZMESH_NAME_MAX + 1];
    char mesh[ZMESH_NAME_MAX + 1];
    zmesh_discovery_t scope;
    char iface[64];
    char group[INET_ADDRSTRLEN];
    char bind_address[INET_ADDRSTRLEN];
    int beacon_port;
    int beacon_interval_ms;
    int peer_timeout_ms;
    size_t max_msg_size;
    char **seeds;
    size_t seeds_count;
    zmesh__header_t *headers;
    size_t headers_count;
    zmesh__patterns_t *pubs;
    zmesh__patterns_t *subs;
    zmesh__patterns_t *history;        /* subs whose history is asked for */
    zmesh__patterns_t *group_patterns; /* queue-group subscriptions: */
    zmesh__patterns_t *group_names;    /* pattern i is taken in group i */
    zmesh__patterns_t *bp_subs;        /* subs wanted with back-pressure */
    zmesh__patterns_t *serves;         /* patterns we answer requests for */
    uint8_t id[ZMESH__ID_SIZE];
    char data_endpoint[256];
    char notify_endpoint[64];
    /* The publisher's retransmit buffer, shared with the application
       thread (it is thread-safe); owned by the agent, which stops the
       actor before freeing it. NULL: nothing to serve. */
    zmesh__retain_t *retained;
    /* The publisher's pending batch, which the control thread sends once
       it is max_delay_ms old (outbox.h). Owned by the agent, like
       `retained`. */
    zmesh__outbox_t *outbox;
    /* Bytes of payload the control thread passed on (DIRECT, REPLY,
       DELIVER, REPAIR) that the application thread has not let go of yet;
       past ZMESH__BACKLOG_MAX the control thread drops what peers send
       (counted), so an application that does not read cannot make the
       agent grow without bound. Owned by the agent. */
    atomic_size_t *backlog;
} zmesh__control_config_t;

#define ZMESH__BACKLOG_MAX (64 * 1024 * 1024)

/*  Frees a configuration and everything it holds; accepts NULL. The actor
    frees the one it is given; the application thread frees one it built
    but could not hand over. */
void zmesh__control_config_destroy(zmesh__control_config_t **config);

/*  The actor function (zactor_fn). `args` is a zmesh__control_config_t the
    actor reads during start-up only. After zsock_signal the actor sends
    one reply on the pipe: "si" = "START", rc, then (if rc == 0) "s" with
    its ROUTER endpoint. */
void zmesh__control_actor(zsock_t *pipe, void *args);

/*  Commands on the actor pipe (application -> control):
    "SUBS" p  zmesh__patterns_t*  new wanted set (ownership moves)
    "PUBS" p  zmesh__patterns_t*  new published set (ownership moves)
    "GROUPSUBS" p p         new queue-group subscriptions: patterns and
                            group names, pairwise (ownership moves)
    "GROUP" b frame         an event published here, for the queue groups
                            of the mesh that take its topic
    "ACK" s id, s req       the application took a delivered event
    "BPSUBS" p              new set of back-pressure patterns
    "SERVES" p              new set of patterns we answer requests for
    "CREDIT" s id, s topic, s last   our application took `last` of
                            (publisher id, topic): send CREDIT
    "HISTORY" p zmesh__patterns_t*  new set of patterns whose history is
                            asked of every publisher connected to, once
                            per connection (ownership moves)
    "PEERS"   reply p: zmesh_peer_list_t* (NULL on out of memory)
    "STATS"   reply b: zmesh__control_stats_t
    "WANT" s topic  reply p: zmesh__want_t* (NULL on out of memory)
    "NAK" b zmesh__nak_t    send a NAK to the publisher it names; if that
                            is no joined peer, answer it at once (done,
                            nothing repaired) on the notify pipe
    Notifications on the notify pipe (control -> application), frames of
    strings: "CONNECT" endpoint | "DISCONNECT" endpoint |
    "JOINED" id name origin | "LEFT" id name reason |
    "HISTORY" id req pattern (sent before the CONNECT it goes with) |
    "GROUPS" p zmesh__patterns_t* (the patterns some peer takes in a queue
    group: publishing a matching topic must go through "GROUP") |
    "DELIVER" id req group redelivered, then the frame |
    "BPVIEW" then id, pattern pairs: the peers that want back-pressure |
    "CREDIT" id topic last: a subscriber's progress |
    "DIRECT" id req topic, then the payload frame |
    "REPLY" id req status, then the payload frame; and
    "REPAIR", zmesh__repair_note_t, then one frame per event frame. */

/*  "DIRECT" s number, b zmesh__direct_t, s peer, s topic, f payload:
    sends a DIRECT or REPLY; reply b: zmesh__direct_result_t.
    "DIRECTNW" b zmesh__direct_t, s peer, s topic, f payload: the same
    with no number and no reply, for senders that must not wait. */
typedef struct {
    zmesh__msg_type_t type; /* ZMESH__MSG_DIRECT or ZMESH__MSG_REPLY */
    uint64_t req;           /* 0 in a DIRECT: a message, not a request */
    uint64_t status;        /* REPLY */
    bool any;               /* DIRECT: to any one peer wanting the topic */
} zmesh__direct_t;

typedef struct {
    int rc; /* 0, ZMESH_ENOTFOUND, ZMESH_EFULL, or the codec's error */
    uint8_t peer[ZMESH__ID_SIZE]; /* the peer it went to */
} zmesh__direct_result_t;

/*  "STATSQ" s number, s peer: asks that peer (id or name) for its
    counters; reply b: zmesh__stats_query_t. The answer comes on the
    notify pipe as "STATS" id req, then a frame holding a
    zmesh_counters_t * (the application thread's to free).
    A peer's question comes on the notify pipe as "STATSQ" id req; the
    application thread answers with the command "STATSA" s id, s req,
    p zmesh_counters_t * (ownership moves). */
typedef struct {
    int rc; /* 0, ZMESH_ENOTFOUND, or the send's error */
    uint64_t req;
} zmesh__stats_query_t;

/*  HISTORY requests are numbered from here, apart from the NAKs the
    application thread numbers: both are answered by REPAIRs. */
#define ZMESH__HISTORY_REQ_BASE (UINT64_C(1) << 63)

/*  What a REPAIR answered, passed to the application thread. */
typedef struct {
    uint8_t sender[ZMESH__ID_SIZE];
    uint64_t req;
    bool done;
    bool vouched;
} zmesh__repair_note_t;

typedef struct {
    uint64_t control_rejected;
    uint64_t beacons_received;
    uint64_t beacons_rejected;
    uint64_t beacons_foreign;
    uint64_t peers_joined;
    uint64_t peers_left;
    uint64_t frames_resent;     /* event frames sent in REPAIRs */
    uint64_t group_delivered;   /* events sent to queue-group members */
    uint64_t group_redelivered; /* ... again, after a member left */
    uint64_t group_dropped;     /* ... lost: no member and a full backlog */
    uint64_t backlog_dropped;   /* peers' messages dropped: the application
                                   had ZMESH__BACKLOG_MAX not taken yet */
} zmesh__control_stats_t;

/*  Which peers want a topic, and with which subscription generation, for
    zmesh_agent_wait_subscribers. `pending` counts peers heard first-hand
    (beacon, seed) but not yet joined; `settled` is false until discovery had
   time to hear every live peer's beacon once. */
typedef struct {
    size_t count;
    struct {
        uint8_t id[ZMESH__ID_SIZE];
        uint64_t generation;
    } * peers;
    size_t pending;
    bool settled;
} zmesh__want_t;

void zmesh__want_destroy(zmesh__want_t **want);

#endif
