/*  service.h - what the three demo services share: their command line,
    starting an agent, waiting for subscribers, stopping on a signal,
    clocks and reading and writing msgpack maps. Each service keeps its own
    business logic, and its own receive loop. */
#ifndef DEMO_SERVICE_H_INCLUDED
#define DEMO_SERVICE_H_INCLUDED

#include <zmesh.h>

#include <msgpack.h>

#include <stdint.h>

typedef struct {
    const char *name;    /* service name, e.g. "payment-service" */
    const char *mesh;    /* --mesh NAME (required) */
    int orders;          /* --orders N: how many orders flow through */
    int timeout_ms;      /* --timeout-ms: exit by then, done or not */
    int min_subscribers; /* --min-subscribers: wait for this many before
                            publishing (the demo adds one for mesh-tap) */
    int pace_ms;         /* --pace-ms: gap between orders (order-service) */
    const char *state;   /* --state FILE: where shipping-service records
                            the orders it shipped, so a restart knows */
    int beacon_port;     /* ZMESH_BEACON_PORT, 0 for the default */
} service_options_t;

/*  Parses argv into *opts, whose fields hold the service's defaults on
    entry. Prints usage and returns -1 on a bad or missing argument. */
int service_parse_args(service_options_t *opts, int argc, char **argv);

/*  Creates and starts the service's agent: mesh, beacon port, an optional
    subscription and an optional advertised pattern. Returns 0 with
    *agent set, or -1 after printing why. */
int service_start(const service_options_t *opts, const char *subscribe,
                  const char *advertise, zmesh_agent_t **agent);

/*  Waits until opts->min_subscribers agents want `topic` and are
    connected, at most until `deadline_ms` (service_now_ms() clock). Returns
    0, or -1 after printing why. */
int service_wait_subscribers(const service_options_t *opts,
                             zmesh_agent_t *agent, const char *topic,
                             int64_t deadline_ms);

/*  Makes SIGTERM and SIGINT ask the service to stop (instead of killing
    it), so it can finish the event in hand and leave cleanly: tell its
    peers BYE and, for a durable consumer, hand its last acknowledgements
    to the relay. service_stop_requested() says whether one came. */
void service_stop_on_signals(void);
int service_stop_requested(void);

/*  Monotonic milliseconds, and a sleep that survives signals. */
int64_t service_now_ms(void);
void service_sleep_ms(int ms);

/*  Looks `key` up in a msgpack map and returns its value, or NULL when
    `map` is not a map or has no such key. The result lives as long as
    `map`'s zone. */
const msgpack_object *service_map_get(const msgpack_object *map,
                                      const char *key);

/*  Reads the "id" field of a msgpack map and checks it is in 1..max.
    Returns the id, or 0 when the map does not hold one. */
uint64_t service_map_id(const msgpack_object *map, int max);

/*  One key and value of a payload map; `type` says which value counts. */
typedef struct {
    const char *key;
    enum { FIELD_UINT, FIELD_STR, FIELD_DOUBLE } type;
    uint64_t u;
    const char *s;
    double d;
} service_field_t;

/*  Packs the `n` fields as one msgpack map into `buf` (cleared first).
    Returns 0, or -1 when out of memory. */
int service_pack_map(msgpack_sbuffer *buf, const service_field_t *fields,
                     int n);

/*  Decodes a message event's payload into `in` and returns its "id"
    (1..max), or 0 when the payload is not a map with such an id. On
    success *map (if not NULL) is the decoded map, valid as long as `in`
    is not reused. */
uint64_t service_event_id(const zmesh_event_t *event, int max,
                          msgpack_unpacked *in, const msgpack_object **map);

#endif
