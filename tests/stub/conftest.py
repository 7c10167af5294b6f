"""tests/stub: the stub's lab tests use the session `lab` fixture
(tests/conftest.py). For development runs, VMISTUB_LAB_GUESTS=tiny boots
only the guests named (a comma list), VMISTUB_LAB_ATTACH=RUN_DIR uses a lab
that is already running; the suite (tests/run) sets neither."""
import os
import time

import pytest

import lab as lablib
from stublab import stub_start, stub_stop, wait_log

_GUESTS = os.environ.get("VMISTUB_LAB_GUESTS")
_ATTACH = os.environ.get("VMISTUB_LAB_ATTACH")

if _ATTACH:
    # A lab already running (its run dir): development runs without a boot.
    @pytest.fixture(scope="session")
    def lab(build_dir):
        import json
        import pathlib
        lab = lablib.Lab(build_dir, run_dir=pathlib.Path(_ATTACH))
        state = json.loads((lab.run_dir / lablib.STATE_FILE).read_text())
        lab.agent = lablib.Agent(state["agent_port"])
        lab.agent_port = state["agent_port"]
        lab.t_start = time.monotonic()
        lab.forwards = state.get("forwards", {})
        if "1234" in lab.forwards:
            lab.stub_port = lab.forwards["1234"]
        yield lab
elif _GUESTS:
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
