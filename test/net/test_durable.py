"""Durable consumers and publisher confirms, end to end with the real
mesh-relay and agents as separate processes (proto/relay.md
#publisher-confirms, #durable-consumers). A durable consumer gets every
event published while it was away, in order, then live ones, never one
twice at the application; a confirmed event is stored, across kill -9 of
the relay; without a relay a confirm times out, said so."""

import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from meshtest import check, random_port, run, testnode, unique_mesh  # noqa
from test_relay import messages, read_all, relay  # noqa: E402


def numbers(node, consumer=None):
    """The payload numbers of the messages a node printed, in order."""
    return [o["payload"]["n"] for o in node.seen(
        lambda o: o.get("event") == "message" and
        (consumer is None or o.get("consumer") == consumer))]


def confirms(node):
    return node.seen(lambda o: o.get("event") == "confirm")


def confirmed_publisher(mesh, port, count, *args):
    """'shop' publishes orders.new 1..count with confirms, every 2 ms, and
    gets every confirm (its outcome is for the caller to check)."""
    pub = testnode("shop", mesh, port, "--pub", "orders.new", "--count",
                   count, "--every", 2, "--wait-subs", 1, "--confirm", *args)
    pub.started()
    pub.wait_count(lambda o: o.get("event") == "confirm", count, 15,
                   "confirms")
    return pub


def consumer(name, mesh, port, pattern, *args, run_ms=30000):
    node = testnode(name, mesh, port, "--durable", "%s=%s" % (name, pattern),
                    *args, run_ms=run_ms)
    node.started()
    return node


def test_confirmed_publishes_are_stored_and_said_so():
    mesh, port = unique_mesh(), random_port()
    with tempfile.TemporaryDirectory() as tmp:
        r = relay(tmp, mesh, port, "--stream", "orders=orders.>")
        pub = confirmed_publisher(mesh, port, 50)
        got = confirms(pub)
        check(all(o["status"] == 0 for o in got), "failed confirms: %s" %
              [o for o in got if o["status"] != 0][:3])
        check(sorted(o["seq"] for o in got) == list(range(1, 51)),
              "confirmed sequences %s" % sorted(o["seq"] for o in got))
        pub.stop()
        stats = pub.wait_for(lambda o: o.get("event") == "stats", 5, "stats")
        check(stats["confirms_ok"] == 50 and stats["confirms_failed"] == 0,
              "stats %s" % stats)
        r.stop()


def test_every_confirm_is_reported_to_an_application_that_reads_late():
    # 20000 confirmed publishes before the application receives anything:
    # each still gets its one CONFIRM (zmesh.h), however many wait.
    mesh, port = unique_mesh(), random_port()
    with tempfile.TemporaryDirectory() as tmp:
        r = relay(tmp, mesh, port, "--stream", "orders=orders.>")
        pub = testnode("bulk", mesh, port, "--pub", "orders.new", "--count",
                       20000, "--every", 0, "--batch", 20000, "--wait-subs",
                       1, "--confirm")
        pub.started()
        pub.wait_count(lambda o: o.get("event") == "confirm", 20000, 40,
                       "confirms")
        got = confirms(pub)
        check(sorted(o["seq"] for o in got) == list(range(1, 20001)) and
              all(o["status"] == 0 for o in got),
              "%d confirms, %d failed" %
              (len(got), sum(o["status"] != 0 for o in got)))
        pub.stop()
        stats = pub.wait_for(lambda o: o.get("event") == "stats", 5, "stats")
        check(stats["confirms_ok"] == 20000, "stats %s" % stats)
        r.stop()


def test_confirm_without_relay_times_out_with_a_reason():
    mesh, port = unique_mesh(), random_port()
    sub = testnode("listener", mesh, port, "--sub", "orders.>")
    sub.started()
    pub = testnode("shop", mesh, port, "--pub", "orders.new", "--count", 3,
                   "--every", 10, "--wait-subs", 1, "--confirm",
                   "--confirm-timeout", 1500)
    pub.started()
    pub.wait_count(lambda o: o.get("event") == "confirm", 3, 10, "timeouts")
    got = confirms(pub)
    check(all(o["status"] != 0 and "no relay" in o["reason"] for o in got),
          "expected timeouts naming the missing relay: %s" % got)
    # The events themselves still went out live.
    sub.wait_count(lambda o: o.get("event") == "message", 3, 5, "messages")
    pub.stop()
    sub.stop()


def test_events_read_back_name_their_departed_publisher():
    mesh, port = unique_mesh(), random_port()
    with tempfile.TemporaryDirectory() as tmp:
        r = relay(tmp, mesh, port, "--stream", "orders=orders.>")
        pub = confirmed_publisher(mesh, port, 5)
        pub.stop()
        pub.wait_for(lambda o: o.get("event") == "exit", 5, "exit")
        # A consumer that never met the publisher: who published each
        # event is what the relay knew (the names of $relay.next).
        c = consumer("audit", mesh, port, "orders.>")
        c.wait_count(lambda o: o.get("event") == "message", 5, 15,
                     "the stored events")
        got = c.seen(lambda o: o.get("event") == "message")
        check([o["publisher"] for o in got] == ["shop"] * 5,
              "publishers %s" % [o.get("publisher") for o in got])
        c.stop()
        r.stop()


def test_consumer_catches_up_then_goes_live_without_duplicates():
    mesh, port = unique_mesh(), random_port()
    with tempfile.TemporaryDirectory() as tmp:
        r = relay(tmp, mesh, port, "--stream", "orders=orders.>")
        # The consumer attaches once, reads a little, and leaves.
        c1 = consumer("billing", mesh, port, "orders.>")
        pub = testnode("shop", mesh, port, "--pub", "orders.new", "--count",
                       400, "--every", 5, "--wait-subs", 1, "--confirm",
                       run_ms=60000)
        pub.started()
        c1.wait_count(lambda o: o.get("event") == "message", 20, 15,
                      "first messages")
        c1.stop()
        first_run = numbers(c1, "billing")
        check(first_run == list(range(1, len(first_run) + 1)),
              "first run out of order: %s" % first_run[:30])
        # While it is away the publisher goes on; it comes back mid-stream,
        # catches up from the relay and switches to live.
        time.sleep(0.5)
        c2 = consumer("billing", mesh, port, "orders.>")
        c2.wait_for(lambda o: o.get("event") == "message" and
                    o["payload"]["n"] == 400, 40, "the last event")
        second_run = numbers(c2, "billing")
        everything = first_run + second_run
        check(everything == list(range(1, 401)),
              "not every event exactly once in order: first run ended at "
              "%s, second run starts %s, %d in all" %
              (first_run[-1:], second_run[:5], len(everything)))
        from_relay = [o for o in c2.seen(lambda o: o.get("event") ==
                                         "message") if o.get("rseq")]
        live = [o for o in c2.seen(lambda o: o.get("event") == "message")
                if not o.get("rseq")]
        check(from_relay and live, "expected both relay (%d) and live (%d) "
              "events" % (len(from_relay), len(live)))
        c2.stop()
        pub.stop()
        r.stop()


def test_unacknowledged_events_come_again():
    mesh, port = unique_mesh(), random_port()
    with tempfile.TemporaryDirectory() as tmp:
        r = relay(tmp, mesh, port, "--stream", "jobs=jobs.>")
        pub = testnode("boss", mesh, port, "--pub", "jobs.x", "--count", 5,
                       "--every", 20, "--wait-subs", 1, "--confirm")
        pub.started()
        pub.wait_count(lambda o: o.get("event") == "confirm", 5, 10,
                       "confirms")
        # Leaves the first two unacknowledged: they come again after the
        # ack wait, marked, and then max_deliver 2 drops them.
        w = consumer("worker", mesh, port, "jobs.>", "--skip-acks", 2,
                     "--ack-wait", 500, "--max-deliver", 2, "--no-ack")
        w.wait_for(lambda o: o.get("event") == "message" and
                   o.get("redelivered"), 10, "a redelivery")
        time.sleep(1.5)
        w.stop()
        stats = w.wait_for(lambda o: o.get("event") == "stats", 5, "stats")
        check(stats["durable_redelivered"] >= 5 and
              stats["durable_terminated"] == 5,
              "every unacknowledged event delivered twice then dropped: %s" %
              stats)
        redelivered = w.seen(lambda o: o.get("event") == "message" and
                             o.get("redelivered"))
        check(all(o["deliveries"] == 2 for o in redelivered),
              "deliveries %s" % [o["deliveries"] for o in redelivered])
        pub.stop()
        r.stop()


def test_relay_killed_in_a_loop_loses_no_confirmed_event():
    mesh, port = unique_mesh(), random_port()
    with tempfile.TemporaryDirectory() as tmp:
        args = ("--stream", "pay=pay.>", "--sync", "always")
        r = relay(tmp, mesh, port, *args)
        c = consumer("ledger", mesh, port, "pay.>", run_ms=90000)
        total = 300
        pub = testnode("bank", mesh, port, "--pub", "pay.in", "--count",
                       total, "--every", 10, "--wait-subs", 1, "--confirm",
                       "--confirm-timeout", 30000, run_ms=90000)
        pub.started()
        # kill -9 the relay three times while both run.
        for round in range(3):
            time.sleep(0.7)
            r.kill9()
            time.sleep(0.3)
            r = relay(tmp, mesh, port, *args)
        pub.wait_count(lambda o: o.get("event") == "confirm", total, 60,
                       "a confirm for every event")
        got = confirms(pub)
        check(all(o["status"] == 0 for o in got), "failed: %s" %
              [o for o in got if o["status"] != 0][:3])
        c.wait_for(lambda o: o.get("event") == "message" and
                   o["payload"]["n"] == total, 40, "the last event")
        seen = numbers(c, "ledger")
        check(seen == list(range(1, total + 1)),
              "the consumer's events are not 1..%d once each in order: "
              "%d events, first wrong at %s" %
              (total, len(seen),
               next((i for i, n in enumerate(seen) if n != i + 1), None)))
        c.stop()
        pub.stop()
        # Stored exactly once: the stream read back holds each once.
        records, _ = read_all(mesh, port, "pay")
        stored = [o["seq"] for o in messages(records)
                  if o.get("topic") == "pay.in"]
        check(stored == list(range(1, total + 1)),
              "the stream holds %d events of pay.in, duplicates %s, "
              "missing %s" % (len(stored),
                              sorted({n for n in stored
                                      if stored.count(n) > 1})[:5],
                              sorted(set(range(1, total + 1)) -
                                     set(stored))[:5]))
        r.stop()


def test_consumer_restarted_many_times_sees_each_event_once():
    mesh, port = unique_mesh(), random_port()
    with tempfile.TemporaryDirectory() as tmp:
        r = relay(tmp, mesh, port, "--stream", "feed=feed.>")
        total = 200
        pub = testnode("news", mesh, port, "--pub", "feed.a", "--count",
                       total, "--every", 15, "--wait-subs", 1, "--confirm",
                       run_ms=60000)
        pub.started()
        seen = []
        # Short runs, each stopped (SIGTERM) mid-stream, until one has
        # the last event.
        for round in range(40):
            c = consumer("reader", mesh, port, "feed.>", run_ms=30000)
            if round < 6:
                time.sleep(0.4)
            else:
                c.wait_for(lambda o: o.get("event") == "message" and
                           o["payload"]["n"] == total, 30, "the last event")
            c.stop()
            seen += numbers(c, "reader")
            if total in seen:
                break
        check(round >= 3, "the publisher was done before the restarts")
        check(seen == list(range(1, total + 1)),
              "across restarts: %d events, duplicates %s, missing %s" %
              (len(seen), sorted({n for n in seen if seen.count(n) > 1})[:5],
               sorted(set(range(1, total + 1)) - set(seen))[:5]))
        pub.stop()
        r.stop()


if __name__ == "__main__":
    run([test_confirmed_publishes_are_stored_and_said_so,
         test_every_confirm_is_reported_to_an_application_that_reads_late,
         test_confirm_without_relay_times_out_with_a_reason,
         test_events_read_back_name_their_departed_publisher,
         test_consumer_catches_up_then_goes_live_without_duplicates,
         test_unacknowledged_events_come_again,
         test_relay_killed_in_a_loop_loses_no_confirmed_event,
         test_consumer_restarted_many_times_sees_each_event_once])
