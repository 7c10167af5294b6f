"""Runs the rsp cmocka unit tests and asserts they pass: from the normal
build (gcc -Werror), and again from the fuzz build, where the same tests
run under AddressSanitizer and UndefinedBehaviorSanitizer."""
import os
import subprocess

import pytest

UNITS = ["test_rsp_codec", "test_rsp_parse", "test_rsp_reply"]


def _run(exe, env=None):
    assert exe.exists(), f"{exe} not built"
    res = subprocess.run([str(exe)], capture_output=True, text=True,
                         timeout=300, env=env)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert "[  PASSED  ]" in out and "FAILED" not in out, out
    return out


@pytest.mark.parametrize("name", UNITS)
def test_rsp_unit(build_dir, name):
    _run(build_dir / "tests" / "rsp" / name)


@pytest.mark.parametrize("name", UNITS)
def test_rsp_unit_sanitized(fuzz_build_dir, name):
    env = dict(os.environ)
    env["UBSAN_OPTIONS"] = "halt_on_error=1:abort_on_error=1:print_stacktrace=1"
    env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=1"
    out = _run(fuzz_build_dir / "tests" / "rsp" / name, env)
    assert "runtime error:" not in out and "Sanitizer" not in out, out
