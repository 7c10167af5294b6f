"""The tiny test guest under stock QEMU (TCG, no Xen).

QEMU's -kernel loader boots a PVH ELF through XEN_ELFNOTE_PHYS32_ENTRY
exactly as Xen's domain builder does, so this proves the boot path, the
higher-half page tables, the exception handlers, the self-tests and the
debug information before the nested Xen lab runs the same binary. Port 0xE9
is the console here (-debugcon); there is no Xen, so the guest runs one vCPU.

Needs: qemu-system-x86_64 (Debian qemu-system-x86), gdb, binutils (nm).
"""
import contextlib
import pathlib
import re
import socket
import struct
import subprocess
import time

import pytest

QEMU = "qemu-system-x86_64"
GDB = "/usr/bin/gdb"
VOFF = 0xFFFFFFFF80000000
PHYS_BASE = 0x100000
BIG_VA, BIG_PHYS = VOFF + 0x200000, 0x200000
DEMAND_VA, DEMAND_PHYS = VOFF + 0x600000, 0x200000

LINE_RE = re.compile(r"^tiny: iter=(\d+) (.*)$")
FIELD_RE = re.compile(r"(\w+)=(\S+)")

# Every name README.md promises, with where it must live.
FUNCTIONS = [
    "tiny_entry32", "tiny_entry64", "tiny_main", "tiny_main_loop", "tiny_iteration",
    "tiny_step_counter", "tiny_fib", "tiny_update_checksum", "tiny_long_line",
    "tiny_self_int3", "tiny_self_int3_insn", "tiny_hw_target", "tiny_self_step",
    "tiny_pf_cycle", "tiny_report", "tiny_trap", "tiny_vcpu1_entry", "tiny_vcpu1_main",
    "tiny_vcpu1_loop", "tiny_vcpu1_work", "tiny_shared_fn", "tiny_hypercall_page",
]
GLOBALS = [
    "tiny_counter", "tiny_delta", "tiny_iterations", "tiny_watch_target",
    "tiny_read_target", "tiny_checksum", "tiny_print_every", "tiny_selftest_flags",
    "tiny_bp_count", "tiny_db_count", "tiny_db_step_count", "tiny_db_dr_hits",
    "tiny_db_rf_ignored", "tiny_pf_count", "tiny_pf_last_addr", "tiny_hw_calls",
    "tiny_vcpu1_counter", "tiny_vcpu1_state", "tiny_shared_calls", "tiny_pml4",
]
BIG = ["tiny_demand_frame", "tiny_big_counter", "tiny_stack0", "tiny_stack0_top", "tiny_stack1", "tiny_stack1_top"]


@pytest.fixture(scope="module")
def tiny(tiny_elf):
    return tiny_elf


@pytest.fixture(scope="module")
def syms(tiny):
    out = subprocess.run(["nm", "-n", str(tiny)], check=True, capture_output=True, text=True).stdout
    table = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3:
            table[parts[2]] = int(parts[0], 16)
    return table


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def qemu(tiny, tmp_path, append="", gdb_port=None):
    """Run the guest under TCG; yields the path of its port 0xE9 log."""
    log = tmp_path / "debugcon.log"
    cmd = [QEMU, "-machine", "q35", "-accel", "tcg", "-cpu", "max", "-m", "32", "-smp", "1",
           "-display", "none", "-nodefaults", "-no-reboot", "-no-user-config",
           "-kernel", str(tiny), "-debugcon", f"file:{log}"]
    if append:
        cmd += ["-append", append]
    if gdb_port:
        cmd += ["-gdb", f"tcp:127.0.0.1:{gdb_port}"]
    with open(tmp_path / "qemu.out", "wb") as qout:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=qout, stderr=subprocess.STDOUT)
    try:
        yield log, proc
    finally:
        proc.kill()
        proc.wait(timeout=10)


def _lines(log):
    try:
        return log.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return []


def _progress(log):
    """Complete progress lines as dicts of ints (hex where 0x-prefixed)."""
    text = log.read_text(errors="replace") if log.exists() else ""
    out = []
    for line in text.split("\n")[:-1]:  # the last piece may be a half-written line
        if LINE_RE.match(line):
            out.append({k: int(v, 0) for k, v in FIELD_RE.findall(line)})
    return out


def _wait_for(log, proc, pred, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        got = pred(log)
        if got:
            return got
        time.sleep(0.2)
    qout = log.parent / "qemu.out"
    pytest.fail(f"timed out (qemu rc={proc.poll()}); qemu said:\n"
                + (qout.read_text(errors="replace") if qout.exists() else "")
                + "\nconsole:\n" + "\n".join(_lines(log)[-20:]))


def _fatal(log):
    return [line for line in _lines(log) if "FATAL" in line]


# --- the ELF itself --------------------------------------------------------

def _elf(tiny):
    data = tiny.read_bytes()
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1, "not ELF64 little-endian"
    e_machine, = struct.unpack_from("<H", data, 18)
    assert e_machine == 62, "not x86-64"
    e_entry, e_phoff = struct.unpack_from("<QQ", data, 24)
    e_phentsize, e_phnum = struct.unpack_from("<HH", data, 54)
    phdrs = [struct.unpack_from("<IIQQQQQQ", data, e_phoff + i * e_phentsize) for i in range(e_phnum)]
    return data, e_entry, phdrs


def test_elf_segments_load_physical_run_higher_half(tiny):
    _, _, phdrs = _elf(tiny)
    loads = [p for p in phdrs if p[0] == 1]
    assert loads
    for _, _, _, vaddr, paddr, filesz, memsz, _ in loads:
        assert vaddr - paddr == VOFF, f"segment vaddr {vaddr:#x} paddr {paddr:#x}"
        assert paddr >= PHYS_BASE and paddr + memsz <= 0x400000


def test_elf_pvh_entry_note(tiny, syms):
    data, e_entry, phdrs = _elf(tiny)
    notes = [p for p in phdrs if p[0] == 4]
    assert notes, "no PT_NOTE (QEMU and Xen find the PVH entry through it)"
    found = []
    for _, _, off, _, _, filesz, _, _ in notes:
        pos = off
        while pos < off + filesz:
            namesz, descsz, ntype = struct.unpack_from("<III", data, pos)
            name = data[pos + 12:pos + 12 + namesz].rstrip(b"\0")
            dpos = pos + 12 + (namesz + 3) // 4 * 4
            if name == b"Xen" and ntype == 18:
                fmt = "<Q" if descsz == 8 else "<I"
                found.append(struct.unpack_from(fmt, data, dpos)[0])
            pos = dpos + (descsz + 3) // 4 * 4
    assert found == [syms["tiny_entry32"] - VOFF], [hex(x) for x in found]
    # Xen's libelf wants e_entry inside the physical image of a PVH kernel.
    assert e_entry == syms["tiny_entry32"] - VOFF


def test_symbols_in_their_mappings(syms):
    text_end = syms["__text_end"]
    for name in FUNCTIONS:
        assert name in syms, name
        assert VOFF + PHYS_BASE <= syms[name] < text_end, f"{name} at {syms[name]:#x}"
    for name in GLOBALS:
        assert name in syms, name
        assert text_end <= syms[name] < syms["__image_end"] <= BIG_VA, f"{name} at {syms[name]:#x}"
    for name in BIG:
        assert name in syms, name
        assert BIG_VA <= syms[name] <= BIG_VA + 0x200000, f"{name} at {syms[name]:#x}"
    assert syms["tiny_hypercall_page"] % 4096 == 0
    # The demand page's frame: first page of the 2 MiB mapping.
    assert syms["tiny_demand_frame"] == BIG_VA == DEMAND_PHYS + VOFF


def test_debug_info(tiny):
    out = subprocess.run(["readelf", "-S", str(tiny)], check=True, capture_output=True, text=True).stdout
    for section in (".debug_info", ".debug_line"):
        assert section in out, section


# --- running it -------------------------------------------------------------

def test_boot_banner_and_progress(tiny, tmp_path):
    with qemu(tiny, tmp_path, append="tiny.print_every=200") as (log, proc):
        lines = _wait_for(log, proc, lambda lg: (lambda p: p if len(p) >= 4 else None)(_progress(lg)))
        text = _lines(log)
    assert not _fatal(log), _fatal(log)
    banner = [line for line in text if line.startswith("tiny: boot ")]
    assert banner, text[:5]
    b = dict(FIELD_RE.findall(banner[0]))
    assert b["xen"] == "0" and b["vcpus"] == "1"
    assert int(b["magic"], 0) == 0x336EC578, "hvm_start_info magic not seen"
    assert int(b["mem_kib"]) > 16 * 1024
    assert 'cmdline="tiny.print_every=200"' in banner[0]
    layout = dict(FIELD_RE.findall(next(line for line in text if line.startswith("tiny: layout "))))
    assert int(layout["text"], 0) == VOFF + PHYS_BASE
    assert int(layout["big"], 0) == BIG_VA
    assert int(layout["demand"], 0) == DEMAND_VA
    assert int(layout["demand_phys"], 0) == DEMAND_PHYS

    prev = None
    for p in lines:
        it = p["iter"]
        assert it % 200 == 0
        # Default self-tests: one int3, one DR0 hit, one demand fault per
        # iteration, each counted by the guest's own handler.
        assert p["counter"] == it and p["delta"] == 1
        assert p["bp"] == it, p
        assert p["dr0"] == it and p["db"] == it, p
        assert p["pf"] == it and p["demand"] == it, p
        # QEMU reports DR6 and honours RF: no fallbacks used.
        assert p["step"] == 0 and p["rfign"] == 0 and p["dbnc"] == 0, p
        assert p["shared"] == it and p["vcpu1"] == 0
        assert p["flags"] == 0x7
        if prev:
            assert it > prev["iter"] and p["tsc"] > prev["tsc"]
        prev = p


def test_selftest_flags_from_cmdline(tiny, tmp_path):
    # All four self-tests, TF stepping included: 7 single-step traps per
    # call (after each of 4 nops, pushfq, andq and the popfq clearing TF).
    with qemu(tiny, tmp_path, append="tiny.print_every=128 tiny.selftest=0xf") as (log, proc):
        p = _wait_for(log, proc, lambda lg: (lambda q: q[-1] if len(q) >= 2 else None)(_progress(lg)))
    assert not _fatal(log)
    it = p["iter"]
    assert p["step"] == 7 * it and p["db"] == 8 * it and p["dr0"] == it, p
    assert p["flags"] == 0xF


def test_selftests_off(tiny, tmp_path):
    with qemu(tiny, tmp_path, append="tiny.print_every=200 tiny.selftest=0") as (log, proc):
        p = _wait_for(log, proc, lambda lg: (lambda q: q[-1] if len(q) >= 2 else None)(_progress(lg)))
    assert p["bp"] == 0 and p["db"] == 0 and p["pf"] == 0 and p["counter"] == p["iter"], p


# --- gdb through QEMU's own gdbstub ------------------------------------------

def _gdb(tiny, port, commands, timeout=120):
    args = [GDB, "-nx", "-batch", "-ex", "set pagination off", "-ex", "set confirm off",
            "-ex", "set architecture i386:x86-64", "-ex", f"file {tiny}",
            "-ex", f"target remote 127.0.0.1:{port}"]
    for c in commands:
        args += ["-ex", c]
    # One pipe for both: gdb prints monitor replies on stderr, and the
    # markers echoed between commands must stay in order with them.
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    return r.stdout


def _val(out, key):
    m = re.search(rf"^{re.escape(key)}\s*=?\s*(\S+)", out, re.M)
    assert m, f"{key!r} not in gdb output:\n{out}"
    return int(m.group(1), 0)


def test_gdb_symbols_source_and_translation(tiny, syms, tmp_path):
    port = _free_port()
    with qemu(tiny, tmp_path, append="tiny.print_every=100", gdb_port=port) as (log, proc):
        _wait_for(log, proc, lambda lg: _progress(lg)[:1])
        out = _gdb(tiny, port, [
            "break tiny_step_counter",
            "continue",
            'printf "pc %#lx\\n", $pc',
            'printf "counter %lu\\n", tiny_counter',
            'printf "iterations %lu\\n", tiny_iterations',
            'printf "addr %#lx\\n", &tiny_counter',
            "info line *$pc",
            "bt",
            "delete",
            # Where QEMU's MMU puts things: the guest's own page tables.
            'echo @counter\\n', f"monitor gva2gpa {syms['tiny_counter']:#x}",
            'echo @big\\n', f"monitor gva2gpa {syms['tiny_big_counter']:#x}",
            'echo @text\\n', f"monitor gva2gpa {syms['tiny_fib']:#x}",
            'echo @demand\\n', f"monitor gva2gpa {DEMAND_VA:#x}",
            'echo @identity\\n', f"monitor gva2gpa {PHYS_BASE:#x}",
            'echo @end\\n',
            # A debugger write the guest visibly obeys.
            "set var tiny_delta = 7",
            "break tiny_report",
            "continue",
            'printf "delta %lu\\n", tiny_delta',
            "delete",
            "detach",
        ])
        assert "Breakpoint 1, tiny_step_counter" in out, out
        assert _val(out, "pc") == syms["tiny_step_counter"], out
        assert _val(out, "addr") == syms["tiny_counter"]
        assert _val(out, "counter") == _val(out, "iterations")  # delta 1 until we change it
        assert re.search(r"Line \d+ of \".*main\.c\"", out), out
        assert "tiny_iteration" in out and "tiny_main_loop" in out, out  # backtrace
        assert _val(out, "delta") == 7
        # gva2gpa quoting differs between QEMU versions; judge by address.
        assert f"gpa: {syms['tiny_counter'] - VOFF:#x}" in out, out
        assert f"gpa: {syms['tiny_big_counter'] - VOFF:#x}" in out, out
        assert f"gpa: {syms['tiny_fib'] - VOFF:#x}" in out, out
        # Stopped in tiny_step_counter, the demand page is mapped (the last
        # tiny_pf_cycle touched it) and aliases the 2 MiB page's first frame.
        demand = out.split("@demand", 1)[1].split("@identity", 1)[0]
        assert f"gpa: {DEMAND_PHYS:#x}" in demand, out
        ident = out.split("@identity", 1)[1].split("@end", 1)[0]
        assert ident.strip() and "gpa:" not in ident, "identity map still present after boot:\n" + ident
        # After detach the guest runs on with tiny_delta = 7.
        first = len(_progress(log))

        def moved(lg):
            p = _progress(lg)
            return p if len(p) >= first + 2 else None
        p = _wait_for(log, proc, moved)
    assert p[-1]["delta"] == 7
    assert p[-1]["counter"] - p[-2]["counter"] == 7 * (p[-1]["iter"] - p[-2]["iter"]), p[-2:]


def test_xen_abi_matches_public_headers():
    # libxen-dev is part of the project's provisioning: absent headers fail.
    src = pathlib.Path(__file__).parent / "tiny" / "xen_abi_check.c"
    subprocess.run(["gcc", "-fsyntax-only", "-Wall", "-Wextra", "-Werror",
                    "-I", str(src.parent), str(src)], check=True)


def test_gdb_backtrace_through_exceptions_and_next(tiny, tmp_path):
    """The exception stubs' CFI lets gdb unwind from a handler into the
    interrupted function; tiny_entry64 ends every backtrace cleanly."""
    port = _free_port()
    with qemu(tiny, tmp_path, gdb_port=port) as (log, proc):
        _wait_for(log, proc, lambda lg: [line for line in _lines(lg) if line.startswith("tiny: layout")])
        cmds = ["break tiny_trap"]
        for _ in range(3):
            cmds += ["continue", 'printf "vector %lu\\n", f->vector', "bt", "echo @@\\n"]
        cmds += ["delete", "break tiny_long_line", "continue", "echo @next\\n", "next",
                 "echo @after\\n", "info line *$pc", "delete", "detach"]
        out = _gdb(tiny, port, cmds)
    assert not _fatal(log), _fatal(log)
    chunks = out.split("@@")[:3]
    seen = {}
    for chunk in chunks:
        vec = _val(chunk, "vector")
        assert "<signal handler called>" in chunk, chunk
        assert "tiny_iteration ()" in chunk and "tiny_entry64 ()" in chunk, chunk
        assert "?? ()" not in chunk, chunk
        interrupted = {3: "tiny_self_int3", 1: "tiny_hw_target", 14: "tiny_pf_cycle"}[vec]
        assert interrupted in chunk, chunk
        seen[vec] = True
    assert set(seen) == {1, 3, 14}, out
    # One `next` runs the whole 1000-iteration line: gdb ends up past it,
    # back in the caller or on the closing line, not still on line 94.
    stepped = out.split("@next", 1)[1].split("@after", 1)[0]
    assert stepped.strip() and "tiny_long_sink += i" not in stepped, out
    assert re.search(r'Line \d+ of ".*main\.c"', out.split("@after", 1)[1]), out


def test_gdb_watchpoints_fire_where_promised(tiny, tmp_path):
    """tiny_watch_target is written in tiny_step_counter and tiny_read_target
    read in tiny_update_checksum, once per iteration (README.md)."""
    port = _free_port()
    with qemu(tiny, tmp_path, gdb_port=port) as (log, proc):
        _wait_for(log, proc, lambda lg: [line for line in _lines(lg) if line.startswith("tiny: layout")])
        out = _gdb(tiny, port, [
            "watch tiny_watch_target", "continue", "bt 1", "echo @@\\n", "delete",
            "rwatch tiny_read_target", "continue", "bt 1", "echo @@\\n", "delete",
            "detach",
        ])
    w, r = out.split("@@")[:2]
    assert "Hardware watchpoint" in w and "tiny_step_counter ()" in w, out
    old, new = _val(w, "Old value"), _val(w, "New value")
    assert new == old + 1, out  # = tiny_counter, delta 1
    assert "Hardware read watchpoint" in r and "tiny_update_checksum ()" in r, out
    assert _val(r, "Value") == 0x5EED, out
