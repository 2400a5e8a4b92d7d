/*  oldpeer.c - a subscriber that speaks the protocol by hand, for
    test_batch.py: it joins an agent with a HELLO that says it reads batch
    frames of up to N bytes (--batch N, also its ZMQ_MAXMSGSIZE, as an
    agent's) or none (--batch 0, as an agent that predates them), and
    tail frames (--tail 1) or not (--tail 0, the default), subscribes to
    one topic with its sync token, and reads the data plane itself, so it
    can tell single event frames from batch frames and tail frames. After
    --count events it reads on for --after-ms, for tail frames. It prints
    one JSON line: frames of one event, batch frames, events in all, tail
    frames and the last one's sequence, frames it could not decode, and
    whether the sequences ran 1..N without a hole. Loopback only; bounded
    by --timeout-ms.
*/
#include "clock.h"
#include "codec.h"

#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
main(int argc, char **argv)
{
    const char *mesh = NULL, *target = NULL, *topic = NULL;
    long count = 0, timeout_ms = 10000, batch = 0, tail = 0, after_ms = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--mesh") == 0)
            mesh = argv[i + 1];
        else if (strcmp(argv[i], "--target") == 0)
            target = argv[i + 1];
        else if (strcmp(argv[i], "--topic") == 0)
            topic = argv[i + 1];
        else if (strcmp(argv[i], "--count") == 0)
            count = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--batch") == 0)
            batch = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--timeout-ms") == 0)
            timeout_ms = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--tail") == 0)
            tail = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--after-ms") == 0)
            after_ms = atol(argv[i + 1]);
    }
    if (!mesh || !target || !topic || count <= 0 || timeout_ms <= 0 ||
        batch < 0 || tail < 0 || tail > 1 || after_ms < 0) {
        fprintf(stderr, "usage: zmesh-oldpeer --mesh M --target "
                        "tcp://127.0.0.1:PORT --topic T --count N "
                        "[--batch BYTES] [--tail 0|1] [--after-ms MS] "
                        "[--timeout-ms MS]\n");
        return 2;
    }
    zsys_handler_set(NULL);
    srand((unsigned)getpid());
    uint8_t id[ZMESH__ID_SIZE];
    for (int i = 0; i < ZMESH__ID_SIZE; i++)
        id[i] = (uint8_t)rand();

    // Where the agent's DEALER to us connects, and answers our HELLO.
    zsock_t *router = zsock_new(ZMQ_ROUTER);
    zsock_t *xpub = zsock_new(ZMQ_XPUB); // announced, publishes nothing
    zsock_t *dealer = zsock_new(ZMQ_DEALER);
    zsock_t *sub = zsock_new(ZMQ_SUB);
    if (!router || !xpub || !dealer || !sub ||
        zsock_bind(router, "tcp://127.0.0.1:*") < 0 ||
        zsock_bind(xpub, "tcp://127.0.0.1:*") < 0)
        return 1;
    char endpoint[256], data_endpoint[256];
    snprintf(endpoint, sizeof endpoint, "%s", zsock_endpoint(router));
    snprintf(data_endpoint, sizeof data_endpoint, "%s", zsock_endpoint(xpub));
    uint8_t routing[1 + ZMESH__ID_SIZE] = {0x01};
    memcpy(routing + 1, id, ZMESH__ID_SIZE);
    zmq_setsockopt(zsock_resolve(dealer), ZMQ_ROUTING_ID, routing,
                   sizeof routing);
    zsock_set_linger(dealer, 0);
    zsock_connect(dealer, "%s", target);

    char *wanted = (char *)topic;
    zmesh__msg_t hello = {.type = ZMESH__MSG_HELLO,
                          .name = batch ? "newpeer" : "oldpeer",
                          .mesh = (char *)mesh,
                          .endpoint = endpoint,
                          .data_endpoint = data_endpoint,
                          .subs = &wanted,
                          .subs_count = 1,
                          .subs_generation = 1,
                          .ask = 1,
                          .batch = (uint64_t)batch,
                          .tail = (uint64_t)tail};
    memcpy(hello.sender, id, ZMESH__ID_SIZE);
    void *bytes;
    size_t size;
    if (zmesh__msg_encode(&hello, &bytes, &size) != 0)
        return 1;
    zmq_send(zsock_resolve(dealer), bytes, size, 0);
    free(bytes);

    // The agent's HELLO names its data endpoint.
    int64_t deadline = zmesh__clock_ms() + timeout_ms;
    char agent_data[256] = "";
    while (!agent_data[0] && zmesh__clock_ms() < deadline) {
        zmq_pollitem_t item = {zsock_resolve(router), 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, 100) <= 0)
            continue;
        zmsg_t *msg = zmsg_recv(router);
        zframe_t *body = msg ? zmsg_last(msg) : NULL;
        zmesh__msg_t got;
        if (body && zmesh__msg_decode(zframe_data(body), zframe_size(body),
                                      &got) == 0) {
            if (got.type == ZMESH__MSG_HELLO && got.data_endpoint)
                snprintf(agent_data, sizeof agent_data, "%s",
                         got.data_endpoint);
            zmesh__msg_clear(&got);
        }
        zmsg_destroy(&msg);
    }
    if (!agent_data[0]) {
        fprintf(stderr, "oldpeer: no HELLO from the agent\n");
        return 1;
    }

    // The topic's exact filter (topic and NUL), then the sync token of
    // generation 1 (proto/wire.md#sync-token), which tells the agent our
    // subscription is in place.
    size_t topic_size = strlen(topic);
    uint8_t filter[ZMESH_TOPIC_MAX + 1];
    memcpy(filter, topic, topic_size);
    filter[topic_size] = 0;
    zmq_setsockopt(zsock_resolve(sub), ZMQ_SUBSCRIBE, filter, topic_size + 1);
    uint8_t token[1 + ZMESH__ID_SIZE + 8] = {0xff};
    memcpy(token + 1, id, ZMESH__ID_SIZE);
    token[sizeof token - 1] = 1;
    zmq_setsockopt(zsock_resolve(sub), ZMQ_SUBSCRIBE, token, sizeof token);
    if (batch > 0) {
        int64_t max = batch;
        zmq_setsockopt(zsock_resolve(sub), ZMQ_MAXMSGSIZE, &max, sizeof max);
    }
    zsock_connect(sub, "%s", agent_data);

    long singles = 0, batches = 0, events = 0, bad = 0, tails = 0;
    size_t largest = 0; // frame
    uint64_t next = 1, tail_last = 0;
    bool in_order = true;
    int64_t until = deadline; // after the last event: after_ms more
    while (zmesh__clock_ms() < until) {
        if (events >= count && until == deadline) {
            until = zmesh__clock_ms() + after_ms;
            if (until > deadline)
                until = deadline;
        }
        zmq_pollitem_t item = {zsock_resolve(sub), 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, 100) <= 0)
            continue;
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, zsock_resolve(sub), 0) < 0) {
            zmq_msg_close(&msg);
            continue;
        }
        if (zmq_msg_size(&msg) > largest)
            largest = zmq_msg_size(&msg);
        zmesh__frame_t frame;
        zmesh__batch_t walk;
        if (zmesh__frame_decode(zmq_msg_data(&msg), zmq_msg_size(&msg),
                                &frame) == 0) {
            singles++;
            events++;
            in_order = in_order && frame.sequence == next;
            next = frame.sequence + 1;
        } else if (zmesh__batch_decode(zmq_msg_data(&msg), zmq_msg_size(&msg),
                                       &walk) == 0 &&
                   (walk.frame.flags & ZMESH__FRAME_TAIL)) {
            tails++;
            tail_last = walk.frame.sequence;
        } else if (zmesh__batch_decode(zmq_msg_data(&msg), zmq_msg_size(&msg),
                                       &walk) == 0) {
            batches++;
            do {
                events++;
                in_order = in_order && walk.frame.sequence == next;
                next = walk.frame.sequence + 1;
            } while (zmesh__batch_next(&walk));
        } else
            bad++;
        zmq_msg_close(&msg);
    }
    printf("{\"singles\":%ld,\"batches\":%ld,\"events\":%ld,\"bad\":%ld,"
           "\"tails\":%ld,\"tail_last\":%llu,"
           "\"largest\":%zu,\"in_order\":%s}\n",
           singles, batches, events, bad, tails, (unsigned long long)tail_last,
           largest, in_order ? "true" : "false");
    fflush(stdout);
    zsock_destroy(&sub);
    zsock_destroy(&dealer);
    zsock_destroy(&xpub);
    zsock_destroy(&router);
    return 0;
}
