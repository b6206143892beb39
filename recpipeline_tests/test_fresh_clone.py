"""A fresh clone proves itself: the repository alone (no ``../shared`` beside it, no ``$RECPIPELINE_DATA``)
passes the fast tier of the modules with tests on public datasets, those tests skipped naming the command
that fetches their dataset."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from recpipeline_tests.conftest import REPO_ROOT

pytestmark = pytest.mark.integration

#: the fast tier of every module with a test on a public dataset (test_config: the two that read data/)
DATA_TESTS = (
    "recpipeline_tests/sources",
    "recpipeline_tests/test_datasets.py",
    "recpipeline_tests/test_config.py::test_good_model_parameters_pass",
    "recpipeline_tests/test_config.py::test_shipped_configurations_load_with_the_public_datasets",
)


def _repository_files() -> list[str]:
    """Tracked files and new ones git does not ignore: what a clone of the next commit holds."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [name for name in listed.split("\0") if name and (REPO_ROOT / name).is_file()]


def test_a_fresh_clone_passes_with_the_dataset_tests_skipped(tmp_path: Path):
    if shutil.which("git") is None or not (REPO_ROOT / ".git").exists():
        pytest.skip("not a git checkout: nothing to clone")
    clone = tmp_path / "clone"
    for name in _repository_files():
        (clone / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, clone / name)
    assert not (tmp_path / "shared").exists()
    hidden = ("RECPIPELINE_DATA", "RECPIPELINE_CONFIG", "PYTHONPATH")
    env = {key: value for key, value in os.environ.items() if key not in hidden}

    def run(*arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, *arguments], cwd=clone, env=env, capture_output=True, text=True, timeout=300
        )

    # the clone's code runs, not this checkout's (installed editable into the same interpreter)
    imported = run("-c", "import recpipeline; print(recpipeline.__file__)").stdout.strip()
    assert Path(imported).is_relative_to(clone)

    result = run("-m", "pytest", "-m", "not integration", "-q", "-rs", "-p", "no:cacheprovider", *DATA_TESTS)
    assert result.returncode == 0, f"{result.stdout[-4000:]}\n{result.stderr[-2000:]}"
    reasons = re.findall(r"^SKIPPED \[\d+\] \S+ (.*)$", result.stdout, flags=re.MULTILINE)
    for name in ("movielens-100k", "uci-online-retail"):
        assert any(f"`recpipeline datasets fetch {name}`" in reason for reason in reasons), reasons
    location = str(clone / "data" / "datasets")
    # nothing else skipped: each skip is a missing dataset at the clone's default location (or the optional
    # spreadsheet reader)
    assert all(location in reason or "recpipeline[datasets]" in reason for reason in reasons), reasons
