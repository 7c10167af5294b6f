"""The generated target description must be accepted by the real gdb, and
the register numbering and g-packet offsets gdb derives from it must be
exactly the rsp register table's (GDB manual, "Target Descriptions")."""
import subprocess

GDB = "/usr/bin/gdb"


def _dump(build_dir, what):
    exe = build_dir / "tests" / "rsp" / "rsp_tdesc_dump"
    res = subprocess.run([str(exe), what], capture_output=True, text=True,
                         timeout=30, check=True)
    return res.stdout


def _table(build_dir):
    rows = {}
    size = None
    for line in _dump(build_dir, "table").splitlines():
        f = line.split()
        if f[0] == "g_size":
            size = int(f[1])
            continue
        rows[f[0]] = (int(f[1]), int(f[2]), int(f[3]))
    return rows, size


def _gdb(xml_path, *cmds):
    args = [GDB, "-nx", "-batch", "-ex", "set architecture i386:x86-64",
            "-ex", f"set tdesc filename {xml_path}"]
    for c in cmds:
        args += ["-ex", c]
    res = subprocess.run(args, capture_output=True, text=True, timeout=120)
    return res


def test_gdb_accepts_target_xml(build_dir, tmp_path):
    xml = tmp_path / "target.xml"
    xml.write_text(_dump(build_dir, "xml"))
    res = _gdb(xml, "maint print remote-registers")
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    # gdb reports problems with a description as warnings and falls back.
    assert "warning" not in out.lower(), out
    assert "error" not in out.lower(), out

    rows, g_size = _table(build_dir)
    seen = {}
    for line in res.stdout.splitlines():
        f = line.split()
        # Name Nr Rel Offset Size Type Rmt-Nr g/G-Offset: remote rows
        # have all eight columns.
        if len(f) == 8 and f[6].isdigit() and f[0] in rows:
            seen[f[0]] = (int(f[6]), int(f[7]), int(f[4]))
    assert set(seen) == set(rows), (set(rows) ^ set(seen), out)
    for name, (regno, goff, size) in rows.items():
        assert seen[name] == (regno, goff, size), (name, seen[name])
    # Nothing else is in the g packet: every remote register is ours.
    remote = [l.split() for l in res.stdout.splitlines()]
    remote = [f for f in remote if len(f) == 8 and f[6].isdigit()]
    assert len(remote) == len(rows)
    assert max(goff + size for _, goff, size in seen.values()) == g_size


def test_gdb_types_from_description(build_dir, tmp_path):
    xml = tmp_path / "target.xml"
    xml.write_text(_dump(build_dir, "xml"))
    res = _gdb(xml, "ptype $eflags", "ptype $cr0", "ptype $cr4",
               "ptype $efer", "ptype $xmm0", "ptype $mxcsr",
               "maint print reggroups")
    out = res.stdout
    assert res.returncode == 0, res.stderr
    assert "flag i386_eflags" in out and "bool ZF @6;" in out, out
    assert "flag vmistub_cr0" in out and "bool PG @31;" in out, out
    assert "bool LA57 @12;" in out and "bool SMAP @21;" in out, out
    assert "bool LMA @10;" in out and "bool NXE @11;" in out, out
    assert "union vec128" in out and "v4_float" in out, out
    assert "bool FZ @15;" in out, out
    assert " system " in out, out
