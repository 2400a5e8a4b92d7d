/*  publisher.c - the smallest zmesh publisher.

    Joins a mesh, waits until a subscriber of "hello.counter" is connected,
    then publishes N events, one every 100 ms: a msgpack map
    {"n": i, "text": "hello"} built with msgpack-c. Pair it with
    subscriber.c. It uses only the public API (zmesh.h) and finds zmesh with
    find_package(zmesh). The beacon port comes from ZMESH_BEACON_PORT when
    set, so a test can keep its agents apart from others on the host.
*/
#include <zmesh.h>

#include <msgpack.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TOPIC "hello.counter"

static void
usage(void)
{
    fprintf(stderr, "usage: publisher [--mesh NAME] [--count N] "
                    "[--interval-ms MS] [--wait-ms MS]\n");
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

static void
sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000,
                          .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/*  Packs {"n": n, "text": "hello"} into `buf` (cleared first). */
static int
pack_counter(msgpack_sbuffer *buf, int n)
{
    msgpack_packer pk;
    msgpack_sbuffer_clear(buf);
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    if (msgpack_pack_map(&pk, 2) != 0 ||
        msgpack_pack_str_with_body(&pk, "n", 1) != 0 ||
        msgpack_pack_int(&pk, n) != 0 ||
        msgpack_pack_str_with_body(&pk, "text", 4) != 0 ||
        msgpack_pack_str_with_body(&pk, "hello", 5) != 0)
        return -1;
    return 0;
}

int
main(int argc, char **argv)
{
    const char *mesh = "default";
    int count = 10, interval_ms = 100, wait_ms = 10000, beacon_port = 0;

    /* Every option takes a value: --name VALUE. */
    for (int i = 1; i < argc; i += 2) {
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = value == NULL;
        if (!bad && strcmp(argv[i], "--mesh") == 0)
            mesh = value;
        else if (!bad && strcmp(argv[i], "--count") == 0)
            bad = parse_int(value, 1, 1000000, &count);
        else if (!bad && strcmp(argv[i], "--interval-ms") == 0)
            bad = parse_int(value, 0, 60000, &interval_ms);
        else if (!bad && strcmp(argv[i], "--wait-ms") == 0)
            bad = parse_int(value, 0, 600000, &wait_ms);
        else
            bad = 1;
        if (bad) {
            usage();
            return 2;
        }
    }
    const char *port_env = getenv("ZMESH_BEACON_PORT");
    if (port_env && parse_int(port_env, 1, 65535, &beacon_port) != 0) {
        fprintf(stderr, "publisher: bad ZMESH_BEACON_PORT '%s'\n", port_env);
        return 2;
    }

    /* The library is silent unless told otherwise: show its warnings. */
    zmesh_log_set(zmesh_log_stderr, ZMESH_LOG_WARNING, NULL);

    zmesh_agent_t *agent = NULL;
    int rc = zmesh_agent_new(&agent, "hello-publisher");
    if (rc == 0)
        rc = zmesh_agent_set_mesh(agent, mesh);
    if (rc == 0 && beacon_port > 0)
        rc = zmesh_agent_set_beacon_port(agent, beacon_port);
    /* Advertising before start lets subscribers connect before the first
       publish, so that one is not lost. */
    if (rc == 0)
        rc = zmesh_agent_advertise(agent, TOPIC);
    if (rc == 0)
        rc = zmesh_agent_start(agent);
    if (rc < 0) {
        fprintf(stderr, "publisher: cannot start: %s\n", zmesh_strerror(rc));
        zmesh_agent_destroy(&agent);
        return 1;
    }

    rc = zmesh_agent_wait_subscribers(agent, TOPIC, 1, wait_ms);
    if (rc < 0) {
        fprintf(stderr, "publisher: no subscriber within %d ms: %s\n", wait_ms,
                zmesh_strerror(rc));
        zmesh_agent_destroy(&agent);
        return 1;
    }
    printf("publisher: %d subscriber(s) on mesh '%s'\n", rc, mesh);

    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    int published = 0;
    for (int n = 1; n <= count; n++) {
        if (pack_counter(&buf, n) != 0) {
            fprintf(stderr, "publisher: out of memory\n");
            break;
        }
        rc = zmesh_agent_publish(agent, TOPIC, buf.data, buf.size);
        if (rc < 0) {
            fprintf(stderr, "publisher: publish: %s\n", zmesh_strerror(rc));
            break;
        }
        published++;
        if (n < count)
            sleep_ms(interval_ms);
    }
    msgpack_sbuffer_destroy(&buf);

    /* destroy waits (the agent's linger) for queued events to go out. */
    zmesh_agent_destroy(&agent);
    printf("publisher: published %d of %d events\n", published, count);
    fflush(stdout);
    return published == count ? 0 : 1;
}
