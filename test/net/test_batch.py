"""Batch frames (proto/wire.md#batch-frame) and tail frames
(proto/wire.md#tail-frame) on the wire, seen by a subscriber that reads
the data plane itself (zmesh-oldpeer): a publisher batches a burst for
agents that read batches, and sends every event in a frame of its own
while an agent that does not (its HELLO has no `batch`) has joined. Either
way every event arrives, once and in order. Likewise a quiet stream's
tail frame goes out only while every joined agent reads them (`tail`)."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from meshtest import check, random_port, run, run_tool, testnode  # noqa: E402
from meshtest import unique_mesh  # noqa: E402
from test_gaps import (TINY_QUEUES, NoOverrun, account, finish,  # noqa: E402
                       with_overrun)

OLDPEER = os.environ.get("ZMESH_OLDPEER", "zmesh-oldpeer")
# Under ZeroMQ's high-water mark of 1000 frames: zmesh-oldpeer does not
# repair, and one frame per event must not overrun it.
COUNT = 800


def burst_to(batch, pad=0, tail=0, after_ms=0):
    """Publishes COUNT events (with `pad` bytes more each) in one burst to
    a hand-made subscriber that says it reads batch frames of up to
    `batch` bytes (0: none) and tail frames (`tail` 1) or not, and reads
    on for `after_ms` after the last event; returns what the subscriber
    read and the publisher's counters."""
    mesh, port = unique_mesh(), random_port()
    pub = testnode("pub", mesh, port, "--pub", "batch.x", "--count", COUNT,
                   "--every", 0, "--batch", COUNT, "--pad", pad,
                   "--wait-subs", 1, run_ms=20000)
    endpoint = pub.started()["endpoint"]
    result = run_tool([OLDPEER, "--mesh", mesh, "--target", endpoint,
                       "--topic", "batch.x", "--count", str(COUNT),
                       "--batch", str(batch), "--tail", str(tail),
                       "--after-ms", str(after_ms), "--timeout-ms", "15000"],
                      timeout=30)
    check(result.returncode == 0, "oldpeer failed: %s" % result.stderr)
    got = json.loads(result.stdout.strip().splitlines()[-1])
    pub.stop()
    stats = pub.wait_for(lambda o: o.get("event") == "stats", 5, "stats")
    return got, stats


def test_an_agent_that_reads_batches_gets_them():
    # It reads tail frames too: the stream's, 0.1 s after the burst.
    got, stats = burst_to(1 << 20, tail=1, after_ms=1500)
    check(got["events"] == COUNT and got["in_order"] and got["bad"] == 0,
          "events lost, repeated or out of order: %s" % got)
    check(got["batches"] > 0 and stats["batches_sent"] > 0,
          "a burst of %d went out without batches: %s, %s" %
          (COUNT, got, stats))
    check(stats["events_batched"] + got["singles"] == COUNT,
          "the publisher counts %d batched events, the subscriber saw %d "
          "single frames of %d" % (stats["events_batched"], got["singles"],
                                   COUNT))
    check(got["tails"] >= 1 and got["tail_last"] == COUNT and
          stats["tails_sent"] >= got["tails"],
          "the quiet stream's tail frame: %s, %s" % (got, stats))


def test_an_agent_that_predates_batches_gets_single_frames():
    # Nor tail frames, which it would take for events.
    got, stats = burst_to(0, after_ms=1500)
    check(got["events"] == COUNT and got["in_order"] and got["bad"] == 0,
          "events lost, repeated or out of order: %s" % got)
    check(got["batches"] == 0 and got["singles"] == COUNT,
          "a subscriber without batch frames got some: %s" % got)
    check(stats["batches_sent"] == 0 and stats["events_batched"] == 0,
          "the publisher batched with an old agent joined: %s" % stats)
    check(got["tails"] == 0 and stats["tails_sent"] == 0,
          "tail frames with an old agent joined: %s, %s" % (got, stats))


def test_batches_fit_the_smallest_reader():
    # 1000-byte events, read by an agent whose largest frame is 4096 bytes
    # (the least an agent may set): batches of three, never one too big
    # (libzmq would drop the connection, and the tail of the burst).
    got, stats = burst_to(4096, pad=1000)
    check(got["events"] == COUNT and got["in_order"] and got["bad"] == 0,
          "events lost, repeated or out of order: %s" % got)
    check(got["batches"] > 0 and got["largest"] <= 4096,
          "batch frames missing or over the reader's limit: %s" % got)
    # A reader below the least limit reads none.
    got, stats = burst_to(4095)
    check(got["batches"] == 0 and got["events"] == COUNT,
          "batch frames for a reader of 4095 bytes: %s" % got)


def test_lost_batches_are_repaired_in_order():
    with_overrun(_lost_batches_are_repaired)


def _lost_batches_are_repaired(mesh, port):
    # A burst published in a tight loop goes out in batch frames, and the
    # subscriber stalls with tiny queues, so ZeroMQ drops whole batches.
    # Every lost event comes again (served as a frame of its own), in
    # order, once. The buffer holds the whole burst, and the final event
    # comes after the stall, so nothing may be missing at all.
    burst = 100000
    sub = testnode("slow", mesh, port, "--sub", "burst.>", "--stall-ms", 3000,
                   "--repair-timeout", 10000, run_ms=45000, env=TINY_QUEUES)
    sub.started()
    pub = testnode("fast", mesh, port, "--pub", "burst.x", "--count", burst,
                   "--every", 0, "--batch", burst, "--pad", 100,
                   "--retransmit", 64 << 20, "--wait-subs", 1,
                   "--final-after", 5000, run_ms=45000, env=TINY_QUEUES)
    pub.started()
    sub.wait_for(lambda o: o.get("event") == "message" and
                 o["seq"] == burst + 1, 40, "the final event")
    first, last, gaps, repaired = account(sub.seen(), "burst.x", "fast")
    check((first, last, gaps) == (1, burst + 1, 0),
          "accounted %d..%d with %d gaps" % (first, last, gaps))
    if repaired == 0:
        raise NoOverrun()
    pub.stop()
    sent = pub.wait_for(lambda o: o.get("event") == "stats", 5, "stats")
    check(sent["batches_sent"] > 0, "no batch frames: %s" % sent)
    stats = finish(sub)
    check(stats["events_repaired"] == repaired and
          stats["duplicates_dropped"] == 0 and stats["frames_rejected"] == 0,
          "stats: %s" % stats)


if __name__ == "__main__":
    run([test_an_agent_that_reads_batches_gets_them,
         test_an_agent_that_predates_batches_gets_single_frames,
         test_batches_fit_the_smallest_reader,
         test_lost_batches_are_repaired_in_order])
