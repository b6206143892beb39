"""Each configured model's settings checked against its declaration before any step runs."""

from __future__ import annotations

import re

from recpipeline.config import YAML_EXPONENT, ConfigError, RunConfig
from recpipeline.models.registry import model_class
from recpipeline.models.settings import SettingError

#: what a number written as YAML reads as text is told
_EXPONENT_HINT = "; YAML reads this as text: write exponents with a point and a sign (1.0e-3, 5.0e+2)"


def validate_models(config: RunConfig) -> None:
    """Every configured model's settings against its class's declaration (``Recommender.Settings``: names,
    types, allowed values, rules across settings), then the class's own checks of its surroundings (it is
    built once, fitting nothing, and its ``check_params`` run: an encoder's files, a hybrid's parts).

    Separate from ``parse_config`` because it imports each model's module (torch for the neural ones), which
    parsing must not (configuration knows the models' names only, from ``contracts.MODEL_NAMES``);
    ``build_definitions`` calls it, so a run stops on a bad parameter before any step.
    Tuned models (``tuning.models``) are among these: their configured parameters are the fixed ones.
    """
    where = config.config_file
    for spec in config.models:
        try:
            model_class(spec.name)(**spec.params).check_params()
        except SettingError as error:
            hint = (
                _EXPONENT_HINT
                if error.wants_number and re.fullmatch(YAML_EXPONENT, error.value.strip())
                else ""
            )
            raise ConfigError(f"{where}: models.{spec.name}.{error.setting}: {error.problem}{hint}") from None
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{where}: models.{spec.name}: {exc}") from None
