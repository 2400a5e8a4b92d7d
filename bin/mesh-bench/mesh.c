/*  mesh.c - the benchmarks of raw.c through libzmesh's public API only:
    two agents in two processes, alone on a mesh of their own (a unique
    name, a random beacon port, 100 ms beacons), with the reliability
    settings the run asks for. thr: "bench.thr" from this process to the
    peer; lat: "bench.ping" out, "bench.pong" back; rr: zmesh_agent_request
    on "bench.rr", which the peer serves and answers with
    zmesh_agent_reply. Probes are nil payloads, data never is, so neither
    side ever confuses the two.
*/
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmesh.h>
#include <zmq.h>

#define S_THR_TOPIC "bench.thr"
#define S_PING_TOPIC "bench.ping"
#define S_PONG_TOPIC "bench.pong"
#define S_RR_TOPIC "bench.rr"

static const uint8_t s_probe[1] = {0xc0};

/*  A started agent on the run's mesh, or NULL (printed). */
static zmesh_agent_t *
s_agent(const char *name, const char *mesh, int port, const char *sub,
        const char *adv, const char *serve, const mb_mesh_cfg_t *cfg,
        int verbose)
{
    zmesh_agent_t *agent = NULL;
    int rc = zmesh_agent_new(&agent, name);
    if (rc == 0)
        rc = zmesh_agent_set_mesh(agent, mesh);
    if (rc == 0)
        rc = zmesh_agent_set_beacon_port(agent, port);
    if (rc == 0)
        rc = zmesh_agent_set_beacon_interval(agent, 100);
    if (rc == 0 && sub)
        rc = zmesh_agent_subscribe(agent, sub);
    if (rc == 0 && adv)
        rc = zmesh_agent_advertise(agent, adv);
    if (rc == 0 && serve)
        rc = zmesh_agent_serve(agent, serve);
    if (rc == 0 && cfg->retransmit >= 0)
        rc = zmesh_agent_set_retransmit_buffer(agent, (size_t)cfg->retransmit);
    if (rc == 0 && cfg->repair_timeout >= 0)
        rc = zmesh_agent_set_repair_timeout(agent, cfg->repair_timeout);
    /*  0 events a batch: every event in a frame of its own. The delay must
        still be valid (1..1000 ms), though nothing waits for it. */
    if (rc == 0 && cfg->batch_off)
        rc = zmesh_agent_set_batching(agent, 0, 1);
    if (rc == 0)
        rc = zmesh_agent_start(agent);
    if (rc < 0) {
        if (verbose || rc != ZMESH_EADDR)
            fprintf(stderr, "mesh-bench: agent %s on port %d: %s\n", name, port,
                    zmesh_strerror(rc));
        zmesh_agent_destroy(&agent);
    }
    return agent;
}

/*  The beacon port is random, so a port that is taken is retried with
    another. */
zmesh_agent_t *
mb_mesh_parent_agent(const char *name, char *mesh, size_t mesh_cap, int *port,
                     const char *sub, const char *adv, const mb_mesh_cfg_t *cfg,
                     int verbose)
{
    for (int attempt = 0; attempt < 5; attempt++) {
        mb_mesh_name(mesh, mesh_cap);
        *port = mb_random_port();
        zmesh_agent_t *agent =
            s_agent(name, mesh, *port, sub, adv, NULL, cfg, verbose);
        if (agent)
            return agent;
    }
    fprintf(stderr, "mesh-bench: no agent could start\n");
    return NULL;
}

/*  thr, lat and the repair benchmark need exactly this before their first
    probe. */
int
mb_mesh_child_ready(mb_child_t *child, void *ctx, mb_peer_args_t *args,
                    const char *what, zmesh_agent_t *agent, const char *topic,
                    double *subscribed_ms)
{
    if (mb_child_start(child, ctx, args) < 0)
        return -1;
    if (mb_child_expect(child, "ready", NULL, 0, MB_READY_TIMEOUT_MS, what) < 0)
        return -1;
    int64_t t0 = mb_now_ns();
    int n = zmesh_agent_wait_subscribers(agent, topic, 1, MB_READY_TIMEOUT_MS);
    if (n < 1) {
        fprintf(stderr, "mesh-bench: zmesh_agent_wait_subscribers: %s\n",
                n < 0 ? zmesh_strerror(n) : "no subscriber");
        return -1;
    }
    if (subscribed_ms)
        *subscribed_ms = (double)(mb_now_ns() - t0) / 1e6;
    return 0;
}

/*  wait_subscribers should mean the first event gets through; the probes
    check that, and the sequence of the first one the peer saw tells
    whether it did. */
int
mb_mesh_probe(mb_child_t *child, zmesh_agent_t *agent, const char *topic,
              unsigned long long *first_seq)
{
    int64_t deadline = mb_now_ns() + (int64_t)MB_READY_TIMEOUT_MS * 1000000;
    char rest[256] = "";
    while (mb_now_ns() < deadline) {
        int prc = zmesh_agent_publish(agent, topic, s_probe, 1);
        if (prc < 0) {
            fprintf(stderr, "mesh-bench: publish probe: %s\n",
                    zmesh_strerror(prc));
            return -1;
        }
        int got = mb_child_expect(child, "probed", rest, sizeof rest, 20, NULL);
        if (got == -1)
            return -1;
        if (got == 0) {
            *first_seq = strtoull(rest, NULL, 10);
            return 0;
        }
    }
    fprintf(stderr, "mesh-bench: the subscriber got no probe within %d ms\n",
            MB_READY_TIMEOUT_MS);
    return -1;
}

/*  The peer process's side of a run, set up and torn down the same way
    by every benchmark: attaches the control channel, starts the agent
    and tells the parent "ready", or why not ("error the <role>'s agent
    did not start"). 0 or -1; either way mb_mesh_peer_close() undoes what
    was done. */
int
mb_mesh_peer_open(mb_mesh_peer_t *peer, const mb_peer_args_t *args,
                  const char *name, const char *sub, const char *adv,
                  const char *serve, const char *role)
{
    peer->ctx = zmq_ctx_new();
    peer->ctl = peer->ctx ? mb_child_attach(peer->ctx, args) : NULL;
    peer->agent = NULL;
    if (!peer->ctl || !args->mesh)
        return -1;
    peer->agent = s_agent(name, args->mesh, args->beacon_port, sub, adv, serve,
                          &args->cfg, 1);
    if (!peer->agent) {
        mb_ctl_send(peer->ctl, "error the %s's agent did not start", role);
        return -1;
    }
    mb_ctl_send(peer->ctl, "ready");
    return 0;
}

void
mb_mesh_peer_close(mb_mesh_peer_t *peer)
{
    zmesh_agent_destroy(&peer->agent);
    if (peer->ctl)
        zmq_close(peer->ctl);
    if (peer->ctx)
        zmq_ctx_term(peer->ctx);
}

static int
s_is_probe(const zmesh_event_t *ev)
{
    size_t n;
    const uint8_t *p = zmesh_event_payload(ev, &n);
    return n == 1 && p[0] == 0xc0;
}

int
mb_mesh_thr_run(size_t size, long count, const mb_mesh_cfg_t *cfg, int verbose,
                mb_thr_run_t *out)
{
    int rc = -1;
    char mesh[64];
    int port;
    mb_child_t child = {0};
    uint8_t *payload = mb_payload_new(size);
    void *ctx = zmq_ctx_new();
    zmesh_agent_t *agent = mb_mesh_parent_agent(
        "bench-pub", mesh, sizeof mesh, &port, NULL, S_THR_TOPIC, cfg, verbose);
    if (!payload || !ctx || !agent)
        goto done;
    mb_peer_args_t args = {.kind = "mesh-thr",
                           .mesh = mesh,
                           .beacon_port = port,
                           .size = size,
                           .count = count,
                           .deadline_s = mb_thr_deadline_s(count),
                           .cfg = *cfg,
                           .verbose = verbose};
    double subscribed_ms;
    if (mb_mesh_child_ready(&child, ctx, &args,
                            "the subscriber process to be ready", agent,
                            S_THR_TOPIC, &subscribed_ms) < 0)
        goto done;
    if (verbose)
        fprintf(stderr, "mesh-bench: subscriber ready after %.0f ms\n",
                subscribed_ms);

    unsigned long long first_seq;
    if (mb_mesh_probe(&child, agent, S_THR_TOPIC, &first_seq) < 0)
        goto done;

    /*  The publisher's batch counters before and after the data: the
        probes, one at a time, never batch, and are left out anyway. */
    zmesh_stats_t before, after;
    int src = zmesh_agent_stats(agent, &before);
    if (src < 0) {
        fprintf(stderr, "mesh-bench: zmesh_agent_stats: %s\n",
                zmesh_strerror(src));
        goto done;
    }
    int64_t cpu_start = mb_cpu_ns();
    int64_t send_start = mb_now_ns();
    for (long i = 0; i < count; i++) {
        int prc = zmesh_agent_publish(agent, S_THR_TOPIC, payload, size);
        if (prc < 0) {
            fprintf(stderr, "mesh-bench: publish: %s\n", zmesh_strerror(prc));
            goto done;
        }
    }
    /*  The end of the burst: the last batch goes now, as a publisher that
        is done would send it, rather than after the batch delay. */
    int frc = zmesh_agent_flush(agent);
    if (frc < 0) {
        fprintf(stderr, "mesh-bench: flush: %s\n", zmesh_strerror(frc));
        goto done;
    }
    out->send_ns = (double)(mb_now_ns() - send_start) / (double)count;
    mb_ctl_send(child.ctl, "sent");
    if (mb_thr_result(&child, args.deadline_s * 1000, count, cpu_start, out) <
        0)
        goto done;
    out->first_probe_seq = first_seq;
    src = zmesh_agent_stats(agent, &after);
    if (src < 0) {
        fprintf(stderr, "mesh-bench: zmesh_agent_stats: %s\n",
                zmesh_strerror(src));
        goto done;
    }
    out->batched = (long)(after.events_batched - before.events_batched);
    out->batches = (long)(after.batches_sent - before.batches_sent);
    rc = 0;
done:
    mb_child_stop(&child, 3000);
    zmesh_agent_destroy(&agent);
    if (ctx)
        zmq_ctx_term(ctx);
    free(payload);
    return rc;
}

/*  mb_recv_fn over the subscriber's agent. */
static int
s_thr_recv(void *self, int wait_ms, uint64_t *probe_seq)
{
    const zmesh_event_t *ev;
    int got = zmesh_agent_recv(self, wait_ms, &ev);
    if (got < 0)
        return got == ZMESH_EAGAIN ? MB_GOT_NOTHING : MB_GOT_ERROR;
    if (zmesh_event_type(ev) != ZMESH_EVENT_MESSAGE)
        return MB_GOT_OTHER;
    if (s_is_probe(ev)) {
        *probe_seq = zmesh_event_sequence(ev);
        return MB_GOT_PROBE;
    }
    return MB_GOT_DATA;
}

int
mb_mesh_thr_peer(const mb_peer_args_t *args)
{
    int rc = 1;
    mb_mesh_peer_t peer;
    if (mb_mesh_peer_open(&peer, args, "bench-sub", S_THR_TOPIC, NULL, NULL,
                          "subscriber") == 0 &&
        mb_thr_count(s_thr_recv, peer.agent, peer.ctl, args->count) == 0)
        rc = 0;
    mb_mesh_peer_close(&peer);
    return rc;
}

/*  Waits for the next bench.pong that is not a probe's echo. */
static int
s_await_pong(zmesh_agent_t *agent, int timeout_ms)
{
    int64_t deadline = mb_now_ns() + (int64_t)timeout_ms * 1000000;
    const zmesh_event_t *ev;
    for (;;) {
        int64_t left = (deadline - mb_now_ns()) / 1000000;
        if (left < 0)
            return ZMESH_ETIMEDOUT;
        int rc = zmesh_agent_recv(agent, (int)left, &ev);
        if (rc == ZMESH_EAGAIN)
            continue;
        if (rc < 0)
            return rc;
        if (zmesh_event_type(ev) == ZMESH_EVENT_MESSAGE && !s_is_probe(ev))
            return 0;
    }
}

int
mb_mesh_lat_run(size_t size, long count, const mb_mesh_cfg_t *cfg, int verbose,
                double *samples_us)
{
    int rc = -1;
    char mesh[64];
    int port;
    mb_child_t child = {0};
    uint8_t *payload = mb_payload_new(size);
    void *ctx = zmq_ctx_new();
    zmesh_agent_t *agent =
        mb_mesh_parent_agent("bench-ping", mesh, sizeof mesh, &port,
                             S_PONG_TOPIC, S_PING_TOPIC, cfg, verbose);
    if (!payload || !ctx || !agent)
        goto done;
    mb_peer_args_t args = {.kind = "mesh-lat",
                           .mesh = mesh,
                           .beacon_port = port,
                           .size = size,
                           .count = count,
                           .deadline_s = mb_lat_deadline_s(count),
                           .cfg = *cfg,
                           .verbose = verbose};
    if (mb_mesh_child_ready(&child, ctx, &args, "the echo process to be ready",
                            agent, S_PING_TOPIC, NULL) < 0)
        goto done;
    /*  The pong path forms while this agent receives, so probe until an
        echo comes back; echoes of late probes are skipped later on. */
    int64_t deadline = mb_now_ns() + (int64_t)MB_READY_TIMEOUT_MS * 1000000;
    const zmesh_event_t *ev;
    int echoed = 0;
    while (!echoed && mb_now_ns() < deadline) {
        int prc = zmesh_agent_publish(agent, S_PING_TOPIC, s_probe, 1);
        if (prc < 0) {
            fprintf(stderr, "mesh-bench: publish probe: %s\n",
                    zmesh_strerror(prc));
            goto done;
        }
        int64_t until = mb_now_ns() + 50000000;
        while (!echoed && mb_now_ns() < until)
            if (zmesh_agent_recv(agent, 10, &ev) == 0 &&
                zmesh_event_type(ev) == ZMESH_EVENT_MESSAGE)
                echoed = 1;
    }
    if (!echoed) {
        fprintf(stderr, "mesh-bench: no echo within %d ms\n",
                MB_READY_TIMEOUT_MS);
        goto done;
    }
    for (long i = -MB_LAT_WARMUP; i < count; i++) {
        int64_t t0 = mb_now_ns();
        int prc = zmesh_agent_publish(agent, S_PING_TOPIC, payload, size);
        if (prc == 0)
            prc = s_await_pong(agent, MB_LAT_TIMEOUT_MS);
        if (prc < 0) {
            fprintf(stderr, "mesh-bench: mesh round trip %ld: %s\n", i,
                    zmesh_strerror(prc));
            goto done;
        }
        int64_t t1 = mb_now_ns();
        if (i >= 0)
            samples_us[i] = (double)(t1 - t0) / 1000.0;
    }
    mb_ctl_send(child.ctl, "stop");
    rc = 0;
done:
    mb_child_stop(&child, 3000);
    zmesh_agent_destroy(&agent);
    if (ctx)
        zmq_ctx_term(ctx);
    free(payload);
    return rc;
}

/*  The answering side of lat and rr: each message (lat) is published
    back on the pong topic, each request (rr) answered with its payload,
    until the control channel says "stop". The control channel is looked
    at only when idle, so it adds nothing to a round trip. */
static int
s_echo(mb_mesh_peer_t *peer, zmesh_event_type_t type)
{
    const zmesh_event_t *ev;
    for (;;) {
        int got = zmesh_agent_recv(peer->agent, 100, &ev);
        if (got == ZMESH_EAGAIN) {
            char buf[64];
            if (mb_ctl_recv(peer->ctl, buf, sizeof buf, 0) >= 0 &&
                strcmp(buf, "stop") == 0)
                return 0;
            continue;
        }
        if (got < 0) {
            mb_ctl_send(peer->ctl, "error recv: %s", zmesh_strerror(got));
            return 1;
        }
        if (zmesh_event_type(ev) != type)
            continue;
        size_t len;
        const void *p = zmesh_event_payload(ev, &len);
        got = type == ZMESH_EVENT_REQUEST
                  ? zmesh_agent_reply(peer->agent, ev, p, len)
                  : zmesh_agent_publish(peer->agent, S_PONG_TOPIC, p, len);
        if (got < 0) {
            mb_ctl_send(peer->ctl, "error %s: %s",
                        type == ZMESH_EVENT_REQUEST ? "reply" : "publish",
                        zmesh_strerror(got));
            return 1;
        }
    }
}

int
mb_mesh_lat_peer(const mb_peer_args_t *args)
{
    mb_mesh_peer_t peer;
    int rc = 1;
    if (mb_mesh_peer_open(&peer, args, "bench-echo", S_PING_TOPIC, S_PONG_TOPIC,
                          NULL, "echo") >= 0)
        rc = s_echo(&peer, ZMESH_EVENT_MESSAGE);
    mb_mesh_peer_close(&peer);
    return rc;
}

/*  Waits for the ZMESH_EVENT_REPLY to request `id`, skipping anything
    else. Returns its status (0: a reply, whose payload size goes to
    *size), an error of zmesh_agent_recv, or ZMESH_ETIMEDOUT when the
    library did not keep its promise of one reply event in time. It
    waits in slices of MB_POLL_MS, as an event loop with a tick would:
    zmesh_agent_recv can sit on an event that is already there for the
    whole of its timeout (see docs/benchmarks.md), and a slice bounds
    what that costs a round trip. */
static int
s_await_reply(zmesh_agent_t *agent, uint64_t id, int timeout_ms, size_t *size)
{
    int64_t deadline = mb_now_ns() + (int64_t)timeout_ms * 1000000;
    const zmesh_event_t *ev;
    for (;;) {
        int64_t left = (deadline - mb_now_ns()) / 1000000;
        if (left < 0)
            return ZMESH_ETIMEDOUT;
        int rc = zmesh_agent_recv(
            agent, left > MB_POLL_MS ? MB_POLL_MS : (int)left, &ev);
        if (rc == ZMESH_EAGAIN)
            continue;
        if (rc < 0)
            return rc;
        if (zmesh_event_type(ev) != ZMESH_EVENT_REPLY ||
            zmesh_event_request_id(ev) != id)
            continue;
        zmesh_event_payload(ev, size);
        return zmesh_event_status(ev);
    }
}

/*  One request and its reply; 0, or the reason there was none. */
static int
s_round_trip(zmesh_agent_t *agent, const void *payload, size_t size)
{
    uint64_t id;
    int rc = zmesh_agent_request(agent, NULL, S_RR_TOPIC, payload, size,
                                 MB_LAT_TIMEOUT_MS, &id);
    if (rc < 0)
        return rc;
    size_t got = 0;
    /*  The library answers every request within its timeout; a second
        on top only keeps a broken promise from hanging the run. */
    rc = s_await_reply(agent, id, MB_LAT_TIMEOUT_MS + 1000, &got);
    if (rc == 0 && got != size)
        return ZMESH_EPROTO;
    return rc;
}

int
mb_mesh_rr_run(size_t size, long count, int verbose, double *samples_us,
               long *replies)
{
    int rc = -1;
    char mesh[64];
    int port;
    mb_child_t child = {0};
    const mb_mesh_cfg_t cfg = MB_MESH_DEFAULTS;
    uint8_t *payload = mb_payload_new(size);
    void *ctx = zmq_ctx_new();
    zmesh_agent_t *agent = mb_mesh_parent_agent(
        "bench-req", mesh, sizeof mesh, &port, NULL, NULL, &cfg, verbose);
    *replies = 0;
    if (!payload || !ctx || !agent)
        goto done;
    mb_peer_args_t args = {.kind = "mesh-rr",
                           .mesh = mesh,
                           .beacon_port = port,
                           .size = size,
                           .count = count,
                           .deadline_s = mb_lat_deadline_s(count),
                           .cfg = cfg,
                           .verbose = verbose};
    if (mb_child_start(&child, ctx, &args) < 0 ||
        mb_child_expect(&child, "ready", NULL, 0, MB_READY_TIMEOUT_MS,
                        "the responder process to be ready") < 0)
        goto done;
    /*  Requests by topic fail with ZMESH_ENOTFOUND until this agent has
        heard that the responder wants bench.rr; probe until one is
        answered. zmesh_agent_recv meanwhile lets the agent take in what
        its control thread learned. */
    int64_t deadline = mb_now_ns() + (int64_t)MB_READY_TIMEOUT_MS * 1000000;
    int answered = 0;
    while (!answered && mb_now_ns() < deadline) {
        int prc = s_round_trip(agent, s_probe, 1);
        if (prc == ZMESH_ENOTFOUND) {
            const zmesh_event_t *ev;
            zmesh_agent_recv(agent, 20, &ev);
            continue;
        }
        if (prc < 0 && prc != ZMESH_ETIMEDOUT && prc != ZMESH_EGONE) {
            fprintf(stderr, "mesh-bench: probe request: %s\n",
                    zmesh_strerror(prc));
            goto done;
        }
        answered = prc == 0;
    }
    if (!answered) {
        fprintf(stderr, "mesh-bench: no reply within %d ms\n",
                MB_READY_TIMEOUT_MS);
        goto done;
    }
    for (long i = -MB_LAT_WARMUP; i < count; i++) {
        int64_t t0 = mb_now_ns();
        int prc = s_round_trip(agent, payload, size);
        if (prc != 0) {
            fprintf(stderr, "mesh-bench: request %ld: %s\n", i,
                    zmesh_strerror(prc));
            goto done;
        }
        int64_t t1 = mb_now_ns();
        if (i >= 0) {
            samples_us[i] = (double)(t1 - t0) / 1000.0;
            (*replies)++;
        }
    }
    mb_ctl_send(child.ctl, "stop");
    rc = 0;
done:
    mb_child_stop(&child, 3000);
    zmesh_agent_destroy(&agent);
    if (ctx)
        zmq_ctx_term(ctx);
    free(payload);
    return rc;
}

int
mb_mesh_rr_peer(const mb_peer_args_t *args)
{
    mb_mesh_peer_t peer;
    int rc = 1;
    if (mb_mesh_peer_open(&peer, args, "bench-rr", NULL, NULL, S_RR_TOPIC,
                          "responder") >= 0)
        rc = s_echo(&peer, ZMESH_EVENT_REQUEST);
    mb_mesh_peer_close(&peer);
    return rc;
}
