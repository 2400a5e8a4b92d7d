"""Loss is never silent: a publisher overruns a subscriber that stops
reading, ZeroMQ drops what does not fit its queues, and the subscriber must
account for every sequence number the publisher sent, as delivered exactly
once and in order, or reported missing in a gap event; mesh-tap --json
shows the same gaps to a script."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from meshtest import (TAP, Node, check, random_port, run,  # noqa: E402
                      testnode, unique_mesh)

BURST = 20000


def account(lines, topic, publisher):
    """Checks the event stream of one (publisher, topic): returns (first
    sequence seen, last sequence seen, number of gaps)."""
    seen = []  # (kind, first, last) in arrival order
    for o in lines:
        kind = o.get("event") or o.get("type")
        if o.get("topic") != topic or o.get("publisher") != publisher:
            continue
        if kind == "message":
            seen.append(("message", o["seq"], o["seq"]))
        elif kind == "gap":
            check(o["first"] <= o["last"], "empty gap %s" % o)
            seen.append(("gap", o["first"], o["last"]))
    check(seen and seen[0][0] == "message", "stream did not start with a "
          "message: %s" % seen[:3])
    expected = seen[0][1]
    gaps = 0
    for i, (kind, first, last) in enumerate(seen):
        check(first == expected, "sequence %d expected, got %s %d..%d "
              "(item %d)" % (expected, kind, first, last, i))
        if kind == "gap":
            gaps += 1
            check(i + 1 < len(seen) and seen[i + 1] == ("message", last + 1,
                                                        last + 1),
                  "a gap must come just before the message after it")
        expected = last + 1
    return seen[0][1], expected - 1, gaps


def test_overrun_subscriber_accounts_for_every_event():
    mesh, port = unique_mesh(), random_port()
    sub = testnode("slow", mesh, port, "--sub", "burst.>", "--stall-ms",
                   1500, run_ms=30000)
    sub.started()
    tap = Node([TAP, "--mesh", mesh, "--beacon-port", str(port), "--json",
                "--timeout", "25", "burst.>"], "tap")
    pub = testnode("fast", mesh, port, "--pub", "burst.x", "--count", BURST,
                   "--every", 0, "--wait-subs", 2, "--final-after", 2000,
                   run_ms=30000)
    pub.started()
    pub.wait_count(lambda o: o.get("event") == "published", 2, 25,
                   "the burst and the final event")
    sub.wait_for(lambda o: o.get("event") == "message" and
                 o["seq"] == BURST + 1, 10, "the final event")
    first, last, gaps = account(sub.seen(), "burst.x", "fast")
    check(last == BURST + 1, "accounted up to %d" % last)
    check(first <= 10, "the stream started late, at %d" % first)
    check(gaps >= 1, "the stalled subscriber lost nothing: the test did "
          "not overrun it")
    sub.stop()
    stats = sub.wait_for(lambda o: o.get("event") == "stats", 5, "stats")
    check(stats["gaps"] == gaps, "stats count %d gaps, events show %d" %
          (stats["gaps"], gaps))
    # mesh-tap reports the same way (it was not stalled, so it may have
    # lost nothing; whatever it shows must account for every number).
    tap.wait_for(lambda o: o.get("type") == "message" and
                 o["seq"] == BURST + 1, 10, "the tap's final event")
    for line in tap.seen():
        check(line.get("event") != "text", "tap printed a non-JSON line: "
              "%s" % line)
    first, last, _ = account(tap.seen(), "burst.x", "fast")
    check(last == BURST + 1, "the tap accounted up to %d" % last)


if __name__ == "__main__":
    run([test_overrun_subscriber_accounts_for_every_event])
