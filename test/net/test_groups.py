"""Queue groups: each event on a topic a group takes goes to exactly one
live member, spread by credit, while plain subscribers get every event;
a member killed mid-stream hands its unacknowledged events to the others,
marked redelivered, and nothing is lost (zmesh.h states the one instant
in which a crash can make an event reach the group twice; such an event
is always marked redelivered)."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from meshtest import check, random_port, run, testnode, unique_mesh  # noqa


def group_events(node):
    return [o for o in node.seen()
            if o.get("event") == "message" and o.get("group") == "workers"]


def ready(node, peers):
    for name in peers:
        node.wait_for(lambda o, n=name: o.get("event") == "joined" and
                      o["peer"] == n, 10, "%s joined" % name)


def test_each_event_to_one_member():
    mesh, port = unique_mesh(), random_port()
    members = [testnode("m%d" % i, mesh, port, "--queue-group", "jobs.>=workers")
               for i in range(3)]
    for m in members:
        m.started()
    plain = testnode("audit", mesh, port, "--sub", "jobs.>")
    plain.started()
    boss = testnode("boss", mesh, port, "--pub", "jobs.x", "--count", 300,
                    "--every", 2, "--wait-subs", 1)
    boss.started()
    ready(boss, ["m0", "m1", "m2", "audit"])
    boss.wait_for(lambda o: o.get("event") == "published", 20, "the jobs")
    plain.wait_count(lambda o: o.get("event") == "message", 300, 10,
                     "every job at the plain subscriber")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        got = [len(group_events(m)) for m in members]
        if sum(got) >= 300:
            break
        time.sleep(0.1)
    seqs = sorted(o["seq"] for m in members for o in group_events(m))
    check(seqs == list(range(1, 301)), "the group got %d events, %d "
          "distinct" % (len(seqs), len(set(seqs))))
    check(min(got) >= 1, "a member got none: %s" % got)
    check(not any(o.get("redelivered") for m in members
                  for o in group_events(m)), "redelivered with no failure")
    boss.stop()
    stats = boss.wait_for(lambda o: o.get("event") == "stats", 5, "stats")
    check(stats["group_delivered"] == 300 and stats["group_dropped"] == 0,
          "stats %s" % stats)


def test_member_killed_mid_stream():
    mesh, port = unique_mesh(), random_port()
    members = [testnode("m%d" % i, mesh, port, "--queue-group", "jobs.>=workers")
               for i in range(3)]
    for m in members:
        m.started()
    # A short peer timeout, so the dead member is noticed within a second.
    boss = testnode("boss", mesh, port, "--pub", "jobs.x", "--count", 600,
                    "--every", 3, "--wait-subs", 0, "--timeout", 1000)
    boss.started()
    ready(boss, ["m0", "m1", "m2"])
    victim = members[0]
    victim.wait_count(lambda o: o.get("event") == "message", 20, 10,
                      "the victim's first jobs")
    victim.kill9()
    boss.wait_for(lambda o: o.get("event") == "left" and o["peer"] == "m0",
                  10, "the victim expired")
    boss.wait_for(lambda o: o.get("event") == "published", 20, "the jobs")
    survivors = members[1:]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        seqs = [o["seq"] for m in members for o in group_events(m)]
        if set(seqs) >= set(range(1, 601)):
            break
        time.sleep(0.1)
    seqs = [o["seq"] for m in members for o in group_events(m)]
    missing = set(range(1, 601)) - set(seqs)
    check(not missing, "lost %d jobs, e.g. %s" % (len(missing),
                                                  sorted(missing)[:5]))
    redelivered = {o["seq"] for m in survivors for o in group_events(m)
                   if o.get("redelivered")}
    twice = {s for s in seqs if seqs.count(s) > 1}
    check(twice <= redelivered, "delivered twice without the mark: %s" %
          sorted(twice - redelivered))
    check(len(twice) <= 1, "more than the crash instant can explain: %s" %
          sorted(twice))
    boss.stop()
    stats = boss.wait_for(lambda o: o.get("event") == "stats", 5, "stats")
    check(stats["group_redelivered"] == len(redelivered),
          "stats %s, %d marked" % (stats, len(redelivered)))


if __name__ == "__main__":
    run([test_each_event_to_one_member, test_member_killed_mid_stream])
