"""Runs each rsp libFuzzer target from the fuzz build (clang, ASan+UBSan)
for a bounded time from its seed corpus, and fails on any crash, sanitizer
report or leak.  Prints executions run per target.

VMISTUB_FUZZ_SECONDS sets the time per target (default 20)."""
import os
import pathlib
import re
import shutil
import subprocess

import pytest

HERE = pathlib.Path(__file__).resolve().parent
TARGETS = ["fuzz_decode", "fuzz_parse", "fuzz_roundtrip"]
SECONDS = int(os.environ.get("VMISTUB_FUZZ_SECONDS", "20"))


@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_target(fuzz_build_dir, tmp_path, target):
    exe = fuzz_build_dir / "tests" / "fuzz" / target
    assert exe.exists(), f"{exe} not built (fuzz build needs clang, -Dfuzz=enabled)"
    seeds = HERE / "corpus" / target
    assert seeds.is_dir() and any(seeds.iterdir()), f"no seed corpus in {seeds}"
    work = tmp_path / "corpus"
    work.mkdir()
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    env = dict(os.environ)
    # UBSan only prints by default: make every report fatal.
    env["UBSAN_OPTIONS"] = "halt_on_error=1:abort_on_error=1:print_stacktrace=1"
    env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=1"
    res = subprocess.run(
        [str(exe), f"-max_total_time={SECONDS}", "-print_final_stats=1",
         "-rss_limit_mb=2048", "-timeout=10", f"-artifact_prefix={artifacts}/",
         str(work), str(seeds)],
        capture_output=True, text=True, timeout=SECONDS + 120, env=env)
    log = res.stdout + res.stderr
    m = re.search(r"stat::number_of_executed_units:\s*(\d+)", log)
    execs = int(m.group(1)) if m else 0
    crashes = sorted(p.name for p in artifacts.iterdir())
    print(f"\n{target}: {execs} executions in {SECONDS} s, "
          f"{len(crashes)} crashes, corpus {len(list(work.iterdir()))} new units")
    if crashes:
        keep = pathlib.Path(os.environ.get("VMISTUB_FUZZ_ARTIFACTS",
                                           fuzz_build_dir / "fuzz-artifacts"))
        keep.mkdir(parents=True, exist_ok=True)
        for c in crashes:
            shutil.copy(artifacts / c, keep / f"{target}-{c}")
    assert res.returncode == 0, log[-6000:]
    assert not crashes, (crashes, log[-6000:])
    for bad in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                "runtime error:", "deadly signal"):
        assert bad not in log, log[-6000:]
    assert execs > 1000, log[-3000:]
