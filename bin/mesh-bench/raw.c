/*  raw.c - the libzmq baselines the mesh is measured against, and the
    "thread hop" design the mesh did not choose. thr: a PUB in this
    process, a SUB in the peer process, with the HWM main.c also gives the
    agents' sockets, so both paths drop alike if they drop, and the loss
    is reported, not hidden. With `hop`, the application thread on each
    side reaches the PUB or SUB through an inproc PAIR and a second thread
    that owns the network socket: an agent thread on the data path.
    lat: a DEALER here, a ROUTER echo in the peer process.
*/
#include "bench.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

/*  A thread that moves every message from `from` to `to` until the
    context shuts down. zmq_msg_send hands the buffer over, so the hop
    costs the thread switch and the queue, not a copy. */
typedef struct {
    void *from;
    void *to;
    pthread_t thread;
    int running;
} s_hop_t;

static void *
s_hop_main(void *arg)
{
    s_hop_t *hop = arg;
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    while (zmq_msg_recv(&msg, hop->from, 0) >= 0)
        if (zmq_msg_send(&msg, hop->to, 0) < 0)
            break;
    zmq_msg_close(&msg);
    int linger = 0;
    zmq_setsockopt(hop->from, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(hop->to, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(hop->from);
    zmq_close(hop->to);
    return NULL;
}

/*  Builds the hop between the caller's socket `net` and an inproc PAIR
    pair; returns the application's end of the pair, or NULL. `outbound`:
    application -> hop -> net, else net -> hop -> application. On success
    the hop thread owns `net` (a ZeroMQ socket may move between threads
    with a memory barrier, which pthread_create is). */
static void *
s_hop_start(void *ctx, s_hop_t *hop, void *net, int outbound, const char *name)
{
    char ep[64];
    snprintf(ep, sizeof ep, "inproc://mesh-bench-hop-%s", name);
    void *app = zmq_socket(ctx, ZMQ_PAIR);
    void *inner = zmq_socket(ctx, ZMQ_PAIR);
    if (!app || !inner || zmq_bind(app, ep) < 0 || zmq_connect(inner, ep) < 0)
        goto fail;
    hop->from = outbound ? inner : net;
    hop->to = outbound ? net : inner;
    if (pthread_create(&hop->thread, NULL, s_hop_main, hop) != 0)
        goto fail;
    hop->running = 1;
    return app;
fail:
    if (app)
        zmq_close(app);
    if (inner)
        zmq_close(inner);
    return NULL;
}

/*  Ends the hop thread: shutting the context down makes its blocking
    calls return ETERM, after which it closes its sockets. */
static void
s_hop_stop(void *ctx, s_hop_t *hop)
{
    if (!hop->running)
        return;
    zmq_ctx_shutdown(ctx);
    pthread_join(hop->thread, NULL);
    hop->running = 0;
}

static void
s_close(void *sock)
{
    if (!sock)
        return;
    int linger = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(sock);
}

int
mb_raw_thr_run(size_t size, long count, int ipc, int hop, int hwm, int verbose,
               mb_thr_run_t *out)
{
    int rc = -1;
    mb_child_t child = {0};
    s_hop_t hopper = {0};
    void *sink = NULL;
    uint8_t *payload = mb_payload_new(size);
    /*  The control channel has a context of its own, so that shutting the
        data context down to end the hop thread cannot touch it. */
    void *ctl_ctx = zmq_ctx_new();
    void *ctx = zmq_ctx_new();
    void *pub = ctx ? zmq_socket(ctx, ZMQ_PUB) : NULL;
    if (!payload || !ctl_ctx || !pub) {
        fprintf(stderr, "mesh-bench: out of memory or sockets\n");
        goto done;
    }
    zmq_setsockopt(pub, ZMQ_SNDHWM, &hwm, sizeof hwm);
    if (zmq_bind(pub, ipc ? "ipc://*" : "tcp://127.0.0.1:*") < 0) {
        fprintf(stderr, "mesh-bench: bind PUB: %s\n",
                zmq_strerror(zmq_errno()));
        goto done;
    }
    char endpoint[256];
    size_t len = sizeof endpoint;
    zmq_getsockopt(pub, ZMQ_LAST_ENDPOINT, endpoint, &len);
    if (hop) {
        sink = s_hop_start(ctx, &hopper, pub, 1, "pub");
        if (!sink) {
            fprintf(stderr, "mesh-bench: cannot start the hop thread\n");
            goto done;
        }
        pub = NULL; /* the hop thread's now */
    } else {
        sink = pub;
    }

    mb_peer_args_t args = {.kind = "raw-thr",
                           .endpoint = endpoint,
                           .size = size,
                           .count = count,
                           .hop = hop,
                           .hwm = hwm,
                           .deadline_s = mb_thr_deadline_s(count),
                           .verbose = verbose};
    if (mb_child_start(&child, ctl_ctx, &args) < 0)
        goto done;
    if (mb_child_expect(&child, "ready", NULL, 0, MB_READY_TIMEOUT_MS,
                        "the subscriber process to be ready") < 0)
        goto done;

    /*  The SUB's subscription reaches the PUB some time after connect;
        until then PUB drops everything. Empty probe frames, which the
        subscriber does not count, go out until one arrives. */
    int64_t deadline = mb_now_ns() + (int64_t)MB_READY_TIMEOUT_MS * 1000000;
    int probed = 0;
    while (!probed && mb_now_ns() < deadline) {
        zmq_send(sink, "", 0, 0);
        int got = mb_child_expect(&child, "probed", NULL, 0, 20, NULL);
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

    int64_t cpu_start = mb_cpu_ns();
    int64_t send_start = mb_now_ns();
    for (long i = 0; i < count; i++) {
        if (zmq_send(sink, payload, size, 0) < 0) {
            fprintf(stderr, "mesh-bench: send: %s\n",
                    zmq_strerror(zmq_errno()));
            goto done;
        }
    }
    out->send_ns = (double)(mb_now_ns() - send_start) / (double)count;
    mb_ctl_send(child.ctl, "sent");
    if (mb_thr_result(&child, args.deadline_s * 1000, count, cpu_start, out) <
        0)
        goto done;
    out->first_probe_seq = 0;
    rc = 0;
done:
    mb_child_stop(&child, 3000);
    s_hop_stop(ctx, &hopper);
    if (sink != pub)
        s_close(sink);
    s_close(pub);
    if (ctx)
        zmq_ctx_term(ctx);
    if (ctl_ctx)
        zmq_ctx_term(ctl_ctx);
    free(payload);
    return rc;
}

/*  mb_recv_fn over a SUB socket or the application's end of a hop: empty
    frames are probes. RCVTIMEO is MB_POLL_MS, so a wait is either that
    or none. */
typedef struct {
    void *sock;
    zmq_msg_t msg; /* reused: the receive path allocates nothing */
} s_source_t;

static int
s_thr_recv(void *self, int wait_ms, uint64_t *probe_seq)
{
    s_source_t *src = self;
    int got = zmq_msg_recv(&src->msg, src->sock, wait_ms ? 0 : ZMQ_DONTWAIT);
    if (got < 0)
        return zmq_errno() == EAGAIN ? MB_GOT_NOTHING : MB_GOT_ERROR;
    *probe_seq = 0;
    return got == 0 ? MB_GOT_PROBE : MB_GOT_DATA;
}

int
mb_raw_thr_peer(const mb_peer_args_t *args)
{
    int rc = 1;
    s_hop_t hopper = {0};
    void *source = NULL;
    void *ctl_ctx = zmq_ctx_new();
    void *ctx = zmq_ctx_new();
    void *ctl = ctx && ctl_ctx ? mb_child_attach(ctl_ctx, args) : NULL;
    void *sub = ctl ? zmq_socket(ctx, ZMQ_SUB) : NULL;
    if (!sub || !args->endpoint)
        goto done;
    zmq_setsockopt(sub, ZMQ_RCVHWM, &args->hwm, sizeof args->hwm);
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0);
    if (zmq_connect(sub, args->endpoint) < 0) {
        mb_ctl_send(ctl, "error connect %s: %s", args->endpoint,
                    zmq_strerror(zmq_errno()));
        goto done;
    }
    if (args->hop) {
        source = s_hop_start(ctx, &hopper, sub, 0, "sub");
        if (!source)
            goto done;
        sub = NULL;
    } else {
        source = sub;
    }
    int timeout = MB_POLL_MS;
    zmq_setsockopt(source, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    mb_ctl_send(ctl, "ready");
    s_source_t src = {.sock = source};
    zmq_msg_init(&src.msg);
    if (mb_thr_count(s_thr_recv, &src, ctl, args->count) == 0)
        rc = 0;
    zmq_msg_close(&src.msg);
done:
    if (ctl)
        zmq_close(ctl); /* lingers until the result is out */
    s_hop_stop(ctx, &hopper);
    if (source != sub)
        s_close(source);
    s_close(sub);
    if (ctx)
        zmq_ctx_term(ctx);
    if (ctl_ctx)
        zmq_ctx_term(ctl_ctx);
    return rc;
}

int
mb_raw_lat_run(size_t size, long count, int verbose, double *samples_us)
{
    int rc = -1;
    mb_child_t child = {0};
    uint8_t *payload = mb_payload_new(size);
    uint8_t *back = malloc(size);
    void *ctx = zmq_ctx_new();
    void *dealer = ctx ? zmq_socket(ctx, ZMQ_DEALER) : NULL;
    if (!payload || !back || !dealer) {
        fprintf(stderr, "mesh-bench: out of memory or sockets\n");
        goto done;
    }
    mb_peer_args_t args = {.kind = "raw-lat",
                           .size = size,
                           .count = count,
                           .deadline_s = mb_lat_deadline_s(count),
                           .verbose = verbose};
    if (mb_child_start(&child, ctx, &args) < 0)
        goto done;
    char endpoint[256];
    if (mb_child_expect(&child, "ready", endpoint, sizeof endpoint,
                        MB_READY_TIMEOUT_MS,
                        "the echo process to be ready") < 0)
        goto done;
    int timeout = MB_LAT_TIMEOUT_MS;
    zmq_setsockopt(dealer, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    if (zmq_connect(dealer, endpoint) < 0) {
        fprintf(stderr, "mesh-bench: connect %s: %s\n", endpoint,
                zmq_strerror(zmq_errno()));
        goto done;
    }
    for (long i = -MB_LAT_WARMUP; i < count; i++) {
        int64_t t0 = mb_now_ns();
        if (zmq_send(dealer, payload, size, 0) < 0 ||
            zmq_recv(dealer, back, size, 0) < 0) {
            fprintf(stderr, "mesh-bench: raw round trip %ld: %s\n", i,
                    zmq_strerror(zmq_errno()));
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
    s_close(dealer);
    if (ctx)
        zmq_ctx_term(ctx);
    free(payload);
    free(back);
    return rc;
}

int
mb_raw_lat_peer(const mb_peer_args_t *args)
{
    int rc = 1;
    void *ctx = zmq_ctx_new();
    void *ctl = ctx ? mb_child_attach(ctx, args) : NULL;
    void *router = ctl ? zmq_socket(ctx, ZMQ_ROUTER) : NULL;
    if (!router)
        goto done;
    if (zmq_bind(router, "tcp://127.0.0.1:*") < 0) {
        mb_ctl_send(ctl, "error bind ROUTER: %s", zmq_strerror(zmq_errno()));
        goto done;
    }
    char endpoint[256];
    size_t len = sizeof endpoint;
    zmq_getsockopt(router, ZMQ_LAST_ENDPOINT, endpoint, &len);
    /*  The control channel is looked at only when the echo is idle, so it
        adds nothing to a round trip. */
    int timeout = 100;
    zmq_setsockopt(router, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    mb_ctl_send(ctl, "ready %s", endpoint);
    zmq_msg_t id, body;
    zmq_msg_init(&id);
    zmq_msg_init(&body);
    for (;;) {
        if (zmq_msg_recv(&id, router, 0) < 0) {
            char buf[64];
            if (zmq_errno() == EAGAIN &&
                mb_ctl_recv(ctl, buf, sizeof buf, 0) >= 0 &&
                strcmp(buf, "stop") == 0)
                break;
            continue;
        }
        if (!zmq_msg_more(&id) || zmq_msg_recv(&body, router, 0) < 0)
            continue;
        if (zmq_msg_send(&id, router, ZMQ_SNDMORE) < 0 ||
            zmq_msg_send(&body, router, 0) < 0)
            break;
    }
    zmq_msg_close(&id);
    zmq_msg_close(&body);
    rc = 0;
done:
    s_close(router);
    if (ctl)
        zmq_close(ctl);
    if (ctx)
        zmq_ctx_term(ctx);
    return rc;
}
