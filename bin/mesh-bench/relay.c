/*  relay.c - `mesh-bench relay`: what mesh-relay's publisher confirms and
    durable consumers do against NATS JetStream with file storage doing
    the same work in the same run, on this host, over loopback. For each
    sync policy: confirmed publishes per second with one in flight and
    with a window of 256, then the rate at which a durable consumer
    created afterwards reads and acknowledges everything those published.
    JetStream is nats-server -js, started and stopped here like
    mesh-relay; when it is not installed its column says so and the mesh
    rows still run. The rows are in relay_mesh.c and relay_js.c; this file
    parses flags, owns the temporary directory and the server processes,
    and prints. Like the rest of mesh-bench it judges nothing.
*/
#include "bench.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define S_EXIT_FAIL 1
#define S_EXIT_USAGE 2
#define S_MAX_POLICIES 8
#define S_DEFAULT_POLICIES "always,interval:200,interval:120000,never"

/* ------------------------------------------------------------------------ */
/*  Interruption */

static volatile sig_atomic_t s_stop;

static void
s_on_signal(int sig)
{
    (void)sig;
    s_stop = 1;
}

int
mb_path(char *out, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap) {
        out[0] = '\0';
        return -1;
    }
    return 0;
}

int
mb_relay_stopping(void)
{
    return s_stop != 0;
}

int64_t
mb_relay_row_outcome(mb_relay_row_t *row, int ok, long sent, long *count,
                     int64_t stop_at)
{
    if (ok)
        row->events++;
    else
        row->failed++;
    int64_t now = mb_now_ns();
    if (now > stop_at || mb_relay_stopping())
        row->capped = sent < *count;
    if (row->capped)
        *count = sent;
    return now;
}

void
mb_relay_row_done(mb_relay_row_t *row, int64_t t0, int64_t last)
{
    row->ran = 1;
    row->elapsed_s = (double)(last - t0) / 1e9;
    row->per_s = row->elapsed_s > 0 ? (double)row->events / row->elapsed_s : 0;
}

/* ------------------------------------------------------------------------ */
/*  Server processes */

int
mb_exec_guarded(int argc, char **argv)
{
    /*  mesh-bench _exec PARENT PROGRAM ARGV0 ARGS... */
    if (argc < 5)
        return S_EXIT_USAGE;
    long parent = strtol(argv[2], NULL, 10);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if ((long)getppid() != parent)
        _exit(S_EXIT_FAIL);
    execv(argv[3], argv + 4);
    fprintf(stderr, "mesh-bench: cannot run %s: %s\n", argv[3],
            strerror(errno));
    _exit(127);
}

int
mb_server_start(mb_server_t *srv, const char *log, char *const argv[])
{
    memset(srv, 0, sizeof *srv);
    snprintf(srv->log, sizeof srv->log, "%s", log);
    char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0)
        return -1;
    exe[len] = '\0';
    char parent[32];
    snprintf(parent, sizeof parent, "%ld", (long)getpid());
    char *args[64];
    int n = 0;
    args[n++] = "mesh-bench";
    args[n++] = "_exec";
    args[n++] = parent;
    for (int i = 0; argv[i] && n < 62; i++)
        args[n++] = argv[i];
    args[n] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    int rc = posix_spawn(&srv->pid, exe, &fa, NULL, args, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        fprintf(stderr, "mesh-bench: cannot start %s: %s\n", argv[0],
                strerror(rc));
        srv->pid = 0;
        return -1;
    }
    return 0;
}

int
mb_server_alive(mb_server_t *srv)
{
    int status;
    if (srv->pid <= 0)
        return 0;
    if (waitpid(srv->pid, &status, WNOHANG) == srv->pid) {
        srv->pid = 0;
        return 0;
    }
    return 1;
}

void
mb_server_stop(mb_server_t *srv, int grace_ms)
{
    if (srv->pid <= 0)
        return;
    kill(srv->pid, SIGTERM);
    int64_t deadline = mb_now_ns() + (int64_t)grace_ms * 1000000;
    int status;
    while (waitpid(srv->pid, &status, WNOHANG) == 0) {
        if (mb_now_ns() > deadline) {
            kill(srv->pid, SIGKILL);
            waitpid(srv->pid, &status, 0);
            break;
        }
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    srv->pid = 0;
}

void
mb_server_log_tail(const mb_server_t *srv, const char *who)
{
    FILE *f = fopen(srv->log, "r");
    if (!f)
        return;
    char lines[10][512];
    int n = 0;
    while (fgets(lines[n % 10], sizeof lines[0], f))
        n++;
    fclose(f);
    fprintf(stderr, "mesh-bench: the last lines of %s's log (%s):\n", who,
            srv->log);
    for (int i = n > 10 ? n - 10 : 0; i < n; i++)
        fprintf(stderr, "  %s", lines[i % 10]);
}

/* ------------------------------------------------------------------------ */
/*  Files */

/*  Removes a directory tree that this run made (never follows links). */
static void
s_rmtree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (d) {
            struct dirent *e;
            while ((e = readdir(d))) {
                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                    continue;
                char child[4096];
                int n = snprintf(child, sizeof child, "%s/%s", path, e->d_name);
                if (n > 0 && (size_t)n < sizeof child)
                    s_rmtree(child);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

static int
s_executable(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
           access(path, X_OK) == 0;
}

/*  `name` on PATH, then in the extra directories (nats-server is in
    /usr/sbin on Debian, not on every user's PATH). */
static int
s_find_program(const char *name, const char *const *extra, char *out,
               size_t cap)
{
    const char *path = getenv("PATH");
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path ? path : "/usr/bin:/bin");
    for (char *save = NULL, *dir = strtok_r(buf, ":", &save); dir;
         dir = strtok_r(NULL, ":", &save)) {
        snprintf(out, cap, "%s/%s", dir, name);
        if (s_executable(out))
            return 0;
    }
    for (int i = 0; extra && extra[i]; i++) {
        snprintf(out, cap, "%s/%s", extra[i], name);
        if (s_executable(out))
            return 0;
    }
    return -1;
}

/*  mesh-relay: --relay-bin, $ZMESH_RELAY, next to this executable (the
    build tree's bin/, or the installed bindir), then PATH. */
static int
s_find_relay(const char *given, char *out, size_t cap)
{
    if (given) {
        snprintf(out, cap, "%s", given);
        return s_executable(out) ? 0 : -1;
    }
    const char *env = getenv("ZMESH_RELAY");
    if (env && *env) {
        snprintf(out, cap, "%s", env);
        return s_executable(out) ? 0 : -1;
    }
    char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0) {
        exe[len] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            mb_path(out, cap, "%s/mesh-relay", exe);
            if (s_executable(out))
                return 0;
        }
    }
    return s_find_program("mesh-relay", NULL, out, cap);
}

/* ------------------------------------------------------------------------ */
/*  Flags */

typedef struct {
    size_t size;
    long count;
    int row_limit_s;
    int quick;
    int json;
    int verbose;
    const char *relay_bin;
    const char *nats_bin;
    int only_mesh, only_js; /* --only mesh|jetstream */
    int npolicies;
    char policies[S_MAX_POLICIES][32];
    char tags[S_MAX_POLICIES][32];
} s_opts_t;

/*  always, never or interval:MS (mesh-relay's syntax); the tag names the
    stream and topics: always, never, i200. */
static int
s_policy(const char *p, char *tag, size_t cap)
{
    long long ms;
    if (strcmp(p, "always") == 0 || strcmp(p, "never") == 0) {
        snprintf(tag, cap, "%s", p);
        return 0;
    }
    if (strncmp(p, "interval:", 9) == 0 &&
        mb_parse_num(p + 9, 1, 3600000, &ms) == 0) {
        snprintf(tag, cap, "i%lld", ms);
        return 0;
    }
    return -1;
}

static int
s_parse_policies(const char *list, s_opts_t *o)
{
    char buf[256];
    if (strlen(list) >= sizeof buf)
        return -1;
    snprintf(buf, sizeof buf, "%s", list);
    o->npolicies = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (o->npolicies == S_MAX_POLICIES || strlen(tok) >= 32)
            return -1;
        char tag[32];
        if (s_policy(tok, tag, sizeof tag) < 0)
            return -1;
        for (int i = 0; i < o->npolicies; i++)
            if (strcmp(o->tags[i], tag) == 0)
                return -1;
        snprintf(o->policies[o->npolicies], 32, "%s", tok);
        snprintf(o->tags[o->npolicies], 32, "%s", tag);
        o->npolicies++;
    }
    return o->npolicies ? 0 : -1;
}

static int
s_parse(int argc, char **argv, s_opts_t *o)
{
    memset(o, 0, sizeof *o);
    const char *policies = NULL;
    long long v;
    int have_count = 0, have_limit = 0;
    for (int i = 2; i < argc; i++) {
        const char *flag = argv[i];
        if (strcmp(flag, "--json") == 0) {
            o->json = 1;
            continue;
        }
        if (strcmp(flag, "--quick") == 0) {
            o->quick = 1;
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
        if (strcmp(flag, "--size") && strcmp(flag, "--count") &&
            strcmp(flag, "--policies") && strcmp(flag, "--row-limit") &&
            strcmp(flag, "--relay-bin") && strcmp(flag, "--nats-bin") &&
            strcmp(flag, "--only"))
            return mb_bad("unknown flag '%s' for relay", flag);
        if (i + 1 >= argc)
            return mb_bad("%s needs a value", flag);
        const char *val = argv[++i];
        if (strcmp(flag, "--size") == 0) {
            /*  Room for the payload in one JetStream message and one mesh
                frame under both servers' default 1 MiB limits. */
            if (mb_parse_num(val, 1, 512 * 1024, &v) < 0)
                return mb_bad("bad --size '%s' (1..524288)", val);
            o->size = (size_t)v;
        } else if (strcmp(flag, "--count") == 0) {
            if (mb_parse_num(val, 1, 10000000, &v) < 0)
                return mb_bad("bad --count '%s'", val);
            o->count = (long)v;
            have_count = 1;
        } else if (strcmp(flag, "--row-limit") == 0) {
            if (mb_parse_num(val, 1, 3600, &v) < 0)
                return mb_bad("bad --row-limit '%s' (seconds)", val);
            o->row_limit_s = (int)v;
            have_limit = 1;
        } else if (strcmp(flag, "--policies") == 0) {
            policies = val;
        } else if (strcmp(flag, "--only") == 0) {
            o->only_mesh = strcmp(val, "mesh") == 0;
            o->only_js = strcmp(val, "jetstream") == 0;
            if (!o->only_mesh && !o->only_js)
                return mb_bad("bad --only '%s' (mesh or jetstream)", val);
        } else if (strcmp(flag, "--relay-bin") == 0) {
            o->relay_bin = val;
        } else {
            o->nats_bin = val;
        }
    }
    if (!o->size)
        o->size = 128;
    if (!have_count)
        o->count = o->quick ? 200 : 5000;
    if (!have_limit)
        o->row_limit_s = o->quick ? 5 : 15;
    if (s_parse_policies(policies ? policies : S_DEFAULT_POLICIES, o) < 0)
        return mb_bad("bad --policies '%s' (comma list of always, never, "
                      "interval:MS; each once)",
                      policies);
    return 0;
}

/* ------------------------------------------------------------------------ */
/*  Output */

static const char *s_row_labels[MB_ROWS] = {"confirmed publish, 1 in flight",
                                            "confirmed publish, window 256",
                                            "durable catch-up"};
static const char *s_row_keys[MB_ROWS] = {"publish_1", "publish_256",
                                          "catchup"};

static void
s_print_text_row(int r, const mb_relay_row_t *m, const mb_relay_row_t *j,
                 const char *js_missing)
{
    char g[4][40];
    char label[64];
    if (r == MB_ROW_CATCHUP && m->ran)
        snprintf(label, sizeof label, "%s (%s events)", s_row_labels[r],
                 mb_grouped((double)m->events, g[3], sizeof g[3]));
    else
        snprintf(label, sizeof label, "%s", s_row_labels[r]);
    printf("    %-42s mesh %10s ev/s", label,
           m->ran ? mb_grouped(m->per_s, g[0], sizeof g[0]) : "-");
    if (js_missing) {
        printf("   JetStream %s\n", js_missing);
        return;
    }
    printf("   JetStream %10s ev/s",
           j->ran ? mb_grouped(j->per_s, g[1], sizeof g[1]) : "-");
    if (m->ran && j->ran && j->per_s > 0)
        printf("   mesh/JS %6.2f", m->per_s / j->per_s);
    printf("\n");
    for (int k = 0; k < 2; k++) {
        const mb_relay_row_t *x = k ? j : m;
        if (!x->ran || (!x->failed && !x->capped))
            continue;
        printf("      %s: %ld %s in %.1f s", k ? "JetStream" : "mesh",
               x->events, r == MB_ROW_CATCHUP ? "consumed" : "confirmed",
               x->elapsed_s);
        if (x->failed)
            printf(", %ld %s", x->failed,
                   r == MB_ROW_CATCHUP ? "gaps or losses"
                                       : "not confirmed (failed, timed out)");
        if (x->capped)
            printf(", stopped at the row's time limit");
        printf("\n");
    }
}

static void
s_print_json_row(const s_opts_t *o, int i, int r, const mb_relay_row_t *m,
                 const mb_relay_row_t *j, const char *js_missing,
                 const char *js_sync, int same, const char *js_version)
{
    char b[8][40];
    int both = m->ran && j->ran && j->per_s > 0;
    printf("{\"bench\":\"relay\",\"row\":\"%s\",\"sync\":\"%s\","
           "\"size\":%zu,\"count\":%ld,\"window\":%d,"
           "\"mesh_per_s\":%s,\"mesh_events\":%s,\"mesh_failed\":%s,"
           "\"mesh_capped\":%s,\"js_per_s\":%s,\"js_events\":%s,"
           "\"js_failed\":%s,\"js_capped\":%s,\"ratio\":%s,"
           "\"js_sync\":\"%s\",\"same_durability\":%s,"
           "\"js_version\":\"%s\",\"js_skipped\":%s%s%s}\n",
           s_row_keys[r], o->policies[i], o->size, o->count,
           r == MB_ROW_WINDOW ? MB_RELAY_WINDOW
           : r == MB_ROW_ONE  ? 1
                              : 0,
           mb_jnum(m->ran, 0, m->per_s, b[0], 40),
           mb_jnum(m->ran, 0, (double)m->events, b[1], 40),
           mb_jnum(m->ran, 0, (double)m->failed, b[2], 40),
           m->capped ? "true" : "false", mb_jnum(j->ran, 0, j->per_s, b[3], 40),
           mb_jnum(j->ran, 0, (double)j->events, b[4], 40),
           mb_jnum(j->ran, 0, (double)j->failed, b[5], 40),
           j->capped ? "true" : "false",
           mb_jnum(both, 3, both ? m->per_s / j->per_s : 0, b[6], 40), js_sync,
           js_missing ? "null"
           : same     ? "true"
                      : "false",
           js_version, js_missing ? "\"" : "null", js_missing ? js_missing : "",
           js_missing ? "\"" : "");
}

/* ------------------------------------------------------------------------ */
/*  The command */

/*  What no confirm with one in flight can beat on this host: a raw
    libzmq DEALER/ROUTER round trip between two processes, the transport
    and thread model under the mesh (ZeroMQ's I/O thread at each end).
    A confirm needs one such round trip plus the store. */
static int
s_floor(const s_opts_t *o)
{
    long count = o->count < 2000 ? o->count : 2000;
    double *samples = calloc((size_t)count, sizeof *samples);
    if (!samples || mb_raw_lat_run(o->size, count, o->verbose, samples) < 0) {
        free(samples);
        fprintf(stderr, "mesh-bench: relay: the libzmq round trip failed\n");
        return -1;
    }
    double total = 0;
    for (long i = 0; i < count; i++)
        total += samples[i];
    double per_s = total > 0 ? (double)count * 1e6 / total : 0;
    double p50 = mb_median(samples, (size_t)count);
    free(samples);
    char g[40];
    if (o->json)
        printf("{\"bench\":\"relay\",\"row\":\"floor\",\"size\":%zu,"
               "\"count\":%ld,\"raw_rt_per_s\":%.0f,\"raw_p50_us\":%.1f}\n",
               o->size, count, per_s, p50);
    else
        printf("  floor: raw libzmq DEALER/ROUTER round trips, one in flight "
               "(no store): %s /s, p50 %.0f us; a confirm is one round trip "
               "and a store\n",
               mb_grouped(per_s, g, sizeof g), p50);
    fflush(stdout);
    return 0;
}

int
mb_cmd_relay(int argc, char **argv)
{
    s_opts_t o;
    if (s_parse(argc, argv, &o) < 0)
        return S_EXIT_USAGE;
    char relay_bin[4096] = "";
    if (!o.only_js &&
        s_find_relay(o.relay_bin, relay_bin, sizeof relay_bin) < 0) {
        fprintf(stderr, "mesh-bench: mesh-relay not found (--relay-bin, "
                        "$ZMESH_RELAY, next to mesh-bench or on PATH)\n");
        return S_EXIT_FAIL;
    }
    char nats_bin[4096];
    const char *js_missing = NULL;
    static const char *const sbin[] = {"/usr/sbin", "/usr/local/sbin",
                                       "/usr/local/bin", NULL};
    if (o.only_mesh) {
        js_missing = "not run (--only mesh)";
    } else if (o.nats_bin) {
        snprintf(nats_bin, sizeof nats_bin, "%s", o.nats_bin);
        if (!s_executable(nats_bin))
            js_missing = "skipped: nats-server not installed";
    } else if (s_find_program("nats-server", sbin, nats_bin, sizeof nats_bin) <
               0) {
        js_missing = "skipped: nats-server not installed";
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    const char *tmp = getenv("TMPDIR");
    /*  Short enough that every path under it fits the buffers here. */
    char dir[1024];
    if (mb_path(dir, sizeof dir, "%s/mesh-bench-relay-XXXXXX",
                tmp && *tmp ? tmp : "/tmp") < 0 ||
        !mkdtemp(dir)) {
        fprintf(stderr, "mesh-bench: mkdtemp %s: %s\n", dir, strerror(errno));
        return S_EXIT_FAIL;
    }

    int rc = S_EXIT_FAIL;
    mb_relay_mesh_t *mesh = NULL;
    mb_nats_version_t nv;
    memset(&nv, 0, sizeof nv);
    char js_version[32] = "";
    if (!js_missing) {
        if (mb_nats_version(nats_bin, dir, &nv) < 0) {
            js_missing = "skipped: nats-server --version failed";
        } else {
            snprintf(js_version, sizeof js_version, "%d.%d.%d", nv.major,
                     nv.minor, nv.patch);
        }
    }
    mb_relay_params_t params[S_MAX_POLICIES];
    for (int i = 0; i < o.npolicies; i++)
        params[i] = (mb_relay_params_t){.size = o.size,
                                        .count = o.count,
                                        .row_limit_s = o.row_limit_s,
                                        .tag = o.tags[i],
                                        .policy = o.policies[i],
                                        .verbose = o.verbose};
    if (o.only_js && js_missing) {
        fprintf(stderr, "mesh-bench: --only jetstream, but %s\n", js_missing);
        goto done;
    }
    if (!o.only_js) {
        mesh =
            mb_relay_mesh_start(relay_bin, dir, params, o.npolicies, o.verbose);
        if (!mesh)
            goto done;
    }

    if (!o.json) {
        char g[2][40];
        printf("relay %zu B, %s events per publish row (at most %d s a "
               "row), same host, loopback, store in %s\n",
               o.size, mb_grouped((double)o.count, g[0], sizeof g[0]),
               o.row_limit_s, tmp && *tmp ? tmp : "/tmp");
        printf("  mesh: %s; JetStream: %s%s%s\n",
               o.only_js ? "not run (--only jetstream)" : relay_bin,
               js_missing ? js_missing : nats_bin,
               js_missing ? "" : " -js, file storage, version ",
               js_missing ? "" : js_version);
        fflush(stdout);
    }
    int failed = 0;
    if (mesh && s_floor(&o) < 0)
        failed = 1;
    for (int i = 0; i < o.npolicies && !s_stop; i++) {
        mb_relay_row_t m[MB_ROWS], j[MB_ROWS];
        memset(m, 0, sizeof m);
        memset(j, 0, sizeof j);
        char conf[32] = "", label[96] = "", why[160] = "";
        int same = 0;
        const char *js_row_missing = js_missing;
        if (!js_missing)
            mb_nats_sync_for(&nv, o.policies[i], conf, sizeof conf, label,
                             sizeof label, &same);
        /*  Which system goes first alternates from policy to policy, so
            a machine that gets busier over the run does not always
            favour the same one. */
        for (int k = 0; k < 2 && !s_stop; k++) {
            int mesh_turn = (i + k) % 2 == 0;
            if (mesh_turn && mesh) {
                if (mb_relay_mesh_rows(mesh, &params[i], m) < 0) {
                    fprintf(stderr,
                            "mesh-bench: relay, sync %s: the mesh "
                            "rows failed\n",
                            o.policies[i]);
                    failed = 1;
                }
            } else if (!mesh_turn && !js_missing) {
                if (mb_relay_js_rows(nats_bin, dir, &nv, &params[i], j) < 0) {
                    snprintf(why, sizeof why, "failed (see above)");
                    js_row_missing = why;
                    failed = 1;
                }
            }
        }
        if (o.json) {
            for (int r = 0; r < MB_ROWS; r++)
                s_print_json_row(&o, i, r, &m[r], &j[r], js_row_missing,
                                 js_missing ? "" : label, same, js_version);
        } else {
            if (js_missing)
                printf("  mesh --sync %s\n", o.policies[i]);
            else
                printf("  mesh --sync %s; JetStream %s: %s\n", o.policies[i],
                       label,
                       same ? "the same durability"
                            : "NOT the same durability");
            for (int r = 0; r < MB_ROWS; r++)
                s_print_text_row(r, &m[r], &j[r], js_row_missing);
        }
        fflush(stdout);
    }
    if (s_stop)
        fprintf(stderr, "mesh-bench: interrupted\n");
    rc = failed || s_stop ? S_EXIT_FAIL : 0;
done:
    mb_relay_mesh_stop(&mesh);
    if (o.verbose)
        fprintf(stderr, "mesh-bench: removing %s\n", dir);
    s_rmtree(dir);
    return rc;
}
