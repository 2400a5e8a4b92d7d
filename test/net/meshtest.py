"""meshtest - the harness of zmesh's multi-process tests.

Starts real agent processes (zmesh-testnode) and the real tools, follows
their JSON-lines output in background threads, waits on conditions with
deadlines (never fixed sleeps), and stops every process it started by PID
when the test ends, whatever happened. Each test gets a mesh name of its own
(prefix + pid + counter) and a beacon port picked at random, so tests run in
parallel without hearing each other. Only loopback is ever used.
"""

import atexit
import itertools
import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time

TESTNODE = os.environ.get("ZMESH_TESTNODE", "zmesh-testnode")
TAP = os.environ.get("ZMESH_TAP", "mesh-tap")

_counter = itertools.count(1)
_procs = []


def unique_mesh(prefix="t"):
    return "%s-%d-%d" % (prefix, os.getpid(), next(_counter))


def random_port():
    # Beacon ports: UDP, SO_REUSEPORT, so a collision with another test only
    # means hearing beacons of another mesh, which the mesh hash filters.
    return random.randint(20000, 39999)


class Node:
    """One child process whose stdout is JSON lines."""

    def __init__(self, argv, name, env=None):
        self.name = name
        self.argv = argv
        self.lines = []
        self.events = queue.Queue()
        self.lock = threading.Lock()
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL, env=env)
        _procs.append(self.proc)
        self.stderr = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            try:
                obj = json.loads(line)
            except ValueError:
                obj = {"event": "text", "text": line}
            with self.lock:
                self.lines.append(obj)

    def _read_err(self):
        for raw in self.proc.stderr:
            self.stderr.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def seen(self, pred=None):
        with self.lock:
            return [o for o in self.lines if pred is None or pred(o)]

    def wait_for(self, pred, timeout, what="condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.seen(pred)
            if found:
                return found[0]
            if self.proc.poll() is not None:
                time.sleep(0.1)  # let the reader thread drain the pipe
                found = self.seen(pred)
                if found:
                    return found[0]
                fail("%s exited (code %s) before %s; stderr:\n%s" %
                     (self.name, self.proc.returncode, what,
                      "\n".join(self.stderr[-20:])))
            time.sleep(0.02)
        fail("%s: timed out after %.1fs waiting for %s; last lines: %s" %
             (self.name, timeout, what, self.seen()[-5:]))

    def wait_count(self, pred, n, timeout, what="events"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.seen(pred)) >= n:
                return self.seen(pred)
            time.sleep(0.02)
        fail("%s: only %d of %d %s within %.1fs" %
             (self.name, len(self.seen(pred)), n, what, timeout))

    def messages(self, topic_prefix=""):
        return self.seen(lambda o: o.get("event") == "message" and
                         o.get("topic", "").startswith(topic_prefix))

    def started(self):
        return self.wait_for(lambda o: o.get("event") == "started", 10,
                             "start")

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                fail("%s did not stop within %ss of signal %d" %
                     (self.name, timeout, sig))
        time.sleep(0.05)
        return self.proc.returncode

    def kill9(self):
        self.proc.kill()
        self.proc.wait(5)


def testnode(name, mesh, port, *args, interval=100, timeout=None,
             run_ms=30000, env=None):
    """Starts a testnode; `env` adds environment variables, e.g.
    ZSYS_SNDHWM and ZSYS_RCVHWM (czmq's default high-water marks) to make
    ZeroMQ drop early."""
    argv = [TESTNODE, "--name", name, "--mesh", mesh, "--beacon-port",
            str(port), "--interval", str(interval), "--run-ms", str(run_ms)]
    if timeout is not None:
        argv += ["--timeout", str(timeout)]
    argv += [str(a) for a in args]
    full_env = None
    if env:
        full_env = dict(os.environ)
        full_env.update({k: str(v) for k, v in env.items()})
    return Node(argv, name, env=full_env)


def run_tool(argv, timeout=30, input_text=None):
    """Runs a tool to completion, bounded; returns CompletedProcess."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE,
                            stdin=subprocess.PIPE if input_text else
                            subprocess.DEVNULL)
    _procs.append(proc)
    try:
        out, err = proc.communicate(input_text.encode() if input_text else
                                    None, timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        fail("%s did not finish within %ss:\n%s" %
             (" ".join(argv), timeout, err.decode()))
    return subprocess.CompletedProcess(argv, proc.returncode,
                                       out.decode("utf-8", "replace"),
                                       err.decode("utf-8", "replace"))


def _cleanup():
    for proc in _procs:
        if proc.poll() is None:
            proc.kill()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                pass


atexit.register(_cleanup)


class TestFailure(Exception):
    pass


def fail(message):
    raise TestFailure(message)


def check(condition, message):
    if not condition:
        fail(message)


def run(tests):
    """Runs test functions; prints a closing 'N passed, N failed' line. A
    test_* function of the calling script that is not in `tests` fails the
    run: a test written and never run proves nothing."""
    passed = failed = 0
    main = sys.modules.get("__main__")
    defined = [name for name in dir(main) if name.startswith("test_") and
               callable(getattr(main, name))]
    forgotten = sorted(set(defined) - set(t.__name__ for t in tests))
    for name in forgotten:
        failed += 1
        print("FAIL %s: defined but not in the run list" % name)
    for test in tests:
        start = time.monotonic()
        try:
            test()
            passed += 1
            print("PASS %s (%.1fs)" % (test.__name__,
                                       time.monotonic() - start))
        except Exception as exc:  # any failure, including harness errors
            failed += 1
            print("FAIL %s: %s" % (test.__name__, exc))
        finally:
            _cleanup()
            del _procs[:]
        sys.stdout.flush()
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)
