"""A corpus of bad configurations (issue #27), each loaded as the CLI and the code location load them.

Every case either ends in one ``ConfigError`` line naming the file and the key (or line) and what to do,
or parses to what the file says. ``{data}`` in a case's text is a small events file, ``{folder}`` its
folder; configuration text is written to ``settings.yaml`` (bytes as given) and read with ``load_config``.
Model hyperparameters are also checked with ``validate_models``, as ``build_definitions`` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from recpipeline.config import BROKER_ENV_VAR, ConfigError, RunConfig, load_config
from recpipeline.fitting.checks import validate_models

SOURCE = (
    "source:\n  kind: files\n  path: {data}\n  event_type_default: view\n"
    "  columns: {user_id: user_id, item_id: item_id, timestamp: timestamp}\n"
)
BOMB = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(f"{n}: &{n} [{','.join(['*' + p] * 9)}]" for p, n in zip("abcdefg", "bcdefgh", strict=True)),
        "seed: *h",
    ]
)


@dataclass(frozen=True)
class Bad:
    """Configuration text (str: written as UTF-8; bytes: as given) and the words the error must hold;
    no words: it must parse (and ``check`` holds on the result)."""

    text: str | bytes
    words: tuple[str, ...] = ()
    check: object = None  # RunConfig -> bool, for cases that parse
    env: tuple[tuple[str, str], ...] = ()


def models(entry: str) -> str:
    return f"models:\n  - {entry}\n"


CASES: dict[str, Bad] = {
    # --- the file itself
    "alias_bomb_under_seed": Bad(BOMB, ("aliases", "expand")),
    "over_a_hundred_aliases": Bad("a: &a 1\nb: [" + ", ".join(["*a"] * 101) + "]\n", ("line 2", "aliases")),
    "duplicate_top_level_key": Bad("seed: 1\nk: 5\nseed: 2\n", ("line 3", "'seed'", "twice", "line 1")),
    "duplicate_nested_key": Bad("split:\n  kind: random\n  kind: temporal\n", ("line 3", "'kind'", "twice")),
    "duplicate_key_in_flow_mapping": Bad("event_weights: {view: 1, view: 2}\n", ("'view'", "twice")),
    "empty_file": Bad("", ("empty", "--config")),
    "only_comments": Bad("# to do\n\n", ("empty",)),
    "latin1_file": Bad("seed: 1 # café\n".encode("latin-1"), ("not UTF-8", "line 1", "UTF-8")),
    "latin1_on_line_3": Bad("seed: 1\nk: 5\n# né\n".encode("latin-1"), ("line 3", "byte 16")),
    "utf16_with_bom_parses": Bad("seed: 7\n".encode("utf-16"), check=lambda c: c.seed == 7),
    "utf8_bom_parses": Bad("\ufeffseed: 8\n", check=lambda c: c.seed == 8),
    "merge_keys_are_not_duplicates": Bad(
        "base: &b {view: 2.0}\n", ("unknown key base",)
    ),  # an anchor is fine; the unknown key is what is wrong
    "broken_yaml": Bad("seed: [1,\n", ("not valid YAML",)),
    "tab_indentation": Bad("split:\n\tkind: random\n", ("not valid YAML",)),
    "top_level_list": Bad("- seed\n", ("expected a mapping",)),
    "unknown_top_level_key": Bad("seeds: 1\n", ("unknown key seeds",)),
    # --- dates
    "february_30": Bad("source:\n  start_date: 2026-02-30\n", ("source.start_date", "2026-02-30")),
    "month_13": Bad("source:\n  end_date: 2026-13-01\n", ("source.end_date",)),
    "date_as_text": Bad("source:\n  start_date: yesterday\n", ("source.start_date",)),
    "start_1900_synthetic": Bad("source:\n  start_date: 1900-01-01\n", ("source.start_date", "partitions")),
    "start_1900_with_end": Bad(
        "source:\n  start_date: 1900-01-01\n  end_date: 2026-01-01\n", ("source.start_date", "7305")
    ),
    "end_before_start": Bad("source:\n  start_date: 2026-02-02\n  end_date: 2026-02-01\n", ("end_date",)),
    # --- weights and cut-offs
    "all_zero_event_weights": Bad(
        "event_weights: {view: 0, cart: 0, purchase: 0, rating: 0}\n", ("event_weights", "every weight is 0")
    ),
    "infinite_weight": Bad("event_weights: {view: .inf}\n", ("event_weights.view",)),
    "nan_weight": Bad("event_weights: {cart: .nan}\n", ("event_weights.cart",)),
    "negative_weight": Bad("event_weights: {cart: -1}\n", ("event_weights.cart",)),
    "weight_as_text": Bad("event_weights: {cart: lots}\n", ("event_weights.cart",)),
    "unknown_event_type_weight": Bad("event_weights: {click: 1}\n", ("event_weights.click",)),
    "k_1e9_as_yaml_text": Bad("k: 1e9\n", ("k:", "at most 10,000")),
    "k_a_billion": Bad("k: 1000000000\n", ("k:", "at most 10,000")),
    "k_zero": Bad("k: 0\n", ("k:",)),
    "k_negative_in_list": Bad("k: [5, -1]\n", ("k:",)),
    "k_true": Bad("k: true\n", ("k:",)),
    "bootstrap_1e9": Bad("evaluation: {bootstrap_samples: 1e9}\n", ("evaluation.bootstrap_samples",)),
    "bootstrap_a_million": Bad(
        "evaluation: {bootstrap_samples: 1000000}\n", ("evaluation.bootstrap_samples", "100,000")
    ),
    "bootstrap_zero": Bad("evaluation: {bootstrap_samples: 0}\n", ("evaluation.bootstrap_samples",)),
    "alpha_above_one": Bad("evaluation: {alpha: 1.5}\n", ("evaluation.alpha",)),
    "min_rating_nan": Bad("evaluation: {min_rating: .nan}\n", ("evaluation.min_rating",)),
    "min_rating_inf": Bad("evaluation: {min_rating: .inf}\n", ("evaluation.min_rating",)),
    "seed_negative": Bad("seed: -1\n", ("seed",)),
    "seed_text": Bad("seed: abc\n", ("seed",)),
    # --- splits, cleaning, preparation
    "test_ratio_zero": Bad("split: {kind: random, test_ratio: 0}\n", ("split.test_ratio",)),
    "test_ratio_one": Bad("split: {kind: random, test_ratio: 1.0}\n", ("split.test_ratio",)),
    "split_kind_unknown": Bad("split: {kind: sideways}\n", ("split.kind",)),
    "test_days_zero": Bad("split: {test_days: 0}\n", ("split.test_days",)),
    "quarantine_share_two": Bad("cleaning: {max_quarantine_share: 2}\n", ("cleaning.max_quarantine_share",)),
    "value_range_upside_down": Bad("cleaning: {value_range: [5, 1]}\n", ("cleaning.value_range",)),
    "min_user_interactions_zero": Bad(
        "preparation: {min_user_interactions: 0}\n", ("preparation.min_user_interactions",)
    ),
    # --- models and their hyperparameters
    "models_empty": Bad("models: []\n", ("models:",)),
    "model_unknown": Bad(models("alss"), ("models:", "alss")),
    "model_twice": Bad("models: [als, als]\n", ("models:", "twice")),
    "als_factors_zero": Bad(models("als: {factors: 0}"), ("models.als.factors", ">= 1")),
    "als_factors_text": Bad(models("als: {factors: many}"), ("models.als.factors",)),
    "als_regularization_negative": Bad(models("als: {regularization: -0.1}"), ("models.als.regularization",)),
    "als_regularization_nan": Bad(models("als: {regularization: .nan}"), ("models.als.regularization",)),
    "als_iterations_zero": Bad(models("als: {iterations: 0}"), ("models.als.iterations",)),
    "als_alpha_infinite": Bad(models("als: {alpha: .inf}"), ("models.als.alpha", "finite")),
    "knn_neighbours_zero": Bad(models("item_knn: {neighbours: 0}"), ("models.item_knn.neighbours",)),
    "vae_dropout_one": Bad(models("mult_vae: {dropout: 1.0}"), ("models.mult_vae.dropout",)),
    "vae_lr_zero": Bad(models("mult_vae: {lr: 0.0}"), ("models.mult_vae.lr",)),
    "vae_epochs_zero": Bad(models("mult_vae: {epochs: 0}"), ("models.mult_vae.epochs",)),
    "unknown_hyperparameter": Bad(models("als: {factor: 8}"), ("models.als.factor",)),
    "tuning_trials_negative": Bad("tuning: {trials: -1}\n", ("tuning.trials",)),
    "similar_items_negative": Bad("similar_items: {n: -1}\n", ("similar_items.n",)),
    # --- storage
    "storage_under_proc": Bad("storage: /proc/recpipeline\n", ("storage", "/proc")),
    "storage_under_sys": Bad("storage: /sys/kernel/recpipeline\n", ("storage", "/sys")),
    "storage_under_dev": Bad("storage: /dev/shm/warehouse\n", ("storage", "/dev")),
    "storage_is_a_file": Bad(SOURCE + "storage: {data}\n", ("storage", "is a file")),
    "storage_empty": Bad("storage: ''\n", ("storage",)),
    "storage_inside_the_source_folder": Bad(
        SOURCE.replace("{data}", "{folder}") + "storage: {folder}/warehouse\n",
        ("storage", "inside the source"),
    ),
    # --- execution and secrets
    "broker_password_in_file": Bad(
        "execution: {executor: celery, broker: 'redis://:hunter2@broker:6379/0'}\nstorage: {folder}/w\n",
        ("execution.broker", "password", BROKER_ENV_VAR),
    ),
    "broker_env_unset": Bad(
        "execution: {executor: celery, broker: '${RECPIPELINE_TEST_BROKER}'}\nstorage: {folder}/w\n",
        ("execution.broker", "RECPIPELINE_TEST_BROKER", "not set"),
    ),
    "broker_env_not_a_url": Bad(
        "execution: {executor: celery, broker: '${RECPIPELINE_TEST_BROKER}'}\nstorage: {folder}/w\n",
        ("execution.broker", "does not hold a URL"),
        env=(("RECPIPELINE_TEST_BROKER", "hunter2"),),
    ),
    "broker_env_set_parses": Bad(
        "execution: {executor: celery, broker: '${RECPIPELINE_TEST_BROKER}'}\nstorage: {folder}/w\n",
        check=lambda c: c.execution.broker == "redis://:s3cret@broker:6379/0",
        env=(("RECPIPELINE_TEST_BROKER", "redis://:s3cret@broker:6379/0"),),
    ),
    "broker_not_a_url": Bad(
        "execution: {executor: celery, broker: here}\nstorage: {folder}/w\n", ("broker",)
    ),
    "executor_unknown": Bad("execution: {executor: threads}\n", ("execution.executor",)),
    # --- file sources
    "on_bad_lines_skip": Bad(SOURCE + "  options: {on_bad_lines: skip}\n", ("source.options.on_bad_lines",)),
    "nrows": Bad(SOURCE + "  options: {nrows: 10}\n", ("source.options.nrows", "accounted")),
    "skiprows": Bad(SOURCE + "  options: {skiprows: 2}\n", ("source.options.skiprows",)),
    "skipfooter": Bad(SOURCE + "  options: {skipfooter: 1}\n", ("source.options.skipfooter",)),
    "side_table_nrows": Bad(
        SOURCE + "  items: {path: {data}, columns: {item_id: item_id}, options: {nrows: 3}}\n",
        ("source.items.options.nrows",),
    ),
    "timestamp_unit_minutes": Bad(SOURCE + "  timestamp_unit: minutes\n", ("source.timestamp_unit",)),
    "timestamp_format_without_percent": Bad(SOURCE + "  timestamp_format: YYYYMMDD\n", ("timestamp_format",)),
    "timestamp_format_and_unit": Bad(
        SOURCE + "  timestamp_format: '%Y%m%d'\n  timestamp_unit: s\n", ("timestamp_format", "not both")
    ),
    "timestamp_format_without_year": Bad(
        SOURCE + "  timestamp_format: '%H:%M'\n", ("timestamp_format", "year")
    ),
    "timestamp_format_parses": Bad(
        SOURCE + "  timestamp_format: '%Y%m%d'\n", check=lambda c: c.source.timestamp_format == "%Y%m%d"
    ),
    "timestamp_unit_ns_parses": Bad(
        SOURCE + "  timestamp_unit: ns\n", check=lambda c: c.source.timestamp_unit == "ns"
    ),
    "timezone_unknown": Bad(SOURCE + "  timezone: Mars/Olympus\n", ("source.timezone",)),
    "format_unknown": Bad(SOURCE + "  format: xml\n", ("source.format",)),
    "source_path_missing": Bad(
        SOURCE.replace("{data}", "{folder}/nope.csv"), ("source.path", "no such file")
    ),
    "source_kind_unknown": Bad("source: {kind: ftp}\n", ("source.kind",)),
    "user_id_column_unmapped": Bad(SOURCE.replace("user_id: user_id, ", ""), ("source.columns.user_id",)),
    "external_lists_not_a_folder": Bad(
        "evaluation: {external_recommendations: {data}}\n" + SOURCE, ("evaluation.external_recommendations",)
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_bad_configuration_is_one_clear_line(name: str, tmp_path: Path, monkeypatch) -> None:
    case = CASES[name]
    data = tmp_path / "events.csv"
    data.write_text("user_id,item_id,timestamp\nu1,i1,2026-06-02T10:00:00Z\n")
    for key, value in case.env:
        monkeypatch.setenv(key, value)
    if not case.env:
        monkeypatch.delenv("RECPIPELINE_TEST_BROKER", raising=False)
    settings = tmp_path / "settings.yaml"
    text = case.text
    if isinstance(text, str):
        text = text.replace("{data}", str(data)).replace("{folder}", str(tmp_path)).encode("utf-8")
    settings.write_bytes(text)
    try:
        config = load_config(settings)
        validate_models(config)
    except ConfigError as exc:
        message = str(exc)
        assert case.words, f"{name}: unexpected error: {message}"
        assert "\n" not in message and len(message) < 600, message[:2000]
        assert message.startswith(str(settings)), message
        for word in case.words:
            assert word in message, (word, message)
        assert "hunter2" not in message and "s3cret" not in message  # a secret is never shown
        return
    assert not case.words, f"{name}: expected an error holding {case.words}"
    assert isinstance(config, RunConfig) and (case.check is None or case.check(config)), config


def test_the_configuration_corpus_is_large_enough() -> None:
    assert len(CASES) >= 60


def test_an_alias_bomb_is_refused_cheaply(tmp_path: Path) -> None:
    import tracemalloc

    settings = tmp_path / "bomb.yaml"
    settings.write_text(BOMB)
    assert len(BOMB.encode()) < 700
    tracemalloc.start()
    with pytest.raises(ConfigError):
        load_config(settings)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 50e6


def test_a_folder_as_the_configuration_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the configuration file"):
        load_config(tmp_path)


def test_the_broker_password_from_the_environment_is_never_in_the_config_file(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(BROKER_ENV_VAR, "redis://:s3cret@broker:6379/0")
    settings = tmp_path / "settings.yaml"
    settings.write_text(
        f"execution: {{executor: celery, broker: '${{{BROKER_ENV_VAR}}}'}}\nstorage: {tmp_path}/w\n"
    )
    assert load_config(settings).execution.broker == "redis://:s3cret@broker:6379/0"
    assert "s3cret" not in settings.read_text()
