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

typedef enum {
    TAP_CMD_SUB = 0,
    TAP_CMD_PUB = 1,
    TAP_CMD_PEERS = 2
} tap_command_t;

typedef struct {
    tap_command_t command;
    bool help;    // -h/--help: print the command's help and exit 0
    bool version; // --version
    // Shared by every subcommand.
    const char *mesh;      // NULL: the library's default
    const char *mesh_from; // "--mesh" or "ZMESH_MESH", for messages
    zmesh_discovery_t discovery;
    const char *interface_name; // NULL unless --interface
    const char *seeds[TAP_SEEDS_MAX];
    size_t seeds_count;
    int beacon_port; // 0: $ZMESH_BEACON_PORT, else the library's default
    int verbose;     // how many -v
    // Subcommand options; each is at its default when the command does not
    // take it.
    bool json;      // sub, peers: JSON lines
    long count;     // sub: stop after this many messages; 0: never
    int timeout_ms; // sub: -1 none; pub: default 3000
    int min_peers;  // pub
    int wait_ms;    // peers: default 1500
    // Positional arguments (patterns; topic and JSON), pointing into argv.
    char **args;
    size_t args_count;
} tap_options_t;

/*  The command's name as typed: "sub", "pub" or "peers". */
const char *tap_command_name(tap_command_t command);

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

/*  The mesh name in effect, for messages. */
const char *tap_options_mesh(const tap_options_t *opts);

/*  Prints "mesh-tap: " + the message + a newline to stderr. */
void tap_error(const char *format, ...) __attribute__((format(printf, 1, 2)));

/*  A usage error: the message as tap_error does, then a pointer to the
    command's help. Returns TAP_EXIT_USAGE. */
int tap_usage_error(tap_command_t command, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

/*  The subcommands (tap_sub.c, tap_pub.c, tap_peers.c): each runs with
    parsed options and returns an exit code. */
int tap_sub_run(const tap_options_t *opts);
int tap_pub_run(const tap_options_t *opts);
int tap_peers_run(const tap_options_t *opts);

/*  Help texts on stdout: the options every subcommand takes, and each
    subcommand's whole help. */
void tap_options_help_common(void);
void tap_help_sub(void);
void tap_help_pub(void);
void tap_help_peers(void);

#endif
