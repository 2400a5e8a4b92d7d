/*  service.h - what the three demo services share: their command line,
    starting an agent, waiting for subscribers, clocks and reading fields
    of a msgpack map. Each service keeps its own business logic. */
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

/*  Builds the event a service publishes in answer to one it received: the
    payload `in` (a decoded msgpack map) becomes `topic` and `out`. Returns
    the order id it handled (1..orders), or 0 to ignore the event. */
typedef uint64_t(service_react_fn)(const msgpack_object *in, int orders,
                                   char *topic, size_t topic_size,
                                   msgpack_sbuffer *out);

/*  The loop of a service in the middle of the flow: receives events until
    opts->orders distinct orders were handled or `deadline_ms` passes, and
    publishes what `react` builds for each. A repeated order id is counted
    once. Returns how many orders were handled. */
int service_react(const service_options_t *opts, zmesh_agent_t *agent,
                  int64_t deadline_ms, service_react_fn *react);

#endif
