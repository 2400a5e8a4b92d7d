/*  nats.h - the smallest NATS client `mesh-bench relay` needs to measure
    JetStream beside mesh-relay: one TCP connection to a nats-server on
    loopback, the text protocol (INFO, CONNECT, PING/PONG, PUB, SUB, MSG,
    HMSG, +OK, -ERR), and the few JetStream API calls the benchmark makes
    (create a file stream, publish and wait for the PubAck, create a
    durable pull consumer, pull and acknowledge). Not a general client:
    no reconnects, no TLS, no auth, one thread.

    The server's bytes are parsed strictly and within fixed bounds: a
    control line longer than NATS_LINE_MAX, a payload larger than the
    server's announced max_payload, a number that is not plain digits or a
    payload not followed by CRLF ends the connection with an error (a
    benchmark should never measure a misunderstanding).
*/
#ifndef MESH_BENCH_NATS_H_INCLUDED
#define MESH_BENCH_NATS_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#define NATS_LINE_MAX 4096
#define NATS_SUBJECT_MAX 256

typedef struct nats_conn nats_conn_t;

/*  What nats_next() found. */
enum {
    NATS_ERROR = -1,  /* see nats_error(); the connection is unusable */
    NATS_TIMEOUT = 0, /* nothing within the timeout */
    NATS_MSG = 1,     /* a MSG or HMSG, in *msg */
    NATS_PONG = 2     /* the answer to a PING this client sent */
};

/*  One delivered message. The pointers point into the connection's buffer
    and stay valid until the next call of nats_next() or nats_close(). */
typedef struct {
    const char *subject; /* NUL-terminated */
    const char *reply;   /* NUL-terminated; "" when none */
    uint64_t sid;
    int status;         /* HMSG with a status line ("NATS/1.0 404 ..."): the
                           code; 0 otherwise */
    const uint8_t *hdr; /* header block (HMSG), hdr_len bytes */
    size_t hdr_len;
    const uint8_t *data; /* payload, len bytes */
    size_t len;
} nats_msg_t;

/*  Connects to host:port within timeout_ms, reads INFO, sends CONNECT
    (verbose off, headers on) and checks the server answers a PING. 0, or
    -1 with the reason in err. */
int nats_connect(nats_conn_t **conn, const char *host, int port, int timeout_ms,
                 char *err, size_t err_cap);
void nats_close(nats_conn_t **conn);

/*  The server's version from INFO ("2.9.10"), or "". */
const char *nats_server_version(const nats_conn_t *conn);
/*  "_INBOX.<random>": nats_connect subscribed "<prefix>.>" as sid
    NATS_INBOX_SID, so replies to any subject under it come back. */
const char *nats_inbox(const nats_conn_t *conn);
#define NATS_INBOX_SID 1
/*  Why the connection failed. */
const char *nats_error(const nats_conn_t *conn);

/*  Queue a command; the bytes go out when nats_next() waits or
    nats_flush() is called, so several publishes leave in one write.
    0, or -1 (bad subject, buffer too small for the payload, write error).
    `reply` may be NULL. */
int nats_sub(nats_conn_t *conn, const char *subject, uint64_t sid);
int nats_pub(nats_conn_t *conn, const char *subject, const char *reply,
             const void *data, size_t len);
int nats_ping(nats_conn_t *conn);
int nats_flush(nats_conn_t *conn);

/*  Flushes what is queued, then waits up to timeout_ms for the next
    message or PONG; answers the server's PINGs by itself. */
int nats_next(nats_conn_t *conn, int timeout_ms, nats_msg_t *msg);

/* ------------------------------------------------------------------------ */
/*  JetStream over it */

/*  A request on `subject` with a JSON body; the reply's payload is copied
    to reply (NUL-terminated, truncated to cap). Messages for other
    subscriptions that come meanwhile are dropped: call it only while
    nothing else is in flight. 0; -1 on a protocol error, timeout or an
    API answer holding "error" (its text in reply). */
int js_request(nats_conn_t *conn, const char *subject, const char *json,
               int timeout_ms, char *reply, size_t cap);

/*  The stream sequence in a PubAck ({"stream":..,"seq":N}), or 0 when the
    payload is not a PubAck (an error answer, or not JSON). */
uint64_t js_puback_seq(const uint8_t *data, size_t len);

#endif
