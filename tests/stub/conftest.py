"""tests/stub: the stub's lab tests use the session `lab` fixture
(tests/conftest.py). VMISTUB_LAB_GUESTS=tiny boots only the guests named
(a comma list) for a quicker development run; the suite (tests/run) leaves
it unset and boots them all."""
import os

import pytest

import lab as lablib
from stublab import stub_start, stub_stop, wait_log

_GUESTS = os.environ.get("VMISTUB_LAB_GUESTS")

if _GUESTS:
    @pytest.fixture(scope="session")
    def lab(build_dir):
        lab = lablib.Lab(build_dir)
        try:
            lab.start()
            for guest in _GUESTS.split(","):
                lab.create_guest(guest)
            yield lab
        finally:
            lab.close()


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
