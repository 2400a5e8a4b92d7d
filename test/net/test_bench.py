"""mesh-bench runs end to end and prints valid JSON: a smoke test of the
tool, not a performance test. The figures are never checked, only that
each path ran, that what the tool counted adds up (every event published
is delivered, repaired, reported in a gap or, for raw libzmq, lost without
a word; every request got its reply; every event a relay confirmed is read
back by a durable consumer), and that the output is what scripts can read.
`relay` compares with NATS JetStream when nats-server is installed and
says it skipped it when not; both pass."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from meshtest import check, run, run_tool  # noqa: E402

BENCH = os.environ.get("ZMESH_BENCH", "mesh-bench")
LIBRARY_RETRANSMIT = 8 * 1024 * 1024
LIBRARY_BATCH = 64


def bench_json(argv, timeout=90):
    result = run_tool([BENCH] + argv + ["--json"], timeout=timeout)
    check(result.returncode == 0, "%s failed (%d): %s" %
          (argv, result.returncode, result.stderr))
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    check(lines, "%s printed nothing" % argv)
    return lines


def one(lines, bench):
    found = [line for line in lines if line["bench"] == bench]
    check(len(found) == 1, "%d %s lines in %s" % (len(found), bench, lines))
    return found[0]


def test_thr_json():
    lines = bench_json(["thr", "--size", "16", "--count", "2000",
                        "--runs", "1"])
    kinds = {line["bench"] for line in lines}
    check(kinds == {"thr", "thr-alt", "thr-wire"}, "results: %s" % kinds)
    thr = one(lines, "thr")
    check(thr["lost_mesh"] == 0 and thr["lost_raw"] == 0 and
          thr["lost_mesh_norepair"] == 0 and thr["lost_mesh_nobatch"] == 0,
          "lost events: %s" % thr)
    for key in ("mesh_msgs_per_s", "raw_msgs_per_s",
                "mesh_norepair_msgs_per_s", "ratio", "ratio_norepair",
                "ratio_repair_on_off", "mesh_nobatch_msgs_per_s",
                "ratio_nobatch", "mesh_nobatch_cpu_ns_per_msg",
                "ratio_batching"):
        check(thr[key] > 0, "no %s: %s" % (key, thr))
    check(thr["retransmit_bytes"] == LIBRARY_RETRANSMIT,
          "repair on should keep the library's buffer: %s" % thr)
    # thr publishes in a tight loop, so at 16 B some of the mesh's events
    # go out in batch frames of 2 to the library's 64; with batching off
    # none do. How many is up to the scheduler, so only that.
    check(0 < thr["mesh_batched_fraction"] <= 1,
          "mesh batched fraction: %s" % thr)
    check(2 <= thr["mesh_events_per_batch"] <= LIBRARY_BATCH,
          "events per batch: %s" % thr)
    check(thr["mesh_nobatch_batched_fraction"] == 0,
          "batching off sent batch frames: %s" % thr)
    wire = one(lines, "thr-wire")
    check(wire["nobatch_ratio_to_wire"] > 0 and
          wire["mesh_ratio_to_wire"] > 0, "wire ratios: %s" % wire)


def test_thr_retransmit_flag_and_only():
    lines = bench_json(["thr", "--size", "128", "--count", "2000",
                        "--runs", "1", "--retransmit", "0",
                        "--only", "raw,norepair"])
    check([line["bench"] for line in lines] == ["thr"],
          "hop and wire ran: %s" % lines)
    thr = lines[0]
    check(thr["retransmit_bytes"] == 0, "--retransmit ignored: %s" % thr)
    check(thr["mesh_msgs_per_s"] is None and thr["ratio"] is None and
          thr["ratio_repair_on_off"] is None and
          thr["mesh_batched_fraction"] is None and
          thr["mesh_events_per_batch"] is None, "mesh ran: %s" % thr)
    check(thr["mesh_nobatch_msgs_per_s"] is None and
          thr["ratio_batching"] is None, "nobatch ran: %s" % thr)
    check(thr["mesh_norepair_msgs_per_s"] > 0 and thr["ratio_norepair"] > 0,
          "no repair-off rate: %s" % thr)


def test_thr_text_batching():
    # The rows and lines that explain batching, and the wire row's
    # comparison with batching off rather than with the batching mesh.
    result = run_tool([BENCH, "thr", "--size", "16", "--count", "2000",
                       "--runs", "1", "--only", "mesh,nobatch,wire"],
                      timeout=60)
    check(result.returncode == 0, "thr failed: %s" % result.stderr)
    for label in ("mesh, repair on", "mesh, batching off",
                  "of events in batch frames", "events per batch",
                  "batching on/off", "one single-event frame's size",
                  "nobatch/wire"):
        check(label in result.stdout, "no '%s' in: %s" % (label,
                                                         result.stdout))
    check("mesh/wire" not in result.stdout and
          "mesh, repair off" not in result.stdout,
          "output: %s" % result.stdout)


def test_lat_json():
    lat = one(bench_json(["lat", "--size", "16", "--count", "200",
                          "--runs", "1"]), "lat")
    for key in ("mesh_p50_us", "raw_p50_us", "mesh_norepair_p50_us",
                "ratio_p50", "ratio_norepair_p50"):
        check(lat[key] > 0, "no %s: %s" % (key, lat))
    check(lat["mesh_p50_us"] <= lat["mesh_p99_us"] <= lat["mesh_p999_us"],
          "percentiles out of order: %s" % lat)


def test_rr_json():
    rr = one(bench_json(["rr", "--size", "128", "--count", "300",
                         "--runs", "2"]), "rr")
    check(rr["requests"] == 600 and rr["replies"] == rr["requests"],
          "not every request got its reply: %s" % rr)
    for key in ("mesh_p50_us", "raw_p50_us", "mesh_req_per_s",
                "raw_req_per_s", "ratio_p50", "ratio_req_per_s"):
        check(rr[key] > 0, "no %s: %s" % (key, rr))
    check(rr["mesh_p50_us"] <= rr["mesh_p99_us"] <= rr["mesh_p999_us"],
          "percentiles out of order: %s" % rr)


def test_rr_text_alias():
    result = run_tool([BENCH, "reqrep", "--size", "16", "--count", "100",
                       "--runs", "1", "--only", "mesh"], timeout=60)
    check(result.returncode == 0, "reqrep failed: %s" % result.stderr)
    check("mesh request/reply" in result.stdout and
          "100 requests, 100 replies" in result.stdout and
          "raw DEALER/ROUTER" not in result.stdout,
          "output: %s" % result.stdout)


def check_repair_accounting(rep):
    published = rep["published"]
    check(published == rep["count"] * rep["runs"], "published: %s" % rep)
    # Every event is accounted for, by the mesh out loud and by raw only
    # because the benchmark numbers its payloads.
    check(rep["mesh_unaccounted"] == 0 and rep["norepair_unaccounted"] == 0,
          "events neither delivered nor reported: %s" % rep)
    check(rep["mesh_out_of_order"] == 0 and
          rep["norepair_out_of_order"] == 0 and rep["raw_out_of_order"] == 0,
          "events twice or out of order: %s" % rep)
    check(rep["mesh_live"] + rep["mesh_repaired"] + rep["mesh_missing"] ==
          published, "repair on does not add up: %s" % rep)
    check(rep["norepair_live"] + rep["norepair_missing"] == published,
          "repair off does not add up: %s" % rep)
    check(rep["raw_received"] + rep["raw_lost"] == published,
          "raw does not add up: %s" % rep)
    # Gap events name at least one event each, and raw's missing ranges
    # likewise.
    for gaps, missing in (("mesh_gaps", "mesh_missing"),
                          ("norepair_gaps", "norepair_missing"),
                          ("raw_gaps", "raw_lost")):
        check((rep[gaps] == 0) == (rep[missing] == 0) and
              rep[gaps] <= rep[missing], "%s/%s: %s" % (gaps, missing, rep))
    # A repaired event was asked for and sent again.
    check(rep["mesh_repaired"] <= rep["mesh_events_resent"], "%s" % rep)
    check((rep["mesh_repaired"] == 0) or rep["mesh_repair_requests"] > 0,
          "repaired without a NAK: %s" % rep)
    check((rep["mesh_repaired"] > 0) ==
          (rep["mesh_repair_delay_p50_us"] is not None),
          "repair delays without repairs, or the other way: %s" % rep)
    for key in ("raw_delivered_per_s", "mesh_delivered_per_s",
                "norepair_delivered_per_s", "ratio", "ratio_norepair"):
        check(rep[key] > 0, "no %s: %s" % (key, rep))


def test_repair_json():
    # A subscriber that sleeps 100 ms behind queues of 50 messages, while
    # the publisher sends 100,000 events/s of 1 KiB: ZeroMQ drops, the
    # mesh repairs. How much is lost is up to the kernel's buffers, so
    # only the accounting is checked.
    rep = one(bench_json(["repair", "--count", "5000", "--runs", "1",
                          "--hwm", "50", "--stall-ms", "100"]), "repair")
    check(rep["size"] == 1024 and rep["hwm"] == 50 and rep["stall_ms"] == 100,
          "flags not applied: %s" % rep)
    check_repair_accounting(rep)


def test_repair_without_buffer_reports_gaps():
    # With no retransmit buffer nothing can be repaired: whatever is lost
    # is reported in gap events, on both mesh paths.
    rep = one(bench_json(["repair", "--size", "64", "--count", "5000",
                          "--runs", "1", "--hwm", "50", "--stall-ms", "100",
                          "--retransmit", "0", "--rate", "0"]), "repair")
    check(rep["retransmit_bytes"] == 0 and rep["rate"] == 0,
          "flags not applied: %s" % rep)
    check_repair_accounting(rep)
    check(rep["mesh_repaired"] == 0 and rep["mesh_events_resent"] == 0,
          "repaired from an empty buffer: %s" % rep)


def test_repair_text():
    result = run_tool([BENCH, "repair", "--count", "2000", "--runs", "1",
                       "--only", "raw,mesh"], timeout=60)
    check(result.returncode == 0, "repair failed: %s" % result.stderr)
    for label in ("raw libzmq PUB/SUB", "mesh, repair on", "repair on:"):
        check(label in result.stdout, "no '%s' in: %s" % (label,
                                                         result.stdout))
    check("mesh, repair off" not in result.stdout, "norepair ran")


RELAY_ROWS = ("publish_1", "publish_256", "catchup")


def _version_at_least(version, major, minor):
    parts = [int(x) for x in version.split(".")[:2]]
    return parts >= [major, minor]


def test_relay_quick_json():
    # mesh-relay against NATS JetStream, small: every row of every policy
    # is there, and what was confirmed is what the durable consumer read
    # back. Rates and ratios are never checked. Without nats-server the
    # JetStream columns say skipped and the mesh rows still count.
    lines = bench_json(["relay", "--quick"], timeout=240)
    # First the floor: raw libzmq round trips measured in the same run.
    floor = lines.pop(0) if lines and lines[0]["row"] == "floor" else None
    check(floor and floor["raw_rt_per_s"] > 0 and floor["raw_p50_us"] > 0,
          "no floor line first: %s" % floor)
    policies = ["always", "interval:200", "interval:120000", "never"]
    check([(line["sync"], line["row"]) for line in lines] ==
          [(p, r) for p in policies for r in RELAY_ROWS],
          "rows: %s" % [(line["sync"], line["row"]) for line in lines])
    for policy in policies:
        rows = {line["row"]: line for line in lines
                if line["sync"] == policy}
        for side in ("mesh", "js"):
            if side == "js" and rows["catchup"]["js_skipped"]:
                check(rows["catchup"]["js_per_s"] is None and
                      rows["catchup"]["ratio"] is None,
                      "skipped yet measured: %s" % rows)
                continue
            one, win, cat = (rows[r] for r in RELAY_ROWS)
            for row in (one, win):
                check(row["%s_failed" % side] == 0,
                      "%s: confirms failed: %s" % (side, row))
                check(row["%s_capped" % side] or
                      row["%s_events" % side] == row["count"],
                      "%s: not all confirmed: %s" % (side, row))
                check(row["%s_per_s" % side] > 0, "no rate: %s" % row)
            # Ten warm-up events, then both publish rows: the consumer
            # created afterwards reads every one of them.
            stored = 10 + one["%s_events" % side] + win["%s_events" % side]
            check(cat["%s_capped" % side] or
                  cat["%s_events" % side] == stored,
                  "%s: catch-up read %s of %d: %s" %
                  (side, cat["%s_events" % side], stored, cat))
            check(cat["%s_failed" % side] == 0, "gaps: %s" % cat)
        line = rows["publish_1"]
        if not line["js_skipped"]:
            check(line["ratio"] > 0, "no ratio: %s" % line)
            # Which settings are the same is decided by the server's
            # version: before 2.10 JetStream syncs every 2 minutes, fixed.
            if _version_at_least(line["js_version"], 2, 10):
                same = policy != "never"
            else:
                same = policy == "interval:120000"
            check(line["same_durability"] == same,
                  "same_durability for %s: %s" % (policy, line))


def test_relay_text_without_nats():
    # No nats-server: the JetStream column says so, the mesh rows run.
    result = run_tool([BENCH, "relay", "--quick", "--policies", "never",
                       "--count", "50", "--nats-bin",
                       "/nonexistent/nats-server"], timeout=120)
    check(result.returncode == 0, "relay failed: %s" % result.stderr)
    for label in ("floor: raw libzmq", "mesh --sync never",
                  "confirmed publish, 1 in flight",
                  "confirmed publish, window 256", "durable catch-up",
                  "skipped: nats-server not installed"):
        check(label in result.stdout, "no '%s' in: %s" % (label,
                                                         result.stdout))
    check("mesh/JS" not in result.stdout, "a ratio without JetStream: %s" %
          result.stdout)


def test_bad_flags_exit_2():
    for argv in (["thr"], ["thr", "--size", "0"], ["nope"],
                 ["lat", "--size", "16", "--only", "hop"],
                 ["lat", "--size", "16", "--only", "nobatch"],
                 ["lat", "--size", "16", "--only", "mesh,nobatch"],
                 ["repair", "--only", "nobatch"],
                 ["rr"], ["rr", "--size", "16", "--only", "norepair"],
                 ["repair", "--size", "9"], ["repair", "--only", "wire"],
                 ["repair", "--rate", "-1"], ["thr", "--size", "16",
                                              "--retransmit", "x"],
                 ["all", "--count", "10"], ["relay", "--size", "0"],
                 ["relay", "--policies", "sometimes"],
                 ["relay", "--policies", "always,always"],
                 ["relay", "--only", "raw"], ["relay", "--nope"]):
        result = run_tool([BENCH] + argv, timeout=10)
        check(result.returncode == 2, "%s exited %d" % (argv,
                                                        result.returncode))


if __name__ == "__main__":
    run([test_thr_json, test_thr_retransmit_flag_and_only,
         test_thr_text_batching, test_lat_json,
         test_rr_json, test_rr_text_alias, test_repair_json,
         test_repair_without_buffer_reports_gaps, test_repair_text,
         test_relay_quick_json, test_relay_text_without_nats,
         test_bad_flags_exit_2])
