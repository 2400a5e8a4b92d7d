/*  garbage.c - a hostile peer for test_garbage.py. It throws malformed
    beacons at the loopback broadcast address, malformed control messages
    at an agent's ROUTER, then poses as a peer (a valid HELLO announcing a
    data endpoint that publishes everything), waits until the agent has
    subscribed, and publishes malformed event frames, an oversized frame,
    and finally --valid well-formed events on "evil.ok" with sequences
    1..N. The test then checks that the agent dropped and counted each bad
    thing and delivered exactly the good events. Loopback only; bounded.
    Prints one JSON line with what it sent.
*/
#include "beacon.h"
#include "codec.h"

#include <arpa/inet.h>
#include <czmq.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int s_bad_beacons, s_foreign_beacons, s_bad_control, s_bad_frames;

static void
s_beacons(const char *mesh, int port)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &on, sizeof on);
    struct sockaddr_in to = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.255.255.255", &to.sin_addr);
    uint8_t buf[2048];
    // Random junk of every short length, including empty datagrams.
    for (int i = 0; i < 40; i++) {
        size_t size = (size_t)(i % 40);
        for (size_t j = 0; j < size; j++)
            buf[j] = (uint8_t)rand();
        sendto(fd, buf, size, 0, (struct sockaddr *)&to, sizeof to);
        s_bad_beacons++;
    }
    // Right size, wrong magic; a valid beacon with port 0 and no LEAVING
    // flag; one far larger than any beacon.
    zmesh__beacon_t beacon = {
        .version = 1, .port = 0, .mesh_hash = zmesh__mesh_hash(mesh)};
    memset(beacon.id, 0xee, sizeof beacon.id);
    zmesh__beacon_encode(&beacon, buf);
    sendto(fd, buf, ZMESH__BEACON_SIZE, 0, (struct sockaddr *)&to, sizeof to);
    s_bad_beacons++;
    buf[0] = 'X';
    sendto(fd, buf, ZMESH__BEACON_SIZE, 0, (struct sockaddr *)&to, sizeof to);
    s_bad_beacons++;
    memset(buf, 'Z', sizeof buf);
    sendto(fd, buf, sizeof buf, 0, (struct sockaddr *)&to, sizeof to);
    s_bad_beacons++;
    // Well-formed beacons of another protocol version and another mesh.
    beacon.port = 9;
    zmesh__beacon_encode(&beacon, buf);
    buf[4] = 2;
    sendto(fd, buf, ZMESH__BEACON_SIZE, 0, (struct sockaddr *)&to, sizeof to);
    s_foreign_beacons++;
    beacon.mesh_hash = zmesh__mesh_hash("some-other-mesh");
    zmesh__beacon_encode(&beacon, buf);
    sendto(fd, buf, ZMESH__BEACON_SIZE, 0, (struct sockaddr *)&to, sizeof to);
    s_foreign_beacons++;
    close(fd);
}

// Well-formed beacons of this mesh from `count` made-up agents whose
// endpoint answers nobody: each would cost the agent a socket, so it must
// take only as many as its cap allows and count the rest.
static void
s_forge_beacons(const char *mesh, int port, int count)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &on, sizeof on);
    struct sockaddr_in to = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.255.255.255", &to.sin_addr);
    zmesh__beacon_t beacon = {
        .version = 1, .port = 9, .mesh_hash = zmesh__mesh_hash(mesh)};
    uint8_t buf[ZMESH__BEACON_SIZE];
    for (int i = 0; i < count; i++) {
        for (int b = 0; b < 16; b++)
            beacon.id[b] = (uint8_t)rand();
        zmesh__beacon_encode(&beacon, buf);
        sendto(fd, buf, sizeof buf, 0, (struct sockaddr *)&to, sizeof to);
        // Let the receiver's socket buffer drain: on a loaded CI machine
        // the agent's control thread may not run for milliseconds, and a
        // burst beyond the buffer is dropped by the kernel, not the agent.
        if (i % 20 == 19) {
            struct timespec pause = {0, 3000000};
            nanosleep(&pause, NULL);
        }
    }
    close(fd);
}

static void
s_send_bytes(zsock_t *dealer, const void *data, size_t size)
{
    zmq_send(zsock_resolve(dealer), data, size, 0);
}

static void
s_control(zsock_t *dealer)
{
    uint8_t buf[512];
    for (int i = 0; i < 30; i++) {
        size_t size = (size_t)(rand() % 200);
        for (size_t j = 0; j < size; j++)
            buf[j] = (uint8_t)rand();
        s_send_bytes(dealer, buf, size);
        s_bad_control++;
    }
    // [2, 1, id, {}]: protocol version 2.
    uint8_t v2[] = {0x94, 0x02, 0x01, 0xc4, 0x10, 1,  2,  3,  4,  5,  6,
                    7,    8,    9,    10,   11,   12, 13, 14, 15, 16, 0x80};
    s_send_bytes(dealer, v2, sizeof v2);
    s_bad_control++;
    // Version 1, unknown type 99.
    uint8_t unknown[sizeof v2];
    memcpy(unknown, v2, sizeof v2);
    unknown[1] = 0x01;
    unknown[2] = 99;
    s_send_bytes(dealer, unknown, sizeof unknown);
    s_bad_control++;
    // A two-frame message.
    zmq_send(zsock_resolve(dealer), "a", 1, ZMQ_SNDMORE);
    zmq_send(zsock_resolve(dealer), "b", 1, 0);
    s_bad_control++;
}

static int
s_frame(uint8_t *out, size_t cap, const uint8_t id[16], uint64_t sequence,
        const char *topic)
{
    // fixmap {"ok": true}
    const uint8_t payload[] = {0x81, 0xa2, 'o', 'k', 0xc3};
    return zmesh__frame_encode(topic, strlen(topic), id, sequence, 1, payload,
                               sizeof payload, out, cap);
}

static void
s_publish_garbage(void *xpub, const uint8_t id[16])
{
    uint8_t buf[512];
    int n;
    // No NUL after the topic within the limit.
    memset(buf, 'a', 300);
    zmq_send(xpub, buf, 300, 0);
    s_bad_frames++;
    // Empty topic.
    zmq_send(xpub, "\0\x93", 2, 0);
    s_bad_frames++;
    // Meta that is not an array, and sequence 0.
    zmq_send(xpub, "evil.bad\0\xc0\xc0", 11, 0);
    s_bad_frames++;
    // The encoder refuses sequence 0, so patch it in: topic, NUL, fixarray,
    // bin8 header, 16 id bytes, then the sequence as a positive fixint.
    n = s_frame(buf, sizeof buf, id, 1, "evil.bad");
    buf[strlen("evil.bad") + 1 + 1 + 2 + 16] = 0x00;
    zmq_send(xpub, buf, (size_t)n, 0);
    s_bad_frames++;
    // A valid frame with a trailing byte, and one cut short.
    n = s_frame(buf, sizeof buf, id, 1, "evil.bad");
    buf[n] = 0xc0;
    zmq_send(xpub, buf, (size_t)n + 1, 0);
    s_bad_frames++;
    zmq_send(xpub, buf, (size_t)n - 2, 0);
    s_bad_frames++;
    // A topic that breaks the syntax, in an otherwise valid frame.
    n = s_frame(buf, sizeof buf, id, 1, "evil..bad");
    zmq_send(xpub, buf, (size_t)n, 0);
    s_bad_frames++;
    // Random junk starting with a plausible topic.
    for (int i = 0; i < 20; i++) {
        memcpy(buf, "evil.x", 6);
        for (int j = 6; j < 80; j++)
            buf[j] = (uint8_t)rand();
        zmq_send(xpub, buf, 80, 0);
        s_bad_frames++;
    }
}

int
main(int argc, char **argv)
{
    const char *mesh = NULL, *target = NULL;
    int port = 0, valid = 10, forge = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--mesh") == 0)
            mesh = argv[i + 1];
        else if (strcmp(argv[i], "--beacon-port") == 0)
            port = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--target") == 0)
            target = argv[i + 1];
        else if (strcmp(argv[i], "--valid") == 0)
            valid = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--forge") == 0)
            forge = atoi(argv[i + 1]);
    }
    if (!mesh || !target || port <= 0) {
        fprintf(stderr, "usage: zmesh-garbage --mesh M --beacon-port P "
                        "--target tcp://127.0.0.1:PORT [--valid N] "
                        "[--forge N]\n");
        return 2;
    }
    zsys_handler_set(NULL);
    srand((unsigned)getpid());
    if (forge > 0) {
        s_forge_beacons(mesh, port, forge);
        printf("{\"forged_beacons\":%d}\n", forge);
        return 0;
    }
    s_beacons(mesh, port);

    uint8_t id[16];
    for (int i = 0; i < 16; i++)
        id[i] = (uint8_t)rand();
    uint8_t routing[17] = {0x01};
    memcpy(routing + 1, id, 16);
    zsock_t *dealer = zsock_new(ZMQ_DEALER);
    zmq_setsockopt(zsock_resolve(dealer), ZMQ_ROUTING_ID, routing,
                   sizeof routing);
    zsock_set_linger(dealer, 1000);
    zsock_connect(dealer, "%s", target);
    s_control(dealer);

    zsock_t *xpub_sock = zsock_new(ZMQ_XPUB);
    zsock_set_linger(xpub_sock, 2000);
    void *xpub = zsock_resolve(xpub_sock);
    // Verbose: the reconnected SUB's token must be seen even if it arrives
    // before the dropped connection's subscriptions are cleaned up.
    int verbose = 1;
    zmq_setsockopt(xpub, ZMQ_XPUB_VERBOSE, &verbose, sizeof verbose);
    zmq_bind(xpub, "tcp://127.0.0.1:*");
    char data_endpoint[256];
    size_t size = sizeof data_endpoint;
    zmq_getsockopt(xpub, ZMQ_LAST_ENDPOINT, data_endpoint, &size);

    char *everything = ">";
    zmesh__msg_t hello = {.type = ZMESH__MSG_HELLO,
                          .name = "evil",
                          .mesh = (char *)mesh,
                          .endpoint = "tcp://127.0.0.1:9",
                          .data_endpoint = data_endpoint,
                          .pubs = &everything,
                          .pubs_count = 1};
    memcpy(hello.sender, id, 16);
    void *bytes;
    size_t bytes_size;
    if (zmesh__msg_encode(&hello, &bytes, &bytes_size) != 0)
        return 1;
    s_send_bytes(dealer, bytes, bytes_size);
    free(bytes);

    // Wait (at most 10 s) for the agent's sync token: its filters are in.
    zmq_pollitem_t item = {xpub, 0, ZMQ_POLLIN, 0};
    int subscribed = 0;
    for (int i = 0; i < 100 && !subscribed; i++) {
        if (zmq_poll(&item, 1, 100) <= 0)
            continue;
        uint8_t sub[64];
        int n = zmq_recv(xpub, sub, sizeof sub, 0);
        if (n == 26 && sub[0] == 1 && sub[1] == 0xff)
            subscribed = 1;
    }
    if (!subscribed) {
        fprintf(stderr, "garbage: the agent never subscribed\n");
        return 1;
    }
    s_publish_garbage(xpub, id);
    // Larger than the agent's 1 MiB limit: libzmq drops the connection,
    // the agent reconnects.
    size_t huge_size = 2 * 1024 * 1024;
    uint8_t *huge = calloc(1, huge_size);
    memcpy(huge, "evil.huge", 10);
    zmq_send(xpub, huge, huge_size, 0);
    free(huge);
    // Give the reconnect time, bounded, by waiting for the token again.
    for (int i = 0; i < 50; i++) {
        if (zmq_poll(&item, 1, 100) <= 0)
            continue;
        uint8_t sub[64];
        int n = zmq_recv(xpub, sub, sizeof sub, 0);
        if (n == 26 && sub[0] == 1 && sub[1] == 0xff)
            break;
    }
    uint8_t buf[512];
    for (int i = 1; i <= valid; i++) {
        int n = s_frame(buf, sizeof buf, id, (uint64_t)i, "evil.ok");
        zmq_send(xpub, buf, (size_t)n, 0);
    }
    printf("{\"bad_beacons\":%d,\"foreign_beacons\":%d,\"bad_control\":%d,"
           "\"bad_frames\":%d,\"valid\":%d}\n",
           s_bad_beacons, s_foreign_beacons, s_bad_control, s_bad_frames,
           valid);
    fflush(stdout);
    zsock_destroy(&dealer);
    zsock_destroy(&xpub_sock);
    return 0;
}
