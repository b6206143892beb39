"""The Dagster instance home: ``$DAGSTER_HOME``, else ``data/dagster_home`` with SQLite storage.

Created on first use with a ``dagster.yaml`` that limits concurrency: at most one training run at a time
(run tag ``recpipeline/training``) and one model fit at a time across runs (pool ``training``).
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_DAGSTER_HOME = Path("data") / "dagster_home"
TRAINING_TAG = "recpipeline/training"
TRAINING_POOL = "training"

DAGSTER_YAML = f"""\
# Created by recpipeline on first use. Storage: SQLite files in this folder (Dagster's default).
# For a team deployment, replace the storage with Postgres (docs/operations.md in the recpipeline repository).
telemetry:
  enabled: false
concurrency:
  runs:
    max_concurrent_runs: 4
    tag_concurrency_limits:
      - key: {TRAINING_TAG}
        limit: 1          # two training runs never overlap
  pools:
    default_limit: 1      # pool '{TRAINING_POOL}': one model fit at a time across all runs
"""


def ensure_dagster_home(home: str | os.PathLike[str] | None = None) -> Path:
    """Make sure the instance folder and its dagster.yaml exist; set and return ``$DAGSTER_HOME``."""
    path = Path(home or os.environ.get("DAGSTER_HOME") or DEFAULT_DAGSTER_HOME).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    config = path / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML)
    os.environ["DAGSTER_HOME"] = str(path)
    return path
