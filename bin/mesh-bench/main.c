/*  main.c - mesh-bench: what the mesh and its reliability cost against
    raw libzmq measured in the same run on the same machine. `thr` counts
    messages per second (raw PUB/SUB, the mesh with repair on and off and
    with batching off, a thread hop, raw at one event's frame size), `lat`
    times round trips with one in flight, `rr` and
    `repair` (reliability.c) time requests and count what a lossy
    subscriber gets, `relay` (relay.c) measures mesh-relay against NATS
    JetStream, `all` runs all but relay. This file parses flags, orders
    the runs and prints medians; the runs are in raw.c, mesh.c and loss.c.
    A tool, not a test: it judges nothing, it reports.
*/
#include "bench.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>
#include <zmesh.h>

#define S_EXIT_FAIL 1
#define S_EXIT_USAGE 2

/*  PUB drops what its HWM does not hold, and a publisher in a loop
    outruns any subscriber: with libzmq's default of 1000 nearly every
    message of a 1M burst is dropped and the subscriber measures only the
    start of the stream. So both paths get a HWM that holds the whole run
    unless --hwm says otherwise (twice the largest default count, as the
    probes count too); loss is still counted and printed. */
#define S_DEFAULT_HWM 2000000

/*  What zmesh.h documents as the default retransmit buffer and batch
    size, for the output only (mesh-bench leaves the library's defaults
    alone). */
#define S_LIB_RETRANSMIT (8LL * 1024 * 1024)
#define S_LIB_BATCH 64

/*  Set in the environment of a `repair` that `all` runs in a process of
    its own, to the parent's PID: that process then dies with it. */
#define S_PARENT_ENV "MESH_BENCH_PARENT"

static const char *s_path_names[] = {"raw",  "mesh",     "hop",
                                     "wire", "norepair", "nobatch"};
#define S_PATHS 6
#define S_THR_PATHS 63

/*  The bytes a mesh event of `size` payload bytes takes on the wire in
    this benchmark when it goes in a frame of its own
    (proto/wire.md#event-frame): "bench.thr", NUL, fixarray, bin8 header
    and 16-byte id, a sequence of up to 5 bytes and a 9-byte timestamp.
    The "wire" path sends raw messages of this size, one per event: what
    the mesh sends without batching, so nobatch/wire tells the cost of the
    agent's code apart from the cost of the bigger frame. A batch frame
    carries many events behind one such header, so mesh/wire compares
    unlike things. */
static size_t
s_wire_size(size_t size)
{
    return 9 + 1 + 1 + 2 + 16 + 5 + 9 + size;
}

static void
s_usage(FILE *out)
{
    fputs(
        "usage: mesh-bench thr --size N [--count C] [--runs R] [--json]\n"
        "                      [--transport tcp|ipc] [--hwm H]\n"
        "                      [--retransmit B] [--only PATHS] [-v]\n"
        "       mesh-bench lat --size N [--count C] [--runs R] [--json]\n"
        "                      [--retransmit B] [--only PATHS] [-v]\n"
        "       mesh-bench rr --size N [--count C] [--runs R] [--json]\n"
        "                     [--only PATHS] [-v]\n"
        "       mesh-bench repair [--size N] [--count C] [--runs R] [--json]\n"
        "                         [--hwm H] [--stall-ms S] [--rate E]\n"
        "                         [--retransmit B] [--only PATHS] [-v]\n"
        "       mesh-bench all [--runs R] [--json] [-v]\n"
        "       mesh-bench relay [--size N] [--count C] [--policies LIST]\n"
        "                        [--row-limit S] [--quick] [--json]\n"
        "                        [--only mesh|jetstream] [--relay-bin PATH]\n"
        "                        [--nats-bin PATH] [-v]\n"
        "\n"
        "Measures the mesh against raw libzmq in the same run, between two\n"
        "processes on loopback, and prints medians and ratios.\n"
        "\n"
        "  thr     messages per second, publisher -> subscriber. Paths:\n"
        "          raw (libzmq PUB/SUB, one ZeroMQ message per event), mesh\n"
        "          (two agents, topic bench.thr, sequence tracking and\n"
        "          repair on: every frame is kept in the retransmit buffer;\n"
        "          batching on: events published in a burst go out up to\n"
        "          64 to a frame, and the row says how many did), nobatch\n"
        "          (mesh with batching off: every event in a frame of its\n"
        "          own), norepair (mesh with the buffer and repair off),\n"
        "          hop (raw through an inproc thread hop on each side, the\n"
        "          cost of an agent thread on the data path) and wire (raw\n"
        "          with messages as big as one event's frame: what the mesh\n"
        "          sends per event without batching, so nobatch/wire is the\n"
        "          agent's own cost). Runs alternate between the paths;\n"
        "          default C is 1,000,000 for small sizes and less for big\n"
        "          ones, R is 5.\n"
        "  lat     round trip with one message in flight: raw DEALER/ROUTER\n"
        "          echo against the mesh's bench.ping -> bench.pong echo\n"
        "          (repair on, and off). p50/p99/p99.9 over all samples of\n"
        "          all runs, after 1000 warm-up round trips per run;\n"
        "          default C 3,000, R 10. No nobatch path: one message in\n"
        "          flight is never batched.\n"
        "  rr      request/reply with one request outstanding: raw\n"
        "          DEALER/ROUTER echo against zmesh_agent_request ->\n"
        "          zmesh_agent_reply; p50/p99/p99.9 and requests/s. Default\n"
        "          C 3,000, R 10. Also `reqrep`.\n"
        "  repair  C events at E per second to a subscriber that sleeps S\n"
        "          ms after the first, with HWM H on both sides, so ZeroMQ\n"
        "          drops: what is delivered live, repaired, reported in gap\n"
        "          events or (raw) lost without a word, events/s delivered\n"
        "          and how long repairs take. Paths raw, mesh (repair on)\n"
        "          and norepair (repair off). Default size 1024 (a 200 ms\n"
        "          stall is then 20 MB, more than loopback's socket buffers\n"
        "          hold, so loss is certain), C 44,117 (fewer for bigger\n"
        "          sizes, at most 100,000), E 100,000, H 1000, S 200, R 3.\n"
        "  all     thr, lat and rr for 16, 128 and 1024 bytes, and repair\n"
        "          for 1024 bytes, with the default counts: five minutes or\n"
        "          so on a 2-core VM.\n"
        "  relay   mesh-relay against NATS JetStream (nats-server -js, file\n"
        "          storage) doing the same work, both started here on\n"
        "          loopback: confirmed publishes per second with one in\n"
        "          flight and with a window of 256, then a durable consumer\n"
        "          created afterwards reading and acknowledging all of\n"
        "          them, for each sync policy in LIST (default always,\n"
        "          interval:200, interval:120000, never; JetStream gets the\n"
        "          closest setting it has, and each policy says whether it\n"
        "          is the same). Default size 128, C 5,000 (--quick: 200),\n"
        "          at most S seconds a row (15; --quick: 5). Without\n"
        "          nats-server its column says skipped. mesh-relay is found\n"
        "          by --relay-bin, $ZMESH_RELAY, next to mesh-bench, PATH.\n"
        "\n",
        out);
    fputs(
        "  --size N       payload bytes (1..67108864; repair: at least 10);\n"
        "                 the mesh payload is one msgpack bin of exactly N\n"
        "                 encoded bytes\n"
        "  --count C      messages (thr, repair) or round trips (lat, rr)\n"
        "                 per run\n"
        "  --runs R       runs per path (1..100)\n"
        "  --transport T  tcp (default) or ipc for the raw thr paths; the\n"
        "                 mesh always uses tcp, and says so\n"
        "  --hwm H        send and receive HWM of the data sockets, raw and\n"
        "                 mesh alike (thr default 2000000: a run of up to 2M\n"
        "                 messages drops nothing; 1000 is libzmq's\n"
        "                 default; 0 means no limit; repair default 1000)\n"
        "  --retransmit B the mesh path's retransmit buffer in bytes (0 =\n"
        "                 off; default: the library's 8 MiB for thr and\n"
        "                 lat, enough to hold the whole run for repair)\n"
        "  --stall-ms S   repair: how long the subscriber sleeps\n"
        "  --rate E       repair: events per second the publisher keeps to\n"
        "                 (0: as fast as it can, which overruns any\n"
        "                 subscriber with a small HWM; default 100000)\n"
        "  --only PATHS   comma list of raw,mesh,nobatch,norepair,hop,wire\n"
        "                 to run (thr; lat and repair: raw,mesh,norepair;\n"
        "                 rr: raw,mesh)\n"
        "  --json         one JSON object per result line\n"
        "  -v             per-run numbers and the library's log on stderr\n"
        "                 (-vv: its debug log too)\n"
        "\n"
        "examples:\n"
        "  mesh-bench thr --size 16\n"
        "  mesh-bench thr --size 1024 --runs 10 --json\n"
        "  mesh-bench thr --size 128 --transport ipc\n"
        "  mesh-bench thr --size 16 --only mesh,nobatch,wire\n"
        "  mesh-bench lat --size 16 --count 20000\n"
        "  mesh-bench rr --size 128\n"
        "  mesh-bench repair --size 1024 --stall-ms 100 --hwm 100\n"
        "  perf record -g -- mesh-bench thr --size 16 --only mesh\n"
        "  mesh-bench all --json > bench.jsonl\n"
        "  mesh-bench relay --policies always,never --count 20000\n"
        "\n"
        "Exit status: 0 done, 1 a run failed (e.g. the peer process did not\n"
        "appear within 10 s), 2 bad flags.\n",
        out);
}

int
mb_bad(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("mesh-bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (see mesh-bench --help)\n", stderr);
    va_end(ap);
    return -1;
}

int
mb_parse_num(const char *s, long long min, long long max, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int
s_parse_paths(const char *list, int *paths)
{
    *paths = 0;
    char buf[64];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        int found = 0;
        for (int p = 0; p < S_PATHS; p++)
            if (strcmp(tok, s_path_names[p]) == 0) {
                *paths |= 1 << p;
                found = 1;
            }
        if (!found)
            return -1;
    }
    return *paths ? 0 : -1;
}

/*  How a command takes --size (and --count). */
enum { S_SIZE_NONE = 0, S_SIZE_REQUIRED = 1, S_SIZE_OPTIONAL = 2 };

/*  Flags after the command. */
static int
s_parse(int argc, char **argv, int size_mode, mb_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->hwm = S_DEFAULT_HWM;
    o->retransmit = -1;
    o->stall_ms = -1;
    o->rate = -1;
    int have_size = 0;
    static const char *valued[] = {"--size",       "--count",     "--runs",
                                   "--hwm",        "--transport", "--only",
                                   "--retransmit", "--stall-ms",  "--rate"};
    for (int i = 2; i < argc; i++) {
        const char *flag = argv[i];
        long long v;
        if (strcmp(flag, "--json") == 0) {
            o->json = 1;
            continue;
        }
        if (strcmp(flag, "-v") == 0 || strcmp(flag, "--verbose") == 0) {
            o->verbose = 1;
            continue;
        }
        if (strcmp(flag, "-vv") == 0) {
            o->verbose = 2;
            continue;
        }
        int known = 0;
        for (size_t k = 0; k < sizeof valued / sizeof *valued; k++)
            known |= strcmp(flag, valued[k]) == 0;
        if (!known)
            return mb_bad("unknown flag '%s'", flag);
        if (i + 1 >= argc)
            return mb_bad("%s needs a value", flag);
        const char *val = argv[++i];
        if (strcmp(flag, "--size") == 0) {
            if (size_mode == S_SIZE_NONE ||
                mb_parse_num(val, 1, 1 << 26, &v) < 0)
                return mb_bad("bad --size '%s'", val);
            o->size = (size_t)v;
            have_size = 1;
        } else if (strcmp(flag, "--count") == 0) {
            if (size_mode == S_SIZE_NONE ||
                mb_parse_num(val, 2, 10000000000LL, &v) < 0)
                return mb_bad("bad --count '%s'", val);
            o->count = (long)v;
        } else if (strcmp(flag, "--runs") == 0) {
            if (mb_parse_num(val, 1, 100, &v) < 0)
                return mb_bad("bad --runs '%s'", val);
            o->runs = (int)v;
        } else if (strcmp(flag, "--hwm") == 0) {
            if (mb_parse_num(val, 0, 1000000000, &v) < 0)
                return mb_bad("bad --hwm '%s'", val);
            o->hwm = (int)v;
            o->hwm_given = 1;
        } else if (strcmp(flag, "--retransmit") == 0) {
            if (mb_parse_num(val, 0, 1LL << 40, &v) < 0)
                return mb_bad("bad --retransmit '%s'", val);
            o->retransmit = v;
        } else if (strcmp(flag, "--rate") == 0) {
            if (mb_parse_num(val, 0, 1000000000, &v) < 0)
                return mb_bad("bad --rate '%s'", val);
            o->rate = (long)v;
        } else if (strcmp(flag, "--stall-ms") == 0) {
            if (mb_parse_num(val, 0, 60000, &v) < 0)
                return mb_bad("bad --stall-ms '%s'", val);
            o->stall_ms = (int)v;
        } else if (strcmp(flag, "--transport") == 0) {
            if (strcmp(val, "tcp") == 0)
                o->ipc = 0;
            else if (strcmp(val, "ipc") == 0)
                o->ipc = 1;
            else
                return mb_bad("bad --transport '%s' (tcp or ipc)", val);
        } else if (s_parse_paths(val, &o->paths) < 0) {
            return mb_bad(
                "bad --only '%s' (raw, mesh, nobatch, norepair, hop, wire)",
                val);
        }
    }
    if (size_mode == S_SIZE_REQUIRED && !have_size)
        return mb_bad("%s needs --size", argv[1]);
    return 0;
}

static long
s_default_thr_count(size_t size)
{
    /*  About 512 MB per run, capped: 1M small messages, fewer big ones,
        so a run takes a second or two at the rates loopback gives, and a
        backlog held by the HWM stays far below the machine's memory. */
    long c = (long)(512000000.0 / (double)size);
    if (c > 1000000)
        c = 1000000;
    if (c < 1000)
        c = 1000;
    return c;
}

const char *
mb_grouped(double v, char *buf, size_t cap)
{
    char digits[32];
    snprintf(digits, sizeof digits, "%.0f", v);
    size_t n = strlen(digits);
    size_t j = 0;
    for (size_t i = 0; i < n && j + 2 < cap; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            buf[j++] = ',';
        buf[j++] = digits[i];
    }
    buf[j] = '\0';
    return buf;
}

const char *
mb_jnum(int have, int decimals, double v, char *buf, size_t cap)
{
    if (!have)
        return "null";
    snprintf(buf, cap, "%.*f", decimals, v);
    return buf;
}

/*  The mesh path's reliability as the command line sets it. */
static mb_mesh_cfg_t
s_mesh_cfg(const mb_opts_t *o)
{
    mb_mesh_cfg_t cfg = MB_MESH_DEFAULTS;
    cfg.retransmit = o->retransmit;
    return cfg;
}

static long long
s_retransmit_shown(const mb_opts_t *o)
{
    return o->retransmit >= 0 ? o->retransmit : S_LIB_RETRANSMIT;
}

static int
s_thr(const mb_opts_t *o)
{
    long count = o->count ? o->count : s_default_thr_count(o->size);
    int runs = o->runs ? o->runs : 5;
    int paths = o->paths ? o->paths : S_THR_PATHS;
    const mb_mesh_cfg_t on = s_mesh_cfg(o);
    const mb_mesh_cfg_t off = MB_MESH_NO_REPAIR;
    mb_mesh_cfg_t nobatch = on;
    nobatch.batch_off = 1;
    double rate[S_PATHS][100];
    double cpu[S_PATHS][100];
    long lost[S_PATHS] = {0};
    /*  Over all runs of a mesh path: events published, and how many of
        them went out in batch frames, in how many frames. */
    long sent[S_PATHS] = {0};
    long batched[S_PATHS] = {0};
    long batches[S_PATHS] = {0};
    int late_probe = 0;
    if (o->hwm > 0 && count >= o->hwm)
        fprintf(stderr,
                "mesh-bench: warning: %ld messages do not fit HWM %d: the "
                "publisher may drop some (see --hwm)\n",
                count, o->hwm);
    for (int r = 0; r < runs; r++) {
        /*  Rotate the order, so no path always runs first or last (CPU
            frequency, page cache and a noisy neighbour hit all alike). */
        for (int k = 0; k < S_PATHS; k++) {
            int p = (r + k) % S_PATHS;
            if (!(paths & MB_PATH(p)))
                continue;
            mb_thr_run_t res = {0};
            int rc;
            int is_mesh = p == MB_MESH || p == MB_NOREPAIR || p == MB_NOBATCH;
            if (is_mesh)
                rc = mb_mesh_thr_run(o->size, count,
                                     p == MB_MESH      ? &on
                                     : p == MB_NOBATCH ? &nobatch
                                                       : &off,
                                     o->verbose, &res);
            else
                rc = mb_raw_thr_run(
                    p == MB_WIRE ? s_wire_size(o->size) : o->size, count,
                    o->ipc, p == MB_HOP, o->hwm, o->verbose, &res);
            if (rc < 0) {
                fprintf(stderr, "mesh-bench: thr %zu B, run %d, %s failed\n",
                        o->size, r + 1, s_path_names[p]);
                return -1;
            }
            rate[p][r] = res.msgs_per_s;
            cpu[p][r] = res.cpu_ns;
            lost[p] += res.sent - res.received;
            sent[p] += res.sent;
            batched[p] += res.batched;
            batches[p] += res.batches;
            if (is_mesh && res.first_probe_seq > 1)
                late_probe++;
            if (o->verbose)
                fprintf(stderr,
                        "mesh-bench: thr %zu B run %d %-8s %12.0f msg/s, "
                        "received %ld/%ld, publisher loop %.0f ns/msg, CPU "
                        "%.0f ns/msg",
                        o->size, r + 1, s_path_names[p], res.msgs_per_s,
                        res.received, res.sent, res.send_ns, res.cpu_ns);
            if (o->verbose && is_mesh)
                fprintf(stderr, ", %ld events in %ld batch frames", res.batched,
                        res.batches);
            if (o->verbose)
                fprintf(stderr, "\n");
        }
    }
    if (late_probe)
        fprintf(stderr,
                "mesh-bench: warning: in %d mesh runs the first probe "
                "published after zmesh_agent_wait_subscribers() was lost\n",
                late_probe);

    int have[S_PATHS];
    double med[S_PATHS], med_cpu[S_PATHS], med_ratio[S_PATHS] = {0};
    for (int p = 0; p < S_PATHS; p++) {
        have[p] = (paths & MB_PATH(p)) != 0;
        /*  mb_median sorts, so rate[p][0] and [runs - 1] become the
            extremes, printed to show the spread. */
        med[p] = have[p] ? mb_median(rate[p], (size_t)runs) : 0.0;
        med_cpu[p] = have[p] ? mb_median(cpu[p], (size_t)runs) : 0.0;
    }
    /*  The ratio of the medians: on a shared VM the noise is mostly per
        run (where the scheduler put the four busy threads), so pairing
        runs adds the noise of both; the medians of interleaved runs
        already share the machine's slow drift. */
    for (int p = 1; p < S_PATHS; p++)
        if (have[p] && have[MB_RAW] && med[MB_RAW] > 0)
            med_ratio[p] = med[p] / med[MB_RAW];
    int on_off = have[MB_MESH] && have[MB_NOREPAIR] && med[MB_NOREPAIR] > 0;
    double on_off_ratio = on_off ? med[MB_MESH] / med[MB_NOREPAIR] : 0.0;
    int batching = have[MB_MESH] && have[MB_NOBATCH] && med[MB_NOBATCH] > 0;
    double batching_ratio = batching ? med[MB_MESH] / med[MB_NOBATCH] : 0.0;
    int nobatch_wire = have[MB_NOBATCH] && have[MB_WIRE] && med[MB_WIRE] > 0;
    double nobatch_wire_ratio =
        nobatch_wire ? med[MB_NOBATCH] / med[MB_WIRE] : 0.0;
    /*  The share of the events published that went out in batch frames,
        and how many a frame held on average, over all runs of a path. */
    double batched_frac[S_PATHS] = {0}, per_batch[S_PATHS] = {0};
    for (int p = 0; p < S_PATHS; p++) {
        if (sent[p] > 0)
            batched_frac[p] = (double)batched[p] / (double)sent[p];
        if (batches[p] > 0)
            per_batch[p] = (double)batched[p] / (double)batches[p];
    }
    if (have[MB_NOBATCH] && batched[MB_NOBATCH] > 0)
        fprintf(stderr,
                "mesh-bench: warning: with batching off, %ld events still "
                "went out in batch frames\n",
                batched[MB_NOBATCH]);
    const char *transport = o->ipc ? "ipc" : "tcp";
    if (o->json) {
        char v[20][32];
        printf(
            "{\"bench\":\"thr\",\"size\":%zu,\"transport\":\"%s\","
            "\"mesh_transport\":\"tcp\",\"count\":%ld,"
            "\"mesh_msgs_per_s\":%s,\"raw_msgs_per_s\":%s,\"ratio\":%s,"
            "\"runs\":%d,\"hwm\":%d,\"lost_mesh\":%s,\"lost_raw\":%s,"
            "\"mesh_cpu_ns_per_msg\":%s,\"raw_cpu_ns_per_msg\":%s,"
            "\"retransmit_bytes\":%lld,"
            "\"mesh_norepair_msgs_per_s\":%s,\"ratio_norepair\":%s,"
            "\"lost_mesh_norepair\":%s,"
            "\"mesh_norepair_cpu_ns_per_msg\":%s,"
            "\"ratio_repair_on_off\":%s,"
            "\"mesh_nobatch_msgs_per_s\":%s,\"ratio_nobatch\":%s,"
            "\"lost_mesh_nobatch\":%s,"
            "\"mesh_nobatch_cpu_ns_per_msg\":%s,"
            "\"ratio_batching\":%s,"
            "\"mesh_batched_fraction\":%s,\"mesh_events_per_batch\":%s,"
            "\"mesh_nobatch_batched_fraction\":%s}\n",
            o->size, transport, count,
            mb_jnum(have[MB_MESH], 0, med[MB_MESH], v[0], 32),
            mb_jnum(have[MB_RAW], 0, med[MB_RAW], v[1], 32),
            mb_jnum(have[MB_MESH] && have[MB_RAW], 3, med_ratio[MB_MESH], v[2],
                    32),
            runs, o->hwm,
            mb_jnum(have[MB_MESH], 0, (double)lost[MB_MESH], v[3], 32),
            mb_jnum(have[MB_RAW], 0, (double)lost[MB_RAW], v[4], 32),
            mb_jnum(have[MB_MESH], 0, med_cpu[MB_MESH], v[5], 32),
            mb_jnum(have[MB_RAW], 0, med_cpu[MB_RAW], v[6], 32),
            s_retransmit_shown(o),
            mb_jnum(have[MB_NOREPAIR], 0, med[MB_NOREPAIR], v[7], 32),
            mb_jnum(have[MB_NOREPAIR] && have[MB_RAW], 3,
                    med_ratio[MB_NOREPAIR], v[8], 32),
            mb_jnum(have[MB_NOREPAIR], 0, (double)lost[MB_NOREPAIR], v[9], 32),
            mb_jnum(have[MB_NOREPAIR], 0, med_cpu[MB_NOREPAIR], v[10], 32),
            mb_jnum(on_off, 3, on_off_ratio, v[11], 32),
            mb_jnum(have[MB_NOBATCH], 0, med[MB_NOBATCH], v[12], 32),
            mb_jnum(have[MB_NOBATCH] && have[MB_RAW], 3, med_ratio[MB_NOBATCH],
                    v[13], 32),
            mb_jnum(have[MB_NOBATCH], 0, (double)lost[MB_NOBATCH], v[14], 32),
            mb_jnum(have[MB_NOBATCH], 0, med_cpu[MB_NOBATCH], v[15], 32),
            mb_jnum(batching, 3, batching_ratio, v[16], 32),
            mb_jnum(have[MB_MESH], 3, batched_frac[MB_MESH], v[17], 32),
            mb_jnum(have[MB_MESH] && batches[MB_MESH] > 0, 1,
                    per_batch[MB_MESH], v[18], 32),
            mb_jnum(have[MB_NOBATCH], 3, batched_frac[MB_NOBATCH], v[19], 32));
        if (have[MB_HOP])
            printf("{\"bench\":\"thr-alt\",\"design\":\"thread-hop\","
                   "\"size\":%zu,\"transport\":\"%s\",\"count\":%ld,"
                   "\"msgs_per_s\":%.0f,\"raw_msgs_per_s\":%s,"
                   "\"ratio_to_raw\":%s,\"runs\":%d,\"hwm\":%d,\"lost\":%ld,"
                   "\"lost_raw\":%s,\"cpu_ns_per_msg\":%.0f,"
                   "\"raw_cpu_ns_per_msg\":%s}\n",
                   o->size, transport, count, med[MB_HOP],
                   mb_jnum(have[MB_RAW], 0, med[MB_RAW], v[1], 32),
                   mb_jnum(have[MB_RAW], 3, med_ratio[MB_HOP], v[2], 32), runs,
                   o->hwm, lost[MB_HOP],
                   mb_jnum(have[MB_RAW], 0, (double)lost[MB_RAW], v[4], 32),
                   med_cpu[MB_HOP],
                   mb_jnum(have[MB_RAW], 0, med_cpu[MB_RAW], v[6], 32));
        if (have[MB_WIRE])
            printf("{\"bench\":\"thr-wire\",\"size\":%zu,"
                   "\"wire_size\":%zu,\"transport\":\"%s\",\"count\":%ld,"
                   "\"msgs_per_s\":%.0f,\"ratio_to_raw\":%s,"
                   "\"mesh_ratio_to_wire\":%s,\"runs\":%d,\"lost\":%ld,"
                   "\"cpu_ns_per_msg\":%.0f,\"nobatch_ratio_to_wire\":%s}\n",
                   o->size, s_wire_size(o->size), transport, count,
                   med[MB_WIRE],
                   mb_jnum(have[MB_RAW], 3, med_ratio[MB_WIRE], v[2], 32),
                   mb_jnum(have[MB_MESH] && med[MB_WIRE] > 0, 3,
                           med[MB_WIRE] > 0 ? med[MB_MESH] / med[MB_WIRE] : 0,
                           v[3], 32),
                   runs, lost[MB_WIRE], med_cpu[MB_WIRE],
                   mb_jnum(nobatch_wire, 3, nobatch_wire_ratio, v[4], 32));
        fflush(stdout);
        return 0;
    }
    printf("thr %zu B, %ld messages x %d runs, HWM %d, medians (raw over "
           "%s, mesh over tcp; repair on: retransmit buffer %lld B; "
           "batching on: up to %d events a frame)\n",
           o->size, count, runs, o->hwm, transport, s_retransmit_shown(o),
           S_LIB_BATCH);
    char wire_label[40];
    snprintf(wire_label, sizeof wire_label, "raw at %zu B (wire)",
             s_wire_size(o->size));
    const char *labels[S_PATHS] = {"raw libzmq PUB/SUB", "mesh, repair on",
                                   "raw + thread hop",   wire_label,
                                   "mesh, repair off",   "mesh, batching off"};
    static const int order[S_PATHS] = {MB_RAW,      MB_MESH, MB_NOBATCH,
                                       MB_NOREPAIR, MB_HOP,  MB_WIRE};
    for (int k = 0; k < S_PATHS; k++) {
        int p = order[k];
        if (!have[p])
            continue;
        char num[3][40];
        printf("  %-20s %10s msg/s (runs %s..%s) lost %ld, CPU %.0f ns/msg",
               labels[p], mb_grouped(med[p], num[0], sizeof num[0]),
               mb_grouped(rate[p][0], num[1], sizeof num[1]),
               mb_grouped(rate[p][runs - 1], num[2], sizeof num[2]), lost[p],
               med_cpu[p]);
        if (p > 0 && have[MB_RAW])
            printf("  %s/raw %.2f", s_path_names[p], med_ratio[p]);
        /*  Never "100%" while some event went on its own. */
        double pct = 100.0 * batched_frac[p];
        if (batched[p] < sent[p] && pct > 99.9)
            pct = 99.9;
        if (p == MB_MESH && batches[p] > 0)
            printf("  (%.1f%% of events in batch frames, %.1f events per "
                   "batch)",
                   pct, per_batch[p]);
        else if (p == MB_MESH)
            printf("  (no event in a batch frame)");
        printf("\n");
    }
    if (on_off)
        printf("  repair on/off %.2f: what keeping every frame for repair "
               "costs\n",
               on_off_ratio);
    if (batching)
        printf("  batching on/off %.2f: what batching gains\n", batching_ratio);
    if (have[MB_WIRE])
        printf("  wire: raw libzmq at one single-event frame's size, what the "
               "mesh sends per event without batching\n");
    if (nobatch_wire)
        printf("  nobatch/wire %.2f: the agent's own cost without batching\n",
               nobatch_wire_ratio);
    fflush(stdout);
    return 0;
}

static int
s_lat(const mb_opts_t *o)
{
    /*  Many short runs rather than a few long ones: latency follows the
        scheduler, and finer interleaving spreads other work on the machine
        evenly over both paths. */
    long count = o->count ? o->count : 3000;
    int runs = o->runs ? o->runs : 10;
    int paths = (o->paths ? o->paths : MB_LAT_PATHS) & MB_LAT_PATHS;
    static const int list[3] = {MB_RAW, MB_MESH, MB_NOREPAIR};
    const mb_mesh_cfg_t on = s_mesh_cfg(o);
    const mb_mesh_cfg_t off = MB_MESH_NO_REPAIR;
    int have[3];
    size_t total = (size_t)count * (size_t)runs;
    double *samples[3] = {NULL, NULL, NULL};
    int rc = -1;
    for (int i = 0; i < 3; i++) {
        have[i] = (paths & MB_PATH(list[i])) != 0;
        samples[i] = have[i] ? malloc(total * sizeof(double)) : NULL;
        if (have[i] && !samples[i]) {
            fprintf(stderr, "mesh-bench: out of memory for %zu samples\n",
                    total);
            goto done;
        }
    }
    for (int r = 0; r < runs; r++) {
        for (int k = 0; k < 3; k++) {
            int i = (r + k) % 3;
            int p = list[i];
            if (!have[i])
                continue;
            double *into = samples[i] + (size_t)r * (size_t)count;
            int res =
                p == MB_RAW
                    ? mb_raw_lat_run(o->size, count, o->verbose, into)
                    : mb_mesh_lat_run(o->size, count, p == MB_MESH ? &on : &off,
                                      o->verbose, into);
            if (res < 0) {
                fprintf(stderr, "mesh-bench: lat %zu B, run %d, %s failed\n",
                        o->size, r + 1, s_path_names[p]);
                goto done;
            }
            if (o->verbose) {
                double med = mb_median(into, (size_t)count);
                fprintf(stderr,
                        "mesh-bench: lat %zu B run %d %-8s p50 %.1f us\n",
                        o->size, r + 1, s_path_names[p], med);
            }
        }
    }
    double pct[3][3] = {{0}};
    static const double ps[3] = {0.50, 0.99, 0.999};
    for (int i = 0; i < 3; i++)
        for (int q = 0; q < 3 && have[i]; q++)
            pct[i][q] = mb_percentile(samples[i], total, ps[q]);
    int both = have[0] && have[1] && pct[0][0] > 0;
    double ratio = both ? pct[1][0] / pct[0][0] : 0.0;
    int both_off = have[0] && have[2] && pct[0][0] > 0;
    double ratio_off = both_off ? pct[2][0] / pct[0][0] : 0.0;
    if (o->json) {
        char b[9][32], c[2][32];
        printf("{\"bench\":\"lat\",\"size\":%zu,\"count\":%ld,\"runs\":%d,"
               "\"mesh_p50_us\":%s,\"mesh_p99_us\":%s,\"mesh_p999_us\":%s,"
               "\"raw_p50_us\":%s,\"raw_p99_us\":%s,\"raw_p999_us\":%s,"
               "\"ratio_p50\":%s,\"retransmit_bytes\":%lld,"
               "\"mesh_norepair_p50_us\":%s,\"mesh_norepair_p99_us\":%s,"
               "\"mesh_norepair_p999_us\":%s,\"ratio_norepair_p50\":%s}\n",
               o->size, count, runs, mb_jnum(have[1], 1, pct[1][0], b[0], 32),
               mb_jnum(have[1], 1, pct[1][1], b[1], 32),
               mb_jnum(have[1], 1, pct[1][2], b[2], 32),
               mb_jnum(have[0], 1, pct[0][0], b[3], 32),
               mb_jnum(have[0], 1, pct[0][1], b[4], 32),
               mb_jnum(have[0], 1, pct[0][2], b[5], 32),
               mb_jnum(both, 3, ratio, c[0], 32), s_retransmit_shown(o),
               mb_jnum(have[2], 1, pct[2][0], b[6], 32),
               mb_jnum(have[2], 1, pct[2][1], b[7], 32),
               mb_jnum(have[2], 1, pct[2][2], b[8], 32),
               mb_jnum(both_off, 3, ratio_off, c[1], 32));
    } else {
        printf("lat %zu B, %ld round trips x %d runs, one in flight "
               "(us)\n",
               o->size, count, runs);
        static const char *labels[3] = {"raw DEALER/ROUTER", "mesh, repair on",
                                        "mesh, repair off"};
        for (int i = 0; i < 3; i++) {
            if (!have[i])
                continue;
            printf("  %-20s p50 %8.1f  p99 %8.1f  p99.9 %8.1f", labels[i],
                   pct[i][0], pct[i][1], pct[i][2]);
            if (i == 1 && both)
                printf("  mesh/raw p50 %.2f", ratio);
            if (i == 2 && both_off)
                printf("  norepair/raw p50 %.2f", ratio_off);
            printf("\n");
        }
    }
    fflush(stdout);
    rc = 0;
done:
    for (int i = 0; i < 3; i++)
        free(samples[i]);
    return rc;
}

/*  `repair` for `size` in a process of its own: czmq reads the HWM for
    the agents' sockets from the environment once per process, and this
    one's agents already have thr's. */
static int
s_all_repair(const mb_opts_t *o, size_t size)
{
    char sz[32], runs[16], only[64] = "", parent[32];
    snprintf(sz, sizeof sz, "%zu", size);
    snprintf(runs, sizeof runs, "%d", o->runs);
    int paths = o->paths ? o->paths & MB_REPAIR_PATHS : MB_REPAIR_PATHS;
    if (!paths)
        return 0;
    for (int p = 0; p < S_PATHS; p++)
        if (paths & MB_PATH(p)) {
            if (only[0])
                strcat(only, ",");
            strcat(only, s_path_names[p]);
        }
    char *argv[16];
    int n = 0;
    argv[n++] = "mesh-bench";
    argv[n++] = "repair";
    argv[n++] = "--size";
    argv[n++] = sz;
    argv[n++] = "--only";
    argv[n++] = only;
    if (o->runs) {
        argv[n++] = "--runs";
        argv[n++] = runs;
    }
    if (o->json)
        argv[n++] = "--json";
    if (o->verbose)
        argv[n++] = "-v";
    argv[n] = NULL;
    snprintf(parent, sizeof parent, "%ld", (long)getpid());
    setenv(S_PARENT_ENV, parent, 1);
    fflush(stdout);
    fflush(stderr);
    long count = mb_repair_default_count(size);
    int deadline_s =
        120 + (o->runs ? o->runs : 3) * 3 * (mb_thr_deadline_s(count) + 5);
    int rc = mb_run_self(argv, deadline_s);
    unsetenv(S_PARENT_ENV);
    if (rc != 0)
        fprintf(stderr, "mesh-bench: repair %zu B failed (status %d)\n", size,
                rc);
    return rc == 0 ? 0 : -1;
}

/*  A benchmark that fails is reported and the others still run: on a
    busy machine one failure should not cost the whole set. */
static int
s_all(const mb_opts_t *o)
{
    static const size_t sizes[] = {16, 128, 1024};
    int failed = 0;
    for (int i = 0; i < 3; i++) {
        mb_opts_t t = *o;
        t.size = sizes[i];
        failed |= s_thr(&t) < 0;
    }
    for (int i = 0; i < 3; i++) {
        mb_opts_t t = *o;
        t.size = sizes[i];
        t.paths = (o->paths ? o->paths : MB_LAT_PATHS) & MB_LAT_PATHS;
        if (t.paths)
            failed |= s_lat(&t) < 0;
    }
    for (int i = 0; i < 3; i++) {
        mb_opts_t t = *o;
        t.size = sizes[i];
        t.paths = (o->paths ? o->paths : MB_RR_PATHS) & MB_RR_PATHS;
        if (t.paths)
            failed |= mb_cmd_rr(&t) < 0;
    }
    failed |= s_all_repair(o, MB_REPAIR_SIZE) < 0;
    return failed ? -1 : 0;
}

/*  Other work on the machine moves every number here; say so rather than
    let a busy machine pass for a slow mesh. */
static void
s_warn_if_busy(void)
{
    FILE *f = fopen("/proc/loadavg", "r");
    double load = 0.0;
    if (!f)
        return;
    int got = fscanf(f, "%lf", &load);
    fclose(f);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (got == 1 && cpus > 0 && load > 0.5 * (double)cpus)
        fprintf(stderr,
                "mesh-bench: warning: load average %.2f on %ld CPUs: other "
                "work will move these numbers\n",
                load, cpus);
}

static zmesh_log_level_t
s_log_level(int verbose)
{
    return verbose > 1   ? ZMESH_LOG_DEBUG
           : verbose > 0 ? ZMESH_LOG_INFO
                         : ZMESH_LOG_WARNING;
}

static int
s_peer(int argc, char **argv)
{
    mb_peer_args_t args;
    if (mb_child_args_parse(argc, argv, &args) < 0) {
        fprintf(stderr, "mesh-bench: bad _peer arguments\n");
        return S_EXIT_USAGE;
    }
    zmesh_log_set(zmesh_log_stderr, s_log_level(args.verbose), NULL);
    static const struct {
        const char *kind;
        int (*fn)(const mb_peer_args_t *);
    } kinds[] = {
        {"raw-thr", mb_raw_thr_peer},    {"mesh-thr", mb_mesh_thr_peer},
        {"raw-lat", mb_raw_lat_peer},    {"mesh-lat", mb_mesh_lat_peer},
        {"mesh-rr", mb_mesh_rr_peer},    {"raw-loss", mb_loss_raw_peer},
        {"mesh-loss", mb_loss_mesh_peer}};
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
        if (strcmp(args.kind, kinds[i].kind) == 0)
            return kinds[i].fn(&args) == 0 ? 0 : S_EXIT_FAIL;
    return S_EXIT_USAGE;
}

/*  A `repair` that `all` started dies with it, as its peers die with
    it in turn. */
static void
s_die_with_parent(void)
{
    const char *parent = getenv(S_PARENT_ENV);
    if (!parent || strtol(parent, NULL, 10) != (long)getppid())
        return;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (strtol(parent, NULL, 10) != (long)getppid())
        _exit(S_EXIT_FAIL);
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        s_usage(stderr);
        return S_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
        strcmp(cmd, "help") == 0) {
        s_usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "_peer") == 0)
        return s_peer(argc, argv);
    if (strcmp(cmd, "_exec") == 0)
        return mb_exec_guarded(argc, argv);
    if (strcmp(cmd, "relay") == 0) {
        for (int i = 2; i < argc; i++)
            if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
                s_usage(stdout);
                return 0;
            }
        /*  Its own flags (relay.c); the same log and busy warning. */
        int verbose = 0;
        for (int i = 2; i < argc; i++)
            if (strcmp(argv[i], "-v") == 0 || strcmp(argv[i], "--verbose") == 0)
                verbose = verbose > 1 ? verbose : 1;
            else if (strcmp(argv[i], "-vv") == 0)
                verbose = 2;
        s_warn_if_busy();
        zmesh_log_set(zmesh_log_stderr, s_log_level(verbose), NULL);
        return mb_cmd_relay(argc, argv);
    }
    int is_thr = strcmp(cmd, "thr") == 0;
    int is_lat = strcmp(cmd, "lat") == 0;
    int is_rr = strcmp(cmd, "rr") == 0 || strcmp(cmd, "reqrep") == 0;
    int is_repair = strcmp(cmd, "repair") == 0;
    int is_all = strcmp(cmd, "all") == 0;
    if (!is_thr && !is_lat && !is_rr && !is_repair && !is_all) {
        mb_bad("unknown command '%s'", cmd);
        return S_EXIT_USAGE;
    }
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            s_usage(stdout);
            return 0;
        }
    mb_opts_t o;
    int size_mode = is_all      ? S_SIZE_NONE
                    : is_repair ? S_SIZE_OPTIONAL
                                : S_SIZE_REQUIRED;
    if (s_parse(argc, argv, size_mode, &o) < 0)
        return S_EXIT_USAGE;
    /*  Named rather than ignored: a script asking for it would otherwise
        get a result without the row it wanted. */
    if ((is_lat || is_rr || is_repair) && (o.paths & MB_PATH(MB_NOBATCH))) {
        mb_bad("%s has no nobatch path%s", cmd,
               is_lat ? ": with one message in flight nothing is batched" : "");
        return S_EXIT_USAGE;
    }
    if (is_lat && o.paths && !(o.paths & MB_LAT_PATHS)) {
        mb_bad("lat has no hop or wire path: --only raw, mesh or norepair");
        return S_EXIT_USAGE;
    }
    if (is_rr && o.paths && !(o.paths & MB_RR_PATHS)) {
        mb_bad("rr has the paths raw and mesh only");
        return S_EXIT_USAGE;
    }
    if (is_repair) {
        if (o.paths && !(o.paths & MB_REPAIR_PATHS)) {
            mb_bad("repair has the paths raw, mesh and norepair only");
            return S_EXIT_USAGE;
        }
        if (!o.size)
            o.size = MB_REPAIR_SIZE;
        if (o.size < MB_LOSS_MIN_SIZE) {
            mb_bad("repair needs --size %d or more (room for a sequence "
                   "number)",
                   MB_LOSS_MIN_SIZE);
            return S_EXIT_USAGE;
        }
        if (!o.hwm_given)
            o.hwm = MB_REPAIR_HWM;
    }
    s_die_with_parent();
    s_warn_if_busy();
    /*  zmesh.h has no HWM setting; the agent makes its sockets with czmq,
        whose defaults come from these variables, read once when the first
        socket of the process is made. The peer processes inherit them. */
    char hwm[16];
    snprintf(hwm, sizeof hwm, "%d", o.hwm);
    setenv("ZSYS_SNDHWM", hwm, 1);
    setenv("ZSYS_RCVHWM", hwm, 1);
    zmesh_log_set(zmesh_log_stderr, s_log_level(o.verbose), NULL);
    int rc = is_thr      ? s_thr(&o)
             : is_lat    ? s_lat(&o)
             : is_rr     ? mb_cmd_rr(&o)
             : is_repair ? mb_cmd_repair(&o)
                         : s_all(&o);
    return rc == 0 ? 0 : S_EXIT_FAIL;
}
