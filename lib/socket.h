/*  socket.h - the one place where zmesh creates ZeroMQ sockets, so that
    limits (and later security options such as CURVE) apply to every socket
    alike, and where TCP endpoints are bound to ports the kernel chooses. */
#ifndef ZMESH_SOCKET_H_INCLUDED
#define ZMESH_SOCKET_H_INCLUDED

#include <czmq.h>
#include <stddef.h>

typedef struct {
    size_t max_msg_size; /* ZMQ_MAXMSGSIZE on every socket that receives */
    int linger_ms;       /* ZMQ_LINGER */
} zmesh__socket_opts_t;

/*  Creates a socket of libzmq `type` (ZMQ_XPUB, ZMQ_SUB, ZMQ_ROUTER,
    ZMQ_DEALER, ZMQ_PAIR) with the options applied. NULL on failure (the
    reason is logged). Caller owns the socket. */
zsock_t *zmesh__socket_new(int type, const zmesh__socket_opts_t *opts);

/*  Binds `self` to tcp://ADDRESS:* with a port the kernel picks (not czmq's
    upward scan from 49152, which collides between parallel tests) and
    writes the resulting endpoint into `endpoint`. 0, ZMESH_EADDR or
    ZMESH_ESYS. */
int zmesh__socket_bind_tcp(zsock_t *self, const char *address, char *endpoint,
                           size_t cap);

#endif
