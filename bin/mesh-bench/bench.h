/*  bench.h - shared declarations of mesh-bench's files (not installed).

    main.c parses the command line and prints results (reliability.c for
    rr and repair); child.c starts the peer process and carries the
    control channel to it; raw.c holds the libzmq baselines; mesh.c the
    same benchmarks through libzmesh; loss.c the repair benchmark's runs,
    raw and mesh; measure.c the clocks, payloads and order statistics.
    relay.c runs `relay` (mesh-relay against NATS JetStream) over
    relay_mesh.c, relay_js.c and nats.c, a minimal NATS client.
*/
#ifndef MESH_BENCH_H_INCLUDED
#define MESH_BENCH_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <zmesh.h>

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

/*  How the mesh paths configure their agents' reliability and batching.
    -1 leaves the library's default (an 8 MiB retransmit buffer, a 300 ms
    repair timeout); 0 turns the feature off. Every mesh caller sets both.
    batch_off 0 leaves batching on (up to 64 events a frame). */
typedef struct {
    long long retransmit; /* zmesh_agent_set_retransmit_buffer, bytes */
    int repair_timeout;   /* zmesh_agent_set_repair_timeout, ms */
    int batch_off;        /* 1: zmesh_agent_set_batching(agent, 0, 1), every
                             event in a frame of its own */
} mb_mesh_cfg_t;

/*  The library's defaults and "repair off" (no buffer, no waiting), both
    with batching on. */
#define MB_MESH_DEFAULTS ((mb_mesh_cfg_t){-1, -1, 0})
#define MB_MESH_NO_REPAIR ((mb_mesh_cfg_t){0, 0, 0})

/*  Everything the peer process needs, passed on its command line by
    mb_child_start() and parsed back by mb_child_args_parse(). */
typedef struct {
    const char *kind;     /* "raw-thr", "mesh-thr", "raw-lat", "mesh-lat",
                             "mesh-rr", "raw-loss", "mesh-loss" */
    const char *ctl;      /* the parent's control endpoint */
    const char *endpoint; /* raw-thr, raw-loss: the parent's PUB */
    const char *mesh;     /* mesh-*: the mesh name */
    size_t size;          /* payload bytes */
    long count;           /* messages to expect (thr, loss) */
    int beacon_port;      /* mesh-*: UDP beacon port */
    int hop;              /* raw-thr: receive through an inproc thread hop */
    int hwm;              /* raw-*: the SUB's ZMQ_RCVHWM (0: no limit) */
    int stall_ms;         /* *-loss: the subscriber's sleep after event 1 */
    mb_mesh_cfg_t cfg;    /* mesh-*: the peer's agent */
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
    /*  mesh only, from the publisher's zmesh_agent_stats over the timed
        part of the run: events that went out in batch frames, and those
        frames. */
    long batched;
    long batches;
} mb_thr_run_t;

/*  The paths the thr benchmark compares: raw libzmq, the mesh (repair on,
    as configured, and batching on), raw with a thread hop on each side,
    raw at the size of one event's frame (what the mesh sends per event
    when it does not batch), the mesh with its retransmit buffer and
    repair off, and the mesh with batching off (repair as in mesh). lat
    runs raw, mesh and norepair: with one message in flight nothing is
    ever batched. */
typedef enum {
    MB_RAW = 0,
    MB_MESH = 1,
    MB_HOP = 2,
    MB_WIRE = 3,
    MB_NOREPAIR = 4,
    MB_NOBATCH = 5
} mb_path_t;

/*  One run of the repair benchmark (loss.c), as the subscriber accounted
    for the `published` data events: delivered live, delivered by repair,
    named in gap events (mesh) or missing from the sequence (raw, where
    nobody says so), and whatever none of these covers. */
typedef struct {
    long published;
    long live;
    long repaired;
    long gaps;         /* gap events (mesh), missing ranges (raw) */
    long missing;      /* data events in those gaps or ranges */
    long unaccounted;  /* published - live - repaired - missing */
    long out_of_order; /* came twice or after a later one (not tallied) */
    double elapsed_s;  /* first publish to the last delivery */
    double per_s;      /* (live + repaired) / elapsed_s */
    /*  mesh only, from zmesh_agent_stats: the subscriber's NAKs and
        repairs given up, the publisher's events sent again. */
    uint64_t repair_requests;
    uint64_t repair_timeouts;
    uint64_t events_resent;
    /*  Repaired events: delivery minus publish time, us (malloc'ed). */
    double *delays_us;
    size_t delays_n;
    /*  Per run of repaired events: the pause in delivery before its first
        event, us (malloc'ed). */
    double *pauses_us;
    size_t pauses_n;
} mb_loss_run_t;

/*  The command line, as main.c parsed it, for every benchmark. */
typedef struct {
    size_t size;
    long count; /* 0: the default for the size */
    int runs;   /* 0: the default for the benchmark */
    int json;
    int ipc;
    int verbose;
    int paths;            /* MB_PATH(p) for each path to run; 0: all */
    int hwm;              /* SNDHWM/RCVHWM of every data socket */
    int hwm_given;        /* --hwm was on the command line */
    long long retransmit; /* --retransmit; -1: not given */
    int stall_ms;         /* --stall-ms; -1: not given */
    long rate;            /* --rate; -1: not given */
} mb_opts_t;

#define MB_PATH(p) (1 << (p))
#define MB_LAT_PATHS (MB_PATH(MB_RAW) | MB_PATH(MB_MESH) | MB_PATH(MB_NOREPAIR))
#define MB_RR_PATHS (MB_PATH(MB_RAW) | MB_PATH(MB_MESH))
#define MB_REPAIR_PATHS MB_LAT_PATHS

/*  main.c: output helpers. "1,234,567"; a JSON number with `decimals`,
    or null when `have` is 0. */
const char *mb_grouped(double v, char *buf, size_t cap);
const char *mb_jnum(int have, int decimals, double v, char *buf, size_t cap);

/*  main.c: flag parsing for every command. mb_bad prints "mesh-bench:
    <message> (see mesh-bench --help)" and returns -1; mb_parse_num reads
    a whole decimal number in min..max (0, or -1 for anything else). */
int mb_bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int mb_parse_num(const char *s, long long min, long long max, long long *out);

/*  reliability.c: `rr` and `repair`, each for o->size. 0 or -1. */
int mb_cmd_rr(const mb_opts_t *o);
int mb_cmd_repair(const mb_opts_t *o);
/*  The size, HWM and event count `repair` uses unless told otherwise. A
    200 ms stall at 100,000 events/s of 1 KiB is 20 MB, more than
    loopback's socket buffers absorb (up to 4 MiB to send and more to
    receive here), so the loss is certain; at 16 B it is 2 MB, which
    they may well hold. */
#define MB_REPAIR_SIZE 1024
#define MB_REPAIR_HWM 1000
long mb_repair_default_count(size_t size);

/*  measure.c */
int64_t mb_now_ns(void);
/*  CLOCK_REALTIME in microseconds since the epoch: the clock of
    zmesh_event_timestamp, so a subscriber on the same host can take
    delivery minus publish time. */
int64_t mb_wall_us(void);
/*  CPU time (user + system) of this process so far, all threads. */
int64_t mb_cpu_ns(void);
/*  One msgpack object of exactly `size` bytes (size >= 1): a bin whose
    header size is accounted for, or a positive fixint for size 1. Never
    starts with 0xc0 (nil), which the benchmarks use as a probe. Caller
    frees. NULL when out of memory. */
uint8_t *mb_payload_new(size_t size);
/*  Where the data bytes of mb_payload_new(size) start (its header size). */
size_t mb_payload_offset(size_t size);
/*  Big-endian 64-bit numbers inside payloads. */
void mb_put_u64(uint8_t *p, uint64_t v);
uint64_t mb_get_u64(const uint8_t *p);
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
/*  Runs this executable with `argv` (argv[0] included) in the
    foreground, its output going where ours goes; kills it after
    timeout_s. Its exit status, or -1. */
int mb_run_self(char *const argv[], int timeout_s);
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

/*  mesh.c. `cfg` is given to both agents of a run. mb_mesh_thr_run also
    fills out->batched and out->batches from the publisher's counters. */
int mb_mesh_thr_run(size_t size, long count, const mb_mesh_cfg_t *cfg,
                    int verbose, mb_thr_run_t *out);
int mb_mesh_lat_run(size_t size, long count, const mb_mesh_cfg_t *cfg,
                    int verbose, double *samples_us);
/*  Request/reply round trips with one request outstanding; *replies
    counts the replies that came back (every one, or the run fails). */
int mb_mesh_rr_run(size_t size, long count, int verbose, double *samples_us,
                   long *replies);
int mb_mesh_thr_peer(const mb_peer_args_t *args);
int mb_mesh_lat_peer(const mb_peer_args_t *args);
int mb_mesh_rr_peer(const mb_peer_args_t *args);

/*  mesh.c, shared with loss.c: a started agent on a mesh of its own (a
    new name and beacon port), `cfg` applied, or NULL (printed). */
zmesh_agent_t *mb_mesh_parent_agent(const char *name, char *mesh,
                                    size_t mesh_cap, int *port, const char *sub,
                                    const char *adv, const mb_mesh_cfg_t *cfg,
                                    int verbose);
/*  Starts the peer process and waits until it says it is ready and its
    agent's subscription to `topic` has reached `agent`. Sets
    *subscribed_ms (may be NULL) to how long the subscription took after
    ready. 0 or -1 (printed). */
int mb_mesh_child_ready(mb_child_t *child, void *ctx, mb_peer_args_t *args,
                        const char *what, zmesh_agent_t *agent,
                        const char *topic, double *subscribed_ms);
/*  Probes `topic` with nil events until the peer reports "probed SEQ";
    sets *first_seq to SEQ. 0 or -1 (printed). */
int mb_mesh_probe(mb_child_t *child, zmesh_agent_t *agent, const char *topic,
                  unsigned long long *first_seq);
/*  The peer process's control channel and started agent, which
    subscribes `sub`, advertises `adv` and serves `serve` (each may be
    NULL) and has the run's reliability settings; the parent hears
    "ready" once it runs. */
typedef struct {
    void *ctx;
    void *ctl;
    zmesh_agent_t *agent;
} mb_mesh_peer_t;
int mb_mesh_peer_open(mb_mesh_peer_t *peer, const mb_peer_args_t *args,
                      const char *name, const char *sub, const char *adv,
                      const char *serve, const char *role);
void mb_mesh_peer_close(mb_mesh_peer_t *peer);

/*  loss.c: one run of the repair benchmark on one path. `hwm` is for
    the raw sockets (the agents' come from ZSYS_SNDHWM and ZSYS_RCVHWM,
    see main.c); `cfg` for the mesh's agents (MB_MESH_NO_REPAIR for
    repair off). The arrays in *out are the caller's to free with
    mb_loss_run_free. */
typedef struct {
    size_t size;
    long count;
    int stall_ms; /* the subscriber's sleep after the first event */
    long rate;    /* events/s the publisher keeps to; 0: no pacing */
    int hwm;
    int verbose;
} mb_loss_params_t;
int mb_loss_mesh_run(const mb_loss_params_t *lp, const mb_mesh_cfg_t *cfg,
                     mb_loss_run_t *out);
int mb_loss_raw_run(const mb_loss_params_t *lp, mb_loss_run_t *out);
void mb_loss_run_free(mb_loss_run_t *run);
int mb_loss_mesh_peer(const mb_peer_args_t *args);
int mb_loss_raw_peer(const mb_peer_args_t *args);
/*  The smallest payload that holds the sequence number (a msgpack bin of
    8 data bytes). */
#define MB_LOSS_MIN_SIZE 10

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

/* ------------------------------------------------------------------------ */
/*  relay.c, relay_mesh.c, relay_js.c: `mesh-bench relay`, mesh-relay
    against NATS JetStream (file storage) doing the same work. */

/*  main.c hands the command line over: relay has flags of its own.
    Returns the exit status (0, 1 a run failed, 2 bad flags). */
int mb_cmd_relay(int argc, char **argv);
/*  `mesh-bench _exec PARENT PROGRAM ARGS...`: the servers relay starts
    go through this, so they die with mesh-bench (PR_SET_PDEATHSIG kept
    across exec) even when it is killed. Does not return on success. */
int mb_exec_guarded(int argc, char **argv);

/*  The rows measured for one sync policy: what a system did in a row. */
typedef struct {
    int ran;          /* 0: not measured (see the caller's reason) */
    long events;      /* confirmed (publish rows) or consumed (catch-up) */
    long failed;      /* confirms that failed or timed out; catch-up:
                         gaps, losses */
    double elapsed_s; /* first publish (or consumer creation) to the last
                         confirm (or ack) */
    double per_s;     /* events / elapsed_s */
    int capped;       /* the row's time limit ended it early */
} mb_relay_row_t;

enum { MB_ROW_ONE = 0, MB_ROW_WINDOW = 1, MB_ROW_CATCHUP = 2, MB_ROWS = 3 };

/*  Both systems' publish rows: one confirm (or PubAck) came back, `ok`
    or not. Counts it, and once the row's time is up (stop_at, ns) or the
    bench is interrupted caps it: what was sent is all it waits for.
    Returns the time it came (ns). */
int64_t mb_relay_row_outcome(mb_relay_row_t *row, int ok, long sent,
                             long *count, int64_t stop_at);
/*  Ends a row that ran from t0 to last (ns): marks it run, and its rate. */
void mb_relay_row_done(mb_relay_row_t *row, int64_t t0, int64_t last);
#define MB_RELAY_WINDOW 256
#define MB_RELAY_WARMUP 10

/*  What both sides of one policy get. `tag` names the stream and the
    topics: stream "bench-TAG", topics "bench.relay.TAG.one|win|warm". */
typedef struct {
    size_t size;
    long count;         /* events per publish row */
    int row_limit_s;    /* a row stops after this long */
    const char *tag;    /* "always", "i200", "never" */
    const char *policy; /* the mesh-relay --sync value */
    int verbose;
} mb_relay_params_t;

/*  snprintf for paths: -1 (and "") when the result does not fit. */
int mb_path(char *out, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*  Interruption (SIGINT, SIGTERM): loops end early and clean up. */
int mb_relay_stopping(void);

/*  A server started through mb_exec_guarded, output to `log`. */
typedef struct {
    pid_t pid;
    char log[512];
} mb_server_t;
int mb_server_start(mb_server_t *srv, const char *log, char *const argv[]);
/*  SIGTERM, up to grace_ms, then SIGKILL; reaps it. */
void mb_server_stop(mb_server_t *srv, int grace_ms);
/*  1 while it runs; 0 (and pid cleared) once it exited. */
int mb_server_alive(mb_server_t *srv);
/*  Prints the last lines of its log to stderr. */
void mb_server_log_tail(const mb_server_t *srv, const char *who);

/*  relay_mesh.c: mesh-relay with one stream per policy, a publishing agent
    and, per policy, a durable consumer. */
typedef struct mb_relay_mesh mb_relay_mesh_t;
/*  Starts `relay_bin` in dir with a stream for each of the n params and
    a publishing agent on a mesh of its own; NULL (printed) on failure. */
mb_relay_mesh_t *mb_relay_mesh_start(const char *relay_bin, const char *dir,
                                     const mb_relay_params_t *params, int n,
                                     int verbose);
void mb_relay_mesh_stop(mb_relay_mesh_t **mesh);
/*  The three rows of one policy; 0 or -1 (printed). */
int mb_relay_mesh_rows(mb_relay_mesh_t *mesh, const mb_relay_params_t *p,
                       mb_relay_row_t rows[MB_ROWS]);

/*  relay_js.c: nats-server -js, one per policy (its sync setting is the
    server's), and the same rows over nats.c. */
typedef struct {
    int major, minor, patch;
    int sync_setting; /* the server knows jetstream.sync_interval (2.10+) */
} mb_nats_version_t;
/*  Runs `nats_bin --version`; 0 or -1. */
int mb_nats_version(const char *nats_bin, const char *dir,
                    mb_nats_version_t *v);
/*  The JetStream setting closest to mesh policy `policy`: *conf gets the
    sync_interval value for the config file ("" for none), *label what
    JetStream does, *same 1 when the durability is the same. */
void mb_nats_sync_for(const mb_nats_version_t *v, const char *policy,
                      char *conf, size_t conf_cap, char *label,
                      size_t label_cap, int *same);
/*  Starts nats-server in dir/TAG with that setting, runs the rows, stops
    it. 0 or -1 (printed). */
int mb_relay_js_rows(const char *nats_bin, const char *dir,
                     const mb_nats_version_t *v, const mb_relay_params_t *p,
                     mb_relay_row_t rows[MB_ROWS]);

/*  Deadline in seconds a peer gets for `count` messages or round trips. */
int mb_thr_deadline_s(long count);
int mb_lat_deadline_s(long count);

#endif
