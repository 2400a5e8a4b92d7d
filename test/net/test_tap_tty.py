"""mesh-tap on a terminal, through a pseudo-terminal (python's pty module):
the live view is coloured on a TTY, plain with NO_COLOR and in a pipe;
stats redraws in place on a TTY (clear and home each interval), in plain
text with NO_COLOR, and writes JSON lines to a pipe; peers and doctor
colour only on a TTY too; a direct message to the tap is a line of its
own, its "direct" tag coloured on a TTY only."""

import json
import os
import re
import select
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from meshtest import (TAP, check, fail, random_port, run,  # noqa: E402
                      run_tool, testnode, unique_mesh)

SGR = re.compile(rb"\x1b\[[0-9;]*m")
REDRAW = b"\x1b[H\x1b[2J"


def run_pty(args, no_color=False, timeout=20):
    """Runs mesh-tap with stdout on a pseudo-terminal, to completion,
    bounded; returns (exit code, bytes written to the terminal)."""
    env = dict(os.environ)
    env.pop("NO_COLOR", None)
    if no_color:
        env["NO_COLOR"] = "1"
    master, slave = os.openpty()
    proc = subprocess.Popen([TAP] + [str(a) for a in args],
                            stdin=subprocess.DEVNULL, stdout=slave,
                            stderr=subprocess.PIPE, env=env)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the terminal's last writer closed
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
        else:
            fail("mesh-tap %s did not finish within %ss" %
                 (" ".join(map(str, args)), timeout))
        proc.wait(5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        os.close(master)
        proc.stderr.close()
    return proc.returncode, out


def publisher(prefix):
    mesh, port = unique_mesh(prefix), random_port()
    node = testnode("ttypub", mesh, port, "--pub", "tty.tick", "--count",
                    2000, "--every", 20, run_ms=20000)
    node.started()
    return node, ["--mesh", mesh, "--beacon-port", port]


def test_live_view_colour_only_on_a_tty():
    node, net = publisher("taptty")
    code, out = run_pty(["--count", 3, "--timeout", 10, "tty.>"] + net)
    check(code == 0, "tty: exit %d" % code)
    check(b"tty.tick" in out and b"ttypub" in out, "no events:\n%r" % out)
    check(SGR.search(out), "no colour on a TTY:\n%r" % out)

    code, out = run_pty(["--count", 3, "--timeout", 10, "tty.>"] + net,
                        no_color=True)
    check(code == 0 and b"tty.tick" in out, "NO_COLOR: exit %d" % code)
    check(b"\x1b" not in out, "escape codes with NO_COLOR:\n%r" % out)

    result = run_tool([TAP, "--count", "3", "--timeout", "10", "tty.>"] +
                      [str(a) for a in net], timeout=20)
    check(result.returncode == 0 and "tty.tick" in result.stdout,
          "pipe: exit %d" % result.returncode)
    check("\x1b" not in result.stdout, "escape codes in a pipe")

    # --json on a terminal is for programs: never coloured.
    code, out = run_pty(["--json", "--count", 2, "--timeout", 10, "tty.>"] +
                        net)
    check(code == 0 and b"\x1b" not in out, "colour in --json")
    lines = [json.loads(line) for line in out.decode().splitlines() if line]
    check(len([o for o in lines if o["type"] == "message"]) == 2,
          "json on a tty: %r" % lines)
    node.stop()


def test_stats_redraws_on_a_tty_and_streams_json_to_a_pipe():
    node, net = publisher("tapttystats")
    code, out = run_pty(["stats", "--count", 3, "--interval", 0.3] + net)
    check(code == 0, "stats tty: exit %d" % code)
    check(out.count(REDRAW) == 3, "expected 3 redraws, got %d:\n%r" %
          (out.count(REDRAW), out))
    last = out.rsplit(REDRAW, 1)[1]
    check(b"TOPIC" in last and b"PUBLISHER" in last and b"tty.tick" in last,
          "last screen lacks the tables:\n%r" % last)
    check(SGR.search(out), "stats not coloured on a TTY")

    code, out = run_pty(["stats", "--count", 2, "--interval", 0.3] + net,
                        no_color=True)
    check(code == 0 and out.count(REDRAW) == 2, "NO_COLOR stats redraw")
    check(not SGR.search(out), "colour with NO_COLOR:\n%r" % out)

    result = run_tool([TAP, "stats", "--count", "2", "--interval", "0.3"] +
                      [str(a) for a in net], timeout=20)
    check(result.returncode == 0 and "\x1b" not in result.stdout,
          "stats pipe: exit %d" % result.returncode)
    reports = [json.loads(line) for line in result.stdout.splitlines()]
    check(len(reports) == 2 and reports[-1]["type"] == "stats",
          "stats pipe lines %r" % reports)
    node.stop()


def test_peers_and_doctor_colour_only_on_a_tty():
    node, net = publisher("tapttypeers")
    code, out = run_pty(["peers", "--wait", 1] + net)
    check(code == 0 and b"ttypub" in out and SGR.search(out),
          "peers on a tty: exit %d\n%r" % (code, out))
    code, out = run_pty(["doctor", "--wait", 1] + net)
    check(code == 0 and b"No problems found." in out and SGR.search(out),
          "doctor on a tty: exit %d\n%r" % (code, out))
    code, out = run_pty(["doctor", "--wait", 1] + net, no_color=True)
    check(code == 0 and b"\x1b" not in out, "doctor with NO_COLOR")
    node.stop()


def test_direct_message_line_on_a_tty():
    mesh, port = unique_mesh("tapttydirect"), random_port()
    net = ["--mesh", mesh, "--beacon-port", port]
    for no_color in (False, True):
        name = "ttytap%d" % no_color
        sender = testnode("sender", mesh, port, "--send", name, "--pub",
                          "note.tty", "--count", 1, "--wait-subs", 1,
                          run_ms=15000)
        sender.started()
        code, out = run_pty(["sub", "--name", name, "--count", 1,
                             "--timeout", 10, "none.>"] + net,
                            no_color=no_color)
        check(code == 0, "direct on a tty: exit %d\n%r" % (code, out))
        line = [raw for raw in out.splitlines() if b"note.tty" in raw]
        check(len(line) == 1, "no direct line:\n%r" % out)
        plain = SGR.sub(b"", line[0])
        check(b"direct" in plain and b"sender" in plain and
              b'{"n":1,"from":"sender"}' in plain, "line %r" % plain)
        if no_color:
            check(b"\x1b" not in out, "colour with NO_COLOR:\n%r" % out)
        else:
            check(re.search(rb"\x1b\[[0-9;]*m\s*direct\x1b\[0m", line[0]),
                  "'direct' not coloured:\n%r" % line[0])
        sender.stop()


if __name__ == "__main__":
    run([test_live_view_colour_only_on_a_tty,
         test_direct_message_line_on_a_tty,
         test_stats_redraws_on_a_tty_and_streams_json_to_a_pipe,
         test_peers_and_doctor_colour_only_on_a_tty])
