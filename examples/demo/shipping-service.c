/*  shipping-service.c - the end of the demo's order flow, and the service
    that must neither miss a payment nor ship an order twice, even when it
    is down for a while.

    It takes payments.*.completed as the durable consumer "shipping"
    (zmesh_agent_subscribe_durable), whose position mesh-relay keeps: while
    this service is down the relay stores the payments it misses; when it
    comes back it gets those first, from the relay, then the new ones live
    from payment-service, with no gap and no duplicate at the switch. It
    answers each payment with shipments.<id>.dispatched, a msgpack map
    {"id", "carrier", "status"}, and then acknowledges the payment
    (zmesh_agent_ack), which tells the relay how far it got.

    Shipping an order is only done once it is remembered: the orders
    shipped are recorded in --state FILE (one id a line; a real service
    would use its database), read back at start, and a payment is
    acknowledged only after its order is recorded. So a service that dies
    in between gets that payment again, finds the order in its record and
    does not ship it twice. The demo expects no such repeat, so each one
    is counted and reported as a duplicate.

    Nobody in the flow needs shipments, so by default it waits for no
    subscriber; the demo asks it to wait for mesh-tap (--min-subscribers 1).
    It prints "shipped order ID (live)" or "(from the relay, #RSEQ)" for
    each order, and exits once every order (--orders) is shipped, by this
    run or earlier ones, at the deadline, or on SIGTERM or SIGINT. Its last
    three lines are what run-demo.sh reads:
        shipping-service: dispatched X of N shipments
        shipping-service: this run shipped Y, Z caught up from the relay
        shipping-service: duplicates D, lost L
*/
#include "service.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*  The durable consumer's name: the relay keeps its position under it,
    so every run of this service must use the same one. */
#define S_CONSUMER "shipping"

/*  How long one recv may wait, so a SIGTERM is acted on soon. */
#define S_STEP_MS 100

typedef struct {
    unsigned char *shipped; /* shipped[id]: order id shipped, by any run */
    int total;              /* orders shipped, by this run and earlier */
    int this_run;           /* ... by this run */
    int from_relay;         /* ... of which came from the relay */
    int duplicates;         /* payments for orders shipped already */
    uint64_t lost;          /* events reported missing (gaps, lost) */
    FILE *state;            /* the record of orders shipped, or NULL */
} s_shipping_t;

/*  Reads the record of orders shipped by earlier runs, then opens it to
    add to. Without --state, every run starts with none. */
static int
s_state_open(s_shipping_t *self, const char *path, int orders)
{
    if (path == NULL)
        return 0;
    FILE *file = fopen(path, "r");
    if (file == NULL && errno != ENOENT) {
        fprintf(stderr, "shipping-service: cannot read %s: %s\n", path,
                strerror(errno));
        return -1;
    }
    unsigned long long id;
    while (file && fscanf(file, "%llu", &id) == 1)
        if (id >= 1 && id <= (unsigned long long)orders && !self->shipped[id]) {
            self->shipped[id] = 1;
            self->total++;
        }
    if (file)
        fclose(file);
    self->state = fopen(path, "a");
    if (self->state == NULL) {
        fprintf(stderr, "shipping-service: cannot write %s: %s\n", path,
                strerror(errno));
        return -1;
    }
    return 0;
}

/*  Records order `id` as shipped before its payment is acknowledged. */
static int
s_state_add(s_shipping_t *self, uint64_t id)
{
    if (self->state == NULL)
        return 0;
    if (fprintf(self->state, "%" PRIu64 "\n", id) < 0 ||
        fflush(self->state) != 0) {
        fprintf(stderr,
                "shipping-service: cannot record order %" PRIu64 ": %s\n", id,
                strerror(errno));
        return -1;
    }
    return 0;
}

static int
s_ship(zmesh_agent_t *agent, uint64_t id, msgpack_sbuffer *out)
{
    service_field_t fields[] = {
        {.key = "id", .type = FIELD_UINT, .u = id},
        {.key = "carrier", .type = FIELD_STR, .s = id % 2 ? "rail" : "road"},
        {.key = "status", .type = FIELD_STR, .s = "dispatched"},
    };
    char topic[64];
    snprintf(topic, sizeof topic, "shipments.%" PRIu64 ".dispatched", id);
    if (service_pack_map(out, fields, 3) != 0)
        return ZMESH_ENOMEM;
    int rc = zmesh_agent_publish(agent, topic, out->data, out->size);
    if (rc < 0)
        fprintf(stderr, "shipping-service: publish %s: %s\n", topic,
                zmesh_strerror(rc));
    return rc;
}

static void
s_ack(zmesh_agent_t *agent, const zmesh_event_t *payment)
{
    int rc = zmesh_agent_ack(agent, payment);
    if (rc < 0)
        fprintf(stderr, "shipping-service: ack %s: %s\n",
                zmesh_event_topic(payment), zmesh_strerror(rc));
}

/*  One payment: ship its order unless that was done already, record it,
    acknowledge the payment. Returns -1 when the service cannot go on. */
static int
s_on_payment(s_shipping_t *self, zmesh_agent_t *agent, int orders,
             const zmesh_event_t *payment, msgpack_unpacked *in,
             msgpack_sbuffer *out)
{
    uint64_t id = service_event_id(payment, orders, in, NULL);
    if (id == 0) {
        /* Acknowledged all the same: it would only come back as bad. */
        fprintf(stderr,
                "shipping-service: ignoring a malformed payment on "
                "%s\n",
                zmesh_event_topic(payment));
        s_ack(agent, payment);
        return 0;
    }
    if (self->shipped[id]) {
        self->duplicates++;
        printf("shipping-service: order %" PRIu64 " paid again (delivery %u%s)"
               ": shipped already, not shipping it twice\n",
               id, zmesh_event_deliveries(payment),
               zmesh_event_redelivered(payment) ? ", redelivered" : "");
        s_ack(agent, payment);
        return 0;
    }
    /* Not acknowledged when this fails: the relay gives it again. */
    if (s_ship(agent, id, out) < 0 || s_state_add(self, id) != 0)
        return -1;
    self->shipped[id] = 1;
    self->total++;
    self->this_run++;
    /* Only what came from the relay has a relay sequence. */
    uint64_t rseq = zmesh_event_stream_sequence(payment);
    if (rseq > 0) {
        self->from_relay++;
        printf("shipping-service: shipped order %" PRIu64
               " (from the relay, #%" PRIu64 ")\n",
               id, rseq);
    } else
        printf("shipping-service: shipped order %" PRIu64 " (live)\n", id);
    fflush(stdout); /* run-demo.sh follows these lines as they come */
    s_ack(agent, payment);
    return 0;
}

/*  Takes payments until every order is shipped, the deadline passes or a
    stop signal comes. */
static void
s_run(s_shipping_t *self, const service_options_t *opts, zmesh_agent_t *agent,
      int64_t deadline_ms)
{
    msgpack_sbuffer out;
    msgpack_sbuffer_init(&out);
    msgpack_unpacked in;
    msgpack_unpacked_init(&in);

    while (self->total < opts->orders && !service_stop_requested()) {
        int64_t left = deadline_ms - service_now_ms();
        if (left <= 0)
            break;
        const zmesh_event_t *event = NULL;
        int rc = zmesh_agent_recv(
            agent, left < S_STEP_MS ? (int)left : S_STEP_MS, &event);
        if (rc == ZMESH_EAGAIN)
            continue;
        if (rc < 0) {
            fprintf(stderr, "shipping-service: recv: %s\n", zmesh_strerror(rc));
            break;
        }
        zmesh_event_type_t type = zmesh_event_type(event);
        if (type == ZMESH_EVENT_MESSAGE) {
            if (s_on_payment(self, agent, opts->orders, event, &in, &out) != 0)
                break;
        } else if (type == ZMESH_EVENT_GAP || type == ZMESH_EVENT_LOST) {
            /* Payments that neither the live path nor the relay has: the
               relay could not store them (a gap), or deleted them before
               this consumer read them (lost, retention). Never silent. */
            uint64_t missing =
                zmesh_event_gap_last(event) - zmesh_event_sequence(event) + 1;
            self->lost += missing;
            fprintf(stderr,
                    "shipping-service: %" PRIu64 " payment(s) on %s "
                    "lost\n",
                    missing, zmesh_event_topic(event));
        }
    }

    msgpack_unpacked_destroy(&in);
    msgpack_sbuffer_destroy(&out);
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
    /* The demo stops this service midway with SIGTERM: finish the payment
       in hand and leave cleanly, so the relay has every acknowledgement. */
    service_stop_on_signals();

    s_shipping_t self = {0};
    self.shipped = calloc((size_t)opts.orders + 1, 1);
    if (self.shipped == NULL) {
        fprintf(stderr, "shipping-service: out of memory\n");
        return 1;
    }
    if (s_state_open(&self, opts.state, opts.orders) != 0) {
        free(self.shipped);
        return 1;
    }
    int earlier = self.total;
    if (earlier > 0)
        printf("shipping-service: %d order(s) shipped before this run\n",
               earlier);

    /* A durable subscription is made on a running agent. The defaults
       suit the demo: a new consumer starts with everything the relay
       holds; a payment not acknowledged within 30 s comes again. */
    zmesh_agent_t *agent = NULL;
    int ok = service_start(&opts, NULL, "shipments.*.dispatched", &agent) == 0;
    if (ok) {
        zmesh_durable_options_t durable = {0};
        int rc = zmesh_agent_subscribe_durable(
            agent, S_CONSUMER, "payments.*.completed", &durable);
        if (rc < 0) {
            fprintf(stderr, "shipping-service: cannot subscribe as %s: %s\n",
                    S_CONSUMER, zmesh_strerror(rc));
            ok = 0;
        }
    }
    if (ok && service_wait_subscribers(&opts, agent, "shipments.1.dispatched",
                                       deadline) == 0)
        s_run(&self, &opts, agent, deadline);

    /* Destroy hands the last acknowledgements to the relay. */
    zmesh_agent_destroy(&agent);
    if (self.state)
        fclose(self.state);
    free(self.shipped);
    if (service_stop_requested())
        printf("shipping-service: stopped by a signal\n");
    printf("shipping-service: dispatched %d of %d shipments\n", self.total,
           opts.orders);
    printf("shipping-service: this run shipped %d, %d caught up from the "
           "relay\n",
           self.this_run, self.from_relay);
    printf("shipping-service: duplicates %d, lost %" PRIu64 "\n",
           self.duplicates, self.lost);
    int clean = ok && self.duplicates == 0 && self.lost == 0;
    int finished = self.total == opts.orders || service_stop_requested();
    return clean && finished ? 0 : 1;
}
