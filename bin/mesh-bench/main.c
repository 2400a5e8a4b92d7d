/*  main.c - mesh-bench: how fast the mesh moves events, against raw libzmq
    measured in the same run on the same machine. `thr` counts messages per
    second between two processes (raw PUB/SUB, the mesh, and raw with a
    thread hop on each side); `lat` times round trips with one in flight;
    `all` runs both for 16, 128 and 1024 bytes. The work is in raw.c and
    mesh.c; this file parses flags, orders the runs and prints medians.
    It is a tool, not a test: it judges nothing, it reports.
*/
#include "bench.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmesh.h>

#define S_EXIT_FAIL 1
#define S_EXIT_USAGE 2

typedef struct {
    size_t size;
    long count; /* 0: the default for the size */
    int runs;   /* 0: the default for the benchmark */
    int json;
    int ipc;
    int verbose;
    int paths; /* bit (1 << mb_path_t) for each path to run */
    int hwm;   /* SNDHWM/RCVHWM of every data socket, raw and mesh */
} s_opts_t;

/*  PUB drops what its HWM does not hold, and a publisher in a loop
    outruns any subscriber: with libzmq's default of 1000 nearly every
    message of a 1M burst is dropped and the subscriber measures only the
    start of the stream. So both paths get a HWM that holds the whole run
    unless --hwm says otherwise (twice the largest default count, as the
    probes count too); loss is still counted and printed. */
#define S_DEFAULT_HWM 2000000

static const char *s_path_names[] = {"raw", "mesh", "hop", "wire"};
#define S_PATHS 4

/*  The bytes a mesh event of `size` payload bytes takes on the wire in
    this benchmark (proto/wire.md#event-frame): "bench.thr", NUL, fixarray,
    bin8 header and 16-byte id, a sequence of up to 5 bytes and a 9-byte
    timestamp. The "wire" path sends raw messages of this size, which tells
    the cost of the bigger frame apart from the cost of the agent's code. */
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
        "                      [--transport tcp|ipc] [--hwm H] [--only PATHS]\n"
        "                      [-v]\n"
        "       mesh-bench lat --size N [--count C] [--runs R] [--json]\n"
        "                      [--only PATHS] [-v]\n"
        "       mesh-bench all [--runs R] [--json] [-v]\n"
        "\n"
        "Measures the mesh against raw libzmq in the same run, between two\n"
        "processes on loopback, and prints medians and ratios.\n"
        "\n"
        "  thr   messages per second, publisher -> subscriber. Four paths:\n"
        "        raw (libzmq PUB/SUB), mesh (two agents, topic bench.thr),\n"
        "        hop (raw through an inproc thread hop on each side, the\n"
        "        cost of an agent thread on the data path) and wire (raw\n"
        "        with messages as big as the mesh's frames). Runs\n"
        "        alternate between the paths; default C is 1,000,000 for\n"
        "        small sizes and less for big ones, R is 5.\n"
        "  lat   round trip with one message in flight: raw DEALER/ROUTER\n"
        "        echo against the mesh's bench.ping -> bench.pong echo.\n"
        "        p50/p99/p99.9 over all samples of all runs, after 1000\n"
        "        warm-up round trips per run; default C 3,000, R 10.\n"
        "  all   thr and lat for 16, 128 and 1024 bytes with the default\n"
        "        counts: one to two minutes on a 2-core VM.\n"
        "\n"
        "  --size N       payload bytes (1..67108864); the mesh payload is\n"
        "                 one msgpack bin of exactly N encoded bytes\n"
        "  --count C      messages (thr) or round trips (lat) per run\n"
        "  --runs R       runs per path (1..100)\n"
        "  --transport T  tcp (default) or ipc for the raw paths; the mesh\n"
        "                 always uses tcp, and says so\n"
        "  --hwm H        send and receive HWM of the data sockets, raw and\n"
        "                 mesh alike (default 2000000: a run of up to 2M\n"
        "                 messages drops nothing; 1000 is libzmq's\n"
        "                 default; 0 means no limit)\n"
        "  --only PATHS   comma list of raw,mesh,hop,wire to run (profiling)\n"
        "  --json         one JSON object per result line\n"
        "  -v             per-run numbers and the library's log on stderr\n"
        "\n"
        "examples:\n"
        "  mesh-bench thr --size 16\n"
        "  mesh-bench thr --size 1024 --runs 10 --json\n"
        "  mesh-bench thr --size 128 --transport ipc\n"
        "  mesh-bench lat --size 16 --count 20000\n"
        "  perf record -g -- mesh-bench thr --size 16 --only mesh\n"
        "  mesh-bench all --json > bench.jsonl\n"
        "\n"
        "Exit status: 0 done, 1 a run failed (e.g. the peer process did not\n"
        "appear within 10 s), 2 bad flags.\n",
        out);
}

static int s_bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
s_bad(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("mesh-bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (see mesh-bench --help)\n", stderr);
    va_end(ap);
    return -1;
}

static int
s_parse_num(const char *s, long long min, long long max, long long *out)
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

/*  Flags after the command; `need_size` for thr and lat. */
static int
s_parse(int argc, char **argv, int need_size, s_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->paths = 15;
    o->hwm = S_DEFAULT_HWM;
    int have_size = 0;
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
        if (strcmp(flag, "--size") != 0 && strcmp(flag, "--count") != 0 &&
            strcmp(flag, "--runs") != 0 && strcmp(flag, "--transport") != 0 &&
            strcmp(flag, "--only") != 0 && strcmp(flag, "--hwm") != 0)
            return s_bad("unknown flag '%s'", flag);
        if (i + 1 >= argc)
            return s_bad("%s needs a value", flag);
        const char *val = argv[++i];
        if (strcmp(flag, "--size") == 0) {
            if (!need_size || s_parse_num(val, 1, 1 << 26, &v) < 0)
                return s_bad("bad --size '%s'", val);
            o->size = (size_t)v;
            have_size = 1;
        } else if (strcmp(flag, "--count") == 0) {
            if (!need_size || s_parse_num(val, 2, 10000000000LL, &v) < 0)
                return s_bad("bad --count '%s'", val);
            o->count = (long)v;
        } else if (strcmp(flag, "--runs") == 0) {
            if (s_parse_num(val, 1, 100, &v) < 0)
                return s_bad("bad --runs '%s'", val);
            o->runs = (int)v;
        } else if (strcmp(flag, "--hwm") == 0) {
            if (s_parse_num(val, 0, 1000000000, &v) < 0)
                return s_bad("bad --hwm '%s'", val);
            o->hwm = (int)v;
        } else if (strcmp(flag, "--transport") == 0) {
            if (strcmp(val, "tcp") == 0)
                o->ipc = 0;
            else if (strcmp(val, "ipc") == 0)
                o->ipc = 1;
            else
                return s_bad("bad --transport '%s' (tcp or ipc)", val);
        } else if (s_parse_paths(val, &o->paths) < 0) {
            return s_bad("bad --only '%s' (raw, mesh, hop, wire)", val);
        }
    }
    if (need_size && !have_size)
        return s_bad("%s needs --size", argv[1]);
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

/*  "1,234,567" for the human output. */
static const char *
s_grouped(double v, char *buf, size_t cap)
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

/*  A JSON number, or null when the path did not run. */
static const char *
s_jnum(int have, int decimals, double v, char *buf, size_t cap)
{
    if (!have)
        return "null";
    snprintf(buf, cap, "%.*f", decimals, v);
    return buf;
}

static int
s_thr(const s_opts_t *o)
{
    long count = o->count ? o->count : s_default_thr_count(o->size);
    int runs = o->runs ? o->runs : 5;
    double rate[S_PATHS][100];
    double cpu[S_PATHS][100];
    long lost[S_PATHS] = {0, 0, 0, 0};
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
            if (!(o->paths & (1 << p)))
                continue;
            mb_thr_run_t res = {0};
            int rc = p == MB_MESH
                         ? mb_mesh_thr_run(o->size, count, o->verbose, &res)
                         : mb_raw_thr_run(p == MB_WIRE ? s_wire_size(o->size)
                                                       : o->size,
                                          count, o->ipc, p == MB_HOP, o->hwm,
                                          o->verbose, &res);
            if (rc < 0) {
                fprintf(stderr, "mesh-bench: thr %zu B, run %d, %s failed\n",
                        o->size, r + 1, s_path_names[p]);
                return -1;
            }
            rate[p][r] = res.msgs_per_s;
            cpu[p][r] = res.cpu_ns;
            lost[p] += res.sent - res.received;
            if (p == MB_MESH && res.first_probe_seq > 1)
                late_probe++;
            if (o->verbose)
                fprintf(stderr,
                        "mesh-bench: thr %zu B run %d %-4s %12.0f msg/s, "
                        "received %ld/%ld, publisher loop %.0f ns/msg, CPU "
                        "%.0f ns/msg\n",
                        o->size, r + 1, s_path_names[p], res.msgs_per_s,
                        res.received, res.sent, res.send_ns, res.cpu_ns);
        }
    }
    if (late_probe)
        fprintf(stderr,
                "mesh-bench: warning: in %d of %d mesh runs the first probe "
                "published after zmesh_agent_wait_subscribers() was lost\n",
                late_probe, runs);

    int have[S_PATHS];
    double med[S_PATHS], med_cpu[S_PATHS], med_ratio[S_PATHS] = {0, 0, 0, 0};
    for (int p = 0; p < S_PATHS; p++) {
        have[p] = (o->paths & (1 << p)) != 0;
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
    const char *transport = o->ipc ? "ipc" : "tcp";
    if (o->json) {
        char v[8][32];
        printf("{\"bench\":\"thr\",\"size\":%zu,\"transport\":\"%s\","
               "\"mesh_transport\":\"tcp\",\"count\":%ld,"
               "\"mesh_msgs_per_s\":%s,\"raw_msgs_per_s\":%s,\"ratio\":%s,"
               "\"runs\":%d,\"hwm\":%d,\"lost_mesh\":%s,\"lost_raw\":%s,"
               "\"mesh_cpu_ns_per_msg\":%s,\"raw_cpu_ns_per_msg\":%s}\n",
               o->size, transport, count,
               s_jnum(have[MB_MESH], 0, med[MB_MESH], v[0], 32),
               s_jnum(have[MB_RAW], 0, med[MB_RAW], v[1], 32),
               s_jnum(have[MB_MESH] && have[MB_RAW], 3, med_ratio[MB_MESH],
                      v[2], 32),
               runs, o->hwm,
               s_jnum(have[MB_MESH], 0, (double)lost[MB_MESH], v[3], 32),
               s_jnum(have[MB_RAW], 0, (double)lost[MB_RAW], v[4], 32),
               s_jnum(have[MB_MESH], 0, med_cpu[MB_MESH], v[5], 32),
               s_jnum(have[MB_RAW], 0, med_cpu[MB_RAW], v[6], 32));
        if (have[MB_HOP])
            printf("{\"bench\":\"thr-alt\",\"design\":\"thread-hop\","
                   "\"size\":%zu,\"transport\":\"%s\",\"count\":%ld,"
                   "\"msgs_per_s\":%.0f,\"raw_msgs_per_s\":%s,"
                   "\"ratio_to_raw\":%s,\"runs\":%d,\"hwm\":%d,\"lost\":%ld,"
                   "\"lost_raw\":%s,\"cpu_ns_per_msg\":%.0f,"
                   "\"raw_cpu_ns_per_msg\":%s}\n",
                   o->size, transport, count, med[MB_HOP],
                   s_jnum(have[MB_RAW], 0, med[MB_RAW], v[1], 32),
                   s_jnum(have[MB_RAW], 3, med_ratio[MB_HOP], v[2], 32), runs,
                   o->hwm, lost[MB_HOP],
                   s_jnum(have[MB_RAW], 0, (double)lost[MB_RAW], v[4], 32),
                   med_cpu[MB_HOP],
                   s_jnum(have[MB_RAW], 0, med_cpu[MB_RAW], v[6], 32));
        if (have[MB_WIRE])
            printf("{\"bench\":\"thr-wire\",\"size\":%zu,"
                   "\"wire_size\":%zu,\"transport\":\"%s\",\"count\":%ld,"
                   "\"msgs_per_s\":%.0f,\"ratio_to_raw\":%s,"
                   "\"mesh_ratio_to_wire\":%s,\"runs\":%d,\"lost\":%ld,"
                   "\"cpu_ns_per_msg\":%.0f}\n",
                   o->size, s_wire_size(o->size), transport, count,
                   med[MB_WIRE],
                   s_jnum(have[MB_RAW], 3, med_ratio[MB_WIRE], v[2], 32),
                   s_jnum(have[MB_MESH] && med[MB_WIRE] > 0, 3,
                          med[MB_WIRE] > 0 ? med[MB_MESH] / med[MB_WIRE] : 0,
                          v[3], 32),
                   runs, lost[MB_WIRE], med_cpu[MB_WIRE]);
        fflush(stdout);
        return 0;
    }
    printf("thr %zu B, %ld messages x %d runs, HWM %d, medians (raw over "
           "%s, mesh over tcp)\n",
           o->size, count, runs, o->hwm, transport);
    char wire_label[40];
    snprintf(wire_label, sizeof wire_label, "raw at %zu B (wire)",
             s_wire_size(o->size));
    const char *labels[] = {"raw libzmq PUB/SUB", "mesh", "raw + thread hop",
                            wire_label};
    for (int p = 0; p < S_PATHS; p++) {
        if (!have[p])
            continue;
        char num[3][40];
        printf("  %-18s %10s msg/s (runs %s..%s) lost %ld, CPU %.0f ns/msg",
               labels[p], s_grouped(med[p], num[0], sizeof num[0]),
               s_grouped(rate[p][0], num[1], sizeof num[1]),
               s_grouped(rate[p][runs - 1], num[2], sizeof num[2]), lost[p],
               med_cpu[p]);
        if (p > 0 && have[MB_RAW])
            printf("  %s/raw %.2f", s_path_names[p], med_ratio[p]);
        printf("\n");
    }
    if (have[MB_MESH] && have[MB_WIRE] && med[MB_WIRE] > 0)
        printf("  mesh/wire %.2f: the agent's own cost, with the frame's "
               "size taken out\n",
               med[MB_MESH] / med[MB_WIRE]);
    fflush(stdout);
    return 0;
}

static int
s_lat(const s_opts_t *o)
{
    /*  Many short runs rather than a few long ones: latency follows the
        scheduler, and finer interleaving spreads other work on the machine
        evenly over both paths. */
    long count = o->count ? o->count : 3000;
    int runs = o->runs ? o->runs : 10;
    int have[2] = {(o->paths & 1) != 0, (o->paths & 2) != 0};
    size_t total = (size_t)count * (size_t)runs;
    double *samples[2] = {malloc(total * sizeof(double)),
                          malloc(total * sizeof(double))};
    int rc = -1;
    if (!samples[0] || !samples[1]) {
        fprintf(stderr, "mesh-bench: out of memory for %zu samples\n", total);
        goto done;
    }
    for (int r = 0; r < runs; r++) {
        for (int k = 0; k < 2; k++) {
            int p = (r + k) % 2;
            if (!have[p])
                continue;
            double *into = samples[p] + (size_t)r * (size_t)count;
            int res = p == MB_MESH
                          ? mb_mesh_lat_run(o->size, count, o->verbose, into)
                          : mb_raw_lat_run(o->size, count, o->verbose, into);
            if (res < 0) {
                fprintf(stderr, "mesh-bench: lat %zu B, run %d, %s failed\n",
                        o->size, r + 1, s_path_names[p]);
                goto done;
            }
            if (o->verbose) {
                double med = mb_median(into, (size_t)count);
                fprintf(stderr,
                        "mesh-bench: lat %zu B run %d %-4s p50 %.1f us\n",
                        o->size, r + 1, s_path_names[p], med);
            }
        }
    }
    double pct[2][3] = {{0}};
    static const double ps[3] = {0.50, 0.99, 0.999};
    for (int p = 0; p < 2; p++)
        for (int q = 0; q < 3 && have[p]; q++)
            pct[p][q] = mb_percentile(samples[p], total, ps[q]);
    int both = have[0] && have[1] && pct[MB_RAW][0] > 0;
    double ratio = both ? pct[MB_MESH][0] / pct[MB_RAW][0] : 0.0;
    if (o->json) {
        char b[6][32], c[32];
        printf("{\"bench\":\"lat\",\"size\":%zu,\"count\":%ld,\"runs\":%d,"
               "\"mesh_p50_us\":%s,\"mesh_p99_us\":%s,\"mesh_p999_us\":%s,"
               "\"raw_p50_us\":%s,\"raw_p99_us\":%s,\"raw_p999_us\":%s,"
               "\"ratio_p50\":%s}\n",
               o->size, count, runs, s_jnum(have[1], 1, pct[1][0], b[0], 32),
               s_jnum(have[1], 1, pct[1][1], b[1], 32),
               s_jnum(have[1], 1, pct[1][2], b[2], 32),
               s_jnum(have[0], 1, pct[0][0], b[3], 32),
               s_jnum(have[0], 1, pct[0][1], b[4], 32),
               s_jnum(have[0], 1, pct[0][2], b[5], 32),
               s_jnum(both, 3, ratio, c, sizeof c));
    } else {
        printf("lat %zu B, %ld round trips x %d runs, one in flight "
               "(us)\n",
               o->size, count, runs);
        static const char *labels[] = {"raw DEALER/ROUTER", "mesh"};
        for (int p = 0; p < 2; p++) {
            if (!have[p])
                continue;
            printf("  %-20s p50 %8.1f  p99 %8.1f  p99.9 %8.1f", labels[p],
                   pct[p][0], pct[p][1], pct[p][2]);
            if (p == MB_MESH && both)
                printf("  mesh/raw p50 %.2f", ratio);
            printf("\n");
        }
    }
    fflush(stdout);
    rc = 0;
done:
    free(samples[0]);
    free(samples[1]);
    return rc;
}

static int
s_all(const s_opts_t *o)
{
    static const size_t sizes[] = {16, 128, 1024};
    for (int i = 0; i < 3; i++) {
        s_opts_t t = *o;
        t.size = sizes[i];
        if (s_thr(&t) < 0)
            return -1;
    }
    for (int i = 0; i < 3; i++) {
        s_opts_t t = *o;
        t.size = sizes[i];
        t.paths = o->paths & 3;
        if (t.paths == 0)
            break;
        if (s_lat(&t) < 0)
            return -1;
    }
    return 0;
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

static int
s_peer(int argc, char **argv)
{
    mb_peer_args_t args;
    if (mb_child_args_parse(argc, argv, &args) < 0) {
        fprintf(stderr, "mesh-bench: bad _peer arguments\n");
        return S_EXIT_USAGE;
    }
    zmesh_log_set(zmesh_log_stderr,
                  args.verbose ? ZMESH_LOG_INFO : ZMESH_LOG_WARNING, NULL);
    int rc = -1;
    if (strcmp(args.kind, "raw-thr") == 0)
        rc = mb_raw_thr_peer(&args);
    else if (strcmp(args.kind, "mesh-thr") == 0)
        rc = mb_mesh_thr_peer(&args);
    else if (strcmp(args.kind, "raw-lat") == 0)
        rc = mb_raw_lat_peer(&args);
    else if (strcmp(args.kind, "mesh-lat") == 0)
        rc = mb_mesh_lat_peer(&args);
    else
        return S_EXIT_USAGE;
    return rc == 0 ? 0 : S_EXIT_FAIL;
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
    int is_thr = strcmp(cmd, "thr") == 0;
    int is_lat = strcmp(cmd, "lat") == 0;
    int is_all = strcmp(cmd, "all") == 0;
    if (!is_thr && !is_lat && !is_all) {
        s_bad("unknown command '%s'", cmd);
        return S_EXIT_USAGE;
    }
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            s_usage(stdout);
            return 0;
        }
    s_opts_t o;
    if (s_parse(argc, argv, !is_all, &o) < 0)
        return S_EXIT_USAGE;
    if (is_lat && (o.paths & 3) == 0) {
        s_bad("lat has no hop or wire path: --only raw, mesh or raw,mesh");
        return S_EXIT_USAGE;
    }
    s_warn_if_busy();
    /*  zmesh.h has no HWM setting; the agent makes its sockets with czmq,
        whose defaults come from these variables, read once when the first
        socket of the process is made. The peer processes inherit them. */
    char hwm[16];
    snprintf(hwm, sizeof hwm, "%d", o.hwm);
    setenv("ZSYS_SNDHWM", hwm, 1);
    setenv("ZSYS_RCVHWM", hwm, 1);
    zmesh_log_set(zmesh_log_stderr,
                  o.verbose ? ZMESH_LOG_INFO : ZMESH_LOG_WARNING, NULL);
    int rc = is_thr ? s_thr(&o) : is_lat ? s_lat(&o) : s_all(&o);
    return rc == 0 ? 0 : S_EXIT_FAIL;
}
