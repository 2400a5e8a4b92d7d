"""Hostile input: malformed beacons, control messages, event frames, an
oversized frame and raw TCP junk thrown at a running agent. Each bad thing
must be dropped and counted exactly, the good events among them delivered
exactly once and in order, and the agent must go on serving other peers."""

import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from meshtest import (check, random_port, run, run_tool,  # noqa: E402
                      testnode, unique_mesh)

GARBAGE = os.environ.get("ZMESH_GARBAGE", "zmesh-garbage")


def is_msg(topic):
    return lambda o: o.get("event") == "message" and o["topic"] == topic


def raw_tcp_junk(endpoint):
    host, port = endpoint[len("tcp://"):].rsplit(":", 1)
    for junk in (b"\x00" * 64, b"GET / HTTP/1.0\r\n\r\n", os.urandom(300)):
        with socket.create_connection((host, int(port)), timeout=2) as s:
            s.sendall(junk)


def test_garbage_is_dropped_counted_and_survived():
    mesh, port = unique_mesh(), random_port()
    victim = testnode("victim", mesh, port, "--sub", ">", run_ms=20000)
    endpoint = victim.started()["endpoint"]
    raw_tcp_junk(endpoint)
    result = run_tool([GARBAGE, "--mesh", mesh, "--beacon-port", str(port),
                       "--target", endpoint, "--valid", "10"], timeout=30)
    check(result.returncode == 0, "garbage tool failed: %s" % result.stderr)
    sent = __import__("json").loads(result.stdout.strip().splitlines()[-1])

    got = victim.wait_count(is_msg("evil.ok"), 10, 10, "valid events")
    check([o["seq"] for o in got] == list(range(1, 11)),
          "valid events not delivered exactly once in order: %s" %
          [o["seq"] for o in got])
    check(all(o["payload"] == {"ok": True} for o in got), "payload changed")

    # Still serving: a well-behaved peer's events get through.
    good = testnode("good", mesh, port, "--pub", "good.x", "--count", 5,
                    "--every", 20, "--wait-subs", 1)
    good.started()
    victim.wait_count(is_msg("good.x"), 5, 10, "events after the garbage")

    victim.stop()
    stats = victim.wait_for(lambda o: o.get("event") == "stats", 5, "stats")
    check(stats["frames_rejected"] == sent["bad_frames"],
          "frames rejected %d, sent %d bad" %
          (stats["frames_rejected"], sent["bad_frames"]))
    # Raw TCP junk that happens to parse as old ZMTP framing may add a
    # malformed control message or two of its own.
    check(stats["control_rejected"] >= sent["bad_control"],
          "control rejected %d, sent %d bad" %
          (stats["control_rejected"], sent["bad_control"]))
    check(stats["data_reconnects"] >= 1,
          "the oversized frame's dropped connection was not remade")
    check(stats["beacons_rejected"] == sent["bad_beacons"],
          "beacons rejected %d, sent %d bad" %
          (stats["beacons_rejected"], sent["bad_beacons"]))
    check(stats["beacons_foreign"] >= sent["foreign_beacons"],
          "foreign beacons %d < %d" % (stats["beacons_foreign"],
                                       sent["foreign_beacons"]))
    bad = [o for o in victim.seen(lambda o: o.get("event") == "message")
           if o["topic"] not in ("evil.ok", "good.x")]
    check(not bad, "malformed events reached the application: %s" % bad[:3])


def test_forged_beacon_flood_is_bounded():
    # 2000 made-up agents announce themselves; each taken would cost a
    # socket. The agent takes what its cap allows, counts the rest, and
    # keeps serving its real peers.
    mesh, port = unique_mesh(), random_port()
    victim = testnode("victim", mesh, port, "--sub", "real.>", run_ms=20000)
    endpoint = victim.started()["endpoint"]
    result = run_tool([GARBAGE, "--mesh", mesh, "--beacon-port", str(port),
                       "--target", endpoint, "--forge", "2000"], timeout=30)
    check(result.returncode == 0, "garbage tool failed: %s" % result.stderr)
    good = testnode("real", mesh, port, "--pub", "real.x", "--count", 5,
                    "--every", 20, "--wait-subs", 1)
    good.started()
    # Well within the 5 s it takes forged pending peers to expire: the
    # flood must not keep a real peer out until then.
    victim.wait_count(is_msg("real.x"), 5, 4, "events beside the flood")
    victim.stop()
    stats = victim.wait_for(lambda o: o.get("event") == "stats", 5, "stats")
    # UDP may drop some of the flood; of the beacons that arrived, all
    # beyond the cap of 256 pending peers must have been refused and
    # counted. The real peer's own beacons (one every 100 ms) are in
    # beacons_received too: a margin of 50 covers them.
    # Beyond the cap plus that margin is enough to prove the cap holds.
    check(stats["beacons_received"] > 256 + 50 + 40,
          "too few forged beacons arrived to test the cap: %s" % stats)
    check(stats["control_rejected"] >= stats["beacons_received"] - 256 - 50,
          "forged peers beyond the cap not counted: %s" % stats)


if __name__ == "__main__":
    run([test_garbage_is_dropped_counted_and_survived,
         test_forged_beacon_flood_is_bounded])
