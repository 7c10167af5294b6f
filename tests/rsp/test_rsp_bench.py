"""Keeps the rsp micro-benchmark (tests/bench/rsp_bench.c) from rotting: it
must run and print one figure line per case.  Times are printed, never
asserted."""
import re
import subprocess


def test_rsp_bench_runs(build_dir):
    exe = build_dir / "tests" / "rsp" / "rsp_bench"
    assert exe.exists(), f"{exe} not built"
    res = subprocess.run([str(exe), "0.02"], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    rows = [l for l in res.stdout.splitlines()
            if re.search(r"\d+ /s +[\d.]+ MB/s +memcpy +[\d.]+ MB/s", l)]
    assert len(rows) == 10, res.stdout
    print("\n" + res.stdout)
