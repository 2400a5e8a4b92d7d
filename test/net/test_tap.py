"""mesh-tap driven as a user would: the real binary against real agents
(zmesh-testnode) on loopback. Usage errors exit 2 before touching the
network; JSON output parses line by line; --count and --timeout give the
documented exit codes; pub reaches a subscriber exactly once, --repeat and
--stdin publish what they say; peers lists a testnode as it is and --watch
follows it; record then play reproduces topics and payload bytes; a corrupt
record file is refused naming the line; stats reports plausible rates and
the tap's own counters; and doctor finds a mesh-name mismatch and an
unreachable seed. request and send: test_tap_request.py."""

import base64
import json
import os
import re
import socket
import struct
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from meshtest import (TAP, Node, check, random_port, run,  # noqa: E402
                      run_tool, testnode, unique_mesh)


def tap(*args, timeout=30, input_text=None):
    return run_tool([TAP] + [str(a) for a in args], timeout=timeout,
                    input_text=input_text)


def json_lines(result):
    """Every line of stdout as JSON; fails on any line that does not
    parse."""
    objects = []
    for number, line in enumerate(result.stdout.splitlines(), 1):
        try:
            objects.append(json.loads(line))
        except ValueError as exc:
            raise AssertionError("line %d of %s is not JSON (%s): %r" %
                                 (number, " ".join(result.args[1:3]), exc,
                                  line))
    return objects


def messages(objects):
    return [o for o in objects if o.get("type") == "message"]


def testnode_payload(n, name):
    """The msgpack bytes zmesh-testnode publishes: {"n": n, "from": name}."""
    name = name.encode()
    return (b"\x82\xa1n\xce" + struct.pack(">I", n) + b"\xa4from\xd9" +
            bytes([len(name)]) + name)


def stats_fields():
    """The field names of zmesh_stats_t, read from the public header."""
    header = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                          "..", "..", "lib", "include", "zmesh.h")
    with open(header) as f:
        text = f.read()
    body = text[:text.index("} zmesh_stats_t;")]
    body = body[body.rindex("typedef struct {"):]
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
    return re.findall(r"uint64_t\s+(\w+);", body)


def is_msg(o):
    return o.get("event") == "message"


def net(mesh, port):
    return ["--mesh", mesh, "--beacon-port", port]


# --------------------------------------------------------------------------


def test_usage_errors_exit_2_without_network():
    # ZMESH_BEACON_PORT unset or not, nothing here may reach the network:
    # every case fails in option parsing or payload conversion.
    cases = [
        (["--bogus"], "unknown option"),
        (["peers", "--raw"], "does not apply"),
        (["sub", "--count", "0"], "--count"),
        (["sub", "--raw", "--headers-only"], "exclude"),
        (["stats", "--interval", "0.01"], "--interval"),
        (["stats", "--top", "-1"], "--top"),
        (["pub", "a.b"], "TOPIC and a JSON"),
        (["pub", "a.b", "{bad"], "not valid JSON"),
        (["pub", "greeting", "hello"], "double quotes"),
        (["pub", "a.*", "1"], "cannot publish"),
        (["pub", "--rate", "0", "a.b", "1"], "--rate"),
        (["pub", "--stdin", "--repeat", "2", "a.b"], "--repeat"),
        (["peers", "--count", "3"], "--watch"),
        (["record"], "FILE"),
        (["record", "f.rec", "bad..pattern"], "bad..pattern"),
        (["play"], "one FILE"),
        (["play", "--speed", "0", "f.rec"], "--speed"),
        (["play", "--speed", "2", "--as-fast-as-possible", "f.rec"],
         "exclude"),
        (["play", "-"], "stdin"),
        (["doctor", "extra"], "no arguments"),
        (["doctor", "--wait", "soon"], "--wait"),
        (["--discovery", "lan"], "--interface"),
        (["help", "nosuch"], "no help"),
    ]
    for args, needle in cases:
        result = tap(*args, timeout=10)
        check(result.returncode == 2,
              "mesh-tap %s: exit %d, expected 2; stderr: %s" %
              (" ".join(args), result.returncode, result.stderr))
        check(needle in result.stderr,
              "mesh-tap %s: %r not in stderr: %s" %
              (" ".join(args), needle, result.stderr))
        check(result.stdout == "", "usage error wrote to stdout")


def test_help_for_every_command():
    for command in ["sub", "pub", "peers", "stats", "record", "play",
                    "doctor", "request", "send"]:
        for args in ([command, "--help"], ["help", command]):
            result = tap(*args, timeout=10)
            check(result.returncode == 0, "%s: exit %d" %
                  (args, result.returncode))
            check("Usage: mesh-tap" in result.stdout and
                  "Examples:" in result.stdout and
                  "--mesh" in result.stdout,
                  "%s: help lacks usage, examples or the common options" %
                  args)
    result = tap("--help", timeout=10)
    check(result.returncode == 0 and "Exit status" in result.stdout,
          "main help")
    result = tap("--version", timeout=10)
    check(result.returncode == 0 and result.stdout.startswith("mesh-tap "),
          "--version: %r" % result.stdout)


def test_sub_json_pipe_filters_and_exit_codes():
    mesh, port = unique_mesh("tapsub"), random_port()
    alpha = testnode("alpha", mesh, port, "--pub", "tick.alpha", "--count",
                     2000, "--every", 10, run_ms=20000)
    bravo = testnode("bravo", mesh, port, "--pub", "tick.bravo", "--count",
                     2000, "--every", 10, run_ms=20000)
    alpha.started()
    bravo_id = bravo.started()["id"]

    # --count reached: exit 0, every line JSON, the fields all there.
    result = tap("--json", "--count", 5, "--timeout", 10, "tick.alpha",
                 *net(mesh, port))
    check(result.returncode == 0, "count 5: exit %d: %s" %
          (result.returncode, result.stderr))
    got = messages(json_lines(result))
    check(len(got) == 5, "expected 5 messages, got %d" % len(got))
    for o in got:
        check(o["topic"] == "tick.alpha" and o["publisher"] == "alpha",
              "wrong event %r" % o)
        check(o["payload"] == {"n": o["seq"], "from": "alpha"},
              "payload %r" % o["payload"])
        check(len(o["publisher_id"]) == 32 and isinstance(o["ts"], int) and
              isinstance(o["recv_ts"], int) and
              o["size"] == len(testnode_payload(1, "alpha")),
              "meta fields %r" % o)
    seqs = [o["seq"] for o in got]
    check(seqs == sorted(seqs), "out of order: %s" % seqs)

    # --count not reached by --timeout: exit 1, and still valid JSON.
    start = time.monotonic()
    result = tap("--json", "--count", 100000, "--timeout", 1, "tick.alpha",
                 *net(mesh, port))
    check(result.returncode == 1, "count not reached: exit %d" %
          result.returncode)
    check("timed out" in result.stderr, "no timeout message")
    check(time.monotonic() - start < 5, "--timeout 1 took too long")
    json_lines(result)

    # --timeout alone is how a live view ends: exit 0.
    result = tap("--json", "--timeout", 0.5, "tick.*", *net(mesh, port))
    check(result.returncode == 0, "timeout alone: exit %d" %
          result.returncode)
    json_lines(result)

    # --publisher by name: only alpha's events, though both match.
    result = tap("--json", "--count", 20, "--timeout", 10, "--publisher",
                 "alpha", "tick.*", *net(mesh, port))
    got = messages(json_lines(result))
    check(result.returncode == 0 and len(got) == 20, "publisher filter: %d" %
          len(got))
    check({o["publisher"] for o in got} == {"alpha"},
          "other publishers passed the filter")
    # ... and by id prefix.
    result = tap("--json", "--count", 5, "--timeout", 10, "--publisher",
                 bravo_id[:8], "tick.*", *net(mesh, port))
    got = messages(json_lines(result))
    check(result.returncode == 0 and
          {o["publisher_id"] for o in got} == {bravo_id},
          "id prefix filter: %r" % {o["publisher"] for o in got})

    # --headers-only: no payload; --raw: the exact bytes in hex.
    result = tap("--json", "--count", 2, "--timeout", 10, "--headers-only",
                 "tick.alpha", *net(mesh, port))
    got = messages(json_lines(result))
    check(got and all("payload" not in o and o["size"] > 0 for o in got),
          "headers-only: %r" % got)
    result = tap("--json", "--count", 2, "--timeout", 10, "--raw",
                 "tick.alpha", *net(mesh, port))
    for o in messages(json_lines(result)):
        check(bytes.fromhex(o["payload_hex"]) ==
              testnode_payload(o["seq"], "alpha"), "raw bytes %r" % o)
    result = tap("--count", 1, "--timeout", 10, "--raw", "tick.alpha",
                 *net(mesh, port))
    check(result.returncode == 0 and "0000  82 a1 6e ce" in result.stdout and
          "|..n." in result.stdout, "text hex dump:\n" + result.stdout)
    check("\x1b" not in result.stdout, "colour in a pipe")


def test_pub_exactly_once_repeat_and_stdin():
    mesh, port = unique_mesh("tappub"), random_port()
    sub = testnode("listener", mesh, port, "--sub", "cmd.>", run_ms=30000)
    sub.started()

    def on(topic):
        return sub.seen(lambda o: is_msg(o) and o["topic"] == topic)

    result = tap("pub", "--min-peers", 1, "--timeout", 10, "cmd.once",
                 '{"x":[1,2,"three"],"y":null}', *net(mesh, port))
    check(result.returncode == 0, "pub: exit %d: %s" %
          (result.returncode, result.stderr))
    sub.wait_for(lambda o: is_msg(o) and o["topic"] == "cmd.once", 5,
                 "the published event")

    # Several events, paced by --rate.
    start = time.monotonic()
    result = tap("pub", "--min-peers", 1, "--timeout", 10, "--repeat", 5,
                 "--rate", 20, "cmd.rep", 7, *net(mesh, port))
    check(result.returncode == 0, "pub --repeat: exit %d: %s" %
          (result.returncode, result.stderr))
    check(time.monotonic() - start >= 0.2, "--rate 20 did not pace 5 events")
    sub.wait_count(lambda o: is_msg(o) and o["topic"] == "cmd.rep", 5, 5,
                   "repeated events")

    # stdin with a TOPIC: one JSON value per line, blank lines skipped; a
    # bad line stops everything after it, exit 2 naming the line.
    result = tap("pub", "--stdin", "--min-peers", 1, "--timeout", 10,
                 "cmd.lines", *net(mesh, port),
                 input_text='1\n\n"two"\n{bad\n4\n')
    check(result.returncode == 2, "bad stdin line: exit %d" %
          result.returncode)
    check("line 4" in result.stderr, "line not named: " + result.stderr)
    sub.wait_count(lambda o: is_msg(o) and o["topic"] == "cmd.lines", 2, 5,
                   "stdin events before the bad line")

    # stdin without a TOPIC: objects; lines of another "type" are skipped,
    # as in the output of 'mesh-tap sub --json'.
    lines = ['{"topic":"cmd.obj.a","payload":{"k":1}}',
             '{"type":"peer_joined","peer":"x","peer_id":"y"}',
             '{"type":"message","topic":"cmd.obj.b","payload":[true],'
             '"seq":9}']
    result = tap("pub", "--stdin", "--min-peers", 1, "--timeout", 10,
                 *net(mesh, port), input_text="\n".join(lines) + "\n")
    check(result.returncode == 0, "object stdin: exit %d: %s" %
          (result.returncode, result.stderr))
    sub.wait_for(lambda o: is_msg(o) and o["topic"] == "cmd.obj.b", 5,
                 "second object line")

    # Nobody wants the topic and --min-peers 1: exit 1, nothing sent.
    result = tap("pub", "--min-peers", 1, "--timeout", 0.5, "nobody.wants",
                 1, *net(mesh, port))
    check(result.returncode == 1 and "fewer than 1" in result.stderr,
          "min-peers not met: exit %d: %s" % (result.returncode,
                                              result.stderr))

    # Let anything duplicated or late arrive before counting.
    time.sleep(0.5)
    once = on("cmd.once")
    check(len(once) == 1, "cmd.once arrived %d times" % len(once))
    check(once[0]["payload"] == {"x": [1, 2, "three"], "y": None} and
          once[0]["publisher"] == "mesh-tap", "payload %r" % once[0])
    rep = on("cmd.rep")
    check([o["seq"] for o in rep] == [1, 2, 3, 4, 5] and
          all(o["payload"] == 7 for o in rep), "repeat: %r" % rep)
    check([o["payload"] for o in on("cmd.lines")] == [1, "two"],
          "stdin lines: %r" % on("cmd.lines"))
    check([o["payload"] for o in on("cmd.obj.a")] == [{"k": 1}] and
          [o["payload"] for o in on("cmd.obj.b")] == [[True]],
          "object lines")
    sub.stop()


def test_peers_json_and_watch():
    mesh, port = unique_mesh("tappeers"), random_port()
    node = testnode("inventory", mesh, port, "--sub", "orders.*",
                    "--advertise", "stock.>", "--header", "region=eu")
    pid = node.started()["pid"]
    version = tap("--version").stdout.split()[1]

    result = tap("peers", "--json", "--wait", 1, *net(mesh, port))
    check(result.returncode == 0, "peers: exit %d" % result.returncode)
    peers = json_lines(result)
    check(len(peers) == 1, "expected one peer, got %r" % peers)
    peer = peers[0]
    check(peer["type"] == "peer" and peer["name"] == "inventory",
          "peer %r" % peer)
    check(peer["pid"] == pid, "pid %r, expected %d" % (peer["pid"], pid))
    check(peer["host"] == socket.gethostname(), "host %r" % peer["host"])
    check(peer["version"] == version, "version %r" % peer["version"])
    check(peer["publishes"] == ["stock.>"] and peer["wants"] == ["orders.*"],
          "topics %r %r" % (peer["publishes"], peer["wants"]))
    check(peer["headers"] == {"region": "eu"}, "headers %r" %
          peer["headers"])
    check(peer["endpoint"].startswith("tcp://127.0.0.1:") and
          peer["data_endpoint"].startswith("tcp://127.0.0.1:"),
          "endpoints %r" % peer)
    check(isinstance(peer["connected"], bool) and
          0 <= peer["last_seen_ms"] < 5000, "liveness %r" % peer)
    # Its counters, asked over STATS: the agent group has every stats
    # field, and the testnode is in zmesh calls, so it answers.
    counters = peer["counters"]
    check(counters is not None and "events_received" in counters["agent"]
          and "repair_requests" in counters["agent"] and
          isinstance(counters["topics"], dict), "counters %r" % counters)
    check(peer["serves"] == [], "serves %r" % peer["serves"])

    # --watch: the join of a new agent and its leave, then exit by --count.
    watch_mesh = unique_mesh("tapwatch")
    watcher = Node([TAP, "peers", "--watch", "--json", "--count", "2",
                    "--timeout", "15"] + net(watch_mesh, str(port)),
                   "watcher")
    newcomer = testnode("newcomer", watch_mesh, port)
    newcomer.started()
    joined = watcher.wait_for(lambda o: o.get("type") == "peer_joined", 10,
                              "the join")
    check(joined["peer"] == "newcomer", "joined %r" % joined)
    newcomer.stop()
    left = watcher.wait_for(lambda o: o.get("type") == "peer_left", 10,
                            "the leave")
    check(left["peer"] == "newcomer" and left["reason"] == "bye",
          "left %r" % left)
    watcher.proc.wait(10)
    check(watcher.proc.returncode == 0, "watch: exit %d" %
          watcher.proc.returncode)


def test_record_then_play_reproduces_events():
    mesh, port = unique_mesh("taprec"), random_port()
    pubs = [testnode(name, mesh, port, "--pub", "rec." + name, "--count",
                     1000, "--every", 20, run_ms=20000)
            for name in ("alpha", "bravo")]
    for node in pubs:
        node.started()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "events.rec")
        result = tap("record", path, "rec.>", "--count", 20, "--timeout", 10,
                     *net(mesh, port))
        check(result.returncode == 0, "record: exit %d: %s" %
              (result.returncode, result.stderr))
        with open(path) as f:
            lines = [json.loads(line) for line in f]
        check(lines[0]["format"] == "mesh-tap-record" and
              lines[0]["version"] == 1 and lines[0]["mesh"] == mesh,
              "header %r" % lines[0])
        events = lines[1:]
        check(len(events) == 20, "%d events recorded" % len(events))
        for e in events:
            raw = base64.b64decode(e["payload"], validate=True)
            check(raw == testnode_payload(e["seq"], e["publisher"]),
                  "payload bytes of %r" % e)
            check(e["topic"] == "rec." + e["publisher"] and
                  len(e["publisher_id"]) == 32 and
                  e["recv_ts"] >= e["ts"] - 1000000, "fields %r" % e)
        for node in pubs:
            node.stop()

        # Play into another mesh, to a fresh subscriber.
        play_mesh = unique_mesh("tapplay")
        sub = testnode("replayed", play_mesh, port, "--sub", "rec.>")
        sub.started()
        span = (events[-1]["recv_ts"] - events[0]["recv_ts"]) / 1e6
        start = time.monotonic()
        result = tap("play", path, "--min-peers", 1, "--timeout", 10,
                     *net(play_mesh, port))
        took = time.monotonic() - start
        check(result.returncode == 0, "play: exit %d: %s" %
              (result.returncode, result.stderr))
        check(took >= span * 0.8, "play took %.2fs for a %.2fs recording" %
              (took, span))
        got = sub.wait_count(is_msg, 20, 10, "replayed events")
        time.sleep(0.3)
        got = sub.seen(is_msg)
        check([(o["topic"], o["payload"]) for o in got] ==
              [(e["topic"], {"n": e["seq"], "from": e["publisher"]})
               for e in events],
              "replayed events differ from the recording")
        check(all(o["publisher"] == "mesh-tap" for o in got),
              "replayed publisher")

        # As fast as possible: the same again, quickly.
        result = tap("play", path, "--as-fast-as-possible", "--min-peers", 1,
                     "--timeout", 10, *net(play_mesh, port))
        check(result.returncode == 0, "play fast: exit %d" %
              result.returncode)
        sub.wait_count(is_msg, 40, 10, "fast replay")


def test_corrupt_record_files_are_refused_by_line():
    mesh, port = unique_mesh("tapbad"), random_port()
    good = ('{"topic":"a.b","publisher":"p","publisher_id":"%s","seq":1,'
            '"ts":1,"recv_ts":1000,"payload":"%s"}' %
            ("0" * 32, base64.b64encode(testnode_payload(1, "p")).decode()))
    header = '{"format":"mesh-tap-record","version":1,"mesh":"m"}'
    cases = {
        "garbage line": ([header, good, "not json at all", good], 3, None),
        "truncated": ([header, good, good[:40]], 3, "truncated"),
        "bad base64": ([header, good.replace('"payload":"', '"payload":"*')],
                       2, "base64"),
        "not msgpack": ([header, good.replace(
            base64.b64encode(testnode_payload(1, "p")).decode(), "wQ==")],
            2, "msgpack"),
        "newer version": ([header.replace('"version":1', '"version":99'),
                           good], 1, "version"),
        "no recv_ts": ([header, good.replace('"recv_ts"', '"recv"')], 2,
                       "recv_ts"),
        "array": ([header, "[1,2,3]"], 2, "object"),
        "bad topic": ([header, good.replace('"topic":"a.b"',
                                            '"topic":"a..b"')], 2, "topic"),
        "late header": ([good, header], 2, "header"),
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name, (lines, line_no, word) in cases.items():
            path = os.path.join(tmp, name.replace(" ", "_") + ".rec")
            text = "\n".join(lines)
            if name != "truncated":
                text += "\n"
            with open(path, "w") as f:
                f.write(text)
            result = tap("play", path, *net(mesh, port), timeout=10)
            check(result.returncode == 1, "%s: exit %d: %s" %
                  (name, result.returncode, result.stderr))
            check("line %d" % line_no in result.stderr,
                  "%s: line %d not named: %s" % (name, line_no,
                                                 result.stderr))
            check(word is None or word in result.stderr,
                  "%s: %r not in %s" % (name, word, result.stderr))
            check("nothing was published" in result.stderr,
                  "%s: does not say nothing was published" % name)
        # Binary junk: an error, never a crash.
        path = os.path.join(tmp, "junk.rec")
        with open(path, "wb") as f:
            f.write(bytes(range(256)) * 8)
        result = tap("play", path, *net(mesh, port), timeout=10)
        check(result.returncode == 1 and "line 1" in result.stderr,
              "binary junk: exit %d: %s" % (result.returncode,
                                            result.stderr))
        # A file that is not there, and one with no events.
        result = tap("play", os.path.join(tmp, "missing.rec"),
                     *net(mesh, port), timeout=10)
        check(result.returncode == 1 and "cannot open" in result.stderr,
              "missing file: %d %s" % (result.returncode, result.stderr))
        path = os.path.join(tmp, "empty.rec")
        open(path, "w").close()
        result = tap("play", path, *net(mesh, port), timeout=10)
        check(result.returncode == 0 and "no events" in result.stderr,
              "empty file: %d %s" % (result.returncode, result.stderr))


def test_stats_ndjson_rates():
    mesh, port = unique_mesh("tapstats"), random_port()
    fast = testnode("fast", mesh, port, "--pub", "st.fast", "--count", 1000,
                    "--every", 20, run_ms=20000)
    slow = testnode("slow", mesh, port, "--pub", "st.slow", "--count", 1000,
                    "--every", 100, run_ms=20000)
    fast.started()
    slow.started()
    result = tap("stats", "--count", 4, "--interval", 0.5, "--top", 1,
                 "st.>", *net(mesh, port))
    check(result.returncode == 0, "stats: exit %d: %s" %
          (result.returncode, result.stderr))
    reports = json_lines(result)
    check(len(reports) == 4 and all(r["type"] == "stats" for r in reports),
          "expected 4 stats lines, got %d" % len(reports))
    check(all(abs(r["interval_s"] - 0.5) < 0.2 for r in reports),
          "intervals %r" % [r["interval_s"] for r in reports])
    totals = [r["total_events"] for r in reports]
    check(totals == sorted(totals), "totals go back: %s" % totals)
    size = len(testnode_payload(1, "fast"))
    for r in reports[2:]:
        # 50/s + 10/s published; allow for scheduling jitter.
        check(35 <= r["events_per_s"] <= 85, "total rate %r" %
              r["events_per_s"])
        check(r["topics_count"] == 2 and len(r["topics"]) == 1,
              "--top 1: %r" % r["topics"])
        top = r["topics"][0]
        check(top["topic"] == "st.fast" and 30 <= top["events_per_s"] <= 70,
              "top topic %r" % top)
        check(abs(top["bytes_per_s"] - top["events_per_s"] * size) < 1,
              "byte rate %r vs %d bytes an event" % (top, size))
        check(r["publishers"][0]["publisher"] == "fast", "top publisher %r" %
              r["publishers"])
        # The tap's own counters: every zmesh_stats_t field (and more),
        # and what it received is what the report counted.
        agent = r["agent"]
        missing = [f for f in stats_fields() if f not in agent]
        check(not missing, "agent counters lack %s: %r" % (missing, agent))
        check(agent["events_received"] == r["total_events"] and
              agent["gaps"] == 0 and agent["peers_joined"] >= 2,
              "agent counters %r vs %d events" % (agent, r["total_events"]))
    result = tap("stats", "--count", 10, "--timeout", 0.6, "st.>",
                 *net(mesh, port))
    check(result.returncode == 1, "stats count not reached: exit %d" %
          result.returncode)
    json_lines(result)


def test_doctor_mesh_mismatch_and_unreachable_seed():
    port = random_port()
    mesh = unique_mesh("tapdoc")
    node = testnode("worker", mesh, port, "--pub", "doc.tick", "--count",
                    1000, "--every", 50, run_ms=20000)
    node.started()

    # Another mesh name on the same beacon port: the beacons are foreign.
    result = tap("doctor", "--json", "--wait", 1, *net(mesh + "-typo", port))
    check(result.returncode == 1, "mismatch: exit %d: %s" %
          (result.returncode, result.stderr))
    lines = json_lines(result)
    codes = [o["code"] for o in lines if o["type"] == "finding"]
    check("foreign_beacons" in codes and "no_peers" in codes,
          "findings %r" % codes)
    check(lines[-1] == {"type": "summary", "findings": len(codes)},
          "summary %r" % lines[-1])
    foreign = [o for o in lines if o.get("code") == "foreign_beacons"][0]
    check("port %d" % port in foreign["message"] and
          "--mesh" in foreign["message"], "message %r" % foreign["message"])

    # The right mesh: the peer is reachable, its clock agrees: exit 0.
    result = tap("doctor", "--json", "--wait", 1.5, *net(mesh, port))
    lines = json_lines(result)
    check(result.returncode == 0, "healthy: exit %d: %r" %
          (result.returncode, [o for o in lines if o["type"] == "finding"]))
    infos = [o["code"] for o in lines if o["type"] == "info"]
    check("peer" in infos and "clocks" in infos, "infos %r" % infos)

    # No beacons, one seed where nothing listens; text output this time.
    result = tap("doctor", "--discovery", "none", "--seed",
                 "tcp://127.0.0.1:1", "--wait", 0.5, "--mesh", mesh)
    check(result.returncode == 1, "seed: exit %d" % result.returncode)
    check("seed tcp://127.0.0.1:1 cannot be reached" in result.stdout and
          "finding" in result.stdout, "seed finding:\n" + result.stdout)
    check("\x1b" not in result.stdout, "colour in a pipe")


if __name__ == "__main__":
    run([test_usage_errors_exit_2_without_network,
         test_help_for_every_command,
         test_sub_json_pipe_filters_and_exit_codes,
         test_pub_exactly_once_repeat_and_stdin,
         test_peers_json_and_watch,
         test_record_then_play_reproduces_events,
         test_corrupt_record_files_are_refused_by_line,
         test_stats_ndjson_rates,
         test_doctor_mesh_mismatch_and_unreachable_seed])
