"""lab-agent, the lab's command channel, exercised on this machine (bound to
loopback): exit statuses, output streams, timeouts that kill the whole
process group, a host that hangs up, file transfer, and bad requests."""
import os
import pathlib
import socket
import subprocess
import time

import pytest

import lab as lablib


@pytest.fixture(scope="module")
def agent(build_dir):
    binary = build_dir / "tests" / "lab" / "lab-agent"
    assert binary.exists(), f"{binary} is not built"
    port = lablib._free_port()
    proc = subprocess.Popen([str(binary), str(port), "127.0.0.1"], stderr=subprocess.PIPE)
    # The agent says when it listens; wait for that line, not for a time.
    assert b"listening" in proc.stderr.readline()
    yield lablib.Agent(port)
    proc.kill()
    proc.wait()


def test_exit_status_and_streams(agent):
    r = agent.run("echo out; echo err >&2; exit 3")
    assert (r.how, r.code, r.stdout, r.stderr) == ("exit", 3, "out\n", "err\n")
    assert agent.run("true").ok


def test_signal_is_reported(agent):
    r = agent.run("kill -TERM $$")
    assert (r.how, r.code) == ("signal", 15)


def test_large_output_arrives_whole(agent):
    r = agent.run("head -c 3000000 /dev/zero | tr '\\0' x")
    assert r.stdout == "x" * 3000000


def test_timeout_kills_the_process_group(agent, tmp_path):
    marker = tmp_path / "survived"
    t = time.monotonic()
    r = agent.run(f"(sleep 3; touch {marker}) & sleep 30", timeout=1)
    assert r.how == "timeout"
    assert time.monotonic() - t < 20
    time.sleep(4)  # long enough for the background child to have run, had it survived
    assert not marker.exists()


def test_background_process_with_redirected_output_does_not_block(agent, tmp_path):
    pidfile = tmp_path / "pid"
    t = time.monotonic()
    r = agent.run(f"setsid sleep 30 >/dev/null 2>&1 </dev/null & echo $! > {pidfile}")
    assert r.ok and time.monotonic() - t < 10
    os.kill(int(pidfile.read_text()), 9)


def test_host_hang_up_kills_the_command(agent, tmp_path):
    pidfile = tmp_path / "pid"
    body = f"echo $$ > {pidfile}; sleep 60".encode()
    with socket.create_connection(agent.addr) as s:
        s.sendall(f"RUN 0 {len(body)}\n".encode() + body)
        for _ in range(100):
            if pidfile.exists() and pidfile.read_text().strip():
                break
            time.sleep(0.05)
    pid = int(pidfile.read_text())
    for _ in range(100):
        if not pathlib.Path(f"/proc/{pid}").exists():
            break
        time.sleep(0.05)
    assert not pathlib.Path(f"/proc/{pid}").exists()


def test_put_and_get_round_trip(agent, tmp_path):
    data = bytes(range(256)) * 1000
    target = tmp_path / "blob"
    agent.put(data, str(target), 0o750)
    assert target.read_bytes() == data
    assert (target.stat().st_mode & 0o777) == 0o750
    assert agent.get(str(target)) == data


def test_errors_are_reported_not_fatal(agent, tmp_path):
    with pytest.raises(lablib.LabError, match="No such file"):
        agent.get(str(tmp_path / "missing"))
    with pytest.raises(lablib.LabError, match="No such file"):
        agent.put(b"x", str(tmp_path / "no" / "dir" / "f"))
    code, how, frames = agent._request("HELLO there")
    assert (code, how) == (1, "error") and b"unknown request" in frames["e"]
    # The agent still serves after all of that.
    assert agent.run("echo alive").stdout == "alive\n"
