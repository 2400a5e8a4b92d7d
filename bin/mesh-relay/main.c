/*  main.c - mesh-relay, the daemon that stores chosen streams of a zmesh
    mesh on disk and serves them back (docs/mesh-relay.md). A thin main
    over lib/relay.c: reads the flags and the --config file into a relay
    configuration, has it checked before anything touches the disk, opens
    the stores, joins the mesh and runs the relay's loop until SIGINT or
    SIGTERM, then closes everything so peers hear BYE. Exit codes: 0 ok,
    1 runtime failure, 2 usage or bad configuration.
*/
#include "relay.h"

#include "zmesh.h"

#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { S_EXIT_OK = 0, S_EXIT_FAILURE = 1, S_EXIT_USAGE = 2 };

/*  The longest wait of one pass, so a signal is acted on soon. */
#define S_STEP_MS 200

/*  Flags that go to zmesh__relay_config_set under their own name. */
static const char *s_settings[] = {"dir",           "stream",
                                   "max-age",       "max-bytes",
                                   "max-events",    "sync",
                                   "segment-bytes", "mesh",
                                   "beacon-port",   "beacon-interval",
                                   "peer-timeout",  "discovery",
                                   "interface",     "multicast-group",
                                   "seed",          "name",
                                   "max-msg-size"};
#define S_SETTINGS_COUNT (sizeof s_settings / sizeof s_settings[0])

static volatile sig_atomic_t s_stop;

static void
s_on_signal(int signal_number)
{
    (void)signal_number;
    s_stop = 1;
}

static void
s_signals_install(void)
{
    struct sigaction action;
    memset(&action, 0, sizeof action);
    sigemptyset(&action.sa_mask);
    action.sa_handler = s_on_signal;
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
    action.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &action, NULL);
}

static void
s_help(void)
{
    fputs(
        "Usage: mesh-relay --dir DIR --stream NAME=PATTERN[,PATTERN...]\n"
        "                  [--stream ...] [OPTIONS]\n"
        "       mesh-relay --config FILE [OPTIONS]\n"
        "\n"
        "Joins a zmesh mesh as an agent and stores the events of the given\n"
        "streams on disk, so that subscribers that were offline can catch\n"
        "up (mesh-tap read STREAM). Each stream has a name, topic patterns\n"
        "and retention limits, and is kept in DIR/NAME/ as a segmented log\n"
        "(proto/relay-log.md). A restarted relay asks the publishers again\n"
        "for what it missed while it was down, while their retransmit\n"
        "buffers still hold it; what they no longer hold is recorded as a\n"
        "gap. Readers ask through requests on $relay.read and $relay.info\n"
        "(proto/relay.md).\n"
        "\n"
        "Streams and storage:\n"
        "  --dir DIR            where the streams live (required; created if\n"
        "                       missing, parents included)\n"
        "  --stream NAME=PATTERN[,PATTERN...]\n"
        "                       a stream: NAME is 1-64 of [A-Za-z0-9_-];\n"
        "                       patterns are NATS-style ('orders.>',\n"
        "                       'billing.*'); repeatable, names unique\n"
        "  --max-age [NAME:]DURATION\n"
        "                       delete whole segments whose newest event is\n"
        "                       older than this (e.g. 90s, 15m, 2h, 7d, "
        "1h30m)\n"
        "  --max-bytes [NAME:]SIZE\n"
        "                       keep a stream below this many bytes (e.g.\n"
        "                       512M, 10G; K, M, G, T are powers of 1024)\n"
        "  --max-events [NAME:]N\n"
        "                       keep at most N events in a stream\n"
        "  --sync [NAME:]POLICY when stored events reach the disk: always\n"
        "                       (fsync once per batch: group commit; the\n"
        "                       default), interval:MS (at most MS ms of\n"
        "                       events lost by a power cut) or never\n"
        "  --segment-bytes [NAME:]SIZE\n"
        "                       segment file size (default 64M); retention\n"
        "                       deletes whole segments\n"
        "  Without NAME: the default for every stream; with NAME: for that\n"
        "  stream only. Limits of 0 mean none (the default).\n"
        "\n",
        stdout);
    fputs(
        "Mesh:\n"
        "  --mesh NAME          the mesh to join (default: $ZMESH_MESH, else\n"
        "                       \"default\")\n"
        "  --name NAME          the relay's agent name (default mesh-relay)\n"
        "  --discovery SCOPE    host (this host only; the default), lan,\n"
        "                       multicast or none (seeds only)\n"
        "  --interface IF       interface name or IPv4 address for lan and\n"
        "                       multicast (required) or none (optional)\n"
        "  --multicast-group G  IPv4 group for multicast discovery\n"
        "  --seed ENDPOINT      control endpoint of an agent to contact,\n"
        "                       tcp://HOST:PORT (repeatable)\n"
        "  --beacon-port PORT   UDP port of beacons (default:\n"
        "                       $ZMESH_BEACON_PORT, else 5677)\n"
        "  --beacon-interval T  beacon and ping interval (ms, or e.g. 1s)\n"
        "  --peer-timeout T     silence after which a peer is gone\n"
        "  --max-msg-size SIZE  largest message accepted (default 1M)\n"
        "\n"
        "Other:\n"
        "  --config FILE        read settings from FILE first; flags given\n"
        "                       as well override it (docs/mesh-relay.md)\n"
        "  --check              check the configuration and exit: 0 if good\n"
        "  -v, --verbose        more log lines on stderr (-vv: debug)\n"
        "  -h, --help           this help\n"
        "      --version        the library version\n"
        "\n"
        "Configuration file (INI-like; '#' starts a comment line):\n"
        "  mesh = prod\n"
        "  dir = /var/lib/mesh-relay\n"
        "  sync = interval:200\n"
        "  max-age = 7d\n"
        "  [stream orders]\n"
        "  patterns = orders.> returns.>\n"
        "  max-bytes = 10G\n"
        "Global keys are the long flags without dashes; a [stream NAME]\n"
        "section takes patterns (separated by spaces or commas), pattern\n"
        "(one, whole), max-age, max-bytes, max-events, sync and\n"
        "segment-bytes.\n"
        "\n",
        stdout);
    fputs("Examples:\n"
          "  mesh-relay --mesh prod --dir /var/lib/mesh-relay \\\n"
          "      --stream orders='orders.>' --max-age 7d\n"
          "  mesh-relay --dir ./data --stream audit='audit.>,login.*' \\\n"
          "      --stream metrics='metrics.>' --max-bytes metrics:1G \\\n"
          "      --sync metrics:never\n"
          "  mesh-relay --config /etc/mesh-relay.conf --check\n"
          "  mesh-tap streams                     what a relay stores\n"
          "  mesh-tap read orders --since 1h      read it back\n"
          "\n"
          "Signals: SIGINT and SIGTERM stop the relay cleanly (stores synced\n"
          "and closed, peers told BYE). A kill -9 loses nothing that was\n"
          "synced; the next start recovers the logs.\n"
          "\n"
          "Exit status: 0 stopped by a signal, or --check passed; 1 runtime\n"
          "failure (a store in use or unreadable, cannot join the mesh); 2\n"
          "usage or bad configuration (reported before anything is created\n"
          "on disk).\n",
          stdout);
}

/*  A flag's spelling: "--name" or "--name=value". Sets *value when the
    argument carries one. */
static const char *
s_flag_name(const char *arg, char *name, size_t name_size, const char **value)
{
    *value = NULL;
    if (strncmp(arg, "--", 2) != 0)
        return NULL;
    const char *equals = strchr(arg, '=');
    size_t n = equals ? (size_t)(equals - arg - 2) : strlen(arg + 2);
    if (n == 0 || n >= name_size)
        return NULL;
    memcpy(name, arg + 2, n);
    name[n] = '\0';
    if (equals)
        *value = equals + 1;
    return name;
}

static bool
s_is_setting(const char *name)
{
    for (size_t i = 0; i < S_SETTINGS_COUNT; i++)
        if (strcmp(name, s_settings[i]) == 0)
            return true;
    return false;
}

typedef struct {
    bool help;
    bool version;
    bool check;
    int verbose;
    const char *config_file;
} s_flags_t;

__attribute__((format(printf, 1, 2))) static int
s_usage(const char *format, ...)
{
    char line[512];
    va_list args;
    va_start(args, format);
    vsnprintf(line, sizeof line, format, args);
    va_end(args);
    fprintf(stderr, "mesh-relay: %s\nTry 'mesh-relay --help'.\n", line);
    return S_EXIT_USAGE;
}

/*  First pass: every argument is a known flag with its value; picks out
    the flags that are not settings. */
static int
s_scan_flags(int argc, char **argv, s_flags_t *flags)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (arg[0] == '-' && arg[1] != '-' && arg[1] != '\0') {
            for (const char *c = arg + 1; *c; c++) {
                if (*c == 'v')
                    flags->verbose++;
                else if (*c == 'h')
                    flags->help = true;
                else {
                    char letter[3] = {'-', *c, '\0'};
                    return s_usage("unknown option '%s'", letter);
                }
            }
            continue;
        }
        char name[64];
        const char *value;
        if (!s_flag_name(arg, name, sizeof name, &value))
            return s_usage("unexpected argument '%s'; mesh-relay takes "
                           "options only",
                           arg);
        bool plain = strcmp(name, "help") == 0 ||
                     strcmp(name, "version") == 0 ||
                     strcmp(name, "check") == 0 || strcmp(name, "verbose") == 0;
        if (plain) {
            if (value)
                return s_usage("option '--%s' takes no value", name);
            flags->help |= strcmp(name, "help") == 0;
            flags->version |= strcmp(name, "version") == 0;
            flags->check |= strcmp(name, "check") == 0;
            flags->verbose += strcmp(name, "verbose") == 0;
            continue;
        }
        if (strcmp(name, "config") != 0 && !s_is_setting(name))
            return s_usage("unknown option '--%s'", name);
        if (!value) {
            if (i + 1 >= argc)
                return s_usage("option '--%s' needs a value", name);
            value = argv[++i];
        }
        if (strcmp(name, "config") == 0) {
            if (flags->config_file)
                return s_usage("--config is given twice");
            flags->config_file = value;
        }
    }
    return 0;
}

/*  Second pass: the settings, in the order given, over the file's. */
static int
s_apply_flags(int argc, char **argv, zmesh__relay_config_t *config)
{
    char err[512];
    for (int i = 1; i < argc; i++) {
        char name[64];
        const char *value;
        if (!s_flag_name(argv[i], name, sizeof name, &value))
            continue; // short flags: taken by the first pass
        if (!s_is_setting(name)) {
            if (strcmp(name, "config") == 0 && !value)
                i++;
            continue;
        }
        if (!value)
            value = argv[++i];
        char source[80];
        snprintf(source, sizeof source, "--%s", name);
        if (zmesh__relay_config_set(config, name, value, source, err,
                                    sizeof err) != 0) {
            fprintf(stderr, "mesh-relay: %s\n", err);
            return S_EXIT_USAGE;
        }
    }
    return 0;
}

static int
s_apply_environment(zmesh__relay_config_t *config)
{
    static const struct {
        const char *variable;
        const char *key;
    } vars[] = {{"ZMESH_MESH", "mesh"}, {"ZMESH_BEACON_PORT", "beacon-port"}};
    char err[512];
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *value = getenv(vars[i].variable);
        if (!value || !*value)
            continue;
        if (zmesh__relay_config_set(config, vars[i].key, value,
                                    vars[i].variable, err, sizeof err) != 0) {
            fprintf(stderr, "mesh-relay: %s\n", err);
            return S_EXIT_USAGE;
        }
    }
    return 0;
}

/*  "7d", "90m", "1500ms": the largest unit that divides. */
static void
s_duration_text(uint64_t ms, char *out, size_t size)
{
    static const struct {
        const char *unit;
        uint64_t ms;
    } units[] = {{"d", 86400000ull},
                 {"h", 3600000},
                 {"m", 60000},
                 {"s", 1000},
                 {"ms", 1}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (ms % units[i].ms == 0) {
            snprintf(out, size, "%" PRIu64 "%s", ms / units[i].ms,
                     units[i].unit);
            return;
        }
}

static void
s_size_text(uint64_t bytes, char *out, size_t size)
{
    static const char *units[] = {"", "K", "M", "G", "T"};
    size_t unit = 0;
    while (unit + 1 < sizeof units / sizeof units[0] && bytes >= 1024 &&
           bytes % 1024 == 0) {
        bytes /= 1024;
        unit++;
    }
    snprintf(out, size, "%" PRIu64 "%s", bytes, units[unit]);
}

/*  The startup line: what is stored where, and how. */
static void
s_print_startup(const zmesh__relay_config_t *config, zmesh__relay_t *relay)
{
    zmesh_agent_t *agent = zmesh__relay_agent(relay);
    printf("mesh-relay: mesh '%s' (beacon port %d) as %s %s at %s:",
           config->mesh ? config->mesh : "default",
           config->beacon_port ? config->beacon_port
                               : ZMESH_DEFAULT_BEACON_PORT,
           zmesh_agent_name(agent), zmesh_agent_id(agent),
           zmesh_agent_endpoint(agent));
    for (size_t i = 0; i < config->streams_count; i++) {
        const zmesh__relay_stream_config_t *stream = &config->streams[i];
        zmesh__store_config_t store;
        zmesh__relay_store_config(config, i, &store);
        printf("%s stream %s (", i ? ";" : "", stream->name);
        for (size_t j = 0; j < stream->patterns_count; j++)
            printf("%s%s", j ? " " : "", stream->patterns[j]);
        char text[32];
        zmesh__relay_sync_text(store.sync, store.sync_interval_ms, text,
                               sizeof text);
        printf(") in %s/%s, sync %s", config->dir, stream->name, text);
        if (store.max_age_ms) {
            s_duration_text(store.max_age_ms, text, sizeof text);
            printf(", max-age %s", text);
        }
        if (store.max_bytes) {
            s_size_text(store.max_bytes, text, sizeof text);
            printf(", max-bytes %s", text);
        }
        if (store.max_events)
            printf(", max-events %" PRIu64, store.max_events);
        if (!store.max_age_ms && !store.max_bytes && !store.max_events)
            printf(", kept without limit");
    }
    printf("\n");
    fflush(stdout);
}

static int
s_run(const zmesh__relay_config_t *config)
{
    char err[512];
    zmesh__relay_t *relay = NULL;
    if (zmesh__relay_new(&relay, config, err, sizeof err) != 0) {
        fprintf(stderr, "mesh-relay: %s\n", err);
        return S_EXIT_USAGE;
    }
    s_signals_install();
    if (zmesh__relay_open(relay, err, sizeof err) != 0 ||
        zmesh__relay_start(relay, err, sizeof err) != 0) {
        fprintf(stderr, "mesh-relay: %s\n", err);
        zmesh__relay_destroy(&relay);
        return S_EXIT_FAILURE;
    }
    s_print_startup(config, relay);
    int exit_code = S_EXIT_OK;
    while (!s_stop) {
        int rc = zmesh__relay_step(relay, S_STEP_MS);
        if (rc < 0) {
            fprintf(stderr, "mesh-relay: the agent failed: %s\n",
                    zmesh_strerror(rc));
            exit_code = S_EXIT_FAILURE;
            break;
        }
    }
    zmesh__relay_destroy(&relay);
    if (exit_code == S_EXIT_OK)
        fprintf(stderr, "mesh-relay: stopped\n");
    return exit_code;
}

int
main(int argc, char **argv)
{
    s_flags_t flags = {0};
    int exit_code = s_scan_flags(argc, argv, &flags);
    if (exit_code != 0)
        return exit_code;
    if (flags.help) {
        s_help();
        return S_EXIT_OK;
    }
    if (flags.version) {
        printf("mesh-relay %s (protocol %d)\n", zmesh_version(),
               ZMESH_PROTOCOL_VERSION);
        return S_EXIT_OK;
    }
    zmesh_log_set(zmesh_log_stderr,
                  flags.verbose == 0   ? ZMESH_LOG_NOTICE
                  : flags.verbose == 1 ? ZMESH_LOG_INFO
                                       : ZMESH_LOG_DEBUG,
                  NULL);
    zmesh__relay_config_t config;
    zmesh__relay_config_init(&config);
    char err[512];
    exit_code = s_apply_environment(&config);
    if (exit_code == 0 && flags.config_file &&
        zmesh__relay_config_load(&config, flags.config_file, err, sizeof err) !=
            0) {
        fprintf(stderr, "mesh-relay: %s\n", err);
        exit_code = S_EXIT_USAGE;
    }
    if (exit_code == 0)
        exit_code = s_apply_flags(argc, argv, &config);
    if (exit_code == 0 &&
        zmesh__relay_config_check(&config, err, sizeof err) != 0) {
        fprintf(stderr, "mesh-relay: %s\n", err);
        exit_code = S_EXIT_USAGE;
    }
    if (exit_code == 0 && flags.check) {
        // The agent checks the names it is given: make one, touch nothing.
        zmesh__relay_t *relay = NULL;
        if (zmesh__relay_new(&relay, &config, err, sizeof err) != 0) {
            fprintf(stderr, "mesh-relay: %s\n", err);
            exit_code = S_EXIT_USAGE;
        } else
            printf("mesh-relay: configuration is good: %zu stream%s in %s\n",
                   config.streams_count, config.streams_count == 1 ? "" : "s",
                   config.dir);
        zmesh__relay_destroy(&relay);
    } else if (exit_code == 0)
        exit_code = s_run(&config);
    zmesh__relay_config_clear(&config);
    return exit_code;
}
