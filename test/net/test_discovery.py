"""Discovery and pub/sub between separate agent processes on loopback, with
no configuration beyond a mesh name: three agents find each other, events
flow in both directions, a late subscriber gets the live stream, and two
meshes on one beacon port stay apart."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from meshtest import (check, random_port, run, testnode,  # noqa: E402
                      unique_mesh)


def is_msg(o):
    return o.get("event") == "message"


def joined(name):
    return lambda o: o.get("event") == "joined" and o.get("peer") == name


def test_three_agents_exchange_both_ways():
    mesh, port = unique_mesh(), random_port()
    names = ["alpha", "bravo", "charlie"]
    # Each publishes <name>.tick and wants every other's ticks.
    nodes = [testnode(n, mesh, port, "--sub", "*.tick", "--pub",
                      n + ".tick", "--count", 40, "--every", 25,
                      "--wait-subs", 2)
             for n in names]
    for node in nodes:
        node.started()
    for node in nodes:
        for other in names:
            if other != node.name:
                node.wait_for(joined(other), 10, "join of " + other)
    for node in nodes:
        for other in names:
            if other == node.name:
                continue
            got = node.wait_count(
                lambda o, t=other + ".tick": is_msg(o) and o["topic"] == t,
                40, 15, "events from " + other)
            seqs = [o["seq"] for o in got]
            check(seqs == list(range(1, 41)),
                  "%s got %s's sequence %s" % (node.name, other, seqs))
            check(all(o["publisher"] == other for o in got),
                  "publisher name wrong")
            check(got[0]["payload"] == {"n": 1, "from": other},
                  "payload not passed through: %r" % got[0]["payload"])
        own = node.seen(lambda o: is_msg(o) and o["topic"] == node.name +
                        ".tick")
        check(not own, "an agent received its own events")


def test_late_subscriber_gets_live_stream():
    mesh, port = unique_mesh(), random_port()
    pub = testnode("pub", mesh, port, "--pub", "feed.live", "--count", 400,
                   "--every", 10)
    pub.started()
    # Starts about a second later; must get the rest of the stream, in order.
    pub.wait_count(lambda o: True, 1, 5)
    sub = testnode("late", mesh, port, "--sub", "feed.>")
    sub.started()
    got = sub.wait_count(is_msg, 50, 15, "live events")
    seqs = [o["seq"] for o in got]
    check(seqs[0] > 1, "late subscriber saw the start of the stream?")
    check(seqs == sorted(seqs), "out of order: %s" % seqs[:20])


def test_subscription_at_runtime_and_pattern_filtering():
    mesh, port = unique_mesh(), random_port()
    pub_a = testnode("orders", mesh, port, "--pub", "orders.eu.created",
                     "--count", 300, "--every", 10)
    pub_b = testnode("payments", mesh, port, "--pub", "payments.eu.done",
                     "--count", 300, "--every", 10)
    sub = testnode("audit", mesh, port, "--sub", "orders.*.created")
    for n in (pub_a, pub_b, sub):
        n.started()
    sub.wait_count(is_msg, 20, 15, "orders events")
    check(not sub.seen(lambda o: is_msg(o) and
                       o["topic"].startswith("payments")),
          "received a topic it did not subscribe to")


def test_publisher_that_leaves_at_once_delivers_everything():
    # The publisher says BYE right after its last publish: events still on
    # their way, or queued in the subscriber, must not be thrown away when
    # the subscriber disconnects from it.
    mesh, port = unique_mesh(), random_port()
    sub = testnode("sink", mesh, port, "--sub", "burst.>")
    sub.started()
    for run_no in range(3):
        pub = testnode("burst%d" % run_no, mesh, port, "--pub", "burst.x",
                       "--count", 500, "--every", 0, "--wait-subs", 1,
                       "--exit-when-done")
        pub.started()
        pub.proc.wait(20)
        sub.wait_for(lambda o, n="burst%d" % run_no: o.get("event") == "left"
                     and o.get("peer") == n, 10, "BYE of the publisher")
        got = sub.wait_count(
            lambda o, n="burst%d" % run_no: o.get("event") == "message" and
            o["publisher"] == n, 500, 10, "the whole burst")
        check([o["seq"] for o in got] == list(range(1, 501)),
              "burst %d incomplete or out of order" % run_no)


def test_two_meshes_on_one_port_stay_apart():
    port = random_port()
    mesh_a, mesh_b = unique_mesh("a"), unique_mesh("b")
    a1 = testnode("a1", mesh_a, port, "--sub", ">", "--pub", "x.y",
                  "--count", 100, "--every", 20)
    a2 = testnode("a2", mesh_a, port, "--sub", ">")
    b1 = testnode("b1", mesh_b, port, "--sub", ">", "--pub", "x.y",
                  "--count", 100, "--every", 20, "--run-ms", 4000)
    for n in (a1, a2, b1):
        n.started()
    a2.wait_for(joined("a1"), 10, "a1 joining a2")
    a2.wait_count(is_msg, 20, 10, "a1 events")
    b1.wait_for(lambda o: o.get("event") == "stats", 15, "b1 stats")
    check(not b1.seen(lambda o: o.get("event") == "joined"),
          "b1 joined a peer of another mesh: %s" % b1.seen())
    check(not b1.seen(is_msg), "events crossed meshes")
    check(all(o["publisher"] == "a1" for o in a2.seen(is_msg)),
          "a2 got events from the other mesh")
    stats = b1.seen(lambda o: o.get("event") == "stats")[0]
    check(stats["beacons_foreign"] > 0,
          "other mesh's beacons not counted: %s" % stats)


if __name__ == "__main__":
    run([test_three_agents_exchange_both_ways,
         test_late_subscriber_gets_live_stream,
         test_subscription_at_runtime_and_pattern_filtering,
         test_publisher_that_leaves_at_once_delivers_everything,
         test_two_meshes_on_one_port_stay_apart])
