/*  bench.h - shared declarations of mesh-bench's files (not installed).

    main.c parses the command line and prints results; child.c starts the
    peer process and carries the control channel to it; raw.c holds the
    libzmq baselines; mesh.c the same benchmarks through libzmesh;
    measure.c the clock, payloads and order statistics.
*/
#ifndef MESH_BENCH_H_INCLUDED
#define MESH_BENCH_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*  How long the parent waits for the peer process to say it is ready, for
    subscriptions to form and for the first probe to get through. */
#define MB_READY_TIMEOUT_MS 10000
/*  A subscriber that saw data stops after this much silence (the rest
    were lost). */
#define MB_IDLE_TIMEOUT_MS 2000
/*  Round trips before the latency samples start. */
#define MB_LAT_WARMUP 1000
/*  A round trip that takes longer than this fails the run. */
#define MB_LAT_TIMEOUT_MS 2000

/*  Everything the peer process needs, passed on its command line by
    mb_child_start() and parsed back by mb_child_args_parse(). */
typedef struct {
    const char *kind;     /* "raw-thr", "mesh-thr", "raw-lat", "mesh-lat" */
    const char *ctl;      /* the parent's control endpoint */
    const char *endpoint; /* raw-thr: the parent's PUB endpoint */
    const char *mesh;     /* mesh-*: the mesh name */
    size_t size;          /* payload bytes */
    long count;           /* messages to expect (thr) */
    int beacon_port;      /* mesh-*: UDP beacon port */
    int hop;              /* raw-thr: receive through an inproc thread hop */
    int hwm;              /* raw-thr: the SUB's ZMQ_RCVHWM (0: no limit) */
    int deadline_s;       /* the peer kills itself after this (SIGALRM) */
    int verbose;
} mb_peer_args_t;

/*  The peer process as the parent sees it. */
typedef struct {
    pid_t pid; /* 0 when not running */
    void *ctl; /* PAIR socket bound by the parent */
    char ctl_endpoint[256];
} mb_child_t;

/*  One throughput run as the subscriber measured it. */
typedef struct {
    long sent;
    long received;
    double msgs_per_s;        /* (received - 1) / (last - first arrival) */
    uint64_t first_probe_seq; /* mesh only: sequence of the first probe seen */
    double send_ns;           /* the publisher's loop, per message */
    double cpu_ns;            /* CPU time of both processes, per message */
} mb_thr_run_t;

/*  The paths the thr benchmark compares: raw libzmq, the mesh, raw with a
    thread hop on each side, raw at the mesh frame's wire size. */
typedef enum { MB_RAW = 0, MB_MESH = 1, MB_HOP = 2, MB_WIRE = 3 } mb_path_t;

/*  measure.c */
int64_t mb_now_ns(void);
/*  CPU time (user + system) of this process so far, all threads. */
int64_t mb_cpu_ns(void);
/*  One msgpack object of exactly `size` bytes (size >= 1): a bin whose
    header size is accounted for, or a positive fixint for size 1. Never
    starts with 0xc0 (nil), which the benchmarks use as a probe. Caller
    frees. NULL when out of memory. */
uint8_t *mb_payload_new(size_t size);
double mb_median(double *values, size_t n);
/*  p in [0, 1], nearest rank; sorts `values`. */
double mb_percentile(double *values, size_t n, double p);
/*  A random port in [20000, 32000): below Linux's ephemeral range, so it
    does not collide with ports the kernel hands out. */
int mb_random_port(void);
/*  A mesh name no other run or test uses: "bench-<pid>-<n>". */
void mb_mesh_name(char *buf, size_t cap);

/*  child.c */
/*  Binds the control channel in `ctx`, fills args->ctl and starts this
    executable as `mesh-bench _peer ...`. 0 or -1 (printed). */
int mb_child_start(mb_child_t *child, void *ctx, mb_peer_args_t *args);
/*  Waits up to timeout_ms for a control message starting with `word`;
    the rest of the line goes to rest (may be NULL). 0; -1 when the peer
    reported an error or exited (printed); -2 on timeout (printed with
    `what` naming the wait, silent when `what` is NULL). */
int mb_child_expect(mb_child_t *child, const char *word, char *rest, size_t cap,
                    int timeout_ms, const char *what);
/*  Reaps the peer within grace_ms, else kills it by PID; closes ctl.
    Returns the peer's exit status, or -1 if it had to be killed. */
int mb_child_stop(mb_child_t *child, int grace_ms);
/*  Parent side of a thr run's end: waits for the peer's result, fills
    received, msgs_per_s and cpu_ns (this process's CPU since cpu_start
    plus the peer's since the first probe) of *out, whose `sent` it sets to
   count. 0 or -1. */
int mb_thr_result(mb_child_t *child, int timeout_ms, long count,
                  int64_t cpu_start, mb_thr_run_t *out);
/*  Control messages: one text frame each. recv returns the length, or -1
    on timeout or error. */
int mb_ctl_send(void *sock, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int mb_ctl_recv(void *sock, char *buf, size_t cap, int timeout_ms);
/*  Peer side: parses `_peer KIND --flag value ...`; -1 on a bad flag. */
int mb_child_args_parse(int argc, char **argv, mb_peer_args_t *args);
/*  Peer side: dies with its parent, and after args->deadline_s anyway;
    connects the control channel. NULL on failure (printed). */
void *mb_child_attach(void *ctx, const mb_peer_args_t *args);

/*  raw.c: runs one parent-side measurement, starting its own peer. */
int mb_raw_thr_run(size_t size, long count, int ipc, int hop, int hwm,
                   int verbose, mb_thr_run_t *out);
int mb_raw_lat_run(size_t size, long count, int verbose, double *samples_us);
int mb_raw_thr_peer(const mb_peer_args_t *args);
int mb_raw_lat_peer(const mb_peer_args_t *args);

/*  mesh.c */
int mb_mesh_thr_run(size_t size, long count, int verbose, mb_thr_run_t *out);
int mb_mesh_lat_run(size_t size, long count, int verbose, double *samples_us);
int mb_mesh_thr_peer(const mb_peer_args_t *args);
int mb_mesh_lat_peer(const mb_peer_args_t *args);

/*  The subscriber's side of a thr run, shared by raw and mesh: a source
    returns MB_GOT_DATA, MB_GOT_PROBE (with its sequence, 0 if none),
    MB_GOT_OTHER, MB_GOT_NOTHING when `wait_ms` (0 or MB_POLL_MS) passed,
    or MB_GOT_ERROR. */
enum {
    MB_GOT_ERROR = -1,
    MB_GOT_NOTHING = 0,
    MB_GOT_DATA = 1,
    MB_GOT_PROBE = 2,
    MB_GOT_OTHER = 3
};
#define MB_POLL_MS 100
typedef int(mb_recv_fn)(void *self, int wait_ms, uint64_t *probe_seq);
/*  Counts data until `count` arrived or the line went quiet, answers the
    first probe with "probed SEQ" and ends with "result RECEIVED NS CPU_NS"
    on ctl. 0, or -1 if no probe ever came (reported as "error"). */
int mb_thr_count(mb_recv_fn *recv, void *self, void *ctl, long count);

/*  Deadline in seconds a peer gets for `count` messages or round trips. */
int mb_thr_deadline_s(long count);
int mb_lat_deadline_s(long count);

#endif
