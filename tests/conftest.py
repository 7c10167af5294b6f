"""Shared pytest configuration.

Build outputs are found through environment variables that tests/run sets:
  VMISTUB_BUILD       the normal build (gcc, -Werror)       default: build/
  VMISTUB_FUZZ_BUILD  clang + ASan/UBSan + libFuzzer build  default: build-fuzz/
A test that needs a build output that is missing fails; it never skips.
"""
import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _dir(var, default):
    return pathlib.Path(os.environ.get(var, ROOT / default)).resolve()


@pytest.fixture(scope="session")
def build_dir():
    d = _dir("VMISTUB_BUILD", "build")
    assert (d / "build.ninja").exists(), f"no meson build at {d}: run tests/run (or meson setup {d})"
    return d


@pytest.fixture(scope="session")
def fuzz_build_dir():
    d = _dir("VMISTUB_FUZZ_BUILD", "build-fuzz")
    assert (d / "build.ninja").exists(), f"no fuzz build at {d}: run tests/run"
    return d
