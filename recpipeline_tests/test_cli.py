"""The command line's failure path: one clear line on stderr and a non-zero exit, never a hang."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from recpipeline.cli import _clear_error, main, ui_command
from recpipeline.config import ConfigError
from recpipeline_tests.conftest import tiny_raw_config


def _cycle(*errors: BaseException) -> BaseException:
    """Chain ``errors`` by ``__context__`` and close the chain into a cycle (as re-raised errors can)."""
    for error, context in zip(errors, (*errors[1:], errors[0]), strict=True):
        error.__context__ = context
    return errors[0]


def test_clear_error_stops_on_a_cyclic_exception_chain():
    assert _clear_error(_cycle(ValueError("a"), RuntimeError("b"))) is None
    clear = ConfigError("settings.yaml: k: expected a positive integer")
    assert _clear_error(_cycle(ValueError("a"), clear, RuntimeError("b"))) is clear


def _run_cli(tmp_path: Path, monkeypatch, **overrides) -> int:
    """``recpipeline run`` on the tiny shop with ``overrides``; a hang fails the test rather than block it."""
    config = tmp_path / "settings.yaml"
    config.write_text(yaml.safe_dump(tiny_raw_config(str(tmp_path / "warehouse"), **overrides)))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))

    def hung(signum, frame):
        raise TimeoutError("recpipeline run did not return")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(300)
    try:
        return main(["run", "--config", str(config), "--no-progress"])
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _one_error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.integration
def test_a_failing_step_ends_the_run_with_one_line_naming_the_step(tmp_path: Path, monkeypatch, capsys):
    # ten days cannot hold 5 validation + 8 test days: the split step raises
    code = _run_cli(tmp_path, monkeypatch, split={"validation_days": 5, "test_days": 8})
    assert code == 2
    line = _one_error_line(capsys)
    assert line.startswith("recpipeline: train_and_evaluate (run ")
    assert "failed in step split: " in line and "no training data" in line


@pytest.mark.integration
def test_a_failed_quarantine_gate_names_the_days_and_the_setting(tmp_path: Path, monkeypatch, capsys):
    source = tiny_raw_config("")["source"]
    source["synthetic"] = {**source["synthetic"], "dirty_share": 0.4}
    code = _run_cli(tmp_path, monkeypatch, source=source)
    assert code == 2
    line = _one_error_line(capsys)
    assert "quarantine_share_below_ceiling" in line and "over the quarantine ceiling of 10.0%" in line
    assert "failed in step clean: DagsterAssetCheckFailedError: " in line
    assert re.search(r"2026-10-\d\d: \d+\.\d% quarantined \(\d+ of \d+ rows; missing_user_id \d+", line)
    assert "cleaning.max_quarantine_share" in line


def test_ui_runs_dagster_with_this_interpreter_not_from_path():
    command = ui_command("127.0.0.1", "3000")
    assert command[:4] == [sys.executable, "-m", "dagster", "dev"]
    assert command[-4:] == ["-h", "127.0.0.1", "-p", "3000"]


@pytest.mark.integration
def test_the_virtualenvs_recpipeline_ui_serves_without_the_virtualenv_on_path(tmp_path: Path):
    """``.venv/bin/recpipeline ui`` with the virtualenv's bin/ off PATH (as when it is not activated) serves
    the UI; stopped as soon as it answers."""
    bin_dir = Path(sys.executable).parent
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p != str(bin_dir))
    env = {**os.environ, "PATH": path, "DAGSTER_HOME": str(tmp_path / "home")}
    env.pop("VIRTUAL_ENV", None)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = (tmp_path / "ui.log").open("w")
    ui = subprocess.Popen(
        [str(bin_dir / "recpipeline"), "ui", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the webserver, daemon and code server stop with it
    )
    try:
        deadline = time.monotonic() + 120
        answer = None
        while answer is None and ui.poll() is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5) as response:
                    answer = json.loads(response.read())
            except OSError:
                time.sleep(1)
        assert answer is not None, (tmp_path / "ui.log").read_text()[-2000:]
        assert "dagster_webserver_version" in answer
    finally:
        os.killpg(ui.pid, signal.SIGKILL)
        ui.wait(timeout=30)
        log.close()
