/*  testnode.c - a scriptable agent process for the multi-process tests in
    test/net and test/netns. It configures an agent from its arguments,
    optionally publishes a bounded number of events, and prints one JSON
    object per line on stdout for everything that happens (started, peer
    joined/left, message, published, stats at exit) so a python test can
    follow it. It always ends by itself: after --run-ms, after
    --exit-after N messages, or on SIGTERM. --crash ends with _exit() and no
    BYE, like a process killed mid-flight.
*/
#include "zmesh.h"

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t s_stop;

static void
s_on_signal(int sig)
{
    (void)sig;
    s_stop = 1;
}

static int64_t
s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
s_usage(void)
{
    fprintf(stderr,
            "usage: zmesh-testnode --name NAME [--mesh M] [--beacon-port P]\n"
            "  [--interval MS] [--timeout MS] [--discovery "
            "host|lan|multicast|none]\n"
            "  [--interface IF] [--group G] [--seed EP]... [--header K=V]...\n"
            "  [--sub PATTERN]... [--advertise PATTERN]...\n"
            "  [--pub TOPIC --count N [--every MS] [--batch N] [--pad BYTES]\n"
            "   [--wait-subs N]\n"
            "   [--final-after MS]] [--stall-ms MS]\n"
            "  [--run-ms MS] [--exit-after N] [--exit-when-done] [--crash]"
            " [-v]\n"
            "  [--retransmit BYTES] [--repair-timeout MS] [--batching MAX]\n"
            "  [--query PEER]  (asks PEER for its counters every 200 ms)\n"
            "  [--history PATTERN=COUNT] [--sub-history PATTERN]...\n"
            "  [--queue-group PATTERN=GROUP]... [--sub-bp PATTERN]...\n"
            "  [--bp-wait MS]\n"
            "  [--serve PATTERN]... [--respond [--reply-delay MS]]\n"
            "  [--request TOPIC [--to PEER]"
            " --count N\n"
            "   [--request-timeout MS]] [--send PEER --pub TOPIC --count N]\n"
            "  [--confirm [--confirm-timeout MS]]  (publish with confirms)\n"
            "  [--durable NAME=PATTERN [--start all|new|last|seq:N|time:US]\n"
            "   [--ack-wait MS] [--max-deliver N] [--max-ack-pending N]\n"
            "   [--no-ack | --skip-acks N]]  (acknowledges what it prints)\n"
            "With --request or --send, --count events go out that way instead"
            " of published.\n");
    exit(2);
}

// Writes `text` as a JSON string body (the testnode's names and topics are
// plain, but a peer could send anything).
static void
s_json_string(const char *text)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20)
            printf("\\u%04x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

static void
s_print_event(const zmesh_event_t *event)
{
    switch (zmesh_event_type(event)) {
    case ZMESH_EVENT_MESSAGE: {
        size_t size;
        const void *payload = zmesh_event_payload(event, &size);
        char *json = NULL;
        printf("{\"event\":\"message\",\"topic\":");
        s_json_string(zmesh_event_topic(event));
        printf(",\"publisher\":");
        s_json_string(zmesh_event_peer_name(event));
        printf(",\"publisher_id\":\"%s\",\"seq\":%llu,\"ts\":%lld",
               zmesh_event_peer_id(event),
               (unsigned long long)zmesh_event_sequence(event),
               (long long)zmesh_event_timestamp(event));
        if (zmesh_event_repaired(event))
            printf(",\"repaired\":true");
        if (*zmesh_event_group(event)) {
            printf(",\"group\":");
            s_json_string(zmesh_event_group(event));
        }
        if (zmesh_event_redelivered(event))
            printf(",\"redelivered\":true");
        if (*zmesh_event_consumer(event)) {
            printf(",\"consumer\":");
            s_json_string(zmesh_event_consumer(event));
            printf(",\"rseq\":%llu,\"deliveries\":%u",
                   (unsigned long long)zmesh_event_stream_sequence(event),
                   zmesh_event_deliveries(event));
        }
        if (zmesh_msgpack_to_json(payload, size, &json) == 0)
            printf(",\"payload\":%s", json);
        printf("}\n");
        free(json);
        break;
    }
    case ZMESH_EVENT_DIRECT:
    case ZMESH_EVENT_REQUEST:
    case ZMESH_EVENT_REPLY: {
        static const char *kinds[] = {"direct", "request", "reply"};
        size_t size;
        const void *payload = zmesh_event_payload(event, &size);
        char *json = NULL;
        printf("{\"event\":\"%s\",\"topic\":",
               kinds[zmesh_event_type(event) - ZMESH_EVENT_DIRECT]);
        s_json_string(zmesh_event_topic(event));
        printf(",\"peer\":");
        s_json_string(zmesh_event_peer_name(event));
        printf(",\"id\":\"%s\",\"req\":%llu,\"status\":%d",
               zmesh_event_peer_id(event),
               (unsigned long long)zmesh_event_request_id(event),
               zmesh_event_status(event));
        if (size > 0 && zmesh_msgpack_to_json(payload, size, &json) == 0)
            printf(",\"payload\":%s", json);
        printf("}\n");
        free(json);
        break;
    }
    case ZMESH_EVENT_GAP:
        printf("{\"event\":\"gap\",\"topic\":");
        s_json_string(zmesh_event_topic(event));
        printf(",\"publisher\":");
        s_json_string(zmesh_event_peer_name(event));
        printf(",\"publisher_id\":\"%s\",\"first\":%llu,\"last\":%llu",
               zmesh_event_peer_id(event),
               (unsigned long long)zmesh_event_sequence(event),
               (unsigned long long)zmesh_event_gap_last(event));
        if (*zmesh_event_consumer(event)) {
            printf(",\"consumer\":");
            s_json_string(zmesh_event_consumer(event));
        }
        printf("}\n");
        break;
    case ZMESH_EVENT_CONFIRM:
        printf("{\"event\":\"confirm\",\"topic\":");
        s_json_string(zmesh_event_topic(event));
        printf(",\"seq\":%llu,\"status\":%d,\"reason\":",
               (unsigned long long)zmesh_event_sequence(event),
               zmesh_event_status(event));
        s_json_string(zmesh_event_reason(event));
        printf("}\n");
        break;
    case ZMESH_EVENT_LOST:
        printf("{\"event\":\"lost\",\"consumer\":");
        s_json_string(zmesh_event_consumer(event));
        printf(",\"first\":%llu,\"last\":%llu,\"reason\":",
               (unsigned long long)zmesh_event_sequence(event),
               (unsigned long long)zmesh_event_gap_last(event));
        s_json_string(zmesh_event_reason(event));
        printf("}\n");
        break;
    case ZMESH_EVENT_PEER_JOINED:
    case ZMESH_EVENT_PEER_LEFT:
        printf("{\"event\":\"%s\",\"peer\":",
               zmesh_event_type(event) == ZMESH_EVENT_PEER_JOINED ? "joined"
                                                                  : "left");
        s_json_string(zmesh_event_peer_name(event));
        printf(",\"id\":\"%s\",\"reason\":", zmesh_event_peer_id(event));
        s_json_string(zmesh_event_reason(event));
        printf("}\n");
        break;
    }
    fflush(stdout);
}

static void
s_print_stats(zmesh_agent_t *agent)
{
    zmesh_stats_t stats;
    if (zmesh_agent_stats(agent, &stats) != 0)
        return;
    printf("{\"event\":\"stats\",\"published\":%llu,\"received\":%llu,"
           "\"frames_rejected\":%llu,\"data_reconnects\":%llu,"
           "\"control_rejected\":%llu,"
           "\"beacons_received\":%llu,\"beacons_rejected\":%llu,"
           "\"beacons_foreign\":%llu,\"peers_joined\":%llu,"
           "\"peers_left\":%llu,\"gaps\":%llu,\"events_missing\":%llu,"
           "\"duplicates_dropped\":%llu,\"repair_requests\":%llu,"
           "\"events_repaired\":%llu,\"repair_timeouts\":%llu,"
           "\"repairs_rejected\":%llu,\"events_resent\":%llu,"
           "\"directs_sent\":%llu,\"directs_received\":%llu,"
           "\"replies_received\":%llu,\"requests_timed_out\":%llu,"
           "\"replies_dropped\":%llu,\"group_received\":%llu,"
           "\"group_delivered\":%llu,\"group_redelivered\":%llu,"
           "\"group_dropped\":%llu,\"backpressure_waits\":%llu,"
           "\"backpressure_timeouts\":%llu,\"requests_refused\":%llu,"
           "\"confirms_ok\":%llu,\"confirms_failed\":%llu,"
           "\"confirms_resent\":%llu,\"durable_delivered\":%llu,"
           "\"durable_redelivered\":%llu,\"durable_duplicates\":%llu,"
           "\"durable_terminated\":%llu,\"durable_refused\":%llu,"
           "\"batches_sent\":%llu,\"events_batched\":%llu,"
           "\"events_unsent\":%llu,\"tails_sent\":%llu,"
           "\"tail_gaps\":%llu}\n",
           (unsigned long long)stats.events_published,
           (unsigned long long)stats.events_received,
           (unsigned long long)stats.frames_rejected,
           (unsigned long long)stats.data_reconnects,
           (unsigned long long)stats.control_rejected,
           (unsigned long long)stats.beacons_received,
           (unsigned long long)stats.beacons_rejected,
           (unsigned long long)stats.beacons_foreign,
           (unsigned long long)stats.peers_joined,
           (unsigned long long)stats.peers_left, (unsigned long long)stats.gaps,
           (unsigned long long)stats.events_missing,
           (unsigned long long)stats.duplicates_dropped,
           (unsigned long long)stats.repair_requests,
           (unsigned long long)stats.events_repaired,
           (unsigned long long)stats.repair_timeouts,
           (unsigned long long)stats.repairs_rejected,
           (unsigned long long)stats.events_resent,
           (unsigned long long)stats.directs_sent,
           (unsigned long long)stats.directs_received,
           (unsigned long long)stats.replies_received,
           (unsigned long long)stats.requests_timed_out,
           (unsigned long long)stats.replies_dropped,
           (unsigned long long)stats.group_received,
           (unsigned long long)stats.group_delivered,
           (unsigned long long)stats.group_redelivered,
           (unsigned long long)stats.group_dropped,
           (unsigned long long)stats.backpressure_waits,
           (unsigned long long)stats.backpressure_timeouts,
           (unsigned long long)stats.requests_refused,
           (unsigned long long)stats.confirms_ok,
           (unsigned long long)stats.confirms_failed,
           (unsigned long long)stats.confirms_resent,
           (unsigned long long)stats.durable_delivered,
           (unsigned long long)stats.durable_redelivered,
           (unsigned long long)stats.durable_duplicates,
           (unsigned long long)stats.durable_terminated,
           (unsigned long long)stats.durable_refused,
           (unsigned long long)stats.batches_sent,
           (unsigned long long)stats.events_batched,
           (unsigned long long)stats.events_unsent,
           (unsigned long long)stats.tails_sent,
           (unsigned long long)stats.tail_gaps);
    fflush(stdout);
}

// One line with another agent's counters, or the error asking for them.
static void
s_print_counters(zmesh_agent_t *agent, const char *peer)
{
    zmesh_counters_t *counters = NULL;
    int rc = zmesh_agent_query_counters(agent, peer, 1000, &counters);
    printf("{\"event\":\"counters\",\"rc\":%d,\"groups\":[", rc);
    for (size_t i = 0; i < zmesh_counters_size(counters); i++) {
        printf("%s{\"kind\":", i ? "," : "");
        s_json_string(zmesh_counters_kind(counters, i));
        printf(",\"name\":");
        s_json_string(zmesh_counters_name(counters, i));
        printf(",\"values\":{");
        for (size_t j = 0; j < zmesh_counters_keys(counters, i); j++) {
            printf("%s", j ? "," : "");
            s_json_string(zmesh_counters_key(counters, i, j));
            printf(":%llu",
                   (unsigned long long)zmesh_counters_value(counters, i, j));
        }
        printf("}}");
    }
    printf("]}\n");
    fflush(stdout);
    zmesh_counters_destroy(&counters);
}

static zmesh_discovery_t
s_scope(const char *text)
{
    if (strcmp(text, "host") == 0)
        return ZMESH_DISCOVERY_HOST;
    if (strcmp(text, "lan") == 0)
        return ZMESH_DISCOVERY_LAN;
    if (strcmp(text, "multicast") == 0)
        return ZMESH_DISCOVERY_MULTICAST;
    if (strcmp(text, "none") == 0)
        return ZMESH_DISCOVERY_NONE;
    s_usage();
    return ZMESH_DISCOVERY_HOST;
}

static void
s_check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "testnode: %s: %s\n", what, zmesh_strerror(rc));
        exit(1);
    }
}

int
main(int argc, char **argv)
{
    const char *name = NULL, *pub_topic = NULL, *iface = NULL;
    zmesh_discovery_t scope = ZMESH_DISCOVERY_HOST;
    long count = 0, every_ms = 10, run_ms = 10000, exit_after = -1;
    long wait_subs = -1, stall_ms = 0, final_after = -1;
    long batch = 1; // events published before events are received again
    long pad = 0;   // --pad: bytes of a "pad" bin added to each payload
    bool crash = false, exit_when_done = false, no_destroy = false;
    bool respond = false;
    const char *request_topic = NULL, *to = NULL, *send_to = NULL;
    const char *query = NULL;
    const char *durable = NULL; /* NAME=PATTERN, subscribed after start */
    zmesh_durable_options_t durable_options = {0};
    bool confirm = false, no_ack = false;
    long skip_acks = 0; /* durable messages left unacknowledged first */
    long request_timeout = 1000, reply_delay = 0;
    zmesh_agent_t *agent = NULL;

    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
            name = argv[++i];
    if (!name)
        s_usage();
    s_check(zmesh_agent_new(&agent, name), "new");
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(opt, "-v") == 0) {
            zmesh_log_set(zmesh_log_stderr, ZMESH_LOG_DEBUG, NULL);
            continue;
        }
        if (strcmp(opt, "--crash") == 0) {
            crash = true;
            continue;
        }
        if (strcmp(opt, "--no-destroy") == 0) {
            no_destroy = true;
            continue;
        }
        if (strcmp(opt, "--exit-when-done") == 0) {
            exit_when_done = true;
            continue;
        }
        if (strcmp(opt, "--confirm") == 0) {
            confirm = true;
            continue;
        }
        if (strcmp(opt, "--no-ack") == 0) {
            no_ack = true;
            continue;
        }
        if (strcmp(opt, "--respond") == 0) {
            respond = true;
            continue;
        }
        if (!val)
            s_usage();
        i++;
        if (strcmp(opt, "--name") == 0)
            continue;
        else if (strcmp(opt, "--mesh") == 0)
            s_check(zmesh_agent_set_mesh(agent, val), "mesh");
        else if (strcmp(opt, "--beacon-port") == 0)
            s_check(zmesh_agent_set_beacon_port(agent, atoi(val)), "port");
        else if (strcmp(opt, "--interval") == 0)
            s_check(zmesh_agent_set_beacon_interval(agent, atoi(val)),
                    "interval");
        else if (strcmp(opt, "--timeout") == 0)
            s_check(zmesh_agent_set_peer_timeout(agent, atoi(val)), "timeout");
        else if (strcmp(opt, "--discovery") == 0)
            scope = s_scope(val);
        else if (strcmp(opt, "--interface") == 0)
            iface = val;
        else if (strcmp(opt, "--group") == 0)
            s_check(zmesh_agent_set_multicast_group(agent, val), "group");
        else if (strcmp(opt, "--seed") == 0)
            s_check(zmesh_agent_add_seed(agent, val), "seed");
        else if (strcmp(opt, "--header") == 0) {
            char key[128];
            const char *eq = strchr(val, '=');
            if (!eq || (size_t)(eq - val) >= sizeof key)
                s_usage();
            memcpy(key, val, (size_t)(eq - val));
            key[eq - val] = '\0';
            s_check(zmesh_agent_set_header(agent, key, eq + 1), "header");
        } else if (strcmp(opt, "--sub") == 0)
            s_check(zmesh_agent_subscribe(agent, val), "subscribe");
        else if (strcmp(opt, "--queue-group") == 0) {
            // PATTERN=GROUP
            char pattern[256];
            const char *eq = strrchr(val, '=');
            if (!eq || (size_t)(eq - val) >= sizeof pattern)
                s_usage();
            memcpy(pattern, val, (size_t)(eq - val));
            pattern[eq - val] = '\0';
            s_check(zmesh_agent_subscribe_group(agent, pattern, eq + 1),
                    "subscribe in a group");
        } else if (strcmp(opt, "--serve") == 0)
            s_check(zmesh_agent_serve(agent, val), "serve");
        else if (strcmp(opt, "--sub-bp") == 0)
            s_check(zmesh_agent_subscribe_backpressure(agent, val),
                    "subscribe with back-pressure");
        else if (strcmp(opt, "--bp-wait") == 0)
            s_check(zmesh_agent_set_backpressure_wait(agent, atoi(val)),
                    "back-pressure wait");
        else if (strcmp(opt, "--sub-history") == 0)
            s_check(zmesh_agent_subscribe_history(agent, val),
                    "subscribe with history");
        else if (strcmp(opt, "--history") == 0) {
            // PATTERN=COUNT
            char pattern[256];
            const char *eq = strrchr(val, '=');
            if (!eq || (size_t)(eq - val) >= sizeof pattern)
                s_usage();
            memcpy(pattern, val, (size_t)(eq - val));
            pattern[eq - val] = '\0';
            s_check(
                zmesh_agent_set_history(agent, pattern, (size_t)atol(eq + 1)),
                "history");
        } else if (strcmp(opt, "--advertise") == 0)
            s_check(zmesh_agent_advertise(agent, val), "advertise");
        else if (strcmp(opt, "--pub") == 0)
            pub_topic = val;
        else if (strcmp(opt, "--count") == 0)
            count = atol(val);
        else if (strcmp(opt, "--every") == 0)
            every_ms = atol(val);
        else if (strcmp(opt, "--batch") == 0)
            batch = atol(val);
        else if (strcmp(opt, "--pad") == 0) {
            pad = atol(val);
            if (pad < 0 || pad > 60000)
                s_usage(); // the payload buffer's bound
        } else if (strcmp(opt, "--wait-subs") == 0)
            wait_subs = atol(val);
        else if (strcmp(opt, "--stall-ms") == 0)
            stall_ms = atol(val);
        else if (strcmp(opt, "--final-after") == 0)
            final_after = atol(val);
        else if (strcmp(opt, "--run-ms") == 0)
            run_ms = atol(val);
        else if (strcmp(opt, "--exit-after") == 0)
            exit_after = atol(val);
        else if (strcmp(opt, "--retransmit") == 0)
            s_check(zmesh_agent_set_retransmit_buffer(agent, (size_t)atol(val)),
                    "retransmit");
        else if (strcmp(opt, "--batching") == 0) // MAX_EVENTS (0: off)
            s_check(zmesh_agent_set_batching(agent, (size_t)atol(val), 1),
                    "batching");
        else if (strcmp(opt, "--repair-timeout") == 0)
            s_check(zmesh_agent_set_repair_timeout(agent, atoi(val)),
                    "repair timeout");
        else if (strcmp(opt, "--request") == 0)
            request_topic = val;
        else if (strcmp(opt, "--to") == 0)
            to = val;
        else if (strcmp(opt, "--request-timeout") == 0)
            request_timeout = atol(val);
        else if (strcmp(opt, "--send") == 0)
            send_to = val;
        else if (strcmp(opt, "--reply-delay") == 0)
            reply_delay = atol(val);
        else if (strcmp(opt, "--query") == 0)
            query = val;
        else if (strcmp(opt, "--durable") == 0)
            durable = val;
        else if (strcmp(opt, "--start") == 0) {
            // all | new | last | seq:N | time:US
            if (strcmp(val, "all") == 0)
                durable_options.start = ZMESH_START_ALL;
            else if (strcmp(val, "new") == 0)
                durable_options.start = ZMESH_START_NEW;
            else if (strcmp(val, "last") == 0)
                durable_options.start = ZMESH_START_LAST;
            else if (strncmp(val, "seq:", 4) == 0) {
                durable_options.start = ZMESH_START_SEQ;
                durable_options.start_sequence = strtoull(val + 4, NULL, 10);
            } else if (strncmp(val, "time:", 5) == 0) {
                durable_options.start = ZMESH_START_TIME;
                durable_options.start_time_us = strtoll(val + 5, NULL, 10);
            } else
                s_usage();
        } else if (strcmp(opt, "--ack-wait") == 0)
            durable_options.ack_wait_ms = atoi(val);
        else if (strcmp(opt, "--max-deliver") == 0)
            durable_options.max_deliver = atoi(val);
        else if (strcmp(opt, "--max-ack-pending") == 0)
            durable_options.max_ack_pending = atoi(val);
        else if (strcmp(opt, "--skip-acks") == 0)
            skip_acks = atol(val);
        else if (strcmp(opt, "--confirm-timeout") == 0)
            s_check(zmesh_agent_set_confirm_timeout(agent, atoi(val)),
                    "confirm timeout");
        else
            s_usage();
    }
    s_check(zmesh_agent_set_discovery(agent, scope, iface), "discovery");
    if (pub_topic && !send_to)
        s_check(zmesh_agent_advertise(agent, pub_topic), "advertise");
    if (request_topic) {
        pub_topic = request_topic;
        // Requests go out only once a responder is known.
        if (wait_subs < 0)
            wait_subs = 1;
    }
    signal(SIGTERM, s_on_signal);
    signal(SIGINT, s_on_signal);
    s_check(zmesh_agent_start(agent), "start");
    printf("{\"event\":\"started\",\"name\":");
    s_json_string(name);
    printf(",\"id\":\"%s\",\"endpoint\":\"%s\",\"pid\":%d}\n",
           zmesh_agent_id(agent), zmesh_agent_endpoint(agent), (int)getpid());
    fflush(stdout);
    if (durable) {
        // NAME=PATTERN
        char consumer[128];
        const char *eq = strchr(durable, '=');
        if (!eq || (size_t)(eq - durable) >= sizeof consumer)
            s_usage();
        memcpy(consumer, durable, (size_t)(eq - durable));
        consumer[eq - durable] = '\0';
        s_check(zmesh_agent_subscribe_durable(agent, consumer, eq + 1,
                                              &durable_options),
                "subscribe durably");
    }

    int64_t start = s_now_ms();
    int64_t end = start + run_ms;
    if (pub_topic && wait_subs > 0 && (request_topic || send_to)) {
        // Wait until the target is a joined peer.
        int64_t give_up = s_now_ms() + (end - start);
        int found = 0;
        while (!found && s_now_ms() < give_up && !s_stop) {
            zmesh_peer_list_t *peers = NULL;
            if (zmesh_agent_peers(agent, &peers) == 0) {
                for (size_t i = 0; i < zmesh_peer_list_size(peers); i++) {
                    const char *want = send_to ? send_to : to;
                    if (want && strcmp(zmesh_peer_name(peers, i), want) == 0)
                        found = 1;
                    for (size_t j = 0;
                         !want && j < zmesh_peer_serves_size(peers, i); j++)
                        found |= strcmp(zmesh_peer_serves(peers, i, j),
                                        pub_topic) == 0;
                }
                zmesh_peer_list_destroy(&peers);
            }
            const zmesh_event_t *event;
            if (!found && zmesh_agent_recv(agent, 50, &event) == 0)
                s_print_event(event);
        }
        printf("{\"event\":\"subscribers\",\"ready\":%d}\n", found);
        fflush(stdout);
    } else if (pub_topic && wait_subs >= 0 && !request_topic && !send_to) {
        int rc = zmesh_agent_wait_subscribers(agent, pub_topic, (int)wait_subs,
                                              (int)(end - start));
        printf("{\"event\":\"subscribers\",\"ready\":%d}\n", rc);
        fflush(stdout);
    }
    long published = 0, received = 0;
    int64_t next_pub = s_now_ms();
    int64_t next_query = next_pub;
    while (!s_stop && s_now_ms() < end) {
        int64_t now = s_now_ms();
        bool done = false;
        for (long k = 0;
             k < batch && pub_topic && published < count && now >= next_pub;
             k++) {
            // Payload: {"n": published + 1, "from": name[, "pad": bin]}
            static char payload[128 + 60000];
            size_t name_size = strlen(name);
            size_t at = 0;
            payload[at++] = (char)(pad > 0 ? 0x83 : 0x82);
            payload[at++] = (char)0xa1;
            payload[at++] = 'n';
            payload[at++] = (char)0xce;
            uint32_t n = (uint32_t)(published + 1);
            for (int b = 3; b >= 0; b--)
                payload[at++] = (char)(n >> (8 * b));
            payload[at++] = (char)0xa4;
            memcpy(payload + at, "from", 4);
            at += 4;
            payload[at++] = (char)0xd9;
            payload[at++] = (char)name_size;
            memcpy(payload + at, name, name_size);
            at += name_size;
            if (pad > 0) {
                payload[at++] = (char)0xa3;
                memcpy(payload + at, "pad", 3);
                at += 3;
                payload[at++] = (char)0xc5; // bin16
                payload[at++] = (char)(pad >> 8);
                payload[at++] = (char)pad;
                memset(payload + at, 'p', (size_t)pad);
                at += (size_t)pad;
            }
            if (request_topic) {
                uint64_t id = 0;
                int rc = zmesh_agent_request(agent, to, request_topic, payload,
                                             at, (int)request_timeout, &id);
                printf("{\"event\":\"requested\",\"rc\":%d,\"req\":%llu}"
                       "\n",
                       rc, (unsigned long long)id);
                fflush(stdout);
            } else if (send_to) {
                int rc =
                    zmesh_agent_send(agent, send_to, pub_topic, payload, at);
                printf("{\"event\":\"sent\",\"rc\":%d}\n", rc);
                fflush(stdout);
            } else if (confirm)
                s_check(zmesh_agent_publish_confirmed(agent, pub_topic, payload,
                                                      at, NULL),
                        "publish with confirm");
            else
                s_check(zmesh_agent_publish(agent, pub_topic, payload, at),
                        "publish");
            published++;
            next_pub = now + every_ms;
            if (published == count) {
                printf("{\"event\":\"published\",\"count\":%ld}\n", published);
                fflush(stdout);
                if (exit_when_done) {
                    done = true;
                    break;
                }
                // One more event after a pause, so a subscriber can tell
                // whether the burst's tail was lost.
                if (final_after >= 0) {
                    count++;
                    next_pub = now + final_after;
                    final_after = -1;
                }
            }
        }
        if (done)
            break;
        if (query && now >= next_query) {
            s_print_counters(agent, query);
            next_query = now + 200;
        }
        int64_t wake = pub_topic && published < count ? next_pub : end;
        int64_t wait = wake - s_now_ms();
        if (wait > 100)
            wait = 100;
        if (wait < 0)
            wait = 0;
        const zmesh_event_t *event;
        if (zmesh_agent_recv(agent, (int)wait, &event) == 0) {
            s_print_event(event);
            if (respond && zmesh_event_type(event) == ZMESH_EVENT_REQUEST) {
                if (reply_delay > 0) {
                    struct timespec pause = {reply_delay / 1000,
                                             (reply_delay % 1000) * 1000000};
                    nanosleep(&pause, NULL);
                }
                size_t size;
                const void *payload = zmesh_event_payload(event, &size);
                int rc = zmesh_agent_reply(agent, event, payload, size);
                printf("{\"event\":\"replied\",\"rc\":%d}\n", rc);
                fflush(stdout);
            }
            // Stop reading for a while after the first message, so a fast
            // publisher overruns our queues (test_gaps.py).
            if (stall_ms > 0 &&
                zmesh_event_type(event) == ZMESH_EVENT_MESSAGE) {
                struct timespec pause = {stall_ms / 1000,
                                         (stall_ms % 1000) * 1000000};
                nanosleep(&pause, NULL);
                stall_ms = 0;
            }
            // A durable consumer acknowledges what it printed, but for
            // the first --skip-acks messages (to see them again).
            if (*zmesh_event_consumer(event) &&
                zmesh_event_type(event) == ZMESH_EVENT_MESSAGE && !no_ack) {
                if (skip_acks > 0)
                    skip_acks--;
                else
                    s_check(zmesh_agent_ack(agent, event), "ack");
            }
            if (zmesh_event_type(event) == ZMESH_EVENT_MESSAGE &&
                ++received == exit_after)
                break;
        }
    }
    s_print_stats(agent);
    if (crash) {
        printf("{\"event\":\"crash\"}\n");
        fflush(stdout);
        _exit(3);
    }
    if (no_destroy) {
        // Exit with the agent still started: the library must stop it
        // itself (peers get BYE) instead of crashing in czmq's exit.
        printf("{\"event\":\"exit\"}\n");
        fflush(stdout);
        return 0;
    }
    zmesh_agent_destroy(&agent);
    printf("{\"event\":\"exit\"}\n");
    fflush(stdout);
    return 0;
}
