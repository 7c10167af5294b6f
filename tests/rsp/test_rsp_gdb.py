"""The real gdb against rsp_fake_target, a remote target made of the rsp
codec alone, over a pipe: what the codec decodes, parses, builds and frames
(acks then no-ack mode, run-length encoded replies, escaped binary X data,
qXfer chunks of target.xml, g/p/P, m/M/X, vCont and T stop replies) must be
what gdb sends and accepts."""
import re
import subprocess

GDB = "/usr/bin/gdb"
BASE = 0xFFFFFFFF81000000


def _mem(i):
    return (i * 7 + (i >> 8)) & 0xFF


def _gdb(build_dir, *cmds):
    exe = build_dir / "tests" / "rsp" / "rsp_fake_target"
    assert exe.exists(), f"{exe} not built"
    args = [GDB, "-nx", "-batch", "-ex", "set architecture i386:x86-64",
            "-ex", "set debug remote 1", "-ex", f"target remote | {exe}"]
    for c in cmds:
        args += ["-ex", c]
    res = subprocess.run(args, capture_output=True, text=True, timeout=120)
    return res.stdout, res.stderr


def _value(out, name):
    m = re.search(r"^\$\d+ = (.*)$", out[out.index(name):], re.M)
    return m.group(1)


def test_gdb_session(build_dir):
    out, log = _gdb(
        build_dir,
        "echo @regs\\n", "info registers rip eflags cs rsp",
        "echo @cr0\\n", "p $cr0",
        "echo @cr3\\n", "p/x $cr3",
        "echo @kgs\\n", "p/x $kernel_gs_base",
        "echo @mxcsr\\n", "p $mxcsr",
        "echo @mem\\n", "x/64xb 0xffffffff81000000",
        # Bytes gdb must escape in an X packet ($ # } *) and 0x03.
        "set {unsigned long long}0xffffffff81000020 = 0x2a7d2324037d2a23",
        "echo @memw\\n", "p/x *(unsigned long long *)0xffffffff81000020",
        "p $rax = 0x42",
        "set $xmm1.v2_int64[0] = 0x0102030405060708",
        "flushregs",
        "echo @rax\\n", "p/x $rax",
        "echo @xmm1\\n", "p/x $xmm1.v2_int64[0]",
        "stepi",
        "echo @pc\\n", "p/x $pc",
        "info threads",
        "info registers",
        "detach")
    assert "@regs" in out, out + log
    assert re.search(r"^rip\s+0xffffffff81000100\b", out, re.M), out
    assert re.search(r"^eflags\s+0x246\s+\[ PF ZF IF \]", out, re.M), out
    assert re.search(r"^cs\s+0x10\b", out, re.M), out
    assert re.search(r"^rsp\s+0xffffc90000013f00\b", out, re.M), out
    assert _value(out, "@cr0") == "[ PE MP ET NE WP AM PG ]", out
    assert _value(out, "@cr3") == "0x10c8000", out
    assert _value(out, "@kgs") == "0xffff88807fc00000", out
    assert "IM DM ZM OM UM PM" in _value(out, "@mxcsr"), out

    seen = []
    for line in out[out.index("@mem"):].splitlines()[1:9]:
        seen += [int(b, 16) for b in line.split(":")[1].split()]
    assert seen == [_mem(i) for i in range(64)], out
    assert _value(out, "@memw") == "0x2a7d2324037d2a23", out
    assert _value(out, "@rax") == "0x42", out
    assert _value(out, "@xmm1") == "0x102030405060708", out
    assert _value(out, "@pc") == "0xffffffff81000104", out
    # info registers after flushregs fetched everything with g.
    assert re.search(r"^kernel_gs_base\s+0xffff88807fc00000", out, re.M), out
    assert re.search(r"^efer\s+0xd01\s+\[ SCE LME LMA NXE \]", out, re.M), out
    # qXfer:threads: the name and the extra text, XML-escaped by rsp.
    assert 'Thread 1 "vcpu<0>" (paused & "well")' in out, out
    assert "[Inferior 1 (Remote target) detached]" in out, out

    # The protocol paths taken: no-ack mode, target.xml over several
    # qXfer chunks, binary X with escapes, register writes, vCont step.
    assert "Sending packet: $QStartNoAckMode" in log, log
    assert re.search(r"qXfer:features:read:target.xml:1000,", log), log
    assert "Sending packet: $qXfer:threads:read::0," in log, log
    assert "Packet received: l" in log, log
    assert re.search(r"Sending packet: \$X[0-9a-f]+,8:", log), log
    assert re.search(r"Sending packet: \$P0=4200000000000000#", log), log
    assert "Sending packet: $vCont;s" in log, log
    assert "Sending packet: $g#67" in log, log
    assert "warning" not in (out + log).replace(
        "warning: No executable has been specified", ""), out + log
