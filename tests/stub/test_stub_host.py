"""vmistub on the host, no Xen and no lab: vmistub-fake is the real stub
(the same objects as vmistub) linked with the in-memory fake driver and a
fake CPU (tests/stub/driver_fake.c), driven by the real gdb and by raw RSP
sockets. It covers what the lab does not: the command line, the unix
socket, extended-remote attach/detach, a second client, malformed packets,
and each "nothing is left behind" promise, checked against the fake
world's own bytes (a file holding guest memory, read live) and counters
(a JSON summary the fake writes). Every test runs against the normal
build and the ASan/UBSan one. None of them uses the lab fixture."""
import json
import os
import pathlib
import re
import select
import signal
import socket
import stat
import subprocess
import threading
import queue
import time

import pytest

from stublab import GDB, Rsp

ROOT = pathlib.Path(__file__).resolve().parents[2]
TF = 1 << 8
DR6_INIT = 0xffff0ff0
DR7_INIT = 0x400
NOP = 0x90
# The fake CPU's vendors: execution control runs on both (TF steps on AMD,
# MTF on Intel).
CPUS = ["amd", "intel"]
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


# --- the stub --------------------------------------------------------------

@pytest.fixture(params=["gcc", "asan"])
def fake_exe(request, build_dir):
    d = build_dir if request.param == "gcc" else request.getfixturevalue("fuzz_build_dir")
    exe = d / "tests" / "stub" / "vmistub-fake"
    assert exe.exists(), f"{exe} is not built"
    return exe


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stub_env(tmp, cpu="amd"):
    """cpu: the fake CPU's vendor, "amd" (the lab's: TF steps, debug
    registers only) or "intel" (MTF and p2m memory access too)."""
    return dict(os.environ, VMISTUB_FAKE_WORLD=str(tmp / "world"),
                VMISTUB_FAKE_STATE=str(tmp / "state.json"), VMISTUB_FAKE_CPU=cpu,
                ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
                UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")


class FakeStub:
    """One vmistub-fake process, its log, and the fake world it debugs."""

    def __init__(self, exe, tmp, args, unix=None, cpu="amd"):
        self.tmp = tmp
        self.unix = unix
        self.port = None
        if unix is None and "--listen" not in args:
            self.port = free_port()
            args = ["--listen", f"127.0.0.1:{self.port}", *args]
        elif unix is not None:
            args = ["--unix", str(unix), *args]
        self.log_path = tmp / "vmistub.log"
        self.log_f = open(self.log_path, "w")
        self.p = subprocess.Popen([str(exe), "--log-level", "debug", *args],
                                  stdin=subprocess.DEVNULL, stdout=self.log_f,
                                  stderr=subprocess.STDOUT, env=stub_env(tmp, cpu))
        self.wait_log("listening on")
        self.layout = self.state()["layout"]

    @property
    def target(self):
        return str(self.unix) if self.unix else f"127.0.0.1:{self.port}"

    def log(self):
        return self.log_path.read_text(errors="replace")

    def wait_log(self, text, timeout=20, count=1):
        deadline = time.monotonic() + timeout
        while self.log().count(text) < count:
            assert self.p.poll() is None, f"vmistub-fake exited ({self.p.returncode}):\n{self.log()}"
            assert time.monotonic() < deadline, f"{text!r} not in vmistub's log:\n{self.log()}"
            time.sleep(0.05)

    def state(self):
        return json.loads((self.tmp / "state.json").read_text())

    def wait_state(self, pred, timeout=20):
        deadline = time.monotonic() + timeout
        while True:
            st = self.state()
            if pred(st):
                return st
            assert time.monotonic() < deadline, f"fake world never got there: {st}\n{self.log()}"
            time.sleep(0.05)

    def phys(self, gpa, n=1):
        """Guest physical memory, from the fake world's file (not the stub)."""
        with open(self.tmp / "world", "rb") as f:
            f.seek(gpa)
            return f.read(n)

    def gpa(self, va):
        """The fake maps its kernel linearly (driver_fake.c's page tables)."""
        lay = self.layout
        assert lay["text_va"] <= va < lay["text_va"] + lay["mapped_len"], hex(va)
        return va - lay["text_va"] + lay["text_gpa"]

    def byte(self, va):
        return self.phys(self.gpa(va))[0]

    def rsp(self):
        if self.unix:
            s = socket.socket(socket.AF_UNIX)
            s.connect(str(self.unix))
            s.settimeout(20)
        else:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=20)
        return RawRsp(s)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.p.poll() is None:
            self.p.send_signal(sig)
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise AssertionError(f"vmistub-fake ignored signal {sig}:\n{self.log()}")
        self.log_f.close()
        return rc

    def check_sanitizers(self):
        log = self.log()
        assert not any(m in log for m in SANITIZER_MARKS), log


@pytest.fixture
def start(fake_exe, tmp_path):
    """start(*args, unix=None, cpu="amd"): a running vmistub-fake; every one
    started is stopped at the end and its log checked for sanitizer
    reports."""
    stubs = []

    def _start(*args, unix=None, cpu="amd"):
        s = FakeStub(fake_exe, tmp_path, list(args), unix=unix, cpu=cpu)
        stubs.append(s)
        return s

    yield _start
    for s in stubs:
        s.stop()
        s.check_sanitizers()


def assert_world_clean(st, moved_rip=()):
    """Everything back as it was: no byte changed, no pause held, every
    monitor off, no event left unanswered, every frame's access rwx, MTF
    off, the registers as they started (but RIP of the vCPUs named, which
    the fake CPU ran)."""
    assert st["pauses"] == 0, st
    assert not any(st["monitors"].values()), st
    assert st["unanswered"] == 0 and st["queued"] == 0, st
    assert st["restricted"] == [] and not any(st["mtf"]), st
    assert st["nchanged"] == 0, st["changed"]
    for i, r in enumerate(st["regs"]):
        assert r["rflags"] & TF == 0, (i, r)
        assert r["dr7"] == DR7_INIT and r["dr"] == [0, 0, 0, 0] and r["dr6"] == DR6_INIT, (i, r)
        if i not in moved_rip:
            assert not r["changed"]["all"], (i, r)


# --- gdb -------------------------------------------------------------------

def gdb_batch(target, commands, extended=False, timeout=60):
    args = [GDB, "-nx", "-batch", "-ex", "set pagination off", "-ex", "set confirm off",
            "-ex", "set width 0", "-ex", "set remotetimeout 10",
            "-ex", f"target {'extended-remote' if extended else 'remote'} {target}"]
    for c in commands:
        args += ["-ex", c]
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    return r.stdout


class Gdb:
    """An interactive gdb on pipes: run() waits for a command's output
    (an echo marks its end); go() starts one (continue) that returns
    later, after interrupt() or a stop."""

    def __init__(self, target, extended=False, pre=()):
        args = [GDB, "-nx", "-q", "-ex", "set pagination off", "-ex", "set confirm off",
                "-ex", "set width 0", "-ex", "set remotetimeout 10"]
        for c in pre:
            args += ["-ex", c]
        self.p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, bufsize=1)
        self.lines = queue.Queue()
        self.seen = ""
        self.n = 0
        threading.Thread(target=self._reader, daemon=True).start()
        self.connect = self.run(f"target {'extended-remote' if extended else 'remote'} {target}")

    def _reader(self):
        for line in self.p.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def go(self, *commands):
        self.n += 1
        self.mark = f"@@{self.n}@@"
        self.p.stdin.write("".join(c + "\n" for c in commands) + f"echo {self.mark}\\n\n")
        self.p.stdin.flush()

    def wait(self, timeout=30):
        out = ""
        deadline = time.monotonic() + timeout
        while self.mark not in out:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"gdb did not finish:\n{self.seen}{out}")
            if line is None:
                raise AssertionError(f"gdb exited:\n{self.seen}{out}")
            out += line
        self.seen += out
        return out.replace(self.mark, "")

    def run(self, *commands, timeout=30):
        self.go(*commands)
        return self.wait(timeout)

    def interrupt(self):
        os.kill(self.p.pid, signal.SIGINT)

    def kill(self):
        self.p.kill()
        self.p.wait()

    def close(self):
        if self.p.poll() is None:
            try:
                self.p.stdin.write("quit\n")
                self.p.stdin.close()
                self.p.wait(15)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.kill()


@pytest.fixture
def gdbs():
    made = []

    def _gdb(*a, **kw):
        g = Gdb(*a, **kw)
        made.append(g)
        return g

    yield _gdb
    for g in made:
        g.close()


def val(out, name):
    m = re.search(rf"^(?:\(gdb\) )*{re.escape(name)}\s+(0x[0-9a-f]+)", out, re.M)
    assert m, f"{name} not in gdb's output:\n{out}"
    return int(m.group(1), 16)


# --- raw RSP ---------------------------------------------------------------

class RawRsp(Rsp):
    def __init__(self, sock):
        self.s = sock
        self.buf = b""
        self.noack = False

    def nothing_for(self, secs):
        """No byte arrives for secs: the target is running."""
        if self.buf:
            return False
        r, _, _ = select.select([self.s], [], [], secs)
        return not r

    def ack_byte(self):
        """The next byte outside a packet (an ack or a NAK)."""
        return self.read_byte()


def hexaddr(a):
    return f"{a:x}"


# --- C unit tests of stub/ ---------------------------------------------------

def test_watch_unit_binary(build_dir):
    """stub/watch.c's own tests (cmocka): every one registered ran and passed."""
    exe = build_dir / "tests" / "stub" / "test_stub_watch"
    assert exe.exists(), f"{exe} not built"
    p = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    out = p.stdout + p.stderr
    assert p.returncode == 0 and "FAILED" not in out, out
    assert re.search(r"\[  PASSED  \] 11 test\(s\)", out), out


# --- the command line ------------------------------------------------------

def test_version(fake_exe):
    version = re.search(r"version: '([^']+)'", (ROOT / "meson.build").read_text()).group(1)
    r = subprocess.run([str(fake_exe), "--version"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0 and r.stdout == f"vmistub {version}\n" and r.stderr == "", r


def test_help_names_options_and_loopback_default(fake_exe):
    r = subprocess.run([str(fake_exe), "--help"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0 and r.stderr == "", r
    assert r.stdout.startswith("usage: vmistub [options] [DOMAIN]\n"), r.stdout
    for opt in ("--listen HOST:PORT", "--unix PATH", "--log-level LEVEL", "--version", "--help"):
        assert opt in r.stdout, r.stdout
    assert "default 127.0.0.1:1234" in r.stdout, r.stdout
    assert "created 0600" in r.stdout, r.stdout


def busy_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    return s


BAD_COMMAND_LINES = [
    (["--bogus", "fake"], 2, r"unrecognized option '--bogus'.*usage: vmistub"),
    (["--listen"], 2, r"requires an argument.*usage: vmistub"),
    (["fake", "another"], 2, r"^usage: vmistub"),
    (["--log-level", "loud", "fake"], 2, r"unknown log level 'loud'"),
    (["nosuch"], 1, r"no domain 'nosuch': No such process"),
    (["--listen", "1234", "fake"], 1, r"--listen wants HOST:PORT, not '1234'"),
    (["--listen", "127.0.0.1:BUSY", "fake"], 1,
     r"cannot listen on 127\.0\.0\.1:\d+: Address already in use"),
    (["--unix", "/nonexistent-dir/vmistub.sock", "fake"], 1,
     r"cannot listen on /nonexistent-dir/vmistub\.sock: No such file or directory"),
    (["--unix", "/tmp/" + "x" * 120, "fake"], 1,
     r"cannot listen on /tmp/x+: a unix socket path has at most 107 bytes"),
]


@pytest.mark.parametrize("args,rc,err", BAD_COMMAND_LINES,
                         ids=["unknown-option", "missing-argument", "two-domains", "bad-log-level",
                              "unknown-domain", "listen-no-port", "port-in-use", "unix-bad-dir",
                              "unix-path-too-long"])
def test_bad_command_line_fails_clearly(fake_exe, tmp_path, args, rc, err):
    with busy_port() as busy:
        args = [a.replace("BUSY", str(busy.getsockname()[1])) for a in args]
        r = subprocess.run([str(fake_exe), *args], capture_output=True, text=True, timeout=20,
                           env=stub_env(tmp_path), stdin=subprocess.DEVNULL)
    assert r.returncode == rc, r
    assert re.search(err, r.stderr, re.S), r.stderr
    assert r.stdout == "", r
    assert not any(m in r.stderr for m in SANITIZER_MARKS), r.stderr


def listening_inodes(port):
    """Inodes of the TCP sockets listening on port, with their address."""
    found = {}
    for table, family in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 6)):
        try:
            rows = pathlib.Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for row in rows:
            f = row.split()
            addr, p = f[1].split(":")
            if f[3] == "0A" and int(p, 16) == port:
                found[int(f[9])] = (family, addr)
    return found


def test_listen_default_is_loopback_1234(fake_exe, tmp_path):
    """Without --listen, vmistub listens on 127.0.0.1:1234 and nowhere else.
    Port 1234 may be taken on this machine: then the error names the
    address it tried, which is the same proof."""
    log = tmp_path / "log"
    with open(log, "w") as lf:
        p = subprocess.Popen([str(fake_exe), "fake"], stdout=lf, stderr=subprocess.STDOUT,
                             env=stub_env(tmp_path), stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 20
            while "listening on" not in log.read_text() and p.poll() is None:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
            text = log.read_text()
            if p.poll() is not None:
                assert p.returncode == 1, text
                assert "cannot listen on 127.0.0.1:1234: Address already in use" in text, text
                return
            assert "listening on 127.0.0.1:1234" in text, text
            mine = {int(re.search(r"socket:\[(\d+)\]", os.readlink(fd)).group(1))
                    for fd in pathlib.Path(f"/proc/{p.pid}/fd").iterdir()
                    if os.readlink(fd).startswith("socket:")}
            bound = [v for k, v in listening_inodes(1234).items() if k in mine]
            assert bound == [(4, "0100007F")], bound    # 127.0.0.1, little endian
        finally:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                assert p.wait(20) == 0
    assert not any(m in log.read_text() for m in SANITIZER_MARKS), log.read_text()


# --- connections -------------------------------------------------------------

def test_unix_socket_0600_and_target_remote(start, tmp_path):
    path = tmp_path / "vmistub.sock"
    stub = start("fake", unix=path)
    st = os.stat(path)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600, oct(st.st_mode)
    out = gdb_batch(str(path), ["info registers rip", "detach"])
    assert val(out, "rip") == stub.layout["rip"][0], out
    assert "[Inferior 1 (Remote target) detached]" in out, out
    assert_world_clean(stub.wait_state(lambda s: s["closes"] == 1))
    assert stub.stop() == 0
    assert not path.exists(), "the unix socket outlived vmistub"


def test_extended_remote_info_os_attach_detach_attach(start, gdbs):
    stub = start()
    assert "attached" not in stub.log()
    g = gdbs(stub.target, extended=True)
    assert "Remote debugging using" in g.connect, g.connect
    out = g.run("info os processes")
    assert re.search(r"^7\s+xen\s+fake\s*$", out, re.M), out
    assert "Domain-0" not in out, out    # dom0 runs vmistub: not offered
    assert stub.state()["opens"] == 0

    out = g.run("attach 7", "info registers rip", "info threads")
    assert val(out, "rip") == stub.layout["rip"][0], out
    assert re.search(r'Thread 2 "vCPU 1"', out), out
    assert stub.state()["opens"] == 1 and stub.state()["pauses"] == 1
    out = g.run("info os processes")
    assert re.search(r"^7\s+xen\s+fake\s+attached\s*$", out, re.M), out

    out = g.run("detach")
    assert "Detaching from" in out and "detached" in out, out
    assert_world_clean(stub.wait_state(lambda s: s["closes"] == 1))
    assert "gdb connection closed" not in stub.log()    # extended: gdb stays

    out = g.run("attach 3")
    assert "Attaching to Remote target failed" in out, out
    assert stub.state()["opens"] == 1

    lay = stub.layout
    out = g.run("attach 7", f"x/s {lay['data_va']:#x}", "detach")
    assert '"vmistub fake guest"' in out, out
    assert stub.phys(lay["data_gpa"], 18) == b"vmistub fake guest"
    st = stub.wait_state(lambda s: s["closes"] == 2)
    assert st["opens"] == 2
    assert_world_clean(st)


def test_second_client_refused_first_undisturbed(start):
    stub = start("fake")
    first = stub.rsp()
    assert b"PacketSize=" in first.ask("qSupported:swbreak+;hwbreak+")
    assert first.ask("?").startswith(b"T05")
    out = gdb_batch(stub.target, ["info registers rip"], timeout=60)
    assert "another gdb is already connected" in out, out
    second = stub.rsp()
    second.send("qSupported")
    assert second.packet() == b"E.vmistub: another gdb is already connected (domain 7); one client at a time"
    second.close()
    # The first is still served, attached as before, nothing else opened.
    assert first.ask("?").startswith(b"T05")
    data = stub.layout["data_va"]
    assert first.ask(f"m{hexaddr(data)},12") == stub.phys(stub.layout["data_gpa"], 18).hex().encode()
    st = stub.state()
    assert st["opens"] == 1 and st["closes"] == 0 and st["pauses"] == 1, st
    assert "refused a connection: another gdb" in stub.log()
    first.ask("D")
    first.close()
    assert_world_clean(stub.wait_state(lambda s: s["closes"] == 1))


def test_malformed_packets_answered_session_survives(start):
    stub = start("fake")
    c = stub.rsp()
    assert c.ask("?").startswith(b"T05")
    # A bad checksum is NAKed: gdb would send it again.
    c.raw(b"$g#00")
    assert c.ack_byte() == b"-"
    # Garbage outside packets is ignored; a lone 0x03 while stopped too.
    c.raw(b"hello\x00\xff\x03 world+")
    assert c.ask("?").startswith(b"T05")
    # Too long for the decoder's buffer: an error reply, not a crash.
    c.raw(Rsp.frame(b"m" + b"0" * 0x11000))
    assert c.packet() == b"E16"
    # Malformed framing: run-length with nothing to repeat, a dangling escape.
    c.raw(b"$*a#" + f"{sum(b'*a') & 0xff:02x}".encode())
    assert c.packet() == b"E16"
    c.raw(b"$g}#" + f"{sum(b'g}') & 0xff:02x}".encode())
    assert c.packet() == b"E16"
    # Unknown and half-formed commands: "" (unsupported) or an error.
    for pkt, want in [(b"qNoSuchQuery", b""), (b"vNoSuch", b""), (b"J", b""),
                      (b"m", rb"E[0-9a-f]{2}"), (b"mzz,4", rb"E[0-9a-f]{2}"),
                      (b"M0,4:zz", rb"E[0-9a-f]{2}|"),
                      (b"Z0,1", rb"E[0-9a-f]{2}|"), (b"Hg99", rb"E[0-9a-f]{2}"),
                      (b"p9999", rb"E[0-9a-f]{2}|"), (b"qXfer:features:read:nosuch.xml:0,10", rb"E[0-9a-f]{2}|"),
                      (b"vAttach;zz", rb"E[0-9a-f]{2}|"),
                      (b"m1000000000000000,10", rb"E[0-9a-f]{2}"),
                      (b"G00", rb"E[0-9a-f]{2}")]:
        reply = c.ask(pkt)
        assert re.fullmatch(want, reply), (pkt, reply)
    # Binary junk inside and outside frames, then the session still works.
    junk = bytes((i * 37 + 11) & 0xff for i in range(4096))
    c.raw(junk)
    c.raw(b"#00")       # closes whatever frame the junk left open
    time.sleep(0.3)
    c.s.settimeout(0.5)
    try:
        while c.s.recv(65536):
            pass
    except socket.timeout:
        pass
    c.buf = b""
    c.s.settimeout(20)
    assert c.ask("?").startswith(b"T05")
    regs = c.ask("g")
    rip = int.from_bytes(bytes.fromhex(regs[16 * 16:17 * 16].decode()), "little")
    assert rip == stub.layout["rip"][0], regs[:300]
    assert stub.p.poll() is None
    c.ask("D")
    c.close()
    assert_world_clean(stub.wait_state(lambda s: s["closes"] == 1))
    assert "dropped a too long packet" in stub.log() and "dropped a malformed packet" in stub.log()


# --- registers and memory ------------------------------------------------------

def test_registers_and_memory_match_the_fake(start):
    stub = start("fake")
    lay = stub.layout
    out = gdb_batch(stub.target, [
        "info registers rip cs efer cr3 cr8", f"x/4xb {lay['data_va'] + 40:#x}",
        "thread 2", "info registers rip", "p/x $rsp", "monitor info", "detach"])
    assert val(out, "rip") == lay["rip"][0], out
    assert val(out, "cs") == 0x10, out
    assert val(out, "efer") == 0xd01 and "LMA" in out, out
    assert val(out, "cr3") == lay["cr3"], out
    assert val(out, "cr8") == 2, out
    m = re.search(r"^0x[0-9a-f]+:\s+((?:0x[0-9a-f]{2}\s*){4})$", out, re.M)
    assert m, out
    shown = bytes(int(b, 16) for b in m.group(1).split())
    assert shown == stub.phys(lay["data_gpa"] + 40, 4), out
    assert re.search(rf"^rip\s+{lay['rip'][1]:#x}", out, re.M), out   # thread 2 = vCPU 1
    assert "domain 7, 2 vCPUs, driver fake" in out, out
    assert re.search(r"^CPU time since attach: \d+\.\d ms$", out, re.M), out
    assert_world_clean(stub.wait_state(lambda s: s["closes"] == 1))


def test_cr8_is_read_when_asked_and_read_only(start):
    """CR8 (the local APIC's task priority) per vCPU, in g and alone; a
    write that changes it is refused whole, one that keeps it goes
    through."""
    stub = start("fake")
    c = stub.rsp()
    assert c.ask("qSupported:swbreak+;hwbreak+").startswith(b"PacketSize=")
    cr8 = 0x3f                                   # gdb's regnum (rsp/regs.c)
    assert c.ask(f"p{cr8:x}") == hex64(2).encode()
    assert c.ask("Hg2") == b"OK"
    assert c.ask(f"p{cr8:x}") == hex64(3).encode()
    regs = c.ask("g")
    assert c.ask(f"P{cr8:x}={hex64(9)}").startswith(b"E")
    assert c.ask("P0=" + hex64(0x1234) + "") == b"OK"     # rax: not CR8
    assert c.ask(f"P{cr8:x}={hex64(3)}") == b"OK"
    assert c.ask("p0") == hex64(0x1234).encode()
    # A G that changes CR8 changes nothing, a G that keeps it goes through.
    g = c.ask("g")
    assert g != regs
    changed = bytearray(g)
    at = 2 * 584                                 # CR8's offset in g (rsp/regs.c)
    changed[at:at + 16] = hex64(7).encode()
    assert c.ask(b"G" + bytes(changed)).startswith(b"E")
    assert c.ask("g") == g
    assert c.ask(b"G" + regs) == b"OK"
    assert c.ask("g") == regs
    c.close()


def test_memory_write_lands_in_fake_memory(start):
    stub = start("fake")
    lay = stub.layout
    at = lay["data_va"] + 0x100
    out = gdb_batch(stub.target, [
        f"set var *(unsigned int *){at:#x} = 0xdeadbeef",
        f"x/1xw {at:#x}",
        f"set var *(unsigned char *){lay['text_va'] - 0x1000:#x} = 1",
        "detach"])
    assert re.search(rf"^{at:#x}:\s+0xdeadbeef$", out, re.M), out
    assert "Cannot access memory at address" in out, out     # not mapped
    assert stub.phys(stub.gpa(at), 4) == bytes.fromhex("efbeadde")
    st = stub.wait_state(lambda s: s["closes"] == 1)
    assert st["nchanged"] == 4 and {c[0] for c in st["changed"]} == set(range(stub.gpa(at), stub.gpa(at) + 4)), st
    assert st["pauses"] == 0 and not any(st["monitors"].values()), st


# --- breakpoints: in memory while armed, gone after every way out ------------------

def test_break_puts_int3_in_memory_and_delete_restores(start, gdbs):
    stub = start("fake")
    bp = stub.layout["text_va"] + 0x3000
    g = gdbs(stub.target, pre=["set breakpoint always-inserted on"])
    assert stub.byte(bp) == NOP
    out = g.run(f"break *{bp:#x}")
    assert "Breakpoint 1 at" in out, out
    assert stub.byte(bp) == 0xCC
    assert stub.state()["monitors"]["swbreak"]
    out = g.run(f"x/1xb {bp:#x}")
    assert re.search(r":\s+0x90$", out, re.M), out      # gdb sees the original
    g.run("delete")
    assert stub.byte(bp) == NOP
    g.run("detach")
    assert_world_clean(stub.wait_state(lambda s: s["closes"] == 1))


def armed_and_running(stub, gdbs, bp):
    """gdb with a breakpoint at bp and the target running (continue)."""
    g = gdbs(stub.target)
    g.run(f"break *{bp:#x}")
    g.go("continue")
    st = stub.wait_state(lambda s: s["pauses"] == 0)
    assert stub.byte(bp) == 0xCC and st["monitors"]["swbreak"], st
    return g


@pytest.mark.parametrize("way_out", ["detach", "gdb-sigkill", "stub-sigterm"])
def test_every_way_out_restores_the_guest(start, gdbs, way_out):
    stub = start("fake")
    bp = stub.layout["text_va"] + 0x3000
    g = armed_and_running(stub, gdbs, bp)
    if way_out == "detach":
        g.interrupt()
        out = g.wait()
        assert "received signal SIGINT" in out, out
        out = g.run("detach")
        assert "detached" in out, out
    elif way_out == "gdb-sigkill":
        g.kill()
    st = None
    if way_out == "stub-sigterm":
        assert stub.stop() == 0
        st = stub.state()
        assert "signal 15: detaching and exiting" in stub.log()
        out = g.wait()
        assert "Remote connection closed" in out, out
    else:
        st = stub.wait_state(lambda s: s["closes"] == 1)
    assert stub.byte(bp) == NOP
    assert_world_clean(st)
    if way_out != "stub-sigterm":
        # Ready for the next gdb.
        stub.wait_log("gdb connection closed")
        out = gdb_batch(stub.target, ["info registers rip", "detach"])
        assert val(out, "rip") == stub.layout["rip"][0], out
        assert_world_clean(stub.wait_state(lambda s: s["closes"] == 2))


@pytest.mark.parametrize("way_out", ["D-without-z0", "hang-up", "k"])
def test_raw_client_leaving_with_breakpoints_armed(start, way_out):
    """What gdb would clean up itself is the stub's job when a client
    leaves without doing it."""
    stub = start("fake")
    bps = [stub.layout["text_va"] + 0x3000, stub.layout["text_va"] + 0x4001]
    c = stub.rsp()
    for bp in bps:
        assert c.ask(f"Z0,{hexaddr(bp)},1") == b"OK"
        assert stub.byte(bp) == 0xCC
    c.send("vCont;c")
    assert c.ack_byte() == b"+"
    assert c.nothing_for(0.3)
    c.raw(b"\x03")
    assert c.packet().startswith(b"T02")
    if way_out == "D-without-z0":
        assert c.ask("D") == b"OK"
    elif way_out == "k":
        c.send("k")
        assert c.ack_byte() == b"+"
    c.close()
    st = stub.wait_state(lambda s: s["closes"] == 1)
    assert [stub.byte(bp) for bp in bps] == [NOP, NOP]
    assert_world_clean(st)


# --- execution control ------------------------------------------------------------------

def test_ctrl_c_of_running_target_stops_with_sigint(start, gdbs):
    stub = start("fake")
    g = gdbs(stub.target)
    g.go("continue")
    stub.wait_state(lambda s: s["pauses"] == 0)     # it runs
    time.sleep(0.3)
    assert stub.state()["pauses"] == 0 and stub.p.poll() is None
    g.interrupt()
    out = g.wait()
    assert re.search(r'Thread 1 "vCPU 0" received signal SIGINT, Interrupt\.', out), out
    assert stub.state()["pauses"] == 1
    out = g.run("info registers rip", "detach")
    assert val(out, "rip") == stub.layout["rip"][0], out
    assert_world_clean(stub.wait_state(lambda s: s["closes"] == 1))

    # The same over a raw socket: no reply while it runs, T02 for 0x03.
    stub.wait_log("gdb connection closed")   # else refused: one at a time
    c = stub.rsp()
    c.send("vCont;c")
    assert c.ack_byte() == b"+" and c.nothing_for(0.5)
    c.raw(b"\x03")
    assert re.match(rb"T02.*;thread:0*1;$", c.packet())
    c.ask("D")
    c.close()
    assert_world_clean(stub.wait_state(lambda s: s["closes"] == 2))


@pytest.mark.parametrize("cpu", CPUS)
def test_breakpoint_hit_by_vcpu1_then_stepi(start, gdbs, cpu):
    """vCPU 1 runs into an int3: gdb switches to thread 2; stepi steps it
    alone (the fake CPU runs one NOP) while vCPU 0 stays where it was."""
    stub = start("fake", cpu=cpu)
    rip0, rip1 = stub.layout["rip"]
    g = gdbs(stub.target)
    g.run(f"break *{rip1:#x}")
    out = g.run("continue")
    assert re.search(rf'Thread 2 "vCPU 1" hit Breakpoint 1, {rip1:#x} in', out), out
    out = g.run("stepi", 'printf "pc %#lx\\n", $pc', "thread 1", 'printf "pc %#lx\\n", $pc')
    pcs = [int(x, 16) for x in re.findall(r"^(?:\(gdb\) )*pc (0x[0-9a-f]+)$", out, re.M)]
    assert pcs == [rip1 + 1, rip0], out
    st = stub.state()
    assert st["regs"][1]["rip"] == rip1 + 1 and st["regs"][0]["rip"] == rip0, st
    g.run("detach")
    st = stub.wait_state(lambda s: s["closes"] == 1)
    assert st["regs"][1]["rip"] == rip1 + 1
    assert_world_clean(st, moved_rip=(1,))


@pytest.mark.parametrize("cpu", CPUS)
def test_two_vcpus_hit_at_once_one_stop_each(start, cpu):
    """Both vCPUs run into int3s on the same resume: one stop is reported,
    the other is held and reported at the next resume, none lost."""
    stub = start("fake", cpu=cpu)
    rip0, rip1 = stub.layout["rip"]
    c = stub.rsp()
    assert b"swbreak+" in c.ask("qSupported:swbreak+;hwbreak+")
    for bp in (rip0, rip1):
        assert c.ask(f"Z0,{hexaddr(bp)},1") == b"OK"
    first = c.ask("vCont;c")
    m1 = re.match(rb"T05.*;thread:0*([12]);swbreak:;$", first)
    assert m1, first
    st = stub.state()
    assert st["events"] == 2 and st["unanswered"] == 2 and st["pauses"] == 1, st
    second = c.ask("vCont;c")
    m2 = re.match(rb"T05.*;thread:0*([12]);swbreak:;$", second)
    assert m2, second
    assert {m1.group(1), m2.group(1)} == {b"1", b"2"}
    assert stub.state()["events"] == 2       # reported from the queue, not raised again
    # With the breakpoints gone both run on, and nothing more is reported.
    for bp in (rip0, rip1):
        assert c.ask(f"z0,{hexaddr(bp)},1") == b"OK"
    c.send("vCont;c")
    assert c.ack_byte() == b"+" and c.nothing_for(0.5)
    st = stub.state()
    assert st["unanswered"] == 0 and st["pauses"] == 0, st
    c.raw(b"\x03")
    assert c.packet().startswith(b"T02")
    assert c.ask("D") == b"OK"
    c.close()
    assert_world_clean(stub.wait_state(lambda s: s["closes"] == 1))


@pytest.mark.parametrize("cpu", CPUS)
def test_hbreak_on_vcpu1_then_detach_restores_debug_registers(start, gdbs, cpu):
    """A DR0-3 execution breakpoint: the fake CPU traps before executing
    (as an instruction breakpoint faults); detach puts DR0-3/6/7 back."""
    stub = start("fake", cpu=cpu)
    rip1 = stub.layout["rip"][1]
    g = gdbs(stub.target)
    assert "Hardware assisted breakpoint 1 at" in g.run(f"hbreak *{rip1:#x}")
    out = g.run("continue")
    # gdb 13 says "Breakpoint" for a hardware one too.
    assert re.search(rf'Thread 2 "vCPU 1" hit Breakpoint 1, {rip1:#x} in', out), out
    st = stub.state()
    assert rip1 in st["regs"][1]["dr"] and st["regs"][1]["dr7"] != DR7_INIT, st
    assert st["nchanged"] == 0, st      # no int3 in memory: a debug register
    g.run("detach")
    assert_world_clean(stub.wait_state(lambda s: s["closes"] == 1))


@pytest.mark.parametrize("cpu", CPUS)
def test_register_write_after_hbreak_keeps_it_armed(start, gdbs, cpu):
    """A register write after a hardware breakpoint went in (always
    inserted) leaves the breakpoint armed: gdb's register file has no
    debug registers, and what it writes back must not carry old ones."""
    stub = start("fake", cpu=cpu)
    rip1 = stub.layout["rip"][1]
    g = gdbs(stub.target, pre=["set breakpoint always-inserted on"])
    g.run("info registers rip", "thread 2", "info registers rip")
    g.run(f"hbreak *{rip1:#x}")
    g.run("set $rax = 0x1234")
    out = g.run("continue", timeout=10)
    assert re.search(rf'Thread 2 "vCPU 1" hit Breakpoint 1, {rip1:#x} in', out), out
    out = g.run('printf "rax %#lx\\n", $rax', "delete", "set $rax = 0x2000", "detach")
    assert "rax 0x1234" in out, out
    assert_world_clean(stub.wait_state(lambda s: s["closes"] == 1))


def test_guests_own_int3_goes_back_to_the_guest(start, gdbs):
    """An int3 the guest has itself (written here through gdb, not
    inserted as a breakpoint) is re-injected, unseen by gdb. A breakpoint
    elsewhere turns int3 events on, as it would in a real session."""
    stub = start("fake")
    rip1 = stub.layout["rip"][1]
    g = gdbs(stub.target)
    g.run(f"break *{stub.layout['text_va'] + 0x3000:#x}")
    g.run(f"set var *(unsigned char *){rip1:#x} = 0xcc")
    assert stub.byte(rip1) == 0xCC
    g.go("continue")
    st = stub.wait_state(lambda s: s["reinjects"] == 1)
    assert st["events"] == 1 and st["unanswered"] == 0 and st["pauses"] == 0, st
    g.interrupt()
    out = g.wait()
    assert "received signal SIGINT" in out and "SIGTRAP" not in out, out
    g.run(f"set var *(unsigned char *){rip1:#x} = 0x90", "detach")
    st = stub.wait_state(lambda s: s["closes"] == 1)
    assert st["reinjects"] == 1, st
    assert_world_clean(st)


def reg(regs_hex, n):
    """64-bit register n of a g reply (rax..r15 are 0-15, rip is 16)."""
    return int.from_bytes(bytes.fromhex(regs_hex[16 * n:16 * (n + 1)].decode()), "little")


@pytest.mark.parametrize("cpu", CPUS)
def test_range_step_and_short_reads(start, cpu):
    """vCont;r steps inside the stub until RIP leaves the range (the fake
    CPU runs one NOP per step) while vCPU 1 stays put; a read that runs
    into an unmapped page returns the bytes before it."""
    stub = start("fake", cpu=cpu)
    rip0, rip1 = stub.layout["rip"]
    c = stub.rsp()
    assert c.ask("qSupported:swbreak+;hwbreak+").startswith(b"PacketSize=")
    stop = c.ask(f"vCont;r{hexaddr(rip0)},{hexaddr(rip0 + 5)}:1")
    assert re.match(rb"T05.*;thread:0*1;$", stop), stop
    assert c.ask("Hg1") == b"OK"
    assert reg(c.ask("g"), 16) == rip0 + 5
    st = stub.state()
    assert st["regs"][0]["rip"] == rip0 + 5 and st["regs"][1]["rip"] == rip1, st
    assert st["events"] >= 5, st         # one #DB per instruction, answered in the stub
    last = stub.layout["text_va"] + stub.layout["mapped_len"] - 0x10
    got = c.ask(f"m{hexaddr(last)},20")
    assert got == stub.phys(stub.gpa(last), 16).hex().encode(), got
    assert re.fullmatch(rb"E[0-9a-f]{2}", c.ask(f"m{hexaddr(last + 0x10)},10"))
    assert c.ask("D") == b"OK"
    c.close()
    st = stub.wait_state(lambda s: s["closes"] == 1)
    assert st["regs"][0]["rip"] == rip0 + 5
    assert_world_clean(st, moved_rip=(0,))


@pytest.mark.parametrize("cpu", CPUS)
def test_continue_from_a_breakpoint_steps_over_it(start, gdbs, cpu):
    """gdb's step-over: the breakpoint out, vCPU 1 steps alone (vCPU 0
    parked), the breakpoint back in, both run on; Ctrl-C stops them."""
    stub = start("fake", cpu=cpu)
    rip0, rip1 = stub.layout["rip"]
    g = gdbs(stub.target)
    g.run(f"break *{rip1:#x}")
    out = g.run("continue")
    assert re.search(rf'Thread 2 "vCPU 1" hit Breakpoint 1, {rip1:#x} in', out), out
    g.go("continue")
    st = stub.wait_state(lambda s: s["pauses"] == 0 and s["unanswered"] == 0)
    assert stub.byte(rip1) == 0xCC, st                   # back in after the step
    assert st["regs"][1]["rip"] == rip1 + 1 and st["regs"][0]["rip"] == rip0, st
    assert st["regs"][0]["rflags"] & TF == 0 and st["regs"][1]["rflags"] & TF == 0, st
    g.interrupt()
    out = g.wait()
    assert "received signal SIGINT" in out, out
    g.run("detach")
    st = stub.wait_state(lambda s: s["closes"] == 1)
    assert_world_clean(st, moved_rip=(1,))


def test_hang_up_with_a_stop_still_queued(start):
    """Both vCPUs held by int3 events, one reported, one queued, and the
    client vanishes: both events answered, both int3s gone."""
    stub = start("fake")
    rip0, rip1 = stub.layout["rip"]
    c = stub.rsp()
    for bp in (rip0, rip1):
        assert c.ask(f"Z0,{hexaddr(bp)},1") == b"OK"
    assert c.ask("vCont;c").startswith(b"T05")
    assert stub.state()["unanswered"] == 2
    c.close()
    st = stub.wait_state(lambda s: s["closes"] == 1)
    assert [stub.byte(rip0), stub.byte(rip1)] == [NOP, NOP]
    assert_world_clean(st)


@pytest.mark.parametrize("signo, says", [
    (signal.SIGUSR1, "Program terminated with signal SIGSEGV"),   # crashed, kept
    (signal.SIGUSR2, "Program terminated with signal SIGKILL"),   # destroyed
])
def test_domain_ending_under_a_waiting_gdb(start, gdbs, signo, says):
    """A guest that crashes (and is kept for inspection, so it never goes
    away) or is destroyed while gdb waits for a stop: gdb is told at once,
    and everything vmistub changed is put back."""
    stub = start("fake")
    g = gdbs(stub.target)
    # A breakpoint the guest never reaches: its int3 must be taken out.
    g.run("break *%#x" % (stub.layout["text_va"] + stub.layout["text_len"] - 1))
    g.go("continue")
    stub.wait_state(lambda s: s["pauses"] == 0)          # it runs
    stub.p.send_signal(signo)
    out = g.wait()
    assert says in out, out
    stub.wait_log("detached from domain")
    if signo == signal.SIGUSR1:
        # The domain is still there: its bytes are as they were.
        assert_world_clean(stub.wait_state(lambda s: s["closes"] == 1), moved_rip=(0, 1))
    assert stub.p.poll() is None                          # ready for the next gdb


@pytest.mark.parametrize("cpu", CPUS)
def test_step_that_never_ends_is_stopped_by_the_watchdog(start, gdbs, cpu):
    """A stepi gdb asks for with the other vCPU stopped, on a vCPU that then
    never comes back (here: hlt, no interrupt ever): vmistub stops it where
    it is after its watchdog's 0.5 s instead of leaving gdb waiting."""
    stub = start("fake", cpu=cpu)
    g = gdbs(stub.target)
    rip = stub.layout["rip"][0]
    g.run(f"set {{unsigned char}}{rip:#x} = 0xf4")
    g.go("stepi")
    out = g.wait()
    assert re.search(rf"{rip:#x}", out), out
    out = g.run("monitor info", "info registers rip", "detach")
    assert "steps stopped by the watchdog 1" in out, out
    assert val(out, "rip") == rip, out
    assert "did not finish its step" in stub.log()
    st = stub.wait_state(lambda s: s["closes"] == 1)
    assert st["pauses"] == 0 and st["unanswered"] == 0, st


# --- watchpoints: debug registers, and p2m memory access on Intel ------------
# The fake CPU's stosb (0xAA) stores AL at [RDI] and lodsb (0xAC) loads AL
# from [RSI] (driver_fake.c). On Intel a watchpoint the debug registers
# cannot take restricts its frame; on AMD it is refused, as before.

STOSB, LODSB = 0xAA, 0xAC
R, W, X = 1, 2, 4


def pc_values(out):
    return [int(x, 16) for x in re.findall(r"^(?:\(gdb\) )*pc (0x[0-9a-f]+)$", out, re.M)]


def pc(g):
    return pc_values(g.run('printf "pc %#lx\\n", $pc'))[0]


def remember(stub, saved, *vas):
    """saved[va]: the byte at va before the test changed it."""
    for va in vas:
        saved.setdefault(va, stub.byte(va))


def code(stub, g, saved, at, ops):
    """gdb writes ops at at (the bytes there remembered in saved)."""
    remember(stub, saved, *range(at, at + len(ops)))
    g.run(*[f"set var *(unsigned char *){at + i:#x} = {op:#x}" for i, op in enumerate(ops)])


def data_gfn(stub):
    return stub.layout["data_gpa"] // 4096


def put_back(g, saved):
    """gdb writes back the bytes remembered in saved."""
    g.run(*[f"set var *(unsigned char *){va:#x} = {b:#x}" for va, b in saved.items()])


def test_fourth_watch_by_memory_access_on_intel(start, gdbs):
    """Three watchpoints take DR0-2; the fourth restricts the data frame
    (no W). A store to it is reported after it is done: gdb shows the old
    and new values and the PC after the store. The debug-register ones are
    still hit beside it."""
    stub = start("fake", cpu="intel")
    data, rip0 = stub.layout["data_va"], stub.layout["rip"][0]
    g = gdbs(stub.target, pre=["set breakpoint always-inserted on"])
    saved = {}
    addrs = [data + 0x100 + 8 * i for i in range(4)]
    for i, a in enumerate(addrs):
        out = g.run(f"watch *(char *){a:#x}")
        assert f"Hardware watchpoint {i + 1}: " in out, out
    out = g.run("monitor breakpoints", "monitor info")
    for a in addrs[:3]:
        assert re.search(rf"^(?:\(gdb\) )*watch\s+{a:#x} len 1 \(DR[0-2] on every vCPU\)$", out, re.M), out
    assert re.search(rf"^(?:\(gdb\) )*watch\s+{addrs[3]:#x} len 1 \(memory access on 1 frame: "
                     rf"{data_gfn(stub):#x} r-x\)$", out, re.M), out
    assert "memory-access watchpoints: p2m access restrictions" in out and "1 in use on 1 frames" in out, out
    assert stub.state()["restricted"] == [[data_gfn(stub), R | X]]
    old = stub.byte(addrs[3])
    remember(stub, saved, addrs[0], addrs[3])

    code(stub, g, saved, rip0, [STOSB, STOSB])
    g.run(f"set $rdi = {addrs[3]:#x}", "set $rax = 0x77")
    out = g.run("continue")
    assert re.search(rf'Thread 1 "vCPU 0" hit Hardware watchpoint 4: \*\(char \*\){addrs[3]:#x}', out), out
    assert re.search(rf"^(?:\(gdb\) )*Old value = {old} ", out, re.M) and re.search(r"^(?:\(gdb\) )*New value = 119 'w'$", out, re.M), out
    assert pc(g) == rip0 + 1
    assert re.search(r", stops 1,", g.run("monitor info"))     # none before the store
    st = stub.state()
    assert stub.byte(addrs[3]) == 0x77
    assert st["restricted"] == [[data_gfn(stub), R | X]], st      # back after the step
    assert st["regs"][1]["rip"] == stub.layout["rip"][1], st         # held while vCPU 0 stepped

    g.run(f"set $rdi = {addrs[0]:#x}")
    out = g.run("continue")
    assert re.search(rf'hit Hardware watchpoint 1: \*\(char \*\){addrs[0]:#x}', out), out
    assert pc(g) == rip0 + 2

    put_back(g, saved)
    g.run("delete")
    assert stub.state()["restricted"] == []
    g.run("detach")
    assert_world_clean(stub.wait_state(lambda s: s["closes"] == 1), moved_rip=(0,))


def test_fourth_watch_refused_on_amd(start, gdbs):
    """No memory access on AMD: the fourth watchpoint is refused as it
    always was, in words gdb understands; the three in DR0-2 work."""
    stub = start("fake")
    data, rip0 = stub.layout["data_va"], stub.layout["rip"][0]
    g = gdbs(stub.target)
    saved = {}
    addrs = [data + 0x100 + 8 * i for i in range(4)]
    for a in addrs:
        g.run(f"watch *(char *){a:#x}")
    out = g.run("continue")
    assert "Could not insert hardware watchpoint 4." in out, out
    assert "not on this platform" in g.run("monitor info")
    g.run("delete 4")
    remember(stub, saved, addrs[1])
    code(stub, g, saved, rip0, [STOSB])
    g.run(f"set $rdi = {addrs[1]:#x}", "set $rax = 0x55")
    out = g.run("continue")
    assert re.search(rf'hit Hardware watchpoint 2: \*\(char \*\){addrs[1]:#x}', out), out
    assert pc(g) == rip0 + 1
    assert stub.state()["restricted"] == []
    put_back(g, saved)
    g.run("delete", "detach")
    assert_world_clean(stub.wait_state(lambda s: s["closes"] == 1), moved_rip=(0,))


@pytest.mark.parametrize("cpu", CPUS)
def test_watch_on_a_16_byte_region(start, gdbs, cpu):
    """16 bytes fit no debug register: memory access serves them on Intel
    (with DR slots free), a store into the middle is a hit; AMD refuses."""
    stub = start("fake", cpu=cpu)
    data, rip0 = stub.layout["data_va"], stub.layout["rip"][0]
    region = data + 0x200
    g = gdbs(stub.target)
    saved = {}
    out = g.run(f"watch *(unsigned char (*)[16]){region:#x}")
    assert "Hardware watchpoint 1: " in out, out
    remember(stub, saved, region + 12)
    code(stub, g, saved, rip0, [STOSB])
    g.run(f"set $rdi = {region + 12:#x}", "set $rax = 0x42")
    out = g.run("continue")
    if cpu == "amd":
        assert "Could not insert hardware watchpoint 1." in out, out
        put_back(g, saved)
        g.run("delete", "detach")
        assert_world_clean(stub.wait_state(lambda s: s["closes"] == 1), moved_rip=(0,))
        return
    assert re.search(rf'Thread 1 "vCPU 0" hit Hardware watchpoint 1: \*\(unsigned char \(\*\)\[16\]\){region:#x}',
                     out), out
    old = re.search(r"^(?:\(gdb\) )*Old value = (.*)$", out, re.M).group(1)
    new = re.search(r"^(?:\(gdb\) )*New value = (.*)$", out, re.M).group(1)
    assert old != new and "B" in new, out         # 0x42 is 'B'
    assert pc(g) == rip0 + 1
    assert stub.byte(region + 12) == 0x42
    put_back(g, saved)
    g.run("delete", "detach")
    assert_world_clean(stub.wait_state(lambda s: s["closes"] == 1), moved_rip=(0,))


def test_two_vcpus_hit_memory_watches_at_once(start, gdbs):
    """Both vCPUs store into watched ranges on the same resume: one hit is
    reported (the other vCPU held meanwhile, its access not yet made), the
    other at the next continue, each after its store; none lost."""
    stub = start("fake", cpu="intel")
    data, (rip0, rip1) = stub.layout["data_va"], stub.layout["rip"]
    regions = [data + 0x200, data + 0x600]
    g = gdbs(stub.target)
    saved = {}
    for r in regions:
        g.run(f"watch *(unsigned char (*)[16]){r:#x}")
    remember(stub, saved, regions[0] + 1, regions[1] + 2)
    code(stub, g, saved, rip0, [STOSB])
    code(stub, g, saved, rip1, [STOSB])
    g.run(f"set $rdi = {regions[0] + 1:#x}", "set $rax = 0x61",
          "thread 2", f"set $rdi = {regions[1] + 2:#x}", "set $rax = 0x62", "thread 1")
    hits = []
    for _ in regions:
        out = g.run("continue")
        m = re.search(r'Thread (\d) "vCPU \d" hit Hardware watchpoint (\d)', out)
        assert m, out
        hits.append((int(m.group(1)), int(m.group(2))))
        assert pc(g) == (rip0 if m.group(1) == "1" else rip1) + 1, out
    assert sorted(hits) == [(1, 1), (2, 2)], hits
    # Two stop replies: none before an access (gdb would have resumed
    # quietly from a "watch" whose value had not changed yet).
    assert re.search(r", stops 2,", g.run("monitor info")), stub.log()
    assert [stub.byte(regions[0] + 1), stub.byte(regions[1] + 2)] == [0x61, 0x62]
    put_back(g, saved)
    g.run("delete", "detach")
    assert_world_clean(stub.wait_state(lambda s: s["closes"] == 1), moved_rip=(0, 1))


def test_hit_waits_for_another_vcpus_step(start, gdbs):
    """vCPU 0 stores near a debug-register watchpoint on a restricted
    frame: not emulated (no data breakpoint would fire) but stepped
    natively with the frame lifted. vCPU 1's hit meanwhile waits for that
    step, then is stepped and reported; vCPU 0 runs on."""
    stub = start("fake", cpu="intel")
    data, (rip0, rip1) = stub.layout["data_va"], stub.layout["rip"]
    region = data + 0x200
    g = gdbs(stub.target, pre=["set breakpoint always-inserted on"])
    saved = {}
    g.run(f"watch *(char *){data + 0x108:#x}", f"watch *(unsigned char (*)[16]){region:#x}")
    out = g.run("monitor breakpoints")
    assert "(DR" in out and "(memory access" in out, out
    remember(stub, saved, data + 0x105, region + 1)
    code(stub, g, saved, rip0, [STOSB])
    code(stub, g, saved, rip1, [STOSB])
    g.run(f"set $rdi = {data + 0x105:#x}", "set $rax = 0x71",
          "thread 2", f"set $rdi = {region + 1:#x}", "set $rax = 0x72", "thread 1")
    out = g.run("continue")
    assert re.search(r'Thread 2 "vCPU 1" hit Hardware watchpoint 2', out), out
    assert pc(g) == rip1 + 1
    assert re.search(r", stops 1,", g.run("monitor info"))
    assert [stub.byte(data + 0x105), stub.byte(region + 1)] == [0x71, 0x72]
    assert stub.state()["regs"][0]["rip"] == rip0 + 1
    put_back(g, saved)
    g.run("delete", "detach")
    assert_world_clean(stub.wait_state(lambda s: s["closes"] == 1), moved_rip=(0, 1))


def test_rwatch_by_memory_access_on_intel(start, gdbs):
    """Three hbreaks take DR0-2; an rwatch makes its frame execute-only
    (no EPT entry is writable but not readable), and a load of it is
    reported after it, with the value loaded."""
    stub = start("fake", cpu="intel")
    text, data, rip0 = stub.layout["text_va"], stub.layout["data_va"], stub.layout["rip"][0]
    at = data + 0x300
    g = gdbs(stub.target, pre=["set breakpoint always-inserted on"])
    saved = {}
    for i in range(3):
        g.run(f"hbreak *{text + 0x5000 + i:#x}")
    out = g.run(f"rwatch *(char *){at:#x}")
    assert "Hardware read watchpoint 4: " in out, out
    out = g.run("monitor breakpoints")
    assert re.search(rf"^(?:\(gdb\) )*rwatch\s+{at:#x} len 1 \(memory access on 1 frame: {data_gfn(stub):#x} --x\)$",
                     out, re.M), out
    assert stub.state()["restricted"] == [[data_gfn(stub), X]]
    want = stub.byte(at)
    code(stub, g, saved, rip0, [LODSB])
    g.run(f"set $rsi = {at:#x}", "set $rax = 0")
    out = g.run("continue")
    assert re.search(rf'Thread 1 "vCPU 0" hit Hardware read watchpoint 4: \*\(char \*\){at:#x}', out), out
    assert re.search(rf"^(?:\(gdb\) )*Value = {want} ", out, re.M), out
    assert pc(g) == rip0 + 1
    out = g.run('printf "al %#x\\n", $al')
    assert f"al {want:#x}" in out, out
    put_back(g, saved)
    g.run("delete", "detach")
    assert_world_clean(stub.wait_state(lambda s: s["closes"] == 1), moved_rip=(0,))


def test_unrelated_access_to_a_watched_frame_runs_on(start, gdbs):
    """Stores elsewhere in the watched frame are emulated by "Xen" and the
    vCPU runs on unseen by gdb; a load of the watched bytes does not even
    fault (the frame keeps R for a write watchpoint)."""
    stub = start("fake", cpu="intel")
    data, rip0 = stub.layout["data_va"], stub.layout["rip"][0]
    region = data + 0x200
    g = gdbs(stub.target)
    saved = {}
    g.run(f"watch *(unsigned char (*)[16]){region:#x}")
    remember(stub, saved, data + 0x400, data + 0x401)
    code(stub, g, saved, rip0, [STOSB, STOSB, LODSB])
    g.run(f"set $rdi = {data + 0x400:#x}", f"set $rsi = {region + 8:#x}", "set $rax = 0x33")
    g.go("continue")
    st = stub.wait_state(lambda s: s["pauses"] == 0 and s["regs"][0]["rip"] == rip0 + 3)
    assert st["events"] == 2 and st["unanswered"] == 0, st        # two stores, emulated
    assert st["restricted"] == [[data_gfn(stub), R | X]], st
    assert [stub.byte(data + 0x400), stub.byte(data + 0x401)] == [0x33, 0x33]
    time.sleep(0.3)
    g.interrupt()
    out = g.wait()
    assert "received signal SIGINT" in out and "watchpoint" not in out, out
    put_back(g, saved)
    g.run("delete", "detach")
    assert_world_clean(stub.wait_state(lambda s: s["closes"] == 1), moved_rip=(0,))


def test_stepi_over_accesses_to_a_watched_frame(start, gdbs):
    """gdb's stepi over an access to a watched frame is one instruction
    (Xen's late MTF stop after an emulated instruction would make it two),
    and the frame is restricted again when it ends; a stepi over a hit
    reports the watchpoint."""
    stub = start("fake", cpu="intel")
    data, rip0 = stub.layout["data_va"], stub.layout["rip"][0]
    region = data + 0x200
    g = gdbs(stub.target, pre=["set breakpoint always-inserted on"])
    saved = {}
    g.run(f"watch *(unsigned char (*)[16]){region:#x}")
    remember(stub, saved, data + 0x400, data + 0x401, region + 3)
    code(stub, g, saved, rip0, [STOSB, STOSB, STOSB])
    g.run(f"set $rdi = {data + 0x400:#x}", "set $rax = 0x21")
    out = g.run("stepi", 'printf "pc %#lx\\n", $pc', "stepi", 'printf "pc %#lx\\n", $pc')
    assert pc_values(out) == [rip0 + 1, rip0 + 2], out
    assert [stub.byte(data + 0x400), stub.byte(data + 0x401)] == [0x21, 0x21]
    st = stub.state()
    assert st["restricted"] == [[data_gfn(stub), R | X]], st
    g.run(f"set $rdi = {region + 3:#x}")
    out = g.run("stepi")
    assert re.search(rf"Hardware watchpoint 1: \*\(unsigned char \(\*\)\[16\]\){region:#x}", out), out
    assert pc(g) == rip0 + 3 and stub.byte(region + 3) == 0x21
    assert stub.state()["restricted"] == [[data_gfn(stub), R | X]]
    put_back(g, saved)
    g.run("delete", "detach")
    assert_world_clean(stub.wait_state(lambda s: s["closes"] == 1), moved_rip=(0,))


def hex64(v):
    return v.to_bytes(8, "little").hex()


def test_range_step_over_a_watched_frame(start):
    """vCont;r over stores to a watched frame steps each one natively and
    stops at the range's end; a store that hits ends the range step with
    watch:ADDR after it. The frame is restricted again every time."""
    stub = start("fake", cpu="intel")
    data, rip0 = stub.layout["data_va"], stub.layout["rip"][0]
    region = data + 0x200
    c = stub.rsp()
    assert c.ask("qSupported:swbreak+;hwbreak+").startswith(b"PacketSize=")
    assert c.ask(f"Z2,{hexaddr(region)},10") == b"OK"
    assert c.ask(f"M{hexaddr(rip0)},4:{STOSB:02x}{STOSB:02x}{STOSB:02x}90") == b"OK"
    assert c.ask(f"P5={hex64(data + 0x400)}") == b"OK"
    assert c.ask(f"P0={hex64(0x11)}") == b"OK"
    stop = c.ask(f"vCont;r{hexaddr(rip0)},{hexaddr(rip0 + 2)}:1")
    assert re.match(rb"T05.*;thread:0*1;$", stop), stop
    assert reg(c.ask("g"), 16) == rip0 + 2
    assert [stub.byte(data + 0x400), stub.byte(data + 0x401)] == [0x11, 0x11]
    assert stub.state()["restricted"] == [[data_gfn(stub), R | X]]
    assert c.ask(f"P5={hex64(region + 15)}") == b"OK"
    stop = c.ask(f"vCont;r{hexaddr(rip0 + 2)},{hexaddr(rip0 + 4)}:1")
    assert re.match(rb"T05.*\bwatch:0*" + hexaddr(region).encode() + rb";", stop), stop
    assert re.search(rb";thread:0*1;", stop), stop
    assert reg(c.ask("g"), 16) == rip0 + 3 and stub.byte(region + 15) == 0x11
    st = stub.state()
    assert st["restricted"] == [[data_gfn(stub), R | X]] and st["regs"][1]["rip"] == stub.layout["rip"][1], st
    assert c.ask("z2," + hexaddr(region) + ",10") == b"OK"
    assert stub.state()["restricted"] == []
    assert c.ask("D") == b"OK"
    c.close()
    st = stub.wait_state(lambda s: s["closes"] == 1)
    assert st["restricted"] == [] and not any(st["mtf"]) and st["unanswered"] == 0 and st["pauses"] == 0, st


@pytest.mark.parametrize("way_out", ["delete", "detach", "kill", "gdb-sigkill"])
def test_every_way_out_leaves_no_frame_restricted(start, gdbs, way_out):
    """A watchpoint by memory access that was hit, then every way out:
    every frame rwx, MTF off, no event pending; a new gdb finds the stub
    holding nothing (its bookkeeping was reset)."""
    stub = start("fake", cpu="intel")
    data, rip0 = stub.layout["data_va"], stub.layout["rip"][0]
    region = data + 0x200
    g = gdbs(stub.target, pre=["set breakpoint always-inserted on"])
    saved = {}
    g.run(f"watch *(unsigned char (*)[16]){region:#x}", f"watch *(unsigned char (*)[32]){data + 0x800:#x}")
    code(stub, g, saved, rip0, [STOSB])
    g.run(f"set $rdi = {region:#x}")
    assert "hit Hardware watchpoint 1" in g.run("continue")
    if way_out == "delete":
        g.run("delete")
        assert stub.state()["restricted"] == []
        g.run("detach")
    elif way_out == "detach":
        g.run("detach")
    elif way_out == "kill":
        g.run("kill")
    else:
        g.go("continue")
        stub.wait_state(lambda s: s["pauses"] == 0 and s["restricted"] != [])
        g.kill()
    st = stub.wait_state(lambda s: s["closes"] == 1)
    assert st["restricted"] == [] and not any(st["mtf"]), st
    assert st["unanswered"] == 0 and st["queued"] == 0 and st["pauses"] == 0, st
    assert not any(st["monitors"].values()), st
    stub.wait_log("gdb connection closed")
    out = gdb_batch(stub.target, ["monitor breakpoints", "monitor info", "detach"])
    assert "no breakpoints" in out and "0 in use on 0 frames" in out, out
    assert stub.wait_state(lambda s: s["closes"] == 2)["restricted"] == []
