/*  shipping-service.c - the end of the demo's order flow.

    Subscribes to payments.*.completed and answers each new payment with
    shipments.<id>.dispatched, a msgpack map {"id", "carrier", "status"}.
    Nobody in the flow needs shipments, so by default it waits for no
    subscriber; the demo asks it to wait for mesh-tap (--min-subscribers 1)
    so the tap sees every shipment. It exits after --orders distinct
    payments or at the deadline; its last line, "shipping-service:
    dispatched X of N shipments", is what run-demo.sh reads.
*/
#include "service.h"

#include <stdio.h>

static uint64_t
s_ship(const msgpack_object *payment, int orders, char *topic,
       size_t topic_size, msgpack_sbuffer *out)
{
    uint64_t id = service_map_id(payment, orders);
    if (id == 0)
        return 0;
    service_field_t fields[] = {
        {.key = "id", .type = FIELD_UINT, .u = id},
        {.key = "carrier", .type = FIELD_STR, .s = id % 2 ? "rail" : "road"},
        {.key = "status", .type = FIELD_STR, .s = "dispatched"},
    };
    snprintf(topic, topic_size, "shipments.%llu.dispatched",
             (unsigned long long)id);
    return service_pack_map(out, fields, 3) == 0 ? id : 0;
}

int
main(int argc, char **argv)
{
    service_options_t opts = {.name = "shipping-service",
                              .orders = 10,
                              .timeout_ms = 30000,
                              .min_subscribers = 0};
    if (service_parse_args(&opts, argc, argv) != 0)
        return 2;
    int64_t deadline = service_now_ms() + opts.timeout_ms;

    zmesh_agent_t *agent = NULL;
    if (service_start(&opts, "payments.*.completed", "shipments.*.dispatched",
                      &agent) != 0)
        return 1;
    int dispatched = 0;
    if (service_wait_subscribers(&opts, agent, "shipments.1.dispatched",
                                 deadline) == 0)
        dispatched = service_react(&opts, agent, deadline, s_ship);

    zmesh_agent_destroy(&agent);
    printf("shipping-service: dispatched %d of %d shipments\n", dispatched,
           opts.orders);
    return dispatched == opts.orders ? 0 : 1;
}
