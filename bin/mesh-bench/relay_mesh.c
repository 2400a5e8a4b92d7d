/*  relay_mesh.c - the mesh side of `mesh-bench relay`: the real mesh-relay
    binary with one stream per sync policy ("bench-TAG" storing
    bench.relay.TAG.>, --sync bench-TAG:POLICY), all on a mesh of their
    own (a unique name, a random beacon port, 100 ms beacons), and in this
    process a publishing agent that calls zmesh_agent_publish_confirmed
    and waits for its ZMESH_EVENT_CONFIRM events (one in flight, then at
    most 256 unconfirmed), and per policy a durable consumer
    (zmesh_agent_subscribe_durable, start all) created once the
    publishing is done, which receives and acknowledges (zmesh_agent_ack)
    everything the stream holds.
*/
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmesh.h>

#define S_READY_TIMEOUT_MS 15000
/*  The library reports a confirm that did not come after this; the
    benchmark waits a little longer, for the report. */
#define S_CONFIRM_TIMEOUT_MS 10000
/*  A catch-up that hears nothing this long is over. */
#define S_IDLE_MS 10000

struct mb_relay_mesh {
    mb_server_t relay;
    zmesh_agent_t *pub;
    char mesh[64];
    int port;
    int verbose;
};

/*  A started agent on the relay's mesh (the consumer), or NULL. */
static zmesh_agent_t *
s_agent(const char *name, const char *mesh, int port, int verbose)
{
    zmesh_agent_t *agent = NULL;
    int rc = zmesh_agent_new(&agent, name);
    if (rc == 0)
        rc = zmesh_agent_set_mesh(agent, mesh);
    if (rc == 0)
        rc = zmesh_agent_set_beacon_port(agent, port);
    if (rc == 0)
        rc = zmesh_agent_set_beacon_interval(agent, 100);
    if (rc == 0)
        rc = zmesh_agent_start(agent);
    if (rc < 0) {
        fprintf(stderr, "mesh-bench: agent %s: %s\n", name, zmesh_strerror(rc));
        zmesh_agent_destroy(&agent);
    }
    (void)verbose;
    return agent;
}

/*  Waits for the next ZMESH_EVENT_CONFIRM, skipping other events, in
    zmesh_agent_recv calls of at most MB_POLL_MS (as an event loop with a
    tick would; see finding 3 in docs/benchmarks.md). 1 confirmed, 0 not
    (failed or timed out, said by the library), -1 no report at all. */
static int
s_next_confirm(zmesh_agent_t *agent, int timeout_ms, const char **why)
{
    int64_t deadline = mb_now_ns() + (int64_t)timeout_ms * 1000000;
    const zmesh_event_t *ev;
    *why = "";
    for (;;) {
        int64_t left = (deadline - mb_now_ns()) / 1000000;
        if (left < 0 || mb_relay_stopping())
            return -1;
        int rc = zmesh_agent_recv(
            agent, left > MB_POLL_MS ? MB_POLL_MS : (int)left, &ev);
        if (rc == ZMESH_EAGAIN)
            continue;
        if (rc < 0) {
            *why = zmesh_strerror(rc);
            return -1;
        }
        if (zmesh_event_type(ev) != ZMESH_EVENT_CONFIRM)
            continue;
        if (zmesh_event_status(ev) == 0)
            return 1;
        *why = zmesh_event_reason(ev);
        return 0;
    }
}

/*  Publishes until `count` were confirmed (or the row's time is up), at
    most `window` unconfirmed. */
static int
s_publish(mb_relay_mesh_t *m, const char *topic, const uint8_t *payload,
          size_t size, long count, int window, int limit_s, mb_relay_row_t *row)
{
    long sent = 0, inflight = 0;
    int64_t t0 = mb_now_ns();
    int64_t stop_at = t0 + (int64_t)limit_s * 1000000000;
    int64_t last = t0;
    const char *why = "";
    memset(row, 0, sizeof *row);
    while (sent < count || inflight > 0) {
        while (inflight < window && sent < count && !row->capped) {
            int rc = zmesh_agent_publish_confirmed(m->pub, topic, payload, size,
                                                   NULL);
            if (rc < 0) {
                fprintf(stderr, "mesh-bench: publish_confirmed %s: %s\n", topic,
                        zmesh_strerror(rc));
                return -1;
            }
            sent++;
            inflight++;
        }
        if (inflight == 0)
            break;
        int got = s_next_confirm(m->pub, S_CONFIRM_TIMEOUT_MS + 2000, &why);
        if (got < 0) {
            fprintf(stderr,
                    "mesh-bench: %s: no ZMESH_EVENT_CONFIRM within %d ms "
                    "%s\n",
                    topic, S_CONFIRM_TIMEOUT_MS + 2000, why);
            row->failed += inflight;
            break;
        }
        inflight--;
        if (!got && m->verbose)
            fprintf(stderr, "mesh-bench: %s: not confirmed: %s\n", topic, why);
        last = mb_relay_row_outcome(row, got, sent, &count, stop_at);
    }
    mb_relay_row_done(row, t0, last);
    return 0;
}

/*  Waits until `agent` has heard the relay (its HELLO), so the catch-up's
    clock does not run through discovery. */
static int
s_await_relay(zmesh_agent_t *agent)
{
    int64_t deadline = mb_now_ns() + (int64_t)S_READY_TIMEOUT_MS * 1000000;
    const zmesh_event_t *ev;
    while (mb_now_ns() < deadline && !mb_relay_stopping()) {
        if (zmesh_agent_recv(agent, MB_POLL_MS, &ev) == 0 &&
            zmesh_event_type(ev) == ZMESH_EVENT_PEER_JOINED &&
            strcmp(zmesh_event_peer_name(ev), "mesh-relay") == 0)
            return 0;
    }
    fprintf(stderr,
            "mesh-bench: the consumer did not hear mesh-relay within "
            "%d ms\n",
            S_READY_TIMEOUT_MS);
    return -1;
}

static int
s_catchup(mb_relay_mesh_t *m, const mb_relay_params_t *p, long expected,
          mb_relay_row_t *row)
{
    int rc = -1;
    memset(row, 0, sizeof *row);
    zmesh_agent_t *agent =
        s_agent("bench-durable", m->mesh, m->port, p->verbose);
    if (!agent || s_await_relay(agent) < 0)
        goto done;
    char consumer[64], pattern[128], stream[64];
    snprintf(consumer, sizeof consumer, "catchup-%s", p->tag);
    snprintf(pattern, sizeof pattern, "bench.relay.%s.>", p->tag);
    snprintf(stream, sizeof stream, "bench-%s", p->tag);
    zmesh_durable_options_t opts;
    memset(&opts, 0, sizeof opts);
    opts.stream = stream;
    opts.start = ZMESH_START_ALL;
    int64_t t0 = mb_now_ns();
    int64_t stop_at = t0 + (int64_t)p->row_limit_s * 1000000000;
    int64_t last = t0;
    int src = zmesh_agent_subscribe_durable(agent, consumer, pattern, &opts);
    if (src < 0) {
        fprintf(stderr, "mesh-bench: subscribe_durable %s: %s\n", consumer,
                zmesh_strerror(src));
        goto done;
    }
    const zmesh_event_t *ev;
    while (row->events < expected) {
        if (mb_relay_stopping() || mb_now_ns() > stop_at) {
            row->capped = 1;
            break;
        }
        int got = zmesh_agent_recv(agent, MB_POLL_MS, &ev);
        if (got == ZMESH_EAGAIN) {
            if ((mb_now_ns() - last) / 1000000 > S_IDLE_MS)
                break;
            continue;
        }
        if (got < 0) {
            fprintf(stderr, "mesh-bench: recv: %s\n", zmesh_strerror(got));
            goto done;
        }
        zmesh_event_type_t type = zmesh_event_type(ev);
        if (!zmesh_event_consumer(ev)[0])
            continue;
        if (type == ZMESH_EVENT_GAP || type == ZMESH_EVENT_LOST) {
            row->failed++;
            continue;
        }
        if (type != ZMESH_EVENT_MESSAGE)
            continue;
        int arc = zmesh_agent_ack(agent, ev);
        if (arc < 0 && arc != ZMESH_ENOTFOUND) {
            fprintf(stderr, "mesh-bench: ack: %s\n", zmesh_strerror(arc));
            goto done;
        }
        if (!zmesh_event_redelivered(ev))
            row->events++;
        last = mb_now_ns();
    }
    mb_relay_row_done(row, t0, last);
    rc = 0;
done:
    zmesh_agent_destroy(&agent);
    return rc;
}

mb_relay_mesh_t *
mb_relay_mesh_start(const char *relay_bin, const char *dir,
                    const mb_relay_params_t *params, int n, int verbose)
{
    mb_relay_mesh_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->verbose = verbose;
    const mb_mesh_cfg_t cfg = MB_MESH_DEFAULTS;
    m->pub =
        mb_mesh_parent_agent("bench-confirm", m->mesh, sizeof m->mesh, &m->port,
                             NULL, "bench.relay.>", &cfg, verbose);
    if (!m->pub)
        goto fail;
    int rc = zmesh_agent_set_confirm_timeout(m->pub, S_CONFIRM_TIMEOUT_MS);
    if (rc < 0) {
        fprintf(stderr, "mesh-bench: set_confirm_timeout: %s\n",
                zmesh_strerror(rc));
        goto fail;
    }
    char store[4096], log[4096], port[16];
    mb_path(store, sizeof store, "%s/relay", dir);
    mb_path(log, sizeof log, "%s/relay.log", dir);
    snprintf(port, sizeof port, "%d", m->port);
    char streams[16][160];
    char *argv[64];
    int a = 0;
    argv[a++] = (char *)relay_bin;
    argv[a++] = "mesh-relay";
    argv[a++] = "--dir";
    argv[a++] = store;
    argv[a++] = "--mesh";
    argv[a++] = m->mesh;
    argv[a++] = "--beacon-port";
    argv[a++] = port;
    argv[a++] = "--beacon-interval";
    argv[a++] = "100";
    for (int i = 0; i < n && i < 8; i++) {
        snprintf(streams[2 * i], sizeof streams[0], "bench-%s=bench.relay.%s.>",
                 params[i].tag, params[i].tag);
        snprintf(streams[2 * i + 1], sizeof streams[0], "bench-%s:%s",
                 params[i].tag, params[i].policy);
        argv[a++] = "--stream";
        argv[a++] = streams[2 * i];
        argv[a++] = "--sync";
        argv[a++] = streams[2 * i + 1];
    }
    if (verbose)
        argv[a++] = verbose > 1 ? "-vv" : "-v";
    argv[a] = NULL;
    if (mb_server_start(&m->relay, log, argv) < 0)
        goto fail;
    /*  The relay is there once it has subscribed to every stream's topics
        at this publisher. */
    for (int i = 0; i < n; i++) {
        char topic[128];
        snprintf(topic, sizeof topic, "bench.relay.%s.warm", params[i].tag);
        int got =
            zmesh_agent_wait_subscribers(m->pub, topic, 1, S_READY_TIMEOUT_MS);
        if (got < 1) {
            fprintf(stderr,
                    "mesh-bench: mesh-relay did not subscribe to %s within "
                    "%d ms (%s)\n",
                    topic, S_READY_TIMEOUT_MS,
                    got < 0 ? zmesh_strerror(got) : "no subscriber");
            mb_server_log_tail(&m->relay, "mesh-relay");
            goto fail;
        }
    }
    if (verbose)
        fprintf(stderr, "mesh-bench: mesh-relay %ld on mesh %s, port %d\n",
                (long)m->relay.pid, m->mesh, m->port);
    return m;
fail:
    mb_relay_mesh_stop(&m);
    return NULL;
}

void
mb_relay_mesh_stop(mb_relay_mesh_t **mp)
{
    mb_relay_mesh_t *m = mp ? *mp : NULL;
    if (!m)
        return;
    zmesh_agent_destroy(&m->pub);
    mb_server_stop(&m->relay, 5000);
    free(m);
    *mp = NULL;
}

int
mb_relay_mesh_rows(mb_relay_mesh_t *m, const mb_relay_params_t *p,
                   mb_relay_row_t rows[MB_ROWS])
{
    int rc = -1;
    char topic[3][128];
    static const char *last[3] = {"warm", "one", "win"};
    for (int i = 0; i < 3; i++)
        snprintf(topic[i], sizeof topic[i], "bench.relay.%s.%s", p->tag,
                 last[i]);
    uint8_t *payload = mb_payload_new(p->size);
    mb_relay_row_t warm;
    if (!payload)
        goto done;
    if (!mb_server_alive(&m->relay)) {
        fprintf(stderr, "mesh-bench: mesh-relay is no longer running\n");
        mb_server_log_tail(&m->relay, "mesh-relay");
        goto done;
    }
    if (s_publish(m, topic[0], payload, p->size, MB_RELAY_WARMUP, 1,
                  p->row_limit_s, &warm) < 0 ||
        s_publish(m, topic[1], payload, p->size, p->count, 1, p->row_limit_s,
                  &rows[MB_ROW_ONE]) < 0 ||
        s_publish(m, topic[2], payload, p->size, p->count, MB_RELAY_WINDOW,
                  p->row_limit_s, &rows[MB_ROW_WINDOW]) < 0)
        goto done;
    if (warm.events == 0) {
        fprintf(stderr,
                "mesh-bench: mesh-relay confirmed none of the %d warm-up "
                "events on %s\n",
                MB_RELAY_WARMUP, topic[0]);
        mb_server_log_tail(&m->relay, "mesh-relay");
        goto done;
    }
    long stored =
        warm.events + rows[MB_ROW_ONE].events + rows[MB_ROW_WINDOW].events;
    if (s_catchup(m, p, stored, &rows[MB_ROW_CATCHUP]) < 0)
        goto done;
    if (p->verbose)
        fprintf(stderr,
                "mesh-bench: mesh %s: %ld + %ld confirmed, %ld of %ld "
                "consumed\n",
                p->policy, rows[MB_ROW_ONE].events, rows[MB_ROW_WINDOW].events,
                rows[MB_ROW_CATCHUP].events, stored);
    rc = 0;
done:
    free(payload);
    return rc;
}
