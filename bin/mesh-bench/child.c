/*  child.c - the second process of every benchmark and the control channel
    to it. The parent binds a PAIR socket on an ephemeral loopback port and
    starts this same executable as `mesh-bench _peer KIND ...` with
    posix_spawn (no fork of a process that already runs ZeroMQ threads).
    The peer dies with its parent (PR_SET_PDEATHSIG) and after its deadline
    (SIGALRM), and the parent reaps it by PID or kills it, so no run leaves
    a process behind. The benchmark data never crosses this channel.
*/
#include "bench.h"

#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

extern char **environ;

/*  How long the messages of a peer that exited may still take to come. */
#define S_LAST_WORDS_MS 500
#define S_RUNNING (-1000)

int
mb_ctl_send(void *sock, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof buf)
        return -1;
    /*  Never blocks: a PAIR whose peer has gone would wait forever, and a
        peer that gave up early (or died) must not hang the parent. */
    return zmq_send(sock, buf, (size_t)n, ZMQ_DONTWAIT) == n ? 0 : -1;
}

int
mb_ctl_recv(void *sock, char *buf, size_t cap, int timeout_ms)
{
    zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, timeout_ms) <= 0)
        return -1;
    int n = zmq_recv(sock, buf, cap - 1, ZMQ_DONTWAIT);
    if (n < 0)
        return -1;
    if ((size_t)n > cap - 1)
        n = (int)(cap - 1);
    buf[n] = '\0';
    return n;
}

static int
s_ctl_socket(void *ctx, void **out)
{
    void *sock = zmq_socket(ctx, ZMQ_PAIR);
    if (!sock)
        return -1;
    /*  Long enough to deliver the last result, short enough that a
        vanished parent does not hold the peer's exit. */
    int linger = 2000;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    *out = sock;
    return 0;
}

/*  The file /proc/self/exe links to, rather than argv[0]: the peer must
    be this very binary even when it was started through PATH or a
    relative path. Resolved by readlink rather than exec'ed as is, because
    valgrind answers the readlink with its client's path while
    /proc/self/exe itself is valgrind's own binary. */
static void
s_self_path(char *exe, size_t cap)
{
    ssize_t len = readlink("/proc/self/exe", exe, cap - 1);
    if (len <= 0)
        snprintf(exe, cap, "/proc/self/exe");
    else
        exe[len] = '\0';
}

int
mb_run_self(char *const argv[], int timeout_s)
{
    char exe[4096];
    s_self_path(exe, sizeof exe);
    pid_t pid;
    int rc = posix_spawn(&pid, exe, NULL, NULL, argv, environ);
    if (rc != 0) {
        fprintf(stderr, "mesh-bench: cannot start %s: %s\n", exe, strerror(rc));
        return -1;
    }
    mb_child_t child = {.pid = pid};
    return mb_child_stop(&child, timeout_s * 1000);
}

int
mb_child_start(mb_child_t *child, void *ctx, mb_peer_args_t *args)
{
    memset(child, 0, sizeof *child);
    if (s_ctl_socket(ctx, &child->ctl) < 0 ||
        zmq_bind(child->ctl, "tcp://127.0.0.1:*") < 0) {
        fprintf(stderr, "mesh-bench: control socket: %s\n",
                zmq_strerror(zmq_errno()));
        if (child->ctl)
            zmq_close(child->ctl);
        child->ctl = NULL;
        return -1;
    }
    size_t len = sizeof child->ctl_endpoint;
    zmq_getsockopt(child->ctl, ZMQ_LAST_ENDPOINT, child->ctl_endpoint, &len);
    args->ctl = child->ctl_endpoint;

    char size[32], count[32], port[16], deadline[16], hwm[16], stall[16];
    char retransmit[32], repair[16];
    snprintf(size, sizeof size, "%zu", args->size);
    snprintf(count, sizeof count, "%ld", args->count);
    snprintf(port, sizeof port, "%d", args->beacon_port);
    snprintf(deadline, sizeof deadline, "%d", args->deadline_s);
    snprintf(hwm, sizeof hwm, "%d", args->hwm);
    snprintf(stall, sizeof stall, "%d", args->stall_ms);
    snprintf(retransmit, sizeof retransmit, "%lld", args->cfg.retransmit);
    snprintf(repair, sizeof repair, "%d", args->cfg.repair_timeout);
    char *argv[32];
    int n = 0;
    argv[n++] = "mesh-bench";
    argv[n++] = "_peer";
    argv[n++] = (char *)args->kind;
    argv[n++] = "--ctl";
    argv[n++] = (char *)args->ctl;
    argv[n++] = "--size";
    argv[n++] = size;
    argv[n++] = "--count";
    argv[n++] = count;
    argv[n++] = "--deadline";
    argv[n++] = deadline;
    argv[n++] = "--hwm";
    argv[n++] = hwm;
    if (args->endpoint) {
        argv[n++] = "--endpoint";
        argv[n++] = (char *)args->endpoint;
    }
    if (args->mesh) {
        argv[n++] = "--mesh";
        argv[n++] = (char *)args->mesh;
        argv[n++] = "--beacon-port";
        argv[n++] = port;
        if (args->cfg.retransmit >= 0) {
            argv[n++] = "--retransmit";
            argv[n++] = retransmit;
        }
        if (args->cfg.repair_timeout >= 0) {
            argv[n++] = "--repair-timeout";
            argv[n++] = repair;
        }
        if (args->cfg.batch_off)
            argv[n++] = "--no-batching";
    }
    if (args->stall_ms > 0) {
        argv[n++] = "--stall-ms";
        argv[n++] = stall;
    }
    if (args->hop)
        argv[n++] = "--hop";
    if (args->verbose)
        argv[n++] = args->verbose > 1 ? "-vv" : "-v";
    argv[n] = NULL;

    char exe[4096];
    s_self_path(exe, sizeof exe);
    int rc = posix_spawn(&child->pid, exe, NULL, NULL, argv, environ);
    if (rc != 0) {
        fprintf(stderr, "mesh-bench: cannot start the peer process: %s\n",
                strerror(rc));
        child->pid = 0;
        zmq_close(child->ctl);
        child->ctl = NULL;
        return -1;
    }
    return 0;
}

int
mb_child_expect(mb_child_t *child, const char *word, char *rest, size_t cap,
                int timeout_ms, const char *what)
{
    char buf[512];
    size_t wlen = strlen(word);
    int64_t deadline = mb_now_ns() + (int64_t)timeout_ms * 1000000;
    int exited = S_RUNNING;
    for (;;) {
        /*  Rounded up: a wait of a fraction of a millisecond must sleep,
            not spin on zmq_poll with a timeout of 0. */
        int64_t left_ms = (deadline - mb_now_ns() + 999999) / 1000000;
        if (left_ms <= 0 && exited != S_RUNNING) {
            fprintf(stderr,
                    "mesh-bench: the peer process exited (status %d) while "
                    "waiting for %s\n",
                    exited, what ? what : word);
            return -1;
        }
        if (left_ms <= 0)
            break;
        /*  Poll in slices so a peer that died is noticed at once rather
            than after the whole timeout. */
        int slice = left_ms > 100 ? 100 : (int)left_ms;
        if (mb_ctl_recv(child->ctl, buf, sizeof buf, slice) < 0) {
            int status;
            if (child->pid > 0 &&
                waitpid(child->pid, &status, WNOHANG) == child->pid) {
                child->pid = 0;
                /*  Its last words may still be on the way: a peer sends
                    its result and exits, and ZeroMQ delivers the message
                    after the process is gone. */
                deadline = mb_now_ns() + (int64_t)S_LAST_WORDS_MS * 1000000;
                exited = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
            }
            continue;
        }
        if (strncmp(buf, word, wlen) == 0 &&
            (buf[wlen] == '\0' || buf[wlen] == ' ')) {
            if (rest) {
                const char *r = buf[wlen] ? buf + wlen + 1 : "";
                snprintf(rest, cap, "%s", r);
            }
            return 0;
        }
        if (strncmp(buf, "error ", 6) == 0) {
            fprintf(stderr, "mesh-bench: peer: %s\n", buf + 6);
            return -1;
        }
    }
    if (what)
        fprintf(stderr, "mesh-bench: timed out after %d ms waiting for %s\n",
                timeout_ms, what);
    return -2;
}

int
mb_thr_result(mb_child_t *child, int timeout_ms, long count, int64_t cpu_start,
              mb_thr_run_t *out)
{
    char rest[256];
    if (mb_child_expect(child, "result", rest, sizeof rest, timeout_ms,
                        "the subscriber's result") < 0)
        return -1;
    long received = 0;
    long long elapsed_ns = 0;
    long long peer_cpu_ns = 0;
    if (sscanf(rest, "%ld %lld %lld", &received, &elapsed_ns, &peer_cpu_ns) !=
            3 ||
        received < 0 || received > count || elapsed_ns < 0) {
        fprintf(stderr, "mesh-bench: bad result from the peer: %s\n", rest);
        return -1;
    }
    out->sent = count;
    out->received = received;
    out->msgs_per_s = received > 1 && elapsed_ns > 0
                          ? (double)(received - 1) * 1e9 / (double)elapsed_ns
                          : 0.0;
    /*  Both processes from the end of the probing to the result: the
        traffic, without process and agent start-up. */
    double cpu = (double)(mb_cpu_ns() - cpu_start) + (double)peer_cpu_ns;
    out->cpu_ns = received > 0 ? cpu / (double)received : 0.0;
    return 0;
}

int
mb_child_stop(mb_child_t *child, int grace_ms)
{
    int result = -1;
    if (child->pid > 0) {
        int status = 0;
        int64_t deadline = mb_now_ns() + (int64_t)grace_ms * 1000000;
        pid_t got = 0;
        while ((got = waitpid(child->pid, &status, WNOHANG)) == 0 &&
               mb_now_ns() < deadline) {
            struct timespec ts = {0, 2000000};
            nanosleep(&ts, NULL);
        }
        if (got == child->pid) {
            result = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        } else {
            kill(child->pid, SIGKILL);
            waitpid(child->pid, &status, 0);
        }
        child->pid = 0;
    }
    if (child->ctl) {
        int linger = 0;
        zmq_setsockopt(child->ctl, ZMQ_LINGER, &linger, sizeof linger);
        zmq_close(child->ctl);
        child->ctl = NULL;
    }
    return result;
}

static int
s_parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int
mb_child_args_parse(int argc, char **argv, mb_peer_args_t *args)
{
    memset(args, 0, sizeof *args);
    if (argc < 3)
        return -1;
    args->kind = argv[2];
    args->deadline_s = 60;
    args->cfg = MB_MESH_DEFAULTS;
    for (int i = 3; i < argc; i++) {
        const char *flag = argv[i];
        long v;
        if (strcmp(flag, "--hop") == 0) {
            args->hop = 1;
            continue;
        }
        if (strcmp(flag, "--no-batching") == 0) {
            args->cfg.batch_off = 1;
            continue;
        }
        if (strcmp(flag, "-v") == 0 || strcmp(flag, "-vv") == 0) {
            args->verbose = flag[2] ? 2 : 1;
            continue;
        }
        if (i + 1 >= argc)
            return -1;
        const char *val = argv[++i];
        if (strcmp(flag, "--ctl") == 0)
            args->ctl = val;
        else if (strcmp(flag, "--endpoint") == 0)
            args->endpoint = val;
        else if (strcmp(flag, "--mesh") == 0)
            args->mesh = val;
        else if (strcmp(flag, "--size") == 0 &&
                 s_parse_long(val, 1, 1L << 30, &v) == 0)
            args->size = (size_t)v;
        else if (strcmp(flag, "--count") == 0 &&
                 s_parse_long(val, 1, 1L << 40, &v) == 0)
            args->count = v;
        else if (strcmp(flag, "--beacon-port") == 0 &&
                 s_parse_long(val, 1, 65535, &v) == 0)
            args->beacon_port = (int)v;
        else if (strcmp(flag, "--hwm") == 0 &&
                 s_parse_long(val, 0, 1000000000, &v) == 0)
            args->hwm = (int)v;
        else if (strcmp(flag, "--stall-ms") == 0 &&
                 s_parse_long(val, 0, 600000, &v) == 0)
            args->stall_ms = (int)v;
        else if (strcmp(flag, "--retransmit") == 0 &&
                 s_parse_long(val, 0, 1L << 40, &v) == 0)
            args->cfg.retransmit = v;
        else if (strcmp(flag, "--repair-timeout") == 0 &&
                 s_parse_long(val, 0, 60000, &v) == 0)
            args->cfg.repair_timeout = (int)v;
        else if (strcmp(flag, "--deadline") == 0 &&
                 s_parse_long(val, 1, 86400, &v) == 0)
            args->deadline_s = (int)v;
        else
            return -1;
    }
    return args->ctl && args->size > 0 ? 0 : -1;
}

void *
mb_child_attach(void *ctx, const mb_peer_args_t *args)
{
    /*  Dies with the parent, and checks that the parent did not already
        die before the request took effect. */
    pid_t parent = getppid();
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(1);
    /*  The default action of SIGALRM ends the process: the last resort
        against a peer waiting for something that will never come. */
    alarm((unsigned)args->deadline_s);

    void *sock = NULL;
    if (s_ctl_socket(ctx, &sock) < 0 || zmq_connect(sock, args->ctl) < 0) {
        fprintf(stderr, "mesh-bench peer: control channel %s: %s\n", args->ctl,
                zmq_strerror(zmq_errno()));
        if (sock)
            zmq_close(sock);
        return NULL;
    }
    return sock;
}

int
mb_thr_count(mb_recv_fn *recv, void *self, void *ctl, long count)
{
    /*  Timing runs from the first data message to the last. The clock is
        read only when the queue runs dry, so a subscriber that keeps up
        pays for it and one that falls behind does not. The control
        channel is looked at only when idle, for the publisher's "sent":
        after it, a short silence means the rest was lost. */
    int probed = 0;
    int sent = 0;
    long n = 0;
    int64_t first = 0;
    int64_t last = 0;
    int64_t give_up = mb_now_ns() + (int64_t)MB_READY_TIMEOUT_MS * 2000000;
    uint64_t seq = 0;
    int fresh = 0; /* data arrived since the queue last ran dry */
    int64_t cpu_start = 0;
    while (n < count) {
        int got = recv(self, 0, &seq);
        if (got == MB_GOT_NOTHING) {
            if (fresh)
                last = mb_now_ns();
            fresh = 0;
            got = recv(self, MB_POLL_MS, &seq);
        }
        if (got == MB_GOT_DATA) {
            fresh = 1;
            if (n++ == 0)
                first = mb_now_ns();
        } else if (got == MB_GOT_PROBE) {
            if (!probed) {
                cpu_start = mb_cpu_ns();
                mb_ctl_send(ctl, "probed %llu", (unsigned long long)seq);
            }
            probed = 1;
        } else if (got == MB_GOT_NOTHING) {
            char buf[64];
            if (!sent && mb_ctl_recv(ctl, buf, sizeof buf, 0) >= 0 &&
                strcmp(buf, "sent") == 0)
                sent = 1;
            int64_t quiet_ms = n > 0 ? (mb_now_ns() - last) / 1000000 : 0;
            if ((sent && quiet_ms >= 3 * MB_POLL_MS) ||
                quiet_ms >= MB_IDLE_TIMEOUT_MS ||
                (n == 0 && mb_now_ns() > give_up))
                break;
        } else if (got == MB_GOT_ERROR) {
            break;
        }
    }
    if (n == count)
        last = mb_now_ns();
    if (!probed) {
        mb_ctl_send(ctl, "error no probe arrived");
        return -1;
    }
    mb_ctl_send(ctl, "result %ld %lld %lld", n,
                (long long)(n > 1 ? last - first : 0),
                (long long)(mb_cpu_ns() - cpu_start));
    return 0;
}
