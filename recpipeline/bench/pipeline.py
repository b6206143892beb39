"""``recpipeline bench``: the real pipeline on generated data of a chosen size, timed per stage.

Each Dagster step is timed from its STEP_START to its STEP_SUCCESS event, and its peak RSS is read from
``VmHWM`` after resetting it at the step's start (``/proc/self/clear_refs``; steps run in this process).
Two bounds are measured in the same run, on the same data:

- ``als_overhead_ratio``: the pipeline's ALS model step (read the splits, build the matrix, fit, save; with
  refit and nothing to tune, ALS is fitted once, on train + validation) over a bare ``implicit`` fit on the
  same confidence matrix with the same hyperparameters;
- ``eval_bound_ratio``: the ALS evaluation (its recommendations step — fold-in, scoring, masking, top-K,
  table — plus the metrics step's time per model; ``als_eval_s``) over a bare chunked matmul + argpartition
  over the same users and item factors. The bound scores from the trained user factors, the pipeline from
  user factors re-solved from train + validation history (fold-in): ``als_fold_in_s`` times that re-solve
  alone, so the summary shows how much of the stage it is.

With ``--models`` (any names, or ``all``) the summary's ``models`` gives each model's fit seconds, the
epochs early stopping kept and the epochs run, seconds per epoch run (validation included), and for torch
models ``bound_ratio``: the median training part of its epochs in the run (from the epoch log lines) over a
bare torch loop of the fitted model's architecture and hyperparameters on the same train split
(``recpipeline.bench.bound``, measured after the run); every model also has its ``family`` and ``ndcg``, the
run's NDCG@k on the headline segment (``segment``). ``step_peak_rss_mb`` is every step's peak RSS. A long
run reports each finished step (seconds, peak RSS) and each epoch line through ``progress`` as it goes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import re
import resource
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from dagster import DagsterInstance, logger

from recpipeline.config import RunConfig, parse_config
from recpipeline.evaluation.protocol import headline_segment
from recpipeline.models.base import no_log, score_chunk_rows
from recpipeline.models.registry import model_class
from recpipeline.preparation.encoding import MATRIX_COLUMNS, interaction_matrix

BENCH_MODELS = ["popularity", "als", "item_knn"]
#: raw rows per ingestion run; raw and cleaned days of one run are in memory together
INGEST_ROWS_PER_RUN = 3_000_000
#: mean raw rows per generated session (views + carts + purchases), measured on the default shop
ROWS_PER_SESSION = 6.45


def bench_config(
    events: float,
    storage: Path,
    days: int = 30,
    seed: int = 42,
    models: list[str] | str | None = None,
    epochs: int | None = None,
) -> RunConfig:
    """A synthetic shop sized for about ``events`` raw rows over ``days`` days; ``models``: names or
    ``"all"`` (default ``BENCH_MODELS``); ``epochs``: at most this many epochs for every torch model (the
    nightly budget; default: each model's own)."""
    events = int(events)
    # about 80 events per user and 400 per item, like the default shop (measured: ALS keeps its lead)
    sessions = max(50, round(events / (days * ROWS_PER_SESSION)))
    n_users = max(1_000, round(events / 80))
    n_items = int(np.clip(round(events / 400), 1_000, 50_000))
    start = dt.date(2026, 1, 1)
    return parse_config(
        {
            "source": {
                "kind": "synthetic",
                "start_date": start.isoformat(),
                "end_date": (start + dt.timedelta(days=days - 1)).isoformat(),
                "synthetic": {
                    "n_users": n_users,
                    "n_items": n_items,
                    "sessions_per_day": sessions,
                    "arrival_days": days,
                },
            },
            "split": {"validation_days": max(1, days // 10), "test_days": max(1, days // 10)},
            "models": _capped(BENCH_MODELS if models is None else models, epochs),
            "k": 10,
            "seed": seed,
            "storage": str(storage),
        },
        source_name=f"<bench {events} events>",
    )


def _capped(models: list[str] | str, epochs: int | None) -> list | str:
    """``models`` with every torch model's ``epochs`` set to ``epochs`` (unchanged when None)."""
    if epochs is None:
        return models
    if epochs < 1:
        raise ValueError(f"epochs: expected a positive number, got {epochs}")
    from recpipeline.contracts import MODEL_NAMES
    from recpipeline.models.neural import TorchRecommender

    names = MODEL_NAMES if models == "all" else models
    return [
        {name: {"epochs": epochs}} if issubclass(model_class(name), TorchRecommender) else name
        for name in names
    ]


@dataclass
class StepStats:
    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    rows: int = 0


#: a torch model's per-epoch log line (``models.loop.train_epochs``): name, epoch, seconds
_EPOCH_LINE = re.compile(r"^(\w+) epoch (\d+): .* ([0-9.]+)s \(training ([0-9.]+)s\)$")


@dataclass
class _Recorder:
    steps: dict[str, StepStats] = field(default_factory=dict)
    run: int = 0  # the number of the job run in progress
    #: model step -> the materialization's metadata values (fit_seconds, epochs, ...)
    metadata: dict[str, dict] = field(default_factory=dict)
    #: model name -> (seconds, training seconds) of each epoch run (refits included), from the log lines
    epochs: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    _started: dict[str, float] = field(default_factory=dict)
    _rows: dict[tuple, int] = field(default_factory=dict)

    #: where each finished step and epoch line is reported as the run goes
    progress: Callable[[str], None] = no_log

    def on_message(self, message: str) -> None:
        match = _EPOCH_LINE.match(message)
        if match is not None:
            self.epochs.setdefault(match[1], []).append((float(match[3]), float(match[4])))
            self.progress(message)

    def on_event(self, event) -> None:
        key = event.step_key
        if event.event_type_value == "STEP_START":
            _reset_peak_rss()
            self._started[key] = time.perf_counter()
        elif event.event_type_value == "STEP_SUCCESS":
            # a step that runs once per ingestion run adds up its seconds; its peak is the largest
            stats = self.steps.setdefault(key, StepStats())
            stats.seconds += time.perf_counter() - self._started.pop(key)
            stats.peak_rss_mb = max(stats.peak_rss_mb, _peak_rss_mb())
            self.progress(f"{key}: {stats.seconds:.1f} s, peak RSS {stats.peak_rss_mb:.0f} MB")
        elif event.event_type_value == "ASSET_MATERIALIZATION":
            materialization = event.event_specific_data.materialization
            if key is not None and key.endswith("_model"):
                self.metadata[key] = {
                    name: value.value
                    for name, value in materialization.metadata.items()
                    if isinstance(value.value, int | float)
                }
            rows = materialization.metadata.get("dagster/row_count")
            if rows is not None and key is not None:
                # each partition's materialization carries that day's rows (once, even if reported again)
                where = (self.run, key, materialization.asset_key, materialization.partition)
                self._rows[where] = int(rows.value)
                self.steps.setdefault(key, StepStats()).rows = sum(
                    n for (_, step, _, _), n in self._rows.items() if step == key
                )


def run_benchmark(
    events: float,
    storage: Path | None = None,
    days: int = 30,
    models: list[str] | str | None = None,
    bound_epochs: int = 1,
    epochs: int | None = None,
    progress: Callable[[str], None] = no_log,
) -> dict:
    """Run ingestion and train-and-evaluate on generated data; return the per-stage table and the summary.

    ``bound_epochs``: epochs of the torch models' bare loops (at most 300 batches each, extrapolated; fastest
    counts; 0: no bound measured); ``epochs``: cap on the torch models' epochs (``bench_config``);
    ``progress``: called with a line per finished step and per epoch as the run goes."""
    from recpipeline.orchestration.definitions import build_definitions
    from recpipeline.orchestration.runner import PARTITION_RANGE_END, PARTITION_RANGE_START, execute

    workdir = Path(storage or tempfile.mkdtemp(prefix="recpipeline-bench-"))
    config = bench_config(events, workdir / "warehouse", days=days, models=models, epochs=epochs)
    defs = build_definitions(config)
    recorder = _Recorder(progress=progress)
    keys = defs.resolve_job_def("daily_ingestion").partitions_def.get_partition_keys()
    # ingestion runs over ranges of days, as a backfill in chunks would: a range run holds its days in memory
    days_per_run = max(1, int(INGEST_ROWS_PER_RUN // (float(events) / len(keys))))
    ranges = [keys[i : i + days_per_run] for i in range(0, len(keys), days_per_run)]
    runs = [("daily_ingestion", {PARTITION_RANGE_START: d[0], PARTITION_RANGE_END: d[-1]}) for d in ranges]
    started = time.perf_counter()
    with DagsterInstance.ephemeral() as instance:
        for recorder.run, (job_name, tags) in enumerate((*runs, ("train_and_evaluate", {}))):
            loggers = {"bench": _recording_logger(recorder)}
            execute(config, job_name, instance, tags, loggers, run_config={"loggers": {"bench": {}}})
    wall = time.perf_counter() - started

    root = Path(config.storage)
    steps = recorder.steps
    raw_rows = steps["raw_events"].rows
    summary = {
        "events": raw_rows,
        "wall_s": round(wall, 1),
        # resetting VmHWM per step also resets getrusage's maximum: the run's peak is the steps' largest
        "peak_rss_mb": round(max([_peak_rss_mb(), *(v.peak_rss_mb for v in recorder.steps.values())])),
    }
    if "als" in config.model_names:
        als = _bare_als_seconds(root, ("train", "validation") if config.evaluation.refit else ("train",))
        bound, fold_in = _bare_eval_seconds(root)
        als_eval = steps["als_recommendations"].seconds + steps["metrics"].seconds / len(config.models)
        summary |= {
            "als_overhead_ratio": round(steps["als_model"].seconds / als, 3),
            "eval_bound_ratio": round(als_eval / bound, 3),
            "bare_als_fit_s": round(als, 2),
            "bare_matmul_argpartition_s": round(bound, 2),
            "als_eval_s": round(als_eval, 2),
            "als_fold_in_s": round(fold_in, 2),
        }
    summary["models"] = _model_summaries(config, recorder, root, bound_epochs)
    summary["step_peak_rss_mb"] = {key: round(stats.peak_rss_mb) for key, stats in steps.items()}
    table = pd.DataFrame(
        [
            {
                "stage": k,
                "seconds": round(v.seconds, 2),
                "rows": v.rows,
                "rows_per_s": round(v.rows / v.seconds) if v.rows and v.seconds else None,
                "peak_rss_mb": round(v.peak_rss_mb),
            }
            for k, v in steps.items()
        ]
    )
    return {"table": table, "summary": summary, "storage": str(root)}


def _model_summaries(config: RunConfig, recorder: _Recorder, root: Path, bound_epochs: int) -> dict:
    """Per model: family, NDCG@k on the headline segment, fit seconds, epochs kept and run, seconds per
    epoch run, bound ratio (torch models)."""
    from recpipeline.bench.bound import TORCH_MODELS

    metrics = pd.read_parquet(root / "metrics.parquet")
    segment = headline_segment(metrics)
    rows = (metrics["segment"] == segment) & (metrics["metric"] == "ndcg") & (metrics["k"] == config.k)
    ndcg = metrics[rows].set_index("model")["value"]
    out = {}
    for spec in config.models:
        step = f"{spec.name}_model"
        metadata = recorder.metadata.get(step, {})
        run = recorder.epochs.get(spec.name, [])
        fits = [metadata[name] for name in ("fit_seconds", "refit_seconds") if name in metadata]
        entry = {
            "family": model_class(spec.name).family,
            "ndcg": round(float(ndcg[spec.name]), 4),
            "segment": segment,
            # the fit on train and the refit on train + validation (one of them where only one was made)
            "fit_s": round(sum(fits) if fits else recorder.steps[step].seconds, 2),
            "peak_rss_mb": round(recorder.steps[step].peak_rss_mb),
        }
        if run:
            seconds, training = np.array(run).T
            entry |= {
                "epochs": metadata.get("epochs"),
                "epochs_run": len(run),
                "s_per_epoch": round(float(seconds.mean()), 2),
            }
        if run and bound_epochs > 0 and spec.name in TORCH_MODELS:
            bound = _bare_epoch_seconds(spec.name, root, bound_epochs)
            entry |= {"bound_s": round(bound, 2), "bound_ratio": round(float(np.median(training)) / bound, 3)}
        out[spec.name] = entry
    return out


def _bare_epoch_seconds(name: str, root: Path, epochs: int) -> float:
    """The bare loop's epoch (``recpipeline.bench.bound``) for the run's fitted ``name`` on its train split,
    with the model's hyperparameters and threads."""
    from recpipeline.bench.bound import bare_epoch_seconds
    from recpipeline.models import FitContext, load_model

    model = load_model(root / "models" / f"{name}_model")
    events = pd.read_parquet(root / "train.parquet")
    train = interaction_matrix(events, model.n_users_, model.n_items_)
    return bare_epoch_seconds(model, train, FitContext(train_events=events), epochs)


def _bare_als_seconds(root: Path, splits: tuple[str, ...]) -> float:
    """A bare ``implicit`` fit on the interactions of ``splits`` (those the pipeline's ALS was fitted on)."""
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    from recpipeline.models.als import ALS

    model = ALS()  # the pipeline's defaults: the same hyperparameters as its ALS step
    train = pd.concat(
        [pd.read_parquet(root / f"{split}.parquet", columns=list(MATRIX_COLUMNS)) for split in splits]
    )
    shape = (
        len(pd.read_parquet(root / "user_id_map.parquet")),
        len(pd.read_parquet(root / "item_id_map.parquet")),
    )
    confidence = model.confidence(interaction_matrix(train, *shape))
    bare = AlternatingLeastSquares(
        factors=model.factors,
        regularization=model.regularization,
        iterations=model.iterations,
        random_state=model.seed,
        alpha=1.0,
    )
    with threadpool_limits(1, "blas"):
        started = time.perf_counter()
        bare.fit(confidence, show_progress=False)
        return time.perf_counter() - started


def _bare_eval_seconds(root: Path) -> tuple[float, float]:
    """Chunked ``users @ items.T`` + argpartition for the users the pipeline evaluated, with ALS's trained
    factors; and ALS's fold-in of the same users from their train + validation history, in the same blocks."""
    from recpipeline.models import load_model

    model = load_model(root / "models" / "als_model")
    users = np.unique(pd.read_parquet(root / "als_recommendations.parquet", columns=["user_idx"])["user_idx"])
    item_factors = np.ascontiguousarray(model.item_factors_, dtype=np.float32)
    user_factors = np.ascontiguousarray(model.user_factors_[users], dtype=np.float32)
    rows_per_chunk = score_chunk_rows(len(item_factors))  # the blocks the pipeline scores in
    started = time.perf_counter()
    for lo in range(0, len(users), rows_per_chunk):
        scores = user_factors[lo : lo + rows_per_chunk] @ item_factors.T
        np.argpartition(-scores, 9, axis=1)[:, :10]
    bound = time.perf_counter() - started

    known = pd.concat(
        [
            pd.read_parquet(root / f"{split}.parquet", columns=list(MATRIX_COLUMNS))
            for split in ("train", "validation")
        ]
    )
    history = interaction_matrix(known, model.n_users_, model.n_items_)[users]
    started = time.perf_counter()
    for lo in range(0, len(users), rows_per_chunk):
        model.user_vectors(history[lo : lo + rows_per_chunk])
    return bound, time.perf_counter() - started


def _recording_logger(recorder: _Recorder):
    class _Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            meta = getattr(record, "dagster_meta", {})
            event = meta.get("dagster_event")
            if event is not None:
                recorder.on_event(event)
            else:
                recorder.on_message(str(meta.get("orig_message", record.getMessage())))

    @logger(description="records step timings and peak memory for recpipeline bench")
    def bench_logger(_):
        log = logging.Logger("recpipeline.bench", level=logging.DEBUG)
        log.addHandler(_Handler())
        return log

    return bench_logger


def _reset_peak_rss() -> None:
    with contextlib.suppress(OSError):  # not Linux, or not permitted: peaks then only grow
        Path("/proc/self/clear_refs").write_text("5")


def _peak_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def format_report(result: dict) -> str:
    from recpipeline.evaluation.reports import markdown_table

    return markdown_table(result["table"], float_format="{:.2f}") + "\n" + json.dumps(result["summary"])
