"""mesh-relay driven as an operator would: the real daemon, real publishers
(zmesh-testnode) and mesh-tap read/streams, on loopback. Bad
configurations exit 2 and create nothing; events published with no
subscriber but the relay are stored and read back complete and in order
with dense relay sequence numbers; a relay killed with -9 again and again
while a publisher publishes recovers every time and in the end holds every
event of the publisher exactly once (repaired from the publisher's buffer);
retention deletes old segments and a read from 1 says where the stream
starts now; a torn and a corrupted segment between runs are survived and
only sound records served; a full disk (RLIMIT_FSIZE) stops the stream
from accepting, said once, while reads go on; malformed requests get error
replies and the relay stays up."""

import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import meshtest  # noqa: E402
from meshtest import (TAP, Node, check, fail, random_port, run,  # noqa: E402
                      run_tool, testnode, unique_mesh)


def _find_relay():
    if os.environ.get("ZMESH_RELAY"):
        return os.environ["ZMESH_RELAY"]
    # Built next to mesh-tap (build/bin/), or installed on the PATH.
    if os.path.dirname(TAP):
        candidate = os.path.join(os.path.dirname(TAP), "mesh-relay")
        if os.path.exists(candidate):
            return candidate
    return shutil.which("mesh-relay") or "mesh-relay"


RELAY = _find_relay()


class RelayNode(Node):
    """A mesh-relay process; its stdout is the startup line, its stderr the
    log. `limit_file_size` runs it under RLIMIT_FSIZE (SIGXFSZ ignored), so
    writes past that size fail with EFBIG: a full disk without root."""

    def __init__(self, argv, name, limit_file_size=None):
        def preexec():
            if limit_file_size:
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
                resource.setrlimit(resource.RLIMIT_FSIZE,
                                   (limit_file_size, limit_file_size))

        self.name = name
        self.argv = argv
        self.lines = []
        self.lock = threading.Lock()
        self.stderr = []
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL,
                                     preexec_fn=preexec)
        meshtest._procs.append(self.proc)
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def started_line(self):
        return self.wait_for(lambda o: o.get("text", "").startswith(
            "mesh-relay: mesh"), 15, "the startup line")["text"]

    def log(self):
        return "\n".join(self.stderr)


def relay(directory, mesh, port, *args, limit_file_size=None):
    argv = [RELAY, "--dir", directory, "--mesh", mesh, "--beacon-port",
            str(port), "--beacon-interval", "100"] + [str(a) for a in args]
    node = RelayNode(argv, "relay", limit_file_size)
    node.started_line()
    return node


def tap(*args, timeout=60):
    return run_tool([TAP] + [str(a) for a in args], timeout=timeout)


def net(mesh, port):
    return ["--mesh", mesh, "--beacon-port", str(port)]


def json_lines(result):
    objects = []
    for number, line in enumerate(result.stdout.splitlines(), 1):
        try:
            objects.append(json.loads(line))
        except ValueError:
            fail("line %d is not JSON: %r" % (number, line))
    return objects


def read_all(mesh, port, stream, *args):
    result = tap("read", stream, "--json", *args, *net(mesh, port))
    check(result.returncode == 0, "read %s: exit %d: %s" %
          (stream, result.returncode, result.stderr))
    return json_lines(result), result.stderr


def stream_info(mesh, port, name):
    result = tap("streams", "--json", *net(mesh, port))
    check(result.returncode == 0, "streams: exit %d: %s" %
          (result.returncode, result.stderr))
    for o in json_lines(result):
        if o["type"] == "stream" and o["name"] == name:
            return o
    fail("no stream %s in %s" % (name, result.stdout))


def relay_info(mesh, port):
    result = tap("streams", "--json", *net(mesh, port))
    check(result.returncode == 0, "streams: exit %d: %s" %
          (result.returncode, result.stderr))
    relays = [o for o in json_lines(result) if o["type"] == "relay"]
    check(len(relays) == 1, "relay lines: %r" % relays)
    return relays[0]


def wait_stored(mesh, port, name, count, timeout, what):
    """Waits until the stream holds at least `count` records."""
    deadline = time.monotonic() + timeout
    info = None
    while time.monotonic() < deadline:
        info = stream_info(mesh, port, name)
        if info["count"] >= count:
            return info
        time.sleep(0.2)
    fail("%s: stream %s holds %s records, not %d, after %.0f s" %
         (what, name, info and info["count"], count, timeout))


def messages(objects):
    return [o for o in objects if o.get("type") == "message"]


def publisher(mesh, port, name, topic, count, every, run_ms=60000):
    node = testnode(name, mesh, port, "--pub", topic, "--count", count,
                    "--every", every, "--wait-subs", 1, run_ms=run_ms)
    node.started()
    return node


# --------------------------------------------------------------------------


def test_bad_configurations_exit_2_and_create_nothing():
    with tempfile.TemporaryDirectory() as tmp:
        target = os.path.join(tmp, "data")
        afile = os.path.join(tmp, "afile")
        with open(afile, "w") as f:
            f.write("x")
        conf = os.path.join(tmp, "bad.conf")
        with open(conf, "w") as f:
            f.write("dir = %s\n[stream a]\npatterns = a.>\nmax-age = 5\n" %
                    target)
        ok = ["--dir", target, "--stream", "orders=orders.>"]
        cases = [
            ([], "no --dir"),
            (["--dir", target], "no stream"),
            (["--dir", target, "--stream", "bad.name=a.>"],
             "not a stream name"),
            (ok + ["--stream", "orders=x.>"], "defined twice"),
            (["--dir", target, "--stream", "o=orders..x"],
             "not a topic pattern"),
            (["--dir", target, "--stream", "o=a.>.b"], "not a topic pattern"),
            (ok + ["--max-bytes", "lots"], "not a size"),
            (ok + ["--max-age", "5"], "not a duration"),
            (ok + ["--max-events", "-1"], "whole number"),
            (ok + ["--sync", "sometimes"], "sync policy"),
            (ok + ["--segment-bytes", "10"], "segment size"),
            (ok + ["--max-age", "nosuch:1h"], "no stream 'nosuch'"),
            (ok + ["--mesh", "two words"], "--mesh"),
            (ok + ["--discovery", "lan"], "needs --interface"),
            (ok + ["--bogus"], "unknown option"),
            (ok + ["stray"], "unexpected argument"),
            (ok + ["--beacon-port", "70000"], "port number"),
            (["--dir", os.path.join(afile, "sub"), "--stream", "o=a.>"],
             "not a directory"),
            (["--config", conf], "bad.conf:4"),
            (["--config", os.path.join(tmp, "missing.conf")], "cannot read"),
        ]
        for args, needle in cases:
            result = run_tool([RELAY] + args, timeout=10)
            check(result.returncode == 2, "%s: exit %d, expected 2: %s" %
                  (args, result.returncode, result.stderr))
            lines = result.stderr.strip().splitlines()
            check(lines and needle in lines[0] and
                  lines[0].startswith("mesh-relay: "),
                  "%s: %r not in the first line of %r" %
                  (args, needle, result.stderr))
            check(result.stdout == "", "%s wrote to stdout" % args)
            check(not os.path.exists(target), "%s created %s" %
                  (args, target))
        # --check says a good configuration is good, and creates nothing.
        result = run_tool([RELAY, "--check"] + ok, timeout=10)
        check(result.returncode == 0 and "good" in result.stdout,
              "--check: %d %s" % (result.returncode, result.stderr))
        check(not os.path.exists(target), "--check created the directory")
        result = run_tool([RELAY, "--help"], timeout=10)
        check(result.returncode == 0 and "Examples:" in result.stdout and
              "Exit status" in result.stdout and "--max-age" in
              result.stdout, "--help")


def test_stored_without_subscribers_read_back_in_order():
    mesh, port = unique_mesh("relay"), random_port()
    with tempfile.TemporaryDirectory() as tmp:
        node = relay(tmp, mesh, port, "--stream", "orders=orders.>")
        # Only the relay wants these: nothing else subscribes.
        pub = publisher(mesh, port, "shop", "orders.created", 300, 3)
        # Nobody wants these, so no waiting for subscribers.
        other = testnode("noise", mesh, port, "--pub", "metrics.cpu",
                         "--count", 50, "--every", 3, run_ms=60000)
        pub.wait_for(lambda o: o.get("event") == "published", 20,
                     "all published")
        wait_stored(mesh, port, "orders", 300, 15, "orders")
        objects, err = read_all(mesh, port, "orders")
        got = messages(objects)
        check(len(got) == 300, "read %d events, expected 300: %s" %
              (len(got), err))
        check([o["rseq"] for o in got] == list(range(1, 301)),
              "relay seqs are not 1..300")
        check([o["seq"] for o in got] == list(range(1, 301)),
              "publisher seqs are not 1..300")
        check(all(o["topic"] == "orders.created" and
                  o["publisher"] == "shop" and
                  o["payload"] == {"n": o["seq"], "from": "shop"} and
                  o["stored"] >= o["ts"] - 5000000 for o in got),
              "fields: %r" % got[0])
        # Pages of 1000 at most; --count, --from-seq and --since.
        objects, _ = read_all(mesh, port, "orders", "--from-seq", 290,
                              "--count", 5)
        check([o["rseq"] for o in messages(objects)] ==
              [290, 291, 292, 293, 294], "from-seq 290 count 5")
        objects, _ = read_all(mesh, port, "orders", "--since", "1h")
        check(len(messages(objects)) == 300, "--since 1h")
        objects, _ = read_all(mesh, port, "orders", "--since",
                              "2099-01-01T00:00:00Z")
        check(messages(objects) == [], "--since the future")
        text = tap("read", "orders", "--count", 2, *net(mesh, port))
        check(text.returncode == 0 and "#1 " in text.stdout and
              "orders.created" in text.stdout and "shop" in text.stdout,
              "text lines:\n" + text.stdout)
        # Nothing of the other publisher's topic, and no such stream.
        check(stream_info(mesh, port, "orders")["count"] == 300,
              "count in streams")
        result = tap("read", "metrics", "--timeout", 1, *net(mesh, port))
        check(result.returncode == 1 and "no relay with stream" in
              result.stderr, "unknown stream: %s" % result.stderr)
        result = tap("read", "orders", "--since", "yesterday",
                     *net(mesh, port))
        check(result.returncode == 2 and "--since" in result.stderr,
              "bad --since")
        other.stop()
        check(node.stop() == 0, "relay exit code on SIGTERM")
        check("mesh-relay: stopped" in node.log(), "no clean stop")
        pub.wait_for(lambda o: o.get("event") == "left" and
                     o.get("peer") == "mesh-relay" and
                     o.get("reason") == "bye", 5, "the relay's BYE")
        pub.stop()


def test_kill9_loop_stores_every_event_once():
    mesh, port = unique_mesh("relaykill"), random_port()
    total = 3000
    with tempfile.TemporaryDirectory() as tmp:
        args = ["--stream", "ticks=tick.>"]
        logs = []
        node = relay(tmp, mesh, port, *args)
        pub = publisher(mesh, port, "ticker", "tick.a", total, 2)
        for round_number in range(5):
            # Let it store for a while, then kill it without warning.
            time.sleep(random.uniform(0.4, 1.0))
            node.kill9()
            logs.append(node.log())
            node = relay(tmp, mesh, port, *args)
            log = node.log()
            check("corrupt" not in log and "set aside" not in log,
                  "round %d: recovery found damage:\n%s" %
                  (round_number, log))
        check(not pub.seen(lambda o: o.get("event") == "published"),
              "the publisher finished before the kills did: make it slower")
        pub.wait_for(lambda o: o.get("event") == "published", 60,
                     "all published")
        info = wait_stored(mesh, port, "ticks", total, 30, "after the kills")
        objects, err = read_all(mesh, port, "ticks")
        logs.append(node.log())
        got = messages(objects)
        gaps = [o for o in objects if o.get("type") == "gap"]
        check(not gaps, "gaps recorded: %r\n%s" % (gaps, "\n".join(logs)))
        keys = [(o["publisher_id"], o["seq"]) for o in got]
        check(len(set(keys)) == len(keys), "duplicates stored: %d of %d" %
              (len(keys) - len(set(keys)), len(keys)))
        check(sorted(o["seq"] for o in got) == list(range(1, total + 1)),
              "not every event 1..%d stored once: %d stored, missing %s" %
              (total, len(got), sorted(set(range(1, total + 1)) -
                                       {o["seq"] for o in got})[:20]))
        check([o["rseq"] for o in got] == list(range(1, len(got) + 1)),
              "relay seqs not dense from 1")
        check(info["count"] == total, "streams count %d" % info["count"])
        check(all("gap:" not in log for log in logs), "a relay logged a gap")
        # The last incarnation got what was published while it was down
        # repaired by the publisher.
        agent = relay_info(mesh, port)["agent"]
        check(agent["events_repaired"] > 0 and agent["gaps"] == 0,
              "agent counters %r" % agent)
        pub.stop()
        check(node.stop() == 0, "relay exit code")


def test_retention_deletes_old_segments():
    mesh, port = unique_mesh("relayret"), random_port()
    with tempfile.TemporaryDirectory() as tmp:
        node = relay(tmp, mesh, port, "--stream", "ticks=tick.>",
                     "--segment-bytes", "1K", "--max-events", 40, "--sync",
                     "never")
        pub = publisher(mesh, port, "ticker", "tick.a", 200, 2)
        pub.wait_for(lambda o: o.get("event") == "published", 20,
                     "all published")
        deadline = time.monotonic() + 15
        while True:
            info = stream_info(mesh, port, "ticks")
            if info["last"] == 200 and info["first"] > 1 and \
                    info["count"] <= 60:
                break
            check(time.monotonic() < deadline, "retention did not delete: "
                  "%r" % info)
            time.sleep(0.2)
        check(info["store"]["segments_deleted"] > 0, "no segment deleted")
        objects, err = read_all(mesh, port, "ticks", "--from-seq", 1)
        got = messages(objects)
        first = info["first"]
        check("starts at relay seq %d" % first in err,
              "no word of where the stream starts: %r" % err)
        check(got and got[0]["rseq"] == first and got[-1]["rseq"] == 200,
              "read %s..%s, expected %d..200" %
              (got and got[0]["rseq"], got and got[-1]["rseq"], first))
        check([o["seq"] for o in got] == list(range(first, 201)),
              "not dense after retention")
        segments = [f for f in os.listdir(os.path.join(tmp, "ticks"))
                    if f.endswith(".seg")]
        check(len(segments) < 10, "%d segments left" % len(segments))
        pub.stop()
        node.stop()


def test_damaged_segments_between_runs():
    mesh, port = unique_mesh("relaydmg"), random_port()
    with tempfile.TemporaryDirectory() as tmp:
        args = ["--stream", "ticks=tick.>", "--segment-bytes", "4K"]
        node = relay(tmp, mesh, port, *args)
        pub = publisher(mesh, port, "ticker", "tick.a", 300, 2)
        pub.wait_for(lambda o: o.get("event") == "published", 20,
                     "all published")
        wait_stored(mesh, port, "ticks", 300, 15, "first run")
        pub.stop()
        check(node.stop() == 0, "first run exit code")
        directory = os.path.join(tmp, "ticks")
        segments = sorted(f for f in os.listdir(directory)
                          if f.endswith(".seg"))
        check(len(segments) >= 4, "only %d segments" % len(segments))
        # A torn tail in the last segment, flipped bytes in an earlier one.
        last = os.path.join(directory, segments[-1])
        os.truncate(last, os.path.getsize(last) - 7)
        middle = os.path.join(directory, segments[1])
        with open(middle, "r+b") as f:
            f.seek(200)
            data = f.read(40)
            f.seek(200)
            f.write(bytes(b ^ 0x5a for b in data))
        node = relay(tmp, mesh, port, *args)
        log = node.log()
        check("torn tail" in log or "corrupt" in log or "truncated" in log,
              "recovery said nothing:\n" + log)
        info = stream_info(mesh, port, "ticks")
        objects, err = read_all(mesh, port, "ticks")
        got = messages(objects)
        check(len(got) == info["count"], "read %d, streams says %d" %
              (len(got), info["count"]))
        check(250 <= len(got) < 300, "served %d of 300" % len(got))
        seqs = [o["seq"] for o in got]
        check(len(set(seqs)) == len(seqs) and seqs == sorted(seqs),
              "served out of order or twice")
        check(all(o["payload"] == {"n": o["seq"], "from": "ticker"}
                  for o in got), "a damaged record was served")
        check(all(o["rseq"] == o["seq"] for o in got),
              "relay seqs moved: %r" % [(o["rseq"], o["seq"]) for o in got
                                        if o["rseq"] != o["seq"]][:5])
        check("not there" in err, "the lost relay seqs were not reported")
        check(info["store"]["corrupt_regions"] >= 1 and
              info["store"]["torn_tails"] == 1, "store counters %r" %
              info["store"])
        # Still serving.
        check(node.proc.poll() is None, "the relay died")
        check(node.stop() == 0, "second run exit code")


def test_streams_and_malformed_requests():
    mesh, port = unique_mesh("relayreq"), random_port()
    with tempfile.TemporaryDirectory() as tmp:
        node = relay(tmp, mesh, port, "--stream", "orders=orders.>",
                     "--stream", "audit=audit.>,login.*", "--max-age",
                     "audit:2h", "--sync", "audit:interval:250")
        pub = publisher(mesh, port, "shop", "orders.created", 25, 3)
        pub.wait_for(lambda o: o.get("event") == "published", 20,
                     "all published")
        wait_stored(mesh, port, "orders", 25, 15, "orders")
        result = tap("streams", *net(mesh, port))
        check(result.returncode == 0, "streams: %s" % result.stderr)
        lines = result.stdout.splitlines()
        row = [l for l in lines if l.split()[:1] == ["orders"]]
        check(row and "1..25" in row[0] and " 25 " in row[0],
              "orders row:\n" + result.stdout)
        audit = [l for l in lines if l.split()[:1] == ["audit"]]
        check(audit and "interval:250" in audit[0] and "age 2h" in audit[0],
              "audit row:\n" + result.stdout)
        info = stream_info(mesh, port, "audit")
        check(info["patterns"] == ["audit.>", "login.*"] and
              info["count"] == 0 and info["retention"]["max_age_ms"] ==
              7200000, "audit %r" % info)
        # testnode's request payload is {"n":..,"from":..}: not a read.
        for topic, needle in [("$relay.read", "from"),
                              ("$relay.info", "nil or an empty map"),
                              ("$relay.bogus", "$relay.read")]:
            asker = testnode("asker", mesh, port, "--request", topic, "--to",
                             "mesh-relay", "--count", 3, "--every", 10,
                             run_ms=10000)
            replies = asker.wait_count(
                lambda o: o.get("event") == "reply", 3, 10, "replies")
            for reply in replies:
                check(reply["status"] == 0 and
                      reply["payload"]["code"] == "bad_request" and
                      needle in reply["payload"]["error"],
                      "%s: reply %r" % (topic, reply))
            asker.stop()
        check(node.proc.poll() is None, "the relay died")
        about = relay_info(mesh, port)
        check(about["bad_requests"] == 9 and about["name"] == "mesh-relay",
              "relay counters %r" % about)
        objects, _ = read_all(mesh, port, "orders")
        check(len(messages(objects)) == 25, "reads after bad requests")
        pub.stop()
        check(node.stop() == 0, "exit code")


def test_full_disk_stops_accepting_and_reads_go_on():
    mesh, port = unique_mesh("relayfull"), random_port()
    with tempfile.TemporaryDirectory() as tmp:
        node = relay(tmp, mesh, port, "--stream", "ticks=tick.>",
                     "--sync", "never", limit_file_size=16384)
        pub = publisher(mesh, port, "ticker", "tick.a", 600, 2)
        pub.wait_for(lambda o: o.get("event") == "published", 20,
                     "all published")
        deadline = time.monotonic() + 10
        while "not accepting" not in node.log():
            check(time.monotonic() < deadline, "no disk-full message:\n" +
                  node.log())
            time.sleep(0.1)
        info = stream_info(mesh, port, "ticks")
        check(info["accepting"] is False and info["rejected"] > 0,
              "streams: %r" % info)
        check(node.log().count("not accepting") == 1,
              "said more than once:\n" + node.log())
        objects, _ = read_all(mesh, port, "ticks")
        got = messages(objects)
        check(got and len(got) == info["count"] and
              [o["rseq"] for o in got] == list(range(1, len(got) + 1)),
              "reads while full: %d events" % len(got))
        check(node.proc.poll() is None, "the relay died")
        pub.stop()
        check(node.stop() == 0, "exit code")


def test_large_events_are_paged_by_size():
    mesh, port = unique_mesh("relaybig"), random_port()
    with tempfile.TemporaryDirectory() as tmp:
        node = relay(tmp, mesh, port, "--stream", "big=big.>")
        # Eight events of about 300 KB: at most three fit an answer of
        # 1 MiB, so the read takes several pages.
        lines = "".join('{"topic":"big.x","payload":{"i":%d,"pad":"%s"}}\n'
                        % (i, chr(97 + i) * 300000) for i in range(8))
        result = run_tool([TAP, "pub", "--stdin", "--min-peers", "1",
                           "--timeout", "10"] + net(mesh, str(port)),
                          timeout=30, input_text=lines)
        check(result.returncode == 0, "pub: %s" % result.stderr)
        wait_stored(mesh, port, "big", 8, 15, "big events")
        objects, err = read_all(mesh, port, "big")
        got = messages(objects)
        check([o["payload"]["i"] for o in got] == list(range(8)) and
              all(o["payload"]["pad"] == chr(97 + o["payload"]["i"]) * 300000
                  for o in got), "large events read back wrong: %s" % err)
        check(node.stop() == 0, "exit code")
        # A relay whose messages are smaller than the records cannot send
        # them: it says so per record and the read goes on past them.
        node = relay(tmp, mesh, port, "--stream", "big=big.>",
                     "--max-msg-size", "128K")
        objects, err = read_all(mesh, port, "big")
        check(messages(objects) == [], "served records over the limit")
        check(err.count("too large for a read answer") == 8,
              "oversize records not reported:\n" + err)
        check(node.stop() == 0, "exit code")


if __name__ == "__main__":
    run([test_bad_configurations_exit_2_and_create_nothing,
         test_stored_without_subscribers_read_back_in_order,
         test_kill9_loop_stores_every_event_once,
         test_retention_deletes_old_segments,
         test_damaged_segments_between_runs,
         test_streams_and_malformed_requests,
         test_full_disk_stops_accepting_and_reads_go_on,
         test_large_events_are_paged_by_size])
