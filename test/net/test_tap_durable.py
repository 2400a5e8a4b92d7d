"""mesh-tap's durable side driven as an operator would, against the real
mesh-relay on loopback (issue 4): `pub --confirm` exits 0 once a relay has
stored every event, and exits 1 within its confirm timeout when no relay
(or no stream) stores them; `mesh-tap --durable NAME PATTERN` reads what
was published while it was away, stops at --count, acknowledges what it
printed, so a second run under the same name gets only newer events,
never one again, and what it did not print; it goes on with live events; records the relay deleted
before the consumer read them are reported as LOST; and `mesh-tap
consumers` (and `streams`) show the consumer with its floor and lag.
Usage errors of the new options exit 2 without touching the network."""

import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from meshtest import (TAP, Node, check, random_port, run,  # noqa: E402
                      run_tool, unique_mesh)
from test_relay import (json_lines, messages, net, read_all,  # noqa: E402
                        relay, stream_info, tap, wait_stored)


def pub_confirm(mesh, port, topic, payload, *args, timeout=60):
    """`mesh-tap pub --confirm`, bounded; returns (result, seconds)."""
    start = time.monotonic()
    result = tap("pub", "--confirm", *args, topic, payload, *net(mesh, port),
                 timeout=timeout)
    return result, time.monotonic() - start


def publish_stored(mesh, port, first, count, topic="orders.created"):
    """Publishes {"id": first..first+count-1} with --confirm, one per line
    of stdin, and insists every one was confirmed."""
    lines = "".join('{"id":%d}\n' % i for i in range(first, first + count))
    result = run_tool([TAP, "pub", "--confirm", "--stdin", topic] +
                      net(mesh, str(port)), timeout=60, input_text=lines)
    check(result.returncode == 0 and
          "confirmed %d of %d event" % (count, count) in result.stdout,
          "pub --confirm --stdin of %d: exit %d, stdout %r, stderr %s" %
          (count, result.returncode, result.stdout, result.stderr))


def consume(mesh, port, name, pattern, *args, timeout=60):
    """One bounded run of `mesh-tap --durable NAME PATTERN --json`; returns
    (result, objects)."""
    result = tap("--durable", name, "--json", *args, pattern,
                 *net(mesh, port), timeout=timeout)
    return result, json_lines(result)


def consumer_lines(mesh, port, *args):
    result = tap("consumers", "--json", *args, *net(mesh, port))
    check(result.returncode == 0, "consumers: exit %d: %s" %
          (result.returncode, result.stderr))
    return [o for o in json_lines(result) if o.get("type") == "consumer"]


def consumer_info(mesh, port, name):
    found = [o for o in consumer_lines(mesh, port) if o.get("name") == name]
    check(len(found) == 1, "consumer %s listed %d times" % (name, len(found)))
    return found[0]


def ids(objects):
    return [o["payload"]["id"] for o in messages(objects)]


# --------------------------------------------------------------------------


def test_usage_errors_exit_2_without_network():
    cases = [
        (["--durable", "bad/name", "orders.>"], "consumer name"),
        (["--durable", "c1"], "one PATTERN"),
        (["--durable", "c1", "a.>", "b.>"], "one PATTERN"),
        (["--durable", "c1", "bad..pattern"], "bad..pattern"),
        (["--start", "all", "orders.>"], "--durable NAME only"),
        (["--durable", "c1", "--start", "sometime", "a.>"], "--start"),
        (["--durable", "c1", "--start", "seq:0", "a.>"], "--start"),
        (["--durable", "c1", "--start", "time:soon", "a.>"], "--start"),
        (["--durable", "c1", "--ack-wait", "0.01", "a.>"], "--ack-wait"),
        (["--durable", "c1", "--max-deliver", "1001", "a.>"],
         "--max-deliver"),
        (["--durable", "c1", "--max-ack-pending", "0", "a.>"],
         "--max-ack-pending"),
        (["--durable", "c1", "--stream", "a.b", "a.>"], "stream name"),
        (["--durable", "c1", "--publisher", "shop", "a.>"], "--publisher"),
        (["sub", "--durable", "c1", "--max-deliver", "x", "a.>"],
         "--max-deliver"),
        (["pub", "--confirm-timeout", "3", "a.b", "1"], "--confirm only"),
        (["pub", "--confirm", "--confirm-timeout", "0", "a.b", "1"],
         "--confirm-timeout"),
        (["pub", "--confirm", "--confirm-timeout", "3601", "a.b", "1"],
         "--confirm-timeout"),
        (["peers", "--confirm"], "does not apply"),
        (["consumers", "a", "b"], "at most a STREAM"),
        (["consumers", "bad.name"], "stream name"),
        (["consumers", "--count", "1"], "does not apply"),
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
    for args, needles in [
            (["--help"], ["--durable", "--confirm", "consumers"]),
            (["sub", "--help"], ["--durable", "--start", "--ack-wait",
                                 "--max-deliver", "--max-ack-pending",
                                 "--stream", "\"lost\""]),
            (["pub", "--help"], ["--confirm", "--confirm-timeout"]),
            (["consumers", "--help"], ["LAG", "FLOOR", "Examples:"]),
            (["help", "consumers"], ["Usage: mesh-tap consumers"]),
            (["read", "--help"], ["--since", "--from-seq"])]:
        result = tap(*args, timeout=10)
        check(result.returncode == 0, "%s: exit %d" %
              (args, result.returncode))
        for needle in needles:
            check(needle in result.stdout, "%s: no %r in the help" %
                  (args, needle))


def test_pub_confirm_with_a_relay_exits_0_and_stores():
    mesh, port = unique_mesh("tapconf"), random_port()
    with tempfile.TemporaryDirectory() as tmp:
        node = relay(tmp, mesh, port, "--stream", "orders=orders.>")
        result, _ = pub_confirm(mesh, port, "orders.created", '{"id":1}',
                                "--repeat", 20)
        check(result.returncode == 0, "pub --confirm: exit %d: %s" %
              (result.returncode, result.stderr))
        check("confirmed 20 of 20 events" in result.stdout,
              "summary: %r" % result.stdout)
        # Confirmed means stored: a read sees them at once.
        objects, err = read_all(mesh, port, "orders")
        check(len(messages(objects)) == 20, "read %d of 20 confirmed events:"
              " %s" % (len(messages(objects)), err))
        publish_stored(mesh, port, 100, 5)
        objects, _ = read_all(mesh, port, "orders")
        check(ids(objects)[-5:] == list(range(100, 105)), "stdin events: %r"
              % ids(objects))
        # A topic no stream covers is stored nowhere: never confirmed.
        result, seconds = pub_confirm(mesh, port, "metrics.cpu", "1",
                                      "--confirm-timeout", 2)
        check(result.returncode == 1, "uncovered topic: exit %d, stdout %r" %
              (result.returncode, result.stdout))
        check("confirmed 0 of 1 event" in result.stdout and
              "not confirmed" in result.stderr,
              "uncovered topic: %r %r" % (result.stdout, result.stderr))
        check(seconds < 15, "uncovered topic took %.1f s" % seconds)
        check(node.stop() == 0, "relay exit code")


def test_doctor_expects_no_data_connection_to_a_relay():
    # A relay advertises only its confirm topics ('$relay.confirm.>'),
    # which the doctor does not subscribe to: not connecting to it is no
    # finding.
    mesh, port = unique_mesh("tapdoc"), random_port()
    with tempfile.TemporaryDirectory() as tmp:
        node = relay(tmp, mesh, port, "--stream", "orders=orders.>")
        result = tap("doctor", "--wait", 2.5, *net(mesh, port), timeout=30)
        check(result.returncode == 0 and "No problems found" in result.stdout,
              "doctor with a relay: exit %d: %s %s" %
              (result.returncode, result.stdout, result.stderr))
        check(node.stop() == 0, "relay exit code")


def test_pub_confirm_without_a_relay_fails_within_the_timeout():
    mesh, port = unique_mesh("tapnoconf"), random_port()
    result, seconds = pub_confirm(mesh, port, "orders.created", '{"id":1}',
                                  "--repeat", 3, "--confirm-timeout", 2)
    check(result.returncode == 1, "exit %d, expected 1: %r %r" %
          (result.returncode, result.stdout, result.stderr))
    check("confirmed 0 of 3 events" in result.stdout,
          "summary: %r" % result.stdout)
    check("3 events not confirmed" in result.stderr and
          "timed out" in result.stderr, "failures: %r" % result.stderr)
    # Discovery settles in about 1.5 s, then the confirm timeout of 2 s.
    check(seconds < 10, "took %.1f s with a 2 s confirm timeout" % seconds)


def test_durable_consumer_resumes_where_it_acknowledged():
    mesh, port = unique_mesh("tapdur"), random_port()
    with tempfile.TemporaryDirectory() as tmp:
        node = relay(tmp, mesh, port, "--stream", "orders=orders.>")
        # Published while no consumer was there: only the relay has them.
        publish_stored(mesh, port, 1, 10)
        result, objects = consume(mesh, port, "billing", "orders.>",
                                  "--count", 10, "--timeout", 20)
        check(result.returncode == 0, "first run: exit %d: %s" %
              (result.returncode, result.stderr))
        got = messages(objects)
        check(ids(objects) == list(range(1, 11)), "first run ids %r" %
              ids(objects))
        check(all(o["consumer"] == "billing" and o["deliveries"] == 1 and
                  o["redelivered"] is False and o["topic"] ==
                  "orders.created" for o in got), "fields: %r" % got[0])
        check([o["rseq"] for o in got] == list(range(1, 11)),
              "relay seqs %r" % [o["rseq"] for o in got])
        # Away again while more is published.
        publish_stored(mesh, port, 11, 5)
        result, objects = consume(mesh, port, "billing", "orders.>",
                                  "--count", 5, "--timeout", 20)
        check(result.returncode == 0, "second run: exit %d: %s" %
              (result.returncode, result.stderr))
        check(ids(objects) == list(range(11, 16)),
              "second run got %r, expected only 11..15" % ids(objects))
        # Nothing is left: a third run sees no event within its timeout.
        result, objects = consume(mesh, port, "billing", "orders.>",
                                  "--timeout", 3)
        check(result.returncode == 0 and messages(objects) == [],
              "third run: exit %d, %r" % (result.returncode,
                                          ids(objects)))
        # --count not reached by --timeout: exit 1, as for sub.
        result, _ = consume(mesh, port, "billing", "orders.>", "--count", 1,
                            "--timeout", 2)
        check(result.returncode == 1 and "timed out" in result.stderr,
              "count not reached: exit %d: %s" % (result.returncode,
                                                 result.stderr))
        # The listing: floor at 15 after all was acknowledged, then a lag
        # of what came since.
        publish_stored(mesh, port, 16, 7)
        deadline = time.monotonic() + 10
        while True:
            info = consumer_info(mesh, port, "billing")
            if info.get("floor") == 15 and info.get("lag") == 7:
                break
            check(time.monotonic() < deadline, "consumer %r" % info)
            time.sleep(0.2)
        check(info["stream"] == "orders" and info["pattern"] == "orders.>"
              and info["relay"] == "mesh-relay" and
              info["pending"] == 7 and info["ack_wait_ms"] == 30000 and
              info["max_ack_pending"] == 1000, "consumer %r" % info)
        check(consumer_lines(mesh, port, "orders") and
              consumer_lines(mesh, port, "orders")[0]["name"] == "billing",
              "consumers orders")
        text = tap("consumers", *net(mesh, port))
        rows = [l for l in text.stdout.splitlines()
                if l.split()[:2] == ["billing", "orders"]]
        check(text.returncode == 0 and rows and "orders.>" in rows[0] and
              " 15 " in rows[0] and " 7 " in rows[0],
              "consumers text:\n" + text.stdout)
        check(any(c.get("name") == "billing" for c in
                  stream_info(mesh, port, "orders").get("consumers", [])),
              "streams --json has no consumer billing")
        result = tap("consumers", "nosuch", "--timeout", 1, *net(mesh, port))
        check(result.returncode == 1 and "no relay with stream" in
              result.stderr, "consumers of no stream: %s" % result.stderr)
        # Text lines show the relay sequence; the 7 are still there.
        text = tap("--durable", "billing", "--count", 7, "--timeout", 20,
                   "orders.>", *net(mesh, port))
        lines = [l for l in text.stdout.splitlines() if "orders.created" in l]
        check(text.returncode == 0 and len(lines) == 7 and
              "#16" in lines[0] and '{"id":16}' in lines[0],
              "text run:\n" + text.stdout + text.stderr)
        check(node.stop() == 0, "relay exit code")


def test_unprinted_events_come_again():
    mesh, port = unique_mesh("tapdurcnt"), random_port()
    with tempfile.TemporaryDirectory() as tmp:
        node = relay(tmp, mesh, port, "--stream", "orders=orders.>")
        publish_stored(mesh, port, 1, 10)
        # Stopped at --count 4: the tap acknowledged 1..4 only, whatever
        # the library had fetched beyond them.
        result, objects = consume(mesh, port, "partial", "orders.>",
                                  "--count", 4, "--timeout", 20)
        check(result.returncode == 0 and ids(objects) == [1, 2, 3, 4],
              "first run: %r %s" % (ids(objects), result.stderr))
        info = consumer_info(mesh, port, "partial")
        check(info["floor"] == 4 and info["lag"] == 6 and
              info["pending"] == 6, "after 4 of 10: %r" % info)
        result, objects = consume(mesh, port, "partial", "orders.>",
                                  "--timeout", 4)
        check(ids(objects) == list(range(5, 11)),
              "second run got %r, expected 5..10" % ids(objects))
        check(node.stop() == 0, "relay exit code")


def test_durable_consumer_goes_on_live():
    mesh, port = unique_mesh("tapdurlive"), random_port()
    with tempfile.TemporaryDirectory() as tmp:
        node = relay(tmp, mesh, port, "--stream", "orders=orders.>")
        publish_stored(mesh, port, 1, 3)
        argv = [TAP, "--durable", "live", "--json", "--count", 8,
                "--timeout", 40, "orders.>"] + net(mesh, port)
        consumer = Node([str(a) for a in argv], "consumer")
        consumer.wait_count(lambda o: o.get("type") == "message", 3, 20,
                            "the stored events")
        # Attached and caught up: what comes now comes while it runs.
        publish_stored(mesh, port, 4, 5)
        consumer.wait_count(lambda o: o.get("type") == "message", 8, 20,
                            "the live events")
        consumer.proc.wait(10)
        check(consumer.proc.returncode == 0, "exit %s: %s" %
              (consumer.proc.returncode, "\n".join(consumer.stderr)))
        got = ids(consumer.seen())
        check(got == list(range(1, 9)), "got %r, expected 1..8 once each" %
              got)
        # Acknowledged from the live path: nothing is pending. (The floor
        # moves over such records at the next acknowledgement, so the lag
        # may still count the ones stored after the last one.)
        info = consumer_info(mesh, port, "live")
        check(info["pending"] == 0 and info["floor"] >= 3,
              "after acknowledging everything: %r" % info)
        check(node.stop() == 0, "relay exit code")


def test_lost_records_are_reported():
    mesh, port = unique_mesh("tapdurlost"), random_port()
    with tempfile.TemporaryDirectory() as tmp:
        node = relay(tmp, mesh, port, "--stream", "ticks=tick.>",
                     "--segment-bytes", "1K", "--max-events", 40, "--sync",
                     "never")
        publish_stored(mesh, port, 1, 1, topic="tick.a")
        result, objects = consume(mesh, port, "slow", "tick.>", "--count", 1,
                                  "--timeout", 20)
        check(result.returncode == 0 and ids(objects) == [1],
              "first run: %r %s" % (ids(objects), result.stderr))
        # Far more than the stream keeps, while the consumer is away.
        publish_stored(mesh, port, 2, 200, topic="tick.a")
        deadline = time.monotonic() + 15
        while stream_info(mesh, port, "ticks")["first"] <= 2:
            check(time.monotonic() < deadline, "retention deleted nothing")
            time.sleep(0.2)
        result, objects = consume(mesh, port, "slow", "tick.>", "--count", 5,
                                  "--timeout", 20)
        check(result.returncode == 0, "second run: exit %d: %s" %
              (result.returncode, result.stderr))
        lost = [o for o in objects if o.get("type") == "lost"]
        check(lost and lost[0]["consumer"] == "slow" and
              lost[0]["first"] == 2 and lost[0]["last"] >= lost[0]["first"]
              and lost[0]["count"] == lost[0]["last"] - lost[0]["first"] + 1,
              "lost lines: %r" % lost)
        got = messages(objects)
        check(got and got[0]["rseq"] > lost[-1]["last"] and
              objects.index(lost[0]) < objects.index(got[0]),
              "events after the loss: %r" % [o["rseq"] for o in got])
        text = tap("--durable", "slow2", "--start", "seq:1", "--count", 1,
                   "--timeout", 20, "tick.>", *net(mesh, port))
        check(text.returncode == 0, "a new consumer from a deleted seq: %s" %
              text.stderr)
        check(node.stop() == 0, "relay exit code")


if __name__ == "__main__":
    run([test_usage_errors_exit_2_without_network,
         test_pub_confirm_with_a_relay_exits_0_and_stores,
         test_doctor_expects_no_data_connection_to_a_relay,
         test_pub_confirm_without_a_relay_fails_within_the_timeout,
         test_durable_consumer_resumes_where_it_acknowledged,
         test_unprinted_events_come_again,
         test_durable_consumer_goes_on_live,
         test_lost_records_are_reported])
