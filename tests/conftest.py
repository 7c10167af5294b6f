"""Shared pytest configuration.

Build outputs are found through environment variables that tests/run sets:
  VMISTUB_BUILD       the normal build (gcc, -Werror)       default: build/
  VMISTUB_FUZZ_BUILD  clang + ASan/UBSan + libFuzzer build  default: build-fuzz/
A test that needs a build output that is missing fails; it never skips.
"""
import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _dir(var, default):
    return pathlib.Path(os.environ.get(var, ROOT / default)).resolve()


@pytest.fixture(scope="session")
def build_dir():
    d = _dir("VMISTUB_BUILD", "build")
    assert (d / "build.ninja").exists(), f"no meson build at {d}: run tests/run (or meson setup {d})"
    return d


@pytest.fixture(scope="session")
def fuzz_build_dir():
    d = _dir("VMISTUB_FUZZ_BUILD", "build-fuzz")
    assert (d / "build.ninja").exists(), f"no fuzz build at {d}: run tests/run"
    return d


# --- the nested Xen lab ------------------------------------------------------
# One boot of the lab serves the whole pytest session, with both test guests
# running. If the lab cannot start, every test that needs it fails with the
# reason and the console's last lines: it never skips.
import sys  # noqa: E402

sys.path.insert(0, str(ROOT / "tests" / "lab"))
import lab as lablib  # noqa: E402

FIGURES = {}


def record_figure(name, value):
    """A measured figure, printed at the end of the run (never asserted)."""
    FIGURES[name] = value


_lab_state = {}


# Development runs only (tests/run sets neither): VMISTUB_LAB_ATTACH=RUN_DIR
# uses a lab that `lab.py demo` already runs; VMISTUB_LAB_GUESTS=tiny boots
# only the guests named (a comma list).
_LAB_ATTACH = os.environ.get("VMISTUB_LAB_ATTACH")
LAB_GUESTS = tuple(os.environ.get("VMISTUB_LAB_GUESTS", "tiny,linux").split(","))


@pytest.fixture(scope="session")
def lab(build_dir):
    if _LAB_ATTACH:
        _lab_state["lab"] = lablib.Lab.attached(build_dir, _LAB_ATTACH)
        yield _lab_state["lab"]
        _lab_state.pop("lab", None)
        return
    if "error" in _lab_state:
        pytest.fail(f"the lab could not start (see the first lab test): {_lab_state['error']}")
    booted = lablib.Lab(build_dir)
    try:
        booted.start()
        for guest in LAB_GUESTS:
            booted.create_guest(guest)
    except Exception as e:
        _lab_state["error"] = str(e).splitlines()[0]
        booted.collect_logs(build_dir / "lab-logs" / "startup")
        booted.close()
        pytest.fail(f"the lab could not start: {e}\n(logs in {build_dir / 'lab-logs' / 'startup'})")
    FIGURES.update({f"lab.{k}": v for k, v in booted.figures.items()})
    _lab_state["lab"] = booted
    try:
        yield booted
    finally:
        # Every guest crash of the session, expected or not, is reported.
        _lab_state.pop("lab", None)
        dumps = booted.crash_dumps()
        if booted.incidents or dumps:
            FIGURES["lab.incidents"] = booted.incidents + [f"Xen: {d}" for d in dumps]
        booted.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed and "lab" in item.fixturenames:
        lab = item.funcargs.get("lab")
        if lab is not None:
            dest = lab.build_dir / "lab-logs" / item.name
            lab.collect_logs(dest)
            report.sections.append(("lab logs", f"console logs collected in {dest}"))
            # CI keeps only what is printed: the ends of the logs that
            # explain most lab failures go into the report itself.
            report.sections.append(("lab log tails", _log_tails(lab)))


def _log_tails(lab):
    """vmistub's log (tests/stub), dom0's kernel log, Xen's log, xl list:
    last lines."""
    parts = []
    for title, cmd in (("vmistub log", "tail -n 30 /tmp/vmistub.log"),
                       ("dom0 dmesg", "dmesg | tail -n 12"),
                       ("xl dmesg", "xl dmesg | tail -n 12"), ("xl list", "xl list")):
        try:
            r = lab.run(cmd, timeout=20)
            parts.append(f"--- {title}\n{r.stdout.rstrip() if r.ok else '(none)'}")
        except Exception as e:                  # a dead lab: say so, keep the report
            parts.append(f"--- {title}\n(unavailable: {e})")
    return "\n".join(parts)


# Why each known failure failed this time (pytest prints only the reason
# written in tests/known-failures.txt): the last lines of its error.
XFAILED = {}


def pytest_runtest_logreport(report):
    if getattr(report, "wasxfail", None) is not None and report.failed is False \
            and report.skipped and report.longrepr is not None:
        XFAILED[report.nodeid] = str(report.longrepr).strip().splitlines()[-12:]


def pytest_terminal_summary(terminalreporter):
    if XFAILED:
        terminalreporter.section("known failures: how they failed this time")
        for node, lines in XFAILED.items():
            terminalreporter.write_line(node)
            for line in lines:
                terminalreporter.write_line(f"  {line}")
    if FIGURES:
        terminalreporter.section("figures (measured, not asserted)")
        for k in sorted(FIGURES):
            if isinstance(FIGURES[k], list):
                terminalreporter.write_line(f"{k}:")
                for item in FIGURES[k]:
                    terminalreporter.write_line(f"  {item}")
            else:
                terminalreporter.write_line(f"{k}: {FIGURES[k]}")


@pytest.fixture(scope="session")
def figures():
    return record_figure


@pytest.fixture(scope="session")
def tiny_elf(build_dir):
    path = build_dir / "tests" / "guests" / "tiny" / "tiny"
    assert path.exists(), f"{path} is not built"
    return path


@pytest.fixture(scope="session")
def tiny_symbols(tiny_elf):
    return lablib.elf_symbols(tiny_elf)


@pytest.fixture(scope="session")
def linux_system_map():
    env = lablib.load_env()
    return lablib.system_map(env["VMISTUB_LAB_SYSTEM_MAP"])


# --- known failures ----------------------------------------------------------
# tests/known-failures.txt names tests that fail today for a reason written
# beside them (a missing feature or an open bug, each in the note).
# They still run; pytest reports them as "xfailed" (or "XPASS" when they
# happen to pass), never as passed, and every other test must pass.
def _known_failures():
    path = ROOT / "tests" / "known-failures.txt"
    known = {}
    if path.exists():
        for line in path.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                node, _, reason = line.partition(" ")
                known[node] = reason.strip() or "known failure"
    return known


def pytest_collection_modifyitems(config, items):
    known = _known_failures()
    for item in items:
        rel = f"{pathlib.Path(item.path).relative_to(ROOT)}::{item.name}"
        if rel in known:
            item.add_marker(pytest.mark.xfail(reason=known[rel], strict=False))


# --- the lab's instability ----------------------------------------------------
# The nested emulation sometimes triple-faults a guest vCPU (tests/lab/README.md,
# "Known instability"). A test during which Xen reported such a crash, or a
# guest died, and that failed, is run again (at most twice) on freshly booted
# guests; every such incident is printed with the figures. A test that fails
# without a crash is never run again. Guests found dead before a test are booted again, so one
# crash does not fail every later test.
@pytest.fixture(autouse=True)
def _lab_guests_alive(request):
    lab = _lab_state.get("lab")
    if lab is not None and "lab" in request.fixturenames:
        lab.revive_dead_guests(LAB_GUESTS, f"before {request.node.name}")
    yield


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    lab = _lab_state.get("lab")
    if lab is None or "lab" not in item.fixturenames:
        return None
    from _pytest.runner import runtestprotocol
    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    for attempt in range(1, 4):
        dumps_before = len(lab.crash_dumps())
        reports = runtestprotocol(item, nextitem=nextitem, log=False)
        if not any(r.failed for r in reports):
            break
        new_dumps = lab.crash_dumps()[dumps_before:]
        dead = [g for g in LAB_GUESTS if lab.is_dead(g)]
        if not (new_dumps or dead) or attempt == 3:
            break
        # Up to twice: a CI run saw 14 guest crashes in 18 minutes, and a
        # test that stresses a guest for minutes met one on its rerun too.
        lab.incidents.append(f"{item.nodeid} failed while the lab crashed "
                             f"({len(new_dumps)} Xen dumps, dead: {dead or 'none'}); "
                             f"run again (attempt {attempt + 1})")
        lab.revive_dead_guests(LAB_GUESTS, f"after {item.name}")
    for report in reports:
        item.ihook.pytest_runtest_logreport(report=report)
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True
