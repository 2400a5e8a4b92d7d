/*  control.c - the control plane thread of an agent (proto/wire.md,
    sections discovery, control-transport and liveness). It hears and sends
    beacons, probes seeds, exchanges HELLO/ADVERTISE/PING/PONG/BYE/PEERS
    with every peer (one DEALER out to each, one ROUTER in), expires silent
    peers, and tells the application thread which data endpoints its SUB
    should connect to and which peers joined or left. It never touches the
    data path: events go from the application thread's XPUB to the
    subscribers' SUB directly (docs/threading.md says why).
    Everything that arrives from the network is validated by codec.c and
    beacon.c; what fails is counted and logged at a limited rate, never
    fatal.
*/
#include "control.h"
#include "beacon.h"
#include "clock.h"
#include "counters.h"
#include "groups.h"
#include "log.h"
#include "peer.h"
#include "repair.h"
#include "resend.h"
#include "socket.h"
#include "topic.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define S_LOG_INTERVAL_MS 10000
#define S_BEACONS_PER_WAKE 64
#define S_CONTROL_PER_WAKE 256
/*  How long a stopping agent keeps trying to deliver what it queued for
    its peers (its BYE, a direct message sent just before): on a loaded
    machine 200 ms was seen to lose a direct message from a tool that
    sends and exits at once. */
#define S_DEALER_LINGER_MS 1000
/*  How long a peer whose LEAVING beacon came stays, for its BYE. */
#define S_LEAVING_GRACE_MS 250
/*  Every peer costs a DEALER and a TCP connection. Forged beacons or
    gossip must not make us open sockets without bound (czmq aborts past
    its socket limit), so peers not yet joined and peers in all are capped,
    and one PEERS message introduces at most S_GOSSIP_TAKE of them. */
#define S_PENDING_MAX 256
#define S_PEERS_MAX 1024
#define S_GOSSIP_TAKE 64
/*  Control messages may carry an event frame of the largest size (a
    REPAIR, a DIRECT): the control sockets allow that much more. */
#define S_CONTROL_OVERHEAD (64 * 1024)
/*  Queue groups: events a member holds unacknowledged, and events waiting
    for a member with credit (or for any member at all). */
/*  What one peer may make us send again (REPAIR) per second: its NAKs and
    HISTORYs beyond that get short answers, so a peer cannot make us copy
    and queue without bound. */
#define S_RESEND_PER_SECOND (16 * 1024 * 1024)
#define S_GROUP_CREDIT 64
#define S_GROUP_BACKLOG 10000

typedef struct {
    char *endpoint;
    zsock_t *dealer;
    int64_t next_ms;
} s_probe_t;

typedef struct {
    zsock_t *pipe;
    zsock_t *notify;
    zsock_t *router;
    zmesh__beacon_sock_t *beacon;
    zmesh__control_config_t *cfg;
    zmesh__socket_opts_t dealer_opts;
    char endpoint[256];
    uint16_t port;
    uint64_t mesh_hash;
    char host[256];
    zhashx_t *peers; // id hex -> zmesh__peer_t *
    s_probe_t *probes;
    size_t probes_count;
    int64_t started_ms;
    int64_t next_beacon_ms;
    int64_t next_tick_ms;
    zmesh__control_stats_t stats;
    zmesh__log_limit_t bad_beacon_log;
    zmesh__log_limit_t foreign_beacon_log;
    zmesh__log_limit_t bad_control_log;
    zmesh__log_limit_t full_log;
    size_t pending;       /* peers created but not joined */
    uint64_t turn;        /* spreads requests to a topic over its subscribers */
    uint64_t stats_req;   /* numbers our STATS questions */
    uint64_t history_req; /* numbers our HISTORY requests */
    zmesh__groups_t *groups;       /* our queue-group deliveries */
    zmesh__patterns_t *group_view; /* the mesh's group patterns, as told */
    zframe_t *bp_view;    /* the back-pressure view, as told (zmsg_encode) */
    zframe_t *serve_view; /* the serving view, as told */
    zhashx_t *resent;     /* peer id hex -> s_resent_t: REPAIR bytes budget */
    bool terminated;
} s_control_t;

/* ------------------------------------------------------------------------ */
/*  Pattern sets passed through the pipe                                    */

zmesh__patterns_t *
zmesh__patterns_new(char *const *items, size_t count, uint64_t generation)
{
    zmesh__patterns_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->items = calloc(count + 1, sizeof *self->items);
    if (!self->items) {
        free(self);
        return NULL;
    }
    self->generation = generation;
    for (size_t i = 0; i < count; i++) {
        self->items[i] = strdup(items[i]);
        if (!self->items[i]) {
            zmesh__patterns_destroy(&self);
            return NULL;
        }
        self->count = i + 1;
    }
    return self;
}

void
zmesh__patterns_destroy(zmesh__patterns_t **patterns)
{
    if (!patterns || !*patterns)
        return;
    for (size_t i = 0; i < (*patterns)->count; i++)
        free((*patterns)->items[i]);
    free((*patterns)->items);
    free(*patterns);
    *patterns = NULL;
}

void
zmesh__want_destroy(zmesh__want_t **want)
{
    if (!want || !*want)
        return;
    free((*want)->peers);
    free(*want);
    *want = NULL;
}

/* ------------------------------------------------------------------------ */
/*  Sending                                                                 */

// Only tcp:// endpoints are ever connected to: a peer's HELLO or gossip
// must not make us open ipc:// or inproc:// endpoints on this host.
static bool
s_endpoint_ok(const char *endpoint)
{
    if (!endpoint || strncmp(endpoint, "tcp://", 6) != 0)
        return false;
    // An IPv4 literal, never a host name: libzmq resolves names in its I/O
    // thread, and one slow lookup would stall every socket of the process.
    const char *host = endpoint + 6;
    const char *colon = strchr(host, ':');
    if (!colon || (size_t)(colon - host) >= INET_ADDRSTRLEN)
        return false;
    char ip[INET_ADDRSTRLEN];
    memcpy(ip, host, (size_t)(colon - host));
    ip[colon - host] = '\0';
    struct in_addr addr;
    if (inet_pton(AF_INET, ip, &addr) != 1)
        return false;
    long port = 0;
    const char *p = colon + 1;
    for (; *p >= '0' && *p <= '9' && port <= 65535; p++)
        port = port * 10 + (*p - '0');
    return *p == '\0' && p > colon + 1 && port >= 1 && port <= 65535;
}

static void
s_hello_fill(s_control_t *self, zmesh__msg_t *msg)
{
    memset(msg, 0, sizeof *msg);
    msg->type = ZMESH__MSG_HELLO;
    memcpy(msg->sender, self->cfg->id, ZMESH__ID_SIZE);
    msg->name = self->cfg->name;
    msg->mesh = self->cfg->mesh;
    msg->endpoint = self->endpoint;
    msg->data_endpoint = self->cfg->data_endpoint;
    msg->host = self->host;
    msg->version_text = (char *)zmesh_version();
    msg->pid = (uint64_t)getpid();
    // We read batch frames (proto/wire.md#batch-frame) as large as any.
    msg->batch = self->cfg->max_msg_size;
    msg->tail = 1; // and tail frames (proto/wire.md#tail-frame)
    msg->headers = self->cfg->headers;
    msg->headers_count = self->cfg->headers_count;
    msg->pubs = self->cfg->pubs->items;
    msg->pubs_count = self->cfg->pubs->count;
    msg->subs = self->cfg->subs->items;
    msg->subs_count = self->cfg->subs->count;
    msg->subs_generation = self->cfg->subs->generation;
    msg->group_patterns = self->cfg->group_patterns->items;
    msg->group_names = self->cfg->group_names->items;
    msg->groups_count = self->cfg->group_patterns->count;
    msg->bp_subs = self->cfg->bp_subs->items;
    msg->bp_subs_count = self->cfg->bp_subs->count;
    msg->serves = self->cfg->serves->items;
    msg->serves_count = self->cfg->serves->count;
}

static void
s_send(s_control_t *self, zmesh__peer_t *peer, zmesh__msg_type_t type)
{
    zmesh__msg_t msg;
    if (type == ZMESH__MSG_HELLO) {
        s_hello_fill(self, &msg);
        // proto/wire.md#hello: until we have the peer's HELLO we ask for
        // it, whatever the peer thinks it knows of us (it may have us as
        // joined while we expired it).
        msg.ask = zmesh__peer_state(peer) != ZMESH__PEER_JOINED;
    } else {
        memset(&msg, 0, sizeof msg);
        msg.type = type;
        memcpy(msg.sender, self->cfg->id, ZMESH__ID_SIZE);
    }
    if (type == ZMESH__MSG_ADVERTISE) {
        msg.pubs = self->cfg->pubs->items;
        msg.pubs_count = self->cfg->pubs->count;
        msg.subs = self->cfg->subs->items;
        msg.subs_count = self->cfg->subs->count;
        msg.subs_generation = self->cfg->subs->generation;
        msg.group_patterns = self->cfg->group_patterns->items;
        msg.group_names = self->cfg->group_names->items;
        msg.groups_count = self->cfg->group_patterns->count;
        msg.bp_subs = self->cfg->bp_subs->items;
        msg.bp_subs_count = self->cfg->bp_subs->count;
        msg.serves = self->cfg->serves->items;
        msg.serves_count = self->cfg->serves->count;
    }
    int rc = zmesh__peer_send(peer, &msg);
    if (rc < 0)
        zmesh__log(ZMESH_LOG_DEBUG, "control message %d to %s not sent: %s",
                   (int)type, zmesh__peer_id_hex(peer), zmesh_strerror(rc));
}

// Tells a newly joined peer about every other joined peer, so agents that
// only know a seed find the rest of the mesh (proto/wire.md#gossip).
static void
s_send_gossip(s_control_t *self, zmesh__peer_t *to)
{
    size_t count = zhashx_size(self->peers);
    zmesh__gossip_t *entries = calloc(count + 1, sizeof *entries);
    if (!entries)
        return;
    size_t n = 0;
    for (zmesh__peer_t *peer = zhashx_first(self->peers); peer;
         peer = zhashx_next(self->peers)) {
        if (peer == to || zmesh__peer_state(peer) != ZMESH__PEER_JOINED)
            continue;
        memcpy(entries[n].id, zmesh__peer_id(peer), ZMESH__ID_SIZE);
        entries[n].endpoint = (char *)zmesh__peer_endpoint(peer);
        n++;
    }
    if (n > 0) {
        zmesh__msg_t msg;
        memset(&msg, 0, sizeof msg);
        msg.type = ZMESH__MSG_PEERS;
        memcpy(msg.sender, self->cfg->id, ZMESH__ID_SIZE);
        msg.peers = entries;
        msg.peers_count = n;
        zmesh__peer_send(to, &msg);
    }
    free(entries);
}

static void
s_notify(s_control_t *self, const char *what, const char *a, const char *b,
         const char *c)
{
    // The notify pipe has no high-water mark: this never blocks and never
    // drops (control.h explains why).
    zstr_sendx(self->notify, what, a, b, c, NULL);
}

/* ------------------------------------------------------------------------ */
/*  Peers                                                                   */

static void s_groups_changed(s_control_t *self);

static zmesh__peer_t *
s_peer_lookup(s_control_t *self, const uint8_t id[ZMESH__ID_SIZE])
{
    char hex[33];
    zmesh__id_to_hex(id, hex);
    return zhashx_lookup(self->peers, hex);
}

static zmesh__peer_t *
s_peer_create(s_control_t *self, const uint8_t id[ZMESH__ID_SIZE],
              const char *endpoint, const char *origin)
{
    // A peer that said HELLO has proved a working connection; only peers
    // known from a beacon or gossip, which anyone can forge, count
    // against the cap on pending peers, so a flood of those cannot keep
    // real peers out.
    bool said_hello =
        strcmp(origin, "hello") == 0 || strcmp(origin, "seed") == 0;
    if ((!said_hello && self->pending >= S_PENDING_MAX) ||
        zhashx_size(self->peers) >= S_PEERS_MAX) {
        self->stats.control_rejected++;
        zmesh__log_limited(&self->full_log, S_LOG_INTERVAL_MS,
                           "peer at %s (found by %s) ignored: %zu peers, %zu "
                           "of them not yet joined, is the most this agent "
                           "takes",
                           endpoint, origin, zhashx_size(self->peers),
                           self->pending);
        return NULL;
    }
    zmesh__peer_t *peer =
        zmesh__peer_new(id, endpoint, origin, self->cfg->id, &self->dealer_opts,
                        zmesh__clock_ms());
    if (!peer)
        return NULL;
    self->pending++;
    zhashx_insert(self->peers, zmesh__peer_id_hex(peer), peer);
    zmesh__log(ZMESH_LOG_DEBUG, "contacting peer %s at %s (found by %s)",
               zmesh__peer_id_hex(peer), endpoint, origin);
    return peer;
}

// Asks a publisher for the history of one pattern; the application
// thread hears of it first, so it holds the live events that would
// otherwise overtake the history.
static void
s_ask_history(s_control_t *self, zmesh__peer_t *peer, const char *pattern)
{
    char *items[1] = {(char *)pattern};
    if (!zmesh__peer_publishes_any(peer, items, 1))
        return;
    zmesh__msg_t msg;
    memset(&msg, 0, sizeof msg);
    msg.type = ZMESH__MSG_HISTORY;
    memcpy(msg.sender, self->cfg->id, ZMESH__ID_SIZE);
    msg.req = ZMESH__HISTORY_REQ_BASE | ++self->history_req;
    msg.pattern = (char *)pattern;
    char req[24];
    snprintf(req, sizeof req, "%llu", (unsigned long long)msg.req);
    zstr_sendx(self->notify, "HISTORY", zmesh__peer_id_hex(peer), req, pattern,
               NULL);
    if (zmesh__peer_send(peer, &msg) != 0)
        zmesh__log(ZMESH_LOG_DEBUG, "HISTORY to %s not sent",
                   zmesh__peer_id_hex(peer));
}

static void
s_data_connection_update(s_control_t *self, zmesh__peer_t *peer)
{
    bool want = zmesh__peer_state(peer) == ZMESH__PEER_JOINED &&
                s_endpoint_ok(zmesh__peer_data_endpoint(peer)) &&
                zmesh__peer_publishes_any(peer, self->cfg->subs->items,
                                          self->cfg->subs->count);
    if (want == zmesh__peer_data_connected(peer))
        return;
    for (size_t i = 0; want && i < self->cfg->history->count; i++)
        s_ask_history(self, peer, self->cfg->history->items[i]);
    s_notify(self, want ? "CONNECT" : "DISCONNECT",
             zmesh__peer_data_endpoint(peer), NULL, NULL);
    zmesh__peer_set_data_connected(peer, want);
}

/* ------------------------------------------------------------------------ */
/*  Queue groups (proto/wire.md#deliver)                                    */

// The member of the delivery's group with the fewest unacknowledged
// events (taking turns among equals), or NULL when none has credit.
static zmesh__peer_t *
s_group_pick(s_control_t *self, const zmesh__delivery_t *delivery)
{
    // The fewest unacknowledged events wins; among equals (the usual case
    // while members keep up) each gets its turn.
    zmesh__peer_t *best = NULL;
    size_t least = zmesh__groups_credit(self->groups), equals = 0;
    for (int pass = 0; pass < 3; pass++) {
        size_t index = 0;
        for (zmesh__peer_t *p = zhashx_first(self->peers); p;
             p = zhashx_next(self->peers)) {
            if (zmesh__peer_state(p) != ZMESH__PEER_JOINED ||
                !zmesh__peer_group_for(p, delivery->topic, delivery->group))
                continue;
            size_t load =
                zmesh__groups_inflight(self->groups, zmesh__peer_id(p));
            if (pass == 0 && load < least)
                least = load;
            else if (pass == 1 && load == least)
                equals++;
            else if (pass == 2 && load == least &&
                     index++ == self->turn % equals) {
                best = p;
                break;
            }
        }
        if ((pass == 0 && least == zmesh__groups_credit(self->groups)) ||
            (pass == 1 && equals == 0))
            break; // none has credit, or no member at all
    }
    self->turn++;
    return best;
}

// Sends a delivery to the member of its group with the most credit, or
// puts it in the backlog when none has any; the delivery is taken.
static void
s_group_send(s_control_t *self, zmesh__delivery_t *delivery)
{
    zmesh__peer_t *best = s_group_pick(self, delivery);
    if (!best) {
        if (!zmesh__groups_wait(self->groups, delivery)) {
            self->stats.group_dropped++;
            zmesh__log_limited(&self->full_log, S_LOG_INTERVAL_MS,
                               "queue-group event dropped: no member took "
                               "%d waiting events",
                               S_GROUP_BACKLOG);
        }
        return;
    }
    bool again = delivery->redelivered;
    void *frames[1] = {delivery->frame};
    size_t sizes[1] = {delivery->size};
    zmesh__msg_t msg;
    memset(&msg, 0, sizeof msg);
    msg.type = ZMESH__MSG_DELIVER;
    memcpy(msg.sender, self->cfg->id, ZMESH__ID_SIZE);
    msg.group = delivery->group;
    msg.frames = frames;
    msg.frame_sizes = sizes;
    msg.frames_count = 1;
    msg.redelivered = again;
    msg.req = zmesh__groups_sent(self->groups, zmesh__peer_id(best), delivery);
    if (msg.req == 0)
        return; // out of memory; the delivery is gone (logged by nobody)
    if (zmesh__peer_send(best, &msg) != 0) {
        // The member's queue is full: it waits for credit like the rest.
        zmesh__delivery_t *back =
            zmesh__groups_take(self->groups, zmesh__peer_id(best), msg.req);
        if (back && !zmesh__groups_wait(self->groups, back))
            self->stats.group_dropped++;
        return;
    }
    self->stats.group_delivered++;
    self->stats.group_redelivered += again;
}

// One pass over the backlog, oldest first: each delivery goes to a member
// with credit or back to the end (so a group's order is kept).
static void
s_group_drain(s_control_t *self)
{
    for (size_t n = zmesh__groups_waiting(self->groups); n > 0; n--) {
        zmesh__delivery_t *delivery = zmesh__groups_next(self->groups, NULL);
        if (!delivery)
            break;
        s_group_send(self, delivery);
    }
}

// A member acknowledged: its groups' waiting events, oldest first, go to
// members with credit, until one finds none. Only those groups: one whose
// members are gone must not make every acknowledgement re-offer its
// whole backlog.
static void
s_group_drain_member(s_control_t *self, const uint8_t id[ZMESH__ID_SIZE])
{
    zmesh__peer_t *member = s_peer_lookup(self, id);
    for (size_t i = 0; member && i < zmesh__peer_groups_size(member); i++) {
        const char *group = zmesh__peer_group_name(member, i);
        for (size_t n = zmesh__groups_waiting(self->groups); n > 0; n--) {
            zmesh__delivery_t *oldest = zmesh__groups_peek(self->groups, group);
            if (!oldest || !s_group_pick(self, oldest))
                break;
            s_group_send(self, zmesh__groups_next(self->groups, group));
        }
    }
}

// An event published here: one delivery to every group that takes it.
static void
s_group_publish(s_control_t *self, const void *frame, size_t size)
{
    zmesh__frame_t decoded;
    if (zmesh__frame_decode(frame, size, &decoded) != 0)
        return;
    zlistx_t *names = zlistx_new(); // each group once
    if (!names)
        return;
    zlistx_set_comparator(names, (zlistx_comparator_fn *)strcmp);
    for (zmesh__peer_t *p = zhashx_first(self->peers); p;
         p = zhashx_next(self->peers)) {
        if (zmesh__peer_state(p) != ZMESH__PEER_JOINED)
            continue;
        for (size_t i = 0; i < zmesh__peer_groups_size(p); i++) {
            const char *pattern = zmesh__peer_group_pattern(p, i);
            const char *group = zmesh__peer_group_name(p, i);
            if (zmesh__pattern_match(pattern, strlen(pattern), decoded.topic,
                                     decoded.topic_size) &&
                !zlistx_find(names, (void *)group))
                zlistx_add_end(names, (void *)group);
        }
    }
    // Sending may change nothing in the peers table, so the names held
    // (the peers' own strings) stay valid meanwhile.
    for (const char *group = zlistx_first(names); group;
         group = zlistx_next(names)) {
        zmesh__delivery_t *delivery =
            zmesh__delivery_new(group, decoded.topic, frame, size);
        if (delivery)
            s_group_send(self, delivery);
        else
            self->stats.group_dropped++;
    }
    zlistx_destroy(&names);
}

// Tells the application thread which patterns some peer takes in a queue
// group, when that set changes, so it knows which events to pass here.
static void
s_group_view_update(s_control_t *self)
{
    zlistx_t *patterns = zlistx_new();
    if (!patterns)
        return;
    zlistx_set_comparator(patterns, (zlistx_comparator_fn *)strcmp);
    for (zmesh__peer_t *p = zhashx_first(self->peers); p;
         p = zhashx_next(self->peers))
        for (size_t i = 0; zmesh__peer_state(p) == ZMESH__PEER_JOINED &&
                           i < zmesh__peer_groups_size(p);
             i++)
            if (!zlistx_find(patterns, (void *)zmesh__peer_group_pattern(p, i)))
                zlistx_add_end(patterns,
                               (void *)zmesh__peer_group_pattern(p, i));
    zlistx_sort(patterns);
    size_t count = zlistx_size(patterns);
    char **items = calloc(count + 1, sizeof *items);
    size_t n = 0;
    for (char *item = zlistx_first(patterns); items && item;
         item = zlistx_next(patterns))
        items[n++] = item;
    bool same = items && self->group_view && self->group_view->count == n;
    for (size_t i = 0; same && i < n; i++)
        same = streq(self->group_view->items[i], items[i]);
    if (items && !same) {
        zmesh__patterns_t *view = zmesh__patterns_new(items, n, 0);
        zmesh__patterns_t *copy = zmesh__patterns_new(items, n, 0);
        if (view && copy) {
            zmesh__patterns_destroy(&self->group_view);
            self->group_view = view;
            zsock_send(self->notify, "sp", "GROUPS", copy);
        } else {
            zmesh__patterns_destroy(&view);
            zmesh__patterns_destroy(&copy);
        }
    }
    free(items);
    zlistx_destroy(&patterns);
}

// Tells the application thread which peers want what with
// back-pressure, so its publish waits for them (proto/wire.md#credit).
// Tells the application thread one kind of its joined peers' patterns,
// as `name`, then id and pattern pairs (each peer's together), when it
// changed since `last` (the last one told, kept as zmsg_encode made it).
static void
s_view_update(s_control_t *self, const char *name,
              size_t (*count)(const zmesh__peer_t *),
              const char *(*pattern)(const zmesh__peer_t *, size_t),
              zframe_t **last)
{
    zmsg_t *view = zmsg_new();
    if (!view)
        return;
    zmsg_addstr(view, name);
    for (zmesh__peer_t *p = zhashx_first(self->peers); p;
         p = zhashx_next(self->peers))
        for (size_t i = 0;
             zmesh__peer_state(p) == ZMESH__PEER_JOINED && i < count(p); i++) {
            zmsg_addstr(view, zmesh__peer_id_hex(p));
            zmsg_addstr(view, pattern(p, i));
        }
    zframe_t *packed = NULL;
    zmsg_t *copy = zmsg_dup(view);
    if (copy)
        packed = zmsg_encode(copy);
    zmsg_destroy(&copy);
    bool same = packed && *last && zframe_eq(packed, *last);
    if (packed && !same) {
        zframe_destroy(last);
        *last = packed;
        packed = NULL;
        zmsg_send(&view, self->notify);
    }
    zframe_destroy(&packed);
    zmsg_destroy(&view);
}

// Who wants what with back-pressure (the publisher waits for them), and
// who answers requests for what (a requester chooses among them).
static void
s_views_update(s_control_t *self)
{
    s_view_update(self, "BPVIEW", zmesh__peer_bp_size, zmesh__peer_bp_pattern,
                  &self->bp_view);
    s_view_update(self, "SERVEVIEW", zmesh__peer_serves_size,
                  zmesh__peer_serve_pattern, &self->serve_view);
}

// A peer joined or changed its queue-group subscriptions: a new member
// may take what waits, and the application thread's view may change.
static void
s_groups_changed(s_control_t *self)
{
    s_group_view_update(self);
    s_views_update(self);
    if (self->groups)
        s_group_drain(self);
}

// Tells the outbox the largest batch frame every joined peer but
// `leaving` reads: 0 while one reads none (it predates batch frames), so
// that our publishes then go one frame each; and whether there are such
// peers and they all read tail frames, which are sent only then
// (wire.md#versions).
static void
s_batch_readers(s_control_t *self, const zmesh__peer_t *leaving)
{
    if (!self->cfg->outbox)
        return;
    uint64_t limit = UINT64_MAX;
    bool tails = true;
    size_t joined = 0;
    for (zmesh__peer_t *p = zhashx_first(self->peers); p;
         p = zhashx_next(self->peers))
        if (p != leaving && zmesh__peer_state(p) == ZMESH__PEER_JOINED) {
            if (zmesh__peer_batch(p) < limit)
                limit = zmesh__peer_batch(p);
            tails = tails && zmesh__peer_reads_tails(p);
            joined++;
        }
    // With nobody joined, nobody can have lost a stream's end.
    zmesh__outbox_set_readers(self->cfg->outbox, limit, tails && joined > 0);
}

static void
s_peer_remove(s_control_t *self, zmesh__peer_t *peer, const char *reason)
{
    if (zmesh__peer_data_connected(peer))
        s_notify(self, "DISCONNECT", zmesh__peer_data_endpoint(peer), NULL,
                 NULL);
    if (zmesh__peer_state(peer) == ZMESH__PEER_JOINED) {
        self->stats.peers_left++;
        s_batch_readers(self, peer);
        zmesh__log(ZMESH_LOG_INFO, "peer %s (%s) left: %s",
                   zmesh__peer_name(peer), zmesh__peer_id_hex(peer), reason);
        s_notify(self, "LEFT", zmesh__peer_id_hex(peer), zmesh__peer_name(peer),
                 reason);
    } else {
        self->pending--;
        zmesh__log(ZMESH_LOG_INFO,
                   "peer %s at %s never answered HELLO; forgotten (%s)",
                   zmesh__peer_id_hex(peer), zmesh__peer_endpoint(peer),
                   reason);
    }
    // The hash table's destructor destroys the peer.
    char key[33];
    uint8_t id[ZMESH__ID_SIZE];
    strcpy(key, zmesh__peer_id_hex(peer));
    memcpy(id, zmesh__peer_id(peer), ZMESH__ID_SIZE);
    zhashx_delete(self->resent, key);
    bool viewed =
        zmesh__peer_bp_size(peer) > 0 || zmesh__peer_serves_size(peer) > 0;
    zhashx_delete(self->peers, key);
    if (viewed)
        s_views_update(self);
    if (!self->groups)
        return;
    // What it had not acknowledged goes to the rest of its group, marked
    // (whether or not it still listed the group when it left).
    zmesh__delivery_t *orphan;
    while ((orphan = zmesh__groups_orphan(self->groups, id)) != NULL)
        s_group_send(self, orphan);
    s_group_view_update(self);
}

// A peer that is new under another id but answers at the endpoint of a
// known peer is that service restarted: the old incarnation is gone.
static void
s_remove_previous_incarnations(s_control_t *self, zmesh__peer_t *fresh)
{
    zlistx_t *gone = zlistx_new();
    if (!gone)
        return;
    for (zmesh__peer_t *peer = zhashx_first(self->peers); peer;
         peer = zhashx_next(self->peers))
        if (peer != fresh && strcmp(zmesh__peer_endpoint(peer),
                                    zmesh__peer_endpoint(fresh)) == 0)
            zlistx_add_end(gone, peer);
    for (zmesh__peer_t *peer = zlistx_first(gone); peer;
         peer = zlistx_next(gone))
        s_peer_remove(self, peer, "restarted");
    zlistx_destroy(&gone);
}

/* ------------------------------------------------------------------------ */
/*  Control messages in                                                     */

// Patterns come from the network: the topic functions require valid
// ones, so a message carrying an invalid pattern is malformed as a whole.
static bool
s_patterns_ok(char *const *patterns, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (zmesh__pattern_check(patterns[i], strlen(patterns[i])) != 0)
            return false;
    return true;
}

static bool
s_is_seed(const s_control_t *self, const char *endpoint)
{
    for (size_t i = 0; i < self->cfg->seeds_count; i++)
        if (strcmp(self->cfg->seeds[i], endpoint) == 0)
            return true;
    return false;
}

static void
s_on_hello(s_control_t *self, zmesh__msg_t *msg, int64_t now)
{
    if (strcmp(msg->mesh, self->cfg->mesh) != 0) {
        self->stats.control_rejected++;
        zmesh__log_limited(&self->bad_control_log, S_LOG_INTERVAL_MS,
                           "HELLO from %s at %s is for mesh '%s'; this agent "
                           "is in mesh '%s': ignored",
                           msg->name, msg->endpoint, msg->mesh,
                           self->cfg->mesh);
        return;
    }
    if (!s_endpoint_ok(msg->endpoint) || !s_endpoint_ok(msg->data_endpoint)) {
        self->stats.control_rejected++;
        zmesh__log_limited(&self->bad_control_log, S_LOG_INTERVAL_MS,
                           "HELLO from %s has an unusable endpoint '%s' or "
                           "'%s' (tcp://IPv4:PORT expected)",
                           msg->name, msg->endpoint, msg->data_endpoint);
        return;
    }
    if (!s_patterns_ok(msg->pubs, msg->pubs_count) ||
        !s_patterns_ok(msg->subs, msg->subs_count)) {
        self->stats.control_rejected++;
        zmesh__log_limited(&self->bad_control_log, S_LOG_INTERVAL_MS,
                           "HELLO from %s carries an invalid pattern: "
                           "ignored",
                           msg->name);
        return;
    }
    zmesh__peer_t *peer = s_peer_lookup(self, msg->sender);
    bool is_new = peer == NULL;
    if (is_new) {
        // Found through our seed when it answers at a seed's endpoint;
        // otherwise it found us.
        peer = s_peer_create(self, msg->sender, msg->endpoint,
                             s_is_seed(self, msg->endpoint) ? "seed" : "hello");
        if (!peer)
            return;
    }
    bool was_joined = zmesh__peer_state(peer) == ZMESH__PEER_JOINED;
    // A new data endpoint within one incarnation: drop the connection to
    // the old one first, or its count would never reach zero.
    if (was_joined && zmesh__peer_data_connected(peer) &&
        strcmp(zmesh__peer_data_endpoint(peer), msg->data_endpoint) != 0) {
        s_notify(self, "DISCONNECT", zmesh__peer_data_endpoint(peer), NULL,
                 NULL);
        zmesh__peer_set_data_connected(peer, false);
    }
    if (!was_joined)
        self->pending--;
    zmesh__peer_apply_hello(peer, msg);
    zmesh__peer_heard(peer, now);
    if (!was_joined)
        s_remove_previous_incarnations(self, peer);
    // Answer when asked (the sender has not had our HELLO, or lost us; a
    // seed probe always asks), and always when we did not know the sender.
    // A reply never asks, so two agents never echo HELLOs forever.
    if (msg->ask || is_new)
        s_send(self, peer, ZMESH__MSG_HELLO);
    if (!was_joined) {
        self->stats.peers_joined++;
        // Batch frames go to no agent that does not read them, and none
        // larger than one reads (wire.md#batch-frame).
        zmesh__peer_set_batch(peer, msg->batch);
        zmesh__peer_set_reads_tails(peer, msg->tail != 0);
        s_batch_readers(self, NULL);
        zmesh__log(ZMESH_LOG_INFO, "peer %s (%s) joined at %s",
                   zmesh__peer_name(peer), zmesh__peer_id_hex(peer),
                   zmesh__peer_endpoint(peer));
        s_notify(self, "JOINED", zmesh__peer_id_hex(peer),
                 zmesh__peer_name(peer), zmesh__peer_origin(peer));
        s_send_gossip(self, peer);
    }
    s_data_connection_update(self, peer);
    s_groups_changed(self);
}

static void
s_on_peers(s_control_t *self, const zmesh__msg_t *msg)
{
    size_t taken = 0;
    for (size_t i = 0; i < msg->peers_count && taken < S_GOSSIP_TAKE; i++) {
        const zmesh__gossip_t *entry = &msg->peers[i];
        if (memcmp(entry->id, self->cfg->id, ZMESH__ID_SIZE) == 0 ||
            s_peer_lookup(self, entry->id))
            continue;
        if (!s_endpoint_ok(entry->endpoint)) {
            self->stats.control_rejected++;
            continue;
        }
        zmesh__peer_t *peer =
            s_peer_create(self, entry->id, entry->endpoint, "gossip");
        if (peer) {
            s_send(self, peer, ZMESH__MSG_HELLO);
            taken++;
        }
    }
}

typedef struct {
    int64_t since; /* the current one-second window */
    size_t bytes;  /* resent to that peer in it */
} s_resent_t;

// Answers a NAK or HISTORY within the peer's budget of resent bytes.
static void
s_resend(s_control_t *self, zmesh__peer_t *peer, const zmesh__msg_t *request,
         int64_t now)
{
    s_resent_t *used = zhashx_lookup(self->resent, zmesh__peer_id_hex(peer));
    if (!used) {
        used = calloc(1, sizeof *used);
        if (!used ||
            zhashx_insert(self->resent, zmesh__peer_id_hex(peer), used) != 0) {
            free(used);
            return;
        }
        used->since = now;
    }
    if (now - used->since >= 1000) {
        used->since = now;
        used->bytes = 0;
    }
    size_t limit = used->bytes < S_RESEND_PER_SECOND
                       ? S_RESEND_PER_SECOND - used->bytes
                       : 0;
    size_t bytes = 0;
    self->stats.frames_resent +=
        zmesh__resend(peer, self->cfg->id, self->cfg->retained, request,
                      self->cfg->max_msg_size, limit, &bytes);
    used->bytes += bytes;
}

static bool s_backlog_take(s_control_t *self, size_t bytes);

// Passes a REPAIR's frames to the application thread, which holds the
// repair sessions (repair.h).
static void
s_forward_repair(s_control_t *self, const uint8_t sender[ZMESH__ID_SIZE],
                 uint64_t req, bool done, bool vouched, void *const *frames,
                 const size_t *sizes, size_t count)
{
    zmesh__repair_note_t note;
    memset(&note, 0, sizeof note);
    memcpy(note.sender, sender, ZMESH__ID_SIZE);
    note.req = req;
    note.done = done;
    note.vouched = vouched;
    size_t total = 0;
    for (size_t i = 0; i < count; i++)
        total += sizes[i];
    // Over the backlog the frames are left out: the answer still counts,
    // and what it carried is reported missing.
    if (total > 0 && !s_backlog_take(self, total))
        count = 0;
    zmsg_t *msg = zmsg_new();
    if (!msg)
        return;
    zmsg_addstr(msg, "REPAIR");
    zmsg_addmem(msg, &note, sizeof note);
    for (size_t i = 0; i < count; i++)
        zmsg_addmem(msg, frames[i], sizes[i]);
    zmsg_send(&msg, self->notify); // no high-water mark: never blocks
}

// A STATS question is answered by the application thread, which holds
// most counters; an answer goes to it as a counters set.
static void
s_on_stats(s_control_t *self, zmesh__msg_t *msg)
{
    char id[33], req[24];
    zmesh__id_to_hex(msg->sender, id);
    snprintf(req, sizeof req, "%llu", (unsigned long long)msg->req);
    if (!msg->counters) {
        zstr_sendx(self->notify, "STATSQ", id, req, NULL);
        return;
    }
    zmesh_counters_t *counters = zmesh__counters_take(msg);
    if (counters)
        zsock_send(self->notify, "sssp", "STATS", id, req, counters);
}

// Sends the application thread's answer to a peer's STATS question.
static void
s_answer_stats(s_control_t *self, const char *id, const char *req,
               zmesh_counters_t *counters)
{
    uint8_t peer_id[ZMESH__ID_SIZE];
    zmesh__peer_t *peer = zmesh__id_from_hex(id, peer_id) == 0
                              ? s_peer_lookup(self, peer_id)
                              : NULL;
    if (peer && counters) {
        zmesh__msg_t msg;
        memset(&msg, 0, sizeof msg);
        msg.type = ZMESH__MSG_STATS;
        memcpy(msg.sender, self->cfg->id, ZMESH__ID_SIZE);
        msg.req = strtoull(req, NULL, 10);
        zmesh__counters_lend(counters, &msg);
        // It must fit the asker's limit (we assume ours): the agent group
        // comes first, then as many others as fit (proto/wire.md#stats).
        for (;;) {
            void *bytes = NULL;
            size_t size = 0;
            int fits = zmesh__msg_encode(&msg, &bytes, &size);
            free(bytes);
            if (fits != 0 || size <= self->cfg->max_msg_size ||
                msg.counters_count <= 1)
                break;
            msg.counters_count /= 2;
        }
        int rc = zmesh__peer_send(peer, &msg);
        if (rc != 0)
            zmesh__log(ZMESH_LOG_DEBUG, "STATS answer to %s not sent: %s", id,
                       zmesh_strerror(rc));
    }
    zmesh_counters_destroy(&counters);
}

// Whether `bytes` more may go to the application thread; if so they are
// counted (it subtracts them when it lets go of them), else the drop is.
static bool
s_backlog_take(s_control_t *self, size_t bytes)
{
    size_t now = atomic_load(self->cfg->backlog);
    if (now + bytes > ZMESH__BACKLOG_MAX) {
        self->stats.backlog_dropped++;
        zmesh__log_limited(&self->full_log, S_LOG_INTERVAL_MS,
                           "message from a peer dropped: %d MiB wait for an "
                           "application that does not read",
                           ZMESH__BACKLOG_MAX >> 20);
        return false;
    }
    atomic_fetch_add(self->cfg->backlog, bytes);
    return true;
}

// Passes a queue-group delivery to the application thread, which
// acknowledges it when its application takes it.
static void
s_forward_delivery(s_control_t *self, const zmesh__msg_t *msg)
{
    // Even for a group we just left: the DELIVER may have crossed our
    // ADVERTISE, and one dropped here would stay unacknowledged at the
    // publisher until we leave (proto/wire.md#deliver). Made-up ones are
    // bounded by the backlog like anything peers send.
    char id[33], req[24];
    zmesh__id_to_hex(msg->sender, id);
    snprintf(req, sizeof req, "%llu", (unsigned long long)msg->req);
    for (size_t i = 0; i < msg->frames_count; i++) {
        if (!s_backlog_take(self, msg->frame_sizes[i]))
            continue; // unacknowledged: it goes to another member later
        zmsg_t *note = zmsg_new();
        if (!note)
            return;
        zmsg_addstr(note, "DELIVER");
        zmsg_addstr(note, id);
        zmsg_addstr(note, req);
        zmsg_addstr(note, msg->group);
        zmsg_addstr(note, msg->redelivered ? "1" : "0");
        zmsg_addmem(note, msg->frames[i], msg->frame_sizes[i]);
        zmsg_send(&note, self->notify);
    }
}

// Passes a DIRECT or REPLY to the application thread.
static void
s_forward_direct(s_control_t *self, const zmesh__msg_t *msg)
{
    char id[33], req[24], status[24];
    zmesh__id_to_hex(msg->sender, id);
    snprintf(req, sizeof req, "%llu", (unsigned long long)msg->req);
    snprintf(status, sizeof status, "%llu", (unsigned long long)msg->status);
    bool direct = msg->type == ZMESH__MSG_DIRECT;
    if (!s_backlog_take(self, msg->payload_size)) {
        if (direct && msg->req) { // the requester hears it at once
            zmesh__peer_t *peer = s_peer_lookup(self, msg->sender);
            zmesh__msg_t refusal;
            memset(&refusal, 0, sizeof refusal);
            refusal.type = ZMESH__MSG_REPLY;
            memcpy(refusal.sender, self->cfg->id, ZMESH__ID_SIZE);
            refusal.req = msg->req;
            refusal.status = ZMESH__REPLY_REFUSED;
            if (peer)
                zmesh__peer_send(peer, &refusal);
        }
        return;
    }
    zmsg_t *note = zmsg_new();
    if (!note)
        return;
    zmsg_addstr(note, direct ? "DIRECT" : "REPLY");
    zmsg_addstr(note, id);
    zmsg_addstr(note, req);
    zmsg_addstr(note, direct ? msg->topic : status);
    zmsg_addmem(note, msg->payload, msg->payload_size);
    zmsg_send(&note, self->notify);
}

static void
s_on_control(s_control_t *self)
{
    zmsg_t *msg = zmsg_recv(self->router);
    if (!msg)
        return;
    zframe_t *routing = zmsg_first(msg);
    zframe_t *body = zmsg_next(msg);
    int64_t now = zmesh__clock_ms();
    if (!routing || !body || zmsg_size(msg) != 2) {
        self->stats.control_rejected++;
        zmesh__log_limited(&self->bad_control_log, S_LOG_INTERVAL_MS,
                           "control message with %zu frames dropped",
                           zmsg_size(msg));
        zmsg_destroy(&msg);
        return;
    }
    // Who really sent it: a peer's DEALER has the routing id 0x01 + its
    // id, a seed probe's 0x02 + its id + 4 bytes (and sends only HELLO),
    // set by the sender and unique on our ROUTER, so a message naming
    // another sender than its connection's is a forgery (a REPAIR or ACK
    // in someone else's name).
    uint8_t from[1 + ZMESH__ID_SIZE + 4];
    size_t from_size = zframe_size(routing);
    if (from_size > sizeof from)
        from_size = 0;
    memcpy(from, zframe_data(routing), from_size);
    zmesh__msg_t decoded;
    int rc = zmesh__msg_decode(zframe_data(body), zframe_size(body), &decoded);
    zmsg_destroy(&msg);
    bool from_peer = from_size == 1 + ZMESH__ID_SIZE && from[0] == 0x01;
    bool from_probe = from_size == sizeof from && from[0] == 0x02 &&
                      decoded.type == ZMESH__MSG_HELLO;
    if (rc == 0 && (!(from_peer || from_probe) ||
                    memcmp(from + 1, decoded.sender, ZMESH__ID_SIZE) != 0)) {
        self->stats.control_rejected++;
        zmesh__log_limited(&self->bad_control_log, S_LOG_INTERVAL_MS,
                           "control message %d whose sender is not its "
                           "connection's dropped",
                           (int)decoded.type);
        zmesh__msg_clear(&decoded);
        return;
    }
    if (rc == ZMESH__EVERSION) {
        self->stats.control_rejected++;
        zmesh__log_limited(&self->bad_control_log, S_LOG_INTERVAL_MS,
                           "control message from an agent speaking protocol "
                           "version %u dropped; this agent speaks %d",
                           decoded.version, ZMESH_PROTOCOL_VERSION);
        zmesh__msg_clear(&decoded);
        return;
    }
    if (rc < 0) {
        self->stats.control_rejected++;
        zmesh__log_limited(&self->bad_control_log, S_LOG_INTERVAL_MS,
                           "malformed control message dropped: %s",
                           zmesh_strerror(rc));
        return;
    }
    if (memcmp(decoded.sender, self->cfg->id, ZMESH__ID_SIZE) == 0) {
        zmesh__msg_clear(&decoded); // ourselves, e.g. a seed naming us
        return;
    }
    if (decoded.type == ZMESH__MSG_HELLO) {
        s_on_hello(self, &decoded, now);
        zmesh__msg_clear(&decoded);
        return;
    }
    zmesh__peer_t *peer = s_peer_lookup(self, decoded.sender);
    if (!peer || zmesh__peer_state(peer) != ZMESH__PEER_JOINED) {
        // Well-formed, just late or early: a BYE after the LEAVING beacon
        // removed the peer, a PING from a peer we expired. Its beacon or a
        // seed probe brings it back; nothing here is malformed.
        char hex[33];
        zmesh__id_to_hex(decoded.sender, hex);
        zmesh__log(ZMESH_LOG_DEBUG,
                   "control message %d from %s, not a joined peer, ignored",
                   (int)decoded.type, hex);
        zmesh__msg_clear(&decoded);
        return;
    }
    zmesh__peer_heard(peer, now);
    switch (decoded.type) {
    case ZMESH__MSG_ADVERTISE:
        if (!s_patterns_ok(decoded.pubs, decoded.pubs_count) ||
            !s_patterns_ok(decoded.subs, decoded.subs_count)) {
            self->stats.control_rejected++;
            zmesh__log_limited(&self->bad_control_log, S_LOG_INTERVAL_MS,
                               "ADVERTISE from %s carries an invalid "
                               "pattern: ignored",
                               zmesh__peer_name(peer));
            break;
        }
        zmesh__peer_apply_advertise(peer, &decoded);
        s_data_connection_update(self, peer);
        s_groups_changed(self);
        break;
    case ZMESH__MSG_PING: s_send(self, peer, ZMESH__MSG_PONG); break;
    case ZMESH__MSG_PONG: break;
    case ZMESH__MSG_BYE: s_peer_remove(self, peer, "bye"); break;
    case ZMESH__MSG_PEERS: s_on_peers(self, &decoded); break;
    case ZMESH__MSG_NAK:
    case ZMESH__MSG_HISTORY: s_resend(self, peer, &decoded, now); break;
    case ZMESH__MSG_REPAIR:
        s_forward_repair(self, decoded.sender, decoded.req, decoded.done,
                         decoded.join, decoded.frames, decoded.frame_sizes,
                         decoded.frames_count);
        break;
    case ZMESH__MSG_DIRECT:
    case ZMESH__MSG_REPLY: s_forward_direct(self, &decoded); break;
    case ZMESH__MSG_STATS: s_on_stats(self, &decoded); break;
    case ZMESH__MSG_DELIVER: s_forward_delivery(self, &decoded); break;
    case ZMESH__MSG_CREDIT: {
        char id[33], last[24];
        zmesh__id_to_hex(decoded.sender, id);
        snprintf(last, sizeof last, "%llu", (unsigned long long)decoded.last);
        zstr_sendx(self->notify, "CREDIT", id, decoded.topic, last, NULL);
        break;
    }
    case ZMESH__MSG_ACK:
        if (self->groups &&
            zmesh__groups_ack(self->groups, decoded.sender, decoded.req))
            s_group_drain_member(self, decoded.sender); // credit came back
        break;
    case ZMESH__MSG_HELLO: break; // handled above
    }
    zmesh__msg_clear(&decoded);
}

/* ------------------------------------------------------------------------ */
/*  Beacons                                                                 */

static void
s_beacon_send(s_control_t *self, uint8_t flags)
{
    if (!self->beacon)
        return;
    zmesh__beacon_t beacon = {.version = ZMESH_PROTOCOL_VERSION,
                              .flags = flags,
                              .port = self->port,
                              .mesh_hash = self->mesh_hash};
    memcpy(beacon.id, self->cfg->id, ZMESH__ID_SIZE);
    uint8_t bytes[ZMESH__BEACON_SIZE];
    zmesh__beacon_encode(&beacon, bytes);
    if (zmesh__beacon_sock_send(self->beacon, bytes, sizeof bytes) != 0)
        zmesh__log_limited(&self->bad_beacon_log, S_LOG_INTERVAL_MS,
                           "cannot send beacon");
}

static void
s_on_beacon(s_control_t *self, const uint8_t *data, size_t size,
            const char *from)
{
    zmesh__beacon_t beacon;
    int rc = zmesh__beacon_decode(data, size, &beacon);
    if (rc < 0) {
        self->stats.beacons_rejected++;
        zmesh__log_limited(&self->bad_beacon_log, S_LOG_INTERVAL_MS,
                           "malformed beacon (%zu bytes) from %s dropped", size,
                           from);
        return;
    }
    if (rc == ZMESH__BEACON_OTHER_VERSION) {
        self->stats.beacons_foreign++;
        zmesh__log_limited(&self->foreign_beacon_log, S_LOG_INTERVAL_MS,
                           "beacon from %s speaks protocol version %u; this "
                           "agent speaks %d: ignored",
                           from, beacon.version, ZMESH_PROTOCOL_VERSION);
        return;
    }
    if (memcmp(beacon.id, self->cfg->id, ZMESH__ID_SIZE) == 0)
        return; // our own, heard back
    if (beacon.mesh_hash != self->mesh_hash) {
        self->stats.beacons_foreign++;
        return; // another mesh on the same port: normal, not worth a line
    }
    self->stats.beacons_received++;
    zmesh__peer_t *peer = s_peer_lookup(self, beacon.id);
    if (beacon.flags & ZMESH__BEACON_FLAG_LEAVING) {
        // A joined peer's last messages (a direct message, a reply, its
        // BYE) are still on their way over TCP and the beacon may have
        // overtaken them: it goes at its BYE, or after a short grace.
        if (peer && zmesh__peer_state(peer) == ZMESH__PEER_JOINED)
            zmesh__peer_set_leaving(peer,
                                    zmesh__clock_ms() + S_LEAVING_GRACE_MS);
        else if (peer)
            s_peer_remove(self, peer, "bye");
        return;
    }
    if (peer)
        return;
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "tcp://%s:%u", from,
             (unsigned)beacon.port);
    peer = s_peer_create(self, beacon.id, endpoint, "beacon");
    if (peer)
        s_send(self, peer, ZMESH__MSG_HELLO);
}

static void
s_beacons_read(s_control_t *self)
{
    uint8_t buf[256];
    char from[INET_ADDRSTRLEN];
    for (int i = 0; i < S_BEACONS_PER_WAKE; i++) {
        ssize_t n =
            zmesh__beacon_sock_recv(self->beacon, buf, sizeof buf, from);
        if (n < 0)
            return;
        // A datagram larger than our buffer is garbage for this protocol;
        // decode sees only what fit, so reject it here.
        if ((size_t)n > sizeof buf) {
            self->stats.beacons_rejected++;
            continue;
        }
        s_on_beacon(self, buf, (size_t)n, from);
    }
}

/* ------------------------------------------------------------------------ */
/*  Timers                                                                  */

static bool
s_seed_answered(s_control_t *self, const char *endpoint)
{
    for (zmesh__peer_t *peer = zhashx_first(self->peers); peer;
         peer = zhashx_next(self->peers))
        if (zmesh__peer_state(peer) == ZMESH__PEER_JOINED &&
            strcmp(zmesh__peer_endpoint(peer), endpoint) == 0)
            return true;
    return false;
}

static void
s_probe_seeds(s_control_t *self, int64_t now)
{
    for (size_t i = 0; i < self->probes_count; i++) {
        s_probe_t *probe = &self->probes[i];
        if (now < probe->next_ms)
            continue;
        probe->next_ms = now + self->cfg->beacon_interval_ms;
        if (s_seed_answered(self, probe->endpoint))
            continue;
        zmesh__msg_t msg;
        s_hello_fill(self, &msg);
        msg.ask = 1;
        zmesh__peer_send_on(probe->dealer, &msg);
    }
}

static void
s_tick(s_control_t *self, int64_t now)
{
    zlistx_t *expired = zlistx_new();
    if (!expired)
        return;
    int interval = self->cfg->beacon_interval_ms;
    for (zmesh__peer_t *peer = zhashx_first(self->peers); peer;
         peer = zhashx_next(self->peers)) {
        int64_t silent = now - zmesh__peer_last_heard(peer);
        int64_t leaving = zmesh__peer_leaving(peer);
        if (silent > self->cfg->peer_timeout_ms ||
            (leaving != 0 && now >= leaving))
            zlistx_add_end(expired, peer);
        else if (zmesh__peer_state(peer) == ZMESH__PEER_JOINED &&
                 silent >= interval &&
                 now - zmesh__peer_last_ping(peer) >= interval) {
            s_send(self, peer, ZMESH__MSG_PING);
            zmesh__peer_pinged(peer, now);
        }
    }
    for (zmesh__peer_t *peer = zlistx_first(expired); peer;
         peer = zlistx_next(expired))
        s_peer_remove(self, peer,
                      zmesh__peer_leaving(peer) != 0 ? "bye" : "timeout");
    zlistx_destroy(&expired);
    s_probe_seeds(self, now);
}

/* ------------------------------------------------------------------------ */
/*  Commands from the application thread                                   */

static void
s_advertise_all(s_control_t *self)
{
    for (zmesh__peer_t *peer = zhashx_first(self->peers); peer;
         peer = zhashx_next(self->peers))
        s_send(self, peer, ZMESH__MSG_ADVERTISE);
}

static zmesh__want_t *
s_want(s_control_t *self, const char *topic, int64_t now)
{
    zmesh__want_t *want = calloc(1, sizeof *want);
    if (!want)
        return NULL;
    want->peers = calloc(zhashx_size(self->peers) + 1, sizeof *want->peers);
    if (!want->peers) {
        free(want);
        return NULL;
    }
    for (zmesh__peer_t *peer = zhashx_first(self->peers); peer;
         peer = zhashx_next(self->peers)) {
        if (zmesh__peer_state(peer) != ZMESH__PEER_JOINED) {
            // A peer heard first-hand (beacon, seed) will answer HELLO in
            // a moment; gossip may name a peer that died since, which must
            // not hold a one-shot publish until the peer timeout.
            if (strcmp(zmesh__peer_origin(peer), "gossip") != 0)
                want->pending++;
            continue;
        }
        if (!zmesh__peer_wants_topic(peer, topic))
            continue;
        memcpy(want->peers[want->count].id, zmesh__peer_id(peer),
               ZMESH__ID_SIZE);
        want->peers[want->count].generation = zmesh__peer_subs_generation(peer);
        want->count++;
    }
    // Every live peer beacons once per interval: after one and a half
    // intervals we have heard all of them (seeds are probed as often).
    want->settled =
        now - self->started_ms >= self->cfg->beacon_interval_ms * 3 / 2;
    return want;
}

static zmesh_peer_list_t *
s_peer_list(s_control_t *self, int64_t now)
{
    size_t count = zhashx_size(self->peers);
    zmesh__peer_t **peers = calloc(count + 1, sizeof *peers);
    if (!peers)
        return NULL;
    size_t n = 0;
    for (zmesh__peer_t *peer = zhashx_first(self->peers); peer;
         peer = zhashx_next(self->peers))
        peers[n++] = peer;
    zmesh_peer_list_t *list = zmesh__peer_list_new(peers, n, now);
    free(peers);
    return list;
}

static void s_send_nak(s_control_t *self, const zmesh__nak_t *nak);

// The next frame of a command, read as the pointer it carries (whose
// ownership moves with it: control.h), or NULL when it is not one.
static void *
s_pop_pointer(zmsg_t *msg)
{
    zframe_t *frame = zmsg_pop(msg);
    void *pointer = NULL;
    if (frame && zframe_size(frame) == sizeof pointer)
        memcpy(&pointer, zframe_data(frame), sizeof pointer);
    zframe_destroy(&frame);
    return pointer;
}
static zmesh__peer_t *s_direct_target(s_control_t *self,
                                      const zmesh__direct_t *how,
                                      const char *peer, const char *topic);
static zmesh__direct_result_t s_send_direct(s_control_t *self,
                                            const zmesh__direct_t *how,
                                            const char *peer, char *topic,
                                            zframe_t *payload);

static void
s_on_command(s_control_t *self)
{
    zmsg_t *msg = zmsg_recv(self->pipe);
    if (!msg) {
        self->terminated = true;
        return;
    }
    char *command = zmsg_popstr(msg);
    int64_t now = zmesh__clock_ms();
    if (!command || streq(command, "$TERM"))
        self->terminated = true;
    else if (streq(command, "SUBS") || streq(command, "PUBS")) {
        zmesh__patterns_t *patterns = s_pop_pointer(msg);
        if (patterns) {
            bool subs = streq(command, "SUBS");
            zmesh__patterns_t **slot =
                subs ? &self->cfg->subs : &self->cfg->pubs;
            zmesh__patterns_destroy(slot);
            *slot = patterns;
            s_advertise_all(self);
            if (subs)
                for (zmesh__peer_t *peer = zhashx_first(self->peers); peer;
                     peer = zhashx_next(self->peers))
                    s_data_connection_update(self, peer);
        }
    } else if (streq(command, "GROUPSUBS")) {
        zmesh__patterns_t *patterns = s_pop_pointer(msg);
        zmesh__patterns_t *names = s_pop_pointer(msg);
        if (patterns && names && patterns->count == names->count) {
            zmesh__patterns_destroy(&self->cfg->group_patterns);
            zmesh__patterns_destroy(&self->cfg->group_names);
            self->cfg->group_patterns = patterns;
            self->cfg->group_names = names;
            s_advertise_all(self);
        } else {
            zmesh__patterns_destroy(&patterns);
            zmesh__patterns_destroy(&names);
        }
    } else if (streq(command, "GROUP")) {
        zframe_t *frame = zmsg_pop(msg);
        if (frame && self->groups)
            s_group_publish(self, zframe_data(frame), zframe_size(frame));
        zframe_destroy(&frame);
    } else if (streq(command, "BPSUBS") || streq(command, "SERVES")) {
        zmesh__patterns_t *patterns = s_pop_pointer(msg);
        if (patterns) {
            zmesh__patterns_t **slot = streq(command, "BPSUBS")
                                           ? &self->cfg->bp_subs
                                           : &self->cfg->serves;
            zmesh__patterns_destroy(slot);
            *slot = patterns;
            s_advertise_all(self);
        }
    } else if (streq(command, "CREDIT")) {
        char *id = zmsg_popstr(msg);
        char *topic = zmsg_popstr(msg);
        char *last = zmsg_popstr(msg);
        uint8_t peer_id[ZMESH__ID_SIZE];
        zmesh__peer_t *peer = id && zmesh__id_from_hex(id, peer_id) == 0
                                  ? s_peer_lookup(self, peer_id)
                                  : NULL;
        if (peer && topic && last) {
            zmesh__msg_t credit;
            memset(&credit, 0, sizeof credit);
            credit.type = ZMESH__MSG_CREDIT;
            memcpy(credit.sender, self->cfg->id, ZMESH__ID_SIZE);
            credit.topic = topic;
            credit.last = strtoull(last, NULL, 10);
            zmesh__peer_send(peer, &credit);
        }
        zstr_free(&id);
        zstr_free(&topic);
        zstr_free(&last);
    } else if (streq(command, "ACK")) {
        char *id = zmsg_popstr(msg);
        char *req = zmsg_popstr(msg);
        uint8_t peer_id[ZMESH__ID_SIZE];
        zmesh__peer_t *peer = id && zmesh__id_from_hex(id, peer_id) == 0
                                  ? s_peer_lookup(self, peer_id)
                                  : NULL;
        if (peer && req) {
            zmesh__msg_t ack;
            memset(&ack, 0, sizeof ack);
            ack.type = ZMESH__MSG_ACK;
            memcpy(ack.sender, self->cfg->id, ZMESH__ID_SIZE);
            ack.req = strtoull(req, NULL, 10);
            zmesh__peer_send(peer, &ack);
        }
        zstr_free(&id);
        zstr_free(&req);
    } else if (streq(command, "HISTORY")) {
        zmesh__patterns_t *patterns = s_pop_pointer(msg);
        if (patterns) {
            // Asked of publishers as we connect to them, never of one we
            // are connected to already: its live events of the pattern
            // flow the moment the subscription is made, before a history
            // session could hold them, and history must come first.
            zmesh__patterns_destroy(&self->cfg->history);
            self->cfg->history = patterns;
        }
    } else if (streq(command, "NAK")) {
        zframe_t *frame = zmsg_pop(msg);
        zmesh__nak_t nak;
        if (frame && zframe_size(frame) == sizeof nak) {
            memcpy(&nak, zframe_data(frame), sizeof nak);
            s_send_nak(self, &nak);
        }
        zframe_destroy(&frame);
    } else if (streq(command, "DIRECT") || streq(command, "DIRECTNW")) {
        // DIRECTNW is DIRECT without the number and the reply: its sender
        // does not wait, so a failure can only be logged here.
        bool nowait = streq(command, "DIRECTNW");
        char *number = nowait ? NULL : zmsg_popstr(msg);
        zframe_t *how = zmsg_pop(msg);
        char *peer = zmsg_popstr(msg);
        char *topic = zmsg_popstr(msg);
        zframe_t *payload = zmsg_pop(msg);
        zmesh__direct_result_t result = {ZMESH_EINVAL, {0}};
        if ((number || nowait) && how &&
            zframe_size(how) == sizeof(zmesh__direct_t) && peer && topic &&
            payload)
            result = s_send_direct(self, (zmesh__direct_t *)zframe_data(how),
                                   peer, topic, payload);
        if (!nowait)
            zsock_send(self->pipe, "ssb", command, number ? number : "",
                       &result, sizeof result);
        else if (result.rc != 0)
            zmesh__log(ZMESH_LOG_DEBUG, "message on %s to %.8s not sent: %s",
                       topic ? topic : "?", peer ? peer : "?",
                       zmesh_strerror(result.rc));
        zstr_free(&number);
        zframe_destroy(&how);
        zstr_free(&peer);
        zstr_free(&topic);
        zframe_destroy(&payload);
    } else if (streq(command, "STATSQ")) {
        char *number = zmsg_popstr(msg);
        char *peer = zmsg_popstr(msg);
        zmesh__stats_query_t result = {ZMESH_ENOTFOUND, 0};
        zmesh__direct_t how = {ZMESH__MSG_STATS, 0, 0, false};
        zmesh__peer_t *target =
            peer ? s_direct_target(self, &how, peer, "") : NULL;
        if (target) {
            zmesh__msg_t question;
            memset(&question, 0, sizeof question);
            question.type = ZMESH__MSG_STATS;
            memcpy(question.sender, self->cfg->id, ZMESH__ID_SIZE);
            question.req = result.req = ++self->stats_req;
            result.rc = zmesh__peer_send(target, &question);
        }
        zsock_send(self->pipe, "ssb", command, number ? number : "", &result,
                   sizeof result);
        zstr_free(&number);
        zstr_free(&peer);
    } else if (streq(command, "STATSA")) {
        char *id = zmsg_popstr(msg);
        char *req = zmsg_popstr(msg);
        zmesh_counters_t *counters = s_pop_pointer(msg);
        if (id && req)
            s_answer_stats(self, id, req, counters);
        else
            zmesh_counters_destroy(&counters);
        zstr_free(&id);
        zstr_free(&req);
    } else if (streq(command, "PEERS") || streq(command, "STATS") ||
               streq(command, "WANT")) {
        // Queries: "sss" command, number, argument; the reply echoes the
        // command and number ("ssp" or "ssb"), see agent.c s_query.
        char *number = zmsg_popstr(msg);
        char *arg = zmsg_popstr(msg);
        const char *echo = number ? number : "";
        if (streq(command, "STATS"))
            zsock_send(self->pipe, "ssb", command, echo, &self->stats,
                       sizeof self->stats);
        else if (streq(command, "WANT")) {
            zmesh__want_t *want = arg ? s_want(self, arg, now) : NULL;
            zsock_send(self->pipe, "ssp", command, echo, want);
        } else
            zsock_send(self->pipe, "ssp", command, echo,
                       s_peer_list(self, now));
        zstr_free(&number);
        zstr_free(&arg);
    }
    zstr_free(&command);
    zmsg_destroy(&msg);
}

// Sends a NAK the application thread made. A publisher that is no joined
// peer cannot answer: the request is answered at once, with nothing, so
// the subscriber reports its gap without waiting for the timeout.
static void
s_send_nak(s_control_t *self, const zmesh__nak_t *nak)
{
    zmesh__peer_t *peer = s_peer_lookup(self, nak->publisher);
    int rc = ZMESH_ENOTFOUND;
    if (peer && zmesh__peer_state(peer) == ZMESH__PEER_JOINED) {
        zmesh__msg_t msg;
        memset(&msg, 0, sizeof msg);
        msg.type = ZMESH__MSG_NAK;
        memcpy(msg.sender, self->cfg->id, ZMESH__ID_SIZE);
        msg.req = nak->req;
        msg.topic = (char *)nak->topic;
        msg.first = nak->first;
        msg.last = nak->last;
        msg.join = nak->join;
        rc = zmesh__peer_send(peer, &msg);
    }
    if (rc != 0) {
        char hex[33];
        zmesh__id_to_hex(nak->publisher, hex);
        zmesh__log(ZMESH_LOG_DEBUG, "NAK to %s not sent: %s", hex,
                   zmesh_strerror(rc));
        s_forward_repair(self, nak->publisher, nak->req, true, false, NULL,
                         NULL, 0);
    }
}

// The joined peer a direct message or request goes to: by id, by name
// (the one that joined last), or (any) one of those wanting the topic,
// in turn.
static zmesh__peer_t *
s_direct_target(s_control_t *self, const zmesh__direct_t *how, const char *peer,
                const char *topic)
{
    uint8_t id[ZMESH__ID_SIZE];
    if (!how->any && strlen(peer) == 32 && zmesh__id_from_hex(peer, id) == 0) {
        zmesh__peer_t *found = s_peer_lookup(self, id);
        return found && zmesh__peer_state(found) == ZMESH__PEER_JOINED ? found
                                                                       : NULL;
    }
    zmesh__peer_t *chosen = NULL;
    if (how->any) {
        size_t matches = 0;
        for (zmesh__peer_t *p = zhashx_first(self->peers); p;
             p = zhashx_next(self->peers))
            matches += zmesh__peer_state(p) == ZMESH__PEER_JOINED &&
                       zmesh__peer_serves_topic(p, topic);
        if (matches == 0)
            return NULL;
        size_t pick = (size_t)(self->turn++ % matches);
        for (zmesh__peer_t *p = zhashx_first(self->peers); p;
             p = zhashx_next(self->peers))
            if (zmesh__peer_state(p) == ZMESH__PEER_JOINED &&
                zmesh__peer_serves_topic(p, topic) && pick-- == 0)
                return p;
        return NULL;
    }
    for (zmesh__peer_t *p = zhashx_first(self->peers); p;
         p = zhashx_next(self->peers))
        if (zmesh__peer_state(p) == ZMESH__PEER_JOINED &&
            streq(zmesh__peer_name(p), peer) &&
            (!chosen || zmesh__peer_created(p) > zmesh__peer_created(chosen)))
            chosen = p;
    return chosen;
}

static zmesh__direct_result_t
s_send_direct(s_control_t *self, const zmesh__direct_t *how, const char *peer,
              char *topic, zframe_t *payload)
{
    zmesh__direct_result_t result = {ZMESH_ENOTFOUND, {0}};
    zmesh__peer_t *target = s_direct_target(self, how, peer, topic);
    if (!target)
        return result;
    memcpy(result.peer, zmesh__peer_id(target), ZMESH__ID_SIZE);
    zmesh__msg_t msg;
    memset(&msg, 0, sizeof msg);
    msg.type = how->type;
    memcpy(msg.sender, self->cfg->id, ZMESH__ID_SIZE);
    msg.req = how->req;
    msg.status = how->status;
    msg.topic = topic;
    msg.payload = zframe_size(payload) > 0 ? zframe_data(payload) : NULL;
    msg.payload_size = zframe_size(payload);
    result.rc = zmesh__peer_send(target, &msg);
    if (result.rc == ZMESH_EAGAIN)
        result.rc = ZMESH_EFULL;
    return result;
}

/* ------------------------------------------------------------------------ */
/*  Start, loop, stop                                                       */

static void
s_free_resent(void **item)
{
    free(*item);
    *item = NULL;
}

static void
s_peer_free(void **item)
{
    zmesh__peer_destroy((zmesh__peer_t **)item);
}

static int
s_start(s_control_t *self)
{
    zmesh__control_config_t *cfg = self->cfg;
    self->mesh_hash = zmesh__mesh_hash(cfg->mesh);
    if (gethostname(self->host, sizeof self->host - 1) != 0)
        strcpy(self->host, "");
    self->dealer_opts.max_msg_size = cfg->max_msg_size + S_CONTROL_OVERHEAD;
    self->dealer_opts.linger_ms = S_DEALER_LINGER_MS;
    self->peers = zhashx_new();
    if (!self->peers ||
        zmesh__groups_new(&self->groups, S_GROUP_CREDIT, S_GROUP_BACKLOG) != 0)
        return ZMESH_ENOMEM;
    zhashx_set_destructor(self->peers, s_peer_free);
    self->resent = zhashx_new();
    if (!self->resent)
        return ZMESH_ENOMEM;
    zhashx_set_destructor(self->resent, s_free_resent);

    self->notify = zmesh__socket_new(ZMQ_PAIR, &self->dealer_opts);
    if (!self->notify)
        return ZMESH_ESYS;
    int unlimited = 0;
    zmq_setsockopt(zsock_resolve(self->notify), ZMQ_SNDHWM, &unlimited,
                   sizeof unlimited);
    if (zmq_connect(zsock_resolve(self->notify), cfg->notify_endpoint) != 0)
        return ZMESH_ESYS;

    if (cfg->scope != ZMESH_DISCOVERY_NONE) {
        char address[INET_ADDRSTRLEN];
        int rc = zmesh__beacon_sock_new(&self->beacon, cfg->scope, cfg->iface,
                                        cfg->group, cfg->beacon_port, address);
        if (rc != 0)
            return rc;
    }
    zmesh__socket_opts_t router_opts = {cfg->max_msg_size + S_CONTROL_OVERHEAD,
                                        0};
    self->router = zmesh__socket_new(ZMQ_ROUTER, &router_opts);
    if (!self->router)
        return ZMESH_ESYS;
    int rc = zmesh__socket_bind_tcp(self->router, cfg->bind_address,
                                    self->endpoint, sizeof self->endpoint);
    if (rc != 0)
        return rc;
    const char *colon = strrchr(self->endpoint, ':');
    self->port = (uint16_t)atoi(colon ? colon + 1 : "0");

    self->probes = calloc(cfg->seeds_count + 1, sizeof *self->probes);
    if (!self->probes)
        return ZMESH_ENOMEM;
    for (size_t i = 0; i < cfg->seeds_count; i++) {
        s_probe_t *probe = &self->probes[self->probes_count];
        probe->dealer = zmesh__socket_new(ZMQ_DEALER, &self->dealer_opts);
        if (!probe->dealer)
            return ZMESH_ESYS;
        self->probes_count++;
        probe->endpoint = strdup(cfg->seeds[i]);
        if (!probe->endpoint)
            return ZMESH_ENOMEM;
        // proto/wire.md#seeds: routing id 0x02 + our id + 4 random bytes.
        uint8_t routing_id[1 + ZMESH__ID_SIZE + 4] = {0x02};
        memcpy(routing_id + 1, cfg->id, ZMESH__ID_SIZE);
        zuuid_t *salt = zuuid_new();
        if (!salt)
            return ZMESH_ENOMEM;
        memcpy(routing_id + 1 + ZMESH__ID_SIZE, zuuid_data(salt), 4);
        zuuid_destroy(&salt);
        void *handle = zsock_resolve(probe->dealer);
        zmq_setsockopt(handle, ZMQ_ROUTING_ID, routing_id, sizeof routing_id);
        if (zmq_connect(handle, probe->endpoint) != 0) {
            zmesh__log(ZMESH_LOG_ERROR, "cannot connect to seed %s: %s",
                       probe->endpoint, zmq_strerror(zmq_errno()));
            return ZMESH_EADDR;
        }
    }
    // Our HELLO must encode, or no peer would ever hear of us: say so now
    // rather than fail silently on every contact.
    zmesh__msg_t hello;
    s_hello_fill(self, &hello);
    void *bytes;
    size_t size;
    rc = zmesh__msg_encode(&hello, &bytes, &size);
    if (rc != 0) {
        zmesh__log(ZMESH_LOG_ERROR, "this agent's HELLO cannot be encoded: %s",
                   zmesh_strerror(rc));
        return ZMESH_EINVAL;
    }
    free(bytes);
    self->started_ms = zmesh__clock_ms();
    self->next_beacon_ms = self->started_ms;
    self->next_tick_ms = self->started_ms;
    return 0;
}

static void
s_stop(s_control_t *self)
{
    if (self->peers) {
        for (zmesh__peer_t *peer = zhashx_first(self->peers); peer;
             peer = zhashx_next(self->peers))
            s_send(self, peer, ZMESH__MSG_BYE);
        s_beacon_send(self, ZMESH__BEACON_FLAG_LEAVING);
        zhashx_destroy(&self->peers);
    }
    zmesh__groups_destroy(&self->groups);
    zmesh__patterns_destroy(&self->group_view);
    zframe_destroy(&self->bp_view);
    zframe_destroy(&self->serve_view);
    zhashx_destroy(&self->resent);
    for (size_t i = 0; i < self->probes_count; i++) {
        zsock_destroy(&self->probes[i].dealer);
        free(self->probes[i].endpoint);
    }
    free(self->probes);
    zsock_destroy(&self->router);
    zsock_destroy(&self->notify);
    zmesh__beacon_sock_destroy(&self->beacon);
}

void
zmesh__control_config_destroy(zmesh__control_config_t **config)
{
    if (!config || !*config)
        return;
    zmesh__control_config_t *cfg = *config;
    *config = NULL;
    for (size_t i = 0; i < cfg->seeds_count; i++)
        free(cfg->seeds[i]);
    free(cfg->seeds);
    for (size_t i = 0; i < cfg->headers_count; i++) {
        free(cfg->headers[i].key);
        free(cfg->headers[i].value);
    }
    free(cfg->headers);
    zmesh__patterns_destroy(&cfg->pubs);
    zmesh__patterns_destroy(&cfg->subs);
    zmesh__patterns_destroy(&cfg->history);
    zmesh__patterns_destroy(&cfg->group_patterns);
    zmesh__patterns_destroy(&cfg->group_names);
    zmesh__patterns_destroy(&cfg->bp_subs);
    zmesh__patterns_destroy(&cfg->serves);
    free(cfg);
}

static void
s_loop(s_control_t *self)
{
    int tick_ms = self->cfg->beacon_interval_ms / 4;
    if (tick_ms > 100)
        tick_ms = 100;
    if (tick_ms < 5)
        tick_ms = 5;
    bool batch_signal = false; /* the outbox's fd was readable */
    while (!self->terminated) {
        int64_t now = zmesh__clock_ms();
        if (now >= self->next_beacon_ms) {
            s_beacon_send(self, 0);
            self->next_beacon_ms = now + self->cfg->beacon_interval_ms;
        }
        if (now >= self->next_tick_ms) {
            s_tick(self, now);
            self->next_tick_ms = now + tick_ms;
        }
        int64_t wake = self->next_beacon_ms < self->next_tick_ms
                           ? self->next_beacon_ms
                           : self->next_tick_ms;
        // A batch the application left behind is sent when it is due.
        long batch_due =
            self->cfg->outbox
                ? zmesh__outbox_expire(self->cfg->outbox, now, batch_signal)
                : -1;
        if (batch_due >= 0 && now + batch_due < wake)
            wake = now + batch_due;
        zmq_pollitem_t items[4] = {
            {zsock_resolve(self->pipe), 0, ZMQ_POLLIN, 0},
            {zsock_resolve(self->router), 0, ZMQ_POLLIN, 0},
            {NULL, self->cfg->outbox ? zmesh__outbox_fd(self->cfg->outbox) : -1,
             ZMQ_POLLIN, 0},
            {NULL, self->beacon ? zmesh__beacon_sock_fd(self->beacon) : -1,
             ZMQ_POLLIN, 0}};
        int rc = zmq_poll(items, self->beacon ? 4 : 3,
                          wake > now ? (long)(wake - now) : 0);
        if (rc < 0) {
            if (zmq_errno() == EINTR)
                continue;
            zmesh__log(ZMESH_LOG_ERROR, "control thread poll failed: %s",
                       zmq_strerror(zmq_errno()));
            break;
        }
        batch_signal = (items[2].revents & ZMQ_POLLIN) != 0;
        if (items[0].revents & ZMQ_POLLIN)
            s_on_command(self);
        // Bounded so a flood on the ROUTER cannot starve commands, beacons
        // or timers.
        for (int i = 0; i < S_CONTROL_PER_WAKE && !self->terminated; i++) {
            int events = 0;
            size_t size = sizeof events;
            zmq_getsockopt(zsock_resolve(self->router), ZMQ_EVENTS, &events,
                           &size);
            if (!(events & ZMQ_POLLIN))
                break;
            s_on_control(self);
        }
        if (self->beacon && (items[3].revents & ZMQ_POLLIN))
            s_beacons_read(self);
    }
}

void
zmesh__control_actor(zsock_t *pipe, void *args)
{
    s_control_t self;
    memset(&self, 0, sizeof self);
    self.pipe = pipe;
    self.cfg = args;
    int rc = s_start(&self);
    zsock_signal(pipe, 0);
    zsock_send(pipe, "si", "START", rc);
    if (rc == 0) {
        zstr_send(pipe, self.endpoint);
        s_loop(&self);
    }
    s_stop(&self);
    zmesh__control_config_destroy(&self.cfg);
}
