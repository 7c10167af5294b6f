"""Runs the rsp cmocka unit tests from the normal build and asserts they pass."""
import subprocess

import pytest

UNITS = ["test_codec", "test_parse", "test_reply"]


@pytest.mark.parametrize("name", UNITS)
def test_rsp_unit(build_dir, name):
    exe = build_dir / "tests" / "rsp" / name
    assert exe.exists(), f"{exe} not built"
    res = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert "[  PASSED  ]" in out and "FAILED" not in out, out
