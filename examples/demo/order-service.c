/*  order-service.c - the start of the demo's order flow.

    Publishes orders.<id>.created for ids 1..N, each payload a msgpack map
    {"id", "item", "qty", "amount"}, paced --pace-ms apart (20 ms by
    default). It waits until its subscribers (payment-service, and mesh-tap
    when the demo runs one) are connected before the first order, so none
    is lost, and exits by itself once all are sent or the deadline passes.
    Its last line, "order-service: created X of N orders", is what
    run-demo.sh reads.
*/
#include "service.h"

#include <stdio.h>

static const struct {
    const char *item;
    double price;
} s_catalogue[] = {
    {"keyboard", 49.90}, {"mouse", 19.50},  {"monitor", 189.00},
    {"cable", 7.25},     {"webcam", 59.00},
};
#define CATALOGUE_SIZE (sizeof s_catalogue / sizeof s_catalogue[0])

int
main(int argc, char **argv)
{
    service_options_t opts = {.name = "order-service",
                              .orders = 10,
                              .timeout_ms = 30000,
                              .min_subscribers = 1,
                              .pace_ms = 20};
    if (service_parse_args(&opts, argc, argv) != 0)
        return 2;
    int64_t deadline = service_now_ms() + opts.timeout_ms;

    zmesh_agent_t *agent = NULL;
    if (service_start(&opts, NULL, "orders.*.created", &agent) != 0)
        return 1;
    if (service_wait_subscribers(&opts, agent, "orders.1.created", deadline) !=
        0) {
        zmesh_agent_destroy(&agent);
        printf("order-service: created 0 of %d orders\n", opts.orders);
        return 1;
    }

    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    int created = 0;
    for (int id = 1; id <= opts.orders && service_now_ms() < deadline; id++) {
        size_t pick = (size_t)id % CATALOGUE_SIZE;
        int qty = 1 + id % 3;
        service_field_t fields[] = {
            {.key = "id", .type = FIELD_UINT, .u = (uint64_t)id},
            {.key = "item", .type = FIELD_STR, .s = s_catalogue[pick].item},
            {.key = "qty", .type = FIELD_UINT, .u = (uint64_t)qty},
            {.key = "amount",
             .type = FIELD_DOUBLE,
             .d = qty * s_catalogue[pick].price},
        };
        char topic[64];
        snprintf(topic, sizeof topic, "orders.%d.created", id);
        if (service_pack_map(&buf, fields, 4) != 0) {
            fprintf(stderr, "order-service: out of memory\n");
            break;
        }
        int rc = zmesh_agent_publish(agent, topic, buf.data, buf.size);
        if (rc < 0) {
            fprintf(stderr, "order-service: publish %s: %s\n", topic,
                    zmesh_strerror(rc));
            break;
        }
        created++;
        if (id < opts.orders)
            service_sleep_ms(opts.pace_ms);
    }
    msgpack_sbuffer_destroy(&buf);

    /* destroy lingers until the queued orders are on their way. */
    zmesh_agent_destroy(&agent);
    printf("order-service: created %d of %d orders\n", created, opts.orders);
    return created == opts.orders ? 0 : 1;
}
