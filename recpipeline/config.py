"""The run configuration: one YAML file shared by the CLI, the Dagster code location and the tests.

Without a file, the embedded default (``default_config.yaml`` in this package: synthetic data) is used.
Every problem is reported as a ``ConfigError`` naming the file, the key and what was expected.
"""

from __future__ import annotations

import datetime as dt
import glob
import math
import os
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from recpipeline.contracts import EVENT_TYPES, VALUE_RANGE, table_files
from recpipeline.datasets import dataset_named_by, expand_data_location, missing_message
from recpipeline.models.registry import MODEL_NAMES, has_item_similarity

#: environment variable naming the configuration file the Dagster code location loads
CONFIG_ENV_VAR = "RECPIPELINE_CONFIG"
#: the pseudonym key (``privacy.pseudonymise``): read from the environment only, never written anywhere
PSEUDONYM_KEY_ENV_VAR = "RECPIPELINE_PSEUDONYM_KEY"
DEFAULT_CONFIG_PATH = Path(__file__).with_name("default_config.yaml")


SOURCE_KINDS = ("synthetic", "files", "movielens", "online_retail")
SPLIT_KINDS = ("temporal", "predefined", "random", "stratified", "leave_last_out", "sessions")
#: evaluation.session_targets: the next item of a session prefix only, or every remaining item
SESSION_TARGETS = ("next", "rest")
#: the entity whose interactions a stratified split divides by ratio
STRATIFY_BY = ("user", "item")
#: the settings each source kind takes besides kind, start_date and end_date
SOURCE_SETTINGS = {
    "synthetic": {"synthetic"},
    "files": {
        "path", "format", "options", "columns", "event_type_default", "event_types", "timezone",
        "timestamp_unit", "timestamp_format", "items", "users",
    },
    "movielens": {"path"},
    "online_retail": {"path", "format", "options", "timezone"},
}  # fmt: skip
FILE_FORMATS = ("csv", "parquet", "jsonl")
TIMESTAMP_UNITS = ("auto", "s", "ms", "us", "ns", "iso")
#: reader options that drop or skip input lines before they are counted: every input row must be accounted
#: for (cleaned or quarantined with a reason), so they are refused
ROW_DROPPING_OPTIONS = {
    "on_bad_lines": "drops malformed lines uncounted",
    "nrows": "reads only the first rows, leaving the rest uncounted",
    "skiprows": "skips lines uncounted",
    "skipfooter": "skips the last lines uncounted",
    "error_bad_lines": "drops malformed lines uncounted",
    "warn_bad_lines": "drops malformed lines uncounted",
    "comment": "drops the rest of a line after the comment character uncounted",
}
#: configured dates further apart than this (twenty years of daily partitions) are refused
MAX_SOURCE_DAYS = 7305
#: upper bounds of settings whose large values only fail late, in a step (or take hours)
MAX_K = 10_000
MAX_BOOTSTRAP_SAMPLES = 100_000
MAX_EVENT_WEIGHT = 1e6
#: YAML aliases (*name) a configuration file may use: a few hundred bytes of nested aliases expand to
#: gigabytes (an "alias bomb"), so the loader counts them
MAX_YAML_ALIASES = 100
#: storage under these folders is not a place for data (as root, their files look writable)
SYSTEM_FOLDERS = ("/proc", "/sys", "/dev")
#: execution.broker may name an environment variable instead of holding the URL: ${NAME}
BROKER_ENV_VAR = "RECPIPELINE_BROKER_URL"
#: contract columns a `files` source maps; the first three are required
MAPPED_COLUMNS = (
    "user_id",
    "item_id",
    "timestamp",
    "event_type",
    "value",
    "session_id",
    "time_offset",
    "anonymous_id",
)
SIDE_TABLE_IDS = {"items": "item_id", "users": "user_id"}
EXECUTORS = ("in_process", "multiprocess", "celery")
#: files of an external_recommendations folder that are lists (named by their stem)


class ConfigError(ValueError):
    """A configuration problem, with the file and key in the message."""


@dataclass(frozen=True)
class TableConfig:
    """A side table (items or users) of a `files` source, read like the events, with its own mapping."""

    path: str
    format: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    #: contract name -> source column (items: item_id, title, category, brand, price; users: user_id);
    #: unmapped source columns come along as attributes under their own names
    columns: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SourceConfig:
    kind: str = "synthetic"
    #: file, glob or folder; a local path (made absolute, relative to the config file) or an fsspec URL
    path: str | None = None
    start_date: dt.date | None = None
    #: inclusive; None = synthetic: up to yesterday (a live feed), file kinds: the data's last day
    end_date: dt.date | None = None
    #: synthetic source: overrides of recpipeline.sources.synthetic.SyntheticSpec fields
    synthetic: dict[str, Any] = field(default_factory=dict)
    format: str | None = None  # csv | parquet | jsonl; None = from the file suffix
    options: dict[str, Any] = field(default_factory=dict)  # passed to the reader (sep, encoding, ...)
    columns: dict[str, str | None] = field(default_factory=dict)  # contract name -> source column
    event_type_default: str | None = None  # every row's event type when no event_type column is mapped
    event_types: dict[str, str] = field(default_factory=dict)  # source value -> contract event type
    timezone: str | None = None  # of naive timestamps; None = UTC (online_retail: Europe/London)
    timestamp_unit: str = "auto"  # auto | s | ms | us | ns | iso
    #: a strptime format of the timestamps (e.g. %Y%m%d for compact dates) instead of timestamp_unit
    timestamp_format: str | None = None
    items: TableConfig | None = None
    users: TableConfig | None = None
    #: events of a user without a session id further apart than this start a new session
    session_gap_minutes: float = 30.0


@dataclass(frozen=True)
class CleaningConfig:
    max_quarantine_share: float = 0.1
    #: [min, max] of event values (ratings, quantities); a value outside is quarantined as bad_value
    value_range: tuple[float, float] = VALUE_RANGE


@dataclass(frozen=True)
class PrivacyConfig:
    """What of the users' identity the warehouse keeps."""

    #: replace user ids at cleaning by a keyed hash (HMAC-SHA256 under $RECPIPELINE_PSEUDONYM_KEY), so no raw
    #: user id reaches any table after raw_events (user_profiles included)
    pseudonymise: bool = False
    #: false: each raw_events partition file is deleted once its rows are cleaned (the row accounting stays in
    #: the cleaning metadata)
    keep_raw: bool = True


@dataclass(frozen=True)
class PreparationConfig:
    """k-core filtering of the interactions, iterated until every user and item meets both minimums."""

    #: users with fewer distinct items are removed (1: no filtering)
    min_user_interactions: int = 1
    #: items with fewer distinct users are removed (1: no filtering)
    min_item_interactions: int = 1


@dataclass(frozen=True)
class SplitConfig:
    #: temporal | predefined | random | stratified | leave_last_out
    kind: str = "temporal"
    #: temporal: the last test_days whole days are test, the validation_days before them validation
    validation_days: int = 7
    test_days: int = 7
    #: random: shares of all interactions; stratified: shares of each user's (or item's) interactions.
    #: test takes test_ratio; validation takes validation_ratio of what remains
    test_ratio: float = 0.2
    validation_ratio: float = 0.1
    #: stratified: user (each user's interactions split by the ratios) or item
    stratify_by: str = "user"
    #: leave_last_out: each user's last n interactions by time to test, the n before them to validation
    leave_last: int = 1
    #: predefined: files read with the source's settings; no validation file = carved from train
    train: str | None = None
    validation: str | None = None
    test: str | None = None


@dataclass(frozen=True)
class EvaluationConfig:
    #: users with 1..cold_max_interactions train + validation interactions are `cold`, more are `warm`
    cold_max_interactions: int = 5
    #: model every other is tested against; None = the best non-neural model by ndcg@max(k) on `all`
    baseline: str | None = None
    bootstrap_samples: int = 1000
    #: family-wise error rate of the Holm-corrected significance tests
    alpha: float = 0.05
    #: the regression check fails when ndcg@max(k) drops more than this share below its recent median
    regression_tolerance: float = 0.1
    history_runs: int = 7
    #: folder of <name>.csv / <name>.parquet top-K lists evaluated as extra models (absolute local path)
    external_recommendations: str | None = None
    #: choose hyperparameters and epochs on validation, then refit every model on train + validation with
    #: those choices before it recommends for test; false: models fitted on train only recommend for test
    refit: bool = True
    #: segments with fewer evaluated users are shown but flagged, and left out of significance
    min_segment_users: int = 30
    #: event types whose test interactions count as relevant (null: every type)
    relevant_event_types: tuple[str, ...] | None = None
    #: rating events below this value are not relevant (null: every rating)
    min_rating: float | None = None
    #: split.kind sessions: each prefix's target is the next item (next) or every remaining item (rest)
    session_targets: str = "next"
    #: split.kind sessions: items already in the prefix may be recommended (shoppers return to them)
    session_recommend_seen: bool = True


@dataclass(frozen=True)
class ModelSpec:
    name: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SimilarItemsConfig:
    #: model whose item similarity feeds the similar_items asset; None = the first configured model that has
    #: one (no asset when none has)
    model: str | None = None
    #: neighbours per item; 0 turns the asset off
    n: int = 20


@dataclass(frozen=True)
class TuningConfig:
    #: candidate parameter sets per tuned model (the first is the configured one); 0 = no tuning
    trials: int = 0
    #: models to tune (names from `models`)
    models: tuple[str, ...] = ()


@dataclass(frozen=True)
class BacktestConfig:
    """Rolling-origin backtests (split.kind temporal): the training-and-evaluation chain repeated at cut
    dates, each the last day before its test window of split.test_days."""

    #: days between cut dates, and so between the cut partitions: 1 (daily) or 7 (weekly, on the first
    #: cut's weekday); `recpipeline backtest --every` may take any multiple of it
    every_days: int = 7
    #: days of training data the first cut keeps before its validation window
    min_train_days: int = 14
    #: torch models continue from the previous cut's weights of the same settings (validation fit from its
    #: validation fit, final fit from its final fit); false: every cut starts cold
    warm_start: bool = True
    #: the nightly budget: at most this many epochs per torch model and cut; None = the models' own
    max_epochs: int | None = None


@dataclass(frozen=True)
class ExecutionConfig:
    """Which Dagster executor runs a job's steps."""

    #: in_process: every step in the run's process; multiprocess: one process per step; celery: every step a
    #: task of dagster-celery's workers (the `cluster` extra). Both need a persistent instance and a
    #: configuration file, which every step process loads again
    executor: str = "in_process"
    #: multiprocess: at most this many step processes at once; None = Dagster's default (the CPU count)
    max_concurrent: int | None = None
    #: celery: the broker URL (e.g. redis://host:6379/0), also the result backend
    broker: str | None = None
    #: torch threads of every neural model step, overriding the models' own; 0 = auto: the cores the
    #: process may use (affinity, cgroup quota) divided by the steps running at once
    num_threads: int = 0


@dataclass(frozen=True)
class RunConfig:
    """Every setting of a run. These defaults are the embedded ``default_config.yaml`` (a test holds the two
    equal), so a run without a configuration file uses exactly these values."""

    #: without a `source` section: four weeks of the synthetic shop. A section that leaves out its dates
    #: means "up to yesterday" (synthetic) or "the data's days" (files), hence SourceConfig's None dates.
    source: SourceConfig = field(
        default_factory=lambda: SourceConfig(start_date=dt.date(2026, 10, 1), end_date=dt.date(2026, 10, 28))
    )
    cleaning: CleaningConfig = field(default_factory=CleaningConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    preparation: PreparationConfig = field(default_factory=PreparationConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    #: interaction weight per event type (ratings are additionally multiplied by the rating value)
    event_weights: dict[str, float] = field(
        default_factory=lambda: {"view": 1.0, "cart": 3.0, "purchase": 5.0, "rating": 1.0}
    )
    #: Mult-VAE with a nightly budget (its class defaults follow the paper: 200 epochs of batch 100)
    models: tuple[ModelSpec, ...] = field(
        default_factory=lambda: (
            ModelSpec("popularity"),
            ModelSpec("recent_popularity"),
            ModelSpec("als"),
            ModelSpec("mult_vae", {"epochs": 50, "batch_size": 500, "patience": 5}),
        )
    )
    similar_items: SimilarItemsConfig = field(default_factory=SimilarItemsConfig)
    tuning: TuningConfig = field(default_factory=TuningConfig)
    backtest: BacktestConfig = field(default_factory=BacktestConfig)
    #: every cut-off metrics are reported at (ascending); models recommend max(ks) items
    ks: tuple[int, ...] = (10,)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    seed: int = 42
    storage: str = "data/warehouse"
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    config_file: str = "<default>"

    @property
    def model_names(self) -> list[str]:
        return [m.name for m in self.models]

    @property
    def k(self) -> int:
        """The list length models recommend: the largest configured K."""
        return self.ks[-1]


class _YamlProblem(Exception):
    """A configuration file that YAML reads but this loader refuses (the message lacks only the file)."""


class StrictLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader that refuses a key given twice in a mapping (YAML keeps the last one silently),
    refuses documents whose aliases expand to more than ``MAX_YAML_NODES`` nodes (a few hundred bytes of
    nested aliases expand to gigabytes) and leaves an impossible date (2026-02-30) as text for the
    setting's own check to name."""

    aliases_used = 0

    def compose_document(self) -> yaml.Node:
        node = super().compose_document()
        if self.aliases_used and _expanded_size(node) > MAX_YAML_NODES:
            raise _YamlProblem(
                f"aliases (*name) expand to more than {MAX_YAML_NODES} values; write the settings out, or "
                "use fewer aliases"
            )
        return node

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        if self.check_event(yaml.AliasEvent):
            self.aliases_used = getattr(self, "aliases_used", 0) + 1
            if self.aliases_used > MAX_YAML_ALIASES:
                line = self.peek_event().start_mark.line + 1
                raise _YamlProblem(f"line {line}: more than {MAX_YAML_ALIASES} YAML aliases (*name)")
        return super().compose_node(parent, index)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
                seen.setdefault(key, key_node.start_mark.line + 1)
            except TypeError:  # an unhashable key: construct_mapping names it
                continue
            if first is not None:
                raise _YamlProblem(
                    f"line {key_node.start_mark.line + 1}: key {_shown(key)} given twice (first on line "
                    f"{first}); YAML would keep only the last: remove one"
                )
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> Any:
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError:  # 2026-02-30: the date setting's check names the key
            return self.construct_scalar(node)


StrictLoader.add_constructor("tag:yaml.org,2002:timestamp", StrictLoader.construct_yaml_timestamp)
#: the most values a configuration's aliases may expand to
MAX_YAML_NODES = 100_000


def _expanded_size(node: yaml.Node) -> int:
    """The number of nodes ``node`` stands for with every alias written out (a cycle counts as too many)."""
    sizes: dict[int, int] = {}

    def size(current: yaml.Node, depth: int) -> int:
        key = id(current)
        if key in sizes:
            return sizes[key]
        if depth > 200:
            return MAX_YAML_NODES + 1
        sizes[key] = MAX_YAML_NODES + 1  # reached again while counting: a cycle
        total = 1
        if isinstance(current, yaml.SequenceNode):
            total += sum(size(child, depth + 1) for child in current.value)
        elif isinstance(current, yaml.MappingNode):
            total += sum(size(k, depth + 1) + size(v, depth + 1) for k, v in current.value)
        sizes[key] = min(total, MAX_YAML_NODES + 1)
        return sizes[key]

    return size(node, 0)


def _shown(value: Any, limit: int = 60) -> str:
    """``repr(value)``, shortened to fit a one-line message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _config_text(file: Path) -> str:
    """The file's text: UTF-8 (a byte-order mark allowed), or UTF-16 with its byte-order mark."""
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{file}: configuration file not found") from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read the configuration file ({exc.strerror or exc})") from None
    encoding = "utf-16" if data.startswith((b"\xff\xfe", b"\xfe\xff")) else "utf-8-sig"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{file}: not UTF-8 text (byte {exc.start}, line {line}: {data[exc.start : exc.start + 1]!r}); "
            "save the configuration file as UTF-8"
        ) from None


def load_config(path: str | os.PathLike[str] | None = None) -> RunConfig:
    """Read a run configuration; ``None`` means the embedded default."""
    file = Path(path) if path is not None else DEFAULT_CONFIG_PATH
    text = _config_text(file)
    try:
        raw = yaml.load(text, Loader=StrictLoader)  # noqa: S506 - StrictLoader is a SafeLoader
    except _YamlProblem as exc:
        raise ConfigError(f"{file}: {exc}") from None
    except yaml.YAMLError as exc:
        message = " ".join(str(exc).split())
        raise ConfigError(f"{file}: not valid YAML: {_shown(message, 300)}") from None
    if raw is None and path is not None:
        raise ConfigError(
            f"{file}: the configuration file is empty (or only comments); write its settings "
            "(docs/configuration.md), or leave out --config to run the embedded synthetic default"
        )
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: expected a mapping at the top level, got {type(raw).__name__}")
    # relative paths in a user's file are relative to that file; the embedded default's to the working dir
    base_dir = Path.cwd() if path is None else file.resolve().parent
    return parse_config(raw, source_name=str(file), base_dir=base_dir)


def load_config_from_env() -> RunConfig:
    """The configuration named by ``$RECPIPELINE_CONFIG``, else the embedded default."""
    return load_config(os.environ.get(CONFIG_ENV_VAR) or None)


def parse_config(raw: dict[str, Any], source_name: str = "<dict>", base_dir: Path | None = None) -> RunConfig:
    """Validate a configuration mapping into a ``RunConfig``; a key left out takes RunConfig's default."""
    where = source_name
    known = {f.name for f in fields(RunConfig)} - {"config_file", "ks"} | {"k"}
    _reject_unknown(raw, known, where, "")
    base_dir = base_dir or Path.cwd()
    defaults = RunConfig()

    source = _source(raw, where, base_dir) if "source" in raw else defaults.source
    cleaning = _section(raw, "cleaning", CleaningConfig, where)
    _number(cleaning.max_quarantine_share, where, "cleaning.max_quarantine_share", 0.0, 1.0)
    cleaning = replace(cleaning, value_range=_value_range(cleaning.value_range, where))
    privacy = _privacy(raw, where)
    preparation = _section(raw, "preparation", PreparationConfig, where)
    for key in ("min_user_interactions", "min_item_interactions"):
        _integer(getattr(preparation, key), where, f"preparation.{key}", 1)
    split = _split(raw, where, base_dir, source.kind)
    models = _models(raw["models"], where) if "models" in raw else defaults.models
    storage = validate_storage(raw.get("storage", defaults.storage), where, base_dir)
    _storage_outside_inputs(storage, source, where)
    weights = _event_weights(raw.get("event_weights", {}), defaults.event_weights, where)
    return RunConfig(
        source=source,
        cleaning=cleaning,
        privacy=privacy,
        preparation=preparation,
        split=split,
        event_weights=weights,
        models=models,
        similar_items=_similar_items(raw, where, models),
        tuning=_tuning(raw, where, models),
        backtest=_backtest(raw, where),
        ks=_ks(raw.get("k", list(defaults.ks)), where),
        evaluation=_evaluation(raw, where, base_dir, models, weights),
        seed=_integer(raw.get("seed", defaults.seed), where, "seed", 0),
        storage=storage,
        execution=_execution(raw, where, storage),
        config_file=source_name,
    )


def validate_models(config: RunConfig) -> None:
    """Every configured model's hyperparameters against its class: names from ``__init__``'s signature, value
    types where a default makes them clear, then the class's own checks (it is built once, fitting nothing,
    and its ``check_params`` run: an encoder's files, a hybrid's parts).

    Separate from ``parse_config`` because it imports each model's module (torch for the neural ones), which
    parsing must not; ``build_definitions`` calls it, so a run stops on a bad parameter before any step.
    Tuned models (``tuning.models``) are among these: their configured parameters are the fixed ones.
    """
    import inspect

    from recpipeline.models.registry import model_class

    where = config.config_file
    for spec in config.models:
        cls = model_class(spec.name)
        parameters = dict(inspect.signature(cls.__init__).parameters)
        parameters.pop("self")
        for key, value in spec.params.items():
            if key not in parameters:
                raise ConfigError(
                    f"{where}: models.{spec.name}.{key}: not a parameter of {spec.name}; "
                    f"known: {', '.join(parameters)}"
                )
            _parameter_type(value, parameters[key].default, where, f"models.{spec.name}.{key}")
            _parameter_range(value, key, where, f"models.{spec.name}.{key}")
        try:
            cls(**spec.params).check_params()
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{where}: models.{spec.name}: {exc}") from None


#: a default of this exact type -> (the types a value may have, how the message names them); bool apart from
#: int although it is an int subclass: neither `factors: true` nor `binarize: 1` is meant
_PARAMETER_TYPES = {
    bool: ((bool,), "true or false"),
    int: ((int,), "an integer"),
    float: ((int, float), "a number"),
    str: ((str,), "text"),
}


#: a number YAML 1.1 reads as text: an exponent without a decimal point or without a sign (1e-3, 1.0e3)
_EXPONENT = r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+"


#: hyperparameters every model names alike, and their allowed ranges: (low, high, low included)
_PARAMETER_RANGES = {
    **dict.fromkeys(
        ("factors", "epochs", "batch_size", "iterations", "n_iter", "heads", "hidden", "latent", "max_len"),
        (1, None, True),
    ),
    **dict.fromkeys(("neighbours", "blocks", "feature_dim"), (1, None, True)),
    **dict.fromkeys(("regularization", "weight_decay", "shrinkage", "alpha"), (0, None, True)),
    **dict.fromkeys(("lr", "learning_rate"), (0, None, False)),
    **dict.fromkeys(("dropout", "mask_prob"), (0, 1, True)),
}


def _parameter_range(value: Any, name: str, where: str, key: str) -> None:
    """A number is finite (NaN and .inf fail late, deep in a fit), and a common hyperparameter in range."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return
    if not math.isfinite(value):
        raise ConfigError(f"{where}: {key}: expected a finite number, got {value!r}")
    if name not in _PARAMETER_RANGES:
        return
    low, high, low_included = _PARAMETER_RANGES[name]
    if value < low or (value == low and not low_included) or (high is not None and value >= high):
        allowed = f"{'>=' if low_included else '>'} {low}" + ("" if high is None else f" and < {high}")
        raise ConfigError(f"{where}: {key}: expected a number {allowed}, got {value!r}")


def _parameter_type(value: Any, default: Any, where: str, key: str) -> None:
    """``value`` of a hyperparameter whose default is a bool, int, float or str has that default's type."""
    if type(default) not in _PARAMETER_TYPES:
        return  # None or a container: the type is not clear from the default
    accepted, noun = _PARAMETER_TYPES[type(default)]
    if isinstance(value, accepted) and (bool in accepted or not isinstance(value, bool)):
        return
    hint = ""
    if float in accepted and isinstance(value, str) and re.fullmatch(_EXPONENT, value.strip()):
        hint = "; YAML reads this as text: write exponents with a point and a sign (1.0e-3, 5.0e+2)"
    raise ConfigError(f"{where}: {key}: expected {noun} (the default is {default!r}), got {value!r}{hint}")


def validate_storage(value: Any, where: str, base_dir: Path) -> str:
    """A storage root: an fsspec URL with a known protocol, or a local path (made absolute) in a folder this
    process may write to."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: storage: expected a local path or an fsspec URL, got {value!r}")
    if "://" in value:
        _check_url_protocol(value, where, "storage")
        return value.rstrip("/")
    if "\x00" in value:
        raise ConfigError(f"{where}: storage: path contains a NUL byte")
    path = Path(value).expanduser()
    path = (path if path.is_absolute() else base_dir / path).resolve()
    system = next((folder for folder in SYSTEM_FOLDERS if path.is_relative_to(folder)), None)
    if system is not None:
        raise ConfigError(
            f"{where}: storage: {path} is under {system}, a system folder, not a place for data; choose "
            "another storage path"
        )
    _check_writable(path, where)
    return str(path)


def _storage_outside_inputs(storage: str, source: SourceConfig, where: str) -> None:
    """A storage inside the source's folder (or glob) would be read back as input by the next run."""
    if source.path is None or "://" in source.path or "://" in storage:
        return
    path = Path(source.path)
    if any(char in source.path for char in "*?["):
        parts = path.parts
        path = Path(*parts[: next(i for i, part in enumerate(parts) if any(c in part for c in "*?["))])
    elif not path.is_dir():
        return
    if Path(storage).is_relative_to(path.resolve()):
        raise ConfigError(
            f"{where}: storage: {storage} is inside the source folder {path}, whose files every run reads; "
            "choose a storage path outside it"
        )


def _check_writable(path: Path, where: str) -> None:
    """A run creates ``path`` as needed, so it, or the nearest parent that exists, must be a folder this
    process may write in: found now rather than when the first step writes."""
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(
            f"{where}: storage: {existing} is a file, not a folder; choose another storage path"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(
            f"{where}: storage: cannot write in {existing}; choose a storage path you may write to"
        )


def input_path(value: Any, where: str, key: str, base_dir: Path) -> str:
    """An input file, glob or folder: an fsspec URL with a known protocol, or a local path that exists
    (made absolute, relative to ``base_dir``); a glob must match at least one file. A leading
    ``${RECPIPELINE_DATA}`` is the public datasets' location (``recpipeline datasets``)."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: {key}: expected a file, glob or folder path (or URL), got {value!r}")
    if "://" in value:
        _check_url_protocol(value, where, key)
        return value
    dataset = dataset_named_by(value)
    path = Path(expand_data_location(value)).expanduser()
    path = path if path.is_absolute() else base_dir / path
    if any(char in value for char in "*?["):
        if not glob.glob(str(path), recursive=True):
            raise ConfigError(f"{where}: {key}: no file matches {path}")
        return str(path)
    if not path.exists():
        if dataset is not None:
            raise ConfigError(f"{where}: {key}: {missing_message(dataset)}")
        raise ConfigError(f"{where}: {key}: no such file or folder: {path.resolve()}")
    return str(path.resolve())


def _check_url_protocol(value: str, where: str, key: str) -> None:
    import fsspec

    protocol = value.split("://", 1)[0]
    try:
        fsspec.get_filesystem_class(protocol)
    except (ValueError, ImportError) as exc:
        raise ConfigError(f"{where}: {key}: unsupported URL protocol {protocol!r} ({exc})") from None


def _source(raw: dict[str, Any], where: str, base_dir: Path) -> SourceConfig:
    source = _section(raw, "source", SourceConfig, where)
    kind = source.kind
    if kind not in SOURCE_KINDS:
        raise ConfigError(f"{where}: source.kind: unknown kind {kind!r}; expected one of {SOURCE_KINDS}")
    allowed = SOURCE_SETTINGS[kind]
    common = {"kind", "start_date", "end_date", "session_gap_minutes"}
    extra = sorted(set(raw.get("source") or {}) - allowed - common)
    if extra:
        raise ConfigError(
            f"{where}: source.{extra[0]}: not a setting of kind {kind!r}; it takes {sorted(allowed)}"
        )
    _number(source.session_gap_minutes, where, "source.session_gap_minutes", 0.0, 1e9, open_interval=True)
    source = replace(
        source,
        start_date=_date(source.start_date, where, "source.start_date"),
        end_date=_date(source.end_date, where, "source.end_date"),
    )
    if source.start_date and source.end_date and source.end_date < source.start_date:
        raise ConfigError(
            f"{where}: source.end_date {source.end_date} is before start_date {source.start_date}"
        )
    # synthetic without end_date: up to yesterday; a file source's own last day is checked when read
    end = source.end_date or (dt.date.today() - dt.timedelta(days=1) if kind == "synthetic" else None)
    if source.start_date and end and (end - source.start_date).days >= MAX_SOURCE_DAYS:
        raise ConfigError(
            f"{where}: source.start_date {source.start_date} is {(end - source.start_date).days + 1} daily "
            f"partitions before {end} (at most {MAX_SOURCE_DAYS}, twenty years); set it near the data's "
            "first day"
        )
    if kind == "synthetic":
        _mapping(source.synthetic, where, "source.synthetic")
        return source
    if source.path is None:
        raise ConfigError(f"{where}: source.path: kind {kind!r} needs the path of its data")
    source = replace(source, path=input_path(source.path, where, "source.path", base_dir))
    _reader_settings(source.format, source.options, where, "source")
    if source.timezone is not None:
        _timezone(source.timezone, where)
    if kind != "files":
        return source
    if source.timestamp_unit not in TIMESTAMP_UNITS:
        raise ConfigError(
            f"{where}: source.timestamp_unit: expected one of {TIMESTAMP_UNITS}, got "
            f"{_shown(source.timestamp_unit)}"
        )
    if source.timestamp_format is not None:
        _timestamp_format(source.timestamp_format, source.timestamp_unit, where)
    columns = _columns(source.columns, MAPPED_COLUMNS, MAPPED_COLUMNS[:3], where, "source.columns")
    mapped_type = columns.get("event_type") is not None
    if mapped_type == (source.event_type_default is not None):
        raise ConfigError(
            f"{where}: source: map the event type column (columns.event_type) or give event_type_default "
            "for a log of a single kind -- exactly one of the two"
        )
    event_types = source.event_types or {}
    if not isinstance(event_types, dict) or (event_types and not mapped_type):
        raise ConfigError(f"{where}: source.event_types: expected a mapping, used with columns.event_type")
    for name, target in [("event_type_default", source.event_type_default), *event_types.items()]:
        if target is not None and target not in EVENT_TYPES:
            raise ConfigError(f"{where}: source.event_types: {name}: {target!r} is not one of {EVENT_TYPES}")
    return replace(
        source,
        columns={key: column for key, column in columns.items() if column is not None},
        event_types={str(key): value for key, value in event_types.items()},
        items=_side_table(source.items, "items", where, base_dir),
        users=_side_table(source.users, "users", where, base_dir),
    )


def _side_table(values: Any, name: str, where: str, base_dir: Path) -> TableConfig | None:
    if values is None:
        return None
    key = f"source.{name}"
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: {key}: expected a mapping with path, format, options, columns")
    _reject_unknown(values, {f.name for f in fields(TableConfig)}, where, f"{key}.")
    table = TableConfig(**{"path": None, **values})
    _reader_settings(table.format, table.options, where, key)
    columns = _columns(table.columns, None, (SIDE_TABLE_IDS[name],), where, f"{key}.columns")
    return replace(table, path=input_path(table.path, where, f"{key}.path", base_dir), columns=columns)


def _reader_settings(fmt: Any, options: Any, where: str, key: str) -> None:
    if fmt is not None and fmt not in FILE_FORMATS:
        raise ConfigError(f"{where}: {key}.format: expected one of {FILE_FORMATS}, got {fmt!r}")
    if not isinstance(options, dict):
        raise ConfigError(f"{where}: {key}.options: expected a mapping of reader options")
    dropping = next((option for option in options if option in ROW_DROPPING_OPTIONS), None)
    if dropping is not None:
        raise ConfigError(
            f"{where}: {key}.options.{dropping}: refused: it {ROW_DROPPING_OPTIONS[dropping]}, and every "
            "input row must be accounted for (cleaned, or quarantined with its reason); remove it, and fix "
            "or filter the file before the run if rows must go"
        )


def _columns(
    values: Any, known: tuple[str, ...] | None, required: tuple[str, ...], where: str, key: str
) -> dict[str, str | None]:
    """A column mapping contract name -> source column name (None: not in the source)."""
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: {key}: expected a mapping of contract name -> source column")
    if known is not None:
        _reject_unknown(values, set(known), where, f"{key}.")
    for name in required:
        if values.get(name) is None:
            raise ConfigError(f"{where}: {key}.{name}: required; name the source column that holds it")
    for name, column in values.items():
        if column is not None and not isinstance(column, str | int):
            raise ConfigError(f"{where}: {key}.{name}: expected a source column name, got {column!r}")
    return {name: None if column is None else str(column) for name, column in values.items()}


def _timestamp_format(value: Any, unit: str, where: str) -> None:
    """``source.timestamp_format``: a strptime format with at least a year, instead of a timestamp unit."""
    if not isinstance(value, str) or "%" not in value:
        raise ConfigError(
            f"{where}: source.timestamp_format: expected a strptime format such as '%Y%m%d' or "
            f"'%d/%m/%Y %H:%M', got {_shown(value)}"
        )
    if unit != "auto":
        raise ConfigError(
            f"{where}: source.timestamp_format: give timestamp_format or timestamp_unit ({unit!r}), not both"
        )
    try:
        dt.datetime(2026, 1, 10, 10, 0, tzinfo=dt.UTC).strftime(value)
    except ValueError as exc:
        raise ConfigError(f"{where}: source.timestamp_format: {exc} in {value!r}") from None
    if "%Y" not in value and "%y" not in value and "%G" not in value:
        raise ConfigError(f"{where}: source.timestamp_format: {value!r} has no year (%Y)")


def _timezone(value: Any, where: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        if not isinstance(value, str):
            raise ValueError(value)
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{where}: source.timezone: unknown time zone {value!r}; expected an IANA name like Europe/London"
        ) from None


def _split(raw: dict[str, Any], where: str, base_dir: Path, source_kind: str) -> SplitConfig:
    split = _section(raw, "split", SplitConfig, where)
    if split.kind not in SPLIT_KINDS:
        raise ConfigError(f"{where}: split.kind: unknown kind {split.kind!r}; expected one of {SPLIT_KINDS}")
    for key in ("validation_days", "test_days"):
        _integer(getattr(split, key), where, f"split.{key}", 1)
    _integer(split.leave_last, where, "split.leave_last", 1)
    _number(split.test_ratio, where, "split.test_ratio", 0.0, 1.0, open_interval=True)
    _number(split.validation_ratio, where, "split.validation_ratio", 0.0, 1.0, open_interval=True)
    if split.stratify_by not in STRATIFY_BY:
        raise ConfigError(
            f"{where}: split.stratify_by: expected one of {STRATIFY_BY}, got {split.stratify_by!r}"
        )
    files = {"train": split.train, "validation": split.validation, "test": split.test}
    if split.kind != "predefined":
        given = [key for key, value in files.items() if value is not None]
        if given:
            raise ConfigError(f"{where}: split.{given[0]}: only for split.kind predefined")
        return split
    if source_kind == "synthetic":
        raise ConfigError(f"{where}: split.kind: predefined split files need a file source, not synthetic")
    for key in ("train", "test"):
        if files[key] is None:
            raise ConfigError(f"{where}: split.{key}: a predefined split needs its {key} file")
    return replace(
        split,
        **{
            key: input_path(value, where, f"split.{key}", base_dir)
            for key, value in files.items()
            if value is not None
        },
    )


def _section(raw: dict[str, Any], key: str, cls: type, where: str) -> Any:
    """A settings section; left out or empty (``key:`` alone in YAML) takes every default of ``cls``."""
    values = _mapping(raw.get(key), where, key)
    _reject_unknown(values, {f.name for f in fields(cls)}, where, f"{key}.")
    return cls(**values)


def _mapping(value: Any, where: str, key: str) -> dict[Any, Any]:
    """A mapping of settings; None (an empty YAML value) is an empty one."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: {key}: expected a mapping, got {type(value).__name__} {value!r}")
    return value


def _value_range(value: Any, where: str) -> tuple[float, float]:
    """``cleaning.value_range``: [min, max], finite, min <= max, within float32 (encoding's value type)."""
    key = "cleaning.value_range"
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ConfigError(f"{where}: {key}: expected [min, max], got {value!r}")
    low, high = (_number(v, where, key, -1e30, 1e30) for v in value)
    if low > high:
        raise ConfigError(f"{where}: {key}: min {low!r} is above max {high!r}")
    return float(low), float(high)


def _integer(value: Any, where: str, key: str, lowest: int, highest: int | None = None) -> int:
    # bool is an int subclass, but `test_days: true` is a mistake, not 1
    too_high = highest is not None and isinstance(value, int) and value > highest
    if not isinstance(value, int) or isinstance(value, bool) or value < lowest or too_high:
        allowed = f">= {lowest}" if highest is None else f"in [{lowest}, {highest:,}]"
        hint = ""
        if isinstance(value, str) and re.fullmatch(_EXPONENT, value.strip()):
            hint = "; YAML reads an exponent as text: write the integer out"
        raise ConfigError(f"{where}: {key}: expected an integer {allowed}, got {_shown(value)}{hint}")
    return value


def _number(
    value: Any, where: str, key: str, low: float, high: float, *, open_interval: bool = False
) -> float:
    """A number in [low, high] (``open_interval``: in (low, high)); returned as given."""
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if not is_number or not (low < value < high if open_interval else low <= value <= high):
        bounds = f"({low:g}, {high:g})" if open_interval else f"[{low:g}, {high:g}]"
        raise ConfigError(f"{where}: {key}: expected a number in {bounds}, got {_shown(value)}")
    return value


def _event_weights(value: Any, defaults: dict[str, float], where: str) -> dict[str, float]:
    """The default weights, with those the configuration gives replaced."""
    weights = {**defaults, **_mapping(value, where, "event_weights")}
    for event_type, weight in weights.items():
        if event_type not in EVENT_TYPES:
            raise ConfigError(
                f"{where}: event_weights.{event_type}: unknown event type; expected one of {EVENT_TYPES}"
            )
        _number(weight, where, f"event_weights.{event_type}", 0.0, MAX_EVENT_WEIGHT)
    if not any(weights.values()):
        raise ConfigError(
            f"{where}: event_weights: every weight is 0, so no interaction counts and every model ties; give "
            "at least one event type a positive weight"
        )
    return {event_type: float(weight) for event_type, weight in weights.items()}


def _ks(value: Any, where: str) -> tuple[int, ...]:
    values = value if isinstance(value, list) else [value]
    if not values or not all(
        isinstance(k, int) and not isinstance(k, bool) and 1 <= k <= MAX_K for k in values
    ):
        raise ConfigError(
            f"{where}: k: expected a positive integer (at most {MAX_K:,}) or a list of them, got "
            f"{_shown(value)}"
        )
    return tuple(sorted(set(values)))


def _evaluation(
    raw: dict[str, Any],
    where: str,
    base_dir: Path,
    models: tuple[ModelSpec, ...],
    event_weights: dict[str, float],
) -> EvaluationConfig:
    section = _section(raw, "evaluation", EvaluationConfig, where)
    for key, lowest in (("cold_max_interactions", 0), ("history_runs", 1)):
        _integer(getattr(section, key), where, f"evaluation.{key}", lowest)
    _integer(section.bootstrap_samples, where, "evaluation.bootstrap_samples", 1, MAX_BOOTSTRAP_SAMPLES)
    for key in ("alpha", "regression_tolerance"):
        _number(getattr(section, key), where, f"evaluation.{key}", 0.0, 1.0, open_interval=True)
    _integer(section.min_segment_users, where, "evaluation.min_segment_users", 0)
    for key in ("refit", "session_recommend_seen"):
        if not isinstance(getattr(section, key), bool):
            raise ConfigError(
                f"{where}: evaluation.{key}: expected true or false, got {getattr(section, key)!r}"
            )
    if section.session_targets not in SESSION_TARGETS:
        raise ConfigError(
            f"{where}: evaluation.session_targets: expected one of {SESSION_TARGETS}, got "
            f"{section.session_targets!r}"
        )
    if section.min_rating is not None:
        _number(section.min_rating, where, "evaluation.min_rating", -1e30, 1e30)
        if event_weights["rating"] == 0:
            raise ConfigError(
                f"{where}: evaluation.min_rating: ratings are read back from the interaction weight, which "
                "event_weights.rating 0 erases; give ratings a positive weight or leave min_rating null"
            )
    types = section.relevant_event_types
    if types is not None:
        if not isinstance(types, list | tuple) or not types or any(t not in EVENT_TYPES for t in types):
            raise ConfigError(
                f"{where}: evaluation.relevant_event_types: expected a non-empty list of {EVENT_TYPES} or "
                f"null, got {types!r}"
            )
        section = replace(section, relevant_event_types=tuple(types))
    if section.baseline is not None and not isinstance(section.baseline, str):
        raise ConfigError(f"{where}: evaluation.baseline: expected a model name, got {section.baseline!r}")
    folder = section.external_recommendations
    if folder is not None:
        if not isinstance(folder, str):
            raise ConfigError(
                f"{where}: evaluation.external_recommendations: expected a folder path, got {folder!r}"
            )
        path = Path(folder).expanduser()
        path = (path if path.is_absolute() else base_dir / path).resolve()
        if not path.is_dir():
            raise ConfigError(f"{where}: evaluation.external_recommendations: {path} is not a folder")
        section = replace(section, external_recommendations=str(path))
    _baseline(section, where, [m.name for m in models])
    return section


def _baseline(section: EvaluationConfig, where: str, names: list[str]) -> None:
    """The named baseline must be evaluated: a configured model or an external list (a file's stem)."""
    if section.baseline is None or section.baseline in names:
        return
    external = []
    if section.external_recommendations is not None:
        external = [path.stem for path in table_files(section.external_recommendations)]
    if section.baseline not in external:
        lists = f" or external lists {external}" if section.external_recommendations is not None else ""
        raise ConfigError(
            f"{where}: evaluation.baseline: {section.baseline!r} is not among models {names}{lists}; "
            "name one of them or leave it null"
        )


def _execution(raw: dict[str, Any], where: str, storage: str) -> ExecutionConfig:
    section = _section(raw, "execution", ExecutionConfig, where)
    if section.executor not in EXECUTORS:
        raise ConfigError(
            f"{where}: execution.executor: unknown executor {section.executor!r}; expected one of {EXECUTORS}"
        )
    if section.executor != "in_process" and storage.startswith("memory://"):
        raise ConfigError(
            f"{where}: execution.executor: {section.executor} steps cannot share a memory:// storage "
            "(each process has its own); use in_process or a shared path or URL"
        )
    _integer(section.num_threads, where, "execution.num_threads", 0)
    if (section.executor == "celery") != (section.broker is not None):
        raise ConfigError(
            f"{where}: execution.broker: the celery executor needs a broker URL (e.g. redis://host:6379/0), "
            "and only it takes one"
        )
    if section.broker is not None:
        section = replace(section, broker=_broker(section.broker, where))
    value = section.max_concurrent
    if value is None:
        return section
    if section.executor != "multiprocess":
        raise ConfigError(f"{where}: execution.max_concurrent: only for execution.executor multiprocess")
    _integer(value, where, "execution.max_concurrent", 1)
    return section


_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _broker(value: Any, where: str) -> str:
    """``execution.broker``: a URL without a password, or ``${NAME}``, an environment variable holding the
    URL (with its password: the file then holds no secret). A URL is never shown in a message."""
    key = "execution.broker"
    if not isinstance(value, str):
        raise ConfigError(
            f"{where}: {key}: expected a URL such as redis://host:6379/0 or ${{{BROKER_ENV_VAR}}}"
        )
    reference = _ENV_REFERENCE.fullmatch(value.strip())
    if reference is not None:
        name = reference.group(1)
        url = os.environ.get(name, "").strip()
        if not url:
            raise ConfigError(
                f"{where}: {key}: environment variable {name} is not set; set it to the broker URL"
            )
        if "://" not in url:
            raise ConfigError(
                f"{where}: {key}: environment variable {name} does not hold a URL such as redis://host:6379/0"
            )
        return url
    if "://" not in value:
        raise ConfigError(
            f"{where}: {key}: expected a URL such as redis://host:6379/0 or ${{{BROKER_ENV_VAR}}}"
        )
    from urllib.parse import urlsplit

    try:
        password = urlsplit(value).password
    except ValueError:
        raise ConfigError(f"{where}: {key}: not a valid URL") from None
    if password:
        raise ConfigError(
            f"{where}: {key}: the URL holds a password in clear text; put the URL in the environment "
            f"variable {BROKER_ENV_VAR} and write `broker: ${{{BROKER_ENV_VAR}}}`"
        )
    return value


def _reject_unknown(values: dict[Any, Any], known: set[str], where: str, prefix: str) -> None:
    unknown = sorted(set(values) - known, key=str)
    if unknown:
        raise ConfigError(f"{where}: unknown key {prefix}{unknown[0]}; expected one of {sorted(known)}")


def _date(value: Any, where: str, key: str) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{where}: {key}: expected a date YYYY-MM-DD, got {value!r}") from None


def _models(value: Any, where: str) -> tuple[ModelSpec, ...]:
    if value == "all":
        return tuple(ModelSpec(name) for name in MODEL_NAMES)
    # `models:` left empty is a mistake, not a request for the defaults
    if not isinstance(value, list) or not value:
        raise ConfigError(
            f"{where}: models: expected a non-empty list of model names or 'all', got {value!r}"
        )
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
        if spec.name not in MODEL_NAMES:
            raise ConfigError(f"{where}: models: unknown model {spec.name!r}; known: {sorted(MODEL_NAMES)}")
        specs.append(spec)
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: models: a model is listed twice: {names}")
    return tuple(specs)


def _similar_items(raw: dict[str, Any], where: str, models: tuple[ModelSpec, ...]) -> SimilarItemsConfig:
    section = _section(raw, "similar_items", SimilarItemsConfig, where)
    _integer(section.n, where, "similar_items.n", 0)
    if section.model is not None and not isinstance(section.model, str):
        raise ConfigError(f"{where}: similar_items.model: expected a model name, got {section.model!r}")
    names = [m.name for m in models]
    if section.model is None:
        capable = [name for name in names if has_item_similarity(name)]
        return replace(section, model=capable[0] if capable else None)
    if section.model not in names:
        raise ConfigError(f"{where}: similar_items.model: {section.model!r} is not among models {names}")
    if not has_item_similarity(section.model):
        raise ConfigError(f"{where}: similar_items.model: {section.model!r} has no item similarity")
    return section


def _tuning(raw: dict[str, Any], where: str, models: tuple[ModelSpec, ...]) -> TuningConfig:
    section = _section(raw, "tuning", TuningConfig, where)
    _integer(section.trials, where, "tuning.trials", 0)
    names = [m.name for m in models]
    tuned = names if section.models == "all" else section.models
    if not isinstance(tuned, list | tuple) or not all(isinstance(name, str) for name in tuned):
        raise ConfigError(f"{where}: tuning.models: expected a list of model names or 'all'")
    unknown = [name for name in tuned if name not in names]
    if unknown:
        raise ConfigError(f"{where}: tuning.models: {unknown[0]!r} is not among models {names}")
    return replace(section, models=tuple(tuned))


def _privacy(raw: dict[str, Any], where: str) -> PrivacyConfig:
    """``privacy``: two flags; pseudonymising needs its key in the environment, checked here so that a run
    without it stops before any step."""
    section = _section(raw, "privacy", PrivacyConfig, where)
    for key in ("pseudonymise", "keep_raw"):
        if not isinstance(getattr(section, key), bool):
            raise ConfigError(
                f"{where}: privacy.{key}: expected true or false, got {getattr(section, key)!r}"
            )
    if section.pseudonymise and not os.environ.get(PSEUDONYM_KEY_ENV_VAR):
        raise ConfigError(
            f"{where}: privacy.pseudonymise is on but the environment variable {PSEUDONYM_KEY_ENV_VAR} (the "
            "pseudonym key) is not set"
        )
    return section


def _backtest(raw: dict[str, Any], where: str) -> BacktestConfig:
    section = _section(raw, "backtest", BacktestConfig, where)
    if section.every_days not in (1, 7) or isinstance(section.every_days, bool):
        raise ConfigError(
            f"{where}: backtest.every_days: expected 1 (daily cuts) or 7 (weekly cuts), got "
            f"{section.every_days!r}; `recpipeline backtest --every N` takes any multiple of it"
        )
    _integer(section.min_train_days, where, "backtest.min_train_days", 1)
    if not isinstance(section.warm_start, bool):
        raise ConfigError(f"{where}: backtest.warm_start: expected true or false, got {section.warm_start!r}")
    if section.max_epochs is not None:
        _integer(section.max_epochs, where, "backtest.max_epochs", 1)
    return section
