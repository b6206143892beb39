"""The command line's failure path: one clear line on stderr and a non-zero exit, never a hang."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import yaml

from recpipeline.cli import _clear_error, main
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


@pytest.mark.integration
def test_a_failing_step_ends_the_run_with_one_line_naming_the_step(tmp_path: Path, monkeypatch, capsys):
    config = tmp_path / "settings.yaml"
    raw = tiny_raw_config(str(tmp_path / "warehouse"), models=[{"als": {"factorz": 8}}])
    config.write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))

    def hung(signum, frame):
        raise TimeoutError("recpipeline run did not return")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(300)
    try:
        code = main(["run", "--config", str(config), "--no-progress"])
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)

    assert code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("recpipeline: train_and_evaluate (run ")
    assert "failed in step als_model: " in lines[0] and "factorz" in lines[0]
