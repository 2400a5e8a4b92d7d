/*  tap_doctor.c - "mesh-tap doctor": why a peer is not seen or not
    connected, from what the public API shows. Joins with the options given
    (so binding is tested), subscribes to everything, listens --wait
    seconds, then checks the agent's counters (foreign or malformed
    beacons), the peer list (endpoints probed with a plain TCP connect,
    silence, missing data connections) and event timestamps (clock skew).
    Each finding is one sentence saying what to do. It sees from this host
    only: why a peer does not hear this host is for doctor on that host.
*/
#include "tap_agent.h"
#include "tap_options.h"
#include "tap_output.h"

#include "zmesh.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/*  Publishers whose clocks are sampled, samples per publisher, and the
    skew worth a finding. */
#define S_CLOCKS_MAX 64
#define S_SAMPLES 9
#define S_SKEW_MS 500

/*  Peers whose joins and timeouts are remembered during the wait. */
#define S_PEERS_MAX 256

/*  How long a TCP connect may take before the endpoint counts as
    unreachable. */
#define S_CONNECT_MS 1000

/*  Silence (ms since last heard) worth a finding: three default beacon
    intervals; the default peer timeout is five. */
#define S_SILENT_MS 3000

/*  A peer that joined less than this before the end of the wait may not
    be connected yet, and is not blamed for it. */
#define S_CONNECT_GRACE_MS 1000

typedef struct {
    char id[33];
    char name[ZMESH_NAME_MAX + 1];
    int64_t skew_us[S_SAMPLES]; // receive time - publish time
    size_t samples;
} s_clock_t;

typedef struct {
    char id[33];
    char name[ZMESH_NAME_MAX + 1];
    int64_t joined_ms; // monotonic; 0 if it was not seen joining
    bool timed_out;
} s_seen_t;

typedef struct {
    const tap_options_t *opts;
    bool color;
    int findings;
    uint64_t events;
    s_clock_t clocks[S_CLOCKS_MAX];
    size_t clocks_count;
    s_seen_t seen[S_PEERS_MAX];
    size_t seen_count;
    int64_t end_ms; // when the wait ended
} s_doctor_t;

/*  One line: an observation ("ok") or a finding. `peer_id` may be NULL. */
__attribute__((format(printf, 6, 0))) static void
s_report(s_doctor_t *self, bool finding, const char *code, const char *peer,
         const char *peer_id, const char *format, va_list args)
{
    char message[1024];
    vsnprintf(message, sizeof message, format, args);
    if (finding)
        self->findings++;
    if (self->opts->json) {
        fprintf(stdout, "{\"type\":\"%s\",\"code\":\"%s\"",
                finding ? "finding" : "info", code);
        if (peer) {
            fputs(",\"peer\":", stdout);
            tap_output_json_string(stdout, peer);
            fputs(",\"peer_id\":", stdout);
            tap_output_json_string(stdout, peer_id ? peer_id : "");
        }
        fputs(",\"message\":", stdout);
        tap_output_json_string(stdout, message);
        fputc('}', stdout);
    } else {
        fputs("  ", stdout);
        tap_output_field(stdout, self->color, finding ? "1;31" : "32",
                         finding ? "problem" : "ok", 7);
        fputs("  ", stdout);
        tap_output_text(stdout, message, 0);
    }
    tap_output_end_line(stdout);
}

static void s_info(s_doctor_t *self, const char *code, const char *format, ...)
    __attribute__((format(printf, 3, 4)));
static void s_finding(s_doctor_t *self, const char *code, const char *peer,
                      const char *peer_id, const char *format, ...)
    __attribute__((format(printf, 5, 6)));

static void
s_info(s_doctor_t *self, const char *code, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    s_report(self, false, code, NULL, NULL, format, args);
    va_end(args);
}

static void
s_finding(s_doctor_t *self, const char *code, const char *peer,
          const char *peer_id, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    s_report(self, true, code, peer, peer_id, format, args);
    va_end(args);
}

static const char *
s_scope_name(zmesh_discovery_t scope)
{
    switch (scope) {
    case ZMESH_DISCOVERY_LAN: return "lan";
    case ZMESH_DISCOVERY_MULTICAST: return "multicast";
    case ZMESH_DISCOVERY_NONE: return "none";
    case ZMESH_DISCOVERY_HOST: break;
    }
    return "host";
}

/*  Copies a name or id that came from a peer into a fixed field (made
    safe for the terminal only when shown). */
static void
s_copy(char *out, size_t size, const char *text)
{
    snprintf(out, size, "%s", text);
}

static s_seen_t *
s_seen(s_doctor_t *self, const char *id, const char *name)
{
    for (size_t i = 0; i < self->seen_count; i++)
        if (strcmp(self->seen[i].id, id) == 0)
            return &self->seen[i];
    if (self->seen_count == S_PEERS_MAX)
        return NULL;
    s_seen_t *seen = &self->seen[self->seen_count++];
    memset(seen, 0, sizeof *seen);
    s_copy(seen->id, sizeof seen->id, id);
    s_copy(seen->name, sizeof seen->name, name);
    return seen;
}

static void
s_sample_clock(s_doctor_t *self, const zmesh_event_t *event)
{
    const char *id = zmesh_event_peer_id(event);
    s_clock_t *clock = NULL;
    for (size_t i = 0; i < self->clocks_count && !clock; i++)
        if (strcmp(self->clocks[i].id, id) == 0)
            clock = &self->clocks[i];
    if (!clock && self->clocks_count < S_CLOCKS_MAX) {
        clock = &self->clocks[self->clocks_count++];
        memset(clock, 0, sizeof *clock);
        s_copy(clock->id, sizeof clock->id, id);
        s_copy(clock->name, sizeof clock->name, zmesh_event_peer_name(event));
    }
    if (clock && clock->samples < S_SAMPLES)
        clock->skew_us[clock->samples++] =
            tap_now_us() - zmesh_event_timestamp(event);
}

/*  Listens for the wait: samples clocks, notes joins and timeouts. */
static int
s_listen(s_doctor_t *self, zmesh_agent_t *agent)
{
    int64_t deadline = tap_monotonic_ms() + self->opts->wait_ms;
    for (;;) {
        const zmesh_event_t *event = NULL;
        int rc = tap_agent_next(agent, deadline, &event);
        if (rc != 0)
            return rc;
        if (!event)
            break;
        zmesh_event_type_t type = zmesh_event_type(event);
        if (type == ZMESH_EVENT_MESSAGE) {
            self->events++;
            s_sample_clock(self, event);
            continue;
        }
        // Gaps, direct messages and requests say nothing about liveness.
        if (type != ZMESH_EVENT_PEER_JOINED && type != ZMESH_EVENT_PEER_LEFT)
            continue;
        s_seen_t *seen = s_seen(self, zmesh_event_peer_id(event),
                                zmesh_event_peer_name(event));
        if (!seen)
            continue;
        if (type == ZMESH_EVENT_PEER_JOINED)
            seen->joined_ms = tap_monotonic_ms();
        else if (strcmp(zmesh_event_reason(event), "timeout") == 0)
            seen->timed_out = true;
    }
    self->end_ms = tap_monotonic_ms();
    if (tap_interrupted()) {
        tap_error("interrupted");
        return TAP_EXIT_FAILURE;
    }
    return 0;
}

/*  Splits "tcp://HOST:PORT" (HOST may be [IPv6]). */
static bool
s_split_endpoint(const char *endpoint, char *host, size_t host_size, char *port,
                 size_t port_size)
{
    if (strncmp(endpoint, "tcp://", 6) != 0)
        return false;
    const char *start = endpoint + 6;
    const char *colon = strrchr(start, ':');
    if (!colon || colon == start || colon[1] == '\0')
        return false;
    const char *host_start = start, *host_end = colon;
    if (*start == '[' && colon > start && colon[-1] == ']') {
        host_start++;
        host_end--;
    }
    size_t n = (size_t)(host_end - host_start);
    if (n == 0 || n >= host_size || strlen(colon + 1) >= port_size)
        return false;
    memcpy(host, host_start, n);
    host[n] = '\0';
    strcpy(port, colon + 1);
    return true;
}

/*  Tries a TCP connect to the endpoint, bounded by S_CONNECT_MS. Returns
    NULL when it worked, else why not (a static or strerror string). */
static const char *
s_connect(const char *endpoint)
{
    char host[256], port[16];
    if (!s_split_endpoint(endpoint, host, sizeof host, port, sizeof port))
        return "not a tcp://HOST:PORT endpoint";
    struct addrinfo hints, *found = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int rc = getaddrinfo(host, port, &hints, &found);
    if (rc != 0)
        return gai_strerror(rc);
    const char *why = "no address";
    int fd = socket(found->ai_family, found->ai_socktype, found->ai_protocol);
    if (fd < 0)
        why = strerror(errno);
    else {
        int flags = fcntl(fd, F_GETFL, 0);
        fcntl(fd, F_SETFL, flags | O_NONBLOCK);
        why = NULL;
        if (connect(fd, found->ai_addr, found->ai_addrlen) != 0) {
            if (errno != EINPROGRESS)
                why = strerror(errno);
            else {
                struct pollfd item = {.fd = fd, .events = POLLOUT};
                int ready = poll(&item, 1, S_CONNECT_MS);
                int error = 0;
                socklen_t size = sizeof error;
                if (ready == 0)
                    why = "no answer within 1 s";
                else if (ready < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR,
                                                 &error, &size) != 0)
                    why = strerror(errno);
                else if (error != 0)
                    why = strerror(error);
            }
        }
        close(fd);
    }
    freeaddrinfo(found);
    return why;
}

static bool
s_wildcard(const char *endpoint)
{
    return strncmp(endpoint, "tcp://0.0.0.0:", 14) == 0 ||
           strncmp(endpoint, "tcp://*:", 8) == 0 ||
           strncmp(endpoint, "tcp://[::]:", 11) == 0;
}

/*  Checks one endpoint a peer advertises; returns whether it is usable. */
static bool
s_check_endpoint(s_doctor_t *self, const char *name, const char *id,
                 const char *what, const char *endpoint)
{
    if (endpoint[0] == '\0') {
        s_finding(self, "no_endpoint", name, id,
                  "peer %s (%.8s) has not told its %s endpoint: it may be "
                  "starting, or its HELLO did not arrive; run 'mesh-tap "
                  "doctor' again, and with -v to see the control traffic",
                  name, id, what);
        return false;
    }
    if (s_wildcard(endpoint)) {
        s_finding(self, "wildcard_endpoint", name, id,
                  "peer %s (%.8s) advertises the wildcard %s as its %s "
                  "endpoint, which other hosts cannot connect to: give it "
                  "--interface (or its discovery an interface) to bind one "
                  "address",
                  name, id, endpoint, what);
        return false;
    }
    const char *why = s_connect(endpoint);
    if (!why)
        return true;
    s_finding(self, "unreachable", name, id,
              "peer %s (%.8s) advertises %s (%s) which cannot be reached "
              "from here (%s): firewall or wrong interface; open that TCP "
              "port, or start the peer with the interface this host can "
              "reach",
              name, id, endpoint, what, why);
    return false;
}

static int
s_compare_skew(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void
s_check_clocks(s_doctor_t *self)
{
    if (self->events == 0) {
        s_info(self, "no_events",
               "no events arrived during the wait, so clock skew was not "
               "estimated");
        return;
    }
    size_t skewed = 0;
    for (size_t i = 0; i < self->clocks_count; i++) {
        s_clock_t *clock = &self->clocks[i];
        qsort(clock->skew_us, clock->samples, sizeof *clock->skew_us,
              s_compare_skew);
        int64_t median_ms = clock->skew_us[clock->samples / 2] / 1000;
        if (median_ms <= S_SKEW_MS && median_ms >= -S_SKEW_MS)
            continue;
        skewed++;
        // Receive time after publish time: the publisher's clock is behind
        // (latency adds a little to this side, never seconds).
        int64_t size = median_ms < 0 ? -median_ms : median_ms;
        s_finding(self, "clock_skew", clock->name, clock->id,
                  "the clock of publisher %s (%.8s) is about %" PRId64
                  " ms %s this host's (median of %zu events): event "
                  "timestamps from it are off by that much; run NTP (e.g. "
                  "chrony) on both hosts",
                  clock->name, clock->id, size,
                  median_ms > 0 ? "behind" : "ahead of", clock->samples);
    }
    if (skewed == 0)
        s_info(self, "clocks",
               "%" PRIu64 " events from %zu publisher%s: their clocks agree "
               "with this host's within %d ms",
               self->events, self->clocks_count,
               self->clocks_count == 1 ? "" : "s", S_SKEW_MS);
}

// Whether the peer advertises a pattern the doctor subscribes to: one
// that is not reserved ('$'). A relay advertises only its confirm topics,
// which only publishers that want confirms subscribe to: no data
// connection to it is expected.
static bool
s_publishes_for_us(const zmesh_peer_list_t *list, size_t i)
{
    for (size_t j = 0; j < zmesh_peer_publishes_size(list, i); j++)
        if (zmesh_peer_publishes(list, i, j)[0] != '$')
            return true;
    return false;
}

static void
s_check_peer(s_doctor_t *self, const zmesh_peer_list_t *list, size_t i)
{
    const char *name = zmesh_peer_name(list, i);
    const char *id = zmesh_peer_id(list, i);
    bool control = s_check_endpoint(self, name, id, "control",
                                    zmesh_peer_endpoint(list, i));
    bool data = s_check_endpoint(self, name, id, "data",
                                 zmesh_peer_data_endpoint(list, i));
    bool healthy = control && data;
    int64_t silent = zmesh_peer_last_seen_ms(list, i);
    if (silent > S_SILENT_MS) {
        healthy = false;
        s_finding(self, "silent", name, id,
                  "peer %s (%.8s) has not been heard from for %" PRId64
                  " ms: it is stopping, overloaded, or its packets are "
                  "blocked; it will be dropped at the peer timeout",
                  name, id, silent);
    }
    s_seen_t *seen = s_seen(self, id, name);
    bool settled = !seen || seen->joined_ms == 0 ||
                   self->end_ms - seen->joined_ms >= S_CONNECT_GRACE_MS;
    if (data && settled && s_publishes_for_us(list, i) &&
        !zmesh_peer_connected(list, i)) {
        healthy = false;
        s_finding(self, "not_connected", name, id,
                  "peer %s (%.8s) publishes topics and its data endpoint %s "
                  "answers, but the data connection to it is not up after "
                  "%.1f s: run with -v to see why the library drops it (a "
                  "frame over the size limit, or a protocol mismatch)",
                  name, id, zmesh_peer_data_endpoint(list, i),
                  self->opts->wait_ms / 1000.0);
    }
    if (healthy)
        s_info(self, "peer",
               "peer %s (%.8s) on %s, pid %" PRIu64 ", zmesh %s: control "
               "and data endpoints reachable, heard %" PRId64 " ms ago",
               name, id, zmesh_peer_host(list, i), zmesh_peer_pid(list, i),
               zmesh_peer_version(list, i), silent);
}

static void
s_check_no_peers(s_doctor_t *self, const zmesh_stats_t *stats)
{
    const tap_options_t *opts = self->opts;
    const char *mesh = tap_options_mesh(opts);
    int port = tap_options_beacon_port(opts);
    double wait = opts->wait_ms / 1000.0;
    for (size_t i = 0; i < opts->seeds_count; i++) {
        const char *why = s_connect(opts->seeds[i]);
        if (why)
            s_finding(self, "seed_unreachable", NULL, NULL,
                      "seed %s cannot be reached from here (%s): check that "
                      "an agent runs there ('mesh-tap peers' on that host "
                      "shows control endpoints) and that a firewall lets TCP "
                      "to it through",
                      opts->seeds[i], why);
    }
    if (stats->beacons_received > 0) {
        s_finding(self, "no_hello", NULL, NULL,
                  "beacons of mesh '%s' were heard but no agent answered "
                  "within %.1f s: the control endpoints they advertise "
                  "cannot be reached from here (firewall, or they bind an "
                  "interface this host cannot reach)",
                  mesh, wait);
        return;
    }
    switch (opts->discovery) {
    case ZMESH_DISCOVERY_HOST:
        s_finding(self, "no_peers", NULL, NULL,
                  "no agent of mesh '%s' was found within %.1f s: --discovery "
                  "host only sees agents on this host, so for agents on "
                  "other hosts use --discovery lan --interface IF (on every "
                  "agent) or --seed tcp://HOST:PORT; for agents on this host, "
                  "check that they use mesh '%s' and beacon port %d",
                  mesh, wait, mesh, port);
        break;
    case ZMESH_DISCOVERY_LAN:
    case ZMESH_DISCOVERY_MULTICAST:
        s_finding(self, "no_peers", NULL, NULL,
                  "no beacon of mesh '%s' was heard on interface %s, UDP "
                  "port %d, within %.1f s: check that the other agents use "
                  "the same --mesh, --beacon-port and --discovery %s, that "
                  "they are on this network segment, and that a firewall "
                  "lets UDP port %d through",
                  mesh, opts->interface_name ? opts->interface_name : "?", port,
                  wait, s_scope_name(opts->discovery), port);
        break;
    case ZMESH_DISCOVERY_NONE:
        if (opts->seeds_count == 0)
            s_finding(self, "no_peers", NULL, NULL,
                      "--discovery none sends and hears no beacons, and no "
                      "seed was given: add --seed tcp://HOST:PORT with the "
                      "control endpoint of a running agent");
        else
            s_finding(self, "no_peers", NULL, NULL,
                      "no seed answered within %.1f s: check the seed "
                      "endpoints and that the agents there use mesh '%s'",
                      wait, mesh);
        break;
    }
}

static void
s_check_counters(s_doctor_t *self, const zmesh_stats_t *stats)
{
    const char *mesh = tap_options_mesh(self->opts);
    int port = tap_options_beacon_port(self->opts);
    if (stats->beacons_foreign > 0)
        s_finding(self, "foreign_beacons", NULL, NULL,
                  "beacons from another mesh or protocol version were heard "
                  "on port %d (%" PRIu64 " of them): check --mesh (this is "
                  "mesh '%s', protocol %d) on every agent, or give each mesh "
                  "its own --beacon-port",
                  port, stats->beacons_foreign, mesh, ZMESH_PROTOCOL_VERSION);
    if (stats->beacons_rejected > 0)
        s_finding(self, "malformed_beacons", NULL, NULL,
                  "malformed datagrams arrive on the beacon port %d (%" PRIu64
                  " of them): another program sends to that UDP port; give "
                  "the mesh another --beacon-port",
                  port, stats->beacons_rejected);
    if (stats->control_rejected > 0)
        s_finding(self, "control_rejected", NULL, NULL,
                  "%" PRIu64 " control messages were rejected as malformed "
                  "or of another protocol version: check that every agent "
                  "runs a zmesh that speaks protocol %d (this is %s)",
                  stats->control_rejected, ZMESH_PROTOCOL_VERSION,
                  zmesh_version());
    if (stats->frames_rejected > 0)
        s_finding(self, "frames_rejected", NULL, NULL,
                  "%" PRIu64 " data frames were dropped as malformed: a "
                  "publisher sends events this library cannot read; check "
                  "the versions of the publishers",
                  stats->frames_rejected);
}

/*  What the counters and the peer list say, after the wait. */
static int
s_diagnose(s_doctor_t *self, zmesh_agent_t *agent)
{
    zmesh_stats_t stats;
    int rc = zmesh_agent_stats(agent, &stats);
    zmesh_peer_list_t *list = NULL;
    if (rc == 0)
        rc = zmesh_agent_peers(agent, &list);
    if (rc != 0) {
        tap_error("cannot read the agent's state: %s", zmesh_strerror(rc));
        return TAP_EXIT_FAILURE;
    }
    size_t peers = zmesh_peer_list_size(list);
    s_info(self, "listened",
           "listened %.1f s: %zu peer%s, %" PRIu64 " beacons of this mesh, "
           "%" PRIu64 " of others, %" PRIu64 " malformed",
           self->opts->wait_ms / 1000.0, peers, peers == 1 ? "" : "s",
           stats.beacons_received, stats.beacons_foreign,
           stats.beacons_rejected);
    s_check_counters(self, &stats);
    if (peers == 0)
        s_check_no_peers(self, &stats);
    for (size_t i = 0; i < peers; i++)
        s_check_peer(self, list, i);
    for (size_t i = 0; i < self->seen_count; i++)
        if (self->seen[i].timed_out)
            s_finding(self, "timed_out", self->seen[i].name, self->seen[i].id,
                      "peer %s (%.8s) stopped answering during the wait and "
                      "was dropped after the peer timeout: it crashed or "
                      "hangs, or its packets stopped arriving",
                      self->seen[i].name, self->seen[i].id);
    s_check_clocks(self);
    zmesh_peer_list_destroy(&list);
    return 0;
}

static void
s_print_config(s_doctor_t *self)
{
    const tap_options_t *opts = self->opts;
    const char *where = "this host only, beacons to 127.255.255.255";
    char buf[128];
    if (opts->discovery == ZMESH_DISCOVERY_LAN) {
        snprintf(buf, sizeof buf, "broadcast on interface %s",
                 opts->interface_name);
        where = buf;
    } else if (opts->discovery == ZMESH_DISCOVERY_MULTICAST) {
        snprintf(buf, sizeof buf, "multicast on interface %s",
                 opts->interface_name);
        where = buf;
    } else if (opts->discovery == ZMESH_DISCOVERY_NONE)
        where = "no beacons, seeds only";
    s_info(self, "config",
           "mesh '%s' (from %s), discovery %s (%s), beacon port %d, %zu "
           "seed%s, zmesh %s, protocol %d",
           tap_options_mesh(opts), opts->mesh ? opts->mesh_from : "default",
           s_scope_name(opts->discovery), where, tap_options_beacon_port(opts),
           opts->seeds_count, opts->seeds_count == 1 ? "" : "s",
           zmesh_version(), ZMESH_PROTOCOL_VERSION);
}

static void
s_print_summary(s_doctor_t *self)
{
    if (self->opts->json) {
        fprintf(stdout, "{\"type\":\"summary\",\"findings\":%d}",
                self->findings);
        tap_output_end_line(stdout);
    } else if (self->findings == 0)
        puts("No problems found.");
    else
        printf("%d finding%s.\n", self->findings,
               self->findings == 1 ? "" : "s");
}

int
tap_doctor_run(const tap_options_t *opts)
{
    s_doctor_t *self = calloc(1, sizeof *self);
    if (!self) {
        tap_error("out of memory");
        return TAP_EXIT_FAILURE;
    }
    self->opts = opts;
    self->color = !opts->json && tap_output_color_wanted(stdout);
    // Configured but not started: doctor explains a failed start itself.
    zmesh_agent_t *agent = NULL;
    int exit_code = tap_agent_configure(opts, 0, &agent);
    if (exit_code != 0) {
        free(self);
        return exit_code;
    }
    s_print_config(self);
    int rc = zmesh_agent_start(agent);
    if (rc == ZMESH_EADDR && opts->interface_name)
        s_finding(self, "cannot_start", NULL, NULL,
                  "cannot start an agent (%s): check that interface %s "
                  "exists and has an IPv4 address, and that UDP port %d can "
                  "be bound",
                  zmesh_strerror(rc), opts->interface_name,
                  tap_options_beacon_port(opts));
    else if (rc == ZMESH_EADDR)
        s_finding(self, "cannot_start", NULL, NULL,
                  "cannot start an agent (%s): check that UDP port %d can "
                  "be bound (a program other than zmesh may hold it); run "
                  "with -v for the library's reason",
                  zmesh_strerror(rc), tap_options_beacon_port(opts));
    else if (rc != 0)
        s_finding(self, "cannot_start", NULL, NULL,
                  "cannot start an agent: %s; run with -v for the library's "
                  "reason",
                  zmesh_strerror(rc));
    else {
        s_info(self, "started",
               "agent started: control endpoint %s, beacon port %d bound; "
               "listening %.1f s",
               zmesh_agent_endpoint(agent), tap_options_beacon_port(opts),
               opts->wait_ms / 1000.0);
        tap_signal_install();
        exit_code = s_listen(self, agent);
        if (exit_code == 0)
            exit_code = s_diagnose(self, agent);
    }
    zmesh_agent_destroy(&agent);
    if (exit_code == 0) {
        s_print_summary(self);
        exit_code = self->findings > 0 ? TAP_EXIT_FAILURE : TAP_EXIT_OK;
    }
    free(self);
    return exit_code;
}

void
tap_help_doctor(void)
{
    fputs(
        "Usage: mesh-tap doctor [OPTIONS]\n"
        "\n"
        "Explains why a peer is not seen or not connected. It joins the\n"
        "mesh with the options given (checking that binding works),\n"
        "subscribes to every topic, listens for --wait seconds, then checks:\n"
        "  - beacons of other meshes or protocol versions on the beacon port\n"
        "  - malformed datagrams on the beacon port, rejected control\n"
        "    messages and data frames\n"
        "  - no peers at all, and what the discovery scope can see\n"
        "  - each peer's control and data endpoint, with a plain TCP connect\n"
        "  - peers that publish but are not connected, or fell silent\n"
        "  - publishers whose clocks are more than 0.5 s off this host's\n"
        "    (from the timestamps of the events that arrive)\n"
        "Each finding is one sentence saying what to do. Exit 0 when there\n"
        "is none, 1 when there are findings.\n"
        "\n"
        "Options:\n"
        "  --wait SEC           how long to listen (default 3)\n"
        "  --json               one JSON object per line:\n"
        "                       {\"type\":\"info\"|\"finding\",\"code\":...,"
        "\"message\":...,\n"
        "                        [\"peer\":...,\"peer_id\":...]}, then\n"
        "                       {\"type\":\"summary\",\"findings\":N}\n\n",
        stdout);
    tap_options_help_common();
    fputs(
        "\n"
        "Examples:\n"
        "  mesh-tap doctor\n"
        "  mesh-tap doctor --mesh prod --discovery lan --interface eth1\n"
        "  mesh-tap doctor --discovery none --seed tcp://192.0.2.10:40123\n"
        "  mesh-tap doctor --json --wait 5 | jq -r 'select(.type==\"finding\")"
        ".message'\n",
        stdout);
}
