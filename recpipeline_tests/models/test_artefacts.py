"""Saved models are checked on load: a damaged, truncated, reshaped or NaN-holding file raises one
``ArtefactError`` naming the file, a good round trip recommends exactly as before, and a fitted state with
NaN / inf is never saved."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from recpipeline.models import ArtefactError, Recommender, create_model, load_model
from recpipeline_tests.models import test_contract as contract  # the contract's small, fast settings
from recpipeline_tests.models.conftest import N_ITEMS, N_USERS

#: model name -> small settings: every registered family with learned arrays
MODELS = {
    "popularity": contract.TestSegmentPopularity.params,
    "item_knn": contract.TestItemKNN.params,
    "user_knn": contract.TestUserKNN.params,
    "als": contract.TestALS.params,
    "bpr": contract.TestBPR.params,
    "ease": contract.TestEASE.params,
    "svd": contract.TestSVD.params,
    "content": contract.TestContent.params,
    "hybrid": contract.TestHybrid.params,
    "mult_vae": contract.TestMultVAE.params,
    "neumf": contract.TestNeuMF.params,
    "sasrec": contract.TestSASRec.params,
}

#: the models with an array per training user
USER_SIDE = {"user_knn", "als", "bpr", "neumf"}


@pytest.fixture(scope="module")
def fitted(blocks) -> Callable[[str], Recommender]:
    """Model name -> the model fitted once on the planted blocks."""
    train, held, context, _ = blocks
    cache: dict[str, Recommender] = {}

    def get(name: str) -> Recommender:
        if name not in cache:
            cache[name] = create_model(name, MODELS[name]).fit(train, held, context=context)
        return cache[name]

    return get


def state_file(directory: Path) -> Path:
    """The learned-state file of a saved model (a hybrid's own file holds only its cold-item mask)."""
    return next(p for p in (directory / "model.safetensors", directory / "state.npz") if p.exists())


def read_state(path: Path) -> dict[str, np.ndarray]:
    if path.suffix == ".safetensors":
        return {key: value.numpy() for key, value in load_file(str(path)).items()}
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def write_state(path: Path, arrays: dict[str, np.ndarray]) -> None:
    if path.suffix == ".safetensors":
        save_file({key: torch.from_numpy(np.ascontiguousarray(v)) for key, v in arrays.items()}, str(path))
    else:
        np.savez(path, **arrays)


def first_float(arrays: dict[str, np.ndarray]) -> str:
    return next(key for key in sorted(arrays) if arrays[key].dtype.kind == "f" and arrays[key].size)


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def junk(path: Path) -> None:
    path.write_bytes(b"not a model file\n" * 10)


def nan(path: Path) -> None:
    arrays = read_state(path)
    key = first_float(arrays)
    arrays[key] = np.full_like(arrays[key], np.nan)
    write_state(path, arrays)


def drop_a_row(path: Path) -> None:
    arrays = read_state(path)
    key = first_float(arrays)
    arrays[key] = arrays[key][:-1]
    write_state(path, arrays)


DAMAGE = {"truncated": truncate, "junk": junk, "nan": nan, "row dropped": drop_a_row}


def recommendations(model: Recommender, blocks) -> tuple[np.ndarray, np.ndarray]:
    train, _, _, score_context = blocks
    return model.recommend(np.arange(N_USERS), train, 5, score_context)


def assert_refused(directory: Path, path: Path) -> ArtefactError:
    with pytest.raises(ArtefactError) as caught:
        load_model(directory)
    message = str(caught.value)
    assert str(path) in message and "rematerialize" in message and "\n" not in message
    return caught.value


@pytest.mark.parametrize("name", MODELS)
def test_a_good_round_trip_recommends_the_same(name, fitted, blocks, tmp_path) -> None:
    model = fitted(name)
    model.save(tmp_path)
    loaded = load_model(tmp_path)
    for got, want in zip(recommendations(loaded, blocks), recommendations(model, blocks), strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("damage", DAMAGE)
@pytest.mark.parametrize("name", MODELS)
def test_a_damaged_state_file_is_refused_naming_it(name, damage, fitted, tmp_path) -> None:
    fitted(name).save(tmp_path)
    # a hybrid's parts are models of their own: damage its CF part
    directory = tmp_path / "cf" if name == "hybrid" else tmp_path
    path = state_file(directory)
    DAMAGE[damage](path)
    assert_refused(tmp_path, path)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("key", ["n_users", "n_items"])
def test_arrays_must_match_the_recorded_id_map_sizes(name, key, fitted, tmp_path) -> None:
    fitted(name).save(tmp_path)
    params = tmp_path / "params.json"
    meta = json.loads(params.read_text())
    meta[key] += 1
    params.write_text(json.dumps(meta))
    if key == "n_users" and name not in USER_SIDE:
        load_model(tmp_path)  # item-side state only: the user count is in no shape
        return
    assert_refused(tmp_path, state_file(tmp_path))


@pytest.mark.parametrize("contents", ["", "{", "[]", '{"model": "als"}', '{"model": "nope", "params": {}}'])
def test_a_damaged_params_file_is_refused_naming_it(contents, fitted, tmp_path) -> None:
    fitted("als").save(tmp_path)
    meta = json.loads((tmp_path / "params.json").read_text())
    (tmp_path / "params.json").write_text(contents)
    assert_refused(tmp_path, tmp_path / "params.json")
    # a count that is not one, and a hyperparameter the model does not take
    for bad in ({"n_items": True}, {"n_users": -1}, {"params": {"factorz": 4}}):
        (tmp_path / "params.json").write_text(json.dumps({**meta, **bad}))
        assert_refused(tmp_path, tmp_path / "params.json")


def test_missing_files_are_named(fitted, tmp_path) -> None:
    fitted("als").save(tmp_path)
    (tmp_path / "state.npz").unlink()
    assert "missing" in assert_refused(tmp_path, tmp_path / "state.npz").problem
    (tmp_path / "params.json").unlink()
    assert_refused(tmp_path, tmp_path / "params.json")


def _thinner_user_factors(arrays: dict[str, np.ndarray]) -> None:
    arrays["user_factors"] = arrays["user_factors"][:, :-1]


def _index_out_of_range(arrays: dict[str, np.ndarray]) -> None:
    arrays["similarity_indices"][0] = N_ITEMS + 5


def _one_user_short(arrays: dict[str, np.ndarray]) -> None:
    arrays["gmf_user.weight"] = arrays["gmf_user.weight"][:-1]


@pytest.mark.parametrize(
    ("name", "edit", "named"),
    [
        ("als", _thinner_user_factors, "user_factors"),  # user and item factor dims disagree
        ("ease", lambda arrays: arrays.pop("item_penalty"), "'item_penalty' missing"),
        ("item_knn", _index_out_of_range, "do not fit together"),
        ("neumf", _one_user_short, f"'gmf_user.weight' has shape ({N_USERS - 1}, 4)"),
    ],
)
def test_arrays_that_do_not_fit_are_named(name, edit, named, fitted, tmp_path) -> None:
    fitted(name).save(tmp_path)
    path = state_file(tmp_path)
    arrays = read_state(path)
    edit(arrays)
    write_state(path, arrays)
    assert named in assert_refused(tmp_path, path).problem


def test_a_non_finite_fit_is_not_saved(blocks, tmp_path) -> None:
    train = blocks[0].copy()
    train.data[:] = 1e38  # ratings near float32's limit, as an unbounded input gives: the Gram overflows
    model = create_model("ease", {"binarize": False}).fit(train)
    assert not np.isfinite(model.weights_).all()
    with pytest.raises(ArtefactError, match=r"model 'ease'.*NaN or inf.*value range") as caught:
        model.save(tmp_path)
    assert "\n" not in str(caught.value)
    assert not list(tmp_path.iterdir())  # refused before anything is written


@pytest.mark.parametrize("name", ["mult_vae", "hybrid"])
def test_non_finite_weights_are_not_saved(name, blocks, tmp_path) -> None:
    train, held, context, _ = blocks
    model = create_model(name, MODELS[name]).fit(train, held, context=context)
    if name == "hybrid":
        model.cf_model_.user_factors_[0, 0] = np.nan
    else:
        with torch.no_grad():
            next(model.module_.parameters())[0] = np.nan
    with pytest.raises(ArtefactError, match=f"model '{name}'"):
        model.save(tmp_path)
    assert not list(tmp_path.iterdir())


def test_a_diverged_als_fit_names_the_likely_cause(blocks) -> None:
    train = blocks[0].copy()
    train.data[0] = np.inf
    with pytest.raises(ValueError, match=r"als: .*NaN.*value range"):
        create_model("als", MODELS["als"]).fit(train)
