/*  payment-service.c - the middle of the demo's order flow.

    Subscribes to orders.*.created and answers each new order with
    payments.<id>.completed, a msgpack map {"id", "amount", "status"} that
    carries the order's amount over. It waits for its own subscribers
    (shipping-service, and mesh-tap when the demo runs one) before it
    handles the first order; orders that arrive meanwhile queue up. It exits
    after --orders distinct orders or at the deadline, and its last line,
    "payment-service: completed X of N payments", is what run-demo.sh reads.
*/
#include "service.h"

#include <stdio.h>

static uint64_t
s_pay(const msgpack_object *order, int orders, char *topic, size_t topic_size,
      msgpack_sbuffer *out)
{
    uint64_t id = service_map_id(order, orders);
    const msgpack_object *amount = service_map_get(order, "amount");
    if (id == 0 || amount == NULL)
        return 0;
    double value;
    switch (amount->type) {
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: value = amount->via.f64; break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        value = (double)amount->via.u64;
        break;
    default: return 0;
    }
    service_field_t fields[] = {
        {.key = "id", .type = FIELD_UINT, .u = id},
        {.key = "amount", .type = FIELD_DOUBLE, .d = value},
        {.key = "status", .type = FIELD_STR, .s = "completed"},
    };
    snprintf(topic, topic_size, "payments.%llu.completed",
             (unsigned long long)id);
    return service_pack_map(out, fields, 3) == 0 ? id : 0;
}

int
main(int argc, char **argv)
{
    service_options_t opts = {.name = "payment-service",
                              .orders = 10,
                              .timeout_ms = 30000,
                              .min_subscribers = 1};
    if (service_parse_args(&opts, argc, argv) != 0)
        return 2;
    int64_t deadline = service_now_ms() + opts.timeout_ms;

    zmesh_agent_t *agent = NULL;
    if (service_start(&opts, "orders.*.created", "payments.*.completed",
                      &agent) != 0)
        return 1;
    int completed = 0;
    if (service_wait_subscribers(&opts, agent, "payments.1.completed",
                                 deadline) == 0)
        completed = service_react(&opts, agent, deadline, s_pay);

    zmesh_agent_destroy(&agent);
    printf("payment-service: completed %d of %d payments\n", completed,
           opts.orders);
    return completed == opts.orders ? 0 : 1;
}
