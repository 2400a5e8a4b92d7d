/*  tap_options.c - mesh-tap's option parsing and agent setup, shared by
    every subcommand. One table says which option each subcommand takes,
    so a flag means the same everywhere and "--raw" given to "peers" is
    a usage error rather than silently ignored. Values are checked here
    (numbers, ranges, enums); names the library owns (mesh, seeds) are
    checked by the library when applied to the agent, and its refusals are
    reported as usage errors too. Runs nothing on the network itself.
*/
#include "tap_options.h"

#include "tap_relay_args.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    S_MESH,
    S_DISCOVERY,
    S_INTERFACE,
    S_SEED,
    S_BEACON_PORT,
    S_VERBOSE,
    S_HELP,
    S_VERSION,
    S_JSON,
    S_COUNT,
    S_TIMEOUT,
    S_MIN_PEERS,
    S_WAIT,
    S_PUBLISHER,
    S_HEADERS_ONLY,
    S_RAW,
    S_TOP,
    S_INTERVAL,
    S_WATCH,
    S_REPEAT,
    S_RATE,
    S_STDIN,
    S_SPEED,
    S_FAST,
    S_NAME,
    S_TO,
    S_FROM_SEQ,
    S_SINCE,
    S_RELAY,
    S_CONFIRM,
    S_CONFIRM_TIMEOUT,
    S_DURABLE,
    S_STREAM,
    S_START,
    S_ACK_WAIT,
    S_MAX_DELIVER,
    S_MAX_ACK_PENDING
};

#define S_ALL ((1u << TAP_COMMANDS_COUNT) - 1)
#define S_ONLY(cmd) (1u << (cmd))
#define S_SUB S_ONLY(TAP_CMD_SUB)
#define S_PUB S_ONLY(TAP_CMD_PUB)
#define S_PEERS S_ONLY(TAP_CMD_PEERS)
#define S_STATS S_ONLY(TAP_CMD_STATS)
#define S_RECORD S_ONLY(TAP_CMD_RECORD)
#define S_PLAY S_ONLY(TAP_CMD_PLAY)
#define S_DOCTOR S_ONLY(TAP_CMD_DOCTOR)
#define S_REQUEST S_ONLY(TAP_CMD_REQUEST)
#define S_SEND S_ONLY(TAP_CMD_SEND)
#define S_READ S_ONLY(TAP_CMD_READ)
#define S_STREAMS S_ONLY(TAP_CMD_STREAMS)
#define S_CONSUMERS S_ONLY(TAP_CMD_CONSUMERS)

static const struct {
    const char *name;
    char letter; // short form, or 0
    bool value;  // takes a value
    unsigned commands;
    int id;
} s_options[] = {
    {"mesh", 0, true, S_ALL, S_MESH},
    {"discovery", 0, true, S_ALL, S_DISCOVERY},
    {"interface", 0, true, S_ALL, S_INTERFACE},
    {"seed", 0, true, S_ALL, S_SEED},
    {"beacon-port", 0, true, S_ALL, S_BEACON_PORT},
    {"verbose", 'v', false, S_ALL, S_VERBOSE},
    {"help", 'h', false, S_ALL, S_HELP},
    {"version", 0, false, S_ALL, S_VERSION},
    {"json", 0, false,
     S_SUB | S_PEERS | S_STATS | S_DOCTOR | S_REQUEST | S_READ | S_STREAMS |
         S_CONSUMERS,
     S_JSON},
    {"count", 0, true, S_SUB | S_STATS | S_RECORD | S_PEERS | S_READ, S_COUNT},
    {"timeout", 0, true,
     S_SUB | S_STATS | S_RECORD | S_PEERS | S_PUB | S_PLAY | S_REQUEST |
         S_SEND | S_READ | S_STREAMS | S_CONSUMERS,
     S_TIMEOUT},
    {"min-peers", 0, true, S_PUB | S_PLAY, S_MIN_PEERS},
    {"wait", 0, true, S_PEERS | S_DOCTOR, S_WAIT},
    {"publisher", 0, true, S_SUB | S_STATS | S_RECORD, S_PUBLISHER},
    {"headers-only", 0, false, S_SUB, S_HEADERS_ONLY},
    {"raw", 0, false, S_SUB, S_RAW},
    {"top", 0, true, S_STATS, S_TOP},
    {"interval", 0, true, S_STATS, S_INTERVAL},
    {"watch", 0, false, S_PEERS, S_WATCH},
    {"repeat", 0, true, S_PUB, S_REPEAT},
    {"rate", 0, true, S_PUB, S_RATE},
    {"stdin", 0, false, S_PUB | S_REQUEST, S_STDIN},
    {"speed", 0, true, S_PLAY, S_SPEED},
    {"as-fast-as-possible", 0, false, S_PLAY, S_FAST},
    {"name", 0, true, S_ALL, S_NAME},
    {"to", 0, true, S_REQUEST, S_TO},
    {"from-seq", 0, true, S_READ, S_FROM_SEQ},
    {"since", 0, true, S_READ, S_SINCE},
    {"relay", 0, true, S_READ | S_STREAMS | S_CONSUMERS, S_RELAY},
    {"confirm", 0, false, S_PUB, S_CONFIRM},
    {"confirm-timeout", 0, true, S_PUB, S_CONFIRM_TIMEOUT},
    {"durable", 0, true, S_SUB, S_DURABLE},
    {"stream", 0, true, S_SUB, S_STREAM},
    {"start", 0, true, S_SUB, S_START},
    {"ack-wait", 0, true, S_SUB, S_ACK_WAIT},
    {"max-deliver", 0, true, S_SUB, S_MAX_DELIVER},
    {"max-ack-pending", 0, true, S_SUB, S_MAX_ACK_PENDING},
};
#define S_OPTIONS_COUNT (sizeof s_options / sizeof s_options[0])

/*  The longest wait any option accepts, so milliseconds fit an int. */
#define S_SECONDS_MAX 1000000.0

/*  Bounds of the plain decimals --rate and --speed take. */
#define S_FACTOR_MAX 1000000.0

static const char *s_command_names[TAP_COMMANDS_COUNT] = {
    "sub",    "pub",     "peers", "stats", "record",  "play",
    "doctor", "request", "send",  "read",  "streams", "consumers"};

const char *
tap_command_name(tap_command_t command)
{
    if ((int)command < 0 || (int)command >= TAP_COMMANDS_COUNT)
        return "sub";
    return s_command_names[command];
}

int
tap_command_find(const char *word)
{
    for (int i = 0; i < TAP_COMMANDS_COUNT; i++)
        if (strcmp(word, s_command_names[i]) == 0)
            return i;
    return -1;
}

void
tap_error(const char *format, ...)
{
    char line[1024];
    va_list args;
    va_start(args, format);
    vsnprintf(line, sizeof line, format, args);
    va_end(args);
    fprintf(stderr, "mesh-tap: %s\n", line);
}

int
tap_usage_error(tap_command_t command, const char *format, ...)
{
    char line[1024];
    va_list args;
    va_start(args, format);
    vsnprintf(line, sizeof line, format, args);
    va_end(args);
    fprintf(stderr, "mesh-tap: %s\nTry 'mesh-tap %s --help'.\n", line,
            tap_command_name(command));
    return TAP_EXIT_USAGE;
}

/*  A whole decimal number in [min, max], nothing else around it. */
static bool
s_parse_long(const char *text, long min, long max, long *out)
{
    if (!isdigit((unsigned char)text[0]) &&
        !(min < 0 && text[0] == '-' && isdigit((unsigned char)text[1])))
        return false;
    errno = 0;
    char *end;
    long value = strtol(text, &end, 10);
    if (errno != 0 || *end != '\0' || value < min || value > max)
        return false;
    *out = value;
    return true;
}

/*  A plain decimal ("3", "1.5", ".25") in [0, max]. Signs, exponents, hex
    and "inf" are refused rather than handed to strtod. */
static bool
s_parse_decimal(const char *text, double max, double *out)
{
    size_t digits = 0, points = 0;
    for (const char *c = text; *c; c++) {
        if (isdigit((unsigned char)*c))
            digits++;
        else if (*c == '.')
            points++;
        else
            return false;
    }
    if (digits == 0 || points > 1)
        return false;
    double value = strtod(text, NULL);
    if (!isfinite(value) || value > max)
        return false;
    *out = value;
    return true;
}

/*  Seconds as a plain decimal, converted to whole milliseconds (rounded
    up, so 0.0001 still waits). */
static bool
s_parse_seconds(const char *text, int *ms)
{
    double seconds;
    if (!s_parse_decimal(text, S_SECONDS_MAX, &seconds))
        return false;
    double exact = seconds * 1000.0;
    *ms = (int)exact;
    if (*ms < exact) // round up without libm's ceil
        (*ms)++;
    return true;
}

static int
s_find_long(const char *name, size_t name_size)
{
    for (size_t i = 0; i < S_OPTIONS_COUNT; i++)
        if (strlen(s_options[i].name) == name_size &&
            strncmp(s_options[i].name, name, name_size) == 0)
            return (int)i;
    return -1;
}

static int
s_find_short(char letter)
{
    for (size_t i = 0; i < S_OPTIONS_COUNT; i++)
        if (s_options[i].letter == letter)
            return (int)i;
    return -1;
}

/*  --start all|new|last|seq:N|time:TIME (a new durable consumer's first
    record; proto/relay.md#relay-consume). */
static bool
s_parse_start(tap_options_t *opts, const char *text)
{
    long number;
    if (strcmp(text, "all") == 0)
        opts->start = ZMESH_START_ALL;
    else if (strcmp(text, "new") == 0)
        opts->start = ZMESH_START_NEW;
    else if (strcmp(text, "last") == 0)
        opts->start = ZMESH_START_LAST;
    else if (strncmp(text, "seq:", 4) == 0 &&
             s_parse_long(text + 4, 1, LONG_MAX, &number)) {
        opts->start = ZMESH_START_SEQ;
        opts->start_sequence = (uint64_t)number;
    } else if (strncmp(text, "time:", 5) == 0 &&
               tap_parse_time(text + 5, &opts->start_time_us))
        opts->start = ZMESH_START_TIME;
    else
        return false;
    opts->start_text = text;
    return true;
}

/*  Applies one option whose value (if it takes one) is `value`. */
static int
s_apply(tap_options_t *opts, int index, const char *value)
{
    tap_command_t cmd = opts->command;
    const char *name = s_options[index].name;
    long number;
    switch (s_options[index].id) {
    case S_MESH:
        opts->mesh = value;
        opts->mesh_from = "--mesh";
        break;
    case S_DISCOVERY:
        if (strcmp(value, "host") == 0)
            opts->discovery = ZMESH_DISCOVERY_HOST;
        else if (strcmp(value, "lan") == 0)
            opts->discovery = ZMESH_DISCOVERY_LAN;
        else if (strcmp(value, "multicast") == 0)
            opts->discovery = ZMESH_DISCOVERY_MULTICAST;
        else if (strcmp(value, "none") == 0)
            opts->discovery = ZMESH_DISCOVERY_NONE;
        else
            return tap_usage_error(cmd,
                                   "--discovery: '%s' is not one of host, "
                                   "lan, multicast or none",
                                   value);
        break;
    case S_INTERFACE: opts->interface_name = value; break;
    case S_SEED:
        if (opts->seeds_count == TAP_SEEDS_MAX)
            return tap_usage_error(cmd, "--seed: at most %d seeds",
                                   TAP_SEEDS_MAX);
        opts->seeds[opts->seeds_count++] = value;
        break;
    case S_BEACON_PORT:
        if (!s_parse_long(value, 1, 65535, &number))
            return tap_usage_error(
                cmd, "--beacon-port: '%s' is not a port number (1-65535)",
                value);
        opts->beacon_port = (int)number;
        break;
    case S_VERBOSE: opts->verbose++; break;
    case S_HELP: opts->help = true; break;
    case S_VERSION: opts->version = true; break;
    case S_JSON: opts->json = true; break;
    case S_COUNT:
        if (!s_parse_long(value, 1, LONG_MAX, &number))
            return tap_usage_error(
                cmd, "--count: '%s' is not a whole number of at least 1",
                value);
        opts->count = number;
        break;
    case S_MIN_PEERS:
        if (!s_parse_long(value, 0, 100000, &number))
            return tap_usage_error(
                cmd, "--min-peers: '%s' is not a whole number from 0", value);
        opts->min_peers = (int)number;
        break;
    case S_TIMEOUT:
    case S_WAIT:
    case S_INTERVAL: {
        int ms;
        if (!s_parse_seconds(value, &ms))
            return tap_usage_error(cmd,
                                   "--%s: '%s' is not a number of seconds "
                                   "(e.g. 3 or 1.5, at most %.0f)",
                                   name, value, S_SECONDS_MAX);
        if (s_options[index].id == S_TIMEOUT) {
            opts->timeout_ms = ms;
            opts->timeout_given = true;
        } else if (s_options[index].id == S_WAIT) {
            opts->wait_ms = ms;
            opts->wait_given = true;
        } else if (ms < 100)
            return tap_usage_error(
                cmd, "--interval: '%s' is shorter than 0.1 seconds", value);
        else
            opts->interval_ms = ms;
        break;
    }
    case S_PUBLISHER:
        if (opts->publishers_count == TAP_PUBLISHERS_MAX)
            return tap_usage_error(cmd, "--publisher: at most %d publishers",
                                   TAP_PUBLISHERS_MAX);
        if (value[0] == '\0')
            return tap_usage_error(cmd, "--publisher: the name is empty");
        opts->publishers[opts->publishers_count++] = value;
        break;
    case S_HEADERS_ONLY: opts->headers_only = true; break;
    case S_RAW: opts->raw = true; break;
    case S_WATCH: opts->watch = true; break;
    case S_STDIN: opts->stdin_lines = true; break;
    case S_FAST: opts->fast = true; break;
    case S_NAME: opts->name = value; break; // the library checks it
    case S_TO:
        if (value[0] == '\0')
            return tap_usage_error(cmd, "--to: the peer name is empty");
        opts->to = value;
        break;
    case S_FROM_SEQ:
        if (!s_parse_long(value, 0, LONG_MAX, &number))
            return tap_usage_error(
                cmd, "--from-seq: '%s' is not a relay sequence number", value);
        opts->from_seq = (uint64_t)number;
        opts->from_seq_given = true;
        break;
    case S_SINCE: opts->since = value; break; // tap_read.c parses it
    case S_RELAY:
        if (value[0] == '\0')
            return tap_usage_error(cmd, "--relay: the name is empty");
        opts->relay = value;
        break;
    case S_CONFIRM: opts->confirm = true; break;
    case S_CONFIRM_TIMEOUT: {
        int ms;
        if (!s_parse_seconds(value, &ms) || ms < 1 || ms > 3600000)
            return tap_usage_error(cmd,
                                   "--confirm-timeout: '%s' is not a number "
                                   "of seconds above 0 and at most 3600",
                                   value);
        opts->confirm_timeout_ms = ms;
        opts->confirm_timeout_given = true;
        break;
    }
    case S_DURABLE:
        if (!tap_consumer_name_ok(value))
            return tap_usage_error(cmd,
                                   "--durable: '%s' is not a consumer name "
                                   "(1-64 letters, digits, '_', '.' and '-')",
                                   value);
        opts->durable = value;
        break;
    case S_STREAM:
        if (!tap_stream_name_ok(value))
            return tap_usage_error(cmd,
                                   "--stream: '%s' is not a stream name (1-64 "
                                   "letters, digits, '_' and '-')",
                                   value);
        opts->stream = value;
        opts->durable_option_given = true;
        break;
    case S_START:
        if (!s_parse_start(opts, value))
            return tap_usage_error(
                cmd,
                "--start: '%s' is not one of all, new, last, seq:N (a relay "
                "sequence from 1) or time:TIME (RFC 3339, or a duration ago "
                "such as 15m)",
                value);
        opts->durable_option_given = true;
        break;
    case S_ACK_WAIT: {
        int ms;
        if (!s_parse_seconds(value, &ms) || ms < 100 || ms > 3600000)
            return tap_usage_error(cmd,
                                   "--ack-wait: '%s' is not a number of "
                                   "seconds from 0.1 to 3600",
                                   value);
        opts->ack_wait_ms = ms;
        opts->durable_option_given = true;
        break;
    }
    case S_MAX_DELIVER:
        if (!s_parse_long(value, 0, 1000, &number))
            return tap_usage_error(cmd,
                                   "--max-deliver: '%s' is not a whole number "
                                   "from 0 (no limit) to 1000",
                                   value);
        opts->max_deliver = (int)number;
        opts->durable_option_given = true;
        break;
    case S_MAX_ACK_PENDING:
        if (!s_parse_long(value, 1, 10000, &number))
            return tap_usage_error(cmd,
                                   "--max-ack-pending: '%s' is not a whole "
                                   "number from 1 to 10000",
                                   value);
        opts->max_ack_pending = (int)number;
        opts->durable_option_given = true;
        break;
    case S_TOP:
        if (!s_parse_long(value, 0, 100000, &number))
            return tap_usage_error(
                cmd, "--top: '%s' is not a whole number from 0 (0: all)",
                value);
        opts->top = (int)number;
        break;
    case S_REPEAT:
        if (!s_parse_long(value, 1, LONG_MAX, &number))
            return tap_usage_error(
                cmd, "--repeat: '%s' is not a whole number of at least 1",
                value);
        opts->repeat = number;
        break;
    case S_RATE:
    case S_SPEED: {
        double factor;
        if (!s_parse_decimal(value, S_FACTOR_MAX, &factor) || factor <= 0)
            return tap_usage_error(cmd,
                                   "--%s: '%s' is not a number above 0 "
                                   "(e.g. 10 or 0.5, at most %.0f)",
                                   name, value, S_FACTOR_MAX);
        if (s_options[index].id == S_RATE)
            opts->rate = factor;
        else
            opts->speed = factor;
        break;
    }
    }
    return 0;
}

/*  Checks that option `index` is one `cmd` takes. */
static int
s_check_command(tap_options_t *opts, int index, const char *as_typed)
{
    if (s_options[index].commands & S_ONLY(opts->command))
        return 0;
    return tap_usage_error(opts->command,
                           "option '%s' does not apply to 'mesh-tap %s'",
                           as_typed, tap_command_name(opts->command));
}

/*  One "--name" or "--name=value"; may take the next argument as value. */
static int
s_parse_long_option(tap_options_t *opts, int argc, char **argv, int *i)
{
    const char *arg = argv[*i];
    const char *name = arg + 2;
    const char *equals = strchr(name, '=');
    size_t name_size = equals ? (size_t)(equals - name) : strlen(name);
    int index = s_find_long(name, name_size);
    if (index < 0)
        return tap_usage_error(opts->command, "unknown option '%.*s'",
                               (int)(name_size + 2), arg);
    char as_typed[64];
    snprintf(as_typed, sizeof as_typed, "--%s", s_options[index].name);
    int rc = s_check_command(opts, index, as_typed);
    if (rc != 0)
        return rc;
    const char *value = NULL;
    if (s_options[index].value) {
        if (equals)
            value = equals + 1;
        else if (*i + 1 < argc)
            value = argv[++*i];
        else
            return tap_usage_error(opts->command, "option '--%s' needs a value",
                                   s_options[index].name);
    } else if (equals)
        return tap_usage_error(opts->command, "option '--%s' takes no value",
                               s_options[index].name);
    return s_apply(opts, index, value);
}

/*  A cluster of short flags such as "-vv" or "-h". */
static int
s_parse_short_options(tap_options_t *opts, const char *arg)
{
    for (const char *c = arg + 1; *c; c++) {
        int index = s_find_short(*c);
        if (index < 0)
            return tap_usage_error(opts->command, "unknown option '-%c'", *c);
        char as_typed[3] = {'-', *c, '\0'};
        int rc = s_check_command(opts, index, as_typed);
        if (rc == 0)
            rc = s_apply(opts, index, NULL);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int
s_apply_environment(tap_options_t *opts)
{
    const char *mesh = getenv("ZMESH_MESH");
    if (mesh && *mesh) {
        opts->mesh = mesh;
        opts->mesh_from = "ZMESH_MESH";
    }
    const char *port = getenv("ZMESH_BEACON_PORT");
    if (port && *port) {
        long number;
        if (!s_parse_long(port, 1, 65535, &number))
            return tap_usage_error(
                opts->command,
                "ZMESH_BEACON_PORT: '%s' is not a port number (1-65535)", port);
        opts->beacon_port = (int)number;
    }
    return 0;
}

/*  What each command needs of its positional arguments and options
    together, once all are read. */
static int
s_check_combination(tap_options_t *opts)
{
    tap_command_t cmd = opts->command;
    bool needs_interface = opts->discovery == ZMESH_DISCOVERY_LAN ||
                           opts->discovery == ZMESH_DISCOVERY_MULTICAST;
    if (needs_interface && !opts->interface_name)
        return tap_usage_error(
            cmd, "--discovery %s needs --interface",
            opts->discovery == ZMESH_DISCOVERY_LAN ? "lan" : "multicast");
    if (opts->interface_name && opts->discovery == ZMESH_DISCOVERY_HOST)
        return tap_usage_error(cmd, "--interface applies to --discovery lan, "
                                    "multicast or none, not host");
    switch (cmd) {
    case TAP_CMD_SUB:
        if (opts->raw && opts->headers_only)
            return tap_usage_error(cmd, "--raw and --headers-only exclude "
                                        "each other");
        if (!opts->durable && opts->durable_option_given)
            return tap_usage_error(cmd, "--stream, --start, --ack-wait, "
                                        "--max-deliver and --max-ack-pending "
                                        "apply to --durable NAME only");
        if (opts->durable && opts->args_count != 1)
            return tap_usage_error(cmd,
                                   "--durable NAME takes one PATTERN, the "
                                   "consumer's filter (got %zu)",
                                   opts->args_count);
        // A durable consumer acknowledges what it prints; an event a
        // filter skipped would be neither shown nor acknowledged.
        if (opts->durable && opts->publishers_count > 0)
            return tap_usage_error(cmd, "--publisher does not apply to "
                                        "--durable (a consumer acknowledges "
                                        "every event it gets)");
        break;
    case TAP_CMD_PUB:
        if (opts->stdin_lines) {
            if (opts->args_count > 1)
                return tap_usage_error(cmd,
                                       "'pub --stdin' takes at most a TOPIC "
                                       "(the payloads come from stdin; got "
                                       "%zu arguments)",
                                       opts->args_count);
            if (opts->repeat > 1)
                return tap_usage_error(cmd, "--repeat does not apply to "
                                            "--stdin; repeat the lines");
        } else if (opts->args_count != 2)
            return tap_usage_error(cmd,
                                   "'pub' takes a TOPIC and a JSON payload "
                                   "(got %zu argument%s)",
                                   opts->args_count,
                                   opts->args_count == 1 ? "" : "s");
        if (opts->confirm_timeout_given && !opts->confirm)
            return tap_usage_error(cmd, "--confirm-timeout applies to "
                                        "--confirm only");
        break;
    case TAP_CMD_PEERS:
        if (opts->args_count != 0)
            return tap_usage_error(cmd, "'peers' takes no arguments (got '%s')",
                                   opts->args[0]);
        if (!opts->watch && (opts->count > 0 || opts->timeout_given))
            return tap_usage_error(cmd, "--count and --timeout apply to "
                                        "'peers --watch' only");
        if (opts->watch && opts->wait_given)
            return tap_usage_error(cmd, "--wait does not apply to "
                                        "'peers --watch'; use --timeout");
        break;
    case TAP_CMD_RECORD:
        if (opts->args_count < 1)
            return tap_usage_error(cmd, "'record' takes a FILE (or - for "
                                        "stdout) and optional PATTERNs");
        break;
    case TAP_CMD_PLAY:
        if (opts->args_count != 1)
            return tap_usage_error(cmd,
                                   "'play' takes one FILE (got %zu "
                                   "arguments)",
                                   opts->args_count);
        if (opts->fast && opts->speed != 1.0)
            return tap_usage_error(cmd, "--speed and --as-fast-as-possible "
                                        "exclude each other");
        break;
    case TAP_CMD_DOCTOR:
        if (opts->args_count != 0)
            return tap_usage_error(
                cmd, "'doctor' takes no arguments (got '%s')", opts->args[0]);
        break;
    case TAP_CMD_REQUEST:
        if (opts->args_count != (opts->stdin_lines ? 1u : 2u))
            return tap_usage_error(cmd,
                                   "'request' takes a TOPIC and a JSON "
                                   "payload, or --stdin and a TOPIC (got %zu "
                                   "argument%s)",
                                   opts->args_count,
                                   opts->args_count == 1 ? "" : "s");
        if (opts->timeout_ms < 1 || opts->timeout_ms > 600000)
            return tap_usage_error(cmd, "--timeout: a request waits more "
                                        "than 0 and at most 600 seconds");
        break;
    case TAP_CMD_SEND:
        if (opts->args_count != 3)
            return tap_usage_error(cmd,
                                   "'send' takes a PEER, a TOPIC and a JSON "
                                   "payload (got %zu argument%s)",
                                   opts->args_count,
                                   opts->args_count == 1 ? "" : "s");
        break;
    case TAP_CMD_READ:
    case TAP_CMD_STREAMS:
    case TAP_CMD_CONSUMERS:
        if (cmd == TAP_CMD_CONSUMERS && opts->args_count > 1)
            return tap_usage_error(cmd,
                                   "'consumers' takes at most a STREAM (got "
                                   "%zu arguments)",
                                   opts->args_count);
        if (cmd == TAP_CMD_READ && opts->args_count != 1)
            return tap_usage_error(cmd,
                                   "'read' takes one STREAM (got %zu "
                                   "arguments)",
                                   opts->args_count);
        if (cmd == TAP_CMD_STREAMS && opts->args_count != 0)
            return tap_usage_error(
                cmd, "'streams' takes no arguments (got '%s')", opts->args[0]);
        if (opts->from_seq_given && opts->since)
            return tap_usage_error(cmd, "--from-seq and --since exclude "
                                        "each other");
        if (opts->timeout_given &&
            (opts->timeout_ms < 1 || opts->timeout_ms > 600000))
            return tap_usage_error(cmd, "--timeout: more than 0 and at most "
                                        "600 seconds");
        break;
    case TAP_CMD_STATS: break;
    }
    return 0;
}

int
tap_options_parse(tap_options_t *opts, tap_command_t command, int argc,
                  char **argv)
{
    memset(opts, 0, sizeof *opts);
    opts->command = command;
    opts->discovery = ZMESH_DISCOVERY_HOST;
    bool waits_for_subscribers =
        command == TAP_CMD_PUB || command == TAP_CMD_PLAY;
    opts->timeout_ms = waits_for_subscribers ? 3000 : -1;
    if (command == TAP_CMD_REQUEST || command == TAP_CMD_SEND)
        opts->timeout_ms = 5000;
    opts->wait_ms = command == TAP_CMD_DOCTOR ? 3000 : 1500;
    opts->top = 10;
    opts->interval_ms = 1000;
    opts->repeat = 1;
    opts->speed = 1.0;
    opts->confirm_timeout_ms = 10000;
    opts->args = argv;
    int rc = s_apply_environment(opts);
    if (rc != 0)
        return rc;

    // Positional arguments are moved to the front of argv as they come;
    // they never overtake the index being read, so nothing is lost.
    bool options_ended = false;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        bool positional = options_ended || arg[0] != '-' || arg[1] == '\0' ||
                          isdigit((unsigned char)arg[1]);
        if (positional) {
            argv[opts->args_count++] = argv[i];
            continue;
        }
        if (strcmp(arg, "--") == 0)
            options_ended = true;
        else if (arg[1] == '-')
            rc = s_parse_long_option(opts, argc, argv, &i);
        else
            rc = s_parse_short_options(opts, arg);
        if (rc != 0)
            return rc;
    }
    if (opts->help || opts->version)
        return 0;
    return s_check_combination(opts);
}

void
tap_options_logging(const tap_options_t *opts)
{
    zmesh_log_level_t level = ZMESH_LOG_ERROR;
    if (opts->verbose == 1)
        level = ZMESH_LOG_INFO;
    else if (opts->verbose > 1)
        level = ZMESH_LOG_DEBUG;
    zmesh_log_set(zmesh_log_stderr, level, NULL);
}

const char *
tap_options_mesh(const tap_options_t *opts)
{
    return opts->mesh ? opts->mesh : "default";
}

int
tap_options_beacon_port(const tap_options_t *opts)
{
    return opts->beacon_port ? opts->beacon_port : ZMESH_DEFAULT_BEACON_PORT;
}

int
tap_options_check_patterns(const tap_options_t *opts, size_t first)
{
    for (size_t i = first; i < opts->args_count; i++) {
        int rc = zmesh_pattern_check(opts->args[i]);
        if (rc != 0)
            return tap_usage_error(opts->command, "'%s': %s", opts->args[i],
                                   zmesh_strerror(rc));
    }
    return 0;
}

int
tap_options_subscribe(const tap_options_t *opts, zmesh_agent_t *agent,
                      size_t first)
{
    static const char *all_topics = ">";
    size_t count = opts->args_count > first ? opts->args_count - first : 0;
    for (size_t i = 0; i < (count ? count : 1); i++) {
        const char *pattern = count ? opts->args[first + i] : all_topics;
        int rc = zmesh_agent_subscribe(agent, pattern);
        if (rc != 0) {
            tap_error("cannot subscribe to '%s': %s", pattern,
                      zmesh_strerror(rc));
            return TAP_EXIT_FAILURE;
        }
    }
    return 0;
}

/*  True when `filter` is at least 8 hex digits and starts `id`. */
static bool
s_id_prefix(const char *filter, const char *id)
{
    size_t n = strlen(filter);
    if (n < 8)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)filter[i]))
            return false;
    return strncmp(filter, id, n) == 0;
}

bool
tap_options_publisher_wanted(const tap_options_t *opts, const char *name,
                             const char *id)
{
    if (opts->publishers_count == 0)
        return true;
    for (size_t i = 0; i < opts->publishers_count; i++)
        if (strcmp(opts->publishers[i], name) == 0 ||
            s_id_prefix(opts->publishers[i], id))
            return true;
    return false;
}

int
tap_options_agent(const tap_options_t *opts, zmesh_agent_t **agent)
{
    zmesh_agent_t *self = NULL;
    int rc = zmesh_agent_new(&self, opts->name ? opts->name : TAP_AGENT_NAME);
    if (rc == ZMESH_EINVAL && opts->name)
        return tap_usage_error(opts->command,
                               "--name: '%s' is not a valid agent name (1-%d "
                               "bytes, no spaces or control characters)",
                               opts->name, ZMESH_NAME_MAX);
    if (rc != 0) {
        tap_error("cannot create an agent: %s", zmesh_strerror(rc));
        return TAP_EXIT_FAILURE;
    }
    int exit_code = TAP_EXIT_USAGE;
    if (opts->mesh && (rc = zmesh_agent_set_mesh(self, opts->mesh)) != 0) {
        tap_usage_error(opts->command, "%s: '%s' is not a valid mesh name (%s)",
                        opts->mesh_from, opts->mesh, zmesh_strerror(rc));
        goto failed;
    }
    rc = zmesh_agent_set_discovery(self, opts->discovery, opts->interface_name);
    if (rc != 0) {
        tap_usage_error(opts->command, "--interface: '%s' cannot be used (%s)",
                        opts->interface_name ? opts->interface_name : "",
                        zmesh_strerror(rc));
        goto failed;
    }
    if (opts->beacon_port &&
        (rc = zmesh_agent_set_beacon_port(self, opts->beacon_port)) != 0) {
        tap_usage_error(opts->command, "beacon port %d: %s", opts->beacon_port,
                        zmesh_strerror(rc));
        goto failed;
    }
    for (size_t i = 0; i < opts->seeds_count; i++) {
        rc = zmesh_agent_add_seed(self, opts->seeds[i]);
        if (rc != 0) {
            tap_usage_error(opts->command,
                            "--seed: '%s' is not a control endpoint like "
                            "tcp://HOST:PORT (%s)",
                            opts->seeds[i], zmesh_strerror(rc));
            goto failed;
        }
    }
    *agent = self;
    return 0;

failed:
    zmesh_agent_destroy(&self);
    return exit_code;
}

int
tap_options_start(const tap_options_t *opts, zmesh_agent_t *agent)
{
    int rc = zmesh_agent_start(agent);
    if (rc == 0)
        return 0;
    if (rc == ZMESH_EADDR)
        tap_error("cannot join mesh '%s': %s (check --interface and "
                  "--beacon-port)",
                  tap_options_mesh(opts), zmesh_strerror(rc));
    else
        tap_error("cannot join mesh '%s': %s", tap_options_mesh(opts),
                  zmesh_strerror(rc));
    return TAP_EXIT_FAILURE;
}

void
tap_options_help_common(void)
{
    fputs(
        "Options for every command:\n"
        "  --mesh NAME          the mesh to join (default: $ZMESH_MESH, else\n"
        "                       \"default\")\n"
        "  --discovery SCOPE    how to find peers: host (this host only, the\n"
        "                       default), lan, multicast or none (seeds only)\n"
        "  --interface IF       interface name or IPv4 address for lan and\n"
        "                       multicast (required) or none (optional)\n"
        "  --seed ENDPOINT      control endpoint of an agent to contact\n"
        "                       directly, tcp://HOST:PORT (repeatable)\n"
        "  --beacon-port PORT   UDP port of beacons (default:\n"
        "                       $ZMESH_BEACON_PORT, else 5677)\n"
        "  --name NAME          the tap's name in the mesh, for peers to "
        "send\n"
        "                       to (default mesh-tap)\n"
        "  -v, --verbose        log what the library does to stderr; -vv "
        "for\n"
        "                       debug detail\n"
        "  -h, --help           show help and exit\n"
        "      --version        show the library version and exit\n",
        stdout);
}
