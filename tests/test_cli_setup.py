"""scripts/setup.sh changes nothing outside the project unless asked (--system-deps or
EMOTRACE_SYSTEM_DEPS=1); scripts/test.sh asks. Run against stub ``apt-get``, ``id`` and
``.venv/bin/python`` commands, so nothing is installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
BASH = shutil.which("bash")
pytestmark = pytest.mark.skipif(BASH is None, reason="bash is not installed")


def _stub(path: Path, body: str) -> None:
    path.write_text(f"#!{BASH}\n{body}\n")
    path.chmod(0o755)


@pytest.fixture
def project(tmp_path) -> tuple[Path, Path, dict]:
    """A copy of scripts/ beside a stub .venv; PATH holds only stubs: every tool is missing,
    this shell is root, and apt-get records its calls."""
    root = tmp_path / "project"
    shutil.copytree(SCRIPTS, root / "scripts")
    (root / ".venv" / "bin").mkdir(parents=True)
    log = tmp_path / "calls.log"
    _stub(root / ".venv" / "bin" / "python", f'echo "python $*" >> {log}')
    _stub(root / ".venv" / "bin" / "ruff", f'echo "ruff $*" >> {log}')
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    _stub(bin_ / "apt-get", f'echo "apt-get $*" >> {log}')
    _stub(bin_ / "id", "echo 0")
    _stub(bin_ / "dirname", 'p="$1"; echo "${p%/*}"')
    (bin_ / "bash").symlink_to(BASH)  # the scripts' #!/usr/bin/env bash
    env = {"PATH": str(bin_), "HOME": str(tmp_path)}
    return root, log, env


def _run(project, script: str, *args: str, **env: str) -> tuple[subprocess.CompletedProcess, str]:
    root, log, base = project
    p = subprocess.run([BASH, str(root / "scripts" / script), *args], capture_output=True,
                       text=True, env={**base, **env}, timeout=60)
    return p, log.read_text() if log.exists() else ""


def test_setup_does_not_touch_the_system_by_default(project):
    p, calls = _run(project, "setup.sh")
    assert p.returncode == 0, p.stderr
    assert "apt-get" not in calls
    assert "pip install" in calls  # the project's own .venv is set up
    # and it says what is missing and how to get it
    assert "espeak-ng sox ffmpeg chromium not installed" in p.stderr
    assert "--system-deps" in p.stderr


@pytest.mark.parametrize("how", ["flag", "env"])
def test_setup_installs_system_packages_when_asked(project, how):
    args, env = (["--system-deps"], {}) if how == "flag" else ([], {"EMOTRACE_SYSTEM_DEPS": "1"})
    p, calls = _run(project, "setup.sh", *args, **env)
    assert p.returncode == 0, p.stderr
    assert "apt-get install -y -qq espeak-ng sox ffmpeg chromium" in calls
    assert "with apt-get (as root)" in p.stderr  # said before it is done


def test_setup_refuses_unknown_options(project):
    p, calls = _run(project, "setup.sh", "--system")
    assert p.returncode == 2 and "unknown option --system" in p.stderr
    assert calls == ""


def test_test_script_installs_what_the_tests_need(project):
    p, calls = _run(project, "test.sh")
    assert p.returncode == 0, p.stderr
    assert "apt-get install" in calls and "ruff check" in calls and "-m pytest" in calls
