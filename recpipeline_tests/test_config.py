import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from recpipeline.config import (
    DEFAULT_CONFIG_PATH,
    ConfigError,
    ModelSpec,
    RunConfig,
    SimilarItemsConfig,
    load_config,
    parse_config,
    settings_reference,
)
from recpipeline.contracts import MODEL_NAMES
from recpipeline.datasets import PLACEHOLDER, data_location
from recpipeline.fitting.checks import validate_models
from recpipeline_tests.conftest import REPO_ROOT, public_dataset, tiny_raw_config

#: the example configurations
SHIPPED = sorted((REPO_ROOT / "data").glob("*.yaml"))


def test_embedded_default_loads():
    config = load_config()
    assert config.source.kind == "synthetic"
    assert config.model_names == ["popularity", "recent_popularity", "als", "mult_vae"]
    assert Path(config.storage).is_absolute()


def test_embedded_default_is_the_field_defaults():
    # the YAML the default run reads and the fields' defaults every omitted key falls back to say the same
    from_yaml = load_config().model_copy(update={"config_file": "-"})
    from_fields = parse_config({}).model_copy(update={"config_file": "-"})
    assert from_yaml == from_fields
    assert from_fields.models[3] == ModelSpec(
        name="mult_vae", params={"epochs": 50, "batch_size": 500, "patience": 5}
    )
    # parsing adds nothing of its own: only storage (made absolute against the file's folder) differs from
    # RunConfig(), whose similar_items model is resolved from the models as parsing does
    derived = {"storage": RunConfig.model_fields["storage"].default, "config_file": "<default>"}
    assert parse_config({}).model_copy(update=derived) == RunConfig()
    assert RunConfig().similar_items == SimilarItemsConfig(model="als")


def test_embedded_default_spells_out_every_setting():
    raw = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))
    top_level = {field.alias or name for name, field in RunConfig.model_fields.items()} - {"config_file"}
    assert set(raw) == top_level
    defaults = RunConfig()
    # a predefined split's files and validation rule (like a file source's settings) belong to another kind
    kind_specific = {"split": {"train", "validation", "test", "validation_rule"}}
    for section in ("cleaning", "split", "similar_items", "tuning", "evaluation", "execution"):
        settings = set(type(getattr(defaults, section)).model_fields) - kind_specific.get(section, set())
        assert set(raw[section]) == settings, section


def test_left_out_settings_take_the_defaults_but_empty_models_do_not():
    assert parse_config({"cleaning": None, "event_weights": None}) == parse_config({})
    for empty in (None, []):
        with pytest.raises(ConfigError, match="my.yaml: models: expected a non-empty list"):
            parse_config({"models": empty}, source_name="my.yaml")


def test_a_source_section_of_your_own_has_no_default_dates():
    source = parse_config({"source": {"kind": "synthetic"}}).source
    assert (source.start_date, source.end_date) == (None, None)


def test_relative_storage_resolves_against_the_config_file(tmp_path: Path):
    file = tmp_path / "run.yaml"
    file.write_text("storage: out/wh\nmodels: [popularity, {als: {factors: 8}}]\n")
    config = load_config(file)
    assert config.storage == str((tmp_path / "out" / "wh").resolve())
    assert config.models[1].params == {"factors": 8}


#: (configuration, the dotted key the error must name, a further part of the message or "")
BROKEN = [
    ({"source": {"kind": "ftp"}}, "source.kind", "got 'ftp'"),
    ({"source": ["synthetic"]}, "source", "expected a mapping"),
    ({"source": {"start_date": "yesterday"}}, "source.start_date", "expected a date"),
    ({"source": {"start_date": 20261001}}, "source.start_date", "expected a date"),
    ({"source": {"synthetic": [300]}}, "source.synthetic", "expected a mapping"),
    ({"cleaning": 5}, "cleaning", "expected a mapping"),
    ({"cleaning": {"max_quarantine_share": "abc"}}, "cleaning.max_quarantine_share", "[0, 1]"),
    ({"cleaning": {"max_quarantine_share": "high"}}, "cleaning.max_quarantine_share", "got 'high'"),
    ({"cleaning": {"max_quarantine_share": True}}, "cleaning.max_quarantine_share", ""),
    ({"cleaning": {"max_quarantine_share": 1.5}}, "cleaning.max_quarantine_share", ""),
    ({"split": {"kind": "rolling"}}, "split.kind", "got 'rolling'"),
    ({"split": {"test_days": 0}}, "split.test_days", "expected an integer >= 1"),
    ({"split": {"test_days": True}}, "split.test_days", ""),
    ({"split": {"validation_days": 1.5}}, "split.validation_days", ""),
    ({"split": {"validation_days": True}}, "split.validation_days", "got True"),
    ({"event_weights": [1, 3, 5]}, "event_weights", "expected a mapping"),
    ({"event_weights": {"like": 2}}, "event_weights.like", "unknown key"),
    ({"event_weights": {"cart": "x"}}, "event_weights.cart", ""),
    ({"event_weights": {"cart": True}}, "event_weights.cart", ""),
    ({"event_weights": {"cart": -1}}, "event_weights.cart", ""),
    ({"models": ["deep_magic"]}, "models", "unknown model 'deep_magic'"),
    ({"models": []}, "models", "non-empty list"),
    ({"models": None}, "models", "non-empty list"),
    ({"models": {}}, "models", "non-empty list"),
    ({"models": {"als": {}}}, "models", ""),
    ({"models": [42]}, "models", ""),
    ({"models": [{"als": 3}]}, "models.als", "hyperparameters"),
    ({"models": ["als", "als"]}, "models", "listed twice"),
    ({"similar_items": {"n": True}}, "similar_items.n", ""),
    ({"similar_items": {"n": -1}}, "similar_items.n", ""),
    ({"similar_items": {"model": 3}}, "similar_items.model", ""),
    ({"tuning": {"trials": True}}, "tuning.trials", ""),
    ({"tuning": {"models": "als"}}, "tuning.models", ""),
    ({"k": "ten"}, "k", "expected a positive integer"),
    ({"k": True}, "k", ""),
    ({"k": [5, True]}, "k", ""),
    ({"evaluation": {"bootstrap_samples": True}}, "evaluation.bootstrap_samples", ""),
    ({"evaluation": {"history_runs": 0}}, "evaluation.history_runs", ""),
    ({"evaluation": {"alpha": "0.05"}}, "evaluation.alpha", "(0, 1)"),
    ({"evaluation": {"alpha": True}}, "evaluation.alpha", ""),
    ({"evaluation": {"baseline": 3}}, "evaluation.baseline", ""),
    ({"evaluation": {"baseline": "ease"}}, "evaluation.baseline", "'ease' is not among models"),
    ({"models": ["als"], "evaluation": {"baseline": "popularity"}}, "evaluation.baseline", "['als']"),
    ({"evaluation": {"external_recommendations": 5}}, "evaluation.external_recommendations", ""),
    ({"seed": True}, "seed", ""),
    ({"seed": "42"}, "seed", ""),
    ({"seed": -1}, "seed", ""),
    ({"storage": 5}, "storage", ""),
    ({"storage": "nosuchproto://bucket/x"}, "storage", "unsupported URL protocol 'nosuchproto'"),
    ({"storage": ""}, "storage", "expected a local path"),
    ({"storage": "broken.yaml/warehouse"}, "storage", "is a file, not a folder"),
    ({"colour": "blue"}, "colour", "unknown key colour"),
    ({"execution": {"executor": "threads"}}, "execution.executor", "got 'threads'"),
    ({"execution": {"max_concurrent": 2}}, "execution.max_concurrent", "only for execution.executor multi"),
    ({"execution": {"executor": "multiprocess", "max_concurrent": 0}}, "execution.max_concurrent", ">= 1"),
    ({"execution": {"executor": "multiprocess", "max_concurrent": True}}, "execution.max_concurrent", ""),
    ({"execution": {"executor": "multiprocess", "workers": 2}}, "execution.workers", "unknown key"),
    (
        {"storage": "memory://wh", "execution": {"executor": "multiprocess"}},
        "execution.executor",
        "multiprocess steps cannot share a memory:// storage",
    ),
]


@pytest.mark.parametrize(
    ("raw", "key", "detail"), BROKEN, ids=[f"{key}-{i}" for i, (_, key, _) in enumerate(BROKEN)]
)
def test_bad_configuration_names_file_and_key(tmp_path: Path, raw: dict, key: str, detail: str):
    file = tmp_path / "broken.yaml"
    file.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(file)
    _assert_one_line_naming(str(info.value), file, key, detail)


def _assert_one_line_naming(message: str, file: Path, key: str, detail: str) -> None:
    assert "\n" not in message, message
    assert message.startswith(f"{file}: ")
    assert re.search(rf"(?<![\w.]){re.escape(key)}(?![\w])", message), message
    assert detail in message


#: models whose hyperparameters parse but do not fit the model: caught by validate_models, which the
#: definitions call before any run (parsing imports no model); same columns as BROKEN
BROKEN_MODELS = [
    ({"als": {"factorz": 8}}, "models.als.factorz", "not a parameter of als; known: factors, regularization"),
    ({"mult_vae": {"epoch": 3}}, "models.mult_vae.epoch", "not a parameter of mult_vae"),
    ({"als": {"factors": "eight"}}, "models.als.factors", "expected an integer (the default is 64)"),
    ({"als": {"factors": True}}, "models.als.factors", "expected an integer"),
    ({"als": {"factors": 8.5}}, "models.als.factors", "expected an integer"),
    ({"als": {"regularization": "low"}}, "models.als.regularization", "expected a number"),
    ({"mult_vae": {"lr": "1e-3"}}, "models.mult_vae.lr", "write exponents with a point and a sign"),
    ({"ease": {"regularization": "5.0e2"}}, "models.ease.regularization", "(1.0e-3, 5.0e+2)"),
    ({"ease": {"binarize": 1}}, "models.ease.binarize", "expected true or false"),
    ({"mult_vae": {"device": 0}}, "models.mult_vae.device", "expected text (the default is 'auto'), got 0"),
    ({"als": {"device": 0}}, "models.als.device", "expected 'auto', 'cpu' or 'cuda', got 0"),
    ({"als": {"device": "tpu"}}, "models.als.device", "expected 'auto', 'cpu' or 'cuda', got 'tpu'"),
    ({"popularity": {"by": "clicks"}}, "models.popularity.by", "expected 'users' or 'weight', got 'clicks'"),
    ({"sasrec": {"factors": 10, "heads": 3}}, "models.sasrec", "must be divisible by heads"),
    ({"hybrid": {"alpha": 2.0}}, "models.hybrid.alpha", "expected a finite number in [0, 1], got 2.0"),
    ({"als": {"alpha": -1}}, "models.als.alpha", "expected a finite number >= 0, got -1"),
    (
        {"cooccurrence": {"neighbours": -1}},
        "models.cooccurrence.neighbours",
        "expected an integer >= 0, got -1",
    ),
]


@pytest.mark.parametrize(("model", "key", "detail"), BROKEN_MODELS, ids=[key for _, key, _ in BROKEN_MODELS])
def test_bad_model_parameter_names_file_and_key(tmp_path: Path, model: dict, key: str, detail: str):
    file = tmp_path / "broken.yaml"
    # a tuned model's configured parameters are its fixed ones: checked the same way
    name = next(iter(model))
    file.write_text(yaml.safe_dump({"models": [model], "tuning": {"trials": 2, "models": [name]}}))
    config = load_config(file)
    with pytest.raises(ConfigError) as info:
        validate_models(config)
    _assert_one_line_naming(str(info.value), file, key, detail)


def test_good_model_parameters_pass():
    # every shipped configuration's models (its data need not be here), every model at its defaults, a float
    # parameter given an int
    validate_models(load_config())
    for file in SHIPPED:
        raw = yaml.safe_load(file.read_text())
        sections = {key: raw[key] for key in ("models", "tuning", "similar_items") if key in raw}
        validate_models(parse_config(sections, source_name=str(file)))
    validate_models(parse_config({"models": "all"}))
    validate_models(
        parse_config({"models": [{"ease": {"regularization": 100}}, {"svd": {"binarize": False}}]})
    )


@pytest.mark.parametrize("file", SHIPPED, ids=lambda file: file.name)
def test_shipped_configurations_load_with_the_public_datasets(file: Path):
    """Each example configuration reads its public datasets from their location (none outside it)."""
    for name in sorted(set(re.findall(rf"{re.escape(PLACEHOLDER)}/([^/\s]+)", file.read_text()))):
        public_dataset(name)
    config = load_config(file)
    assert Path(config.source.path).is_relative_to(data_location())
    validate_models(config)


def test_baseline_may_name_an_external_list(tmp_path: Path):
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "vendor.csv").write_text("user_id,item_id,rank\n")
    (lists / "notes.txt").write_text("not a list")
    settings = {"external_recommendations": "lists"}
    config = parse_config({"evaluation": {**settings, "baseline": "vendor"}}, base_dir=tmp_path)
    assert config.evaluation.baseline == "vendor"
    for other in ("notes", "other"):
        with pytest.raises(
            ConfigError,
            match=r"'popularity', 'recent_popularity', 'als', 'mult_vae'\] or external lists \['vendor'\]",
        ):
            parse_config({"evaluation": {**settings, "baseline": other}}, base_dir=tmp_path)


def test_storage_is_created_below_the_nearest_folder_that_exists(tmp_path: Path):
    config = parse_config({"storage": "new/deeper/warehouse"}, base_dir=tmp_path)
    assert config.storage == str(tmp_path / "new" / "deeper" / "warehouse")
    assert not (tmp_path / "new").exists()  # checked, not created


#: three broken configurations through the command line: a model parameter (found when the definitions are
#: built), a baseline and a storage path (found when the file is parsed)
CLI_BROKEN = [
    ({"models": ["popularity", {"als": {"factorz": 8}}]}, "models.als.factorz"),
    ({"evaluation": {"baseline": "ease"}}, "evaluation.baseline"),
    ({"storage": "settings.yaml/warehouse"}, "storage"),
]


@pytest.mark.parametrize(("overrides", "key"), CLI_BROKEN, ids=[key for _, key in CLI_BROKEN])
def test_recpipeline_run_stops_at_once_on_a_bad_configuration(
    tmp_path: Path, monkeypatch, capsys, overrides: dict, key: str
):
    from recpipeline.cli import main

    file = tmp_path / "settings.yaml"
    file.write_text(yaml.safe_dump({**tiny_raw_config(str(tmp_path / "warehouse")), **overrides}))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    started = time.monotonic()
    code = main(["run", "--config", str(file), "--no-progress"])
    assert time.monotonic() - started < 60
    assert code == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"recpipeline: {file}: {key}: ")
    assert "Traceback" not in captured.err + captured.out
    assert not (tmp_path / "warehouse").exists()  # nothing ingested


def test_execution_defaults_to_in_process():
    assert parse_config({}).execution.executor == "in_process"
    execution = parse_config({"execution": {"executor": "multiprocess", "max_concurrent": 3}}).execution
    assert (execution.executor, execution.max_concurrent) == ("multiprocess", 3)


def test_missing_file_is_a_clear_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_config(tmp_path / "nope.yaml")


def test_models_all_takes_the_registry():
    assert parse_config({"models": "all"}).model_names == list(MODEL_NAMES)


def test_parsing_imports_no_model():
    # every Dagster step process and the CLI parse the configuration: it must not load torch or any model
    # module; the model names come from the contracts' table
    script = (
        "import sys, recpipeline.config\n"
        "config = recpipeline.config.parse_config({'models': 'all'})\n"
        "recpipeline.config.load_config()\n"
        "assert config.similar_items.model == 'item_knn'\n"
        "print(*sorted(m for m in sys.modules if m == 'torch' or m.startswith('recpipeline.models.')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    loaded = result.stdout.split()
    assert "torch" not in loaded
    assert loaded == []


def test_the_docs_list_every_key_as_the_fields_declare_it():
    docs = (REPO_ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    listed = docs.split("<!-- settings reference: begin -->\n")[1].split(
        "\n<!-- settings reference: end -->"
    )[0]
    # regenerate: python -c "from recpipeline.config import settings_reference as r; print(r())"
    assert listed == settings_reference()
