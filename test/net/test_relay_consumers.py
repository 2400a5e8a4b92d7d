"""mesh-relay's durable consumers driven as a user would: the real daemon,
a real publisher (zmesh-testnode) and the real `mesh-tap request` sending
$relay.consume, $relay.next and $relay.ack (JSON payloads, so acks by
relay sequence) on loopback. A consumer is created, reads, acknowledges;
the relay is stopped with SIGTERM and then killed with -9, and each time
the consumer attaches again with its floor kept; start "new" and "seq";
conflicts and malformed requests get error answers; $relay.info lists
the consumers. A publisher with confirms (testnode --confirm) gets every
event confirmed by the relay that stores its topic, and none of the
topic no stream stores."""

import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from meshtest import (TAP, check, fail, random_port, run,  # noqa
                      run_tool, testnode, unique_mesh)
from test_relay import publisher, relay, wait_stored  # noqa: E402


def ask(mesh, port, topic, payload):
    """One request to the relay; returns the answer as JSON."""
    result = run_tool([TAP, "request", "--to", "mesh-relay", "--timeout", "10",
                       "--mesh", mesh, "--beacon-port", str(port), topic,
                       json.dumps(payload)], timeout=30)
    check(result.returncode == 0, "%s %r: exit %d: %s" %
          (topic, payload, result.returncode, result.stderr))
    try:
        return json.loads(result.stdout)
    except ValueError:
        fail("%s: answer is not JSON: %r" % (topic, result.stdout))


def rseqs(answer):
    return [e[0] for e in answer["events"]]


def consumers(mesh, port, stream):
    info = ask(mesh, port, "$relay.info", None)
    for s in info["streams"]:
        if s["name"] == stream:
            return {c["name"]: c for c in s["consumers"]}
    fail("no stream %s in $relay.info" % stream)


def test_consumer_survives_restarts():
    mesh = unique_mesh("relaycons")
    port = random_port()
    with tempfile.TemporaryDirectory() as tmp:
        args = ["--stream", "orders=orders.>", "--sync", "always"]
        node = relay(tmp, mesh, port, *args)
        pub = publisher(mesh, port, "shop", "orders.created", 20, 5)
        pub.wait_for(lambda o: o.get("event") == "published", 30,
                     "all published")
        wait_stored(mesh, port, "orders", 20, 15, "orders")
        pub.stop()

        a = ask(mesh, port, "$relay.consume",
                {"consumer": "billing", "pattern": "orders.>"})
        check(a.get("created") is True and a["floor"] == 0 and
              a["pending"] == 20 and a["stream"] == "orders" and
              a["last"] == 20, "create: %r" % a)
        a = ask(mesh, port, "$relay.next", {"consumer": "billing", "max": 5})
        check(rseqs(a) == [1, 2, 3, 4, 5] and a["next"] == 6 and
              all(e[4] == 1 for e in a["events"]), "next: %r" % a)
        a = ask(mesh, port, "$relay.ack",
                {"consumer": "billing", "acks": [1, 2, 3, 5]})
        check(a == {"floor": 3, "pending": 16}, "ack: %r" % a)

        # Errors: another filter, no stream covers, malformed.
        a = ask(mesh, port, "$relay.consume",
                {"consumer": "billing", "pattern": "orders.x"})
        check(a.get("code") == "conflict", "conflict: %r" % a)
        a = ask(mesh, port, "$relay.consume",
                {"consumer": "x", "pattern": "billing.>"})
        check(a.get("code") == "not_found", "not covered: %r" % a)
        a = ask(mesh, port, "$relay.next", {"consumer": "billing", "max": 0})
        check(a.get("code") == "bad_request", "bad max: %r" % a)
        a = ask(mesh, port, "$relay.ack", {"consumer": "nobody"})
        check(a.get("code") == "not_found", "unknown consumer: %r" % a)

        # A clean stop saves the state.
        check(node.stop() == 0, "relay exit code on SIGTERM")
        node = relay(tmp, mesh, port, *args)
        a = ask(mesh, port, "$relay.consume",
                {"consumer": "billing", "pattern": "orders.>",
                 "start": "new"})
        check(a.get("created") is False and a["floor"] == 3 and
              a["pending"] == 16, "attach after SIGTERM: %r" % a)
        a = ask(mesh, port, "$relay.next", {"consumer": "billing", "max": 3})
        check(rseqs(a) == [4, 6, 7] and a["events"][0][4] == 2,
              "next after restart (4 again, 5 acked): %r" % a)

        # Acks saved within 100 ms survive kill -9.
        a = ask(mesh, port, "$relay.ack",
                {"consumer": "billing", "acks": list(range(4, 18))})
        check(a["floor"] == 17 and a["pending"] == 3, "ack 4..17: %r" % a)
        time.sleep(0.5)
        node.kill9()
        node = relay(tmp, mesh, port, *args)
        a = ask(mesh, port, "$relay.consume",
                {"consumer": "billing", "pattern": "orders.>"})
        check(a["floor"] == 17, "attach after kill -9: %r" % a)

        # Start positions of new consumers.
        a = ask(mesh, port, "$relay.consume",
                {"consumer": "late", "pattern": "orders.>", "start": "new"})
        check(a["created"] is True and a["floor"] == 20 and
              a["pending"] == 0, "start new: %r" % a)
        a = ask(mesh, port, "$relay.consume",
                {"consumer": "mid", "pattern": "orders.created",
                 "start": "seq", "seq": 15, "max_deliver": 3})
        check(a["floor"] == 14 and a["pending"] == 6 and
              a["max_deliver"] == 3, "start seq: %r" % a)
        a = ask(mesh, port, "$relay.next", {"consumer": "mid"})
        check(rseqs(a) == list(range(15, 21)) and a["next"] == 21 and
              a["last"] == 20 and a.get("names", {}) != {},
              "mid next: %r" % a)

        listed = consumers(mesh, port, "orders")
        check(sorted(listed) == ["billing", "late", "mid"],
              "info consumers: %r" % listed)
        check(listed["billing"]["floor"] == 17 and
              listed["billing"]["lag"] == 3 and
              listed["mid"]["delivered"] == 6, "info: %r" % listed)
        check(node.stop() == 0, "relay exit code on SIGTERM")


def test_publisher_confirms():
    mesh, port = unique_mesh("relayconf"), random_port()
    with tempfile.TemporaryDirectory() as tmp:
        node = relay(tmp, mesh, port, "--stream", "orders=orders.>")
        pub = testnode("shop", mesh, port, "--pub", "orders.created",
                       "--count", 200, "--every", 2, "--wait-subs", 1,
                       "--confirm", run_ms=60000)
        pub.started()
        pub.wait_count(lambda o: o.get("event") == "confirm", 200, 30,
                       "confirms")
        confirms = [o for o in pub.seen()
                    if o.get("event") == "confirm"]
        check(sorted(o["seq"] for o in confirms) == list(range(1, 201)) and
              all(o["status"] == 0 for o in confirms),
              "confirms: %r" % [o for o in confirms if o["status"] != 0][:3])
        info = ask(mesh, port, "$relay.info", None)
        check(info["relay"]["confirmed"] >= 200, "confirmed: %r" %
              info["relay"])
        # Once the publisher's subscription to its confirm topic is in
        # effect at the relay, confirms go on the data plane; DIRECT
        # messages only until then.
        check(info["relay"]["confirms_data"] > 0 and
              info["relay"]["confirms_data"] >
              info["relay"]["confirms_direct"],
              "confirm messages: %r" % info["relay"])
        # Stored without the confirm flag: a read-back frame is canonical
        # (what test_relay.py checks of every frame holds here too).
        read = ask(mesh, port, "$relay.read",
                   {"stream": "orders", "max": 1})
        check(len(read["events"]) == 1 and len(read["events"][0]) == 3,
              "read: %r" % read)
        pub.stop()
        check(node.stop() == 0, "relay exit code on SIGTERM")


def test_confirms_only_from_relays():
    # A peer that is no relay sends a well-formed $relay.confirm: the
    # publisher must not take it (proto/relay.md#relay-confirm), and its
    # events time out instead.
    mesh, port = unique_mesh("relayforge"), random_port()
    pub = testnode("shop", mesh, port, "--pub", "orders.created", "--count",
                   3, "--every", 10, "--confirm", "--confirm-timeout", 3000,
                   run_ms=20000)
    pub.started()
    pub.wait_for(lambda o: o.get("event") == "published", 10, "published")
    pub_id = pub.wait_for(lambda o: o.get("event") == "started", 1,
                          "start")["id"]
    sent = run_tool([TAP, "send", "--mesh", mesh, "--beacon-port", str(port),
                     pub_id, "$relay.confirm",
                     '{"ok": [["orders.created", 1, 3]]}'])
    check(sent.returncode == 0, "mesh-tap send: %s" % sent.stderr)
    pub.wait_count(lambda o: o.get("event") == "confirm", 3, 10, "outcomes")
    got = [o for o in pub.seen() if o.get("event") == "confirm"]
    check(all(o["status"] != 0 for o in got),
          "a non-relay confirmed: %r" % got)
    pub.stop()
    stats = pub.wait_for(lambda o: o.get("event") == "stats", 5, "stats")
    check(stats["frames_rejected"] >= 1, "stats %s" % stats)


if __name__ == "__main__":
    run([test_consumer_survives_restarts, test_publisher_confirms,
         test_confirms_only_from_relays])
