"""The run configuration: one YAML file shared by the CLI, the Dagster code location and the tests.

Without a file, the embedded default (``default_config.yaml`` in this package: synthetic data) is used.
The settings are pydantic models: each key's type, default, range and meaning is declared once, on its field
(the docstring under it); a rule that spans keys, or needs the file's folder or the environment, is a small
validator. Every problem is reported as a one-line ``ConfigError``: ``<file>: <dotted.key>: expected ...``.
"""

from __future__ import annotations

import datetime as dt
import glob
import os
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple, get_args, get_origin

import yaml
from annotated_types import Ge, Gt, Le, Lt
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from recpipeline.contracts import (
    EVENT_TYPES,
    MODEL_NAMES,
    VALUE_RANGE,
    has_item_similarity,
    headline_k,
    table_files,
)
from recpipeline.datasets import dataset_named_by, expand_data_location, missing_message

#: environment variable naming the configuration file the Dagster code location loads
CONFIG_ENV_VAR = "RECPIPELINE_CONFIG"
#: the pseudonym key (``privacy.pseudonymise``): read from the environment only, never written anywhere
PSEUDONYM_KEY_ENV_VAR = "RECPIPELINE_PSEUDONYM_KEY"
DEFAULT_CONFIG_PATH = Path(__file__).with_name("default_config.yaml")
#: execution.broker may name an environment variable instead of holding the URL: ${NAME}
BROKER_ENV_VAR = "RECPIPELINE_BROKER_URL"
BROKER_EXPECTED = f"a URL such as redis://host:6379/0 or ${{{BROKER_ENV_VAR}}}"


class SourceKind(NamedTuple):
    """A ``source.kind``: where its ``Source`` is built (``module:function`` taking the ``RunConfig``,
    imported by ``recpipeline.sources.open_source``) and the settings it takes besides ``kind``, the dates
    and ``session_gap_minutes``. A kind with a ``path`` reads files; one without generates its events."""

    constructor: str
    settings: frozenset[str]


#: every source kind: adding one is its module plus its line here
SOURCE_KINDS: dict[str, SourceKind] = {
    "synthetic": SourceKind("recpipeline.sources.synthetic:synthetic_source", frozenset({"synthetic"})),
    "files": SourceKind(
        "recpipeline.sources.files:files_source",
        frozenset({
            "path", "format", "options", "columns", "event_type_default", "event_types", "timezone",
            "timestamp_unit", "timestamp_format", "items", "users",
        }),
    ),
    "movielens": SourceKind("recpipeline.sources.movielens:movielens_source", frozenset({"path"})),
    "online_retail": SourceKind(
        "recpipeline.sources.online_retail:online_retail_source",
        frozenset({"path", "format", "options", "timezone"}),
    ),
}  # fmt: skip
#: the split kinds (``recpipeline.preparation.splitting.SPLIT_KINDS`` says what each does and needs)
SplitKindName = Literal["temporal", "predefined", "random", "stratified", "leave_last_out", "sessions"]
#: the settings of the split kind that reads its splits from files
SPLIT_FILES = ("train", "validation", "test")
FileFormat = Literal["csv", "parquet", "jsonl"]
FILE_FORMATS: tuple[str, ...] = get_args(FileFormat)
EventType = Literal[*EVENT_TYPES]
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
#: contract columns a `files` source maps; the first three are required
MappedColumn = Literal[
    "user_id", "item_id", "timestamp", "event_type", "value", "session_id", "time_offset", "anonymous_id"
]
MAPPED_COLUMNS: tuple[str, ...] = get_args(MappedColumn)
#: the id column each side table of a `files` source must map
SIDE_TABLE_IDS = {"items": "item_id", "users": "user_id"}
DEFAULT_EVENT_WEIGHTS = {"view": 1.0, "cart": 3.0, "purchase": 5.0, "rating": 1.0}
#: a number YAML 1.1 reads as text: an exponent without a decimal point or without a sign (1e-3, 1.0e3)
YAML_EXPONENT = r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+"


class ConfigError(ValueError):
    """A configuration problem, with the file and key in the message."""


class Invalid(ValueError):
    """A rule's refusal during validation: what is wrong with the value at the validated key, or at ``key``
    (dotted) below it; ``parse_config`` turns it into a ``ConfigError`` naming the file and the key."""

    def __init__(self, message: str, key: str = "") -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class Expected:
    """Field metadata: how an error message describes the setting's values, where its type says too little."""

    text: str
    hint: str = ""


def _as_tuple(value: Any) -> Any:
    """A YAML list as the tuple a setting holds."""
    return tuple(value) if isinstance(value, list) else value


def _text(value: Any) -> Any:
    """A column name or source value YAML read as an integer, as text (``1: view``)."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _context(info: ValidationInfo) -> Path | None:
    """The folder relative paths are resolved against; None outside ``parse_config``: paths stay as given."""
    return info.context.get("base_dir") if info.context else None


def _no_row_dropping(options: dict[str, Any]) -> dict[str, Any]:
    dropping = next((option for option in options if option in ROW_DROPPING_OPTIONS), None)
    if dropping is not None:
        raise Invalid(
            f"refused: it {ROW_DROPPING_OPTIONS[dropping]}, and every input row must be accounted for "
            "(cleaned, or quarantined with its reason); remove it, and fix or filter the file before the run "
            "if rows must go",
            str(dropping),
        )
    return options


def _time_zone(value: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid(f"unknown time zone {value!r}; expected an IANA name like Europe/London") from None
    return value


def _timestamp_format(value: str) -> str:
    """A strptime format with at least a year."""
    if "%" not in value:
        raise Invalid(f"expected a strptime format such as '%Y%m%d' or '%d/%m/%Y %H:%M', got {value!r}")
    try:
        dt.datetime(2026, 1, 10, 10, 0, tzinfo=dt.UTC).strftime(value)
    except ValueError as exc:
        raise Invalid(f"{exc} in {value!r}") from None
    if "%Y" not in value and "%y" not in value and "%G" not in value:
        raise Invalid(f"{value!r} has no year (%Y)")
    return value


def _folder(value: str, info: ValidationInfo) -> str:
    """A local folder that exists, made absolute."""
    base_dir = _context(info)
    if base_dir is None:
        return value
    path = Path(value).expanduser()
    path = (path if path.is_absolute() else base_dir / path).resolve()
    if not path.is_dir():
        raise Invalid(f"{path} is not a folder")
    return str(path)


def storage_root(value: str, base_dir: Path) -> str:
    """A storage root: an fsspec URL with a known protocol, or a local path (made absolute) in a folder this
    process may write to: it, or the nearest parent that exists (a run creates the rest)."""
    if not value.strip():
        raise Invalid(f"expected a local path or an fsspec URL, got {value!r}")
    if "://" in value:
        _check_url_protocol(value)
        return value.rstrip("/")
    if "\x00" in value:
        raise Invalid("path contains a NUL byte")
    path = Path(value).expanduser()
    path = (path if path.is_absolute() else base_dir / path).resolve()
    system = next((folder for folder in SYSTEM_FOLDERS if path.is_relative_to(folder)), None)
    if system is not None:
        raise Invalid(
            f"{path} is under {system}, a system folder, not a place for data; choose another storage path"
        )
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise Invalid(f"{existing} is a file, not a folder; choose another storage path")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise Invalid(f"cannot write in {existing}; choose a storage path you may write to")
    return str(path)


def _outside_inputs(storage: str, source: SourceConfig) -> None:
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
        raise Invalid(
            f"{storage} is inside the source folder {path}, whose files every run reads; choose a storage "
            "path outside it"
        )


def input_path(value: str, base_dir: Path | None) -> str:
    """An input file, glob or folder: an fsspec URL with a known protocol, or a local path that exists
    (made absolute, relative to ``base_dir``; None: left as given); a glob must match at least one file. A
    leading ``${RECPIPELINE_DATA}`` is the public datasets' location (``recpipeline datasets``)."""
    if not value.strip():
        raise Invalid(f"expected a file, glob or folder path (or URL), got {value!r}")
    if "://" in value:
        _check_url_protocol(value)
        return value
    if base_dir is None:
        return value
    dataset = dataset_named_by(value)
    path = Path(expand_data_location(value)).expanduser()
    path = path if path.is_absolute() else base_dir / path
    if any(char in value for char in "*?["):
        if not glob.glob(str(path), recursive=True):
            raise Invalid(f"no file matches {path}")
        return str(path)
    if not path.exists():
        raise Invalid(
            missing_message(dataset) if dataset is not None else f"no such file or folder: {path.resolve()}"
        )
    return str(path.resolve())


def _check_url_protocol(value: str) -> None:
    import fsspec

    protocol = value.split("://", 1)[0]
    try:
        fsspec.get_filesystem_class(protocol)
    except (ValueError, ImportError) as exc:
        raise Invalid(f"unsupported URL protocol {protocol!r} ({exc})") from None


_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def broker_url(value: str) -> str:
    """``execution.broker``: a URL without a password, or ``${NAME}``, an environment variable holding the
    URL (with its password: the file then holds no secret). A URL is never shown in a message."""
    reference = _ENV_REFERENCE.fullmatch(value.strip())
    if reference is not None:
        name = reference.group(1)
        url = os.environ.get(name, "").strip()
        if not url:
            raise Invalid(f"environment variable {name} is not set; set it to the broker URL")
        if "://" not in url:
            raise Invalid(f"environment variable {name} does not hold a URL such as redis://host:6379/0")
        return url
    if "://" not in value:
        raise Invalid(f"expected {BROKER_EXPECTED}")
    from urllib.parse import urlsplit

    try:
        password = urlsplit(value).password
    except ValueError:
        raise Invalid("not a valid URL") from None
    if password:
        raise Invalid(
            "the URL holds a password in clear text; put the URL in the environment variable "
            f"{BROKER_ENV_VAR} and write `broker: ${{{BROKER_ENV_VAR}}}`"
        )
    return value


Text = Annotated[str, BeforeValidator(_text)]
ColumnName = Annotated[str, BeforeValidator(_text), Expected("a source column name")]
ReaderOptions = Annotated[dict[str, Any], AfterValidator(_no_row_dropping)]
InputPath = Annotated[
    str, AfterValidator(lambda value, info: input_path(value, _context(info))),
    Expected("a file, glob or folder path (or URL)"),
]  # fmt: skip
IsoDate = Annotated[
    dt.date, BeforeValidator(lambda v: dt.date.fromisoformat(v) if isinstance(v, str) else v),
    Expected("a date YYYY-MM-DD"),
]  # fmt: skip
Share = Annotated[float, Field(gt=0, lt=1)]


class Settings(BaseModel):
    """A section of settings: immutable, strict (``true`` is not 1, ``"0.5"`` not a number), no unknown keys;
    the docstring under each field is its description."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, use_attribute_docstrings=True)


class TableConfig(Settings):
    """A side table (items or users) of a `files` source, read like the events, with its own mapping."""

    path: InputPath
    """file, glob or folder (relative to the configuration file) or an fsspec URL"""
    format: FileFormat | None = None
    """csv | parquet | jsonl; null: from the file suffix"""
    options: ReaderOptions = {}
    """passed to the reader (sep, encoding, ...)"""
    columns: dict[str, ColumnName | None] = {}
    """contract name -> source column (items: item_id, title, category, brand, price; users: user_id);
    unmapped source columns come along as attributes under their own names"""


class SourceConfig(Settings):
    """Where events come from (``SOURCE_KINDS``: which settings each kind takes) and the partition window."""

    kind: str = "synthetic"
    """synthetic | files | movielens | online_retail"""
    path: InputPath | None = None
    """file, glob or folder; a local path (made absolute, relative to the config file) or an fsspec URL"""
    start_date: IsoDate | None = None
    """first daily partition; null: the generator's first day (file kinds: the data's first day)"""
    end_date: IsoDate | None = None
    """inclusive; null: synthetic: up to yesterday (a live feed), file kinds: the data's last day"""
    synthetic: dict[str, Any] = {}
    """synthetic: overrides of recpipeline.sources.synthetic.SyntheticSpec fields"""
    format: FileFormat | None = None
    """csv | parquet | jsonl; null: from the file suffix"""
    options: ReaderOptions = {}
    """passed to the reader (sep, encoding, ...)"""
    columns: dict[MappedColumn, ColumnName | None] = {}
    """files: contract name -> source column; user_id, item_id and timestamp are required"""
    event_type_default: EventType | None = None
    """files: every row's event type when no event_type column is mapped"""
    event_types: dict[Text, EventType] = {}
    """files: source value -> contract event type"""
    timezone: Annotated[str, AfterValidator(_time_zone)] | None = None
    """of naive timestamps; null: UTC (online_retail: Europe/London)"""
    timestamp_unit: Literal["auto", "s", "ms", "us", "ns", "iso"] = "auto"
    """files: auto | s | ms | us | ns | iso"""
    timestamp_format: Annotated[str, AfterValidator(_timestamp_format)] | None = None
    """files: a strptime format of the timestamps (e.g. %Y%m%d for compact dates) instead of timestamp_unit"""
    items: TableConfig | None = None
    """files: the item catalogue's table"""
    users: TableConfig | None = None
    """files: the user profiles' table"""
    session_gap_minutes: Annotated[float, Field(gt=0, lt=1e9)] = 30.0
    """events of a user without a session id further apart than this start a new session"""

    @model_validator(mode="before")
    @classmethod
    def _kind_settings(cls, values: Any) -> Any:
        if not isinstance(values, dict):
            return values  # the type error names it
        kind = values.get("kind", "synthetic")
        if kind not in tuple(SOURCE_KINDS):
            raise Invalid(f"expected one of {tuple(SOURCE_KINDS)}, got {_shown(kind)}", "kind")
        allowed = SOURCE_KINDS[kind].settings
        extra = sorted(
            set(values) - allowed - {"kind", "start_date", "end_date", "session_gap_minutes"}, key=str
        )
        if extra:
            raise Invalid(f"not a setting of kind {kind!r}; it takes {sorted(allowed)}", str(extra[0]))
        return values

    @field_validator("columns")
    @classmethod
    def _unmapped(cls, value: dict[str, str | None]) -> dict[str, str]:
        # null: the source has no such column (a required one is then missing)
        return {name: column for name, column in value.items() if column is not None}

    @model_validator(mode="after")
    def _kind_rules(self) -> SourceConfig:
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise Invalid(f"{self.end_date} is before start_date {self.start_date}", "end_date")
        reads_files = "path" in SOURCE_KINDS[self.kind].settings
        # a generated source without end_date runs up to yesterday; a file source's last day is checked when
        # it is read
        end = self.end_date or (None if reads_files else dt.date.today() - dt.timedelta(days=1))
        if self.start_date and end and (end - self.start_date).days >= MAX_SOURCE_DAYS:
            raise Invalid(
                f"{self.start_date} is {(end - self.start_date).days + 1} daily partitions before {end} (at "
                f"most {MAX_SOURCE_DAYS}, twenty years); set it near the data's first day",
                "start_date",
            )
        if reads_files and self.path is None:
            raise Invalid(f"kind {self.kind!r} needs the path of its data", "path")
        if "columns" not in SOURCE_KINDS[self.kind].settings:
            return self
        # a kind that maps its columns: the mapping and the side tables
        if self.timestamp_format is not None and self.timestamp_unit != "auto":
            raise Invalid(
                f"give timestamp_format or timestamp_unit ({self.timestamp_unit!r}), not both",
                "timestamp_format",
            )
        for name in MAPPED_COLUMNS[:3]:
            _required_column(self.columns, name, "columns")
        mapped_type = self.columns.get("event_type") is not None
        if mapped_type == (self.event_type_default is not None):
            raise Invalid(
                "map the event type column (columns.event_type) or give event_type_default for a log of a "
                "single kind -- exactly one of the two"
            )
        if self.event_types and not mapped_type:
            raise Invalid("expected a mapping, used with columns.event_type", "event_types")
        for name, table in (("items", self.items), ("users", self.users)):
            if table is not None:
                _required_column(table.columns, SIDE_TABLE_IDS[name], f"{name}.columns")
        return self


def _required_column(columns: dict[str, str | None], name: str, key: str) -> None:
    if columns.get(name) is None:
        raise Invalid("required; name the source column that holds it", f"{key}.{name}")


class CleaningConfig(Settings):
    max_quarantine_share: Annotated[float, Field(ge=0, le=1)] = 0.1
    """the quarantine check fails a partition above this share"""
    value_range: Annotated[
        tuple[Annotated[float, Field(ge=-1e30, le=1e30)], Annotated[float, Field(ge=-1e30, le=1e30)]],
        BeforeValidator(_as_tuple),
        Expected("[min, max]: two numbers in [-1e+30, 1e+30]"),
    ] = VALUE_RANGE
    """[min, max] of event values (ratings, quantities); a value outside is quarantined as bad_value"""

    @field_validator("value_range")
    @classmethod
    def _ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        if value[0] > value[1]:
            raise Invalid(f"min {value[0]!r} is above max {value[1]!r}")
        return value


class PrivacyConfig(Settings):
    """What of the users' identity the warehouse keeps."""

    pseudonymise: bool = False
    """replace user ids at cleaning by a keyed hash (HMAC-SHA256 under $RECPIPELINE_PSEUDONYM_KEY), so no raw
    user id reaches any table after raw_events (user_profiles included)"""
    keep_raw: bool = True
    """false: each raw_events partition file is deleted once its rows are cleaned (the row accounting stays in
    the cleaning metadata)"""

    @field_validator("pseudonymise")
    @classmethod
    def _key_is_set(cls, value: bool) -> bool:
        # checked here so that a run without the key stops before any step
        if value and not os.environ.get(PSEUDONYM_KEY_ENV_VAR):
            raise Invalid(
                f"on, but the environment variable {PSEUDONYM_KEY_ENV_VAR} (the pseudonym key) is not set"
            )
        return value


class PreparationConfig(Settings):
    """k-core filtering of the interactions, iterated until every user and item meets both minimums."""

    min_user_interactions: Annotated[int, Field(ge=1)] = 1
    """users with fewer distinct items are removed (1: no filtering)"""
    min_item_interactions: Annotated[int, Field(ge=1)] = 1
    """items with fewer distinct users are removed (1: no filtering)"""


class SplitConfig(Settings):
    kind: SplitKindName = "temporal"
    """temporal | predefined | random | stratified | leave_last_out | sessions"""
    validation_days: Annotated[int, Field(ge=1)] = 7
    """temporal, sessions: the last test_days whole days are test, the validation_days before them
    validation"""
    test_days: Annotated[int, Field(ge=1)] = 7
    """temporal, sessions: days of the test window"""
    test_ratio: Share = 0.2
    """random: share of all interactions to test; stratified: share of each user's (or item's)"""
    validation_ratio: Share = 0.1
    """random, stratified: the share of what remains after test that goes to validation"""
    stratify_by: Literal["user", "item"] = "user"
    """stratified: user (each user's interactions split by the ratios) or item"""
    leave_last: Annotated[int, Field(ge=1)] = 1
    """leave_last_out: each user's last n interactions by time to test, the n before them to validation"""
    train: InputPath | None = None
    """predefined: the train file, read with the source's settings"""
    validation: InputPath | None = None
    """predefined: the validation file; null: 10 % of each user's train, drawn by validation_rule"""
    test: InputPath | None = None
    """predefined: the test file"""
    validation_rule: Literal["auto", "latest", "random"] = "auto"
    """predefined without a validation file: each user's latest 10 % of train (latest), a seeded random 10 %
    (random), or the rule the test file follows (auto: random when most test events are older than the
    same user's latest train event)"""

    @model_validator(mode="before")
    @classmethod
    def _files_only_for_predefined(cls, values: Any) -> Any:
        if isinstance(values, dict) and values.get("kind", "temporal") != "predefined":
            given = [key for key in SPLIT_FILES if values.get(key) is not None]
            if values.get("validation_rule", "auto") != "auto":
                given.append("validation_rule")
            if given:
                raise Invalid("only for split.kind predefined", given[0])
        if (
            isinstance(values, dict)
            and values.get("validation") is not None
            and values.get("validation_rule", "auto") != "auto"
        ):
            raise Invalid("only without split.validation (the file is the validation)", "validation_rule")
        return values


class EvaluationConfig(Settings):
    cold_max_interactions: Annotated[int, Field(ge=0)] = 5
    """users with 1..cold_max_interactions train + validation interactions are `cold`, more are `warm`"""
    baseline: Annotated[str | None, Expected("a model name")] = None
    """model every other is tested against; null: the best non-neural model by ndcg@k on `all`"""
    bootstrap_samples: Annotated[int, Field(ge=1, le=MAX_BOOTSTRAP_SAMPLES)] = 1000
    """resamples of the paired bootstrap confidence intervals"""
    alpha: Share = 0.05
    """family-wise error rate of the Holm-corrected significance tests"""
    regression_tolerance: Share = 0.1
    """the regression check fails when ndcg@k drops more than this share below its recent median"""
    history_runs: Annotated[int, Field(ge=1)] = 7
    """the regression check's median is over the last this many runs"""
    external_recommendations: Annotated[str, AfterValidator(_folder), Expected("a folder path")] | None = None
    """folder of <name>.csv / <name>.parquet top-K lists evaluated as extra models (made absolute)"""
    refit: bool = True
    """choose hyperparameters and epochs on validation, then refit every model on train + validation with
    those choices before it recommends for test; false: models fitted on train only recommend for test"""
    min_segment_users: Annotated[int, Field(ge=0)] = 30
    """segments with fewer evaluated users are shown but flagged, and left out of significance"""
    validation_users: Annotated[int, Field(ge=1)] = 5000
    """early stopping and tuning score at most this many validation users: above it, one sample drawn with
    `seed`, the same for every epoch, trial and model (test metrics always use every test user)"""
    relevant_event_types: (
        Annotated[
            tuple[EventType, ...],
            BeforeValidator(_as_tuple),
            Field(min_length=1),
            Expected(f"a non-empty list of {EVENT_TYPES} or null"),
        ]
        | None
    ) = None
    """event types whose test interactions count as relevant (null: every type)"""
    min_rating: Annotated[float, Field(ge=-1e30, le=1e30)] | None = None
    """rating events below this value are not relevant (null: every rating)"""
    session_targets: Literal["next", "rest"] = "next"
    """split.kind sessions: each prefix's target is the next item (next) or every remaining item (rest)"""
    session_recommend_seen: bool = True
    """split.kind sessions: items already in the prefix may be recommended (shoppers return to them)"""


class ModelSpec(Settings):
    name: str
    params: dict[str, Any] = {}


class SimilarItemsConfig(Settings):
    model: Annotated[str | None, Expected("a model name")] = None
    """model whose item similarity feeds the similar_items asset; null: the first configured model that has
    one (no asset when none has)"""
    n: Annotated[int, Field(ge=0)] = 20
    """neighbours per item; 0 turns the asset off"""


class ExplanationsConfig(Settings):
    """The explanations asset: why each model recommended each item, for a seeded sample of test users."""

    users: Annotated[int, Field(ge=0)] = 200
    """test users sampled (the run's seed); 0 turns the asset off"""
    reasons: Annotated[int, Field(ge=1)] = 3
    """history items named per recommended item"""


class TuningConfig(Settings):
    trials: Annotated[int, Field(ge=0)] = 0
    """candidate parameter sets per tuned model (the first is the configured one); 0 = no tuning"""
    models: Annotated[
        tuple[str, ...], BeforeValidator(_as_tuple), Expected("a list of model names or 'all'")
    ] = ()
    """models to tune (names from `models`), or all of them"""
    trial_epochs: Annotated[int, Field(ge=1)] | None = None
    """a trial's budget: a torch model's trials after the first (the configured parameters) train at most
    this many epochs and are compared within them; a winner is then fitted with its own epochs and kept only
    if it beats the configured parameters; null: every trial trains the model's own epochs"""


class BacktestConfig(Settings):
    """Rolling-origin backtests (split.kind temporal): the training-and-evaluation chain repeated at cut
    dates, each the last day before its test window of split.test_days."""

    every_days: Annotated[
        int,
        Expected(
            "1 (daily cuts) or 7 (weekly cuts)", "; `recpipeline backtest --every N` takes any multiple of it"
        ),
    ] = 7
    """days between cut dates, and so between the cut partitions: 1 (daily) or 7 (weekly, on the first
    cut's weekday); `recpipeline backtest --every` may take any multiple of it"""
    min_train_days: Annotated[int, Field(ge=1)] = 14
    """days of training data the first cut keeps before its validation window"""
    warm_start: bool = True
    """torch models continue from the previous cut's weights of the same settings (validation fit from its
    validation fit, final fit from its final fit); false: every cut starts cold"""
    max_epochs: Annotated[int, Field(ge=1)] | None = None
    """the nightly budget: at most this many epochs per torch model and cut; null: the models' own"""

    @field_validator("every_days")
    @classmethod
    def _daily_or_weekly(cls, value: int) -> int:
        if value not in (1, 7):
            raise ValueError(value)  # described by the field's Expected
        return value


class ExecutionConfig(Settings):
    """Which Dagster executor runs a job's steps."""

    executor: Literal["in_process", "multiprocess", "celery"] = "in_process"
    """in_process: every step in the run's process; multiprocess: one process per step; celery: every step a
    task of dagster-celery's workers (the `cluster` extra). Both need a persistent instance and a
    configuration file, which every step process loads again"""
    max_concurrent: Annotated[int, Field(ge=1)] | None = None
    """multiprocess: at most this many step processes at once; null: Dagster's default (the CPU count)"""
    broker: Annotated[str, AfterValidator(broker_url), Expected(BROKER_EXPECTED)] | None = None
    """celery: the broker URL (e.g. redis://host:6379/0), also the result backend, or ${NAME}: the
    environment variable holding it"""
    num_threads: Annotated[int, Field(ge=0)] = 0
    """torch threads of every neural model step, overriding the models' own; 0 = auto: the cores the
    process may use (affinity, cgroup quota) divided by the steps running at once (model fits: at most the
    training pool's limit of them)"""

    @model_validator(mode="after")
    def _executor_settings(self) -> ExecutionConfig:
        if (self.executor == "celery") != (self.broker is not None):
            raise Invalid(
                "the celery executor needs a broker URL (e.g. redis://host:6379/0), and only it takes one",
                "broker",
            )
        if self.max_concurrent is not None and self.executor != "multiprocess":
            raise Invalid("only for execution.executor multiprocess", "max_concurrent")
        return self


class RunConfig(Settings):
    """Every setting of a run. These defaults are the embedded ``default_config.yaml`` (a test holds the two
    equal), so a run without a configuration file uses exactly these values. A field validator here that
    reads ``info.data`` checks the field against sections declared before it."""

    source: SourceConfig = SourceConfig(start_date=dt.date(2026, 10, 1), end_date=dt.date(2026, 10, 28))
    """where events come from; without a `source` section four weeks of the synthetic shop, while a section
    that leaves out its dates means up to yesterday (synthetic) or the data's days (files)"""
    cleaning: CleaningConfig = CleaningConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    preparation: PreparationConfig = PreparationConfig()
    split: SplitConfig = SplitConfig()
    event_weights: Annotated[
        dict[EventType, Annotated[float, Field(ge=0, le=MAX_EVENT_WEIGHT)]],
        BeforeValidator(
            lambda value: {**DEFAULT_EVENT_WEIGHTS, **value} if isinstance(value, dict) else value
        ),
    ] = DEFAULT_EVENT_WEIGHTS
    """interaction weight per event type (ratings are additionally multiplied by the rating value); a type
    left out keeps its default"""
    models: Annotated[tuple[ModelSpec, ...], BeforeValidator(lambda value: _model_specs(value))] = (
        ModelSpec(name="popularity"),
        ModelSpec(name="recent_popularity"),
        ModelSpec(name="als"),
        ModelSpec(name="mult_vae", params={"epochs": 50, "batch_size": 500, "patience": 5}),
    )
    """names from the model registry, each with optional hyperparameters, or `all`; by default Mult-VAE has a
    nightly budget (its class defaults follow the paper: 200 epochs of batch 100)"""
    similar_items: Annotated[SimilarItemsConfig, Field(validate_default=True)] = SimilarItemsConfig()
    explanations: ExplanationsConfig = ExplanationsConfig()
    tuning: TuningConfig = TuningConfig()
    backtest: BacktestConfig = BacktestConfig()
    ks: Annotated[
        tuple[Annotated[int, Field(ge=1, le=MAX_K)], ...],
        BeforeValidator(lambda value: tuple(value) if isinstance(value, list) else (value,)),
        AfterValidator(lambda value: tuple(sorted(set(value)))),
        Field(alias="k", min_length=1),
        Expected(f"a positive integer (at most {MAX_K:,}) or a list of them"),
    ] = (10,)
    """every cut-off metrics are reported at: one or a list (kept ascending); the largest is the length of
    every top-K list and the headline cut-off (ndcg@k)"""
    evaluation: EvaluationConfig = EvaluationConfig()
    seed: Annotated[int, Field(ge=0)] = 42
    """every random choice of a run (same inputs and seed give the same metrics)"""
    storage: Annotated[str, Field(validate_default=True), Expected("a local path or an fsspec URL")] = (
        "data/warehouse"
    )
    """the root every table, model artefact and the report are written under: a folder you may write to
    (created as needed; relative to the configuration file) or an fsspec URL"""
    execution: ExecutionConfig = ExecutionConfig()
    config_file: str = "<default>"
    """the file the settings were read from (not a key of it)"""

    @property
    def model_names(self) -> list[str]:
        return [m.name for m in self.models]

    @property
    def k(self) -> int:
        """The one cut-off where one is needed (``headline_k``): the length of every top-K list, the headline
        ndcg@k."""
        return headline_k(self.ks)

    @model_validator(mode="before")
    @classmethod
    def _empty_sections(cls, values: Any) -> Any:
        """A section left empty (``cleaning:`` alone in YAML) takes every default, as if left out; an empty
        `models:` is a mistake, not a request for the defaults."""
        if not isinstance(values, dict):
            return values
        sections = {name for name, field in cls.model_fields.items() if _is_section(field.annotation)}
        return {
            key: value
            for key, value in values.items()
            if value is not None or key not in sections | {"event_weights"}
        }

    @field_validator("split")
    @classmethod
    def _files_of_a_predefined_split(cls, split: SplitConfig, info: ValidationInfo) -> SplitConfig:
        if split.kind != "predefined" or "source" not in info.data:
            return split
        if "path" not in SOURCE_KINDS[info.data["source"].kind].settings:
            raise Invalid("predefined split files need a file source, not synthetic", "kind")
        for key in ("train", "test"):
            if getattr(split, key) is None:
                raise Invalid(f"a predefined split needs its {key} file", key)
        return split

    @field_validator("event_weights")
    @classmethod
    def _some_weight(cls, weights: dict[str, float]) -> dict[str, float]:
        if not any(weights.values()):
            raise Invalid(
                "every weight is 0, so no interaction counts and every model ties; give at least one event "
                "type a positive weight"
            )
        return weights

    @field_validator("similar_items")
    @classmethod
    def _similar_items_model(cls, section: SimilarItemsConfig, info: ValidationInfo) -> SimilarItemsConfig:
        if "models" not in info.data:
            return section
        names = [m.name for m in info.data["models"]]
        if section.model is None:
            capable = [name for name in names if has_item_similarity(name)]
            return section.model_copy(update={"model": capable[0] if capable else None})
        if section.model not in names:
            raise Invalid(f"{section.model!r} is not among models {names}", "model")
        if not has_item_similarity(section.model):
            raise Invalid(f"{section.model!r} has no item similarity", "model")
        return section

    @field_validator("tuning", mode="before")
    @classmethod
    def _tune_all(cls, section: Any, info: ValidationInfo) -> Any:
        if isinstance(section, dict) and section.get("models") == "all" and "models" in info.data:
            return {**section, "models": [m.name for m in info.data["models"]]}
        return section

    @field_validator("tuning")
    @classmethod
    def _tuned_models(cls, section: TuningConfig, info: ValidationInfo) -> TuningConfig:
        if "models" not in info.data:
            return section
        names = [m.name for m in info.data["models"]]
        unknown = [name for name in section.models if name not in names]
        if unknown:
            raise Invalid(f"{unknown[0]!r} is not among models {names}", "models")
        return section

    @field_validator("evaluation")
    @classmethod
    def _evaluated(cls, section: EvaluationConfig, info: ValidationInfo) -> EvaluationConfig:
        weights = info.data.get("event_weights", DEFAULT_EVENT_WEIGHTS)
        if section.min_rating is not None and weights["rating"] == 0:
            raise Invalid(
                "ratings are read back from the interaction weight, which event_weights.rating 0 erases; "
                "give ratings a positive weight or leave min_rating null",
                "min_rating",
            )
        if section.baseline is None or "models" not in info.data:
            return section
        # the baseline must be evaluated: a configured model or an external list (a file's stem)
        names = [m.name for m in info.data["models"]]
        folder = section.external_recommendations
        external = [path.stem for path in table_files(folder)] if folder is not None else []
        if section.baseline not in names + external:
            lists = f" or external lists {external}" if folder is not None else ""
            raise Invalid(
                f"{section.baseline!r} is not among models {names}{lists}; name one of them or leave it null",
                "baseline",
            )
        return section

    @field_validator("storage")
    @classmethod
    def _storage(cls, value: str, info: ValidationInfo) -> str:
        base_dir = _context(info)
        if base_dir is None:
            return value
        storage = storage_root(value, base_dir)
        if "source" in info.data:
            _outside_inputs(storage, info.data["source"])
        return storage

    @field_validator("execution")
    @classmethod
    def _shared_storage(cls, section: ExecutionConfig, info: ValidationInfo) -> ExecutionConfig:
        if section.executor != "in_process" and info.data.get("storage", "").startswith("memory://"):
            raise Invalid(
                f"{section.executor} steps cannot share a memory:// storage (each process has its own); use "
                "in_process or a shared path or URL",
                "executor",
            )
        return section


def _model_specs(value: Any) -> Any:
    """``models``: `all`, or a non-empty list of names and ``{name: {hyperparameters}}``, each once."""
    if value == "all":
        return tuple(ModelSpec(name=name) for name in MODEL_NAMES)
    if not isinstance(value, list | tuple) or not value:
        raise Invalid(f"expected a non-empty list of model names or 'all', got {_shown(value)}")
    specs = []
    for entry in value:
        if isinstance(entry, ModelSpec):
            spec = entry
        elif isinstance(entry, str):
            spec = ModelSpec(name=entry)
        elif isinstance(entry, dict) and len(entry) == 1:
            name, params = next(iter(entry.items()))
            if params is not None and not isinstance(params, dict):
                raise Invalid("expected a mapping of hyperparameters", str(name))
            spec = ModelSpec(name=str(name), params=dict(params or {}))
        else:
            raise Invalid(f"expected a name or {{name: {{params}}}}, got {_shown(entry)}")
        if spec.name not in MODEL_NAMES:
            raise Invalid(f"unknown model {spec.name!r}; known: {sorted(MODEL_NAMES)}")
        specs.append(spec)
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise Invalid(f"a model is listed twice: {names}")
    return tuple(specs)


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
    """Validate a configuration mapping into a ``RunConfig``; a key left out takes RunConfig's default.
    Relative paths are resolved against ``base_dir`` (default: the working directory)."""
    if "config_file" in raw:  # a field, but not a key of the file
        raise ConfigError(f"{source_name}: {_unknown_key(['config_file'])}")
    try:
        config = RunConfig.model_validate(raw, context={"base_dir": base_dir or Path.cwd()})
    except ValidationError as exc:
        raise ConfigError(f"{source_name}: {_problem(exc.errors()[0])}") from None
    return config.model_copy(update={"config_file": source_name})


# --- pydantic's errors as one line naming the key


def _problem(error: Any) -> str:
    """One of pydantic's errors as ``<dotted.key>: what was expected, got what``."""
    loc = [part for part in error["loc"] if isinstance(part, str)]
    if loc and loc[-1] == "[key]":  # a key of a mapping with known keys (event_weights, source.columns)
        loc = loc[:-1]
        key_type = get_args(_setting(loc[:-1])[0])[0]
        return f"unknown key {'.'.join(loc)}; expected one of {sorted(get_args(key_type))}"
    if error["type"] == "extra_forbidden":
        return _unknown_key(loc)
    if error["type"] == "missing":
        return _keyed(loc, "required")
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, Invalid):
        return _keyed([*loc, cause.key] if cause.key else loc, str(cause))
    return _keyed(loc, _expected(*_setting(loc), error["input"]))


def _unknown_key(loc: list[str]) -> str:
    model = _setting(loc[:-1])[0]
    known = {field.alias or name for name, field in model.model_fields.items()} - {"config_file"}
    return f"unknown key {'.'.join(loc)}; expected one of {sorted(known)}"


def _keyed(loc: list[str], text: str) -> str:
    return f"{'.'.join(loc)}: {text}" if loc else text


def _setting(loc: list[str]) -> tuple[Any, list[Any]]:
    """The type at ``loc`` (field names or aliases, mapping keys) below RunConfig, and its metadata."""
    annotation, metadata = _unwrap(RunConfig)
    for part in loc:
        if _is_section(annotation):
            fields = {field.alias or name: field for name, field in annotation.model_fields.items()}
            annotation, metadata = _unwrap(fields[part].annotation, list(fields[part].metadata))
        elif get_origin(annotation) is dict:
            annotation, metadata = _unwrap(get_args(annotation)[1])
    return annotation, metadata


def _unwrap(annotation: Any, metadata: list[Any] | None = None) -> tuple[Any, list[Any]]:
    """``annotation`` without ``Annotated`` (its metadata collected) and without ``| None``."""
    metadata = list(metadata or [])
    while True:
        if hasattr(annotation, "__metadata__"):
            # constraints inside the type (Annotated[int, Field(ge=1)] | None) sit in a FieldInfo
            metadata += [m for extra in annotation.__metadata__ for m in getattr(extra, "metadata", [extra])]
            annotation = annotation.__origin__
        elif get_origin(annotation) in (types.UnionType, typing.Union):
            annotation = next(arg for arg in get_args(annotation) if arg is not type(None))
        else:
            return annotation, metadata


def _is_section(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _expected(annotation: Any, metadata: list[Any], value: Any) -> str:
    """What a setting of this type and metadata holds, as ``expected ..., got ...``."""
    got, hint = _shown(value), ""
    marker = next((m for m in metadata if isinstance(m, Expected)), None)
    low = next(((m.ge, "[", ">=") for m in metadata if isinstance(m, Ge)), None)
    low = low or next(((m.gt, "(", ">") for m in metadata if isinstance(m, Gt)), None)
    high = next(((m.le, "]") for m in metadata if isinstance(m, Le)), None)
    high = high or next(((m.lt, ")") for m in metadata if isinstance(m, Lt)), None)
    if marker is not None:
        noun, hint = marker.text, marker.hint
    elif annotation is bool:
        noun = "true or false"
    elif annotation is int:
        noun = "an integer" + (
            "" if low is None else f" {low[2]} {low[0]}" if high is None else f" in [{low[0]}, {high[0]:,}]"
        )
        if isinstance(value, str) and re.fullmatch(YAML_EXPONENT, value.strip()):
            hint = "; YAML reads an exponent as text: write the integer out"
    elif annotation is float:
        bounds = f" {low[2]} {low[0]:g}" if low and not high else ""
        noun = "a number" + (f" in {low[1]}{low[0]:g}, {high[0]:g}{high[1]}" if low and high else bounds)
    elif get_origin(annotation) is Literal:
        noun = f"one of {get_args(annotation)}"
    elif annotation is str:
        noun = "text"
    elif _is_section(annotation) or get_origin(annotation) is dict:
        noun, got = "a mapping", f"{type(value).__name__} {got}"
    else:
        noun = "a list"
    return f"expected {noun}, got {got}{hint}"


def settings_reference() -> str:
    """Every key as a Markdown table (key, default, meaning) from the fields: ``docs/configuration.md``
    holds it, and a test keeps the two equal."""
    rows = ["| key | default | meaning |", "|---|---|---|"]

    def plain(value: Any) -> Any:  # as the YAML file writes it
        if isinstance(value, ModelSpec):
            return {value.name: value.params} if value.params else value.name
        return [plain(item) for item in value] if isinstance(value, tuple) else value

    def shown(value: Any) -> str:
        text = yaml.safe_dump(plain(value), default_flow_style=True, width=1000).removesuffix("...\n")
        return f"`{text.strip()}`".replace("|", "\\|")

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, field in model.model_fields.items():
            key, section = prefix + (field.alias or name), _unwrap(field.annotation)[0]
            if _is_section(section):
                walk(section, f"{key}.")
            elif name != "config_file":
                meaning = " ".join((field.description or "").split()).replace("|", "\\|")
                default = (
                    "required" if field.is_required() else shown(field.get_default(call_default_factory=True))
                )
                rows.append(f"| `{key}` | {default} | {meaning} |")

    walk(RunConfig, "")
    return "\n".join(rows)
