"""Run the vmi C unit tests (cmocka) from the normal build and require that
every test in each binary ran and passed."""
import re
import subprocess

import pytest

UNIT = {
    "test_vmi_paging": 16,
    "test_vmi_insn": 7,
    "test_vmi_session": 39,
}


@pytest.mark.parametrize("name", sorted(UNIT))
def test_unit_binary(build_dir, name):
    exe = build_dir / "tests" / "vmi" / name
    assert exe.exists(), f"{exe} not built"
    p = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out
    m = re.search(r"\[  PASSED  \] (\d+) test\(s\)", out)
    assert m, out
    # A test that silently stopped being registered is a lost test.
    assert int(m.group(1)) == UNIT[name], out
    assert "FAILED" not in out, out
