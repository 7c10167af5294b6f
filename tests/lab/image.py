"""Builders for the lab's initramfs images: dom0's, and the Linux guest's.

Both are busybox systems. dom0's holds Xen's tools and the shared libraries
they load (resolved with ldd against the unpacked Xen packages), the kernel
modules dom0 needs, the lab agent, and whatever extra files the caller names
(the project's build outputs, the test guests). Images are plain newc cpio
archives written by Debian's cpio: uncompressed, because decompressing under
software emulation costs more than loading the bytes.
"""
import os
import pathlib
import re
import shutil
import stat
import subprocess

HERE = pathlib.Path(__file__).resolve().parent
BUSYBOX = pathlib.Path("/bin/busybox")

# Xen's tools that dom0 runs (from xen-utils-4.17 and xenstore-utils).
XEN_TOOLS = ["xl", "xenstored", "xen-init-dom0", "xenconsoled", "xen-access",
             "xenctx", "xen-hvmctx", "xenstore-control", "libxl-save-helper"]

# Modules dom0 loads, in an order that satisfies modules.dep (checked below).
DOM0_MODULES = ["xen-evtchn", "xen-privcmd", "xenfs", "xen-gntdev",
                "xen-gntalloc", "e1000"]


class ImageError(RuntimeError):
    pass


def _ldd(binary, library_path):
    """The shared objects a binary loads, as absolute host paths."""
    env = dict(os.environ, LD_LIBRARY_PATH=library_path)
    out = subprocess.run(["ldd", str(binary)], env=env, capture_output=True,
                         text=True)
    if out.returncode != 0:
        # A static binary: ldd says so and exits 1.
        if "not a dynamic executable" in out.stdout + out.stderr:
            return []
        raise ImageError(f"ldd {binary}: {out.stderr.strip()}")
    libs = []
    for line in out.stdout.splitlines():
        if "not found" in line:
            raise ImageError(f"{binary}: a library is missing: {line.strip()}")
        m = re.search(r"(/\S+)", line)
        if m:
            libs.append(pathlib.Path(m.group(1)))
    return libs


class Staging:
    """A folder that becomes an initramfs."""

    def __init__(self, path, library_path=""):
        self.path = pathlib.Path(path)
        if self.path.exists():
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True)
        self.library_path = library_path
        self._libs_done = set()

    def _dest(self, inside):
        return self.path / str(inside).lstrip("/")

    def add_file(self, src, inside, mode=None):
        dest = self._dest(inside)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        os.chmod(dest, mode if mode is not None else
                 stat.S_IMODE(os.stat(src).st_mode))
        return dest

    def add_text(self, text, inside, mode=0o644):
        dest = self._dest(inside)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(text)
        os.chmod(dest, mode)

    def add_symlink(self, target, inside):
        dest = self._dest(inside)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.is_symlink() or dest.exists():
            dest.unlink()
        os.symlink(target, dest)

    def add_binary(self, src, inside):
        """A program and every shared library it loads."""
        self.add_file(src, inside)
        for lib in _ldd(src, self.library_path):
            self.add_library(lib)

    def add_library(self, lib):
        real = lib.resolve()
        # Libraries from the unpacked Xen packages go where Debian puts them.
        name = str(lib)
        for root in self.library_path.split(":"):
            if root and name.startswith(root):
                name = "/usr/lib/x86_64-linux-gnu/" + lib.name
        if name in self._libs_done:
            return
        self._libs_done.add(name)
        self.add_file(real, name)

    def mkdirs(self, *dirs):
        for d in dirs:
            self._dest(d).mkdir(parents=True, exist_ok=True)

    def pack(self, out):
        """Write the folder as a newc cpio archive, owned by root."""
        out = pathlib.Path(out)
        files = subprocess.run(["find", ".", "-mindepth", "1"], cwd=self.path,
                               check=True, capture_output=True).stdout
        with open(out, "wb") as f:
            subprocess.run(["cpio", "--quiet", "-o", "-H", "newc", "-R", "0:0"],
                           cwd=self.path, input=files, stdout=f, check=True)
        return out


def _module_order(moddir, names):
    """Module files for names plus their dependencies, dependencies first."""
    deps = {}
    for line in (moddir / "modules.dep").read_text().splitlines():
        mod, _, rest = line.partition(":")
        deps[mod] = rest.split()
    by_name = {pathlib.Path(m).name.split(".ko")[0].replace("_", "-"): m
               for m in deps}
    order = []

    def visit(mod):
        for d in deps.get(mod, []):
            visit(d)
        if mod not in order:
            order.append(mod)

    for n in names:
        key = n.replace("_", "-")
        if key not in by_name:
            builtin = (moddir / "modules.builtin").read_text()
            if re.search(rf"/{re.escape(n)}\.ko", builtin):
                continue
            raise ImageError(f"kernel module {n} not found in {moddir}")
        visit(by_name[key])
    return order


def build_dom0(env, out, extras, workdir):
    """Build dom0's initramfs.

    env    -- lab.env's settings (paths to the unpacked Xen and kernel)
    extras -- (host path, path inside dom0, mode) of further files
    """
    root = pathlib.Path(env["VMISTUB_LAB_ROOT"])
    kver = env["VMISTUB_LAB_KVER"]
    libpath = f"{root}/usr/lib/x86_64-linux-gnu"
    st = Staging(workdir, library_path=libpath)
    st.mkdirs("proc", "sys", "dev", "run", "tmp", "var/log/xen/console",
              "var/lib/xen", "var/run/xen", "etc/xen", "root", "mnt")
    st.add_file(BUSYBOX, "/bin/busybox", 0o755)
    st.add_symlink("busybox", "bin/sh")
    xbin = root / "usr/lib/xen-4.17/bin"
    for tool in XEN_TOOLS:
        st.add_binary(xbin / tool, f"/usr/lib/xen-4.17/bin/{tool}")
        st.add_symlink(f"../lib/xen-4.17/bin/{tool}", f"usr/sbin/{tool}")
    for tool in sorted((root / "usr/bin").glob("xenstore*")):
        if tool.is_symlink():
            st.add_symlink(os.readlink(tool), f"usr/bin/{tool.name}")
        else:
            st.add_binary(tool, f"/usr/bin/{tool.name}")
    # libgcc_s is loaded with dlopen by pthread_cancel/exit paths: without it
    # xl aborts at exit (see XEN-LAB.md).
    st.add_library(pathlib.Path("/lib/x86_64-linux-gnu/libgcc_s.so.1"))
    st.add_text("# written by tests/lab/image.py\n", "/etc/xen/xl.conf")
    st.add_text("root:x:0:0:root:/root:/bin/sh\n", "/etc/passwd")
    st.add_text("root:x:0:\n", "/etc/group")

    moddir = root / "lib/modules" / kver
    modules = _module_order(moddir, DOM0_MODULES)
    for m in modules:
        st.add_file(moddir / m, f"/lib/modules/{m}", 0o644)
    st.add_text("".join(m + "\n" for m in modules), "/etc/lab-modules")

    for src, inside, mode in extras:
        src = pathlib.Path(src)
        if mode & 0o111 and _is_elf(src):
            st.add_binary(src, inside)
            os.chmod(st._dest(inside), mode)
        else:
            st.add_file(src, inside, mode)
    st.add_file(HERE / "dom0-init.sh", "/init", 0o755)
    return st.pack(out)


def _is_elf(path):
    with open(path, "rb") as f:
        return f.read(4) == b"\x7fELF"


def build_linux_guest(out, workdir, init_script):
    """The Linux guest's initramfs: busybox and an init that keeps every vCPU
    busy and prints a heartbeat."""
    st = Staging(workdir)
    st.mkdirs("proc", "sys", "dev", "tmp")
    st.add_file(BUSYBOX, "/bin/busybox", 0o755)
    st.add_symlink("busybox", "bin/sh")
    st.add_file(init_script, "/init", 0o755)
    return st.pack(out)
