"""The wheel carries every file the code loads: build it, install it into a fresh virtualenv and run it there.

No network: the wheel is built without build isolation, installed without dependencies, and the new
virtualenv sees this environment's packages through a ``.pth`` file, but not the source tree.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from recpipeline_tests.conftest import REPO_ROOT

pytestmark = pytest.mark.integration


def _run(*command: str | Path, cwd: Path) -> str:
    # no PYTHONPATH: the source tree must not leak into the installed package's imports
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run(
        [str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _build_wheel(tmp_path: Path) -> Path:
    # from a copy, so that the build leaves no build/ or *.egg-info in the working tree
    source = tmp_path / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    shutil.copytree(REPO_ROOT / "recpipeline", source / "recpipeline", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO_ROOT / name, source / name)
    wheels = tmp_path / "wheels"
    _run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
        "--wheel-dir", wheels, source, cwd=tmp_path,
    )  # fmt: skip
    (wheel,) = wheels.glob("recpipeline-*.whl")
    return wheel


def _fresh_venv(folder: Path) -> tuple[Path, Path]:
    """A virtualenv seeing this environment's site-packages after its own: its python and scripts folder."""
    venv.EnvBuilder(with_pip=False).create(folder)
    scripts = folder / ("Scripts" if os.name == "nt" else "bin")
    python = scripts / "python"
    site_packages = Path(
        _run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=folder).strip()
    )
    (site_packages / "borrowed_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return python, scripts


def test_the_wheel_installs_and_loads_the_default_configuration(tmp_path: Path):
    wheel = _build_wheel(tmp_path)
    python, scripts = _fresh_venv(tmp_path / "venv")
    _run(
        sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", wheel,
        cwd=tmp_path,
    )  # fmt: skip

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = (
        "import recpipeline, recpipeline.config as c\n"
        "print(recpipeline.__file__)\n"
        "print(c.load_config() == c.parse_config({}, source_name=str(c.DEFAULT_CONFIG_PATH)))\n"
    )
    module_file, equal = _run(python, "-c", script, cwd=elsewhere).split()
    assert Path(module_file).is_relative_to(tmp_path / "venv")
    assert equal == "True"

    usage = _run(scripts / "recpipeline", "--help", cwd=elsewhere)
    assert "usage: recpipeline" in usage and "run" in usage
