/*  beacon.c - the 32-byte presence beacon (proto/wire.md#beacon) and the
    UDP socket that sends and hears it in one scope: this host, LAN
    broadcast on one interface, or multicast on one interface. It knows
    nothing about peers or meshes beyond the hash: the agent decides what
    a beacon means, ignores its own, and counts what it rejects. Linux is
    the target (MSG_TRUNC on a UDP socket, IP_MULTICAST_ALL); the code
    degrades gracefully where those are missing. */
#define _DEFAULT_SOURCE /* getifaddrs, IFF_*, SO_REUSEPORT, ip_mreq */

#include "beacon.h"
#include "log.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const uint8_t s_magic[4] = {'Z', 'M', 'S', 'H'};

uint64_t
zmesh__mesh_hash(const char *mesh)
{
    assert(mesh);
    uint64_t hash = 0xcbf29ce484222325u;
    for (const unsigned char *p = (const unsigned char *)mesh; *p; p++) {
        hash ^= *p;
        hash *= 0x100000001b3u;
    }
    return hash;
}

/*  Flag bits this version does not know are kept as they came, both ways:
    a receiver ignores them, and decode + encode gives back the same 32
    bytes. */
void
zmesh__beacon_encode(const zmesh__beacon_t *beacon,
                     uint8_t out[ZMESH__BEACON_SIZE])
{
    assert(beacon && out);
    memcpy(out, s_magic, 4);
    out[4] = ZMESH_PROTOCOL_VERSION;
    out[5] = beacon->flags;
    out[6] = (uint8_t)(beacon->port >> 8);
    out[7] = (uint8_t)beacon->port;
    for (int i = 0; i < 8; i++)
        out[8 + i] = (uint8_t)(beacon->mesh_hash >> (56 - 8 * i));
    memcpy(out + 16, beacon->id, 16);
}

int
zmesh__beacon_decode(const void *data, size_t size, zmesh__beacon_t *beacon)
{
    assert(beacon);
    const uint8_t *in = data;
    if (!in || size < ZMESH__BEACON_SIZE || memcmp(in, s_magic, 4) != 0)
        return ZMESH_EPROTO;
    if (in[4] != ZMESH_PROTOCOL_VERSION) {
        /* Later versions may lay out the rest differently: only the
           version is ours to read. */
        memset(beacon, 0, sizeof *beacon);
        beacon->version = in[4];
        return ZMESH__BEACON_OTHER_VERSION;
    }
    zmesh__beacon_t decoded;
    decoded.version = in[4];
    decoded.flags = in[5];
    decoded.port = (uint16_t)(in[6] << 8 | in[7]);
    /* A leaving agent may already have closed its ROUTER; anyone else
       with port 0 could not be reached. */
    if (decoded.port == 0 && !(decoded.flags & ZMESH__BEACON_FLAG_LEAVING))
        return ZMESH_EPROTO;
    decoded.mesh_hash = 0;
    for (int i = 0; i < 8; i++)
        decoded.mesh_hash = decoded.mesh_hash << 8 | in[8 + i];
    memcpy(decoded.id, in + 16, 16);
    *beacon = decoded;
    return 0;
}

int
zmesh__iface_resolve(const char *name_or_ip, char address[INET_ADDRSTRLEN],
                     char broadcast[INET_ADDRSTRLEN])
{
    if (!name_or_ip || !*name_or_ip)
        return ZMESH_EADDR;
    struct in_addr wanted;
    bool by_address = inet_pton(AF_INET, name_or_ip, &wanted) == 1;
    struct ifaddrs *list;
    if (getifaddrs(&list) != 0) {
        zmesh__log(ZMESH_LOG_ERROR, "beacon: getifaddrs: errno %d", errno);
        return ZMESH_ESYS;
    }
    int rc = ZMESH_EADDR;
    for (struct ifaddrs *ifa = list; ifa; ifa = ifa->ifa_next) {
        if (!ifa->ifa_addr || ifa->ifa_addr->sa_family != AF_INET)
            continue;
        /* Copied out: the list's sockaddr pointers promise no
           sockaddr_in alignment. */
        struct sockaddr_in in;
        memcpy(&in, ifa->ifa_addr, sizeof in);
        if (by_address ? in.sin_addr.s_addr != wanted.s_addr
                       : strcmp(ifa->ifa_name, name_or_ip) != 0)
            continue;
        /* An interface with several addresses: the first one listed, or
           the one asked for by address. */
        char bcast[INET_ADDRSTRLEN] = "";
        if ((ifa->ifa_flags & IFF_BROADCAST) && ifa->ifa_broadaddr &&
            ifa->ifa_broadaddr->sa_family == AF_INET) {
            struct sockaddr_in b;
            memcpy(&b, ifa->ifa_broadaddr, sizeof b);
            inet_ntop(AF_INET, &b.sin_addr, bcast, sizeof bcast);
        }
        if (address)
            inet_ntop(AF_INET, &in.sin_addr, address, INET_ADDRSTRLEN);
        if (broadcast)
            memcpy(broadcast, bcast, sizeof bcast);
        rc = 0;
        break;
    }
    freeifaddrs(list);
    return rc;
}

/*  Two sockets, so that each does one job exactly:
    - `rx` is bound to the scope's destination address and the beacon
      port (127.255.255.255, the interface's broadcast address, or the
      group). Linux delivers a broadcast or multicast datagram to every
      socket bound to its destination address (SO_REUSEADDR lets many
      agents share the port), and such a socket hears no unicast and no
      other scope: a HOST socket never hears the LAN, a LAN socket never
      hears HOST beacons or another interface (INADDR_ANY would hear all
      of them, and SO_BINDTODEVICE needs privileges). The unit test
      checks that a socket bound to 127.255.255.255 hears broadcasts to it
      and not unicast to 127.0.0.1. Datagrams to 127.255.255.255 cannot
      arrive from outside, as Linux drops 127/8 destinations on other
      interfaces; recv still checks the source.
    - `tx` is bound to the interface's own address (port chosen by the
      kernel), so every beacon leaves with exactly the source address the
      agent binds its endpoints to: receivers use that source to connect,
      and with several addresses on an interface the route's choice could
      be another one. */
struct zmesh__beacon_sock {
    int rx;
    int tx;
    zmesh_discovery_t scope;
    struct sockaddr_in destination;
};

static void
s_log_errno(const char *what, int err)
{
    if (!zmesh__log_enabled(ZMESH_LOG_ERROR))
        return;
    char text[128];
    if (strerror_r(err, text, sizeof text) != 0)
        text[0] = '\0';
    zmesh__log(ZMESH_LOG_ERROR, "beacon: %s: %s (errno %d)", what, text, err);
}

/*  ZMESH_EADDR for errors that say the address or port cannot be used
    here, ZMESH_ESYS for the rest. */
static int
s_map_errno(int err)
{
    switch (err) {
    case EADDRINUSE:
    case EADDRNOTAVAIL:
    case EACCES:
    case ENODEV:
    case ENETUNREACH:
    case EINVAL: return ZMESH_EADDR;
    default: return ZMESH_ESYS;
    }
}

static int
s_set(int fd, int level, int name, const void *value, socklen_t size,
      const char *what)
{
    if (setsockopt(fd, level, name, value, size) == 0)
        return 0;
    int err = errno;
    s_log_errno(what, err);
    return s_map_errno(err);
}

/*  A non-blocking, close-on-exec UDP socket bound to address:port. */
static int
s_open(int *fd_out, struct in_addr address, int port, bool reuse)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) {
        s_log_errno("socket", errno);
        return ZMESH_ESYS;
    }
    int rc = 0;
    int one = 1;
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 ||
        fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
        s_log_errno("fcntl", errno);
        rc = ZMESH_ESYS;
    }
    if (rc == 0 && reuse)
        rc = s_set(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one,
                   "SO_REUSEADDR");
#ifdef SO_REUSEPORT
    /* Where SO_REUSEADDR alone does not share a UDP port (the BSDs). */
    if (rc == 0 && reuse)
        rc = s_set(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one,
                   "SO_REUSEPORT");
#endif
    if (rc == 0) {
        struct sockaddr_in sa;
        memset(&sa, 0, sizeof sa);
        sa.sin_family = AF_INET;
        sa.sin_addr = address;
        sa.sin_port = htons((uint16_t)port);
        if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
            int err = errno;
            char text[INET_ADDRSTRLEN] = "";
            inet_ntop(AF_INET, &address, text, sizeof text);
            zmesh__log(ZMESH_LOG_WARNING, "beacon: cannot bind %s:%d", text,
                       port);
            s_log_errno("bind", err);
            rc = s_map_errno(err);
        }
    }
    if (rc != 0) {
        close(fd);
        return rc;
    }
    *fd_out = fd;
    return 0;
}

/*  Options of the multicast scope: membership on rx, sending on tx. */
static int
s_multicast_setup(zmesh__beacon_sock_t *self, struct in_addr group,
                  struct in_addr iface)
{
#ifdef IP_MULTICAST_ALL
    /* Linux otherwise hands a socket every group any socket on the host
       joined on this port. */
    int zero = 0;
    int rc = s_set(self->rx, IPPROTO_IP, IP_MULTICAST_ALL, &zero, sizeof zero,
                   "IP_MULTICAST_ALL");
    if (rc != 0)
        return rc;
#endif
    struct ip_mreq membership;
    memset(&membership, 0, sizeof membership);
    membership.imr_multiaddr = group;
    membership.imr_interface = iface;
    int err = s_set(self->rx, IPPROTO_IP, IP_ADD_MEMBERSHIP, &membership,
                    sizeof membership, "IP_ADD_MEMBERSHIP");
    if (err != 0)
        return err;
    unsigned char ttl = 1, loop = 1;
    err = s_set(self->tx, IPPROTO_IP, IP_MULTICAST_IF, &iface, sizeof iface,
                "IP_MULTICAST_IF");
    if (err == 0)
        err = s_set(self->tx, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl,
                    "IP_MULTICAST_TTL");
    if (err == 0)
        err = s_set(self->tx, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof loop,
                    "IP_MULTICAST_LOOP");
    return err;
}

int
zmesh__beacon_sock_new(zmesh__beacon_sock_t **sock, zmesh_discovery_t scope,
                       const char *iface, const char *group, int port,
                       char address[INET_ADDRSTRLEN])
{
    if (!sock || !address || port < 1 || port > 65535)
        return ZMESH_EINVAL;
    if (scope != ZMESH_DISCOVERY_HOST && scope != ZMESH_DISCOVERY_LAN &&
        scope != ZMESH_DISCOVERY_MULTICAST)
        return ZMESH_EINVAL;

    char local[INET_ADDRSTRLEN] = "127.0.0.1";
    char bcast[INET_ADDRSTRLEN] = "127.255.255.255";
    struct in_addr local_addr, destination;
    if (scope != ZMESH_DISCOVERY_HOST) {
        if (!iface)
            return ZMESH_EINVAL;
        int rc = zmesh__iface_resolve(iface, local, bcast);
        if (rc != 0)
            return rc;
    }
    if (scope == ZMESH_DISCOVERY_MULTICAST) {
        if (!group || inet_pton(AF_INET, group, &destination) != 1 ||
            !IN_MULTICAST(ntohl(destination.s_addr)))
            return ZMESH_EINVAL;
    } else if (!*bcast) {
        zmesh__log(ZMESH_LOG_WARNING,
                   "beacon: interface %s has no IPv4 broadcast address", iface);
        return ZMESH_EADDR;
    } else if (inet_pton(AF_INET, bcast, &destination) != 1)
        return ZMESH_EADDR;
    if (inet_pton(AF_INET, local, &local_addr) != 1)
        return ZMESH_EADDR;

    zmesh__beacon_sock_t *self = calloc(1, sizeof *self);
    if (!self)
        return ZMESH_ENOMEM;
    self->rx = self->tx = -1;
    self->scope = scope;
    self->destination.sin_family = AF_INET;
    self->destination.sin_addr = destination;
    self->destination.sin_port = htons((uint16_t)port);

    int one = 1;
    int rc = s_open(&self->rx, destination, port, true);
    if (rc == 0)
        rc = s_open(&self->tx, local_addr, 0, false);
    if (rc == 0 && scope != ZMESH_DISCOVERY_MULTICAST)
        rc = s_set(self->tx, SOL_SOCKET, SO_BROADCAST, &one, sizeof one,
                   "SO_BROADCAST");
    if (rc == 0 && scope == ZMESH_DISCOVERY_MULTICAST)
        rc = s_multicast_setup(self, destination, local_addr);
    if (rc != 0) {
        zmesh__beacon_sock_destroy(&self);
        return rc;
    }
    memcpy(address, local, INET_ADDRSTRLEN);
    *sock = self;
    return 0;
}

void
zmesh__beacon_sock_destroy(zmesh__beacon_sock_t **sock)
{
    if (!sock || !*sock)
        return;
    zmesh__beacon_sock_t *self = *sock;
    if (self->rx >= 0)
        close(self->rx);
    if (self->tx >= 0)
        close(self->tx);
    free(self);
    *sock = NULL;
}

int
zmesh__beacon_sock_fd(const zmesh__beacon_sock_t *self)
{
    assert(self);
    return self->rx;
}

int
zmesh__beacon_sock_send(zmesh__beacon_sock_t *self, const void *data,
                        size_t size)
{
    assert(self && (data || size == 0));
    ssize_t sent;
    int tries = 0;
    do
        sent = sendto(self->tx, data, size, 0,
                      (const struct sockaddr *)&self->destination,
                      sizeof self->destination);
    while (sent < 0 && errno == EINTR && ++tries < 8);
    if (sent < 0 || (size_t)sent != size) {
        s_log_errno("sendto", sent < 0 ? errno : EMSGSIZE);
        return ZMESH_ESYS;
    }
    return 0;
}

ssize_t
zmesh__beacon_sock_recv(zmesh__beacon_sock_t *self, void *buf, size_t cap,
                        char from[INET_ADDRSTRLEN])
{
    assert(self && (buf || cap == 0));
    /* Each pass reads one datagram; a bounded number of them may be
       dropped (EINTR, or a HOST datagram from outside 127/8) before the
       caller hears EAGAIN and polls again. */
    for (int pass = 0; pass < 64; pass++) {
        struct sockaddr_in source;
        socklen_t source_size = sizeof source;
        memset(&source, 0, sizeof source);
        /* With MSG_TRUNC Linux returns the datagram's real size even
           when it did not fit, so the caller can reject it. */
        ssize_t size = recvfrom(self->rx, buf, cap, MSG_TRUNC,
                                (struct sockaddr *)&source, &source_size);
        if (size < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return ZMESH_EAGAIN;
            s_log_errno("recvfrom", errno);
            return ZMESH_ESYS;
        }
        bool ipv4 = source.sin_family == AF_INET;
        if (self->scope == ZMESH_DISCOVERY_HOST &&
            (!ipv4 || (ntohl(source.sin_addr.s_addr) >> 24) != 127))
            continue;
        if (from) {
            from[0] = '\0';
            if (ipv4)
                inet_ntop(AF_INET, &source.sin_addr, from, INET_ADDRSTRLEN);
        }
        return size;
    }
    return ZMESH_EAGAIN;
}
