"""Peer liveness across processes: BYE on a clean stop is seen at once; a
peer killed with SIGKILL is expired after the peer timeout; a restarted
service is a new incarnation, never confused with the old one; seeds and
gossip work with beacons off."""

import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from meshtest import (check, random_port, run, testnode,  # noqa: E402
                      unique_mesh)


def ev(kind, peer=None):
    return lambda o: o.get("event") == kind and (peer is None or
                                                 o.get("peer") == peer)


def test_bye_is_seen_at_once():
    mesh, port = unique_mesh(), random_port()
    watcher = testnode("watcher", mesh, port, timeout=10000)
    leaver = testnode("leaver", mesh, port)
    watcher.started()
    leaver.started()
    watcher.wait_for(ev("joined", "leaver"), 10, "join")
    stopped = time.monotonic()
    leaver.stop(signal.SIGTERM)
    left = watcher.wait_for(ev("left", "leaver"), 3, "leave by BYE")
    check(left["reason"] == "bye", "reason %r" % left["reason"])
    # With a 10 s timeout, only BYE explains a leave this fast.
    check(time.monotonic() - stopped < 2.0, "BYE not seen at once")


def test_exit_without_destroy_is_clean():
    # An application that returns from main with its agent running: the
    # process must exit 0 (not abort in czmq's exit handler) and peers
    # must see a BYE, not wait for the timeout.
    mesh, port = unique_mesh(), random_port()
    watcher = testnode("watcher", mesh, port, timeout=10000)
    leaver = testnode("careless", mesh, port, "--no-destroy")
    watcher.started()
    leaver.started()
    watcher.wait_for(ev("joined", "careless"), 10, "join")
    code = leaver.stop(signal.SIGTERM)
    check(code == 0, "exit code %s; stderr: %s" % (code, leaver.stderr[-3:]))
    left = watcher.wait_for(ev("left", "careless"), 3, "leave")
    check(left["reason"] == "bye", "reason %r" % left["reason"])


def test_silent_peer_expires_after_timeout():
    mesh, port = unique_mesh(), random_port()
    watcher = testnode("watcher", mesh, port, timeout=1000)
    victim = testnode("victim", mesh, port, timeout=1000)
    watcher.started()
    victim.started()
    watcher.wait_for(ev("joined", "victim"), 10, "join")
    victim.kill9()
    killed = time.monotonic()
    left = watcher.wait_for(ev("left", "victim"), 6, "expiry")
    elapsed = time.monotonic() - killed
    check(left["reason"] == "timeout", "reason %r" % left["reason"])
    check(elapsed >= 0.5, "expired too early (%.2fs)" % elapsed)


def test_restart_is_a_new_incarnation():
    mesh, port = unique_mesh(), random_port()
    watcher = testnode("watcher", mesh, port, "--sub", "svc.>",
                       timeout=1000)
    first = testnode("svc", mesh, port, "--pub", "svc.tick", "--count", 5,
                     "--every", 50, "--wait-subs", 1, timeout=1000)
    watcher.started()
    first_id = first.started()["id"]
    watcher.wait_count(lambda o: o.get("event") == "message", 5, 10)
    first.kill9()
    second = testnode("svc", mesh, port, "--pub", "svc.tick", "--count", 5,
                      "--every", 50, "--wait-subs", 1, timeout=1000)
    second_id = second.started()["id"]
    check(first_id != second_id, "restart reused the id")
    watcher.wait_for(lambda o: o.get("event") == "joined" and
                     o.get("id") == second_id, 10, "join of new incarnation")
    watcher.wait_for(lambda o: o.get("event") == "left" and
                     o.get("id") == first_id, 10, "leave of old incarnation")
    msgs = watcher.wait_count(lambda o: o.get("event") == "message" and
                              o["publisher_id"] == second_id, 5, 10)
    check([o["seq"] for o in msgs] == [1, 2, 3, 4, 5],
          "new incarnation's sequence must start again at 1")


def test_seed_only_discovery_with_gossip():
    mesh, port = unique_mesh(), random_port()
    hub = testnode("hub", mesh, port, "--discovery", "none")
    endpoint = hub.started()["endpoint"]
    a = testnode("a", mesh, port, "--discovery", "none", "--seed", endpoint,
                 "--sub", "b.>", "--pub", "a.x", "--count", 20, "--every",
                 30, "--wait-subs", 1)
    b = testnode("b", mesh, port, "--discovery", "none", "--seed", endpoint,
                 "--sub", "a.>", "--pub", "b.x", "--count", 20, "--every",
                 30, "--wait-subs", 1)
    a.started()
    b.started()
    # a and b know only the hub; they must find each other through gossip.
    a.wait_for(ev("joined", "b"), 10, "a learning b by gossip")
    b.wait_for(ev("joined", "a"), 10, "b learning a by gossip")
    a.wait_count(lambda o: o.get("event") == "message", 20, 15)
    b.wait_count(lambda o: o.get("event") == "message", 20, 15)
    stats_a = a.stop()
    check(stats_a == 0, "a exited with %s" % stats_a)
    check(not a.seen(lambda o: o.get("event") == "stats" and
                     o["beacons_received"] > 0),
          "beacons were heard with discovery off")


if __name__ == "__main__":
    run([test_bye_is_seen_at_once, test_exit_without_destroy_is_clean,
         test_silent_peer_expires_after_timeout,
         test_restart_is_a_new_incarnation,
         test_seed_only_discovery_with_gossip])
