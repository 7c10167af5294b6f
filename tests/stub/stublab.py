"""Helpers for the vmistub lab tests: start vmistub in dom0, drive the real
gdb on the host in batch mode, speak raw RSP over a socket, snapshot guest
memory from an independent reader (vmi-probe)."""
import json
import re
import socket
import subprocess
import time

GDB = "/usr/bin/gdb"
DOM0_PORT = 1234
LOG = "/tmp/vmistub.log"
PIDFILE = "/tmp/vmistub.pid"
TINY_TEXT = 0xffffffff80100000


def stub_start(lab, domain="tiny", extra=""):
    """(Re)start vmistub in dom0 listening on 0.0.0.0:1234; the host port.
    A guest the nested emulation crashed is booted again first (reported
    with the lab's incidents)."""
    stub_stop(lab)
    lab.revive_dead_guests([domain], "before vmistub attached to it")
    # A vmistub the pid file does not name (one that outlived stub_stop,
    # or was started by hand) would hold the port and fail every later
    # module: it is reported, then ended.
    stray = lab.run("pidof vmistub").stdout.split()
    if stray:
        lab.incidents.append(f"vmistub already running in dom0 before starting it for {domain}: "
                             f"{lab.run('ps').stdout.strip()}")
        lab.run(f"kill -TERM {' '.join(stray)}; sleep 2; kill -KILL {' '.join(stray)} 2>/dev/null")
    for attempt in (1, 2):
        # The shell writes its own pid, then becomes vmistub: the pid file
        # names vmistub itself whatever setsid does about process groups.
        lab.sh(f"setsid sh -c 'echo $$ >{PIDFILE}; exec vmistub --listen 0.0.0.0:{DOM0_PORT} "
               f"{extra} {domain}' >{LOG} 2>&1 </dev/null &")
        deadline = time.monotonic() + 30
        while not lab.run(f"test -s {PIDFILE}").ok and time.monotonic() < deadline:
            time.sleep(0.1)
        if lab.run(f"test -s {PIDFILE}").ok:
            break
        # No pid file: dom0's shell never got as far as exec'ing vmistub
        # (the lab's dom0 userspace corruption, tests/lab/README.md).
        # Reported with the lab's incidents, tried once more.
        lab.incidents.append(f"dom0 shell did not start vmistub {domain} (attempt {attempt})")
    assert lab.run(f"test -s {PIDFILE}").ok, "vmistub did not start (dom0's shell wrote no pid file)"
    while "listening on" not in stub_log(lab):
        assert time.monotonic() < deadline, f"vmistub did not start:\n{stub_log(lab)}"
        assert stub_alive(lab), (f"vmistub exited:\n{stub_log(lab)}\n"
                                 f"dom0's processes:\n{lab.run('ps').stdout}\n"
                                 f"dom0's TCP sockets:\n{lab.run('cat /proc/net/tcp').stdout}")
        time.sleep(0.2)
    if not hasattr(lab, "stub_port"):
        lab.stub_port = lab.forward(DOM0_PORT)
    lab.stub_attached = (domain, extra, lab.domid(domain))
    return lab.stub_port


def stub_follow_guest(lab, why):
    """Between the tests of a module that share one vmistub: if the guest
    crashed and was booted again (a new domain), or vmistub is gone, start
    it again on the guest as it is now; reported with the incidents."""
    domain, extra, domid = getattr(lab, "stub_attached", (None, "", None))
    if domain is None:
        return
    lab.revive_dead_guests([domain], why)
    now = None if lab.state(domain) is None else lab.domid(domain)
    if now == domid and stub_alive(lab):
        return
    lab.incidents.append(f"vmistub started again {why}: "
                         + (f"{domain} is domain {now} now, not {domid}" if now != domid
                            else "it was not running"))
    stub_start(lab, domain, extra)


def stub_alive(lab):
    return lab.run(f"kill -0 $(cat {PIDFILE}) 2>/dev/null").ok


def stub_stop(lab, sig="TERM"):
    """Stop vmistub with sig; one still running 10 s later is a defect of
    its own (reported with the lab's incidents) and is killed, so that it
    cannot hold the port for every later test."""
    r = lab.run(f"test -f {PIDFILE} || exit 0; kill -{sig} $(cat {PIDFILE}); "
                f"for i in $(seq 100); do kill -0 $(cat {PIDFILE}) 2>/dev/null || exit 0; "
                f"sleep 0.1; done; exit 3", timeout=60)
    if r.how == "exit" and r.code == 3:
        lab.incidents.append(f"vmistub outlived SIG{sig} by 10 s: {lab.run(f'cat /proc/$(cat {PIDFILE})/stack /proc/$(cat {PIDFILE})/wchan').stdout.strip()}\n{stub_log(lab)[-2000:]}")
        lab.run(f"kill -KILL $(cat {PIDFILE}); sleep 0.5")
    lab.run(f"rm -f {PIDFILE}")
    lab.stub_attached = (None, "", None)


def stub_log(lab):
    r = lab.run(f"cat {LOG}")
    return r.stdout if r.ok else ""


def wait_log(lab, text, timeout=30, count=1):
    """Wait until vmistub's log holds text count times."""
    deadline = time.monotonic() + timeout
    while stub_log(lab).count(text) < count:
        assert time.monotonic() < deadline, f"{text!r} not {count}x in vmistub's log:\n{stub_log(lab)}"
        time.sleep(0.2)


def gdb_args(elf, port, commands, extended=False, pre=()):
    args = [GDB, "-nx", "-batch", "-ex", "set pagination off", "-ex", "set confirm off",
            "-ex", "set architecture i386:x86-64",
            # Attaching maps and probes the domain: seconds on a loaded
            # lab, more than gdb's default 2 s wait for an ack.
            "-ex", "set remotetimeout 30"]
    for c in pre:
        args += ["-ex", c]
    if elf is not None:
        args += ["-ex", f"file {elf}"]
    args += ["-ex", f"target {'extended-remote' if extended else 'remote'} 127.0.0.1:{port}"]
    for c in commands:
        args += ["-ex", c]
    return args


def gdb(elf, port, commands, timeout=300, **kw):
    """Run gdb in batch mode; stdout and stderr in order, in one string."""
    r = subprocess.run(gdb_args(elf, port, commands, **kw), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    return r.stdout


def val(out, key):
    m = re.search(rf"^{re.escape(key)}\s*=?\s*(\S+)", out, re.M)
    assert m, f"{key!r} not in gdb output:\n{out}"
    return int(m.group(1), 0)


def probe(lab, args, timeout=120):
    """vmi-probe's JSON lines (it must not run while vmistub is attached)."""
    out = lab.sh(f"vmi-probe {args}", timeout=timeout)
    return [json.loads(l) for l in out.splitlines() if l.startswith("{")]


def snapshot(lab, domain, addr, length, name):
    probe(lab, f"{domain} snapshot 0 {addr:#x} {length} /tmp/{name}.snap")


def compare(lab, domain, addr, length, name):
    return probe(lab, f"{domain} compare 0 {addr:#x} {length} /tmp/{name}.snap")[-1]


class Rsp:
    """A raw RSP client: frames, checksums, acks (until no-ack)."""

    def __init__(self, port, timeout=30):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.noack = False

    def close(self):
        self.s.close()

    def raw(self, data):
        self.s.sendall(data)

    @staticmethod
    def frame(payload):
        if isinstance(payload, str):
            payload = payload.encode()
        return b"$" + payload + b"#" + f"{sum(payload) & 0xff:02x}".encode()

    def send(self, payload):
        self.raw(self.frame(payload))

    def _fill(self):
        chunk = self.s.recv(65536)
        if not chunk:
            raise EOFError("connection closed")
        self.buf += chunk

    def read_byte(self):
        while not self.buf:
            self._fill()
        b, self.buf = self.buf[:1], self.buf[1:]
        return b

    def packet(self):
        """The next packet's payload (acks before it are skipped)."""
        while True:
            while b"$" not in self.buf:
                self._fill()
            start = self.buf.index(b"$")
            while b"#" not in self.buf[start:] or len(self.buf) < self.buf.index(b"#", start) + 3:
                self._fill()
            end = self.buf.index(b"#", start)
            payload = self.buf[start + 1:end]
            self.buf = self.buf[end + 3:]
            if not self.noack:
                self.raw(b"+")
            return _undo_rle(payload)

    def ask(self, payload):
        self.send(payload)
        return self.packet()


def _undo_rle(p):
    out = bytearray()
    i = 0
    while i < len(p):
        c = p[i]
        if c == ord("}"):
            out.append(p[i + 1] ^ 0x20)
            i += 2
        elif c == ord("*"):
            n = p[i + 1] - 29
            out += bytes([out[-1]]) * n
            i += 2
        else:
            out.append(c)
            i += 1
    return bytes(out)


def progress_lines(lab):
    return [{k: int(v, 0) for k, v in re.findall(r"(\w+)=(0x[0-9a-f]+|\d+)", l)}
            for l in re.findall(r"^tiny: iter=.*$", lab.console("tiny"), re.M)]


def int3_offset(lab):
    """tiny's own int3 self-test reaches its #BP handler once per iteration:
    its bp count minus its iterations, from its last report (0 while every
    one of them arrived exactly once)."""
    last = progress_lines(lab)[-1]
    return last["bp"] - last["iter"]


def runs_on(lab):
    """The guest prints two more progress lines: it runs."""
    p = lab.progress("tiny")
    p = lab.wait_progress("tiny", beyond=p, timeout=60)
    lab.wait_progress("tiny", beyond=p, timeout=60)
    return progress_lines(lab)[-1]
