"""LAN discovery across network namespaces: three hosts on a bridge, each a
namespace of this test's own (the bridge too, so nothing touches the
machine's interfaces), find each other by LAN broadcast and by multicast on
a named interface, and exchange events. Root only: exits 77 (skipped)
otherwise. The namespaces are removed whatever happens."""

import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "net"))
from meshtest import (Node, TESTNODE, check, random_port, run,  # noqa: E402
                      unique_mesh)

PREFIX = "zm%d" % os.getpid()
BRIDGE_NS = PREFIX + "br"
HOSTS = 3
SUBNET = "10.199.%d" % (os.getpid() % 200 + 20)


def ip(*args, check_rc=True):
    proc = subprocess.run(["ip"] + list(args), capture_output=True,
                          text=True, timeout=20)
    if check_rc and proc.returncode != 0:
        raise RuntimeError("ip %s: %s" % (" ".join(args), proc.stderr))
    return proc


def host_ns(i):
    return "%sh%d" % (PREFIX, i)


def setup():
    ip("netns", "add", BRIDGE_NS)
    ip("-n", BRIDGE_NS, "link", "add", "br0", "type", "bridge")
    ip("-n", BRIDGE_NS, "link", "set", "br0", "up")
    for i in range(1, HOSTS + 1):
        ns = host_ns(i)
        ip("netns", "add", ns)
        # Both ends are created inside namespaces: the root namespace, and
        # so the machine's real network, never sees them.
        ip("link", "add", "name", "eth0", "netns", ns, "type", "veth",
           "peer", "name", "p%d" % i, "netns", BRIDGE_NS)
        ip("-n", BRIDGE_NS, "link", "set", "p%d" % i, "master", "br0")
        ip("-n", BRIDGE_NS, "link", "set", "p%d" % i, "up")
        ip("-n", ns, "addr", "add", "%s.%d/24" % (SUBNET, i), "brd", "+",
           "dev", "eth0")
        ip("-n", ns, "link", "set", "eth0", "up")
        ip("-n", ns, "link", "set", "lo", "up")


def teardown():
    for i in range(1, HOSTS + 1):
        ip("netns", "del", host_ns(i), check_rc=False)
    ip("netns", "del", BRIDGE_NS, check_rc=False)


def node_in(i, name, mesh, port, *args):
    argv = ["ip", "netns", "exec", host_ns(i), TESTNODE, "--name", name,
            "--mesh", mesh, "--beacon-port", str(port), "--interval", "100",
            "--run-ms", "20000"] + [str(a) for a in args]
    return Node(argv, name)


def exchange(scope):
    mesh, port = unique_mesh(scope), random_port()
    names = ["h%d" % i for i in range(1, HOSTS + 1)]
    nodes = [node_in(i, names[i - 1], mesh, port, "--discovery", scope,
                     "--interface", "eth0", "--sub", "lan.>", "--pub",
                     "lan." + names[i - 1], "--count", 20, "--every", 20,
                     "--wait-subs", HOSTS - 1)
             for i in range(1, HOSTS + 1)]
    for node in nodes:
        started = node.started()
        check(SUBNET in started["endpoint"],
              "endpoint %s not on the LAN" % started["endpoint"])
    for node in nodes:
        for other in names:
            if other == node.name:
                continue
            joined = node.wait_for(
                lambda o, n=other: o.get("event") == "joined" and
                o.get("peer") == n, 10, "join of " + other)
            # Found by its beacon, by its HELLO, or through a third host's
            # gossip, whichever came first; never by a seed (none is set).
            check(joined["reason"] in ("beacon", "hello", "gossip"),
                  "unexpected origin %s" % joined)
            node.wait_count(
                lambda o, t="lan." + other: o.get("event") == "message" and
                o["topic"] == t, 20, 15, "events from " + other)


def test_lan_broadcast():
    exchange("lan")


def test_multicast():
    exchange("multicast")


def main():
    if os.geteuid() != 0:
        print("skipped: network namespaces need root")
        sys.exit(77)
    probe = subprocess.run(["ip", "netns", "list"], capture_output=True)
    if probe.returncode != 0:
        print("skipped: ip netns does not work here")
        sys.exit(77)
    try:
        setup()
    except Exception as exc:  # no netns support in this sandbox
        teardown()
        print("skipped: cannot build the namespaces: %s" % exc)
        sys.exit(77)
    try:
        run([test_lan_broadcast, test_multicast])
    finally:
        teardown()


if __name__ == "__main__":
    main()
