"""Point-to-point: requests answered by one subscriber of a topic (spread
over several), by a named peer, timeouts, nobody to ask, a responder that
leaves before answering, a requester that leaves before its reply (the
reply is dropped and counted), and direct messages, each with its failure
said out loud."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from meshtest import check, random_port, run, testnode, unique_mesh  # noqa


def is_(kind):
    return lambda o: o.get("event") == kind


def finish(node):
    node.stop()
    return node.wait_for(is_("stats"), 5, "stats")


def test_request_reply():
    mesh, port = unique_mesh(), random_port()
    echo = testnode("echo", mesh, port, "--serve", "svc.echo", "--respond")
    echo.started()
    asker = testnode("asker", mesh, port, "--request", "svc.echo", "--count",
                     5, "--every", 10)
    asker.started()
    replies = asker.wait_count(is_("reply"), 5, 10, "five replies")
    asked = [o["req"] for o in asker.seen() if o.get("event") == "requested"]
    check(all(o["rc"] == 0 for o in asker.seen()
              if o.get("event") == "requested"), "a request failed")
    check(sorted(o["req"] for o in replies) == sorted(asked),
          "replies %s to requests %s" % (replies, asked))
    for o in replies:
        check(o["status"] == 0 and o["peer"] == "echo", "reply %s" % o)
        # The echo returns the request's payload: its number n.
        check(o["payload"]["from"] == "asker", "payload %s" % o)
    check(sorted(o["payload"]["n"] for o in replies) == [1, 2, 3, 4, 5],
          "each request answered once")
    requests = [o for o in echo.seen() if o.get("event") == "request"]
    check(len(requests) == 5 and all(o["peer"] == "asker" and
                                     o["topic"] == "svc.echo"
                                     for o in requests), "%s" % requests)
    stats = finish(asker)
    check(stats["directs_sent"] == 5 and stats["replies_received"] == 5,
          "stats %s" % stats)


def test_requests_spread_over_responders():
    mesh, port = unique_mesh(), random_port()
    workers = [testnode("worker%d" % i, mesh, port, "--serve", "svc.work",
                        "--respond") for i in range(2)]
    for w in workers:
        w.started()
    boss = testnode("boss", mesh, port, "--request", "svc.work", "--count",
                    10, "--every", 5, "--wait-subs", 1)
    boss.started()
    # Both workers known before the requests go out.
    for w in workers:
        w.wait_for(lambda o: o.get("event") == "joined" and
                   o["peer"] == "boss", 5, "boss joined")
    boss.wait_count(is_("reply"), 10, 10, "ten replies")
    served = [len([o for o in w.seen() if o.get("event") == "request"])
              for w in workers]
    check(sum(served) == 10, "served %s" % served)
    check(min(served) >= 1, "one worker got none: %s" % served)


def test_request_to_a_named_peer():
    mesh, port = unique_mesh(), random_port()
    a = testnode("alpha", mesh, port, "--serve", "svc.x", "--respond")
    b = testnode("beta", mesh, port, "--serve", "svc.x", "--respond")
    a.started()
    b.started()
    asker = testnode("asker", mesh, port, "--request", "svc.x", "--to",
                     "beta", "--count", 4, "--every", 5)
    asker.started()
    replies = asker.wait_count(is_("reply"), 4, 10, "four replies")
    check(all(o["peer"] == "beta" for o in replies), "%s" % replies)
    check(not any(o.get("event") == "request" for o in a.seen()),
          "alpha was asked")


def test_request_timeout_and_nobody_to_ask():
    mesh, port = unique_mesh(), random_port()
    # It serves the topic but never answers.
    mute = testnode("mute", mesh, port, "--serve", "svc.mute")
    mute.started()
    asker = testnode("asker", mesh, port, "--request", "svc.mute", "--count",
                     2, "--every", 5, "--request-timeout", 300)
    asker.started()
    replies = asker.wait_count(is_("reply"), 2, 10, "two outcomes")
    # zmesh.h: ZMESH_ETIMEDOUT = -4
    check(all(o["status"] == -4 for o in replies), "%s" % replies)
    stats = finish(asker)
    check(stats["requests_timed_out"] == 2, "stats %s" % stats)
    # Nobody wants svc.none: refused at once with ZMESH_ENOTFOUND (-11),
    # and no reply event follows.
    lonely = testnode("lonely", mesh, port, "--request", "svc.none",
                      "--count", 1, "--wait-subs", 0, run_ms=2000)
    lonely.started()
    asked = lonely.wait_for(is_("requested"), 5, "the request")
    check(asked["rc"] == -11, "%s" % asked)
    lonely.wait_for(is_("exit"), 5, "exit")
    check(not any(o.get("event") == "reply" for o in lonely.seen()),
          "a reply to a request never sent")


def test_responder_leaves_before_answering():
    mesh, port = unique_mesh(), random_port()
    quitter = testnode("quitter", mesh, port, "--serve", "svc.q",
                       run_ms=1500)
    quitter.started()
    asker = testnode("asker", mesh, port, "--request", "svc.q", "--count", 1,
                     "--request-timeout", 20000)
    asker.started()
    reply = asker.wait_for(is_("reply"), 10, "the outcome")
    # ZMESH_EGONE = -16, as soon as it leaves, not after 20 s, naming it.
    check(reply["status"] == -16 and reply["peer"] == "quitter",
          "%s" % reply)


def test_reply_to_a_requester_that_left():
    mesh, port = unique_mesh(), random_port()
    slow = testnode("slow", mesh, port, "--serve", "svc.slow", "--respond",
                    "--reply-delay", 800)
    slow.started()
    asker = testnode("asker", mesh, port, "--request", "svc.slow", "--count",
                     1, "--exit-when-done")
    asker.started()
    asker.wait_for(is_("exit"), 10, "the asker's exit")
    replied = slow.wait_for(is_("replied"), 10, "the late reply")
    check(replied["rc"] == -16, "%s" % replied)
    stats = finish(slow)
    check(stats["replies_dropped"] == 1, "stats %s" % stats)


def test_subscribers_are_not_asked():
    mesh, port = unique_mesh(), random_port()
    # A plain subscriber of everything (like mesh-tap) and a server.
    watcher = testnode("watcher", mesh, port, "--sub", ">")
    watcher.started()
    server = testnode("server", mesh, port, "--serve", "svc.a", "--respond")
    server.started()
    asker = testnode("asker", mesh, port, "--request", "svc.a", "--count",
                     6, "--every", 5)
    asker.started()
    replies = asker.wait_count(is_("reply"), 6, 10, "six replies")
    check(all(o["status"] == 0 and o["peer"] == "server" for o in replies),
          "%s" % replies)
    check(not any(o.get("event") == "request" for o in watcher.seen()),
          "a plain subscriber was asked")
    # Asked by name, an agent that does not serve the topic refuses at
    # once: ZMESH_ENOTFOUND (-11), naming it.
    named = testnode("named", mesh, port, "--request", "svc.a", "--to",
                     "watcher", "--count", 1, "--request-timeout", 20000)
    named.started()
    reply = named.wait_for(is_("reply"), 5, "the refusal")
    check(reply["status"] == -11 and reply["peer"] == "watcher",
          "%s" % reply)
    watcher.stop()
    stats = watcher.wait_for(is_("stats"), 5, "stats")
    check(stats["requests_refused"] == 1, "stats %s" % stats)


def test_direct_messages():
    mesh, port = unique_mesh(), random_port()
    inbox = testnode("inbox", mesh, port)
    inbox.started()
    sender = testnode("sender", mesh, port, "--send", "inbox", "--pub",
                      "note.x", "--count", 3, "--every", 5, "--wait-subs", 1)
    sender.started()
    notes = inbox.wait_count(is_("direct"), 3, 10, "three notes")
    check([o["payload"]["n"] for o in notes] == [1, 2, 3], "%s" % notes)
    check(all(o["topic"] == "note.x" and o["peer"] == "sender" and
              o["req"] == 0 for o in notes), "%s" % notes)
    # An unknown peer: ZMESH_ENOTFOUND at once.
    stray = testnode("stray", mesh, port, "--send", "nobody", "--pub",
                     "note.x", "--count", 1, "--wait-subs", 0, run_ms=1500)
    stray.started()
    sent = stray.wait_for(is_("sent"), 5, "the attempt")
    check(sent["rc"] == -11, "%s" % sent)


def test_stats_query_shows_another_agents_counters():
    mesh, port = unique_mesh(), random_port()
    sub = testnode("sink", mesh, port, "--sub", "feed.>")
    sub.started()
    pub = testnode("feed", mesh, port, "--pub", "feed.a", "--count", 50,
                   "--every", 1, "--wait-subs", 1)
    pub_id = pub.started()["id"]
    pub.wait_for(is_("published"), 10, "the feed")
    sub.wait_count(is_("message"), 50, 10, "the feed at the sink")
    # A third agent asks the sink over the control plane (STATS).
    tool = testnode("tool", mesh, port, "--query", "sink")

    def complete(o):
        if o.get("event") != "counters" or o["rc"] != 0:
            return False
        return any(g["kind"] == "peer" and g["name"] == pub_id and
                   g["values"]["received"] == 50 for g in o["groups"])
    answer = tool.wait_for(complete, 10, "the sink's counters")
    groups = {(g["kind"], g["name"]): g["values"] for g in answer["groups"]}
    agent = groups[("agent", "sink")]
    check(agent["events_received"] == 50, "%s" % agent)
    topic = groups[("topic", "feed.a")]
    check(topic["received"] == 50 and topic["gaps"] == 0, "%s" % topic)
    # Nobody by that name: said at once.
    lost = testnode("lost", mesh, port, "--query", "nobody", run_ms=1500)
    miss = lost.wait_for(is_("counters"), 5, "the failed query")
    check(miss["rc"] == -11, "%s" % miss)


if __name__ == "__main__":
    run([test_request_reply, test_requests_spread_over_responders,
         test_request_to_a_named_peer, test_request_timeout_and_nobody_to_ask,
         test_responder_leaves_before_answering,
         test_reply_to_a_requester_that_left, test_direct_messages,
         test_stats_query_shows_another_agents_counters,
         test_subscribers_are_not_asked])
