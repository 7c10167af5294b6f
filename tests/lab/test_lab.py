"""The nested lab itself: dom0 and both guests run on the real Xen, and each
of the three QEMU fixes (tests/lab/qemu-svm-fixes.patch) is proven with an
oracle this project did not write: Xen's own xen-access tool, and the
guests' own behaviour."""
import json
import re
import time

import lab as lablib

import pytest

TINY_LINE = re.compile(r"^tiny: iter=.*$", re.M)


def tiny_status(lab):
    """The guest's latest progress line, as a dict of its numbers."""
    lines = TINY_LINE.findall(lab.console("tiny"))
    assert lines, f"tiny printed no progress line:\n{lab.console('tiny')[-2000:]}"
    return {k: int(v, 0) for k, v in re.findall(r"(\w+)=(0x[0-9a-f]+|\d+)", lines[-1])}


def wait_tiny_line(lab):
    """Wait for a progress line newer than the last one, and parse it."""
    lab.wait_progress("tiny", beyond=lab.progress("tiny"))
    return tiny_status(lab)


def test_dom0_runs_xen_417_with_hap(lab):
    info = lab.sh("xl info")
    assert re.search(r"^xen_version\s+: 4\.17\.", info, re.M), info
    caps = re.search(r"^virt_caps\s+: (.*)$", info, re.M).group(1).split()
    # SVM with nested paging, from QEMU's emulated AMD CPU: PVH guests need HAP.
    assert "hvm" in caps and "hap" in caps, caps
    boot = (lab.run_dir / "serial.log").read_text(errors="replace")
    assert "SVM: Supported advanced features" in boot and "Hardware Assisted Paging (HAP) detected" in boot


@pytest.mark.parametrize("guest", ["tiny", "linux"])
def test_guest_makes_progress(lab, guest):
    before = lab.progress(guest)
    assert before is not None
    after = lab.wait_progress(guest, beyond=before, timeout=60)
    assert after > before
    assert lab.state(guest) is not None and "c" not in lab.state(guest)


def test_linux_guest_has_two_busy_vcpus(lab):
    assert "linux: vcpus=2" in lab.console("linux")
    out = lab.sh("xl vcpu-list linux")
    rows = [l.split() for l in out.splitlines()[1:]]
    assert len(rows) == 2, out
    # Both vCPUs are online and have run (CPU time > 0).
    assert all(float(r[5]) > 0 for r in rows), out


def test_linux_kernel_symbols_match_system_map(lab, linux_system_map):
    """The guest prints some /proc/kallsyms entries; System.map (from the
    -dbg package) must give the same addresses, since tests rely on it."""
    seen = re.findall(r"linux: sym ([0-9a-f]+) (\S+)", lab.console("linux"))
    assert len(seen) >= 4, lab.console("linux")[-2000:]
    for addr, name in seen:
        assert linux_system_map[name] == int(addr, 16), name


def test_linux_boots_with_default_tsc_mode(lab):
    """QEMU fix 3 (RDTSCP intercept): without it, Xen emulates RDTSCP as
    RDTSC and a Linux PVH guest dies in early boot unless tsc_mode=native."""
    cfg = lab.sh("xl list -l linux")
    mode = re.search(r'"tsc_mode":\s*"(\w+)"', cfg)
    assert mode is None or mode.group(1) == "default", mode.group(0)
    assert "Insn mismatch" not in lab.sh("xl dmesg")
    # The guest really reads TSC_AUX with RDTSCP: it reaches userspace and
    # keeps going, and its kernel saw rdtscp in the CPU flags.
    assert "linux: heartbeat" in lab.console("linux")


def _xen_access(lab, domid, mode, seconds):
    r = lab.run(f"timeout -s INT {seconds} xen-access {domid} {mode}", timeout=seconds + 60)
    # xen-access exits non-zero when interrupted; its output is the evidence.
    assert "Error" not in r.stderr, r
    return r.stdout


def test_xen_access_sees_guest_int3(lab, tiny_symbols):
    """QEMU fix 1 (INT3 checked against the #BP exception intercept): Xen's
    own xen-access, in breakpoint mode, sees tiny's int3 as software
    breakpoint events; it re-injects each, so tiny's #BP counter still
    moves."""
    domid = lab.domid("tiny")
    before = wait_tiny_line(lab)
    out = _xen_access(lab, domid, "breakpoint", 10)
    hits = re.findall(r"Breakpoint: rip=([0-9a-f]+), gfn=([0-9a-f]+) \(vcpu (\d+)\)", out)
    assert hits, out
    insn = tiny_symbols["tiny_self_int3_insn"]
    assert {int(rip, 16) for rip, _, _ in hits} == {insn}, (hits, hex(insn))
    assert {vcpu for _, _, vcpu in hits} == {"0"}
    after = wait_tiny_line(lab)
    assert after["bp"] > before["bp"], (before, after)


def test_hardware_breakpoint_reaches_debug_monitor(lab, tiny_symbols):
    """QEMU fix 2 (DR7 loaded through cpu_x86_update_dr7 on VMRUN): tiny
    arms DR0 on tiny_hw_target itself; Xen's debug-exception monitor, driven
    by xen-access in debug mode, sees each hit there."""
    domid = lab.domid("tiny")
    before = wait_tiny_line(lab)
    out = _xen_access(lab, domid, "debug", 10)
    hits = re.findall(r"Debug exception: rip=([0-9a-f]+), vcpu (\d+)", out)
    target = tiny_symbols["tiny_hw_target"]
    assert any(int(rip, 16) == target for rip, _ in hits), (out[-2000:], hex(target))
    after = wait_tiny_line(lab)
    # xen-access re-injects each #DB: the guest's own handler keeps counting.
    assert after["dr0"] > before["dr0"], (before, after)


def test_rdtscp_reaches_xen_as_rdtscp(lab):
    """QEMU fix 3 again, with the guest's own RDTSCP as the probe: a second
    tiny that executes RDTSCP every iteration (tiny.selftest=16) runs on;
    on stock QEMU it stops at once on the #GP Xen injects (see
    test_stock_qemu.py)."""
    lab.create_guest("tiny-rdtscp", kind="tiny", cmdline="tiny.selftest=16")
    try:
        first = lab.progress("tiny-rdtscp")
        lab.wait_progress("tiny-rdtscp", beyond=first, timeout=120)
        line = re.findall(r"^tiny: iter=.*$", lab.console("tiny-rdtscp"), re.M)[-1]
        fields = dict(re.findall(r"(\w+)=(\d+)", line))
        assert int(fields["rdtscp"]) == int(fields["iter"]) > 0, line
        assert "FATAL" not in lab.console("tiny-rdtscp")
    finally:
        lab.destroy("tiny-rdtscp")


def test_port_forward_reaches_a_server_in_dom0(lab):
    """lab.forward: 127.0.0.1:PORT on this machine reaches a port in dom0 —
    here a second lab-agent, the same way gdb will reach vmistub."""
    lab.sh("setsid /opt/lab/lab-agent 7001 >/tmp/agent-7001.log 2>&1 </dev/null & "
           "echo $! >/tmp/agent-7001.pid; "
           "until grep -q listening /tmp/agent-7001.log; do usleep 20000; done", timeout=60)
    port = lab.forward(7001)
    r = lablib.Agent(port).run("xl domid tiny")
    assert r.ok and int(r.stdout) == lab.domid("tiny")
    lab.sh("kill $(cat /tmp/agent-7001.pid)")


def test_dom0_keeps_its_vector_registers_while_guests_run(lab, figures):
    """The lab's workaround for QEMU losing dom0's vector registers across
    Xen's lazy FPU switching (spec-ctrl=eager-fpu, tests/lab/README.md
    "Known instability") holds: two fpu-check processes in dom0, switching
    at every round, and an xl loop beside them while both HVM guests run,
    see every register and every copy come back exactly. On a lab booted
    with spec-ctrl=no-eager-fpu this test failed: 962 of 175,518 rounds
    found registers changed (xmm0 read as 0), 42 copies differed, and 5 of
    22 xl runs failed."""
    seconds = 45
    before = {g: lab.progress(g) for g in ("tiny", "linux")}
    out = lab.sh(f"B=/opt/vmistub/bin; $B/fpu-check {seconds} >/tmp/fpu1 2>&1 & "
                 f"$B/fpu-check {seconds} >/tmp/fpu2 2>&1 & "
                 f"n=0; bad=0; end=$(($(date +%s) + {seconds})); "
                 "while [ $(date +%s) -lt $end ]; do "
                 "xl list >/dev/null 2>&1 || bad=$((bad + 1)); n=$((n + 1)); done; "
                 "wait; cat /tmp/fpu1 /tmp/fpu2; echo xl_runs=$n xl_failures=$bad",
                 timeout=seconds + 120)
    checks = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    xl = dict(re.findall(r"(xl_\w+)=(\d+)", out))
    figures("lab.dom0_fpu_check", f"{sum(c['rounds'] for c in checks)} rounds, "
            f"{xl.get('xl_runs')} xl runs in {seconds} s")
    assert len(checks) == 2 and all(c["rounds"] > 0 for c in checks), out
    assert all(c["bad_registers"] == 0 and c["bad_copies"] == 0 for c in checks), out
    assert int(xl["xl_runs"]) > 0 and xl["xl_failures"] == "0", out
    # Both guests ran meanwhile: the corruption needs HVM vCPUs running.
    for guest, p0 in before.items():
        lab.wait_progress(guest, beyond=p0, timeout=60)


def test_put_copies_a_file_into_dom0(lab, tmp_path):
    blob = tmp_path / "blob"
    blob.write_bytes(bytes(range(256)) * 4096)
    lab.put(blob, "/tmp/blob", 0o600)
    assert lab.sh("md5sum /tmp/blob").split()[0] == __import__("hashlib").md5(blob.read_bytes()).hexdigest()
    assert lab.get("/tmp/blob") == blob.read_bytes()


def test_pause_stops_a_guest_and_unpause_resumes_it(lab):
    lab.pause("tiny")
    try:
        assert "p" in lab.state("tiny")
        # Let xenconsoled drain what the guest wrote before the pause.
        time.sleep(1)
        before = lab.sh("xl list -v tiny")  # CPU time stands still while paused
        t0 = float(before.splitlines()[1].split()[5])
        p0 = lab.progress("tiny")
        time.sleep(3)
        assert lab.progress("tiny") == p0
        assert float(lab.sh("xl list -v tiny").splitlines()[1].split()[5]) == t0
    finally:
        lab.unpause("tiny")
    assert "p" not in lab.state("tiny")
    lab.wait_progress("tiny", beyond=p0, timeout=60)


def test_destroy_and_create_again(lab):
    old = lab.domid("tiny")
    lab.destroy("tiny")
    assert lab.state("tiny") is None
    new = lab.create_guest("tiny")
    assert new != old
    assert lab.progress("tiny") is not None


def test_hung_boot_is_booted_again_and_reported(build_dir, tmp_path):
    """A dom0 that is not ready in time (once, in CI: a dom0 kernel that
    stopped for good early in its boot) is booted once more, reported with
    the incidents and its console kept; a second failure is raised. Here
    3 s is too short for any boot, so both attempts fail."""
    lab = lablib.Lab(build_dir, run_dir=tmp_path)
    try:
        with pytest.raises(lablib.LabError, match="dom0 was not ready within 3 s"):
            lab.start(timeout=3, attempts=2)
    finally:
        lab.close()
    assert lab.incidents == ["lab boot attempt 1 failed: dom0 was not ready within 3 s"]
    assert (tmp_path / "serial-attempt1.log").exists()
