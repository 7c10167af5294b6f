"""The README's main command, `tests/lab/lab.py demo` (what tests/lab/demo
runs after provisioning and building): it boots the lab, shows the guest
running, stays up — and never leaves QEMU behind, whether it is stopped with
Ctrl-C or killed outright."""
import json
import os
import re
import pathlib
import signal
import subprocess
import sys
import time

import pytest

LAB_PY = pathlib.Path(__file__).resolve().parent / "lab.py"


def start_demo(build_dir, run_dir):
    proc = subprocess.Popen(
        [sys.executable, str(LAB_PY), "--build", str(build_dir), "--run-dir", str(run_dir),
         "demo", "--guest", "tiny"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []
    # lab.start boots dom0 a second time after a hung boot (200 s each).
    deadline = time.monotonic() + 480
    try:
        for line in proc.stdout:
            seen.append(line)
            if "Ctrl-C stops the lab" in line:
                break
            assert time.monotonic() < deadline, "".join(seen)
        else:
            proc.wait()
            raise AssertionError("the demo ended early:\n" + "".join(seen))
        state = json.loads((run_dir / "lab-state.json").read_text())
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return proc, state["pid"], "".join(seen)


def gone(pid, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # A zombie whose parent has not reaped it yet is gone for our purpose.
        stat = pathlib.Path(f"/proc/{pid}/stat")
        if stat.exists() and stat.read_text().split()[2] == "Z":
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def demos():
    """Every demo a test starts is gone at its end, passed or failed: a
    failed assertion once left a demo and its QEMU running, which slowed
    the rest of the suite into timeouts."""
    procs = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_demo_runs_guest_and_ctrl_c_stops_qemu(build_dir, tmp_path, demos):
    proc, qemu_pid, out = start_demo(build_dir, tmp_path)
    demos.append(proc)
    assert "dom0 ready" in out and "guest tiny" in out, out
    assert re.search(r"^tiny\s+\d+\s+\d+\s+2\s", out, re.M), out  # xl list shows it
    # It keeps reporting the guest's progress while it stays up.
    progress = []
    for line in proc.stdout:
        if line.startswith("tiny: progress"):
            progress.append(int(line.split()[-1]))
            if len(progress) == 2:
                break
    assert progress[1] > progress[0]
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 0
    assert gone(qemu_pid), f"QEMU {qemu_pid} survived Ctrl-C"


def test_killed_controller_takes_qemu_with_it(build_dir, tmp_path, demos):
    proc, qemu_pid, _ = start_demo(build_dir, tmp_path)
    demos.append(proc)
    proc.kill()
    proc.wait()
    assert gone(qemu_pid), f"QEMU {qemu_pid} survived its controller's SIGKILL"
