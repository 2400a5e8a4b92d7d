/*  payment-service.c - the middle of the demo's order flow.

    Subscribes to orders.*.created and answers each new order with
    payments.<id>.completed, a msgpack map {"id", "amount", "status"} that
    carries the order's amount over.

    A payment is what shipping-service acts on, and shipping-service may be
    down when it is made (the demo stops it for a while). So each payment
    is published with zmesh_agent_publish_confirmed: the demo's mesh-relay
    stores payments.> on disk and confirms each one it stored with a
    ZMESH_EVENT_CONFIRM, and only then is the payment safe from a
    subscriber that is away. Until its confirm comes, the agent keeps a
    copy and gives it to the relay again if the relay missed it.

    It waits for its subscribers (shipping-service and mesh-relay, and
    mesh-tap when the demo runs one) before it handles the first order;
    orders that arrive meanwhile queue up. It prints "paid order ID" for
    each payment, and exits once --orders distinct orders are paid for and
    every payment's confirm (or failure) is in, or at the deadline. Its
    last two lines are what run-demo.sh reads:
        payment-service: completed X of N payments
        payment-service: confirmed X of N payments (F not stored)
*/
#include "service.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct {
    int paid;      /* distinct orders answered with a payment */
    int confirmed; /* payments a relay confirmed it stored */
    int failed;    /* payments no relay stored: timed out or refused */
} s_tally_t;

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

/*  The outcome of one confirmed publish: exactly one comes per payment. */
static void
s_confirm(const zmesh_event_t *event, s_tally_t *tally)
{
    int status = zmesh_event_status(event);
    if (status == 0) {
        tally->confirmed++;
        return;
    }
    /* ZMESH_ETIMEDOUT (no relay stored it in time) or ZMESH_EFULL (the
       relay could not store it, e.g. a full disk): the reason says more. */
    tally->failed++;
    fprintf(stderr, "payment-service: %s was not stored: %s (%s)\n",
            zmesh_event_topic(event), zmesh_strerror(status),
            zmesh_event_reason(event));
}

/*  Pays for each new order until all are paid and confirmed, or the
    deadline. A repeated order is paid for once. */
static void
s_run(const service_options_t *opts, zmesh_agent_t *agent, int64_t deadline_ms,
      s_tally_t *tally)
{
    unsigned char *paid = calloc((size_t)opts->orders + 1, 1);
    if (paid == NULL) {
        fprintf(stderr, "payment-service: out of memory\n");
        return;
    }
    msgpack_sbuffer out;
    msgpack_sbuffer_init(&out);
    msgpack_unpacked in;
    msgpack_unpacked_init(&in);

    /* Not done at the last payment: its confirm is still to come. */
    while (tally->paid < opts->orders ||
           tally->confirmed + tally->failed < tally->paid) {
        int64_t left = deadline_ms - service_now_ms();
        if (left <= 0)
            break;
        const zmesh_event_t *event = NULL;
        int rc = zmesh_agent_recv(agent, (int)left, &event);
        if (rc == ZMESH_EAGAIN)
            continue;
        if (rc < 0) {
            fprintf(stderr, "payment-service: recv: %s\n", zmesh_strerror(rc));
            break;
        }
        if (zmesh_event_type(event) == ZMESH_EVENT_CONFIRM) {
            s_confirm(event, tally);
            continue;
        }
        if (zmesh_event_type(event) != ZMESH_EVENT_MESSAGE)
            continue;

        const msgpack_object *order = NULL;
        char topic[ZMESH_TOPIC_MAX + 1];
        uint64_t id = service_event_id(event, opts->orders, &in, &order);
        if (id != 0)
            id = s_pay(order, opts->orders, topic, sizeof topic, &out);
        if (id == 0) {
            fprintf(stderr,
                    "payment-service: ignoring a malformed order on "
                    "%s\n",
                    zmesh_event_topic(event));
            continue;
        }
        if (paid[id])
            continue;
        rc = zmesh_agent_publish_confirmed(agent, topic, out.data, out.size,
                                           NULL);
        if (rc < 0) {
            fprintf(stderr, "payment-service: publish %s: %s\n", topic,
                    zmesh_strerror(rc));
            break;
        }
        paid[id] = 1;
        tally->paid++;
        printf("payment-service: paid order %llu\n", (unsigned long long)id);
        fflush(stdout); /* run-demo.sh follows these lines as they come */
    }

    msgpack_unpacked_destroy(&in);
    msgpack_sbuffer_destroy(&out);
    free(paid);
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
    s_tally_t tally = {0};
    if (service_wait_subscribers(&opts, agent, "payments.1.completed",
                                 deadline) == 0)
        s_run(&opts, agent, deadline, &tally);

    zmesh_agent_destroy(&agent);
    printf("payment-service: completed %d of %d payments\n", tally.paid,
           opts.orders);
    printf("payment-service: confirmed %d of %d payments (%d not stored)\n",
           tally.confirmed, opts.orders, tally.failed);
    return tally.paid == opts.orders && tally.confirmed == opts.orders ? 0 : 1;
}
