"""tests/stub: the stub's lab tests use the session `lab` fixture
(tests/conftest.py, which also reads VMISTUB_LAB_ATTACH and
VMISTUB_LAB_GUESTS for development runs)."""

import pytest

from stublab import stub_start, stub_stop, wait_log


@pytest.fixture(scope="module")
def port(lab):
    p = stub_start(lab, "tiny")
    yield p
    stub_stop(lab)


@pytest.fixture
def detached(lab, port):
    """Each test starts and ends with no gdb attached (vmistub detached)."""
    yield
    wait_log(lab, "detached from domain", timeout=30)
