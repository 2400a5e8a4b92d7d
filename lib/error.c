/*  error.c - error sentences and the library version. Every ZMESH_E* code
    in zmesh.h has one sentence here; the unit test walks them all. */
#include "zmesh.h"

const char *
zmesh_strerror(int err)
{
    switch (err) {
    case ZMESH_OK: return "success";
    case ZMESH_EINVAL: return "invalid argument";
    case ZMESH_ENOMEM: return "out of memory";
    case ZMESH_EAGAIN: return "nothing received within the timeout";
    case ZMESH_ETIMEDOUT: return "timed out before the condition held";
    case ZMESH_EPROTO: return "message breaks the zmesh wire protocol";
    case ZMESH_ESTATE: return "not allowed in the agent's current state";
    case ZMESH_ETOPIC: return "invalid topic name";
    case ZMESH_EPATTERN: return "invalid subscription pattern";
    case ZMESH_ERESERVED: return "topics starting with '$' are reserved";
    case ZMESH_ETOOBIG: return "message larger than the configured limit";
    case ZMESH_ENOTFOUND: return "not found";
    case ZMESH_EADDR: return "address or interface cannot be used";
    case ZMESH_ESYS: return "a system or ZeroMQ call failed";
    case ZMESH_EPAYLOAD: return "payload is not one well-formed msgpack object";
    case ZMESH_EJSON: return "invalid JSON";
    case ZMESH_EGONE: return "the peer has left the mesh";
    case ZMESH_EFULL: return "a queue on the way is full";
    default: return "unknown error";
    }
}

const char *
zmesh_version(void)
{
    return ZMESH_VERSION_STRING;
}
