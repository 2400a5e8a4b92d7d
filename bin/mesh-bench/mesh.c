/*  mesh.c - the same benchmarks as raw.c, through libzmesh's public API
    only: two agents in two processes, alone on a mesh of their own (a
    unique mesh name and a random beacon port per run, 100 ms beacons so
    discovery is quick). thr: the peer subscribes "bench.thr", this process
    advertises it, waits for the subscriber with
    zmesh_agent_wait_subscribers and publishes. lat: "bench.ping" out,
    "bench.pong" back, one in flight. Probes are nil payloads, data never
    is, so neither side ever confuses the two.
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

static const uint8_t s_probe[1] = {0xc0};

/*  A started agent on the run's mesh, or NULL (printed). */
static zmesh_agent_t *
s_agent(const char *name, const char *mesh, int port, const char *sub,
        const char *adv, int verbose)
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

/*  The parent's agent; the beacon port is random, so a port that is
    taken is retried with another. Sets *port to the one that worked. */
static zmesh_agent_t *
s_parent_agent(const char *name, char *mesh, size_t mesh_cap, int *port,
               const char *sub, const char *adv, int verbose)
{
    for (int attempt = 0; attempt < 5; attempt++) {
        mb_mesh_name(mesh, mesh_cap);
        *port = mb_random_port();
        zmesh_agent_t *agent = s_agent(name, mesh, *port, sub, adv, verbose);
        if (agent)
            return agent;
    }
    fprintf(stderr, "mesh-bench: no agent could start\n");
    return NULL;
}

/*  Starts the peer process and waits until it says it is ready and its
    agent's subscription to `topic` has reached `agent`: both runs need
    exactly that before their first probe. Sets *subscribed_ms to how long
    the subscription took after ready. 0 or -1 (printed). */
static int
s_child_ready(mb_child_t *child, void *ctx, mb_peer_args_t *args,
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
    *subscribed_ms = (double)(mb_now_ns() - t0) / 1e6;
    return 0;
}

/*  The peer process's side of a run: the control channel to the parent
    and a started agent, set up and torn down the same way by the thr
    subscriber and the lat echo. */
typedef struct {
    void *ctx;
    void *ctl;
    zmesh_agent_t *agent;
} s_peer_t;

/*  Attaches the control channel, starts the agent and tells the parent
    "ready", or why not ("error the <role>'s agent did not start"). 0 or
    -1; either way s_peer_close() undoes what was done. */
static int
s_peer_open(s_peer_t *peer, const mb_peer_args_t *args, const char *name,
            const char *sub, const char *adv, const char *role)
{
    peer->ctx = zmq_ctx_new();
    peer->ctl = peer->ctx ? mb_child_attach(peer->ctx, args) : NULL;
    peer->agent = NULL;
    if (!peer->ctl || !args->mesh)
        return -1;
    peer->agent = s_agent(name, args->mesh, args->beacon_port, sub, adv, 1);
    if (!peer->agent) {
        mb_ctl_send(peer->ctl, "error the %s's agent did not start", role);
        return -1;
    }
    mb_ctl_send(peer->ctl, "ready");
    return 0;
}

static void
s_peer_close(s_peer_t *peer)
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
mb_mesh_thr_run(size_t size, long count, int verbose, mb_thr_run_t *out)
{
    int rc = -1;
    char mesh[64];
    int port;
    mb_child_t child = {0};
    uint8_t *payload = mb_payload_new(size);
    void *ctx = zmq_ctx_new();
    zmesh_agent_t *agent = s_parent_agent("bench-pub", mesh, sizeof mesh, &port,
                                          NULL, S_THR_TOPIC, verbose);
    if (!payload || !ctx || !agent)
        goto done;
    mb_peer_args_t args = {.kind = "mesh-thr",
                           .mesh = mesh,
                           .beacon_port = port,
                           .size = size,
                           .count = count,
                           .deadline_s = mb_thr_deadline_s(count),
                           .verbose = verbose};
    double subscribed_ms;
    if (s_child_ready(&child, ctx, &args, "the subscriber process to be ready",
                      agent, S_THR_TOPIC, &subscribed_ms) < 0)
        goto done;
    if (verbose)
        fprintf(stderr, "mesh-bench: subscriber ready after %.0f ms\n",
                subscribed_ms);

    /*  wait_subscribers should mean the first event gets through; the
        probes check that, and the sequence of the first one the peer saw
        tells whether it did. */
    int64_t deadline = mb_now_ns() + (int64_t)MB_READY_TIMEOUT_MS * 1000000;
    char rest[256] = "";
    int probed = 0;
    while (!probed && mb_now_ns() < deadline) {
        int prc = zmesh_agent_publish(agent, S_THR_TOPIC, s_probe, 1);
        if (prc < 0) {
            fprintf(stderr, "mesh-bench: publish probe: %s\n",
                    zmesh_strerror(prc));
            goto done;
        }
        int got =
            mb_child_expect(&child, "probed", rest, sizeof rest, 20, NULL);
        if (got == -1)
            goto done;
        probed = got == 0;
    }
    if (!probed) {
        fprintf(stderr,
                "mesh-bench: the subscriber got no probe within "
                "%d ms\n",
                MB_READY_TIMEOUT_MS);
        goto done;
    }
    unsigned long long first_seq = strtoull(rest, NULL, 10);

    int64_t cpu_start = mb_cpu_ns();
    int64_t send_start = mb_now_ns();
    for (long i = 0; i < count; i++) {
        int prc = zmesh_agent_publish(agent, S_THR_TOPIC, payload, size);
        if (prc < 0) {
            fprintf(stderr, "mesh-bench: publish: %s\n", zmesh_strerror(prc));
            goto done;
        }
    }
    out->send_ns = (double)(mb_now_ns() - send_start) / (double)count;
    mb_ctl_send(child.ctl, "sent");
    if (mb_thr_result(&child, args.deadline_s * 1000, count, cpu_start, out) <
        0)
        goto done;
    out->first_probe_seq = first_seq;
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
    s_peer_t peer;
    if (s_peer_open(&peer, args, "bench-sub", S_THR_TOPIC, NULL,
                    "subscriber") == 0 &&
        mb_thr_count(s_thr_recv, peer.agent, peer.ctl, args->count) == 0)
        rc = 0;
    s_peer_close(&peer);
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
mb_mesh_lat_run(size_t size, long count, int verbose, double *samples_us)
{
    int rc = -1;
    char mesh[64];
    int port;
    mb_child_t child = {0};
    uint8_t *payload = mb_payload_new(size);
    void *ctx = zmq_ctx_new();
    zmesh_agent_t *agent =
        s_parent_agent("bench-ping", mesh, sizeof mesh, &port, S_PONG_TOPIC,
                       S_PING_TOPIC, verbose);
    if (!payload || !ctx || !agent)
        goto done;
    mb_peer_args_t args = {.kind = "mesh-lat",
                           .mesh = mesh,
                           .beacon_port = port,
                           .size = size,
                           .count = count,
                           .deadline_s = mb_lat_deadline_s(count),
                           .verbose = verbose};
    double subscribed_ms;
    if (s_child_ready(&child, ctx, &args, "the echo process to be ready", agent,
                      S_PING_TOPIC, &subscribed_ms) < 0)
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

int
mb_mesh_lat_peer(const mb_peer_args_t *args)
{
    int rc = 1;
    s_peer_t peer;
    if (s_peer_open(&peer, args, "bench-echo", S_PING_TOPIC, S_PONG_TOPIC,
                    "echo") < 0)
        goto done;
    const zmesh_event_t *ev;
    for (;;) {
        /*  The control channel is looked at only when idle, so it adds
            nothing to a round trip. */
        int got = zmesh_agent_recv(peer.agent, 100, &ev);
        if (got == ZMESH_EAGAIN) {
            char buf[64];
            if (mb_ctl_recv(peer.ctl, buf, sizeof buf, 0) >= 0 &&
                strcmp(buf, "stop") == 0)
                break;
            continue;
        }
        if (got < 0) {
            mb_ctl_send(peer.ctl, "error recv: %s", zmesh_strerror(got));
            goto done;
        }
        if (zmesh_event_type(ev) != ZMESH_EVENT_MESSAGE)
            continue;
        size_t len;
        const void *p = zmesh_event_payload(ev, &len);
        got = zmesh_agent_publish(peer.agent, S_PONG_TOPIC, p, len);
        if (got < 0) {
            mb_ctl_send(peer.ctl, "error publish: %s", zmesh_strerror(got));
            goto done;
        }
    }
    rc = 0;
done:
    s_peer_close(&peer);
    return rc;
}
