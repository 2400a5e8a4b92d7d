/*  subscriber.c - the smallest zmesh subscriber.

    Joins a mesh, subscribes to "hello.>" and prints every event it gets as
    one line of JSON (zmesh_msgpack_to_json, so it needs no msgpack code of
    its own), plus peers joining and leaving. It exits after N events
    (status 0) or when the timeout runs out first (status 1). This is the
    example that finds zmesh through pkg-config (libzmesh.pc) rather than
    find_package. ZMESH_BEACON_PORT sets the beacon port when present.
*/
#include <zmesh.h>

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void
usage(void)
{
    fprintf(stderr, "usage: subscriber [--mesh NAME] [--count N] "
                    "[--timeout-ms MS]\n");
}

/*  Parses a decimal int in [min, max]; -1 if it is not one. */
static int
parse_int(const char *text, long min, long max, int *out)
{
    char *end = NULL;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < min || value > max)
        return -1;
    *out = (int)value;
    return 0;
}

static int64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
print_message(const zmesh_event_t *event)
{
    size_t size = 0;
    const void *payload = zmesh_event_payload(event, &size);
    char *json = NULL;
    int rc = zmesh_msgpack_to_json(payload, size, &json);
    printf("%s #%" PRIu64 " from %s: %s\n", zmesh_event_topic(event),
           zmesh_event_sequence(event), zmesh_event_peer_name(event),
           rc == 0 ? json : zmesh_strerror(rc));
    free(json);
}

int
main(int argc, char **argv)
{
    const char *mesh = "default";
    int count = 10, timeout_ms = 30000, beacon_port = 0;

    /* Every option takes a value: --name VALUE. */
    for (int i = 1; i < argc; i += 2) {
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = value == NULL;
        if (!bad && strcmp(argv[i], "--mesh") == 0)
            mesh = value;
        else if (!bad && strcmp(argv[i], "--count") == 0)
            bad = parse_int(value, 1, 1000000, &count);
        else if (!bad && strcmp(argv[i], "--timeout-ms") == 0)
            bad = parse_int(value, 1, 3600000, &timeout_ms);
        else
            bad = 1;
        if (bad) {
            usage();
            return 2;
        }
    }
    const char *port_env = getenv("ZMESH_BEACON_PORT");
    if (port_env && parse_int(port_env, 1, 65535, &beacon_port) != 0) {
        fprintf(stderr, "subscriber: bad ZMESH_BEACON_PORT '%s'\n", port_env);
        return 2;
    }

    zmesh_log_set(zmesh_log_stderr, ZMESH_LOG_WARNING, NULL);

    zmesh_agent_t *agent = NULL;
    int rc = zmesh_agent_new(&agent, "hello-subscriber");
    if (rc == 0)
        rc = zmesh_agent_set_mesh(agent, mesh);
    if (rc == 0 && beacon_port > 0)
        rc = zmesh_agent_set_beacon_port(agent, beacon_port);
    if (rc == 0)
        rc = zmesh_agent_subscribe(agent, "hello.>");
    if (rc == 0)
        rc = zmesh_agent_start(agent);
    if (rc < 0) {
        fprintf(stderr, "subscriber: cannot start: %s\n", zmesh_strerror(rc));
        zmesh_agent_destroy(&agent);
        return 1;
    }
    printf("subscriber: listening on mesh '%s' for %d events\n", mesh, count);
    fflush(stdout);

    int received = 0;
    int64_t deadline = now_ms() + timeout_ms;
    while (received < count) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            break;
        const zmesh_event_t *event = NULL;
        rc = zmesh_agent_recv(agent, (int)left, &event);
        if (rc == ZMESH_EAGAIN)
            continue;
        if (rc < 0) {
            fprintf(stderr, "subscriber: recv: %s\n", zmesh_strerror(rc));
            break;
        }
        switch (zmesh_event_type(event)) {
        case ZMESH_EVENT_MESSAGE:
            print_message(event);
            received++;
            break;
        case ZMESH_EVENT_PEER_JOINED:
            printf("peer %s joined (%s)\n", zmesh_event_peer_name(event),
                   zmesh_event_reason(event));
            break;
        case ZMESH_EVENT_PEER_LEFT:
            printf("peer %s left (%s)\n", zmesh_event_peer_name(event),
                   zmesh_event_reason(event));
            break;
        case ZMESH_EVENT_GAP:
            printf("lost events %llu..%llu of %s from %s\n",
                   (unsigned long long)zmesh_event_sequence(event),
                   (unsigned long long)zmesh_event_gap_last(event),
                   zmesh_event_topic(event), zmesh_event_peer_name(event));
            break;
        default: // direct messages and replies: this example sends none
            break;
        }
        fflush(stdout);
    }

    zmesh_agent_destroy(&agent);
    printf("subscriber: received %d of %d events\n", received, count);
    fflush(stdout);
    return received == count ? 0 : 1;
}
