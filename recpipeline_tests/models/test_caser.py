"""Caser: the model contract, its training windows, and a planted next-item chain a working model recovers,
with and without user vectors, also for users it never saw (anonymous prefixes)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from recpipeline.models import FitContext, ScoreContext, create_model
from recpipeline.models.caser import _CaserModule, caser_windows
from recpipeline_tests.models.conftest import T0, matrix_of
from recpipeline_tests.models.contract import ModelContract
from recpipeline_tests.models.test_models import chains

SMALL = {"factors": 8, "max_len": 3, "horizontal": 4, "vertical": 2, "epochs": 2, "batch_size": 64}
CHAIN = {
    "factors": 16,
    "max_len": 3,
    "horizontal": 8,
    "vertical": 2,
    "dropout": 0.0,
    "lr": 1e-2,
    "epochs": 20,
    "batch_size": 64,
    "device": "cpu",
}


class TestCaser(ModelContract):
    name = "caser"
    params = {**SMALL, "device": "cpu"}


class TestCaserWithoutUsers(ModelContract):
    name = "caser"
    params = {**SMALL, "device": "cpu", "user_embedding": False}


def test_windows_hold_the_items_before_each_target() -> None:
    events = pd.DataFrame(
        {
            "user_idx": [0, 0, 0, 0, 0, 1, 1, 2],
            "item_idx": [10, 11, 11, 12, 13, 5, 6, 7],  # user 0 repeats item 11: one step
            "timestamp": T0 + pd.to_timedelta([4, 0, 1, 2, 3, 0, 1, 0], unit="s"),
        }
    )
    # user 0 in time order: 11, 12, 13, 10 (tokens +1); user 2 has a single item and no target
    expected = [[1, 0, 0, 12, 13], [1, 0, 12, 13, 14], [1, 12, 13, 14, 11], [2, 0, 0, 6, 7]]
    np.testing.assert_array_equal(caser_windows(events, 3), expected)


def test_the_filters_as_products_equal_the_paper_s_convolutions() -> None:
    """The forward's matrix products against the layers' own Conv2d over the L x d image, values and
    gradients (dropout off)."""
    torch.manual_seed(0)
    module = _CaserModule(30, 5, 8, 4, 3, 2, 0.0, user_embedding=False)
    for conv in (module.vertical, *module.horizontal):
        torch.nn.init.normal_(conv.bias)
    tokens = torch.randint(0, 31, (7, 5))

    def by_convolution() -> torch.Tensor:
        image = module.item_embedding(tokens[:, 1:]).unsqueeze(1)
        horizontal = [F.relu(conv(image)).squeeze(3).amax(dim=2) for conv in module.horizontal]
        z = F.relu(module.hidden(torch.cat([module.vertical(image).flatten(1), *horizontal], dim=1)))
        return module.output(z).unsqueeze(1)

    outputs, grads = [], []
    for forward in (module, lambda _: by_convolution()):
        module.zero_grad()
        out = forward(tokens)
        out.square().sum().backward()
        outputs.append(out.detach())
        grads.append([p.grad.clone() for p in module.parameters()])
    torch.testing.assert_close(outputs[0], outputs[1])
    for ours, theirs in zip(*grads, strict=True):
        torch.testing.assert_close(ours, theirs)


@pytest.mark.parametrize("user_embedding", [True, False])
def test_learns_the_next_item_of_a_chain(user_embedding) -> None:
    train, held, events, expected = chains()
    params = {**CHAIN, "user_embedding": user_embedding}
    model = create_model("caser", params).fit(train, held, context=FitContext(train_events=events))
    users = np.arange(train.shape[0])
    items, _ = model.recommend(users, train, 1, ScoreContext(history_events=events))
    assert (items[:, 0] == expected).mean() >= 0.9
    # an anonymous user (an index beyond training) is scored from the sequence alone
    anonymous = train.shape[0] + 3
    walk = [4, 5, 6, 7]
    history = matrix_of([(anonymous, item) for item in walk], (anonymous + 1, train.shape[1]))
    steps = T0 + pd.to_timedelta(np.arange(len(walk)), unit="h")
    walk_events = pd.DataFrame({"user_idx": anonymous, "item_idx": walk, "timestamp": steps})
    top, _ = model.recommend(np.array([anonymous]), history, 1, ScoreContext(history_events=walk_events))
    assert top[0, 0] == 8
    if user_embedding:  # users without windows keep the zero (anonymous) vector
        vectors = model.module_.user_embedding.weight.detach().numpy()
        assert not vectors[0].any() and np.abs(vectors[1:]).sum(axis=1).min() > 0


def test_bad_item_init_is_refused() -> None:
    with pytest.raises(ValueError, match="caser: 'item_init' must be 'random' or 'text', got 'words'"):
        create_model("caser", {"item_init": "words"})
