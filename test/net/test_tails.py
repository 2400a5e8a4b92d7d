"""Loss at the very end of a stream is not silent either. A publisher sends
a burst and then nothing more on that topic; a subscriber that stalls
through the burst (tiny high-water marks) loses its end. Only a later
event would show that loss, and none comes: the publisher's tail frames
(proto/wire.md#tail-frame), 0.1, 1 and 10 s after the stream's last
event, say where it ends, so the subscriber repairs the end, or reports it
as a gap when it cannot. Every sequence number the publisher sent is
accounted for: delivered, or reported missing."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from meshtest import check, run  # noqa: E402
from test_gaps import (BURST, NoOverrun, account, burst,  # noqa: E402
                       finish, with_overrun)

# The tails at 0.1 and 1 s reach a subscriber that is still stalled (4 s)
# no better than the burst's end did; the one at 10 s does.
TAIL_WAIT = 20
# Events big enough that the burst overflows the kernel's socket buffers
# as well as ZeroMQ's queues, so that its end is what gets lost.
PAD = ("--pad", 300)


def test_end_of_a_burst_is_repaired():
    with_overrun(_end_repaired)


def _end_repaired(mesh, port):
    sub, pub = burst(mesh, port, sub_args=("--repair-timeout", 10000),
                     pub_args=PAD, final=False)
    sub.wait_for(lambda o: o.get("event") == "message" and o["seq"] == BURST,
                 TAIL_WAIT, "the burst's last event")
    first, last, gaps, repaired = account(sub.seen(), "burst.x", "fast")
    check((first, last, gaps) == (1, BURST, 0),
          "accounted %d..%d with %d gaps" % (first, last, gaps))
    stats = finish(sub)
    if stats["tail_gaps"] == 0:
        # The stall ended before the burst did, so later events showed
        # every loss: nothing was left for a tail frame to show.
        raise NoOverrun()
    check(repaired > 0 and stats["events_repaired"] == repaired and
          stats["duplicates_dropped"] == 0, "stats: %s" % stats)
    pub.stop()
    sent = pub.wait_for(lambda o: o.get("event") == "stats", 5, "stats")
    check(sent["tails_sent"] >= 1, "publisher stats: %s" % sent)


def test_end_of_a_burst_is_reported_without_repair():
    with_overrun(_end_reported)


def _end_reported(mesh, port):
    sub, pub = burst(mesh, port, sub_args=("--repair-timeout", 0),
                     pub_args=PAD, final=False)
    end = sub.wait_for(lambda o: o.get("event") in ("gap", "message") and
                       o.get("last", o.get("seq")) == BURST, TAIL_WAIT,
                       "a gap that ends the stream")
    stats = finish(sub)
    if end["event"] == "message":
        raise NoOverrun()  # the end of the burst came: nothing to report
    first, last, gaps, repaired = account(sub.seen(), "burst.x", "fast")
    check((first, last) == (1, BURST) and repaired == 0,
          "accounted %d..%d, %d repaired" % (first, last, repaired))
    missing = sum(o["last"] - o["first"] + 1 for o in sub.seen()
                  if o.get("event") == "gap")
    check(stats["tail_gaps"] == 1 and stats["gaps"] == gaps and
          stats["events_missing"] == missing and
          stats["received"] + missing == BURST,
          "delivered %d + missing %d of %d: %s" %
          (stats["received"], missing, BURST, stats))


if __name__ == "__main__":
    run([test_end_of_a_burst_is_repaired,
         test_end_of_a_burst_is_reported_without_repair])
