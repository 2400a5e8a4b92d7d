/*  beacon.h - UDP presence beacons: the fixed 32-byte datagram
    (proto/wire.md#beacon) and the socket that sends and hears them in one
    of three scopes: this host (127.255.255.255), LAN broadcast on one
    interface, or multicast on one interface. Our own code rather than
    czmq's zbeacon, which cannot keep to loopback. */
#ifndef ZMESH_BEACON_H_INCLUDED
#define ZMESH_BEACON_H_INCLUDED

#include "zmesh.h"

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ZMESH__BEACON_SIZE 32
#define ZMESH__BEACON_FLAG_LEAVING 0x01 /* the sender is stopping */

typedef struct {
    uint8_t version;
    uint8_t flags;
    uint16_t port;      /* the sender's ROUTER port */
    uint64_t mesh_hash; /* zmesh__mesh_hash() of the sender's mesh */
    uint8_t id[16];     /* the sender's agent id */
} zmesh__beacon_t;

/*  64-bit FNV-1a of the mesh name (proto/wire.md#beacon). */
uint64_t zmesh__mesh_hash(const char *mesh);

/*  Writes the beacon's 32 bytes (version is always
    ZMESH_PROTOCOL_VERSION). */
void zmesh__beacon_encode(const zmesh__beacon_t *beacon,
                          uint8_t out[ZMESH__BEACON_SIZE]);

/*  Parses a datagram. Returns 0 for a valid beacon of our protocol version,
    ZMESH__BEACON_OTHER_VERSION (> 0, beacon->version set, other fields
    unset) for a well-framed beacon of another version, ZMESH_EPROTO for
    anything else (short, bad magic, port 0 without the leaving flag).
    Bytes after the 32nd are ignored (room for later versions to grow).
    Flag bits this version does not know are kept in beacon->flags, so a
    decode and encode round trip is byte-exact. */
#define ZMESH__BEACON_OTHER_VERSION 1
int zmesh__beacon_decode(const void *data, size_t size,
                         zmesh__beacon_t *beacon);

/*  Resolves an interface name ("eth0") or an IPv4 address of a local
    interface to its address and broadcast address, as dotted quads.
    ZMESH_EADDR when the name is NULL or empty, there is no such interface
    or it has no IPv4 address (broadcast is "" when the interface has none,
    e.g. loopback); ZMESH_ESYS when the interfaces cannot be listed. */
int zmesh__iface_resolve(const char *name_or_ip, char address[INET_ADDRSTRLEN],
                         char broadcast[INET_ADDRSTRLEN]);

typedef struct zmesh__beacon_sock zmesh__beacon_sock_t;

/*  Opens the beacon socket for `scope` (HOST, LAN or MULTICAST; NONE is
    EINVAL), listening on UDP `port` with SO_REUSEADDR/SO_REUSEPORT so many
    agents on one host share it. HOST sends to 127.255.255.255 and binds to
    that address, so it hears nothing from other hosts; LAN sends to the
    interface's broadcast address; MULTICAST joins `group` on the
    interface, sends to it with TTL 1 and loopback on. On success
    *sock is the caller's and `address` holds the IPv4 address endpoints
    should bind to (127.0.0.1 for HOST). It uses two descriptors: one bound
    to the destination (broadcast address or group) that only hears the
    scope's beacons, and one bound to the interface's address that sends,
    so beacons leave from the address the agent's endpoints use.
    Errors: ZMESH_EINVAL (scope NONE, a group that is not multicast, no
    interface for LAN/MULTICAST), ZMESH_EADDR, ZMESH_ESYS. */
int zmesh__beacon_sock_new(zmesh__beacon_sock_t **sock, zmesh_discovery_t scope,
                           const char *iface, const char *group, int port,
                           char address[INET_ADDRSTRLEN]);
void zmesh__beacon_sock_destroy(zmesh__beacon_sock_t **sock);

/*  The socket's file descriptor, for polling. Non-blocking. */
int zmesh__beacon_sock_fd(const zmesh__beacon_sock_t *self);

/*  Sends one datagram to the scope's destination. 0 or ZMESH_ESYS. */
int zmesh__beacon_sock_send(zmesh__beacon_sock_t *self, const void *data,
                            size_t size);

/*  Receives one datagram without blocking into `buf` and returns its size
    (truncated datagrams report the full size, so a caller can reject
    them), ZMESH_EAGAIN when none is waiting, or ZMESH_ESYS. `from` gets
    the sender's IPv4 address. */
ssize_t zmesh__beacon_sock_recv(zmesh__beacon_sock_t *self, void *buf,
                                size_t cap, char from[INET_ADDRSTRLEN]);

#endif
