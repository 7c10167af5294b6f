#!/usr/bin/python3
"""The nested Xen lab: a real Xen 4.17 with dom0 and test guests, booted in
QEMU (software emulation of an AMD CPU with SVM), driven from Python.

Used by pytest fixtures (tests/conftest.py) and from the command line:

    tests/lab/lab.py demo [--build DIR] [--guest tiny|linux]
    tests/lab/lab.py run COMMAND...        (in the dom0 of a running demo)
    tests/lab/lab.py shell                 (a line-by-line shell in dom0)

Everything here talks to dom0 through lab-agent (tests/lab/agent): one TCP
connection per request through QEMU's user-network port forward, bound to
127.0.0.1 only. See tests/lab/README.md.
"""
import argparse
import contextlib
import ctypes
import json
import os
import pathlib
import re
import shlex
import signal
import socket
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
import image  # noqa: E402

CACHE = pathlib.Path(os.environ.get("VMISTUB_LAB_CACHE", "/var/cache/vmistub-lab"))
AGENT_PORT = 7000
XEN_CMDLINE = ("console=com1 com1=115200,8n1 dom0_mem=1024M,max:1024M "
               "dom0_max_vcpus=2 loglvl=all guest_loglvl=all noreboot "
               # Xen's SMAP/SMEP handling for PV dom0 crashes under QEMU's
               # emulated CPU (XEN-LAB.md).
               "smap=0 smep=0 "
               # Lazy FPU switching (Xen's default on AMD) loses dom0's
               # vector registers here once an HVM guest runs: a memcpy and
               # float checker in dom0 saw ~13% of its rounds corrupted and
               # xl crashed, with stock Debian QEMU too and with a single
               # TCG thread; eager switching saw none in 34k rounds. A QEMU
               # bug in nested SVM (tests/lab/README.md, "Known
               # instability"); real AMD hosts are not affected and
               # vmistub does not depend on it.
               "spec-ctrl=eager-fpu")
DOM0_CMDLINE = "console=hvc0 earlyprintk=xen"
# QEMU's "max" model is the one Xen runs on here (XEN-LAB.md), but with AVX
# exposed, dom0's userspace (glibc picks AVX2 string routines) was seen
# corrupted once HVM guests run — busybox and xl faults, xl failing to
# decompress a kernel — and guest vCPUs triple-faulted; with the AVX family
# off, none of it was seen in the same workload (see tests/lab/README.md,
# "Known instability"). The debugger needs none of these extensions.
LAB_CPU = "max,avx=off,avx2=off,fma=off,f16c=off"
READY = re.compile(rb"VMISTUB-LAB: dom0 ready \((.*?)\)")
STATE_FILE = "lab-state.json"

# How each guest shows it is running: a line on its console.
GUEST_PROGRESS = {
    "tiny": re.compile(r"tiny: iter=(\d+)"),
    "linux": re.compile(r"linux: heartbeat (\d+)"),
}


class LabError(RuntimeError):
    pass


DOM0_CORRUPTION = re.compile(r"died due to fatal signal \w+( \w+)*|unable to XZ decompress kernel"
                             r"|Segmentation fault|malloc\(\): \w+"
                             # xl itself (create, domid, ...) killed by SIGILL,
                             # SIGABRT, SIGBUS or SIGSEGV
                             # (the command may hold quoted overrides: 'name="x"')
                             r"|'xl .*' ended with signal (4|6|7|11)\b")


class GuestCrashed(LabError):
    def __init__(self, message, dump):
        super().__init__(message)
        self.dump = dump


def load_env():
    path = CACHE / "lab.env"
    if not path.exists():
        raise LabError(f"{path} is missing: run tests/lab/provision.sh first")
    env = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition("=")
        if key:
            env[key] = value
    return env


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent():
    """Runs in QEMU's child process before exec: if the Python process dies
    (even by SIGKILL), the kernel kills QEMU too."""
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_PDEATHSIG = 1
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def elf_symbols(path):
    """name -> address of an ELF's symbols (binutils nm)."""
    out = subprocess.run(["nm", "--defined-only", str(path)], check=True,
                         capture_output=True, text=True).stdout
    return system_map_text(out)


def system_map_text(text):
    syms = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3:
            syms.setdefault(parts[2], int(parts[0], 16))
    return syms


def system_map(path):
    return system_map_text(pathlib.Path(path).read_text())


class Result:
    def __init__(self, code, how, stdout, stderr):
        self.code, self.how = code, how
        self.stdout, self.stderr = stdout, stderr

    @property
    def ok(self):
        return self.how == "exit" and self.code == 0

    def __repr__(self):
        return (f"Result({self.how} {self.code}, stdout={self.stdout[-2000:]!r}, "
                f"stderr={self.stderr[-2000:]!r})")


class Agent:
    """Client of lab-agent: one connection per request."""

    def __init__(self, port, host="127.0.0.1"):
        self.addr = (host, port)

    def _request(self, header, body=b"", timeout=None):
        with socket.create_connection(self.addr, timeout=10) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.settimeout(timeout)
            s.sendall(header.encode() + b"\n" + body)
            f = s.makefile("rb")
            frames = {"o": [], "e": [], "d": []}
            while True:
                line = f.readline()
                if not line:
                    raise LabError(f"lab-agent closed the connection during {header!r}")
                tag, _, rest = line.decode().rstrip("\n").partition(" ")
                if tag == "x":
                    code, how = rest.split(" ", 1)
                    return int(code), how, {k: b"".join(v) for k, v in frames.items()}
                n = int(rest)
                data = f.read(n)
                if len(data) != n:
                    raise LabError(f"lab-agent sent a short frame during {header!r}")
                frames[tag].append(data)

    def run(self, cmd, timeout=120):
        body = cmd.encode()
        code, how, fr = self._request(f"RUN {int(timeout)} {len(body)}", body,
                                      timeout=timeout + 30 if timeout else None)
        return Result(code, how, fr["o"].decode(errors="replace"),
                      fr["e"].decode(errors="replace"))

    def put(self, data, path, mode=0o644):
        code, how, fr = self._request(f"PUT {mode:o} {len(data)} {path}", data, timeout=120)
        if how != "exit" or code:
            raise LabError(f"PUT {path}: {fr['e'].decode(errors='replace')}")

    def get(self, path):
        code, how, fr = self._request(f"GET {path}", timeout=120)
        if how != "exit" or code:
            raise LabError(f"GET {path}: {fr['e'].decode(errors='replace')}")
        return fr["d"]


class Lab:
    """One boot of the lab. Use as a context manager: QEMU is always killed
    on the way out, whatever happened (and by the kernel, should this
    process die without running any cleanup)."""

    def __init__(self, build_dir, run_dir=None, memory_mb=3072, log=None, qemu=None):
        """qemu: another QEMU binary than the patched one (the tests that
        show what each fix is for boot Debian's stock QEMU)."""
        self.env = load_env()
        self.qemu_binary = qemu or self.env["VMISTUB_LAB_QEMU"]
        self.build_dir = pathlib.Path(build_dir).resolve()
        self.run_dir = pathlib.Path(run_dir or self.build_dir / "lab-run").resolve()
        self.memory_mb = memory_mb
        self.log = log or (lambda msg: print(f"lab: {msg}", file=sys.stderr, flush=True))
        self.qemu = None
        self.agent = None
        self.agent_port = None
        self.t_start = None
        self.figures = {}
        self.forwards = {}
        self.guests = {}
        self._console_start = {}
        self._kind = {}
        self.incidents = []

    # --- images ---------------------------------------------------------
    def _build_outputs(self):
        """Every executable of the meson build: project programs go to
        /opt/vmistub/bin, test guests to /opt/vmistub/guests/NAME/."""
        out = subprocess.run(["meson", "introspect", "--targets", str(self.build_dir)],
                             check=True, capture_output=True, text=True).stdout
        extras, found = [], {}
        for t in json.loads(out):
            if t["type"] != "executable":
                continue
            for fn in t["filename"]:
                p = pathlib.Path(fn)
                if not p.exists():
                    self.log(f"not in dom0 (not built): {p}")
                    continue
                found[p.name] = p
                rel = p.relative_to(self.build_dir)
                if rel.parts[:2] == ("tests", "guests"):
                    extras.append((p, f"/opt/vmistub/guests/{p.name}/{p.name}", 0o755))
                elif p.name == "lab-agent":
                    extras.append((p, "/opt/lab/lab-agent", 0o755))
                else:
                    extras.append((p, f"/opt/vmistub/bin/{p.name}", 0o755))
        if "lab-agent" not in found:
            raise LabError("lab-agent is not in the build: is tests/lab/meson.build built?")
        return extras, found

    def _guest_files(self, found):
        extras = []
        guests_dir = self.run_dir / "guests"
        guests_dir.mkdir(parents=True, exist_ok=True)
        if "tiny" in found:
            cfg = (ROOT / "tests/guests/tiny/tiny.cfg.in").read_text()
            cfg = cfg.replace("@KERNEL@", "/opt/vmistub/guests/tiny/tiny")
            (guests_dir / "tiny.cfg").write_text(cfg)
            extras.append((guests_dir / "tiny.cfg", "/opt/vmistub/guests/tiny/tiny.cfg", 0o644))
        linux = ROOT / "tests/guests/linux"
        initrd = image.build_linux_guest(guests_dir / "linux-initrd.cpio",
                                         self.run_dir / "stage-linux", linux / "init.sh")
        extras += [
            (self.env["VMISTUB_LAB_KERNEL"], "/opt/vmistub/guests/linux/vmlinuz", 0o644),
            (initrd, "/opt/vmistub/guests/linux/initrd.cpio", 0o644),
            (linux / "linux.cfg", "/opt/vmistub/guests/linux/linux.cfg", 0o644),
        ]
        return extras

    def build_images(self):
        t = time.monotonic()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        extras, found = self._build_outputs()
        extras += self._guest_files(found)
        self.dom0_initrd = image.build_dom0(self.env, self.run_dir / "dom0-initrd.cpio",
                                            extras, self.run_dir / "stage-dom0")
        self.figures["image_build_s"] = round(time.monotonic() - t, 2)

    # --- QEMU -----------------------------------------------------------
    @classmethod
    def attached(cls, build_dir, run_dir):
        """A lab another process started (`lab.py demo`) and still runs:
        for development runs; never closed from here."""
        lab = cls(build_dir, run_dir=pathlib.Path(run_dir))
        state = json.loads((lab.run_dir / STATE_FILE).read_text())
        lab.agent = Agent(state["agent_port"])
        lab.agent_port = state["agent_port"]
        lab.t_start = time.monotonic()
        lab.forwards = state.get("forwards", {})
        if "1234" in lab.forwards:
            lab.stub_port = lab.forwards["1234"]
        return lab

    def start(self, timeout=200, attempts=2):
        """Boot Xen and dom0 in QEMU and wait for dom0's agent. A boot that
        hangs or crashes (the nested emulation's instability: a dom0 kernel
        once stopped for good after "sched_clock: Marking stable") is
        reported with the incidents, its console kept as
        serial-attemptN.log, and booted once more."""
        for attempt in range(1, attempts + 1):
            try:
                return self._start_once(timeout)
            except LabError as e:
                if attempt == attempts or not re.match(
                        r"dom0 was not ready|the lab crashed while booting", str(e)):
                    raise
                self.incidents.append(f"lab boot attempt {attempt} failed: {str(e).splitlines()[0]}")
                self.log(f"lab boot attempt {attempt} failed, booting again: {str(e).splitlines()[0]}")
                self.close()
                serial = self.run_dir / "serial.log"
                if serial.exists():
                    serial.replace(self.run_dir / f"serial-attempt{attempt}.log")

    def _start_once(self, timeout):
        self.build_images()
        for p in ("serial.log", "qemu.log"):
            (self.run_dir / p).unlink(missing_ok=True)
        self.agent_port = _free_port()
        kernel = self.env["VMISTUB_LAB_KERNEL"]
        for p in (kernel, self.dom0_initrd, self.env["VMISTUB_LAB_XEN"]):
            if "," in str(p):
                raise LabError(f"{p}: QEMU's multiboot module list cannot hold a comma")
        cmd = [
            self.qemu_binary,
            "-machine", "q35", "-accel", "tcg", "-cpu", LAB_CPU, "-smp", "2",
            "-m", str(self.memory_mb), "-display", "none", "-vga", "none",
            "-no-reboot", "-monitor", "none",
            "-L", "/usr/share/seabios", "-L", "/usr/share/qemu", "-L", "/usr/lib/ipxe/qemu",
            "-kernel", self.env["VMISTUB_LAB_XEN"], "-append", XEN_CMDLINE,
            "-initrd", f"{kernel} {DOM0_CMDLINE},{self.dom0_initrd}",
            "-chardev", f"file,id=serial0,path={self.run_dir / 'serial.log'}",
            "-serial", "chardev:serial0",
            "-netdev", f"user,id=lab0,hostfwd=tcp:127.0.0.1:{self.agent_port}-:{AGENT_PORT}",
            "-device", "e1000,netdev=lab0",
            "-qmp", f"unix:{self.run_dir / 'qmp.sock'},server=on,wait=off",
        ]
        self.log(f"starting QEMU (agent on 127.0.0.1:{self.agent_port})")
        self.t_start = time.monotonic()
        qlog = open(self.run_dir / "qemu.log", "wb")
        self.qemu = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=qlog,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     preexec_fn=_die_with_parent)
        qlog.close()
        self._wait_dom0(timeout)
        self.agent = Agent(self.agent_port)
        # dom0-init starts the agent in the background just before the
        # marker: on a loaded machine it may not listen yet (QEMU's
        # forward then resets the connection).
        for attempt in range(60):
            try:
                r = self.agent.run("xl info | grep -E '^(xen_version|virt_caps)'", timeout=60)
                break
            except ConnectionError:
                if attempt == 59:
                    raise
                time.sleep(0.5)
        if not r.ok:
            raise LabError(f"dom0 is up but xl info fails: {r}\n{self.tail()}")
        self.figures["dom0_ready_s"] = round(time.monotonic() - self.t_start, 1)
        self.log(f"dom0 ready after {self.figures['dom0_ready_s']} s: "
                 + " ".join(r.stdout.split()))
        self._write_state()
        return self

    def _wait_dom0(self, timeout):
        serial = self.run_dir / "serial.log"
        deadline = time.monotonic() + timeout
        while True:
            if self.qemu.poll() is not None:
                raise LabError(f"QEMU exited with {self.qemu.returncode} before dom0 was ready\n"
                               f"{self.tail()}")
            data = serial.read_bytes() if serial.exists() else b""
            m = READY.search(data)
            if m:
                if m.group(1) != b"ok":
                    raise LabError(f"dom0 came up broken: {m.group(1).decode()}\n{self.tail()}")
                return
            if re.search(rb"Panic on CPU|Kernel panic|\(XEN\) \*\*\*\*", data):
                raise LabError(f"the lab crashed while booting\n{self.tail()}")
            if time.monotonic() > deadline:
                raise LabError(f"dom0 was not ready within {timeout} s\n{self.tail()}")
            time.sleep(0.1)

    def tail(self, lines=40):
        """The last lines of the Xen/dom0 console and of QEMU's own output."""
        out = []
        for name in ("serial.log", "qemu.log"):
            p = self.run_dir / name
            text = p.read_text(errors="replace") if p.exists() else "(none)"
            out.append(f"--- last lines of {p}:\n" + "\n".join(text.splitlines()[-lines:]))
        return "\n".join(out)

    def close(self):
        if self.qemu and self.qemu.poll() is None:
            self.qemu.terminate()
            try:
                self.qemu.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.qemu.kill()
                self.qemu.wait()
        self.qemu = None
        (self.run_dir / STATE_FILE).unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _write_state(self):
        (self.run_dir / STATE_FILE).write_text(json.dumps(
            {"agent_port": self.agent_port, "pid": self.qemu.pid,
             "forwards": self.forwards}))

    # --- dom0 -----------------------------------------------------------
    def run(self, cmd, timeout=120):
        return self.agent.run(cmd, timeout)

    def sh(self, cmd, timeout=120):
        """Run a command in dom0; its stdout, or LabError with everything."""
        r = self.agent.run(cmd, timeout)
        if not r.ok:
            raise LabError(f"in dom0: {cmd!r} ended with {r.how} {r.code}\n"
                           f"stdout: {r.stdout[-3000:]}\nstderr: {r.stderr[-3000:]}")
        return r.stdout

    def put(self, local, remote, mode=0o644):
        self.agent.put(pathlib.Path(local).read_bytes(), remote, mode)

    def get(self, remote):
        return self.agent.get(remote)

    def qmp(self, command, **arguments):
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(30)
            s.connect(str(self.run_dir / "qmp.sock"))
            f = s.makefile("rwb")
            json.loads(f.readline())  # greeting
            for cmd, args in (("qmp_capabilities", {}), (command, arguments)):
                f.write(json.dumps({"execute": cmd, "arguments": args}).encode() + b"\n")
                f.flush()
                while True:
                    reply = json.loads(f.readline())
                    if "return" in reply or "error" in reply:
                        break
                if "error" in reply:
                    raise LabError(f"QMP {cmd}: {reply['error']}")
            return reply["return"]

    def forward(self, dom0_port, host_port=None):
        """Make 127.0.0.1:host_port on this machine reach dom0_port in dom0."""
        host_port = host_port or _free_port()
        out = self.qmp("human-monitor-command", **{
            "command-line": f"hostfwd_add lab0 tcp:127.0.0.1:{host_port}-:{dom0_port}"})
        if out.strip():
            raise LabError(f"hostfwd_add: {out.strip()}")
        self.forwards[str(dom0_port)] = host_port
        self._write_state()
        return host_port

    # --- guests ---------------------------------------------------------
    def create_guest(self, name, attempts=3, **kw):
        """Boot a guest (see _create_guest_once), booting it again after a
        guest crash or a dom0 corruption (never after a timeout). Every crash is kept in self.incidents with Xen's dump of
        the crashed vCPU: the nested emulation occasionally triple-faults a
        guest vCPU (see tests/lab/README.md), and that must be reported,
        not hidden."""
        for attempt in range(1, attempts + 1):
            try:
                return self._create_guest_once(name, **kw)
            except GuestCrashed as e:
                self.incidents.append(f"{name} crashed while booting (attempt {attempt}): "
                                      f"{e.dump}")
            except LabError as e:
                # dom0's own userspace is sometimes corrupted under the
                # nested emulation: xl dies on a signal, or misreads the
                # kernel it decompresses. Only those failures are retried.
                if not DOM0_CORRUPTION.search(str(e)):
                    raise
                self.incidents.append(f"xl create {name} failed in dom0 (attempt {attempt}): "
                                      + DOM0_CORRUPTION.search(str(e)).group(0))
            self.log(self.incidents[-1])
            self.run(f"xl destroy {name}", timeout=60)
            if attempt == attempts:
                raise LabError(f"{name} did not boot in {attempts} attempts: {self.incidents[-attempts:]}")

    def crash_dumps(self):
        """Xen's "Triple fault" reports and the registers it dumped, from the
        serial console, one string each."""
        serial = (self.run_dir / "serial.log").read_text(errors="replace")
        return [" ".join(m.group(0).replace("(XEN)", "").split())
                for m in re.finditer(r"\(XEN\) d\d+v\d+ Triple fault.*\n(?:\(XEN\) .*\n){0,6}",
                                     serial)]

    def _create_guest_once(self, name, timeout=600, kind=None, cmdline=None, maxvcpus=None):
        """xl create the guest and wait until its console shows progress.

        kind     -- which test guest (tiny, linux) to boot under this name
                    (default: the name itself)
        cmdline  -- the guest kernel's command line, replacing the config's
        maxvcpus -- vCPUs the domain has, replacing the config's (those the
                    guest does not bring up stay down)
        """
        kind = kind or name
        self._kind[name] = kind
        overrides = []
        if name != kind:
            overrides.append(f'name="{name}"')
        if cmdline is not None:
            overrides.append(f'cmdline="{cmdline}"')
        if maxvcpus is not None:
            overrides.append(f"maxvcpus={int(maxvcpus)}")
        t = time.monotonic()
        self._console_start[name] = self._console_size(name)
        self.sh(f"xl create /opt/vmistub/guests/{kind}/{kind}.cfg "
                + " ".join(shlex.quote(o) for o in overrides), timeout=timeout)
        domid = int(self.sh(f"xl domid {name}").strip())
        self.guests[name] = domid
        self.wait_progress(name, timeout=timeout)
        self.figures[f"{name}_running_after_create_s"] = round(time.monotonic() - t, 1)
        self.figures[f"{name}_running_after_qemu_start_s"] = round(time.monotonic() - self.t_start, 1)
        self.log(f"guest {name} (domain {domid}) running after "
                 f"{self.figures[f'{name}_running_after_create_s']} s")
        return domid

    def console(self, name):
        """What the guest's current incarnation wrote on its console
        (xenconsoled appends a re-created guest's output to the same log)."""
        try:
            log = self.get(f"/var/log/xen/console/guest-{name}.log")
        except LabError:
            return ""
        return log[self._console_start.get(name, 0):].decode(errors="replace")

    def _console_size(self, name):
        r = self.run(f"wc -c < /var/log/xen/console/guest-{name}.log 2>/dev/null")
        return int(r.stdout) if r.ok and r.stdout.strip() else 0

    def progress(self, name):
        """The guest's latest progress number from its console, or None."""
        found = GUEST_PROGRESS[self._kind.get(name, name)].findall(self.console(name))
        return int(found[-1]) if found else None

    def wait_progress(self, name, beyond=None, timeout=120):
        """Wait until the guest reports progress (beyond a given number)."""
        deadline = time.monotonic() + timeout
        while True:
            p = self.progress(name)
            if p is not None and (beyond is None or p > beyond):
                return p
            state = self.state(name)
            # c: crashed; s: shut down (a triple fault reboots, and the
            # guests' configs preserve or destroy instead of restarting).
            if state is None or "c" in state or "s" in state:
                dumps = self.crash_dumps()
                raise GuestCrashed(
                    f"guest {name} is {'gone' if state is None else 'crashed'}\n"
                    f"console:\n{self.console(name)[-3000:]}\nXen: {dumps[-1:] or 'no dump'}",
                    dumps[-1] if dumps else "no dump from Xen")
            if time.monotonic() > deadline:
                raise LabError(f"guest {name} showed no progress beyond {beyond} in "
                               f"{timeout} s; xl list: {state}\nconsole:\n"
                               f"{self.console(name)[-3000:]}\n{self.tail()}")
            time.sleep(0.25)

    def state(self, name, attempts=3):
        """xl's state flags for the guest (r b p s c d), or None if gone.
        Gone is xl's own answer that there is no such domain: xl itself
        dies now and then in the lab's dom0 (tests/lab/README.md), and a
        test once failed on "guest tiny is gone" while tiny ran on. Any
        other failure is asked again, then taken as gone."""
        for attempt in range(attempts):
            r = self.run(f"xl list {name}", timeout=30)
            lines = r.stdout.splitlines()
            if r.ok and len(lines) >= 2:
                return lines[1].split()[4]
            if r.how == "exit" and re.search(r"invalid domain identifier|does not exist", r.stderr):
                return None
            self.incidents.append(f"'xl list {name}' failed, asked again: {r}")
            time.sleep(1)
        return None

    @staticmethod
    def _dead(state):
        """Gone (None), crashed or shut down: a guest no test can use."""
        return state is None or "c" in state or "s" in state

    def is_dead(self, name):
        return self._dead(self.state(name))

    def revive_dead_guests(self, names, why):
        """Boot again every guest of names found dead (is_dead), each one
        reported with the incidents: one crash of the nested emulation
        must not fail every later test."""
        for guest in names:
            state = self.state(guest)
            if not self._dead(state):
                continue
            self.incidents.append(f"{guest} found {'gone' if state is None else state} {why}; booted again")
            self.run(f"xl destroy {guest}", timeout=60)
            try:
                self.create_guest(guest)
            except LabError as e:
                # Reported, and the test that needs the guest fails on its
                # own; raised from pytest's hooks it would abort the run.
                self.incidents.append(f"{guest} could not be booted again {why}: "
                                      f"{str(e).splitlines()[0]}")

    def domid(self, name):
        return int(self.sh(f"xl domid {name}").strip())

    def pause(self, name):
        self.sh(f"xl pause {name}")

    def unpause(self, name):
        self.sh(f"xl unpause {name}")

    def sh_twice(self, cmd, timeout=120):
        """sh(cmd), once more if dom0 killed it with a signal (the nested
        emulation's dom0 corruption, reported with the incidents); any
        other failure is raised at once."""
        for attempt in (1, 2):
            try:
                return self.sh(cmd, timeout=timeout)
            except LabError as e:
                if attempt == 2 or not DOM0_CORRUPTION.search(str(e)):
                    raise
                self.incidents.append(f"{cmd!r} failed in dom0 (attempt 1): "
                                      + DOM0_CORRUPTION.search(str(e)).group(0))

    def destroy(self, name):
        self.sh_twice(f"xl destroy {name}")
        self.guests.pop(name, None)

    def collect_logs(self, dest):
        """Copy every console log there is into dest (for a failed test)."""
        dest = pathlib.Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        for name in ("serial.log", "qemu.log"):
            p = self.run_dir / name
            if p.exists():
                (dest / name).write_bytes(p.read_bytes())
        if self.qemu is None or self.qemu.poll() is not None or not self.agent:
            return dest
        with contextlib.suppress(Exception):
            for f in self.sh("ls /var/log/xen/console", timeout=20).split():
                (dest / f).write_bytes(self.get(f"/var/log/xen/console/{f}"))
            (dest / "xl-dmesg.log").write_text(self.sh("xl dmesg", timeout=30))
            (dest / "xl-list.log").write_text(self.sh("xl list", timeout=30))
            (dest / "dom0-dmesg.log").write_text(self.sh("dmesg", timeout=30))
        return dest


# --- command line ---------------------------------------------------------
def _running_agent(run_dir):
    state = json.loads((pathlib.Path(run_dir) / STATE_FILE).read_text())
    return Agent(state["agent_port"])


def cmd_demo(args):
    with Lab(args.build, args.run_dir) as lab:
        stop = []

        def on_signal(signum, frame):
            stop.append(signum)
            raise KeyboardInterrupt
        signal.signal(signal.SIGTERM, on_signal)
        # Ctrl-C stops the demo even when it was started from a shell that
        # ignores SIGINT (a background job of a script inherits SIG_IGN,
        # and Python then installs no handler of its own).
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            lab.start()
            for g in args.guest:
                lab.create_guest(g)
            print(lab.sh("xl list"), flush=True)
            print(f"figures: {json.dumps(lab.figures)}", flush=True)
            attach = args.attach or args.guest[0]
            vmistub = lab.run("test -x /opt/vmistub/bin/vmistub").ok
            if vmistub:
                port = lab.forward(1234)
                lab.sh(f"setsid vmistub --listen 0.0.0.0:1234 {attach} "
                       f">/var/log/vmistub.log 2>&1 &")
                elf = (lab.build_dir / "tests/guests/tiny/tiny" if attach == "tiny"
                       else pathlib.Path(lab.env["VMISTUB_LAB_VMLINUX"]))
                print(f"\nvmistub is attached to {attach}. Connect with:\n"
                      f"  gdb {elf} -ex 'target remote 127.0.0.1:{port}'\n", flush=True)
            else:
                print("\n(vmistub is not built yet: the guests run without it)\n", flush=True)
            print(f"dom0 commands: {sys.argv[0]} run --run-dir {lab.run_dir} 'xl list'\n"
                  "Ctrl-C stops the lab.", flush=True)
            last = {}
            while True:
                for g in args.guest:
                    p = lab.progress(g)
                    if p != last.get(g):
                        print(f"{g}: progress {p}", flush=True)
                        last[g] = p
                if lab.qemu.poll() is not None:
                    raise LabError(f"QEMU exited\n{lab.tail()}")
                time.sleep(5)
        except KeyboardInterrupt:
            print("stopping the lab", file=sys.stderr)
        except LabError as e:
            print(f"lab: {e}", file=sys.stderr)
            lab.collect_logs(lab.run_dir / "failure-logs")
            return 1
    return 0


def cmd_run(args):
    r = _running_agent(args.run_dir).run(" ".join(args.command), timeout=args.timeout)
    sys.stdout.write(r.stdout)
    sys.stderr.write(r.stderr)
    return r.code if r.how == "exit" else 128 + r.code if r.how == "signal" else 124


def cmd_shell(args):
    agent = _running_agent(args.run_dir)
    while True:
        try:
            line = input("dom0# ")
        except EOFError:
            return 0
        r = agent.run(line, timeout=0)
        sys.stdout.write(r.stdout + r.stderr)
        if not r.ok:
            print(f"[{r.how} {r.code}]")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=str(ROOT / "build"), help="meson build folder")
    ap.add_argument("--run-dir", default=None, help="lab run folder (default BUILD/lab-run)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("demo", help="boot the lab with guests; stay up until Ctrl-C")
    d.add_argument("--guest", action="append", choices=sorted(GUEST_PROGRESS))
    d.add_argument("--attach", choices=sorted(GUEST_PROGRESS))
    r = sub.add_parser("run", help="run a command in the dom0 of a running demo")
    r.add_argument("--timeout", type=int, default=120)
    r.add_argument("command", nargs="+")
    sub.add_parser("shell", help="run commands in dom0, one line at a time")
    args = ap.parse_args(argv)
    args.run_dir = args.run_dir or str(pathlib.Path(args.build) / "lab-run")
    if args.cmd == "demo":
        args.guest = args.guest or ["tiny", "linux"]
        return cmd_demo(args)
    return {"run": cmd_run, "shell": cmd_shell}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
