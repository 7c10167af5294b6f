"""The control experiment for tests/lab/qemu-svm-fixes.patch: the same lab on
Debian's stock QEMU 7.2 (/usr/bin/qemu-system-x86_64), where the tests that
prove each fix in test_lab.py must see the bug. If one of these starts to
pass on stock QEMU, the corresponding fix (and its proof) is no longer
needed — or its proof no longer proves anything."""
import re
import time

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


def test_stock_qemu_loses_guest_dr0_hits(stock_lab):
    """Bug 2: DR7 loaded by plain assignment on VMRUN leaves DR0 unarmed
    after every world switch: the guest's own hardware breakpoint on
    tiny_hw_target, called once per iteration, misses hits (the patched
    lab counts exactly one per iteration)."""
    status = last_tiny_line(stock_lab)
    assert status["iter"] > 0 and status["dr0"] < status["iter"], status


def test_stock_qemu_reports_rdtscp_as_rdtsc(stock_lab):
    """Bug 3: Xen, told RDTSC, decodes RDTSCP, logs "Insn mismatch" and
    injects #GP: the tiny that executes RDTSCP stops on that vector. (This
    is what kills a Linux PVH guest in early boot.)"""
    # A first xl create that dom0 killed may have made the domain already
    # (FRESH22: "Domain with name tiny-rdtscp already exists" on the
    # second): each attempt starts from none.
    stock_lab.sh_twice("xl destroy tiny-rdtscp 2>/dev/null; "
                       "xl create /opt/vmistub/guests/tiny/tiny.cfg "
                       "'name=\"tiny-rdtscp\"' 'cmdline=\"tiny.selftest=16\"'")
    deadline = time.monotonic() + 120
    while "FATAL" not in stock_lab.console("tiny-rdtscp"):
        assert time.monotonic() < deadline, stock_lab.console("tiny-rdtscp")[-2000:]
        time.sleep(0.5)
    assert re.search(r"tiny: FATAL vector=13 ", stock_lab.console("tiny-rdtscp"))
    serial = (stock_lab.run_dir / "serial.log").read_text(errors="replace")
    assert "Insn mismatch" in serial or "Insn mismatch" in stock_lab.sh("xl dmesg")
