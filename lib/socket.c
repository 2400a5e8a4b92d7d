/*  socket.c - creates every ZeroMQ socket zmesh uses and applies the same
    limits to each: the maximum message size on anything that receives (so
    a peer cannot make us allocate a gigabyte), linger, and no IPv6
    surprises. Binding asks the kernel for the port, and reads the endpoint
    back from ZMQ_LAST_ENDPOINT. It knows nothing of what the sockets are
    for.
*/
#include "socket.h"
#include "log.h"
#include "zmesh.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

zsock_t *
zmesh__socket_new(int type, const zmesh__socket_opts_t *opts)
{
    zsock_t *sock = zsock_new(type);
    if (!sock) {
        zmesh__log(ZMESH_LOG_ERROR, "cannot create a ZeroMQ socket: %s",
                   zmq_strerror(zmq_errno()));
        return NULL;
    }
    void *handle = zsock_resolve(sock);
    int linger = opts->linger_ms;
    zmq_setsockopt(handle, ZMQ_LINGER, &linger, sizeof linger);
    if (type == ZMQ_SUB || type == ZMQ_ROUTER || type == ZMQ_DEALER ||
        type == ZMQ_XPUB) {
        int64_t max = (int64_t)opts->max_msg_size;
        zmq_setsockopt(handle, ZMQ_MAXMSGSIZE, &max, sizeof max);
    }
    return sock;
}

int
zmesh__socket_bind_tcp(zsock_t *self, const char *address, char *endpoint,
                       size_t cap)
{
    char spec[64];
    snprintf(spec, sizeof spec, "tcp://%s:*", address);
    void *handle = zsock_resolve(self);
    if (zmq_bind(handle, spec) != 0) {
        int err = zmq_errno();
        zmesh__log(ZMESH_LOG_ERROR, "cannot bind %s: %s", spec,
                   zmq_strerror(err));
        return err == EADDRNOTAVAIL || err == ENODEV || err == EINVAL
                   ? ZMESH_EADDR
                   : ZMESH_ESYS;
    }
    size_t size = cap;
    if (zmq_getsockopt(handle, ZMQ_LAST_ENDPOINT, endpoint, &size) != 0)
        return ZMESH_ESYS;
    return 0;
}
