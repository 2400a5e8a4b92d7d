/*  agent_test.c - the public agent API inside one process: argument and
    state checking of every call, then two real agents on loopback (a mesh
    name and beacon port of this run's own) that discover each other,
    exchange events, report peers and counters, and change subscriptions
    at runtime. The multi-process behaviour is in test/net. */
#include "zmesh.h"

#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

static char s_mesh[64];
static int s_port;

static void
s_unique_mesh(void)
{
    static int counter;
    snprintf(s_mesh, sizeof s_mesh, "agent-test-%d-%d", (int)getpid(),
             ++counter);
    s_port = 20000 + (int)((unsigned)getpid() * 7919u % 20000u);
}

static zmesh_agent_t *
s_agent(const char *name)
{
    zmesh_agent_t *agent = NULL;
    assert_int_equal(zmesh_agent_new(&agent, name), 0);
    assert_int_equal(zmesh_agent_set_mesh(agent, s_mesh), 0);
    assert_int_equal(zmesh_agent_set_beacon_port(agent, s_port), 0);
    assert_int_equal(zmesh_agent_set_beacon_interval(agent, 50), 0);
    return agent;
}

static void
test_new_rejects_bad_names(void **state)
{
    (void)state;
    zmesh_agent_t *agent = NULL;
    assert_int_equal(zmesh_agent_new(NULL, "x"), ZMESH_EINVAL);
    assert_int_equal(zmesh_agent_new(&agent, NULL), ZMESH_EINVAL);
    assert_int_equal(zmesh_agent_new(&agent, ""), ZMESH_EINVAL);
    assert_int_equal(zmesh_agent_new(&agent, "has space"), ZMESH_EINVAL);
    assert_int_equal(zmesh_agent_new(&agent, "caf\xe9"), ZMESH_EINVAL);
    assert_int_equal(zmesh_agent_new(&agent, "tab\tname"), ZMESH_EINVAL);
    assert_int_equal(zmesh_agent_new(&agent, "caf\xc3\xa9"), 0);
    zmesh_agent_destroy(&agent);
    char long_name[ZMESH_NAME_MAX + 2];
    memset(long_name, 'n', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    assert_int_equal(zmesh_agent_new(&agent, long_name), ZMESH_EINVAL);
    long_name[ZMESH_NAME_MAX] = '\0';
    assert_int_equal(zmesh_agent_new(&agent, long_name), 0);
    assert_string_equal(zmesh_agent_name(agent), long_name);
    assert_string_equal(zmesh_agent_id(agent), "");
    zmesh_agent_destroy(&agent);
    assert_null(agent);
    zmesh_agent_destroy(&agent);
    zmesh_agent_destroy(NULL);
}

static void
test_configuration_is_checked(void **state)
{
    (void)state;
    zmesh_agent_t *agent = NULL;
    assert_int_equal(zmesh_agent_new(&agent, "config"), 0);
    assert_int_equal(zmesh_agent_set_mesh(agent, ""), ZMESH_EINVAL);
    assert_int_equal(zmesh_agent_set_beacon_port(agent, 0), ZMESH_EINVAL);
    assert_int_equal(zmesh_agent_set_beacon_port(agent, 65536), ZMESH_EINVAL);
    assert_int_equal(zmesh_agent_set_beacon_interval(agent, 5), ZMESH_EINVAL);
    assert_int_equal(zmesh_agent_set_beacon_interval(agent, 1000), 0);
    assert_int_equal(zmesh_agent_set_peer_timeout(agent, 2999), ZMESH_EINVAL);
    assert_int_equal(zmesh_agent_set_peer_timeout(agent, 3000), 0);
    assert_int_equal(
        zmesh_agent_set_discovery(agent, ZMESH_DISCOVERY_LAN, NULL),
        ZMESH_EINVAL);
    assert_int_equal(
        zmesh_agent_set_discovery(agent, (zmesh_discovery_t)9, NULL),
        ZMESH_EINVAL);
    assert_int_equal(zmesh_agent_set_multicast_group(agent, "10.0.0.1"),
                     ZMESH_EINVAL);
    assert_int_equal(zmesh_agent_set_multicast_group(agent, "239.1.2.3"), 0);
    assert_int_equal(zmesh_agent_add_seed(agent, "ipc:///tmp/x"), ZMESH_EINVAL);
    assert_int_equal(zmesh_agent_add_seed(agent, "tcp://127.0.0.1"),
                     ZMESH_EINVAL);
    assert_int_equal(zmesh_agent_set_header(agent, "", "v"), ZMESH_EINVAL);
    assert_int_equal(zmesh_agent_set_header(agent, "k", "bad\xff"),
                     ZMESH_EINVAL);
    assert_int_equal(zmesh_agent_set_header(agent, "k", "line\nbreak"),
                     ZMESH_EINVAL);
    assert_int_equal(zmesh_agent_set_header(agent, "k", "v1"), 0);
    assert_int_equal(zmesh_agent_set_header(agent, "k", "v2"), 0);
    assert_int_equal(zmesh_agent_set_max_msg_size(agent, 100), ZMESH_EINVAL);
    assert_int_equal(zmesh_agent_set_linger(agent, -1), ZMESH_EINVAL);
    assert_int_equal(zmesh_agent_set_batching(agent, 1025, 1), ZMESH_EINVAL);
    assert_int_equal(zmesh_agent_set_batching(agent, 64, 0), ZMESH_EINVAL);
    assert_int_equal(zmesh_agent_set_batching(agent, 64, 1001), ZMESH_EINVAL);
    assert_int_equal(zmesh_agent_set_batching(agent, 0, 1), 0);
    assert_int_equal(zmesh_agent_set_batching(agent, 1024, 1000), 0);
    assert_int_equal(zmesh_agent_flush(agent), ZMESH_ESTATE);
    assert_int_equal(zmesh_agent_flush(NULL), ZMESH_EINVAL);
    assert_int_equal(zmesh_agent_subscribe(agent, "a..b"), ZMESH_EPATTERN);
    assert_int_equal(zmesh_agent_subscribe(agent, "a.>.b"), ZMESH_EPATTERN);
    assert_int_equal(zmesh_agent_unsubscribe(agent, "never.subscribed"),
                     ZMESH_ENOTFOUND);
    assert_int_equal(zmesh_agent_advertise(agent, "$mesh.x"), ZMESH_ERESERVED);
    assert_int_equal(zmesh_agent_publish(agent, "a.b", "\xc0", 1),
                     ZMESH_ESTATE);
    const zmesh_event_t *event;
    assert_int_equal(zmesh_agent_recv(agent, 0, &event), ZMESH_ESTATE);
    assert_int_equal(zmesh_agent_fd(agent), ZMESH_ESTATE);
    zmesh_peer_list_t *peers = NULL;
    assert_int_equal(zmesh_agent_peers(agent, &peers), ZMESH_ESTATE);
    zmesh_agent_destroy(&agent);
}

static void
test_bad_interface_fails_start_cleanly(void **state)
{
    (void)state;
    s_unique_mesh();
    zmesh_agent_t *agent = s_agent("badiface");
    assert_int_equal(
        zmesh_agent_set_discovery(agent, ZMESH_DISCOVERY_LAN, "no-such-if0"),
        0);
    assert_int_equal(zmesh_agent_start(agent), ZMESH_EADDR);
    assert_string_equal(zmesh_agent_id(agent), "");
    // Still configurable and startable with a good configuration.
    assert_int_equal(
        zmesh_agent_set_discovery(agent, ZMESH_DISCOVERY_HOST, NULL), 0);
    assert_int_equal(zmesh_agent_start(agent), 0);
    assert_int_equal(strlen(zmesh_agent_id(agent)), 32);
    assert_int_equal(zmesh_agent_start(agent), ZMESH_ESTATE);
    assert_int_equal(zmesh_agent_set_mesh(agent, "other"), ZMESH_ESTATE);
    zmesh_agent_destroy(&agent);
}

// Receives until a message arrives or `ms` pass, waiting through the fd
// the way an application's own loop would.
static const zmesh_event_t *
s_next_message(zmesh_agent_t *agent, int ms)
{
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        const zmesh_event_t *event;
        while (zmesh_agent_recv(agent, 0, &event) == 0)
            if (zmesh_event_type(event) == ZMESH_EVENT_MESSAGE)
                return event;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long elapsed = (now.tv_sec - start.tv_sec) * 1000 +
                       (now.tv_nsec - start.tv_nsec) / 1000000;
        if (elapsed >= ms)
            return NULL;
        struct pollfd pfd = {zmesh_agent_fd(agent), POLLIN, 0};
        poll(&pfd, 1, 10);
    }
}

// Both agents live on this one thread, so the subscriber must be given
// turns while the publisher waits: its SUB connects when its application
// thread calls in (zmesh.h: the application thread owns the data sockets).
static int
s_wait_ready(zmesh_agent_t *pub, zmesh_agent_t *sub, const char *topic,
             int min_peers)
{
    for (int i = 0; i < 500; i++) {
        int rc = zmesh_agent_wait_subscribers(pub, topic, min_peers, 20);
        // min_peers == 0 after an unsubscribe: the publisher may not have
        // heard of it yet and still count the subscriber ("known to
        // want", zmesh.h); wait until it has.
        if (rc != ZMESH_ETIMEDOUT && (min_peers > 0 || rc == 0))
            return rc;
        const zmesh_event_t *event;
        while (zmesh_agent_recv(sub, 0, &event) == 0)
            assert_int_not_equal(zmesh_event_type(event), ZMESH_EVENT_MESSAGE);
    }
    // Say what each side knew, so a failure here can be explained.
    zmesh_agent_t *agents[2] = {pub, sub};
    for (int a = 0; a < 2; a++) {
        zmesh_peer_list_t *peers = NULL;
        if (zmesh_agent_peers(agents[a], &peers) != 0)
            continue;
        zmesh_stats_t st;
        zmesh_agent_stats(agents[a], &st);
        fprintf(stderr,
                "%s knows %zu peers; beacons %llu heard, %llu foreign, "
                "%llu bad; control rejected %llu; joined %llu\n",
                zmesh_agent_name(agents[a]), zmesh_peer_list_size(peers),
                (unsigned long long)st.beacons_received,
                (unsigned long long)st.beacons_foreign,
                (unsigned long long)st.beacons_rejected,
                (unsigned long long)st.control_rejected,
                (unsigned long long)st.peers_joined);
        for (size_t i = 0; i < zmesh_peer_list_size(peers); i++)
            fprintf(stderr, "  %s connected=%d publishes=%zu wants=%zu\n",
                    zmesh_peer_name(peers, i), zmesh_peer_connected(peers, i),
                    zmesh_peer_publishes_size(peers, i),
                    zmesh_peer_wants_size(peers, i));
        zmesh_peer_list_destroy(&peers);
    }
    return ZMESH_ETIMEDOUT;
}

static void
test_two_agents_exchange_events(void **state)
{
    (void)state;
    s_unique_mesh();
    zmesh_agent_t *sub = s_agent("subscriber");
    zmesh_agent_t *pub = s_agent("publisher");
    assert_int_equal(zmesh_agent_subscribe(sub, "t.>"), 0);
    assert_int_equal(zmesh_agent_set_header(pub, "role", "test"), 0);
    assert_int_equal(zmesh_agent_advertise(pub, "t.*"), 0);
    assert_int_equal(zmesh_agent_start(sub), 0);
    assert_int_equal(zmesh_agent_start(pub), 0);
    assert_true(zmesh_agent_fd(sub) >= 0);

    assert_int_equal(s_wait_ready(pub, sub, "t.x", 1), 1);
    // Waiting took the publisher's peer-joined event off its pipe: the fd
    // must still say there is something to receive.
    struct pollfd pfd = {zmesh_agent_fd(pub), POLLIN, 0};
    assert_int_equal(poll(&pfd, 1, 2000), 1);
    const zmesh_event_t *joined = NULL;
    assert_int_equal(zmesh_agent_recv(pub, 0, &joined), 0);
    assert_int_equal(zmesh_event_type(joined), ZMESH_EVENT_PEER_JOINED);
    assert_int_equal(zmesh_agent_publish(pub, "$mesh.x", "\xc0", 1),
                     ZMESH_ERESERVED);
    assert_int_equal(zmesh_agent_publish(pub, "t.*", "\xc0", 1), ZMESH_ETOPIC);
    assert_int_equal(zmesh_agent_publish(pub, "t.x", "\x92\x01", 2),
                     ZMESH_EPAYLOAD);
    assert_int_equal(zmesh_agent_publish(pub, "t.x", "\xc0\xc0", 2),
                     ZMESH_EPAYLOAD);
    static char big[2 * 1024 * 1024];
    big[0] = (char)0xc6; // bin32 of the rest
    uint32_t n = sizeof big - 5;
    big[1] = (char)(n >> 24);
    big[2] = (char)(n >> 16);
    big[3] = (char)(n >> 8);
    big[4] = (char)n;
    assert_int_equal(zmesh_agent_publish(pub, "t.x", big, sizeof big),
                     ZMESH_ETOOBIG);

    for (int i = 1; i <= 100; i++) {
        uint8_t payload[2] = {0xcc, (uint8_t)i}; // uint8 i
        assert_int_equal(zmesh_agent_publish(pub, "t.x", payload, 2), 0);
    }
    assert_int_equal(zmesh_agent_publish(pub, "t.y", "\xa2hi", 3), 0);
    for (int i = 1; i <= 100; i++) {
        const zmesh_event_t *event = s_next_message(sub, 5000);
        assert_non_null(event);
        assert_string_equal(zmesh_event_topic(event), "t.x");
        assert_string_equal(zmesh_event_peer_name(event), "publisher");
        assert_string_equal(zmesh_event_peer_id(event), zmesh_agent_id(pub));
        assert_int_equal(zmesh_event_sequence(event), (uint64_t)i);
        assert_true(zmesh_event_timestamp(event) > 1700000000000000LL);
        size_t size;
        const uint8_t *payload = zmesh_event_payload(event, &size);
        assert_int_equal(size, 2);
        assert_int_equal(payload[1], i);
    }
    const zmesh_event_t *event = s_next_message(sub, 5000);
    assert_non_null(event);
    assert_string_equal(zmesh_event_topic(event), "t.y");
    assert_int_equal(zmesh_event_sequence(event), 1); // per topic

    zmesh_peer_list_t *peers = NULL;
    assert_int_equal(zmesh_agent_peers(sub, &peers), 0);
    assert_int_equal(zmesh_peer_list_size(peers), 1);
    assert_string_equal(zmesh_peer_name(peers, 0), "publisher");
    assert_string_equal(zmesh_peer_id(peers, 0), zmesh_agent_id(pub));
    assert_string_equal(zmesh_peer_endpoint(peers, 0),
                        zmesh_agent_endpoint(pub));
    assert_int_equal(zmesh_peer_connected(peers, 0), 1);
    assert_int_equal(zmesh_peer_publishes_size(peers, 0), 1);
    assert_string_equal(zmesh_peer_publishes(peers, 0, 0), "t.*");
    assert_int_equal(zmesh_peer_headers_size(peers, 0), 1);
    assert_string_equal(zmesh_peer_header_key(peers, 0, 0), "role");
    assert_string_equal(zmesh_peer_header_value(peers, 0, 0), "test");
    assert_int_equal(zmesh_peer_pid(peers, 0), (uint64_t)getpid());
    assert_string_equal(zmesh_peer_version(peers, 0), zmesh_version());
    assert_string_equal(zmesh_peer_name(peers, 7), ""); // out of range
    zmesh_peer_list_destroy(&peers);
    assert_null(peers);

    zmesh_stats_t stats;
    assert_int_equal(zmesh_agent_stats(pub, &stats), 0);
    assert_int_equal(stats.events_published, 101);
    assert_int_equal(stats.peers_joined, 1);
    assert_int_equal(zmesh_agent_stats(sub, &stats), 0);
    assert_int_equal(stats.events_received, 101);
    assert_int_equal(stats.frames_rejected, 0);

    // The same in detail: per topic and per publisher, on both sides.
    zmesh_counters_t *counters = NULL;
    assert_int_equal(zmesh_agent_counters(sub, &counters), 0);
    size_t agent_group = SIZE_MAX, peer_group = SIZE_MAX, tx = SIZE_MAX;
    for (size_t i = 0; i < zmesh_counters_size(counters); i++) {
        const char *kind = zmesh_counters_kind(counters, i);
        const char *name = zmesh_counters_name(counters, i);
        if (strcmp(kind, "agent") == 0)
            agent_group = i;
        else if (strcmp(kind, "peer") == 0 &&
                 strcmp(name, zmesh_agent_id(pub)) == 0)
            peer_group = i;
        else if (strcmp(kind, "topic") == 0 && strcmp(name, "t.x") == 0)
            tx = i;
    }
    assert_int_equal(agent_group, 0);
    assert_string_equal(zmesh_counters_name(counters, 0), "subscriber");
    assert_int_equal(zmesh_counters_get(counters, 0, "events_received"), 101);
    assert_int_equal(zmesh_counters_get(counters, 0, "streams"), 2);
    assert_true(peer_group != SIZE_MAX && tx != SIZE_MAX);
    assert_int_equal(zmesh_counters_get(counters, peer_group, "received"), 101);
    assert_int_equal(zmesh_counters_get(counters, peer_group, "topics"), 2);
    assert_int_equal(zmesh_counters_get(counters, tx, "received"), 100);
    assert_int_equal(zmesh_counters_get(counters, tx, "gaps"), 0);
    assert_int_equal(zmesh_counters_get(counters, tx, "nonesuch"), 0);
    assert_string_equal(zmesh_counters_key(counters, tx, 999), "");
    zmesh_counters_destroy(&counters);
    assert_null(counters);
    assert_int_equal(zmesh_agent_counters(pub, &counters), 0);
    bool sent = false;
    for (size_t i = 0; i < zmesh_counters_size(counters); i++)
        if (strcmp(zmesh_counters_kind(counters, i), "topic") == 0 &&
            strcmp(zmesh_counters_name(counters, i), "t.x") == 0)
            sent = zmesh_counters_get(counters, i, "sent") == 100;
    assert_true(sent);
    zmesh_counters_destroy(&counters);

    // Unsubscribing at runtime stops the flow; the publisher learns it.
    assert_int_equal(zmesh_agent_unsubscribe(sub, "t.>"), 0);
    assert_int_equal(s_wait_ready(pub, sub, "t.x", 0), 0);
    assert_int_equal(zmesh_agent_publish(pub, "t.x", "\x01", 1), 0);
    assert_null(s_next_message(sub, 300));
    // And subscribing again restarts it, with no restart of anything.
    assert_int_equal(zmesh_agent_subscribe(sub, "t.x"), 0);
    assert_int_equal(s_wait_ready(pub, sub, "t.x", 1), 1);
    assert_int_equal(zmesh_agent_publish(pub, "t.x", "\x02", 1), 0);
    event = s_next_message(sub, 5000);
    assert_non_null(event);
    assert_int_equal(zmesh_event_sequence(event), 102);

    // A clean stop is seen by the other side as a BYE.
    zmesh_agent_destroy(&pub);
    bool left = false;
    for (int i = 0; i < 100 && !left; i++) {
        if (zmesh_agent_recv(sub, 50, &event) == 0 &&
            zmesh_event_type(event) == ZMESH_EVENT_PEER_LEFT) {
            assert_string_equal(zmesh_event_reason(event), "bye");
            assert_string_equal(zmesh_event_peer_name(event), "publisher");
            left = true;
        }
    }
    assert_true(left);
    zmesh_agent_destroy(&sub);
}

static void
test_runtime_publish_of_new_topic_is_advertised(void **state)
{
    (void)state;
    s_unique_mesh();
    zmesh_agent_t *sub = s_agent("late-topic-sub");
    zmesh_agent_t *pub = s_agent("late-topic-pub");
    assert_int_equal(zmesh_agent_subscribe(sub, "news.*"), 0);
    assert_int_equal(zmesh_agent_start(sub), 0);
    assert_int_equal(zmesh_agent_start(pub), 0);
    // Nothing advertised: the first publish advertises "news.today" by
    // itself (and is lost, as nobody is connected yet: slow joiner).
    assert_int_equal(zmesh_agent_publish(pub, "news.today", "\x01", 1), 0);
    assert_int_equal(s_wait_ready(pub, sub, "news.today", 1), 1);
    assert_int_equal(zmesh_agent_publish(pub, "news.today", "\x02", 1), 0);
    const zmesh_event_t *event = s_next_message(sub, 5000);
    assert_non_null(event);
    assert_string_equal(zmesh_event_topic(event), "news.today");
    assert_int_equal(zmesh_event_sequence(event), 2);
    zmesh_agent_destroy(&pub);
    zmesh_agent_destroy(&sub);
}

static void
test_waiting_for_subscribers_advertises_the_topic(void **state)
{
    (void)state;
    s_unique_mesh();
    zmesh_agent_t *sub = s_agent("wait-sub");
    zmesh_agent_t *pub = s_agent("wait-pub");
    assert_int_equal(zmesh_agent_subscribe(sub, "alerts.>"), 0);
    assert_int_equal(zmesh_agent_start(sub), 0);
    assert_int_equal(zmesh_agent_start(pub), 0);
    // No advertise and no publish yet: waiting alone must make the topic
    // known, or subscribers would never connect and the wait time out.
    assert_int_equal(s_wait_ready(pub, sub, "alerts.fire", 1), 1);
    assert_int_equal(zmesh_agent_publish(pub, "alerts.fire", "\x01", 1), 0);
    const zmesh_event_t *event = s_next_message(sub, 5000);
    assert_non_null(event);
    assert_int_equal(zmesh_event_sequence(event), 1);
    zmesh_agent_destroy(&pub);
    zmesh_agent_destroy(&sub);
}

// An application that waits only on zmesh_agent_fd, draining recv until
// EAGAIN each time it wakes (zmesh.h): a timer's outcome (here confirms
// timing out with no relay in the mesh) must wake it, and the fd must go
// quiet once nothing is left, not keep it spinning.
static void
test_fd_wakes_for_timers_and_goes_quiet(void **state)
{
    (void)state;
    s_unique_mesh();
    zmesh_agent_t *agent = s_agent("fdwait");
    assert_int_equal(zmesh_agent_start(agent), 0);
    assert_int_equal(zmesh_agent_set_confirm_timeout(agent, 200), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(
            zmesh_agent_publish_confirmed(agent, "fd.x", "\x01", 1, NULL), 0);
    int fd = zmesh_agent_fd(agent);
    int confirms = 0, wakes = 0;
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    long elapsed = 0;
    while (confirms < 3 && elapsed < 5000) {
        struct pollfd pfd = {fd, POLLIN, 0};
        if (poll(&pfd, 1, 100) > 0)
            wakes++;
        const zmesh_event_t *event;
        while (zmesh_agent_recv(agent, 0, &event) == 0)
            if (zmesh_event_type(event) == ZMESH_EVENT_CONFIRM) {
                assert_int_equal(zmesh_event_status(event), ZMESH_ETIMEDOUT);
                confirms++;
            }
        clock_gettime(CLOCK_MONOTONIC, &now);
        elapsed = (now.tv_sec - start.tv_sec) * 1000 +
                  (now.tv_nsec - start.tv_nsec) / 1000000;
    }
    assert_int_equal(confirms, 3);
    // Woken for them, a few times while the timer ticked; not spinning.
    assert_in_range(wakes, 1, 100);
    // Nothing is due any more but a last tick and the stream's tail frames
    // (1 and 10 s after its last publish): each wake, drained by recv,
    // leaves the fd quiet at once, and they are few.
    int late = 0;
    for (int i = 0; i < 6; i++) {
        struct pollfd pfd = {fd, POLLIN, 0};
        if (poll(&pfd, 1, 300) == 0)
            continue;
        late++;
        const zmesh_event_t *event;
        assert_int_equal(zmesh_agent_recv(agent, 0, &event), ZMESH_EAGAIN);
        assert_int_equal(poll(&pfd, 1, 0), 0);
    }
    assert_in_range(late, 0, 3);
    zmesh_agent_destroy(&agent);
}

// A publisher in an application that waits on zmesh_agent_fd is woken to
// send its quiet stream's tail frame (proto/wire.md#tail-frame), 0.1 s
// after the last event, and then not again before the next one (1 s);
// none for a stream of one event.
static void
test_fd_wakes_for_a_tail_frame(void **state)
{
    (void)state;
    s_unique_mesh();
    // Tail frames go out while some peer is joined (nobody else could
    // have lost anything): a subscriber.
    zmesh_agent_t *sub = s_agent("tailsub");
    zmesh_agent_t *agent = s_agent("tailer");
    assert_int_equal(zmesh_agent_subscribe(sub, "tail.>"), 0);
    assert_int_equal(zmesh_agent_advertise(agent, "tail.x"), 0);
    assert_int_equal(zmesh_agent_start(sub), 0);
    assert_int_equal(zmesh_agent_start(agent), 0);
    assert_int_equal(s_wait_ready(agent, sub, "tail.x", 1), 1);
    // A stream of one event gets no tail frame: this one has two.
    assert_int_equal(zmesh_agent_publish(agent, "tail.one", "\x01", 1), 0);
    assert_int_equal(zmesh_agent_publish(agent, "tail.x", "\x01", 1), 0);
    assert_int_equal(zmesh_agent_publish(agent, "tail.x", "\x02", 1), 0);
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    int fd = zmesh_agent_fd(agent);
    struct pollfd pfd = {fd, POLLIN, 0};
    zmesh_stats_t stats;
    const zmesh_event_t *event;
    // Woken (maybe first for what there is to take: the subscriber's
    // join), until it is sent.
    for (int i = 0; i < 20; i++) {
        assert_int_equal(poll(&pfd, 1, 1000), 1);
        while (zmesh_agent_recv(agent, 0, &event) == 0)
            assert_true(zmesh_event_type(event) != ZMESH_EVENT_MESSAGE);
        assert_int_equal(zmesh_agent_stats(agent, &stats), 0);
        if (stats.tails_sent > 0)
            break;
    }
    assert_int_equal(stats.tails_sent, 1);
    clock_gettime(CLOCK_MONOTONIC, &now);
    long elapsed = (now.tv_sec - start.tv_sec) * 1000 +
                   (now.tv_nsec - start.tv_nsec) / 1000000;
    assert_true(elapsed >= 100);
    // Quiet until the next one is due.
    if (elapsed < 500)
        assert_int_equal(poll(&pfd, 1, 500 - (int)elapsed), 0);
    zmesh_agent_destroy(&agent);
    zmesh_agent_destroy(&sub);
}

// Publishes `count` events of t.b in one burst and never calls the
// publisher again: only its own thread can send what it batched. Returns
// the publisher's counters once the subscriber has every event, in order.
static zmesh_stats_t
s_burst_left_behind(size_t max_events, int count)
{
    s_unique_mesh();
    zmesh_agent_t *sub = s_agent("subscriber");
    zmesh_agent_t *pub = s_agent("publisher");
    assert_int_equal(zmesh_agent_subscribe(sub, "t.b"), 0);
    assert_int_equal(zmesh_agent_advertise(pub, "t.b"), 0);
    assert_int_equal(zmesh_agent_set_batching(pub, max_events, 20), 0);
    assert_int_equal(zmesh_agent_start(sub), 0);
    assert_int_equal(zmesh_agent_start(pub), 0);
    assert_int_equal(s_wait_ready(pub, sub, "t.b", 1), 1);
    for (int i = 1; i <= count; i++) {
        uint8_t payload[2] = {0xcc, (uint8_t)i};
        assert_int_equal(zmesh_agent_publish(pub, "t.b", payload, 2), 0);
    }
    for (int i = 1; i <= count; i++) {
        const zmesh_event_t *event = s_next_message(sub, 5000);
        assert_non_null(event);
        assert_int_equal(zmesh_event_sequence(event), (uint64_t)i);
        size_t size;
        const uint8_t *payload = zmesh_event_payload(event, &size);
        assert_int_equal(size, 2);
        assert_int_equal(payload[1], i);
    }
    zmesh_stats_t stats;
    assert_int_equal(zmesh_agent_stats(pub, &stats), 0);
    zmesh_agent_destroy(&pub);
    zmesh_agent_destroy(&sub);
    return stats;
}

static void
test_a_batch_left_behind_goes_out_by_itself(void **state)
{
    (void)state;
    // 100 events into batches of 64: the second batch is left pending
    // when the application stops calling the publisher.
    zmesh_stats_t stats = s_burst_left_behind(64, 100);
    assert_int_equal(stats.events_published, 100);
    assert_true(stats.batches_sent >= 2);
    assert_true(stats.events_batched >= 90); // the first may go alone
    assert_int_equal(stats.events_unsent, 0);
    // Batching off: a frame per event, and the same events.
    stats = s_burst_left_behind(0, 100);
    assert_int_equal(stats.batches_sent, 0);
    assert_int_equal(stats.events_batched, 0);
}

// The first event of `type` `agent` gives within `ms`, or NULL; events of
// other types are dropped.
static const zmesh_event_t *
s_next_of(zmesh_agent_t *agent, zmesh_event_type_t type, int ms)
{
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        const zmesh_event_t *event;
        if (zmesh_agent_recv(agent, 5, &event) == 0 &&
            zmesh_event_type(event) == type)
            return event;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((now.tv_sec - start.tv_sec) * 1000 +
                (now.tv_nsec - start.tv_nsec) / 1000000 >=
            ms)
            return NULL;
    }
}

// Events received on `topic` as `agent` counts them (a topic group).
static uint64_t
s_topic_received(zmesh_agent_t *agent, const char *topic)
{
    zmesh_counters_t *counters = NULL;
    assert_int_equal(zmesh_agent_counters(agent, &counters), 0);
    uint64_t received = 0;
    for (size_t i = 0; i < zmesh_counters_size(counters); i++)
        if (strcmp(zmesh_counters_kind(counters, i), "topic") == 0 &&
            strcmp(zmesh_counters_name(counters, i), topic) == 0)
            received = zmesh_counters_get(counters, i, "received");
    zmesh_counters_destroy(&counters);
    return received;
}

// One request from `client` answered by `server`, which echoes it;
// returns the reply's status.
static int
s_round_trip(zmesh_agent_t *client, zmesh_agent_t *server, const char *peer,
             const char *topic, uint8_t n)
{
    uint8_t payload[2] = {0xcc, n};
    uint64_t id = 0;
    assert_int_equal(
        zmesh_agent_request(client, peer, topic, payload, 2, 2000, &id), 0);
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (int turns = 0; turns < 2000; turns++) {
        const zmesh_event_t *event;
        if (zmesh_agent_recv(server, 1, &event) == 0 &&
            zmesh_event_type(event) == ZMESH_EVENT_REQUEST) {
            assert_string_equal(zmesh_event_topic(event), topic);
            assert_string_equal(zmesh_event_peer_id(event),
                                zmesh_agent_id(client));
            size_t size;
            const void *got = zmesh_event_payload(event, &size);
            assert_int_equal(zmesh_agent_reply(server, event, got, size), 0);
        }
        if (zmesh_agent_recv(client, 1, &event) == 0 &&
            zmesh_event_type(event) == ZMESH_EVENT_REPLY) {
            assert_int_equal(zmesh_event_request_id(event), id);
            int status = zmesh_event_status(event);
            if (status == 0) {
                size_t size;
                const uint8_t *got = zmesh_event_payload(event, &size);
                assert_int_equal(size, 2);
                assert_int_equal(got[1], n);
            }
            return status;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec > 5)
            break;
    }
    fail_msg("no reply to request %llu", (unsigned long long)id);
    return -1;
}

static void
test_requests_move_to_the_data_plane(void **state)
{
    (void)state;
    s_unique_mesh();
    zmesh_agent_t *server = s_agent("server");
    zmesh_agent_t *client = s_agent("client");
    assert_int_equal(zmesh_agent_serve(server, "svc.>"), 0);
    assert_int_equal(zmesh_agent_start(server), 0);
    assert_int_equal(zmesh_agent_start(client), 0);
    // Until the client knows the server, a request for svc.> has nobody.
    uint64_t id;
    for (int i = 0; i < 500; i++) {
        int rc =
            zmesh_agent_request(client, NULL, "svc.echo", "\xc0", 1, 2000, &id);
        if (rc == 0)
            break;
        assert_int_equal(rc, ZMESH_ENOTFOUND);
        s_next_of(server, ZMESH_EVENT_MESSAGE, 10);
    }
    const zmesh_event_t *request = s_next_of(server, ZMESH_EVENT_REQUEST, 5000);
    assert_non_null(request);
    assert_int_equal(zmesh_agent_reply(server, request, "\xc0", 1), 0);
    const zmesh_event_t *reply = s_next_of(client, ZMESH_EVENT_REPLY, 5000);
    assert_non_null(reply);
    assert_int_equal(zmesh_event_status(reply), 0);

    // The first requests go through the control threads; once each side's
    // subscription is in effect at the other (about a second), they and
    // their replies are events on the data plane.
    char requests[64], replies[64];
    snprintf(requests, sizeof requests, "$mesh.request.%s",
             zmesh_agent_id(server));
    snprintf(replies, sizeof replies, "$mesh.reply.%s", zmesh_agent_id(client));
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    int n = 0;
    for (; n < 5000; n++) {
        assert_int_equal(
            s_round_trip(client, server, NULL, "svc.echo", (uint8_t)n), 0);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec >= 2 &&
            s_topic_received(server, requests) > 0 &&
            s_topic_received(client, replies) > 0)
            break;
        if (now.tv_sec - start.tv_sec >= 10)
            break;
    }
    assert_true(s_topic_received(server, requests) > 0);
    assert_true(s_topic_received(client, replies) > 0);

    // On the data plane too, a request for a topic the server does not
    // serve is refused at once, and counted there.
    assert_int_equal(
        s_round_trip(client, server, zmesh_agent_id(server), "other.x", 1),
        ZMESH_ENOTFOUND);
    uint64_t before = s_topic_received(server, requests);
    assert_int_equal(
        s_round_trip(client, server, zmesh_agent_id(server), "svc.x", 2), 0);
    assert_true(s_topic_received(server, requests) > before);
    zmesh_stats_t stats;
    assert_int_equal(zmesh_agent_stats(server, &stats), 0);
    assert_int_equal(stats.requests_refused, 1);
    assert_int_equal(stats.frames_rejected, 0);
    assert_int_equal(stats.events_received, 0); // requests are not messages
    assert_int_equal(zmesh_agent_stats(client, &stats), 0);
    assert_int_equal(stats.replies_dropped, 0);
    assert_int_equal(stats.requests_timed_out, 0);
    assert_int_equal(stats.events_published, 0); // requests are not events

    // A server that answers and leaves at once: its reply, on the data
    // plane, comes after the news that it left, and still counts.
    assert_int_equal(zmesh_agent_request(client, zmesh_agent_id(server),
                                         "svc.last", "\x07", 1, 5000, &id),
                     0);
    request = s_next_of(server, ZMESH_EVENT_REQUEST, 5000);
    assert_non_null(request);
    assert_int_equal(zmesh_agent_reply(server, request, "\x08", 1), 0);
    zmesh_agent_destroy(&server);
    // The client hears of the departure first: publishing drains its
    // control thread's news every 64 events, as a busy publisher would.
    struct timespec pause = {0, 200 * 1000000};
    nanosleep(&pause, NULL);
    for (int i = 0; i < 640; i++)
        assert_int_equal(zmesh_agent_publish(client, "t.noise", "\xc0", 1), 0);
    reply = s_next_of(client, ZMESH_EVENT_REPLY, 5000);
    assert_non_null(reply);
    assert_int_equal(zmesh_event_request_id(reply), id);
    assert_int_equal(zmesh_event_status(reply), 0);
    size_t size;
    assert_memory_equal(zmesh_event_payload(reply, &size), "\x08", 1);
    zmesh_agent_destroy(&client);
}

int
main(void)
{
    if (getenv("ZMESH_TEST_LOG"))
        zmesh_log_set(zmesh_log_stderr, ZMESH_LOG_DEBUG, NULL);
    if (getenv("ZMESH_TEST_FILTER"))
        cmocka_set_test_filter(getenv("ZMESH_TEST_FILTER"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_rejects_bad_names),
        cmocka_unit_test(test_configuration_is_checked),
        cmocka_unit_test(test_bad_interface_fails_start_cleanly),
        cmocka_unit_test(test_two_agents_exchange_events),
        cmocka_unit_test(test_runtime_publish_of_new_topic_is_advertised),
        cmocka_unit_test(test_waiting_for_subscribers_advertises_the_topic),
        cmocka_unit_test(test_fd_wakes_for_timers_and_goes_quiet),
        cmocka_unit_test(test_fd_wakes_for_a_tail_frame),
        cmocka_unit_test(test_a_batch_left_behind_goes_out_by_itself),
        cmocka_unit_test(test_requests_move_to_the_data_plane),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
