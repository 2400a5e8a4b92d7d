/*  service.c - the scaffolding the three demo services run on.

    Command line (--mesh, --orders, --timeout-ms, --min-subscribers,
    --pace-ms, --state), starting an agent on the demo's mesh, waiting for
    subscribers before the first publish, stopping cleanly on SIGTERM, and
    reading and writing the msgpack maps that are the events' payloads.
    Nothing here knows about orders, payments or shipments: that stays in
    each service's own file, with the service's receive loop.
*/
#include "service.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void
s_usage(const char *name)
{
    fprintf(stderr,
            "usage: %s --mesh NAME [--orders N] [--timeout-ms MS]\n"
            "       [--min-subscribers N] [--pace-ms MS] [--state FILE]\n"
            "ZMESH_BEACON_PORT, when set, is the discovery beacon port.\n",
            name);
}

static int
s_parse_int(const char *text, long min, long max, int *out)
{
    char *end = NULL;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < min || value > max)
        return -1;
    *out = (int)value;
    return 0;
}

int
service_parse_args(service_options_t *opts, int argc, char **argv)
{
    /* Every option takes a value: --name VALUE. */
    for (int i = 1; i < argc; i += 2) {
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = value == NULL;
        if (!bad && strcmp(argv[i], "--mesh") == 0)
            opts->mesh = value;
        else if (!bad && strcmp(argv[i], "--orders") == 0)
            bad = s_parse_int(value, 1, 100000, &opts->orders);
        else if (!bad && strcmp(argv[i], "--timeout-ms") == 0)
            bad = s_parse_int(value, 1, 3600000, &opts->timeout_ms);
        else if (!bad && strcmp(argv[i], "--min-subscribers") == 0)
            bad = s_parse_int(value, 0, 64, &opts->min_subscribers);
        else if (!bad && strcmp(argv[i], "--pace-ms") == 0)
            bad = s_parse_int(value, 0, 10000, &opts->pace_ms);
        else if (!bad && strcmp(argv[i], "--state") == 0)
            opts->state = value;
        else
            bad = 1;
        if (bad) {
            s_usage(opts->name);
            return -1;
        }
    }
    if (opts->mesh == NULL) {
        s_usage(opts->name);
        return -1;
    }
    const char *port = getenv("ZMESH_BEACON_PORT");
    if (port && s_parse_int(port, 1, 65535, &opts->beacon_port) != 0) {
        fprintf(stderr, "%s: bad ZMESH_BEACON_PORT '%s'\n", opts->name, port);
        return -1;
    }
    return 0;
}

int
service_start(const service_options_t *opts, const char *subscribe,
              const char *advertise, zmesh_agent_t **agent)
{
    zmesh_log_set(zmesh_log_stderr, ZMESH_LOG_WARNING, NULL);
    int rc = zmesh_agent_new(agent, opts->name);
    if (rc == 0)
        rc = zmesh_agent_set_mesh(*agent, opts->mesh);
    if (rc == 0 && opts->beacon_port > 0)
        rc = zmesh_agent_set_beacon_port(*agent, opts->beacon_port);
    if (rc == 0 && subscribe)
        rc = zmesh_agent_subscribe(*agent, subscribe);
    /* Advertised before start, so subscribers connect before the first
       publish instead of learning the topic from it. */
    if (rc == 0 && advertise)
        rc = zmesh_agent_advertise(*agent, advertise);
    if (rc == 0)
        rc = zmesh_agent_start(*agent);
    if (rc < 0) {
        fprintf(stderr, "%s: cannot start an agent: %s\n", opts->name,
                zmesh_strerror(rc));
        zmesh_agent_destroy(agent);
        return -1;
    }
    return 0;
}

int
service_wait_subscribers(const service_options_t *opts, zmesh_agent_t *agent,
                         const char *topic, int64_t deadline_ms)
{
    int64_t left = deadline_ms - service_now_ms();
    int rc = zmesh_agent_wait_subscribers(agent, topic, opts->min_subscribers,
                                          left > 0 ? (int)left : 0);
    if (rc < 0) {
        fprintf(stderr, "%s: fewer than %d subscribers of %s in time: %s\n",
                opts->name, opts->min_subscribers, topic, zmesh_strerror(rc));
        return -1;
    }
    printf("%s: %d subscriber(s) of %s connected\n", opts->name, rc, topic);
    fflush(stdout);
    return 0;
}

static volatile sig_atomic_t s_stop_requested;

static void
s_on_stop_signal(int signal_number)
{
    (void)signal_number;
    s_stop_requested = 1;
}

void
service_stop_on_signals(void)
{
    struct sigaction action;
    memset(&action, 0, sizeof action);
    sigemptyset(&action.sa_mask);
    action.sa_handler = s_on_stop_signal;
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);
}

int
service_stop_requested(void)
{
    return s_stop_requested != 0;
}

int64_t
service_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
service_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000,
                          .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

const msgpack_object *
service_map_get(const msgpack_object *map, const char *key)
{
    if (map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t key_size = strlen(key);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object_kv *kv = &map->via.map.ptr[i];
        if (kv->key.type == MSGPACK_OBJECT_STR &&
            kv->key.via.str.size == key_size &&
            memcmp(kv->key.via.str.ptr, key, key_size) == 0)
            return &kv->val;
    }
    return NULL;
}

uint64_t
service_map_id(const msgpack_object *map, int max)
{
    const msgpack_object *value = service_map_get(map, "id");
    if (value && value->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
        value->via.u64 >= 1 && value->via.u64 <= (uint64_t)max)
        return value->via.u64;
    return 0;
}

int
service_pack_map(msgpack_sbuffer *buf, const service_field_t *fields, int n)
{
    msgpack_packer pk;
    msgpack_sbuffer_clear(buf);
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    int rc = msgpack_pack_map(&pk, (size_t)n);
    for (int i = 0; rc == 0 && i < n; i++) {
        const service_field_t *f = &fields[i];
        rc = msgpack_pack_str_with_body(&pk, f->key, strlen(f->key));
        if (rc != 0)
            break;
        switch (f->type) {
        case FIELD_UINT: rc = msgpack_pack_uint64(&pk, f->u); break;
        case FIELD_STR:
            rc = msgpack_pack_str_with_body(&pk, f->s, strlen(f->s));
            break;
        case FIELD_DOUBLE: rc = msgpack_pack_double(&pk, f->d); break;
        }
    }
    return rc == 0 ? 0 : -1;
}

uint64_t
service_event_id(const zmesh_event_t *event, int max, msgpack_unpacked *in,
                 const msgpack_object **map)
{
    size_t size = 0;
    const char *payload = zmesh_event_payload(event, &size);
    if (msgpack_unpack_next(in, payload, size, NULL) != MSGPACK_UNPACK_SUCCESS)
        return 0;
    uint64_t id = service_map_id(&in->data, max);
    if (id != 0 && map)
        *map = &in->data;
    return id;
}
