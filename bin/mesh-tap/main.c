/*  main.c - mesh-tap, the operator's window on a zmesh mesh: picks the
    subcommand (sub, the default; pub; peers; stats; record; play; doctor;
    request; send; read; streams; consumers; help), has the options parsed,
    installs the log sink and runs the subcommand. Everything it does goes
    through the public zmesh.h, so the library can do all that the tool
    shows. Exit codes: 0 ok, 1 runtime failure, 2 usage.
*/
#include "tap_options.h"

#include "zmesh.h"

#include <stdio.h>
#include <string.h>

static void
s_help_main(void)
{
    fputs("Usage: mesh-tap [COMMAND] [OPTIONS] [ARGS...]\n"
          "\n"
          "The operator's window on a zmesh mesh: watch its events, measure\n"
          "them, record and replay them, publish some, list the peers, and\n"
          "find out why a peer is not seen.\n"
          "\n"
          "Commands:\n"
          "  sub [PATTERN...]     print events on matching topics as they\n"
          "                       arrive, and peers joining and leaving (the\n"
          "                       default command; default pattern '>')\n"
          "  sub --durable NAME PATTERN\n"
          "                       consume as durable consumer NAME: what was\n"
          "                       stored while it was away, then live events,\n"
          "                       each acknowledged once printed (also\n"
          "                       'mesh-tap --durable NAME PATTERN')\n"
          "  pub TOPIC JSON       publish an event with a JSON payload (or "
          "many:\n"
          "                       --repeat, --rate, --stdin; --confirm: wait\n"
          "                       until a relay has stored each)\n"
          "  peers                list the peers of the mesh (--watch: "
          "follow\n"
          "                       joins and leaves)\n"
          "  stats [PATTERN...]   events/s and bytes/s per topic and per\n"
          "                       publisher, refreshed every second\n"
          "  record FILE [PATTERN...]\n"
          "                       write every event to FILE, byte-exact\n"
          "  play FILE            publish a recording again, with its timing\n"
          "  doctor               check discovery and connectivity and say "
          "what\n"
          "                       to fix\n"
          "  request TOPIC JSON   ask an agent serving TOPIC (or --to PEER)\n"
          "                       and print its reply (many: --stdin)\n"
          "  send PEER TOPIC JSON\n"
          "                       send one direct message to a peer\n"
          "  read STREAM          print what a mesh-relay stored of STREAM\n"
          "                       (--from-seq N, --since TIME)\n"
          "  streams              list the streams the relays store\n"
          "  consumers [STREAM]   list the relays' durable consumers: "
          "position,\n"
          "                       lag, acknowledgements pending\n"
          "  help [COMMAND]       this text, or a command's\n"
          "\n",
          stdout);
    tap_options_help_common();
    fputs("\n"
          "Environment: ZMESH_MESH and ZMESH_BEACON_PORT stand in for --mesh\n"
          "and --beacon-port when those are not given. Colour is used only\n"
          "on a terminal, and never when NO_COLOR is set.\n"
          "\n"
          "Examples:\n"
          "  mesh-tap                                   every event, until "
          "Ctrl-C\n"
          "  mesh-tap --mesh prod --json 'orders.>'     orders as JSON lines\n"
          "  mesh-tap pub orders.created '{\"id\":42}'    publish one event\n"
          "  mesh-tap peers                             who is in the mesh\n"
          "  mesh-tap stats --top 5                     the busiest topics\n"
          "  mesh-tap record orders.rec 'orders.>'      record until Ctrl-C\n"
          "  mesh-tap play --speed 2 orders.rec         replay, twice as "
          "fast\n"
          "  mesh-tap doctor                            why is a peer "
          "missing?\n"
          "  mesh-tap request svc.echo '{\"ping\":1}'     ask, print the "
          "reply\n"
          "  mesh-tap send billing ops.note '\"hi\"'      one direct "
          "message\n"
          "  mesh-tap read orders --since 15m           stored orders of the\n"
          "                                             last 15 minutes\n"
          "  mesh-tap pub --confirm orders.paid '{\"id\":7}'\n"
          "                                             publish, exit 0 once "
          "stored\n"
          "  mesh-tap --durable billing 'orders.>'      consume as "
          "'billing'\n"
          "  mesh-tap consumers orders                  its position and "
          "lag\n"
          "\n"
          "Exit status: 0 ok; 1 runtime failure (cannot join, timeout, too\n"
          "few subscribers, bad record file, doctor findings, no reply, no\n"
          "such peer, an event not confirmed); 2 usage (bad option, topic,\n"
          "pattern or JSON).\n"
          "Run 'mesh-tap COMMAND --help' for a command's options; 'man\n"
          "mesh-tap' for the manual.\n",
          stdout);
}

static void
s_help(tap_command_t command)
{
    switch (command) {
    case TAP_CMD_SUB: tap_help_sub(); break;
    case TAP_CMD_PUB: tap_help_pub(); break;
    case TAP_CMD_PEERS: tap_help_peers(); break;
    case TAP_CMD_STATS: tap_help_stats(); break;
    case TAP_CMD_RECORD: tap_help_record(); break;
    case TAP_CMD_PLAY: tap_help_play(); break;
    case TAP_CMD_DOCTOR: tap_help_doctor(); break;
    case TAP_CMD_REQUEST: tap_help_request(); break;
    case TAP_CMD_SEND: tap_help_send(); break;
    case TAP_CMD_READ: tap_help_read(); break;
    case TAP_CMD_STREAMS: tap_help_streams(); break;
    case TAP_CMD_CONSUMERS: tap_help_consumers(); break;
    }
}

static int
s_run(const tap_options_t *opts)
{
    switch (opts->command) {
    case TAP_CMD_PUB: return tap_pub_run(opts);
    case TAP_CMD_PEERS: return tap_peers_run(opts);
    case TAP_CMD_STATS: return tap_stats_run(opts);
    case TAP_CMD_RECORD: return tap_record_run(opts);
    case TAP_CMD_PLAY: return tap_play_run(opts);
    case TAP_CMD_DOCTOR: return tap_doctor_run(opts);
    case TAP_CMD_REQUEST: return tap_request_run(opts);
    case TAP_CMD_SEND: return tap_send_run(opts);
    case TAP_CMD_READ: return tap_read_run(opts);
    case TAP_CMD_STREAMS: return tap_streams_run(opts);
    case TAP_CMD_CONSUMERS: return tap_consumers_run(opts);
    case TAP_CMD_SUB: break;
    }
    return tap_sub_run(opts);
}

int
main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "help") == 0) {
        if (argc == 2) {
            s_help_main();
            return TAP_EXIT_OK;
        }
        int command = tap_command_find(argv[2]);
        if (command < 0 || argc > 3) {
            fprintf(stderr,
                    "mesh-tap: no help for '%s'; commands are sub, pub, "
                    "peers, stats, record, play, doctor, request, send, "
                    "read, streams and consumers\n",
                    argv[2]);
            return TAP_EXIT_USAGE;
        }
        s_help((tap_command_t)command);
        return TAP_EXIT_OK;
    }
    // "mesh-tap PATTERN..." and "mesh-tap --json" mean "mesh-tap sub ...".
    int named = argc >= 2 ? tap_command_find(argv[1]) : -1;
    tap_command_t command = named < 0 ? TAP_CMD_SUB : (tap_command_t)named;
    int first = named < 0 ? 1 : 2;

    tap_options_t opts;
    int rc = tap_options_parse(&opts, command, argc - first, argv + first);
    if (rc != 0)
        return rc;
    if (opts.help) {
        if (named < 0)
            s_help_main();
        else
            s_help(command);
        return TAP_EXIT_OK;
    }
    if (opts.version) {
        printf("mesh-tap %s (protocol %d)\n", zmesh_version(),
               ZMESH_PROTOCOL_VERSION);
        return TAP_EXIT_OK;
    }
    tap_options_logging(&opts);
    return s_run(&opts);
}
