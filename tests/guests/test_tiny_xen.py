"""The tiny guest on the real Xen of the nested lab (tests/lab): what stock
QEMU cannot show. vCPU 1 brought up through VCPUOP_initialise/VCPUOP_up,
the PV console ring next to port 0xE9, and the self-test counters moving
with Xen's #DB interception in between.

Uses the session's shared lab (tests/conftest.py): other tests may have
changed tiny's globals through a debugger, so every check compares two
consecutive progress lines taken with the same tiny_selftest_flags instead
of assuming the defaults.
"""
import re

FIELD_RE = re.compile(r"(\w+)=(0x[0-9a-f]+|-?\d+)")
LINE_RE = re.compile(r"^tiny: iter=.*$", re.M)
BOOT_RE = re.compile(r"^tiny: boot .*$", re.M)


def _last_line(lab):
    lines = LINE_RE.findall(lab.console("tiny"))
    assert lines, lab.console("tiny")[-2000:]
    return {k: int(v, 0) for k, v in FIELD_RE.findall(lines[-1])}


def _two_lines(lab, tries=5):
    """Two consecutive progress lines with the same self-test flags."""
    for _ in range(tries):
        lab.wait_progress("tiny", beyond=lab.progress("tiny"), timeout=120)
        a = _last_line(lab)
        lab.wait_progress("tiny", beyond=a["iter"], timeout=120)
        b = _last_line(lab)
        if a["flags"] == b["flags"] and b["iter"] > a["iter"]:
            return a, b
    raise AssertionError(f"tiny's flags kept changing: {a} {b}")


def test_tiny_boots_on_xen_with_two_vcpus(lab):
    boots = BOOT_RE.findall(lab.console("tiny"))
    assert boots, lab.console("tiny")[-2000:]
    boot = dict(FIELD_RE.findall(boots[-1]))
    assert boot["xen"] == "1" and boot["vcpus"] == "2", boots[-1]
    assert int(boot["magic"], 0) == 0x336EC578
    assert int(boot["mem_kib"]) >= 32 * 1024 - 1024
    rows = [r.split() for r in lab.sh("xl vcpu-list tiny").splitlines()[1:]]
    assert len(rows) == 2 and all(float(r[5]) > 0 for r in rows), rows


def test_tiny_vcpu1_runs_and_counters_follow_flags(lab):
    a, b = _two_lines(lab)
    n = b["iter"] - a["iter"]
    flags = b["flags"]
    # vCPU 1's loop is independent of vCPU 0's: it only has to move.
    assert b["vcpu1"] > a["vcpu1"], (a, b)
    assert b["shared"] - a["shared"] >= n + (b["vcpu1"] - a["vcpu1"]), (a, b)
    assert b["counter"] - a["counter"] == n * b["delta"] or a["delta"] != b["delta"], (a, b)
    # Each enabled self-test moves its counter once per iteration; Xen
    # intercepts every #DB on AMD and must re-inject it intact.
    assert b["bp"] - a["bp"] == (n if flags & 1 else 0), (a, b)
    assert b["dr0"] - a["dr0"] == (n if flags & 2 else 0), (a, b)
    assert b["pf"] - a["pf"] == (n if flags & 4 else 0), (a, b)
    assert b["step"] - a["step"] == (7 * n if flags & 8 else 0), (a, b)
    assert b["rfign"] == a["rfign"], (a, b)
    assert b["dropped"] == a["dropped"], (a, b)


def test_tiny_pv_console_and_port_e9_agree(lab):
    """The same boot line reaches xenconsoled's log (PV console ring) and
    Xen's own console (port 0xE9, guest_loglvl=all, prefixed (dN))."""
    domid = lab.domid("tiny")
    pv = BOOT_RE.findall(lab.console("tiny"))[-1]
    serial = (lab.run_dir / "serial.log").read_text(errors="replace")
    assert f"(d{domid}) {pv}" in serial, (pv, serial[-2000:])
