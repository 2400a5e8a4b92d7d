/*  xpub_rule_test.c - the rule that lets two threads send on an agent's
    XPUB (lib/outbox.h): the application thread uses the socket without
    the outbox's lock only while no batch is pending, since the control
    thread may send a pending batch at any moment. Linked with
    -Wl,--wrap=zmq_poll, so every poll the library makes is seen here:
    a poll of the watched agent's XPUB with a batch pending breaks it.

    The case that broke it once: a responder refusing a burst of requests
    for a topic it does not serve publishes its refusals from inside
    zmesh_agent_recv, in a batch, and recv then polled the XPUB. */
#include "agent_private.h"
#include "outbox.h"
#include "zmesh.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include <cmocka.h>

static zmesh_agent_t *s_watched;
static int s_polls, s_broken;

int __real_zmq_poll(zmq_pollitem_t *items, int count, long timeout);
// Visible: czmq, a shared library, calls zmq_poll too, and is wrapped.
__attribute__((visibility("default"))) int
__wrap_zmq_poll(zmq_pollitem_t *items, int count, long timeout);

__attribute__((visibility("default"))) int
__wrap_zmq_poll(zmq_pollitem_t *items, int count, long timeout)
{
    zmesh_agent_t *agent = s_watched;
    for (int i = 0; agent && i < count; i++)
        if (items[i].socket && items[i].socket == agent->xpub_handle) {
            s_polls++;
            s_broken += zmesh__outbox_pending(agent->outbox) > 0;
        }
    return __real_zmq_poll(items, count, timeout);
}

static zmesh_agent_t *
s_agent(const char *name, const char *mesh, int port)
{
    zmesh_agent_t *agent = NULL;
    assert_int_equal(zmesh_agent_new(&agent, name), 0);
    assert_int_equal(zmesh_agent_set_mesh(agent, mesh), 0);
    assert_int_equal(zmesh_agent_set_beacon_port(agent, port), 0);
    assert_int_equal(zmesh_agent_set_beacon_interval(agent, 50), 0);
    return agent;
}

static long
s_ms_since(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - start->tv_sec) * 1000 +
           (now.tv_nsec - start->tv_nsec) / 1000000;
}

static void
test_recv_never_polls_the_xpub_with_a_batch_pending(void **state)
{
    (void)state;
    char mesh[64];
    snprintf(mesh, sizeof mesh, "xpub-rule-%d", (int)getpid());
    int port = 20000 + (int)((unsigned)getpid() * 7919u % 20000u);
    zmesh_agent_t *server = s_agent("server", mesh, port);
    zmesh_agent_t *client = s_agent("client", mesh, port);
    assert_int_equal(zmesh_agent_serve(server, "svc.>"), 0);
    assert_int_equal(zmesh_agent_start(server), 0);
    assert_int_equal(zmesh_agent_start(client), 0);

    // Round trips until requests and replies go on the data plane (the
    // server's counters show its request topic), at most 10 s.
    char requests[64];
    snprintf(requests, sizeof requests, "$mesh.request.%s",
             zmesh_agent_id(server));
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    bool data_plane = false;
    const zmesh_event_t *event;
    uint64_t id;
    while (!data_plane && s_ms_since(&start) < 10000) {
        if (zmesh_agent_request(client, zmesh_agent_id(server), "svc.x", "\xc0",
                                1, 2000, &id) != 0) {
            zmesh_agent_recv(server, 10, &event);
            continue;
        }
        for (int turn = 0; turn < 400; turn++) {
            if (zmesh_agent_recv(server, 1, &event) == 0 &&
                zmesh_event_type(event) == ZMESH_EVENT_REQUEST)
                assert_int_equal(zmesh_agent_reply(server, event, "\xc0", 1),
                                 0);
            if (zmesh_agent_recv(client, 1, &event) == 0 &&
                zmesh_event_type(event) == ZMESH_EVENT_REPLY)
                break;
        }
        zmesh_counters_t *counters = NULL;
        assert_int_equal(zmesh_agent_counters(server, &counters), 0);
        for (size_t i = 0; i < zmesh_counters_size(counters); i++)
            data_plane |=
                strcmp(zmesh_counters_name(counters, i), requests) == 0 &&
                zmesh_counters_get(counters, i, "received") > 0;
        zmesh_counters_destroy(&counters);
    }
    assert_true(data_plane);

    // Bursts of requests the server refuses inside its recv, in batches.
    s_watched = server;
    uint64_t batched = 0;
    for (int round = 0; round < 10; round++) {
        for (int i = 0; i < 200; i++)
            assert_int_equal(zmesh_agent_request(client, zmesh_agent_id(server),
                                                 "other.x", "\xc0", 1, 2000,
                                                 &id),
                             0);
        assert_int_equal(zmesh_agent_flush(client), 0);
        nanosleep(&(struct timespec){0, 20 * 1000000}, NULL);
        for (int turn = 0; turn < 100; turn++)
            zmesh_agent_recv(server, 1, &event);
        int replies = 0;
        for (int turn = 0; turn < 1000 && replies < 200; turn++)
            if (zmesh_agent_recv(client, 5, &event) == 0 &&
                zmesh_event_type(event) == ZMESH_EVENT_REPLY) {
                assert_int_equal(zmesh_event_status(event), ZMESH_ENOTFOUND);
                replies++;
            }
        assert_int_equal(replies, 200);
    }
    s_watched = NULL;
    zmesh_stats_t stats;
    assert_int_equal(zmesh_agent_stats(server, &stats), 0);
    batched = stats.events_batched;
    assert_int_equal(stats.requests_refused, 2000);
    // The refusals went out in batches (else this proves nothing), and
    // the server polled its XPUB meanwhile, never with one pending.
    assert_true(batched > 0);
    assert_true(s_polls > 0);
    assert_int_equal(s_broken, 0);
    zmesh_agent_destroy(&client);
    zmesh_agent_destroy(&server);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recv_never_polls_the_xpub_with_a_batch_pending),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
