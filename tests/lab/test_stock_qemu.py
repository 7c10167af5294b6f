"""The control experiment for tests/lab/qemu-svm-fixes.patch: the same lab on
Debian's stock QEMU 7.2 (/usr/bin/qemu-system-x86_64), where the tests that
prove each fix in test_lab.py must see the bug. If one of these starts to
pass on stock QEMU, the corresponding fix (and its proof) is no longer
needed — or its proof no longer proves anything."""
import re

import pytest

import lab as lablib

STOCK_QEMU = "/usr/bin/qemu-system-x86_64"


@pytest.fixture(scope="module")
def stock_lab(build_dir, tmp_path_factory):
    lab = lablib.Lab(build_dir, run_dir=tmp_path_factory.mktemp("stock-lab"), qemu=STOCK_QEMU)
    try:
        lab.start()
        lab.create_guest("tiny")
    except Exception:
        lab.collect_logs(build_dir / "lab-logs" / "stock-startup")
        lab.close()
        raise
    yield lab
    lab.close()


def last_tiny_line(lab):
    lab.wait_progress("tiny", beyond=lab.progress("tiny"))
    line = re.findall(r"^tiny: iter=.*$", lab.console("tiny"), re.M)[-1]
    return {k: int(v, 0) for k, v in re.findall(r"(\w+)=(0x[0-9a-f]+|\d+)", line)}


def test_stock_qemu_hides_int3_from_xen(stock_lab, tiny_symbols):
    """Bug 1: the guest's int3 bypasses the #BP intercept, so Xen's
    software-breakpoint monitor never sees it; the guest's own IDT does."""
    domid = stock_lab.domid("tiny")
    before = last_tiny_line(stock_lab)
    r = stock_lab.run(f"timeout -s INT 8 xen-access {domid} breakpoint", timeout=60)
    assert "Breakpoint:" not in r.stdout, r.stdout[-500:]
    after = last_tiny_line(stock_lab)
    assert after["bp"] > before["bp"]


def test_stock_qemu_never_fires_guest_dr0(stock_lab):
    """Bug 2: DR7 loaded by plain assignment on VMRUN never arms DR0: the
    guest's own hardware breakpoint on tiny_hw_target never hits."""
    status = last_tiny_line(stock_lab)
    assert status["iter"] > 0 and status["dr0"] == 0, status


def test_stock_qemu_crashes_linux_with_default_tsc_mode(stock_lab):
    """Bug 3: RDTSCP reported as RDTSC; Xen emulates the wrong instruction
    and a Linux PVH guest dies in early boot."""
    with pytest.raises(lablib.LabError, match="crashed|gone"):
        stock_lab.create_guest("linux", timeout=600)
    assert "Insn mismatch" in stock_lab.sh("xl dmesg") or \
        "Insn mismatch" in (stock_lab.run_dir / "serial.log").read_text(errors="replace")
