from pathlib import Path

import pytest

from recpipeline.config import ConfigError, load_config, parse_config


def test_embedded_default_loads():
    config = load_config()
    assert config.source.kind == "synthetic"
    assert config.model_names == ["popularity", "als", "mult_vae"]
    assert Path(config.storage).is_absolute()


def test_relative_storage_resolves_against_the_config_file(tmp_path: Path):
    file = tmp_path / "run.yaml"
    file.write_text("storage: out/wh\nmodels: [popularity, {als: {factors: 8}}]\n")
    config = load_config(file)
    assert config.storage == str((tmp_path / "out" / "wh").resolve())
    assert config.models[1].params == {"factors": 8}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"source": {"kind": "ftp"}}, "source.kind: unknown kind 'ftp'"),
        ({"models": ["deep_magic"]}, "unknown model 'deep_magic'"),
        ({"split": {"test_days": 0}}, "split.test_days: expected a positive integer"),
        ({"storage": "nosuchproto://bucket/x"}, "unsupported URL protocol 'nosuchproto'"),
        ({"k": "ten"}, "k: expected a positive integer"),
        ({"colour": "blue"}, "unknown key colour"),
        ({"source": {"start_date": "yesterday"}}, "source.start_date: expected a date"),
        ({"event_weights": {"like": 2}}, "event_weights.like: unknown event type"),
        ({"execution": {"executor": "threads"}}, "execution.executor: unknown executor 'threads'"),
        ({"execution": {"max_concurrent": 2}}, "execution.max_concurrent: only for execution.executor multi"),
        (
            {"execution": {"executor": "multiprocess", "max_concurrent": 0}},
            "execution.max_concurrent: expected a positive integer",
        ),
        ({"execution": {"executor": "multiprocess", "workers": 2}}, "unknown key execution.workers"),
        (
            {"storage": "memory://wh", "execution": {"executor": "multiprocess"}},
            "execution.executor: multiprocess steps cannot share a memory:// storage",
        ),
    ],
)
def test_bad_configuration_names_file_and_key(raw, message):
    with pytest.raises(ConfigError, match="my.yaml") as info:
        parse_config(raw, source_name="my.yaml")
    assert message in str(info.value)


def test_execution_defaults_to_in_process():
    assert parse_config({}).execution.executor == "in_process"
    execution = parse_config({"execution": {"executor": "multiprocess", "max_concurrent": 3}}).execution
    assert (execution.executor, execution.max_concurrent) == ("multiprocess", 3)


def test_missing_file_is_a_clear_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_config(tmp_path / "nope.yaml")


def test_models_all_takes_the_registry():
    from recpipeline.models import MODEL_REGISTRY

    assert parse_config({"models": "all"}).model_names == list(MODEL_REGISTRY)
