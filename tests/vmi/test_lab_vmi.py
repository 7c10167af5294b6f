"""The vmi layer and its Xen driver against the real Xen 4.17 of the lab
(emulated AMD CPU: the TF/#DB path, no MTF, no mem_access).

Every test runs tests/vmi/vmi_probe.c in dom0 and checks what it reports
against a truth vmistub did not produce: the tiny guest's ELF symbols and
objdump's disassembly, the guest's own counters on its console, the Linux
guest's System.map. The guests must run on unharmed afterwards: several
tests end by checking that."""
import json
import re
import statistics
import subprocess
import time

import pytest


PROBE = "/opt/vmistub/bin/vmi-probe"
VOFF = 0xffffffff80000000          # tiny: virtual = physical + VOFF
TINY_LINE = re.compile(r"^tiny: iter=.*$", re.M)
LMA = 1 << 10


def probe(lab, guest, *args, timeout=240, ok=True):
    """Run vmi-probe in dom0; its JSON lines, parsed."""
    cmd = " ".join([PROBE, guest, *(hex(a) if isinstance(a, int) else str(a) for a in args)])
    r = lab.run(cmd, timeout=timeout)
    lines = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
    if ok:
        assert r.ok, f"{cmd}: {r}\n{r.stdout}\n{r.stderr}"
        assert not any("error" in l for l in lines), lines
    return lines


def tiny_status(lab):
    lines = TINY_LINE.findall(lab.console("tiny"))
    assert lines, lab.console("tiny")[-2000:]
    return {k: int(v, 0) for k, v in re.findall(r"(\w+)=(0x[0-9a-f]+|\d+)", lines[-1])}


def next_tiny_status(lab):
    lab.wait_progress("tiny", beyond=lab.progress("tiny"), timeout=180)
    return tiny_status(lab)


def read_u64(lab, va, guest="tiny"):
    out = probe(lab, guest, "read-virt", 0, va, 8)[0]
    assert out["done"] == 8, out
    return int.from_bytes(bytes.fromhex(out["hex"]), "little")


def assert_tiny_healthy(lab, own_steps=0):
    """The guest runs on, and its own traps still balance: one #BP, one
    DR0 hit and one demand fault per iteration, no single-step it did not
    ask for (own_steps: at most that many, for a test that makes Xen
    report one), no fatal exception."""
    before = tiny_status(lab)
    after = next_tiny_status(lab)
    assert after["iter"] > before["iter"]
    for k in ("bp", "dr0", "pf"):
        assert after[k] - before[k] == after["iter"] - before["iter"], (k, before, after)
    assert 0 <= after["step"] - before["step"] <= own_steps, (before, after)
    assert after["vcpu1"] > before["vcpu1"], "vCPU 1 stopped"
    # The console log outlives a re-created guest: look at this boot only.
    assert "FATAL" not in lab.console("tiny").rsplit("tiny: boot", 1)[-1]


def background(lab, script, out):
    """Start script in dom0 and return at once (the agent waits for every
    holder of its output to close it, so all of them are redirected)."""
    lab.sh(f"rm -f {out}; sh -c '{script}' </dev/null >/dev/null 2>&1 &")


def wait_for_text(lab, path, text, timeout):
    """Wait until dom0's file path holds text; its contents then."""
    deadline = time.monotonic() + timeout
    while text not in (out := lab.run(f"cat {path}").stdout):
        assert time.monotonic() < deadline, out
        time.sleep(0.3)
    return out


def objdump(elf):
    """address -> (next address, mnemonic, direct target or None)."""
    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", "-M", "att", str(elf)],
                         check=True, capture_output=True, text=True).stdout
    rows = []
    for m in re.finditer(r"^[ \t]*([0-9a-f]+):[ \t]+(\S+)[ \t]*(.*)$", out, re.M):
        addr, mnem, ops = int(m.group(1), 16), m.group(2), m.group(3)
        t = re.match(r"([0-9a-f]+) <", ops)
        rows.append((addr, mnem, int(t.group(1), 16) if t else None))
    insns = {}
    for (a, mnem, t), nxt in zip(rows, rows[1:] + [(None, None, None)]):
        insns[a] = (nxt[0], mnem, t)
    return insns


# --- capabilities -----------------------------------------------------------
def test_info_picks_tf_stepping_on_amd(lab):
    info = probe(lab, "tiny", "info")[0]
    assert info["driver"] == "xen" and "svm" in info["platform"], info
    caps = info["caps"]
    assert caps["swbreak"] and caps["debug-exception"] and caps["hwbreak"] and caps["watch"]
    assert caps["reinject"] and caps["set-regs"] and caps["write-mem"]
    # What Xen 4.17 refuses on SVM (XEN-LAB.md): no MTF, no mem_access.
    assert not caps["mtf"] and not caps["mem-access"], caps
    assert info["step"] == "tf" and "MTF" in info["step_why"], info
    assert info["nr_vcpus"] == 2


# --- memory and translation -------------------------------------------------
def test_read_named_globals(lab, tiny_symbols):
    assert read_u64(lab, tiny_symbols["tiny_delta"]) == tiny_status(lab)["delta"]
    assert read_u64(lab, tiny_symbols["tiny_read_target"]) == 0x5eed
    c1 = read_u64(lab, tiny_symbols["tiny_counter"])
    st = next_tiny_status(lab)
    c2 = read_u64(lab, tiny_symbols["tiny_counter"])
    assert c1 <= st["counter"] <= c2, (c1, st["counter"], c2)


def test_translate_every_kind_of_mapping(lab, tiny_symbols):
    va = tiny_symbols["tiny_counter"]
    t = probe(lab, "tiny", "translate", 0, va)[0]
    assert int(t["gpa"], 16) == va - VOFF and t["leaf"] == "PT" and t["levels"] == 4, t
    va = tiny_symbols["tiny_big_counter"]
    t = probe(lab, "tiny", "translate", 0, va)[0]
    assert int(t["gpa"], 16) == va - VOFF and t["leaf"] == "PD", t
    assert int(t["page_size"], 16) == 2 << 20
    # Nothing is mapped past the 2 MiB page (README: PD[2] not present).
    t = probe(lab, "tiny", "translate", 0, 0xffffffff80400000, ok=False)[0]
    assert t["fail"] == "not present" and t["fail_level"] == "PD", t
    t = probe(lab, "tiny", "translate", 0, 0x0000800000000000, ok=False)[0]
    assert t["fail"] == "non-canonical address", t


def test_virtual_read_stops_at_first_unmapped_page(lab):
    r = probe(lab, "tiny", "read-virt", 0, 0xffffffff803ffff8, 16, ok=False)[0]
    assert r["done"] == 8 and r["fail"] == "not present" and r["fail_level"] == "PD", r


def test_write_global_and_the_guest_acts_on_it(lab, tiny_symbols):
    delta = tiny_symbols["tiny_delta"]
    try:
        probe(lab, "tiny", "write-virt", 0, delta, (3).to_bytes(8, "little").hex())
        a = next_tiny_status(lab)
        b = next_tiny_status(lab)
        assert a["delta"] == 3 and b["delta"] == 3, (a, b)
        assert b["counter"] - a["counter"] == 3 * (b["iter"] - a["iter"]), (a, b)
    finally:
        probe(lab, "tiny", "write-virt", 0, delta, (1).to_bytes(8, "little").hex())
    assert next_tiny_status(lab)["delta"] == 1


# --- registers --------------------------------------------------------------
def test_tiny_registers_and_write_round_trip(lab, tiny_symbols):
    r = probe(lab, "tiny", "regs", 0)[0]
    layout = re.search(r"tiny: layout .* cr3=(0x[0-9a-f]+)", lab.console("tiny"))
    assert int(r["cr3"], 16) == int(layout.group(1), 16), (r["cr3"], layout.group(0))
    assert int(r["efer"], 16) & LMA and int(r["cr0"], 16) & (1 << 31)
    assert int(r["cs"]["sel"], 16) == 0x8, r["cs"]
    # The guest arms DR0 itself at tiny_hw_target (README self-test b).
    assert int(r["dr0"], 16) == tiny_symbols["tiny_hw_target"]
    rt = probe(lab, "tiny", "regs-roundtrip", 1)[0]
    assert rt["equal"], rt
    assert_tiny_healthy(lab)


def test_record_write_keeps_the_guest_tsc_steady(lab):
    """A register the vCPU context cannot carry (a segment base) is written
    through an HVM save image, whose CPU records set every vCPU's TSC. Built
    from partial reads, they held a TSC computed for the last full save or
    load (vmi/REVIEW-intel.md, finding 4): measured here, one such write
    moved tiny's TSC from 6.47e18 to 1.29e19. tiny prints its vCPU 0's TSC
    in every report; across two writes 4 s apart it must grow by about as
    much from report to report as it did before (within 10 times the
    median step: the shared machine's pace varies, a jump does not)."""
    fs = int(probe(lab, "tiny", "regs", 1)[0]["fs"]["base"], 16)
    start = len(TINY_LINE.findall(lab.console("tiny")))
    out = probe(lab, "tiny", "set-reg", 1, "fs_base", fs ^ 0x1000, 4, fs)
    assert [int(l["value"], 16) for l in out] == [fs ^ 0x1000, fs], out
    next_tiny_status(lab)
    next_tiny_status(lab)
    lines = TINY_LINE.findall(lab.console("tiny"))[start - 1 if start else 0:]
    tscs = [int(re.search(r"tsc=(\d+)", l).group(1)) for l in lines]
    steps = [b - a for a, b in zip(tscs, tscs[1:])]
    assert len(steps) >= 2 and all(0 < d <= 10 * statistics.median(steps) for d in steps), steps
    assert_tiny_healthy(lab)


def test_register_write_xen_refuses_leaves_the_guest_running(lab):
    """A record write Xen rejects (EFER.SVME on a guest without nested
    virtualisation: hvm_efer_valid) fails after hvm_load has marked every
    vCPU down: the records as saved go back, the write reports EINVAL,
    EFER is unchanged and both vCPUs run on (without that undo the guest
    stopped for good)."""
    efer = int(probe(lab, "tiny", "regs", 0)[0]["efer"], 16)
    out = probe(lab, "tiny", "set-reg", 0, "efer", efer | (1 << 12), ok=False)
    assert out[-1].get("error") == "Invalid argument", out
    for vcpu in (0, 1):
        assert "error" not in probe(lab, "tiny", "regs", vcpu)[0]
    assert int(probe(lab, "tiny", "regs", 0)[0]["efer"], 16) == efer
    assert_tiny_healthy(lab)


def test_linux_vcpu_registers_are_sane(lab, linux_system_map):
    for vcpu in (0, 1):
        r = probe(lab, "linux", "regs", vcpu)[0]
        assert int(r["cs"]["sel"], 16) & ~3 == 0x10, r["cs"]
        assert int(r["efer"], 16) & LMA, r["efer"]
        assert int(r["cr0"], 16) & (1 << 31)
    # CR3 translates the kernel text: the banner System.map names reads
    # as the banner.
    banner = linux_system_map["linux_banner"]
    t = probe(lab, "linux", "translate", 0, banner)[0]
    assert "gpa" in t, t
    out = probe(lab, "linux", "read-virt", 0, banner, 14)[0]
    assert bytes.fromhex(out["hex"]) == b"Linux version ", out


# --- breakpoints, stepping, watchpoints --------------------------------------
def test_software_breakpoint_on_the_right_vcpu(lab, tiny_symbols):
    fn = tiny_symbols["tiny_step_counter"]
    out = probe(lab, "tiny", "break", fn, 5)
    hits = [l for l in out if l.get("event") == "break"]
    assert len(hits) == 5 and all(int(h["rip"], 16) == fn and h["vcpu"] == 0 for h in hits), out
    # tiny_vcpu1_work runs on vCPU 1 only.
    fn = tiny_symbols["tiny_vcpu1_work"]
    out = probe(lab, "tiny", "break", fn, 3)
    hits = [l for l in out if l.get("event") == "break"]
    assert len(hits) == 3 and all(h["vcpu"] == 1 and int(h["rip"], 16) == fn for h in hits), out
    # The guest's own int3, met meanwhile, went back to the guest.
    assert out[-1]["foreign"] == out[-1]["reinjected"]
    assert_tiny_healthy(lab)


def assert_follows_objdump(rips, insns):
    """Each RIP is where the instruction before it goes: its successor, a
    direct call's or jump's target, a ret to the call it returns from."""
    calls = []
    for a, b in zip(rips, rips[1:]):
        assert a in insns and b in insns, (hex(a), hex(b))
        nxt, mnem, target = insns[a]
        if mnem.startswith("call"):
            assert b == target, (hex(a), mnem, hex(b))
            calls.append(nxt)
        elif mnem.startswith("ret"):
            if calls:
                assert b == calls.pop(), (hex(a), hex(b))
        elif mnem.startswith("jmp") and target is not None:
            assert b == target, (hex(a), hex(b))
        elif mnem.startswith("j") and target is not None:
            assert b in (nxt, target), (hex(a), mnem, hex(b))
        elif mnem.startswith("j"):
            pass                            # indirect: any instruction
        else:
            assert b == nxt, (hex(a), mnem, hex(b))


def test_single_step_50_follows_objdump(lab, tiny_symbols, tiny_elf):
    insns = objdump(tiny_elf)
    start = tiny_symbols["tiny_fib"]
    out = probe(lab, "tiny", "step", 0, 50, start)[-1]
    rips = [int(x, 16) for x in out["rips"]]
    assert len(rips) == 51 and rips[0] == start, out
    assert_follows_objdump(rips, insns)
    assert_tiny_healthy(lab)


def test_stepping_into_the_guests_own_hardware_breakpoint(lab, tiny_symbols, tiny_elf):
    """tiny keeps DR0 on tiny_hw_target. Step from the call to it: the step
    lands there, and the next one faults on the guest's breakpoint before
    the instruction runs. That #DB is the guest's (its handler sets RF and
    the step goes on); taken for the step, every further step faulted
    again at the same RIP and the guest never got its #DB."""
    insns = objdump(tiny_elf)
    target = tiny_symbols["tiny_hw_target"]
    call = [a for a, (_, mnem, t) in insns.items() if mnem.startswith("call") and t == target]
    assert len(call) == 1, call
    regs = probe(lab, "tiny", "regs", 0)[0]
    assert int(regs["dr0"], 16) == target and int(regs["dr7"], 16) & 1, regs
    steps = read_u64(lab, tiny_symbols["tiny_db_step_count"])
    out = probe(lab, "tiny", "step", 0, 8, call[0])[-1]
    rips = [int(x, 16) for x in out["rips"]]
    assert rips[:2] == call + [target], out
    assert_follows_objdump(rips, insns)
    assert out["reinjected"] >= 1, out
    # The guest's handler got its DR0 hit (assert_tiny_healthy: one per
    # iteration) and, from Xen, a single-step as well: svm_inject_event
    # adds DR6.BS to any #DB injected while TF is set, which the session's
    # own step needs (vmi/README.md, known limits).
    assert read_u64(lab, tiny_symbols["tiny_db_step_count"]) - steps == 1
    assert_tiny_healthy(lab, own_steps=1)


def test_hardware_breakpoint(lab, tiny_symbols):
    fn = tiny_symbols["tiny_step_counter"]
    before = probe(lab, "tiny", "regs", 0)[0]
    out = probe(lab, "tiny", "hwbreak", fn, 3)
    hits = [l for l in out if l.get("event") == "hwbreak"]
    assert len(hits) == 3, out
    assert all(int(h["rip"], 16) == fn and h["vcpu"] == 0 and h["cause"] == "hwbreak"
               for h in hits), hits
    after = probe(lab, "tiny", "regs", 0)[0]
    # The guest's own DR0/DR7 are as they were; the session's slot is gone.
    assert after["dr7"] == before["dr7"] and after["dr3"] == before["dr3"], (before, after)
    assert_tiny_healthy(lab)


def test_breakpoint_taken_back_leaves_no_stray_debug_exception(lab, tiny_symbols):
    """Xen reloads a vCPU's DR7 only when it enables something, so a DR7
    written back with nothing enabled left the session's last breakpoint
    armed: one more #DB, with no cause, each time one was taken back, and
    one after the session (vmi/xen/xen_dr7.c). tiny's vCPU 1 enables no
    breakpoint of its own, and tiny counts every #DB without a cause."""
    fn = tiny_symbols["tiny_vcpu1_work"]
    no_cause = tiny_symbols["tiny_db_no_cause"]
    regs = probe(lab, "tiny", "regs", 1)[0]
    assert int(regs["dr7"], 16) & 0xff == 0, regs      # the premise
    before = read_u64(lab, no_cause)
    out = probe(lab, "tiny", "hwbreak", fn, 3)
    hits = [l for l in out if l.get("event") == "hwbreak"]
    assert len(hits) == 3 and all(h["vcpu"] == 1 for h in hits), out
    time.sleep(2)                 # tiny_vcpu1_work runs many times a second
    assert read_u64(lab, no_cause) == before, out
    after = probe(lab, "tiny", "regs", 1)[0]
    assert (after["dr3"], after["dr7"]) == (regs["dr3"], regs["dr7"]), (regs, after)
    assert_tiny_healthy(lab)


def test_write_watchpoint(lab, tiny_symbols):
    target = tiny_symbols["tiny_watch_target"]
    fn = tiny_symbols["tiny_step_counter"]
    out = probe(lab, "tiny", "watch", target, 8, "w", 4)
    hits = [l for l in out if l.get("event") == "watch"]
    assert len(hits) == 4, out
    values = [int.from_bytes(bytes.fromhex(h["value"]), "little") for h in hits]
    # One write per iteration, reported after the store, inside the writer.
    assert all(h["vcpu"] == 0 and fn < int(h["rip"], 16) < tiny_symbols["tiny_fib"]
               for h in hits), hits
    assert all(b - a == 1 for a, b in zip(values, values[1:])), values
    # The guest's own DR0 hits meanwhile were not taken for watch hits.
    assert out[-1]["foreign"] == out[-1]["reinjected"]
    assert_tiny_healthy(lab)


def test_guest_int3_still_reaches_its_handler(lab, tiny_symbols):
    bp, db = tiny_symbols["tiny_bp_count"], tiny_symbols["tiny_db_count"]
    out = probe(lab, "tiny", "reinject-check", 8, bp, db)[0]
    before = [int(x, 16) for x in out["before"]]
    after = [int(x, 16) for x in out["after"]]
    assert out["reinjected"] == out["foreign"] == out["events"] > 0, out
    assert after[0] > before[0] and after[1] > before[1], out
    assert_tiny_healthy(lab)


@pytest.mark.parametrize("release", [1, 0])
def test_one_vcpu_runs_while_the_other_stays_held(lab, tiny_symbols, release):
    """DESIGN.md's hard problem: no per-vCPU pause in Xen, so every vCPU is
    held by an unanswered event (vmi_hold_all), then one is released for
    5 s. The guest's own counters say which vCPU ran: tiny_iterations is
    vCPU 0's, tiny_vcpu1_counter vCPU 1's. The released one runs on (its
    own int3s reach its own handler meanwhile: vCPU 0 takes one per
    iteration); the held one does not move at all. (vmi-probe once ended
    the session when everything was held, and the released vCPU ran for
    no time: "after" then moved by 0 to 61, and vCPU 0 looked stalled.)"""
    counters = [tiny_symbols["tiny_iterations"], tiny_symbols["tiny_vcpu1_counter"]]
    out = probe(lab, "tiny", "hold-all", release, 5, *counters)[0]
    assert out["held"] == 2 and out["still_held"] == 1, out
    at = [int(x, 16) for x in out["at_hold"]]
    after = [int(x, 16) for x in out["after_run"]]
    held = 1 - release
    assert after[release] > at[release] + 100, out
    assert after[held] == at[held], out
    assert_tiny_healthy(lab)


# --- teardown ------------------------------------------------------------------
def test_teardown_restores_every_byte_and_the_guest_runs_on(lab, tiny_symbols):
    text = VOFF + 0x100000                  # README: .text starts here
    size = (tiny_symbols["__text_end"] - text + 0xfff) & ~0xfff
    snap = "/tmp/vmi-text.snap"
    regs0 = probe(lab, "tiny", "regs", 0)[0]
    probe(lab, "tiny", "snapshot", 0, text, size, snap)
    probe(lab, "tiny", "break", tiny_symbols["tiny_shared_fn"], 4)
    probe(lab, "tiny", "step", 0, 10, tiny_symbols["tiny_update_checksum"])
    probe(lab, "tiny", "hwbreak", tiny_symbols["tiny_long_line"], 2)
    cmp = probe(lab, "tiny", "compare", 0, text, size, snap)[0]
    assert cmp["equal"], cmp
    regs1 = probe(lab, "tiny", "regs", 0)[0]
    for k in ("dr0", "dr1", "dr2", "dr3", "dr7"):
        assert regs1[k] == regs0[k], (k, regs0[k], regs1[k])
    assert int(regs1["rflags"], 16) & 0x100 == 0
    probe(lab, "tiny", "monitor-check")     # no monitor ring left behind
    assert_tiny_healthy(lab)


def test_benchmark_figures(lab, tiny_symbols, figures):
    """Printed, not asserted: the layer beside the direct libxenctrl loop,
    interleaved run by run so that the shared machine's load hits both
    alike, and each first in every other run; medians of 21 runs, the
    layer's time over the direct one, and that ratio for each run and its
    median. 21, not 7: on the 2-CPU lab host one run's ratio ranges over
    0.6-1.3 (Xen's scheduler places vmi-probe beside one of tiny's two busy
    vCPUs or not), and the median of 7 moved by 0.3 between three groups of
    7 in one dev-lab series (step 1.04, 0.84, 0.62; 0.70 over all 21).
    Both loops take ~0.5 s per run here."""
    fn = tiny_symbols["tiny_step_counter"]
    # Both step loops start where vCPU 0 enters tiny_fib (pure computing,
    # no instruction Xen completes itself): the same instructions for both.
    fib = tiny_symbols["tiny_fib"]
    # Wall time per event is what a user waits; dom0 CPU time per event
    # (vmi-probe's getrusage, hypercalls included) is what the layer
    # itself costs, whatever pace the guest and the shared machine set.
    per_op = {}
    late = 0
    for run in range(21):
        # The first loop of a run may meet the guest, or QEMU's cache of
        # translated code, colder than the second: the order alternates.
        order = " direct-first" if run % 2 else ""
        for what, args in (("swbreak", f"{fn} 400{order}"), ("step", f"0 400 {fib}{order}")):
            for l in probe(lab, "tiny", "bench", what, *args.split(), timeout=900):
                if l.get("us_per_op") is not None:
                    for kind in ("us_per_op", "cpu_us_per_op"):
                        per_op.setdefault((what, l["impl"], kind), []).append(l[kind])
                elif l.get("bench", "").endswith("-stats") and run == 0:
                    figures(f"vmi.bench.{l.pop('bench')}", l)
                late += l.get("found_late", 0)
    for (what, impl, kind), vals in sorted(per_op.items()):
        figures(f"vmi.bench.{what}.{impl}.{kind}_median", round(statistics.median(vals), 1))
        figures(f"vmi.bench.{what}.{impl}.{kind}_runs", [round(v) for v in vals])
    for what in ("swbreak", "step"):
        for kind in ("us_per_op", "cpu_us_per_op"):
            if (what, "vmi", kind) in per_op and (what, "direct", kind) in per_op:
                name = f"vmi.bench.{what}.vmi_over_direct" + ("" if kind == "us_per_op" else "_cpu")
                layer, direct = per_op[(what, "vmi", kind)], per_op[(what, "direct", kind)]
                figures(name, round(statistics.median(layer) / statistics.median(direct), 3))
                # Each run measures both loops back to back: its own ratio
                # is spared the machine's drift between runs.
                per_run = [a / b for a, b in zip(layer, direct)]
                figures(name + "_per_run", [round(r, 3) for r in per_run])
                figures(name + "_per_run_median", round(statistics.median(per_run), 3))
    # Events the layer's loops found only when a 100 ms poll timed out.
    figures("vmi.bench.events_found_late", late)
    for l in probe(lab, "tiny", "bench", "mem", 0x100000, 16, timeout=900):
        figures(f"vmi.bench.mem16MiB.{l['impl']}.MB_per_s", l["mb_per_s"])
    assert_tiny_healthy(lab)


def test_domain_death_arrives_as_one_event(lab, tiny_symbols):
    """The guest is destroyed under a session with a breakpoint set and
    monitors on: the session reports it once and ends cleanly."""
    fn = tiny_symbols["tiny_fib"]
    background(lab, f"{PROBE} tiny break {hex(fn)} 100000000 600 >/tmp/death.out 2>&1; "
               "echo exit=$? >>/tmp/death.out", "/tmp/death.out")
    wait_for_text(lab, "/tmp/death.out", '"event": "break"', 120)
    try:
        lab.destroy("tiny")
        wait_for_text(lab, "/tmp/death.out", "exit=", 60)
        out = lab.sh("cat /tmp/death.out")
        events = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
        gone = [e for e in events if e.get("event") == "domain-gone"]
        assert len(gone) == 1, out
        assert events[-1]["cmd"] == "break" and events[-1]["domain_gone"], out
        # No error storm: the session stopped at the event.
        assert len(events) < 10000, out[-2000:]
    finally:
        lab.create_guest("tiny")


def test_write_to_a_dying_domain_is_refused_and_xen_survives(lab, tiny_symbols):
    """Xen 4.17 takes a vCPU context write for a dying domain and panics
    (arch_set_info_guest -> hvmemul_cancel on the emulation cache the
    teardown freed; it ended a CI run). The write that gets there is the
    light one from registers read at a stop (what setting a breakpoint at
    a gdb stop does). Here the domain is destroyed between that read and
    the write, and kept a zombie by another dom0 mapping of it (a stopped
    vmi-probe; in real use vmistub's own cache): the write gets ESRCH, and
    Xen and dom0 live on. The guest is recreated afterwards."""
    domid = int(lab.sh("xl domid tiny"))
    background(lab, f"{PROBE} tiny hold {hex(tiny_symbols['tiny_fib'])} >/tmp/zombie-hold.out 2>&1",
               "/tmp/zombie-hold.out")
    wait_for_text(lab, "/tmp/zombie-hold.out", '"ready": true', 120)
    holder = json.loads(lab.sh("head -1 /tmp/zombie-hold.out"))["pid"]
    try:
        lab.sh(f"kill -STOP {holder}")
        background(lab, f"{PROBE} {domid} set-reg-paused 1 dr2 0x1000 8 >/tmp/zombie-write.out 2>&1; "
                   "echo exit=$? >>/tmp/zombie-write.out", "/tmp/zombie-write.out")
        wait_for_text(lab, "/tmp/zombie-write.out", '"paused": true', 60)
        lab.destroy("tiny")
        assert domid in [int(l.split()[1]) for l in lab.sh("xl list").splitlines()[1:]], \
            "tiny vanished: nothing held it, the test proves nothing"
        wait_for_text(lab, "/tmp/zombie-write.out", "exit=", 60)
        out = lab.sh("cat /tmp/zombie-write.out")
        last = [json.loads(l) for l in out.splitlines() if l.startswith("{") and '"cmd"' in l][-1]
        assert last.get("what") == "set-reg" and last.get("error") == "No such process", out
        # Xen and dom0 are alive: a panic would have ended both.
        assert lab.run("xl info >/dev/null").ok
    finally:
        lab.run(f"kill -CONT {holder}; kill -KILL {holder}")
        lab.run("xl destroy tiny 2>/dev/null", timeout=60)
        lab.create_guest("tiny")


def test_sigkill_mid_session_leaves_this_behind(lab, tiny_symbols, figures):
    """What a vmi-probe killed with SIGKILL leaves in the guest and in Xen,
    as input for later recovery work. The guest is recreated afterwards."""
    fn = tiny_symbols["tiny_step_counter"]
    hw = tiny_symbols["tiny_long_line"]
    orig = probe(lab, "tiny", "read-virt", 0, fn, 1)[0]["hex"]
    background(lab, f"{PROBE} tiny hold {hex(fn)} {hex(hw)} >/tmp/hold.out 2>&1", "/tmp/hold.out")
    try:
        wait_for_text(lab, "/tmp/hold.out", '"event": "held"', 120)
        pid = json.loads(lab.sh("head -1 /tmp/hold.out"))["pid"]
        lab.sh(f"kill -9 {pid}")
        time.sleep(1)
        byte = probe(lab, "tiny", "read-virt", 0, fn, 1)[0]["hex"]
        regs = probe(lab, "tiny", "regs", 0)[0]
        mon = probe(lab, "tiny", "monitor-check", ok=False)[0]
        p0 = lab.progress("tiny")
        time.sleep(5)
        p1 = lab.progress("tiny")
        left = {
            "int3_still_patched": byte == "cc" and orig != "cc",
            "dr7": regs["dr7"], "dr3": regs["dr3"],
            "monitor_ring_still_held": not mon["ok"],
            "monitor_error": mon.get("error"),
            "vcpu0_progress_in_5s": (p1 or 0) - (p0 or 0),
            "xl_vcpu_list": lab.sh("xl vcpu-list tiny"),
        }
        figures("vmi.sigkill.left_behind", json.dumps(left))
        # Nothing ran the teardown: the int3 and the monitor ring stay, and
        # vCPU 0 stays held by its unanswered event.
        assert left["int3_still_patched"], left
        assert left["monitor_ring_still_held"], left
        assert left["vcpu0_progress_in_5s"] == 0, left
    finally:
        # Whatever happened, no holder is left to keep tiny's ring from
        # every later test (it is gone already when the test got that far).
        lab.run("kill -KILL $(pidof vmi-probe) 2>/dev/null")
        lab.destroy("tiny")
        lab.create_guest("tiny")
