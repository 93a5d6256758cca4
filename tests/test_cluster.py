"""Ray clusters (emotrace.workflows.cluster): ``run_remote`` and ``tune --address`` against a real
local cluster, started as a user would: ``ray start --head`` plus one more worker node, with
token authentication on (a token of the test's own, not ~/.ray/auth_token).

The cluster starts once per session in its own short temp dir and its own ports. It is stopped by
killing the processes it started (the process groups of the two ``ray start`` calls and their
descendants), never with ``ray stop``, which stops every Ray process on the machine, other
users' clusters too. The client side runs in this process with ``RAY_AUTH_MODE`` unset, as a
user's shell would have it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from cluster_jobs import fail, probe
from helpers import run_cli

import emotrace
from emotrace.errors import EmotraceError
from emotrace.workflows.cluster import RemoteJobError, run_remote

RAY_CLI = Path(sys.executable).with_name("ray")
TESTS = Path(__file__).resolve().parent
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None or not RAY_CLI.exists(),
    reason='needs Ray and its `ray` command: pip install "emotrace[tune]"')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stat(pid: str) -> tuple[int, int] | None:
    """``(parent pid, process group)`` of a running process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), int(fields[2])


def cluster_processes(groups: set[int], temp_dir: Path) -> set[int]:
    """The processes of the test cluster: those in the ``ray start`` process groups, their
    descendants (Ray's workers have groups of their own) and any naming the cluster's temp dir."""
    table = {int(p): s for p in os.listdir("/proc") if p.isdigit() and (s := _stat(p))}
    found = {pid for pid, (_, pgid) in table.items() if pgid in groups}
    for pid in table:
        try:
            if str(temp_dir) in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="ignore"):
                found.add(pid)
        except OSError:
            pass
    grew = True
    while grew:
        more = {pid for pid, (ppid, _) in table.items() if ppid in found} - found
        found |= more
        grew = bool(more)
    found.discard(os.getpid())
    return found


@dataclass
class Cluster:
    address: str
    token: str
    temp_dir: Path


@pytest.fixture(scope="session")
def ray_cluster():
    """A head and one worker node, 1 CPU each, on this machine (--node-ip-address 127.0.0.1)."""
    temp_dir = Path(tempfile.mkdtemp(prefix="et-ray-", dir="/tmp"))  # short: Ray's socket paths
    token = secrets.token_hex(32)
    src = Path(emotrace.__file__).resolve().parents[1]  # this checkout's emotrace, on every node
    env = {k: v for k, v in os.environ.items()
           if k not in ("RAY_ADDRESS", "RAY_AUTH_TOKEN_PATH", "RAY_gcs_server_port_wait_time_s")}
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token, RAY_USAGE_STATS_ENABLED="0",
               OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(src), str(TESTS)]))
    port, groups = free_port(), set()

    def start(*args: str) -> None:
        cmd = [str(RAY_CLI), "start", *args, "--node-ip-address", "127.0.0.1", "--num-cpus", "1",
               "--temp-dir", str(temp_dir), "--disable-usage-stats",
               "--dashboard-agent-listen-port", str(free_port()),
               "--dashboard-agent-grpc-port", str(free_port()),
               "--metrics-export-port", str(free_port()),
               "--runtime-env-agent-port", str(free_port())]
        proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        groups.add(proc.pid)  # a new session: its process group id is its pid
        out, _ = proc.communicate(timeout=120)
        if proc.returncode:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{out[-3000:]}")

    try:
        start("--head", "--port", str(port), "--include-dashboard", "false",
              "--dashboard-port", str(free_port()), "--ray-client-server-port", str(free_port()))
        start("--address", f"127.0.0.1:{port}")
        yield Cluster(f"127.0.0.1:{port}", token, temp_dir)
    finally:
        left = cluster_processes(groups, temp_dir)
        for sig in (signal.SIGKILL,):  # as `ray stop --force`, for these processes only
            for pid in left:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            for _ in range(40):
                left = cluster_processes(groups, temp_dir)
                if not left:
                    break
                time.sleep(0.25)
        shutil.rmtree(temp_dir, ignore_errors=True)
        assert not left, f"test cluster processes left: {sorted(left)}"


@pytest.fixture
def client(monkeypatch, ray_cluster):
    """This process as a user's shell: the cluster's token in RAY_AUTH_TOKEN, RAY_AUTH_MODE unset
    (connect() may set it; restored afterwards)."""
    for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH", "RAY_ADDRESS",
                 "RAY_gcs_server_port_wait_time_s"):
        monkeypatch.setenv(name, "")  # recorded, so whatever is set later is undone
        monkeypatch.delenv(name)
    monkeypatch.setenv("RAY_AUTH_TOKEN", ray_cluster.token)
    yield ray_cluster
    import ray

    ray.shutdown()


def space_file(tmp_path: Path) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text("base:\n  model: {layers: 1}\n  train: {epochs: 2, seeds: 1}\n"
                    "space:\n  model.hidden: {grid: [4, 8]}\n")
    return path


def tune_cli(capsys, corpus: Path, tmp_path: Path, address: str) -> tuple[int, str, str]:
    return run_cli(capsys, "tune", "--data", corpus, "--features", "audio", "--target",
                   "arousal", "--space", space_file(tmp_path), "--search", "grid", "--no-asha",
                   "--address", address, "--out", tmp_path / "search", "--quiet")


def test_run_remote_returns_results_in_order_from_both_nodes(client):
    import ray

    results = run_remote(probe, [(i, 1.0) for i in range(4)], address=client.address)
    assert [r[0] for r in results] == [0, 1, 2, 3]
    assert len({node for _, node, _ in results}) == 2  # 1 CPU per node: both nodes ran jobs
    assert os.getpid() not in {pid for _, _, pid in results}  # on the cluster's workers
    assert not ray.is_initialized()  # disconnected again
    assert os.environ["RAY_AUTH_MODE"] == "token"  # Ray's rule for a token found here


def test_the_token_from_the_default_file(client, monkeypatch, tmp_path):
    """The user's case: nothing set in the environment, the token in ~/.ray/auth_token."""
    monkeypatch.delenv("RAY_AUTH_TOKEN")
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text(client.token)
    assert run_remote(probe, [(7, 0.0)], address=client.address)[0][0] == 7


def test_run_remote_names_the_failed_job(client):
    with pytest.raises(EmotraceError) as e:
        run_remote(fail, [(0, "ok"), (1, "user")], address=client.address)
    assert "job 2 of 2" in str(e.value) and "step 1: its input is missing" in str(e.value)
    assert "cluster_jobs.fail(1, 'user')" in str(e.value)
    with pytest.raises(RemoteJobError) as e:
        run_remote(fail, [(0, "bug")], address=client.address)
    assert "job 1 of 1" in str(e.value) and "ValueError: step 0: a bug" in str(e.value)
    assert isinstance(e.value.cause, ValueError) and e.value.index == 0


def test_tune_address_end_to_end(client, capsys, corpus, tmp_path):
    code, out, err = tune_cli(capsys, corpus, tmp_path, client.address)
    assert code == 0, err
    res = json.loads((tmp_path / "search" / "results.json").read_text())
    assert res["n_trials"] == 2 and res["n_finished"] == 2, res
    assert sorted(r["params"]["model.hidden"] for r in res["trials"]) == [4, 8]
    for r in res["trials"]:
        assert (Path(r["run"]) / "metrics.json").exists()


@pytest.mark.parametrize("case", ["wrong", "missing"])
def test_refused_token_is_exit_2_naming_the_variable(client, capsys, corpus, tmp_path,
                                                     monkeypatch, case):
    if case == "wrong":
        monkeypatch.setenv("RAY_AUTH_TOKEN", "0" * 64)
    else:  # no token anywhere: not in the environment, no ~/.ray/auth_token
        monkeypatch.delenv("RAY_AUTH_TOKEN")
        monkeypatch.setenv("HOME", str(tmp_path))
    start = time.perf_counter()
    code, _, err = tune_cli(capsys, corpus, tmp_path, client.address)
    err = " ".join(err.split())
    assert code == 2, err
    assert f"--address {client.address}: the Ray cluster did not accept this client" in err
    assert ("refused the token read from RAY_AUTH_TOKEN" if case == "wrong"
            else "no token was found here") in err
    assert "Set RAY_AUTH_TOKEN to the cluster's token" in err and "RAY_AUTH_TOKEN_PATH" in err
    assert "Traceback" not in err
    assert time.perf_counter() - start < 10  # at once, not after Ray's 20 s of retries


def test_nothing_listening_is_cannot_connect(capsys, corpus, tmp_path):
    address = f"127.0.0.1:{free_port()}"
    start = time.perf_counter()
    code, _, err = tune_cli(capsys, corpus, tmp_path, address)
    assert code == 2, err
    assert f"--address {address}: cannot connect to a Ray cluster" in " ".join(err.split())
    assert time.perf_counter() - start < 15  # at once, not after Ray's retries


def test_unreadable_token_file_is_exit_2(capsys, corpus, tmp_path, monkeypatch):
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "no-such-token"))
    with socket.socket() as s:  # something listening, so the token is checked
        s.bind(("127.0.0.1", 0))
        s.listen()
        address = f"127.0.0.1:{s.getsockname()[1]}"
        code, _, err = tune_cli(capsys, corpus, tmp_path, address)
    assert code == 2, err
    assert f"RAY_AUTH_TOKEN_PATH={tmp_path / 'no-such-token'}: no token there" in \
        " ".join(err.split())


def test_run_recipe_address_end_to_end(client, capsys, corpus, tmp_path):
    """`emotrace run --address`: the steps run as Ray tasks on the cluster, into the shared
    --out, and give the table of a local run."""
    args = ["run", "muse2021-stress-top3", "--data", corpus, "--features", "audio", "video",
            "--target", "arousal", "--quiet", "--set", "model.hidden=8", "model.layers=1",
            "model.heads=2", "model.head_hidden=4", "train.epochs=1", "train.seeds=2",
            "data.win=20", "data.hop=10"]
    code, remote, err = run_cli(capsys, *args, "--out", tmp_path / "remote", "--address",
                                client.address)
    assert code == 0, err
    code, local, err = run_cli(capsys, *args, "--out", tmp_path / "local", "--jobs", "1")
    assert code == 0, err
    assert remote == local
    res = json.loads((tmp_path / "remote" / "results.json").read_text())
    assert sorted(res["ran"]) == ["late", "unimodal-audio", "unimodal-video"]
