/*  loss.c - the repair benchmark: a paced publisher, and a subscriber
    that sleeps once, right after the first event, behind small HWMs, so
    ZeroMQ drops part of the burst. The subscriber accounts for each event
    by the number its payload carries: delivered live, repaired, named in
    a gap event, or (raw libzmq, which says nothing) missing. End markers
    follow the burst every millisecond until the subscriber reports, since
    raw libzmq shows a loss at the end of a stream only when something
    comes after it (the mesh's tail frames would too, but 0.1 s later,
    and the markers keep both paths alike). It judges nothing;
    reliability.c prints the table.
*/
#include "bench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmesh.h>
#include <zmq.h>

#define S_TOPIC "bench.loss"

/*  Probes are nil (mesh) or empty (raw), end markers msgpack true (mesh)
    or one byte (raw); data is never either. */
static const uint8_t s_probe[1] = {0xc0};
static const uint8_t s_marker[1] = {0xc3};

/* ------------------------------------------------------------------------ */
/*  The subscriber's tally, shared by both paths */

typedef struct {
    uint64_t first, last;
} s_range_t;

typedef struct {
    double *items;
    size_t count;
    size_t cap;
} s_samples_t;

typedef struct {
    long count; /* data events published */
    long live;
    long repaired;
    long gaps;    /* raw: missing ranges; mesh: from `ranges` at the end */
    long missing; /* raw: missing events; mesh: from `ranges` */
    long out_of_order;
    int64_t last_us;       /* wall clock of the last data delivery */
    int started;           /* a data event came */
    int fresh;             /* data came since the queue last ran dry */
    int in_repair;         /* the last data event was a repaired one */
    int64_t idle_since_ns; /* first time the queue ran dry since the last
                              delivery, 0 if it has not */
    s_samples_t delays;    /* repaired: delivery - publish, us */
    s_samples_t pauses;    /* before each run of repaired events, us */
    s_range_t *ranges;     /* mesh: gap events, by sequence */
    size_t ranges_count;
    size_t ranges_cap;
    uint64_t offset;     /* mesh: sequence - index of every data event */
    uint64_t last_index; /* mesh: the last data event delivered */
} s_tally_t;

static int
s_push(s_samples_t *s, double v)
{
    if (s->count == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        double *items = realloc(s->items, cap * sizeof *items);
        if (!items)
            return -1;
        s->items = items;
        s->cap = cap;
    }
    s->items[s->count++] = v;
    return 0;
}

static int
s_push_range(s_tally_t *t, uint64_t first, uint64_t last)
{
    if (t->ranges_count == t->ranges_cap) {
        size_t cap = t->ranges_cap ? t->ranges_cap * 2 : 64;
        s_range_t *ranges = realloc(t->ranges, cap * sizeof *ranges);
        if (!ranges)
            return -1;
        t->ranges = ranges;
        t->ranges_cap = cap;
    }
    t->ranges[t->ranges_count++] = (s_range_t){first, last};
    return 0;
}

static void
s_tally_free(s_tally_t *t)
{
    free(t->delays.items);
    free(t->pauses.items);
    free(t->ranges);
}

/*  The queue ran dry: the last delivery was about now. */
static void
s_tally_dry(s_tally_t *t)
{
    if (t->fresh)
        t->last_us = mb_wall_us();
    t->fresh = 0;
    if (!t->idle_since_ns)
        t->idle_since_ns = mb_now_ns();
}

static void
s_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/*  One data event delivered. The clock is read only for repaired ones
    (and when the queue runs dry), so the live path pays nothing for the
    bookkeeping. Returns -1 when out of memory. */
static int
s_tally_data(s_tally_t *t, int repaired, int64_t published_us, int stall_ms)
{
    int rc = 0;
    if (repaired) {
        t->repaired++;
        rc |= s_push(&t->delays, (double)(mb_wall_us() - published_us));
        if (!t->in_repair) {
            double pause = t->idle_since_ns
                               ? (double)(mb_now_ns() - t->idle_since_ns) / 1e3
                               : 0.0;
            rc |= s_push(&t->pauses, pause);
        }
        t->in_repair = 1;
    } else {
        t->live++;
        t->in_repair = 0;
    }
    t->fresh = 1;
    t->idle_since_ns = 0;
    if (!t->started) {
        /*  The induced loss: the publisher is in the middle of its burst
            and now fills every queue on the way. */
        t->started = 1;
        if (stall_ms > 0)
            s_sleep_ms(stall_ms);
    }
    return rc;
}

/*  The end marker came: everything before it is accounted for. */
static void
s_tally_end(s_tally_t *t)
{
    if (t->fresh)
        t->last_us = mb_wall_us();
    t->fresh = 0;
}

/*  "result LIVE REPAIRED GAPS MISSING LAST_US REQUESTS TIMEOUTS
    OUT_OF_ORDER DELAYS PAUSES", then one frame of DELAYS + PAUSES
    doubles. */
static int
s_tally_send(const s_tally_t *t, void *ctl, uint64_t requests,
             uint64_t timeouts)
{
    if (mb_ctl_send(ctl, "result %ld %ld %ld %ld %lld %llu %llu %ld %zu %zu",
                    t->live, t->repaired, t->gaps, t->missing,
                    (long long)t->last_us, (unsigned long long)requests,
                    (unsigned long long)timeouts, t->out_of_order,
                    t->delays.count, t->pauses.count) < 0)
        return -1;
    size_t n = t->delays.count + t->pauses.count;
    double *all = malloc((n ? n : 1) * sizeof *all);
    if (!all)
        return -1;
    if (t->delays.count)
        memcpy(all, t->delays.items, t->delays.count * sizeof *all);
    if (t->pauses.count)
        memcpy(all + t->delays.count, t->pauses.items,
               t->pauses.count * sizeof *all);
    int rc = zmq_send(ctl, all, n * sizeof *all, ZMQ_DONTWAIT) < 0 ? -1 : 0;
    free(all);
    return rc;
}

/* ------------------------------------------------------------------------ */
/*  The publisher's side, shared by both paths */

typedef int(s_mark_fn)(void *self);

/*  Sends end markers until the subscriber's result comes, then reads it
    into *out. 0 or -1 (printed). */
static int
s_await_result(mb_child_t *child, s_mark_fn *mark, void *self, int timeout_ms,
               long count, int64_t first_us, mb_loss_run_t *out)
{
    char rest[512];
    int64_t deadline = mb_now_ns() + (int64_t)timeout_ms * 1000000;
    for (;;) {
        if (mark(self) < 0)
            return -1;
        int got = mb_child_expect(child, "result", rest, sizeof rest, 1, NULL);
        if (got == 0)
            break;
        if (got == -1)
            return -1;
        if (mb_now_ns() > deadline) {
            fprintf(stderr,
                    "mesh-bench: no result from the subscriber within %d "
                    "ms\n",
                    timeout_ms);
            return -1;
        }
    }
    long long last_us;
    unsigned long long requests, timeouts;
    long out_of_order;
    size_t delays, pauses;
    if (sscanf(rest, "%ld %ld %ld %ld %lld %llu %llu %ld %zu %zu", &out->live,
               &out->repaired, &out->gaps, &out->missing, &last_us, &requests,
               &timeouts, &out_of_order, &delays, &pauses) != 10 ||
        out->live < 0 || out->repaired < 0 || out->missing < 0 ||
        out->live + out->repaired + out->missing > count ||
        delays > (size_t)count || pauses > (size_t)count) {
        fprintf(stderr, "mesh-bench: bad result from the peer: %s\n", rest);
        return -1;
    }
    if (out_of_order)
        fprintf(stderr,
                "mesh-bench: warning: %ld events came out of order or "
                "twice\n",
                out_of_order);
    out->out_of_order = out_of_order;
    zmq_pollitem_t item = {child->ctl, 0, ZMQ_POLLIN, 0};
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    size_t want = (delays + pauses) * sizeof(double);
    if (zmq_poll(&item, 1, MB_READY_TIMEOUT_MS) <= 0 ||
        zmq_msg_recv(&msg, child->ctl, ZMQ_DONTWAIT) < 0 ||
        zmq_msg_size(&msg) != want) {
        fprintf(stderr, "mesh-bench: the subscriber's samples did not come\n");
        zmq_msg_close(&msg);
        return -1;
    }
    out->delays_us = malloc(delays ? delays * sizeof(double) : 1);
    out->pauses_us = malloc(pauses ? pauses * sizeof(double) : 1);
    if (!out->delays_us || !out->pauses_us) {
        zmq_msg_close(&msg);
        mb_loss_run_free(out);
        fprintf(stderr, "mesh-bench: out of memory for samples\n");
        return -1;
    }
    const double *data = zmq_msg_data(&msg);
    if (delays)
        memcpy(out->delays_us, data, delays * sizeof(double));
    if (pauses)
        memcpy(out->pauses_us, data + delays, pauses * sizeof(double));
    zmq_msg_close(&msg);
    out->delays_n = delays;
    out->pauses_n = pauses;
    out->published = count;
    out->unaccounted = count - out->live - out->repaired - out->missing;
    out->repair_requests = requests;
    out->repair_timeouts = timeouts;
    double elapsed_us = (double)(last_us - first_us);
    out->elapsed_s = elapsed_us > 0 ? elapsed_us / 1e6 : 0.0;
    out->per_s = out->elapsed_s > 0
                     ? (double)(out->live + out->repaired) / out->elapsed_s
                     : 0.0;
    return 0;
}

void
mb_loss_run_free(mb_loss_run_t *run)
{
    free(run->delays_us);
    free(run->pauses_us);
    run->delays_us = NULL;
    run->pauses_us = NULL;
    run->delays_n = 0;
    run->pauses_n = 0;
}

static int
s_deadline_s(const mb_loss_params_t *lp)
{
    long paced = lp->rate > 0 ? lp->count / lp->rate : 0;
    return mb_thr_deadline_s(lp->count) + (int)paced + lp->stall_ms / 1000 + 1;
}

/*  Keeps the publisher to lp->rate: when it is more than a slice ahead
    of the schedule it sleeps the difference, so it sends in bursts of a
    few dozen events at most, not one big one per sleep. */
#define S_PACE_SLICE_NS 200000

static void
s_pace(const mb_loss_params_t *lp, int64_t start_ns, long sent)
{
    if (lp->rate <= 0)
        return;
    int64_t due = start_ns + (int64_t)((double)sent * 1e9 / (double)lp->rate);
    int64_t ahead = due - mb_now_ns();
    if (ahead > S_PACE_SLICE_NS) {
        struct timespec ts = {(time_t)(ahead / 1000000000),
                              (long)(ahead % 1000000000)};
        nanosleep(&ts, NULL);
    }
}

/* ------------------------------------------------------------------------ */
/*  Mesh */

static int
s_mesh_mark(void *self)
{
    int rc = zmesh_agent_publish(self, S_TOPIC, s_marker, 1);
    if (rc < 0)
        fprintf(stderr, "mesh-bench: publish marker: %s\n", zmesh_strerror(rc));
    return rc < 0 ? -1 : 0;
}

int
mb_loss_mesh_run(const mb_loss_params_t *lp, const mb_mesh_cfg_t *cfg,
                 mb_loss_run_t *out)
{
    size_t size = lp->size;
    long count = lp->count;
    int rc = -1;
    char mesh[64];
    int port;
    mb_child_t child = {0};
    memset(out, 0, sizeof *out);
    uint8_t *payload = mb_payload_new(size);
    void *ctx = zmq_ctx_new();
    zmesh_agent_t *agent = mb_mesh_parent_agent(
        "bench-pub", mesh, sizeof mesh, &port, NULL, S_TOPIC, cfg, lp->verbose);
    if (!payload || !ctx || !agent || size < MB_LOSS_MIN_SIZE)
        goto done;
    mb_peer_args_t args = {.kind = "mesh-loss",
                           .mesh = mesh,
                           .beacon_port = port,
                           .size = size,
                           .count = count,
                           .stall_ms = lp->stall_ms,
                           .deadline_s = s_deadline_s(lp),
                           .cfg = *cfg,
                           .verbose = lp->verbose};
    unsigned long long first_seq;
    if (mb_mesh_child_ready(&child, ctx, &args,
                            "the subscriber process to be ready", agent,
                            S_TOPIC, NULL) < 0 ||
        mb_mesh_probe(&child, agent, S_TOPIC, &first_seq) < 0)
        goto done;
    size_t at = mb_payload_offset(size);
    int64_t first_us = mb_wall_us();
    int64_t start_ns = mb_now_ns();
    for (long i = 1; i <= count; i++) {
        s_pace(lp, start_ns, i - 1);
        mb_put_u64(payload + at, (uint64_t)i);
        int prc = zmesh_agent_publish(agent, S_TOPIC, payload, size);
        if (prc < 0) {
            fprintf(stderr, "mesh-bench: publish: %s\n", zmesh_strerror(prc));
            goto done;
        }
    }
    if (s_await_result(&child, s_mesh_mark, agent, args.deadline_s * 1000,
                       count, first_us, out) < 0)
        goto done;
    zmesh_stats_t st;
    if (zmesh_agent_stats(agent, &st) == 0)
        out->events_resent = st.events_resent;
    rc = 0;
done:
    mb_child_stop(&child, 3000);
    zmesh_agent_destroy(&agent);
    if (ctx)
        zmq_ctx_term(ctx);
    free(payload);
    return rc;
}

/*  What one mesh event is to the tally; -1 on an event that cannot be. */
static int
s_mesh_event(s_tally_t *t, const zmesh_event_t *ev, const mb_peer_args_t *args,
             void *ctl, int *probed, int *ended)
{
    zmesh_event_type_t type = zmesh_event_type(ev);
    if (type == ZMESH_EVENT_GAP) {
        t->idle_since_ns = 0;
        return s_push_range(t, zmesh_event_sequence(ev),
                            zmesh_event_gap_last(ev));
    }
    if (type != ZMESH_EVENT_MESSAGE)
        return 0;
    size_t n;
    const uint8_t *p = zmesh_event_payload(ev, &n);
    uint64_t seq = zmesh_event_sequence(ev);
    if (n == 1 && p[0] == s_probe[0]) {
        if (!*probed)
            mb_ctl_send(ctl, "probed %llu", (unsigned long long)seq);
        *probed = 1;
        return 0;
    }
    if (n == 1 && p[0] == s_marker[0]) {
        s_tally_end(t);
        *ended = 1;
        return 0;
    }
    size_t at = mb_payload_offset(args->size);
    if (n != args->size || n < at + 8) {
        mb_ctl_send(ctl, "error a data event of %zu bytes", n);
        return -1;
    }
    uint64_t index = mb_get_u64(p + at);
    if (index < 1 || index > (uint64_t)args->count || seq <= index ||
        (t->started && seq - index != t->offset)) {
        mb_ctl_send(ctl, "error event %llu came as sequence %llu",
                    (unsigned long long)index, (unsigned long long)seq);
        return -1;
    }
    t->offset = seq - index;
    /*  The mesh promises each event once and in order; one that breaks
        that is counted, not tallied again. */
    if (index <= t->last_index) {
        t->out_of_order++;
        return 0;
    }
    t->last_index = index;
    if (s_tally_data(t, zmesh_event_repaired(ev), zmesh_event_timestamp(ev),
                     args->stall_ms) < 0) {
        mb_ctl_send(ctl, "error out of memory");
        return -1;
    }
    return 0;
}

int
mb_loss_mesh_peer(const mb_peer_args_t *args)
{
    int rc = 1;
    s_tally_t t = {.count = args->count};
    mb_mesh_peer_t peer;
    if (mb_mesh_peer_open(&peer, args, "bench-lossy", S_TOPIC, NULL, NULL,
                          "subscriber") < 0)
        goto done;
    int probed = 0, ended = 0;
    int64_t give_up = mb_now_ns() + (int64_t)MB_READY_TIMEOUT_MS * 2000000;
    while (!ended) {
        const zmesh_event_t *ev;
        int got = zmesh_agent_recv(peer.agent, 0, &ev);
        if (got == ZMESH_EAGAIN) {
            s_tally_dry(&t);
            got = zmesh_agent_recv(peer.agent, MB_POLL_MS, &ev);
            if (got == ZMESH_EAGAIN) {
                int64_t now = mb_now_ns();
                if (t.started ? now - t.idle_since_ns >
                                    (int64_t)MB_IDLE_TIMEOUT_MS * 1000000
                              : now > give_up)
                    break;
                continue;
            }
        }
        if (got < 0) {
            mb_ctl_send(peer.ctl, "error recv: %s", zmesh_strerror(got));
            goto done;
        }
        if (s_mesh_event(&t, ev, args, peer.ctl, &probed, &ended) < 0)
            goto done;
    }
    if (!probed) {
        mb_ctl_send(peer.ctl, "error no probe arrived");
        goto done;
    }
    /*  Only the gap events that name data events count: one may also
        cover end markers, or probes that went missing before the burst. */
    uint64_t lo = t.offset + 1, hi = t.offset + (uint64_t)t.count;
    for (size_t i = 0; i < t.ranges_count && t.started; i++) {
        uint64_t first = t.ranges[i].first > lo ? t.ranges[i].first : lo;
        uint64_t last = t.ranges[i].last < hi ? t.ranges[i].last : hi;
        if (first <= last) {
            t.gaps++;
            t.missing += (long)(last - first + 1);
        }
    }
    zmesh_stats_t st = {0};
    zmesh_agent_stats(peer.agent, &st);
    if (s_tally_send(&t, peer.ctl, st.repair_requests, st.repair_timeouts) == 0)
        rc = 0;
done:
    mb_mesh_peer_close(&peer);
    s_tally_free(&t);
    return rc;
}

/* ------------------------------------------------------------------------ */
/*  Raw libzmq: PUB here, SUB in the peer, the same HWM on both */

static void
s_close(void *sock)
{
    if (!sock)
        return;
    int linger = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(sock);
}

static int
s_raw_mark(void *self)
{
    /*  PUB drops at the HWM without telling; the next marker may pass. */
    zmq_send(self, s_marker, 1, ZMQ_DONTWAIT);
    return 0;
}

int
mb_loss_raw_run(const mb_loss_params_t *lp, mb_loss_run_t *out)
{
    size_t size = lp->size;
    long count = lp->count;
    int hwm = lp->hwm;
    int rc = -1;
    mb_child_t child = {0};
    memset(out, 0, sizeof *out);
    uint8_t *payload = mb_payload_new(size);
    void *ctx = zmq_ctx_new();
    void *pub = ctx ? zmq_socket(ctx, ZMQ_PUB) : NULL;
    if (!payload || !pub || size < MB_LOSS_MIN_SIZE) {
        fprintf(stderr, "mesh-bench: out of memory or sockets\n");
        goto done;
    }
    zmq_setsockopt(pub, ZMQ_SNDHWM, &hwm, sizeof hwm);
    if (zmq_bind(pub, "tcp://127.0.0.1:*") < 0) {
        fprintf(stderr, "mesh-bench: bind PUB: %s\n",
                zmq_strerror(zmq_errno()));
        goto done;
    }
    char endpoint[256];
    size_t len = sizeof endpoint;
    zmq_getsockopt(pub, ZMQ_LAST_ENDPOINT, endpoint, &len);
    mb_peer_args_t args = {.kind = "raw-loss",
                           .endpoint = endpoint,
                           .size = size,
                           .count = count,
                           .hwm = hwm,
                           .stall_ms = lp->stall_ms,
                           .deadline_s = s_deadline_s(lp),
                           .cfg = MB_MESH_DEFAULTS,
                           .verbose = lp->verbose};
    if (mb_child_start(&child, ctx, &args) < 0 ||
        mb_child_expect(&child, "ready", NULL, 0, MB_READY_TIMEOUT_MS,
                        "the subscriber process to be ready") < 0)
        goto done;
    int64_t deadline = mb_now_ns() + (int64_t)MB_READY_TIMEOUT_MS * 1000000;
    int probed = 0;
    while (!probed && mb_now_ns() < deadline) {
        zmq_send(pub, "", 0, ZMQ_DONTWAIT);
        int got = mb_child_expect(&child, "probed", NULL, 0, 20, NULL);
        if (got == -1)
            goto done;
        probed = got == 0;
    }
    if (!probed) {
        fprintf(stderr,
                "mesh-bench: the subscriber got no probe within %d ms\n",
                MB_READY_TIMEOUT_MS);
        goto done;
    }
    /*  The same bytes as the mesh's payload, the number at the same
        place, so both paths move the same application data. */
    size_t at = mb_payload_offset(size);
    int64_t first_us = mb_wall_us();
    int64_t start_ns = mb_now_ns();
    for (long i = 1; i <= count; i++) {
        s_pace(lp, start_ns, i - 1);
        mb_put_u64(payload + at, (uint64_t)i);
        if (zmq_send(pub, payload, size, 0) < 0) {
            fprintf(stderr, "mesh-bench: send: %s\n",
                    zmq_strerror(zmq_errno()));
            goto done;
        }
    }
    if (s_await_result(&child, s_raw_mark, pub, args.deadline_s * 1000, count,
                       first_us, out) < 0)
        goto done;
    rc = 0;
done:
    mb_child_stop(&child, 3000);
    s_close(pub);
    if (ctx)
        zmq_ctx_term(ctx);
    free(payload);
    return rc;
}

/*  What one raw message is to the tally: counted by the number in it,
    since PUB/SUB itself says nothing about what it dropped. */
static int
s_raw_message(s_tally_t *t, zmq_msg_t *msg, const mb_peer_args_t *args,
              void *ctl, int *probed, int *ended, uint64_t *expected)
{
    size_t n = zmq_msg_size(msg);
    const uint8_t *p = zmq_msg_data(msg);
    if (n == 0) {
        if (!*probed)
            mb_ctl_send(ctl, "probed 0");
        *probed = 1;
        return 0;
    }
    if (n == 1 && p[0] == s_marker[0]) {
        if (*expected <= (uint64_t)t->count) {
            t->gaps++;
            t->missing += (long)((uint64_t)t->count - *expected + 1);
        }
        s_tally_end(t);
        *ended = 1;
        return 0;
    }
    size_t at = mb_payload_offset(args->size);
    uint64_t index = n == args->size ? mb_get_u64(p + at) : 0;
    if (index < 1 || index > (uint64_t)t->count) {
        mb_ctl_send(ctl, "error a message of %zu bytes", n);
        return -1;
    }
    if (index < *expected) {
        t->out_of_order++;
        return 0;
    }
    if (index > *expected) {
        t->gaps++;
        t->missing += (long)(index - *expected);
    }
    *expected = index + 1;
    if (s_tally_data(t, 0, 0, args->stall_ms) < 0) {
        mb_ctl_send(ctl, "error out of memory");
        return -1;
    }
    return 0;
}

int
mb_loss_raw_peer(const mb_peer_args_t *args)
{
    int rc = 1;
    s_tally_t t = {.count = args->count};
    void *ctx = zmq_ctx_new();
    void *ctl = ctx ? mb_child_attach(ctx, args) : NULL;
    void *sub = ctl ? zmq_socket(ctx, ZMQ_SUB) : NULL;
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (!sub || !args->endpoint)
        goto done;
    zmq_setsockopt(sub, ZMQ_RCVHWM, &args->hwm, sizeof args->hwm);
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0);
    if (zmq_connect(sub, args->endpoint) < 0) {
        mb_ctl_send(ctl, "error connect %s: %s", args->endpoint,
                    zmq_strerror(zmq_errno()));
        goto done;
    }
    mb_ctl_send(ctl, "ready");
    int probed = 0, ended = 0;
    uint64_t expected = 1;
    int64_t give_up = mb_now_ns() + (int64_t)MB_READY_TIMEOUT_MS * 2000000;
    while (!ended) {
        if (zmq_msg_recv(&msg, sub, ZMQ_DONTWAIT) < 0) {
            if (zmq_errno() != EAGAIN)
                break;
            s_tally_dry(&t);
            zmq_pollitem_t item = {sub, 0, ZMQ_POLLIN, 0};
            if (zmq_poll(&item, 1, MB_POLL_MS) <= 0) {
                int64_t now = mb_now_ns();
                if (t.started ? now - t.idle_since_ns >
                                    (int64_t)MB_IDLE_TIMEOUT_MS * 1000000
                              : now > give_up)
                    break;
            }
            continue;
        }
        if (s_raw_message(&t, &msg, args, ctl, &probed, &ended, &expected) < 0)
            goto done;
    }
    if (!probed) {
        mb_ctl_send(ctl, "error no probe arrived");
        goto done;
    }
    if (s_tally_send(&t, ctl, 0, 0) == 0)
        rc = 0;
done:
    zmq_msg_close(&msg);
    s_close(sub);
    if (ctl)
        zmq_close(ctl); /* lingers until the result is out */
    if (ctx)
        zmq_ctx_term(ctx);
    s_tally_free(&t);
    return rc;
}
