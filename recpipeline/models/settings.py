"""Model settings, each declared once: name, type, default, allowed values and help.

A model declares its settings as a nested ``class Settings(ModelSettings)`` (pydantic, as lkpy's configs):
one annotated field per setting, its help in the docstring under it. ``Recommender.__init__(**params)`` checks
the given values against that declaration (``validate_settings``) and keeps them as given, the defaults
filled in; cross-setting rules are a ``model_validator`` of the declaration, checks of a model's
surroundings (an encoder's files, a hybrid's parts) its ``check_params``. Every message is one line naming
the model, the setting and what it allows, derived from the declaration.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.fields import FieldInfo


class ModelSettings(BaseModel):
    """Base of every model's settings: values of exactly the declared type (``true`` is no integer, ``1`` no
    boolean, ``"1e-3"`` no number; an integer is a number), finite numbers, no unknown names."""

    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False, use_attribute_docstrings=True)


#: settings several models share, with their help; each model gives its own default
Count = Annotated[int, Field(ge=1)]
Factors = Annotated[int, Field(ge=1, description="latent dimensions of each user and item vector")]
Epochs = Annotated[
    int, Field(ge=1, description="passes over the training data (early stopping may end sooner)")
]
BatchSize = Annotated[int, Field(ge=1, description="training examples per optimiser step")]
Patience = Annotated[int, Field(ge=1, description="epochs without a better validation NDCG before stopping")]
LearningRate = Annotated[float, Field(gt=0, description="the optimiser's step size")]
WeightDecay = Annotated[float, Field(ge=0, description="L2 penalty on the weights")]
Dropout = Annotated[float, Field(ge=0, lt=1, description="share of units dropped in training")]
Binarize = Annotated[bool, Field(description="count each interaction once, whatever its weight")]
Seed = Annotated[int, Field(description="seed of every random draw, so a fit repeats exactly")]
Hidden = Annotated[int, Field(ge=1, description="units of the encoder's and decoder's hidden layer")]
Latent = Annotated[int, Field(ge=1, description="dimensions of the latent user representation")]
Negatives = Annotated[int, Field(ge=1, description="sampled negative items per positive one")]
NumThreads = Annotated[int, Field(ge=0, description="CPU threads (0: all the process may use)")]


class TorchSettings(ModelSettings):
    """The settings every torch model takes with the same default."""

    k: int = Field(10, ge=1)
    """cut-off of the validation NDCG that early stopping watches (the run's ``k``)"""
    seed: Seed = 42
    device: str = "auto"
    """torch device: ``auto`` (CUDA when available), ``cpu``, ``cuda`` or e.g. ``cuda:1``"""
    num_threads: NumThreads = 0


class SettingError(ValueError):
    """A setting its model's declaration refuses; ``problem`` says what is wrong without naming the model,
    for messages that name the setting as a key (``models.als.factors: expected an integer >= 1, got 0``)."""

    def __init__(self, message: str, model: str, setting: str, problem: str, value: Any = None) -> None:
        super().__init__(message)
        self.model, self.setting, self.problem, self.value = model, setting, problem, value
        #: the declaration takes a number where the value is text (configuration adds a YAML hint)
        self.wants_number = False


def validate_settings(model: str, settings: type[ModelSettings], params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` checked against ``settings``, each value as given (an integer for a number stays one, so
    saved parameters read back unchanged), every other setting at its default; a ``SettingError`` for an
    unknown name or a value the declaration refuses, a ``ValueError`` for a broken cross-setting rule."""
    fields = settings.model_fields
    unknown = [name for name in params if name not in fields]
    if unknown:
        known = ", ".join(fields)
        raise SettingError(
            f"model {model!r} has no parameter {unknown[0]!r}; known: {known}",
            model,
            unknown[0],
            f"not a parameter of {model}; known: {known}",
        )
    try:
        checked = settings.model_validate(dict(params))
    except ValidationError as error:
        raise _refusal(model, settings, params, error) from None
    return {name: params[name] if name in params else getattr(checked, name) for name in fields}


def _refusal(
    model: str, settings: type[ModelSettings], params: Mapping[str, Any], error: ValidationError
) -> ValueError:
    """The first of pydantic's errors as one line worded from the declaration."""
    details = error.errors(include_url=False)
    if not details[0]["loc"]:  # a model validator: a rule across settings, worded by itself
        return ValueError(f"{model}: {details[0]['ctx']['error']}")
    name = str(details[0]["loc"][0])
    field, value = settings.model_fields[name], params[name]
    own = [detail for detail in details if detail["loc"][:1] == (name,)]
    if own[0]["type"] == "value_error":  # a field validator words what it allows
        allowed = str(own[0]["ctx"]["error"])
    elif all(detail["type"].endswith("_type") or detail["type"] == "none_required" for detail in own):
        default = field.get_default(call_default_factory=True)
        allowed = f"{describe(field, ranges=False)} (the default is {default!r})"
    else:
        allowed = describe(field)
    refusal = SettingError(
        f"{model}: {name!r} must be {allowed}, got {value!r}",
        model,
        name,
        f"expected {allowed}, got {value!r}",
        value,
    )
    refusal.wants_number = float in _types(field.annotation) and isinstance(value, str)
    return refusal


def describe(field: FieldInfo, ranges: bool = True) -> str:
    """What a setting allows, in words: ``an integer >= 1``, ``'zscore' or 'rank'``, ``a list of text or
    null``; ``ranges=False`` leaves out the bounds (for a value of the wrong type)."""
    return _words(field.annotation, field.metadata if ranges else [], ranges)


def _words(annotation: Any, metadata: list[Any], ranges: bool) -> str:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        inner = [
            item for meta in args[1:] for item in (meta.metadata if isinstance(meta, FieldInfo) else [meta])
        ]
        return _words(args[0], [*metadata, *inner] if ranges else [], ranges)
    if origin in (Union, types.UnionType):
        return _either([_words(arg, [], ranges) for arg in args])
    if origin is Literal:
        return _either([repr(value) for value in args])
    if origin is list:
        return f"a list of {_PLURALS.get(args[0], 'values') if args else 'values'}"
    if origin is dict or annotation is dict:
        return "a mapping"
    if annotation in (int, float):
        noun = {int: "an integer", float: "a finite number" if ranges else "a number"}[annotation]
        bounds = _bounds(metadata)
        return f"{noun} {bounds}" if bounds else noun
    return _NOUNS.get(annotation, getattr(annotation, "__name__", str(annotation)))


_NOUNS = {bool: "true or false", str: "text", type(None): "null"}
_PLURALS = {int: "integers", float: "numbers", str: "text"}


def _either(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} or {parts[-1]}"


#: the declared bounds as words: annotated_types class -> (sign, interval bracket, attribute)
_LOWER = {annotated_types.Ge: (">=", "[", "ge"), annotated_types.Gt: (">", "(", "gt")}
_UPPER = {annotated_types.Le: ("<=", "]", "le"), annotated_types.Lt: ("<", ")", "lt")}


def _bounds(metadata: list[Any]) -> str:
    """``>= 1``, ``> 0``, ``in [0, 1)`` from the declared bounds."""
    low, high = _bound(metadata, _LOWER), _bound(metadata, _UPPER)
    if low and high:
        return f"in {low[1]}{low[2]}, {high[2]}{high[1]}"
    bound = low or high
    return f"{bound[0]} {bound[2]}" if bound else ""


def _bound(metadata: list[Any], kinds: dict[type, tuple[str, str, str]]) -> tuple[str, str, Any] | None:
    for item in metadata:
        for kind, (sign, bracket, attribute) in kinds.items():
            if isinstance(item, kind):
                return sign, bracket, getattr(item, attribute)
    return None


def _types(annotation: Any) -> set[Any]:
    """Every plain type a declared annotation admits."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _types(args[0])
    if origin in (Union, types.UnionType):
        return set().union(*map(_types, args))
    return {annotation}
