"""vmistub end to end: the real gdb on the host, vmistub in the lab's dom0,
the tiny guest on the real Xen (tests/lab). gdb runs in batch mode; raw
RSP sockets test what gdb would never send."""
import re
import signal
import subprocess
import time

from stublab import (TINY_TEXT, Rsp, compare, gdb, gdb_args, progress_lines, runs_on,
                     snapshot, stub_alive, stub_log, stub_start, val, wait_log)

TEXT_LEN = 0x6000   # tiny's .text + .rodata (README: up to __text_end)


def test_connect_registers_disassembly_threads(lab, port, tiny_elf, detached):
    layout = re.search(r"tiny: layout .*cr3=(0x[0-9a-f]+)", lab.console("tiny"))
    out = gdb(tiny_elf, port, [
        'printf "rip %#lx\\n", $rip', 'printf "cr3 %#lx\\n", $cr3',
        'printf "efer %#lx\\n", $efer', 'printf "fs_base %#lx\\n", $fs_base',
        "info registers rip cr3 efer fs_base cr0",
        "echo @x\\n", "x/8i $pc", "echo @threads\\n", "info threads", "detach"])
    assert val(out, "cr3") == int(layout.group(1), 16), out
    assert val(out, "efer") & 0x500 == 0x500, out     # LME|LMA
    assert val(out, "fs_base") == 0, out
    assert val(out, "rip") >> 32 == 0xffffffff, out    # higher-half kernel
    dis = out.split("@x", 1)[1].split("@threads", 1)[0]
    assert len(re.findall(r"^\s*(=> )?0xffffffff8[0-9a-f]+ <tiny_\w+", dis, re.M)) == 8, out
    threads = out.split("@threads", 1)[1]
    assert re.search(r'Thread 1 "vCPU 0" \(vCPU 0 \(cr3 0x', threads), out
    assert re.search(r'Thread 2 "vCPU 1"', threads), out
    assert "Remote connection closed" not in out and "error" not in out.lower(), out


def test_break_continue_bt_print_set(lab, port, tiny_elf, tiny_symbols, detached, int3_before):
    out = gdb(tiny_elf, port, [
        "break tiny_step_counter", "continue",
        'printf "pc %#lx\\n", $pc', 'printf "counter %lu\\n", tiny_counter',
        'printf "iterations %lu\\n", tiny_iterations', "bt",
        "set var tiny_delta = 3", 'printf "delta %lu\\n", tiny_delta',
        "delete", "detach"])
    assert "Breakpoint 1, tiny_step_counter" in out, out
    assert val(out, "pc") == tiny_symbols["tiny_step_counter"], out
    assert "tiny_iteration" in out and "tiny_main_loop" in out, out
    assert val(out, "delta") == 3
    try:
        last = runs_on(lab)
        prev = progress_lines(lab)[-2]
        assert last["delta"] == 3, last
        assert last["counter"] - prev["counter"] == 3 * (last["iter"] - prev["iter"]), (prev, last)
        # The guest's own int3 self-test kept reaching its #BP handler.
        assert last["bp"] - last["iter"] == int3_before and last["pf"] == last["iter"], last
    finally:
        wait_log(lab, "detached from domain")
        gdb(tiny_elf, port, ["set var tiny_delta = 1", "detach"])


def test_stepi(lab, port, tiny_elf, tiny_symbols, detached):
    out = gdb(tiny_elf, port, [
        "break tiny_fib", "continue", "delete",
        'printf "pc0 %#lx\\n", $pc', "x/3i $pc",
        "stepi", 'printf "pc1 %#lx\\n", $pc',
        "stepi", 'printf "pc2 %#lx\\n", $pc',
        "detach"])
    insns = [int(a, 16) for a in re.findall(r"^\s*(?:=> )?(0x[0-9a-f]+) <tiny_fib", out, re.M)]
    assert val(out, "pc0") == tiny_symbols["tiny_fib"], out
    assert val(out, "pc1") == insns[1], out
    assert val(out, "pc2") == insns[2], out


def test_detach_restores_every_byte(lab, port, tiny_elf, detached, int3_before):
    wait_log(lab, "listening on")
    snapshot(lab, "tiny", TINY_TEXT, TEXT_LEN, "text")
    out = gdb(tiny_elf, port, [
        "break tiny_fib", "break tiny_update_checksum", "break tiny_long_line",
        "continue", "continue", "continue", "stepi", "continue", "detach"])
    assert out.count("Breakpoint ") >= 4, out
    wait_log(lab, "detached from domain")
    assert compare(lab, "tiny", TINY_TEXT, TEXT_LEN, "text")["equal"], out
    last = runs_on(lab)
    assert last["bp"] - last["iter"] == int3_before, last


def test_gdb_sigkill_leaves_guest_running(lab, port, tiny_elf, detached):
    snapshot(lab, "tiny", TINY_TEXT, TEXT_LEN, "text")
    # tiny_vcpu1_entry runs once at boot: the breakpoint stays armed while
    # the guest runs, then gdb dies without a word.
    p = subprocess.Popen(gdb_args(tiny_elf, port, ["break tiny_vcpu1_entry",
                                                    "break tiny_halt", "continue"]),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_log(lab, "gdb connected")
        time.sleep(3)
        assert p.poll() is None, p.stdout.read()
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    wait_log(lab, "detached from domain")
    assert compare(lab, "tiny", TINY_TEXT, TEXT_LEN, "text")["equal"]
    runs_on(lab)
    assert stub_alive(lab)


def test_second_client_refused_first_undisturbed(lab, port, tiny_elf, detached):
    first = Rsp(port)
    try:
        assert b"PacketSize=" in first.ask("qSupported:swbreak+;hwbreak+")
        stop = first.ask("?")
        assert stop.startswith(b"T05"), stop
        out = gdb(tiny_elf, port, ["info registers rip"], timeout=60)
        assert "another gdb is already connected" in out, out
        raw = Rsp(port)
        raw.send("qSupported")
        assert b"another gdb" in raw.packet()
        raw.close()
        # The first client is still served.
        assert first.ask("?").startswith(b"T05")
        regs = first.ask("g")
        assert len(regs) > 16 * 16 and re.fullmatch(rb"[0-9a-fx]+", regs), regs[:80]
        first.send("D")
        assert first.packet() == b"OK"
    finally:
        first.close()


def test_malformed_packets_answered_without_harm(lab, port, detached):
    c = Rsp(port)
    try:
        c.raw(b"$g#00")                       # bad checksum
        assert c.read_byte() == b"-"
        c.raw(b"$" + b"a" * 70000 + b"#00")   # longer than PacketSize
        c.raw(b"garbage without a frame")
        c.raw(b"$m#6d")
        assert c.packet().startswith(b"E")
        c.buf = b""
        for bad in ["mzz,10", "m0,", "Z9,0,1", "vCont;q", "Hgzz", "p99999",
                    "X0,4:", "M0,2:zz", "qXfer:features:read:nosuch.xml:0,10",
                    "qRcmd,zz", "T99", "vAttach;"]:
            reply = c.ask(bad)
            assert reply == b"" or reply.startswith(b"E") or reply == b"OK", (bad, reply)
        assert c.ask("?").startswith(b"T05")
        # Memory at an address nothing maps: an error, not a crash.
        assert c.ask("m0,8").startswith(b"E")
        assert c.ask("vMustReplyEmpty") == b""
        c.send("D")
        assert c.packet() == b"OK"
    finally:
        c.close()
    assert stub_alive(lab), stub_log(lab)
    runs_on(lab)


def test_ctrl_c_of_running_guest(lab, port, detached):
    c = Rsp(port)
    try:
        c.ask("qSupported:swbreak+")
        assert c.ask("QStartNoAckMode") == b"OK"
        c.noack = True
        assert c.ask("?").startswith(b"T05")
        c.send("vCont;c")
        time.sleep(2)
        c.raw(b"\x03")
        stop = c.packet()
        assert stop.startswith(b"T02") and b"thread:" in stop, stop
        # Expedited registers: rbp (06), rsp (07) and rip (10).
        assert b"06:" in stop and b"07:" in stop and b"10:" in stop, stop
        c.send("D")
        assert c.packet() == b"OK"
    finally:
        c.close()
    runs_on(lab)


def test_offline_vcpus_are_threads_without_registers(lab, port, tiny_elf):
    """A domain with more vCPUs than its guest brings up (maxvcpus=4; tiny
    starts vCPU 1 only, as a kernel leaves hot-pluggable CPUs down): vCPUs
    2 and 3 are down and have no registers in Xen. gdb sees them as threads
    marked offline with registers <unavailable> (it failed the whole
    thread with "Could not read registers"), and breakpoints and steps work
    as on any guest."""
    lab.create_guest("tiny-hotplug", kind="tiny", maxvcpus=4)
    try:
        p = stub_start(lab, "tiny-hotplug")
        out = gdb(tiny_elf, p, [
            "info threads", "break tiny_step_counter", "continue", "stepi",
            'printf "pc %#lx\\n", $pc', "thread 3", "info registers rip", "thread 1",
            "delete", "detach"])
        assert 'Thread 3 "vCPU 2" (vCPU 2 (offline))' in out, out
        assert 'Thread 4 "vCPU 3" (vCPU 3 (offline))' in out, out
        assert 'Thread 1 "vCPU 0" hit Breakpoint 1, tiny_step_counter' in out, out
        assert re.search(r"^rip\s+<unavailable>", out, re.M), out
        assert "Could not read registers" not in out, out
        wait_log(lab, "detached from domain")
        assert "cannot hold" not in stub_log(lab), stub_log(lab)
        first = lab.progress("tiny-hotplug")
        lab.wait_progress("tiny-hotplug", beyond=first, timeout=120)
        assert "FATAL" not in lab.console("tiny-hotplug")
    finally:
        stub_start(lab, "tiny")             # the module's vmistub, as it was
        lab.destroy("tiny-hotplug")


def test_zz_domain_destroyed_under_gdb(lab, port, tiny_elf):
    """Last: it destroys tiny (and creates it again for later modules)."""
    c = Rsp(port)
    try:
        c.ask("qSupported")
        assert c.ask("?").startswith(b"T05")
        c.send("vCont;c")
        time.sleep(1)
        lab.destroy("tiny")
        reply = c.packet()
        assert reply == b"X09", reply
        wait_log(lab, "domain")
    finally:
        c.close()
        if lab.state("tiny") is None:
            lab.create_guest("tiny")
    assert stub_alive(lab), stub_log(lab)
    # The stub attaches the new tiny on the next connection.
    out = gdb(tiny_elf, port, ['printf "rip %#lx\\n", $rip', "detach"])
    assert val(out, "rip") >> 32 == 0xffffffff, out
