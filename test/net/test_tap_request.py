"""mesh-tap's point-to-point commands and what reliable delivery shows,
driven as a user would: the real binary against real agents
(zmesh-testnode) on loopback. request prints the reply of a responder
(text, --json checked with python's json, --stdin in line order, --to a
named peer) and says why there is none, exit 1: nobody subscribed, no
reply in time, the responder left; send reaches a testnode, and names an
unknown peer; the live view shows direct messages and requests sent to
the tap (found by --name); an overrun tap marks repaired events, in JSON
and as a tag on text lines; stats reports the tap's own counters. Bad
arguments exit 2 before touching the network."""

import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from meshtest import (TAP, Node, _procs, check, fail, random_port,  # noqa
                      run, run_tool, testnode, unique_mesh)

BURST = 20000
TINY_QUEUES = {"ZSYS_SNDHWM": "50", "ZSYS_RCVHWM": "50"}


def tap(*args, timeout=30, input_text=None):
    return run_tool([TAP] + [str(a) for a in args], timeout=timeout,
                    input_text=input_text)


def net(mesh, port):
    return ["--mesh", mesh, "--beacon-port", str(port)]


def json_lines(text, what):
    objects = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            objects.append(json.loads(line))
        except ValueError as exc:
            fail("%s: line %d is not JSON (%s): %r" % (what, number, exc,
                                                       line))
    return objects


def is_(kind):
    return lambda o: o.get("event") == kind


def one_line(stderr):
    """The message of a failure: exactly one line on stderr."""
    lines = [line for line in stderr.splitlines() if line]
    check(len(lines) == 1, "expected one line on stderr, got %r" % lines)
    return lines[0]


# --------------------------------------------------------------------------


def test_usage_errors_exit_2_without_network():
    cases = [
        (["request"], "TOPIC and a JSON"),
        (["request", "svc.a"], "TOPIC and a JSON"),
        (["request", "--stdin", "svc.a", "1"], "--stdin and a TOPIC"),
        (["request", "svc.a", "{bad"], "not valid JSON"),
        (["request", "svc.a", "hello"], "double quotes"),
        (["request", "svc.*", "1"], "not a topic"),
        (["request", "--to", "", "svc.a", "1"], "--to"),
        (["request", "--timeout", "0", "svc.a", "1"], "--timeout"),
        (["request", "--timeout", "601", "svc.a", "1"], "600"),
        (["request", "--count", "2", "svc.a", "1"], "does not apply"),
        (["send", "peer", "note.x"], "PEER, a TOPIC and a JSON"),
        (["send", "peer", "note.x", "1", "2"], "PEER, a TOPIC and a JSON"),
        (["send", "peer", "note..x", "1"], "not a topic"),
        (["send", "peer", "note.x", "{bad"], "not valid JSON"),
        (["send", "", "note.x", "1"], "PEER is empty"),
        (["send", "--to", "x", "peer", "note.x", "1"], "does not apply"),
        (["send", "--json", "peer", "note.x", "1"], "does not apply"),
        (["sub", "--name", "two words"], "--name"),
        (["help", "requests"], "no help"),
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


def test_help_of_the_new_commands():
    for command in ["request", "send"]:
        for args in ([command, "--help"], ["help", command]):
            result = tap(*args, timeout=10)
            check(result.returncode == 0, "%s: exit %d" %
                  (args, result.returncode))
            check("Usage: mesh-tap " + command in result.stdout and
                  "Examples:" in result.stdout and
                  "Exit status" in result.stdout and
                  "--timeout" in result.stdout and
                  "--mesh" in result.stdout, "%s: help lacks a part:\n%s" %
                  (args, result.stdout))
    result = tap("--help", timeout=10)
    check("request TOPIC JSON" in result.stdout and
          "send PEER TOPIC JSON" in result.stdout, "main help lacks them")


def test_request_answered():
    mesh, port = unique_mesh("tapreq"), random_port()
    echo = testnode("echo", mesh, port, "--serve", "svc.echo", "--respond")
    echo_id = echo.started()["id"]

    # Text: the reply's payload (the echo's is the request's own) as JSON.
    result = tap("request", "svc.echo", '{"x":[1,2,"three"],"y":null}',
                 *net(mesh, port))
    check(result.returncode == 0, "request: exit %d: %s" %
          (result.returncode, result.stderr))
    check(json.loads(result.stdout) == {"x": [1, 2, "three"], "y": None},
          "reply %r" % result.stdout)
    check(result.stdout.count("\n") == 1, "one line: %r" % result.stdout)

    # --json: one object with the responder and the request's number.
    result = tap("request", "--json", "svc.echo", "-3.5", *net(mesh, port))
    check(result.returncode == 0, "request --json: exit %d: %s" %
          (result.returncode, result.stderr))
    lines = json_lines(result.stdout, "request --json")
    check(len(lines) == 1, "lines %r" % lines)
    reply = lines[0]
    check(reply["type"] == "reply" and reply["peer"] == "echo" and
          reply["peer_id"] == echo_id and reply["payload"] == -3.5 and
          reply["topic"] == "svc.echo" and reply["req"] >= 1 and
          isinstance(reply["rtt_us"], int) and reply["size"] == 9,
          "reply %r" % reply)

    # JSON '-' reads the payload from stdin.
    result = tap("request", "svc.echo", "-", *net(mesh, port),
                 input_text='{"from":"stdin"}\n')
    check(result.returncode == 0 and
          json.loads(result.stdout) == {"from": "stdin"},
          "stdin payload: %d %r %s" % (result.returncode, result.stdout,
                                       result.stderr))

    # --stdin: one request a line, the replies in the order of the lines.
    payloads = [{"n": i} for i in range(1, 6)]
    text = "\n".join(json.dumps(p) for p in payloads[:2]) + "\n\n" + \
        "\n".join(json.dumps(p) for p in payloads[2:]) + "\n"
    result = tap("request", "--stdin", "--json", "svc.echo",
                 *net(mesh, port), input_text=text)
    check(result.returncode == 0, "request --stdin: exit %d: %s" %
          (result.returncode, result.stderr))
    replies = json_lines(result.stdout, "request --stdin")
    check([o["payload"] for o in replies] == payloads,
          "replies out of order or missing: %r" % replies)
    check([o["req"] for o in replies] == sorted({o["req"] for o in replies}),
          "request numbers %r" % [o["req"] for o in replies])

    # A bad line stops it: exit 2 naming the line, the ones before it
    # answered, nothing after it asked.
    asked = len(echo.seen(is_("request")))
    result = tap("request", "--stdin", "svc.echo", *net(mesh, port),
                 input_text='1\n2\n{bad\n4\n')
    check(result.returncode == 2 and "stdin line 3" in result.stderr,
          "bad line: exit %d: %s" % (result.returncode, result.stderr))
    check(result.stdout.splitlines() == ["1", "2"], "replies before the "
          "bad line: %r" % result.stdout)
    time.sleep(0.3)
    check(len(echo.seen(is_("request"))) == asked + 2,
          "the line after the bad one was asked")

    # --to a named peer, though another subscriber answers the topic too.
    other = testnode("other", mesh, port, "--serve", "svc.echo", "--respond")
    other.started()
    for _ in range(3):
        result = tap("request", "--json", "--to", "other", "svc.echo", 7,
                     *net(mesh, port))
        check(result.returncode == 0, "--to: exit %d: %s" %
              (result.returncode, result.stderr))
        check(json_lines(result.stdout, "--to")[0]["peer"] == "other",
              "--to other answered by %r" % result.stdout)
    # ... and by id, to a peer that does not serve the topic: it refuses
    # at once, and the tap says so.
    result = tap("request", "--to", echo_id, "not.served", '"hi"',
                 *net(mesh, port))
    check(result.returncode == 1 and "refused" in result.stderr and
          "not.served" in result.stderr,
          "--to ID: exit %d %r %s" % (result.returncode, result.stdout,
                                      result.stderr))
    for node in (echo, other):
        for o in node.seen(is_("request")):
            check(o["peer"] == "mesh-tap", "requester name %r" % o)


def test_request_failures_say_why():
    mesh, port = unique_mesh("tapreqfail"), random_port()
    mute = testnode("mute", mesh, port, "--serve", "svc.mute")
    mute.started()

    # Nobody subscribed: exit 1 once the wait for a responder is over.
    start = time.monotonic()
    result = tap("request", "--timeout", 1.5, "svc.none", 1,
                 *net(mesh, port))
    took = time.monotonic() - start
    check(result.returncode == 1, "nobody: exit %d" % result.returncode)
    line = one_line(result.stderr)
    check(line.startswith("mesh-tap: no responder") and "svc.none" in line,
          "nobody: %r" % line)
    check(1.4 < took < 6, "nobody: took %.1fs for --timeout 1.5" % took)
    check(result.stdout == "", "printed %r" % result.stdout)

    # An unknown --to peer.
    result = tap("request", "--timeout", 1, "--to", "nobody", "svc.mute", 1,
                 *net(mesh, port))
    check(result.returncode == 1 and "no such peer" in result.stderr and
          "nobody" in result.stderr, "unknown --to: %d %s" %
          (result.returncode, result.stderr))

    # A subscriber that never answers: a timeout, naming it.
    start = time.monotonic()
    result = tap("request", "--timeout", 2, "svc.mute", '{"q":1}',
                 *net(mesh, port))
    took = time.monotonic() - start
    check(result.returncode == 1, "mute: exit %d" % result.returncode)
    line = one_line(result.stderr)
    check(line.startswith("mesh-tap: timeout") and "mute" in line,
          "mute: %r" % line)
    check(took < 6, "mute: took %.1fs for --timeout 2" % took)
    mute.wait_for(is_("request"), 5, "the request the mute got")

    # A responder that leaves before it answers: said at once, not at
    # the timeout.
    quitter = testnode("quitter", mesh, port, "--serve", "svc.quit",
                       run_ms=2500)
    quitter.started()
    start = time.monotonic()
    result = tap("request", "--timeout", 20, "svc.quit", 1,
                 *net(mesh, port))
    took = time.monotonic() - start
    check(result.returncode == 1, "quitter: exit %d" % result.returncode)
    line = one_line(result.stderr)
    check(line.startswith("mesh-tap: responder gone"), "quitter: %r" % line)
    check(took < 10, "quitter: took %.1fs, as if it waited for the "
          "timeout" % took)

    # --stdin stops at the first request that fails: exit 1, naming it.
    result = tap("request", "--stdin", "--timeout", 1, "svc.none",
                 *net(mesh, port), input_text="1\n2\n")
    check(result.returncode == 1 and "stdin line 1" in result.stderr and
          "no responder" in result.stderr, "stdin failure: %d %s" %
          (result.returncode, result.stderr))


def test_send():
    mesh, port = unique_mesh("tapsend"), random_port()
    inbox = testnode("inbox", mesh, port)
    inbox.started()
    result = tap("send", "inbox", "note.x", '{"text":"hello","n":[1,2]}',
                 *net(mesh, port))
    check(result.returncode == 0, "send: exit %d: %s" %
          (result.returncode, result.stderr))
    check(result.stdout == "" and result.stderr == "",
          "send printed %r %r" % (result.stdout, result.stderr))
    note = inbox.wait_for(is_("direct"), 5, "the direct message")
    check(note["topic"] == "note.x" and note["peer"] == "mesh-tap" and
          note["req"] == 0 and
          note["payload"] == {"text": "hello", "n": [1, 2]}, "%r" % note)

    # A '$' topic is fine point-to-point, and --name names the sender.
    result = tap("send", "--name", "ops-console", "inbox", "$svc.ping",
                 "null", *net(mesh, port))
    check(result.returncode == 0, "send $: exit %d: %s" %
          (result.returncode, result.stderr))
    inbox.wait_for(lambda o: o.get("event") == "direct" and
                   o["topic"] == "$svc.ping" and
                   o["peer"] == "ops-console", 5, "the $ message")

    # An unknown peer: exit 1 after the wait, one line naming it.
    start = time.monotonic()
    result = tap("send", "--timeout", 1, "nobody", "note.x", 1,
                 *net(mesh, port))
    check(result.returncode == 1, "unknown: exit %d" % result.returncode)
    line = one_line(result.stderr)
    check(line.startswith("mesh-tap: no such peer") and "nobody" in line,
          "unknown: %r" % line)
    check(time.monotonic() - start < 5, "unknown peer took too long")
    time.sleep(0.3)
    check(len(inbox.seen(is_("direct"))) == 2, "extra direct messages: %r" %
          inbox.seen(is_("direct")))


def test_sub_shows_direct_messages():
    mesh, port = unique_mesh("tapsubdirect"), random_port()
    watcher = Node([TAP, "sub", "--name", "tapwatch", "--json", "--count",
                    "2", "--timeout", "20", "svc.ask"] + net(mesh, port),
                   "tap")
    # The tap serves nothing: a request sent to it by name is refused at
    # once (ZMESH_ENOTFOUND, -11), and it shows no request line.
    asker = testnode("asker", mesh, port, "--request", "svc.ask", "--to",
                     "tapwatch", "--count", 1, "--request-timeout", 5000)
    asker.started()
    reply = asker.wait_for(is_("reply"), 10, "the refusal")
    check(reply["status"] == -11 and reply["peer"] == "tapwatch",
          "the tap took a request? %r" % reply)
    sender = testnode("sender", mesh, port, "--send", "tapwatch", "--pub",
                      "note.x", "--count", 2, "--every", 5, "--wait-subs", 1)
    sender.started()
    sender.wait_count(is_("sent"), 2, 10, "the sends")
    check(all(o["rc"] == 0 for o in sender.seen(is_("sent"))),
          "send to the tap failed")
    direct = watcher.wait_for(lambda o: o.get("type") == "direct", 10,
                              "the direct line")
    check(direct["topic"] == "note.x" and direct["peer"] == "sender" and
          len(direct["peer_id"]) == 32 and "req" not in direct and
          direct["payload"] == {"n": 1, "from": "sender"} and
          direct["size"] > 0 and isinstance(direct["ts"], int),
          "direct %r" % direct)
    # Two events with a payload: --count 2 ends the view, exit 0.
    watcher.proc.wait(10)
    check(watcher.proc.returncode == 0, "sub: exit %d" %
          watcher.proc.returncode)
    check(not any(o.get("type") == "request" for o in watcher.seen()),
          "a request line from a tap that serves nothing")
    for line in watcher.seen():
        check(line.get("event") != "text", "not JSON: %r" % line)

    # Text lines: "direct" in the sequence column, no colour in a pipe.
    watcher = Node([TAP, "sub", "--name", "tapwatch2", "--count", "1",
                    "--timeout", "20", "svc.none"] + net(mesh, port), "tap2")
    sender = testnode("sender2", mesh, port, "--send", "tapwatch2", "--pub",
                      "note.y", "--count", 1, "--wait-subs", 1)
    sender.started()
    line = watcher.wait_for(lambda o: "note.y" in o.get("text", ""), 10,
                            "the text line")["text"]
    check("direct" in line and "sender2" in line and
          '{"n":1,"from":"sender2"}' in line and "\x1b" not in line,
          "text line %r" % line)


class StalledReader:
    """mesh-tap with its stdout a pipe nobody reads for `stall` seconds
    after its first line: once the pipe is full the tap blocks writing,
    stops receiving, and its queues overflow."""

    def __init__(self, argv, stall):
        env = dict(os.environ)
        env.update(TINY_QUEUES)
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, env=env)
        _procs.append(self.proc)
        self.lines = []
        self.lock = threading.Lock()
        self.stall = stall
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        stalled = False
        for raw in self.proc.stdout:
            with self.lock:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
            if not stalled:
                stalled = True
                time.sleep(self.stall)

    def wait_for(self, pred, timeout, what):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if any(pred(line) for line in self.lines):
                    return
            if self.proc.poll() is not None:
                fail("the stalled tap exited (%d) before %s: %s" %
                     (self.proc.returncode, what,
                      self.proc.stderr.read().decode()))
            time.sleep(0.05)
        fail("the stalled tap: no %s within %ss (%d lines)" %
             (what, timeout, len(self.lines)))

    def stop(self):
        """SIGTERM, as Ctrl-C: the live view ends with exit 0."""
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            fail("the stalled tap did not stop on SIGTERM")
        time.sleep(0.1)  # let the reader thread drain the pipe
        with self.lock:
            return list(self.lines)


def test_repaired_events_are_marked():
    mesh, port = unique_mesh("taprepair"), random_port()
    base = [TAP, "sub", "--timeout", "40", "burst.>"] + net(mesh, port)
    as_json = StalledReader(base + ["--json"], 1.5)
    as_text = StalledReader(base, 1.5)
    pub = testnode("fast", mesh, port, "--pub", "burst.x", "--count", BURST,
                   "--every", 0, "--wait-subs", 2, "--final-after", 2000,
                   run_ms=45000, env=TINY_QUEUES)
    pub.started()
    final = '"seq":%d,' % (BURST + 1)
    as_json.wait_for(lambda line: final in line, 40, "final event (JSON)")
    as_text.wait_for(lambda line: " %d  " % (BURST + 1) in line, 20,
                     "final event (text)")
    lines = as_json.stop()
    check(as_json.proc.returncode == 0, "json tap: exit %d" %
          as_json.proc.returncode)
    objects = json_lines("\n".join(lines), "stalled --json")
    messages = [o for o in objects if o.get("type") == "message"]
    gaps = [o for o in objects if o.get("type") == "gap"]
    repaired = [o for o in messages if "repaired" in o]
    check(repaired, "nothing was repaired: the tap did not fall behind "
          "(%d messages, %d gaps)" % (len(messages), len(gaps)))
    check(all(o["repaired"] is True for o in repaired), "repaired values")
    # Every number accounted for: delivered once in order, or in a gap.
    expected = 1
    for o in objects:
        if o.get("type") == "message":
            check(o["seq"] == expected, "seq %d, expected %d" %
                  (o["seq"], expected))
            expected += 1
        elif o.get("type") == "gap":
            check(o["first"] == expected, "gap %r, expected %d" %
                  (o, expected))
            expected = o["last"] + 1
    check(expected == BURST + 2, "accounted up to %d" % (expected - 1))

    text = as_text.stop()
    check(as_text.proc.returncode == 0, "text tap: exit %d" %
          as_text.proc.returncode)
    tagged = [line for line in text if "  repaired  " in line]
    check(tagged, "no text line is tagged repaired")
    check(all("burst.x" in line and "fast" in line for line in tagged),
          "tagged %r" % tagged[0])
    check(not any("\x1b" in line for line in text), "colour in a pipe")


if __name__ == "__main__":
    run([test_usage_errors_exit_2_without_network,
         test_help_of_the_new_commands,
         test_request_answered,
         test_request_failures_say_why,
         test_send,
         test_sub_shows_direct_messages,
         test_repaired_events_are_marked])
