"""mesh-bench runs end to end and prints valid JSON: a smoke test of the
tool, not a performance test (the figures are not checked, only that each
path delivered everything and the output is what scripts can read)."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from meshtest import check, run, run_tool  # noqa: E402

BENCH = os.environ.get("ZMESH_BENCH", "mesh-bench")


def test_thr_json():
    result = run_tool([BENCH, "thr", "--size", "16", "--count", "2000",
                       "--runs", "1", "--json"], timeout=60)
    check(result.returncode == 0, "thr failed: %s" % result.stderr)
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    kinds = {line["bench"] for line in lines}
    check(kinds == {"thr", "thr-alt", "thr-wire"}, "results: %s" % kinds)
    thr = [line for line in lines if line["bench"] == "thr"][0]
    check(thr["lost_mesh"] == 0 and thr["lost_raw"] == 0,
          "lost events: %s" % thr)
    check(thr["mesh_msgs_per_s"] > 0 and thr["raw_msgs_per_s"] > 0,
          "no rate: %s" % thr)


def test_lat_json():
    result = run_tool([BENCH, "lat", "--size", "16", "--count", "200",
                       "--runs", "1", "--json"], timeout=60)
    check(result.returncode == 0, "lat failed: %s" % result.stderr)
    lat = json.loads(result.stdout.splitlines()[-1])
    check(lat["bench"] == "lat" and lat["mesh_p50_us"] > 0 and
          lat["raw_p50_us"] > 0, "lat result: %s" % lat)


def test_bad_flags_exit_2():
    for argv in (["thr"], ["thr", "--size", "0"], ["nope"],
                 ["lat", "--size", "16", "--only", "hop"]):
        result = run_tool([BENCH] + argv, timeout=10)
        check(result.returncode == 2, "%s exited %d" % (argv,
                                                        result.returncode))


if __name__ == "__main__":
    run([test_thr_json, test_lat_json, test_bad_flags_exit_2])
