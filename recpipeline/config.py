"""The run configuration: one YAML file shared by the CLI, the Dagster code location and the tests.

Without a file, the embedded default (``default_config.yaml`` in this package: synthetic data) is used.
Every problem is reported as a ``ConfigError`` naming the file, the key and what was expected.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

#: environment variable naming the configuration file the Dagster code location loads
CONFIG_ENV_VAR = "RECPIPELINE_CONFIG"
DEFAULT_CONFIG_PATH = Path(__file__).with_name("default_config.yaml")

EVENT_TYPES = ("view", "cart", "purchase", "rating")
SOURCE_KINDS = ("synthetic",)
SPLIT_KINDS = ("temporal",)


class ConfigError(ValueError):
    """A configuration problem, with the file and key in the message."""


@dataclass(frozen=True)
class SourceConfig:
    kind: str = "synthetic"
    path: str | None = None
    start_date: dt.date | None = None
    end_date: dt.date | None = None  # inclusive; None = up to yesterday (a live feed)
    #: synthetic source: overrides of recpipeline.synthetic.SyntheticSpec fields
    synthetic: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CleaningConfig:
    max_quarantine_share: float = 0.1


@dataclass(frozen=True)
class SplitConfig:
    kind: str = "temporal"
    validation_days: int = 7
    test_days: int = 7


@dataclass(frozen=True)
class ModelSpec:
    name: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunConfig:
    source: SourceConfig = field(default_factory=SourceConfig)
    cleaning: CleaningConfig = field(default_factory=CleaningConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    #: interaction weight per event type (ratings are additionally multiplied by the rating value)
    event_weights: dict[str, float] = field(
        default_factory=lambda: {"view": 1.0, "cart": 3.0, "purchase": 5.0, "rating": 1.0}
    )
    models: tuple[ModelSpec, ...] = (ModelSpec("popularity"), ModelSpec("als"), ModelSpec("mult_vae"))
    k: int = 10
    seed: int = 42
    storage: str = "data/warehouse"
    config_file: str = "<default>"

    @property
    def model_names(self) -> list[str]:
        return [m.name for m in self.models]


def load_config(path: str | os.PathLike[str] | None = None) -> RunConfig:
    """Read a run configuration; ``None`` means the embedded default."""
    file = Path(path) if path is not None else DEFAULT_CONFIG_PATH
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"{file}: configuration file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: expected a mapping at the top level, got {type(raw).__name__}")
    # relative paths in a user's file are relative to that file; the embedded default's to the working dir
    base_dir = Path.cwd() if path is None else file.resolve().parent
    return parse_config(raw, source_name=str(file), base_dir=base_dir)


def load_config_from_env() -> RunConfig:
    """The configuration named by ``$RECPIPELINE_CONFIG``, else the embedded default."""
    return load_config(os.environ.get(CONFIG_ENV_VAR) or None)


def parse_config(raw: dict[str, Any], source_name: str = "<dict>", base_dir: Path | None = None) -> RunConfig:
    """Validate a configuration mapping into a ``RunConfig``."""
    where = source_name
    known = {f.name for f in fields(RunConfig)} - {"config_file"}
    _reject_unknown(raw, known, where, "")
    base_dir = base_dir or Path.cwd()

    source = _section(raw, "source", SourceConfig, where)
    if source.kind not in SOURCE_KINDS:
        raise ConfigError(
            f"{where}: source.kind: unknown kind {source.kind!r}; expected one of {SOURCE_KINDS}"
        )
    source = replace(
        source,
        start_date=_date(source.start_date, where, "source.start_date"),
        end_date=_date(source.end_date, where, "source.end_date"),
    )
    if source.start_date and source.end_date and source.end_date < source.start_date:
        raise ConfigError(
            f"{where}: source.end_date {source.end_date} is before start_date {source.start_date}"
        )

    cleaning = _section(raw, "cleaning", CleaningConfig, where)
    if not 0.0 <= float(cleaning.max_quarantine_share) <= 1.0:
        raise ConfigError(f"{where}: cleaning.max_quarantine_share: expected a share in [0, 1]")

    split = _section(raw, "split", SplitConfig, where)
    if split.kind not in SPLIT_KINDS:
        raise ConfigError(f"{where}: split.kind: unknown kind {split.kind!r}; expected one of {SPLIT_KINDS}")
    for key in ("validation_days", "test_days"):
        value = getattr(split, key)
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"{where}: split.{key}: expected a positive integer, got {value!r}")

    weights = {**RunConfig().event_weights, **(raw.get("event_weights") or {})}
    for event_type, weight in weights.items():
        if event_type not in EVENT_TYPES:
            raise ConfigError(
                f"{where}: event_weights.{event_type}: unknown event type; expected {EVENT_TYPES}"
            )
        if not isinstance(weight, int | float) or weight < 0:
            raise ConfigError(f"{where}: event_weights.{event_type}: expected a non-negative number")

    k = raw.get("k", RunConfig.k)
    if not isinstance(k, int) or k < 1:
        raise ConfigError(f"{where}: k: expected a positive integer, got {k!r}")
    seed = raw.get("seed", RunConfig.seed)
    if not isinstance(seed, int):
        raise ConfigError(f"{where}: seed: expected an integer, got {seed!r}")

    return RunConfig(
        source=source,
        cleaning=cleaning,
        split=split,
        event_weights={key: float(value) for key, value in weights.items()},
        models=_models(raw.get("models"), where),
        k=k,
        seed=seed,
        storage=validate_storage(raw.get("storage", RunConfig.storage), where, base_dir),
        config_file=source_name,
    )


def validate_storage(value: Any, where: str, base_dir: Path) -> str:
    """A storage root: an fsspec URL with a known protocol, or a local path (made absolute)."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: storage: expected a local path or an fsspec URL, got {value!r}")
    if "://" in value:
        import fsspec

        protocol = value.split("://", 1)[0]
        try:
            fsspec.get_filesystem_class(protocol)
        except (ValueError, ImportError) as exc:
            raise ConfigError(f"{where}: storage: unsupported URL protocol {protocol!r} ({exc})") from None
        return value.rstrip("/")
    if "\x00" in value:
        raise ConfigError(f"{where}: storage: path contains a NUL byte")
    path = Path(value).expanduser()
    return str((path if path.is_absolute() else base_dir / path).resolve())


def _section(raw: dict[str, Any], key: str, cls: type, where: str) -> Any:
    values = raw.get(key) or {}
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: {key}: expected a mapping, got {type(values).__name__}")
    _reject_unknown(values, {f.name for f in fields(cls)}, where, f"{key}.")
    return cls(**values)


def _reject_unknown(values: dict[str, Any], known: set[str], where: str, prefix: str) -> None:
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key {prefix}{unknown[0]}; expected one of {sorted(known)}")


def _date(value: Any, where: str, key: str) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(f"{where}: {key}: expected a date YYYY-MM-DD, got {value!r}") from None


def _models(value: Any, where: str) -> tuple[ModelSpec, ...]:
    from recpipeline.models import MODEL_REGISTRY

    if value is None:
        return RunConfig.models
    if value == "all":
        return tuple(ModelSpec(name) for name in MODEL_REGISTRY)
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where}: models: expected a non-empty list of model names or 'all'")
    specs = []
    for entry in value:
        if isinstance(entry, str):
            spec = ModelSpec(entry)
        elif isinstance(entry, dict) and len(entry) == 1:
            name, params = next(iter(entry.items()))
            if params is not None and not isinstance(params, dict):
                raise ConfigError(f"{where}: models.{name}: expected a mapping of hyperparameters")
            spec = ModelSpec(str(name), dict(params or {}))
        else:
            raise ConfigError(f"{where}: models: expected a name or {{name: {{params}}}}, got {entry!r}")
        if spec.name not in MODEL_REGISTRY:
            raise ConfigError(
                f"{where}: models: unknown model {spec.name!r}; known: {sorted(MODEL_REGISTRY)}"
            )
        specs.append(spec)
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: models: a model is listed twice: {names}")
    return tuple(specs)
