/*  tap_options.h - mesh-tap's command line: the options every subcommand
    shares (mesh, discovery, seeds, beacon port, verbosity) and the ones
    only some take, parsed into one struct, plus turning them into a
    configured agent. Uses only the public zmesh.h. */
#ifndef TAP_OPTIONS_H_INCLUDED
#define TAP_OPTIONS_H_INCLUDED

#include "zmesh.h"

#include <stdbool.h>
#include <stddef.h>

/*  Exit codes of every subcommand (docs/mesh-tap.md#exit-codes). */
enum { TAP_EXIT_OK = 0, TAP_EXIT_FAILURE = 1, TAP_EXIT_USAGE = 2 };

/*  The agent name the tap joins a mesh with. */
#define TAP_AGENT_NAME "mesh-tap"

#define TAP_SEEDS_MAX 64
#define TAP_PUBLISHERS_MAX 64

typedef enum {
    TAP_CMD_SUB = 0,
    TAP_CMD_PUB = 1,
    TAP_CMD_PEERS = 2,
    TAP_CMD_STATS = 3,
    TAP_CMD_RECORD = 4,
    TAP_CMD_PLAY = 5,
    TAP_CMD_DOCTOR = 6,
    TAP_CMD_REQUEST = 7,
    TAP_CMD_SEND = 8,
    TAP_CMD_READ = 9,
    TAP_CMD_STREAMS = 10,
    TAP_CMD_CONSUMERS = 11
} tap_command_t;

#define TAP_COMMANDS_COUNT 12

typedef struct {
    tap_command_t command;
    bool help;    // -h/--help: print the command's help and exit 0
    bool version; // --version
    // Shared by every subcommand.
    const char *mesh;      // NULL: the library's default
    const char *mesh_from; // "--mesh" or "ZMESH_MESH", for messages
    const char *name;      // --name: the tap's agent name; NULL: mesh-tap
    zmesh_discovery_t discovery;
    const char *interface_name; // NULL unless --interface
    const char *seeds[TAP_SEEDS_MAX];
    size_t seeds_count;
    int beacon_port; // 0: $ZMESH_BEACON_PORT, else the library's default
    int verbose;     // how many -v
    // Subcommand options; each is at its default when the command does not
    // take it.
    bool json;      // sub, peers, stats, doctor, request: JSON lines
    long count;     // sub, record: messages; stats: intervals; peers --watch:
                    // joins and leaves; 0: never stop on a count
    int timeout_ms; // sub, stats, record, peers --watch: -1 none;
                    // pub, play: subscriber wait, default 3000;
                    // request, send: responder wait (and reply), 5000
    bool timeout_given;
    int min_peers; // pub, play
    int wait_ms;   // peers: default 1500; doctor: default 3000
    bool wait_given;
    // --publisher NAME|ID (sub, stats, record): only these publishers.
    const char *publishers[TAP_PUBLISHERS_MAX];
    size_t publishers_count;
    bool headers_only; // sub: no payload
    bool raw;          // sub: hex dump of the payload bytes
    int top;           // stats: rows per table, 0 all; default 10
    int interval_ms;   // stats: default 1000
    bool watch;        // peers: follow joins and leaves
    long repeat;       // pub: how many times; default 1
    double rate;       // pub: events per second; 0 as fast as possible
    bool stdin_lines;  // pub, request --stdin: one per line of stdin
    double speed;      // play: time factor; default 1
    bool fast;         // play --as-fast-as-possible
    const char *to;    // request --to PEER: name or id; NULL: a subscriber
    const char *relay; // read, streams --relay: name or id prefix
    bool from_seq_given;
    uint64_t from_seq; // read --from-seq
    const char *since; // read --since TIME (tap_read.c parses it)
    // pub --confirm: publish with confirms, wait for them, exit 1 unless
    // every event was stored by a relay.
    bool confirm;
    int confirm_timeout_ms; // --confirm-timeout; default 10000
    bool confirm_timeout_given;
    // sub --durable NAME: consume as a durable consumer (tap_durable.c).
    const char *durable;
    const char *stream;        // --stream; NULL: the relay picks
    zmesh_start_t start;       // --start, for a new consumer
    uint64_t start_sequence;   // --start seq:N
    int64_t start_time_us;     // --start time:TIME
    const char *start_text;    // --start as typed; NULL: not given
    int ack_wait_ms;           // --ack-wait; 0: the library's default
    int max_deliver;           // --max-deliver; 0: no limit
    int max_ack_pending;       // --max-ack-pending; 0: the default
    bool durable_option_given; // any of the four above, or --stream
    // Positional arguments (patterns; topic and JSON; file), pointing into
    // argv.
    char **args;
    size_t args_count;
} tap_options_t;

/*  The command's name as typed: "sub", "pub", "peers", ... */
const char *tap_command_name(tap_command_t command);

/*  Which command `word` names, or -1. */
int tap_command_find(const char *word);

/*  Parses argv[0..argc) (the arguments after the subcommand) for
    `command`, after filling in the defaults and the environment fallbacks
    ZMESH_MESH and ZMESH_BEACON_PORT. Options may come before, between or
    after positional arguments; "--" ends them, and an argument that starts
    with '-' and a digit (a negative JSON number) is positional. Returns 0,
    or TAP_EXIT_USAGE after printing what is wrong to stderr. Sets
    opts->help or opts->version instead of acting on them. */
int tap_options_parse(tap_options_t *opts, tap_command_t command, int argc,
                      char **argv);

/*  Installs the library's stderr log sink: errors only by default, info
    with -v, debug with -vv. */
void tap_options_logging(const tap_options_t *opts);

/*  Creates the tap's agent and applies the shared options (not started).
    On success *agent is the caller's. Returns 0, TAP_EXIT_USAGE when the
    library refuses an option's value, or TAP_EXIT_FAILURE; the reason is
    printed to stderr. */
int tap_options_agent(const tap_options_t *opts, zmesh_agent_t **agent);

/*  Starts the agent; prints the reason and returns TAP_EXIT_FAILURE if it
    cannot, else 0. */
int tap_options_start(const tap_options_t *opts, zmesh_agent_t *agent);

/*  The mesh name and beacon port in effect, for messages. */
const char *tap_options_mesh(const tap_options_t *opts);
int tap_options_beacon_port(const tap_options_t *opts);

/*  Checks every positional argument from `first` on as a subscription
    pattern; returns 0 or TAP_EXIT_USAGE after saying which is bad. */
int tap_options_check_patterns(const tap_options_t *opts, size_t first);

/*  Subscribes the agent to the positional patterns from `first` on, or to
    '>' when there are none. Returns 0 or TAP_EXIT_FAILURE. */
int tap_options_subscribe(const tap_options_t *opts, zmesh_agent_t *agent,
                          size_t first);

/*  True when an event of this publisher passes the --publisher filter
    (always, without one). A filter value matches the publisher's name
    exactly, or its id when it is a prefix of at least 8 hex digits. */
bool tap_options_publisher_wanted(const tap_options_t *opts, const char *name,
                                  const char *id);

/*  Prints "mesh-tap: " + the message + a newline to stderr. */
void tap_error(const char *format, ...) __attribute__((format(printf, 1, 2)));

/*  A usage error: the message as tap_error does, then a pointer to the
    command's help. Returns TAP_EXIT_USAGE. */
int tap_usage_error(tap_command_t command, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

/*  The subcommands, one file each: each runs with parsed options and
    returns an exit code. */
int tap_sub_run(const tap_options_t *opts);
int tap_pub_run(const tap_options_t *opts);
int tap_peers_run(const tap_options_t *opts);
int tap_stats_run(const tap_options_t *opts);
int tap_record_run(const tap_options_t *opts);
int tap_play_run(const tap_options_t *opts);
int tap_doctor_run(const tap_options_t *opts);
int tap_request_run(const tap_options_t *opts);
int tap_send_run(const tap_options_t *opts);
int tap_read_run(const tap_options_t *opts);
int tap_streams_run(const tap_options_t *opts);
int tap_consumers_run(const tap_options_t *opts);

/*  Help texts on stdout: the options every subcommand takes, and each
    subcommand's whole help. */
void tap_options_help_common(void);
void tap_help_sub(void);
void tap_help_pub(void);
void tap_help_peers(void);
void tap_help_stats(void);
void tap_help_record(void);
void tap_help_play(void);
void tap_help_doctor(void);
void tap_help_request(void);
void tap_help_send(void);
void tap_help_read(void);
void tap_help_streams(void);
void tap_help_consumers(void);

#endif
