"""tests/stub: the stub's lab tests use the session `lab` fixture
(tests/conftest.py, which also reads VMISTUB_LAB_ATTACH and
VMISTUB_LAB_GUESTS for development runs)."""

import pytest

from stublab import int3_offset, stub_follow_guest, stub_start, stub_stop, wait_log


@pytest.fixture(scope="module")
def port(lab):
    p = stub_start(lab, "tiny")
    yield p
    stub_stop(lab)


@pytest.fixture(autouse=True)
def _stub_follows_guest(request):
    """A module's tests share one vmistub: one that lost its guest to a
    crash of the nested emulation (booted again as a new domain) is
    started again, so that one crash does not fail every later test."""
    if "port" in request.fixturenames or "linux_port" in request.fixturenames:
        stub_follow_guest(request.getfixturevalue("lab"), f"before {request.node.name}")
    yield


@pytest.fixture
def detached(lab, port):
    """Each test starts and ends with no gdb attached (vmistub detached)."""
    yield
    wait_log(lab, "detached from domain", timeout=30)


@pytest.fixture
def int3_before(lab, request):
    """tiny's int3 balance (stublab.int3_offset) when the test starts: a
    test checks that its own session neither lost nor added one. An offset
    found already is reported with the lab's incidents: it came from
    elsewhere (another test, or the nested emulation)."""
    offset = int3_offset(lab)
    if offset:
        lab.incidents.append(f"tiny's own #BP count was off by {offset} before {request.node.name}")
    return offset
