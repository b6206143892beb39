"""Caser (Tang & Wang 2018, "Personalized Top-N Sequential Recommendation via Convolutional Sequence
Embedding").

The user's latest ``max_len`` (the paper's L) items form an L x d "image": horizontal filters of every height
1..L (max-pooled over time) catch union-level and skip patterns, vertical filters weight the L positions;
both feed a dense layer. With ``user_embedding`` the user's learned vector joins before the output layer,
as in the paper. The output layer is the item table (tied, which the paper does not do), trained with the
full softmax over the next item (``SequenceRecommender._item_loss``) instead of the paper's sampled BCE on
the next T items. User vectors start at zero and only users with training windows move them, so a user
without training events (an anonymous session's prefix, an index beyond training) is scored from the
sequence alone, with the zero vector.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from recpipeline.models.sequential import (
    SequenceRecommender,
    _collapsed,
    init_embeddings,
    last_items,
)
from recpipeline.models.settings import BatchSize, Count, Dropout


def caser_windows(events: pd.DataFrame, length: int) -> np.ndarray:
    """One row per next-item target: user token (``user_idx + 1``), the ``length`` items before the target
    (right-aligned, 0-padded at a sequence's start), the target token; consecutive repeats collapsed."""
    users, items = _collapsed(events)
    first = np.r_[True, users[1:] != users[:-1]] if len(users) else np.empty(0, bool)
    position = np.arange(len(users)) - np.maximum.accumulate(np.where(first, np.arange(len(users)), 0))
    targets = np.flatnonzero(position >= 1)
    out = np.zeros((len(targets), length + 2), dtype=np.int64)
    out[:, 0], out[:, -1] = users[targets] + 1, items[targets] + 1
    for lag in range(1, length + 1):  # over the L columns, each vectorised over every target
        valid = position[targets] >= lag
        out[valid, length + 1 - lag] = items[targets[valid] - lag] + 1
    return out


class _CaserModule(nn.Module):
    def __init__(
        self,
        n_items: int,
        n_users: int,
        dim: int,
        length: int,
        horizontal: int,
        vertical: int,
        dropout: float,
        user_embedding: bool,
    ) -> None:
        super().__init__()
        self.item_embedding = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.vertical = nn.Conv2d(1, vertical, (length, 1))
        self.horizontal = nn.ModuleList(nn.Conv2d(1, horizontal, (h, dim)) for h in range(1, length + 1))
        self.hidden = nn.Linear(vertical * dim + horizontal * length, dim)
        self.dropout = nn.Dropout(dropout)
        self.user_embedding = nn.Embedding(n_users + 1, dim, padding_idx=0) if user_embedding else None
        self.output = nn.Linear(2 * dim if user_embedding else dim, dim)
        init_embeddings(self.item_embedding)
        if self.user_embedding is not None:
            nn.init.zeros_(self.user_embedding.weight)  # untrained users stay at the anonymous zero vector

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(batch, 1 + L)`` tokens (user, then items) -> ``(batch, 1, dim)``: one next-item state.

        The convolutions are computed as the matrix products they are (the layers hold the weights): CPU
        convolution kernels spent half a step on these one-channel images."""
        image = self.item_embedding(tokens[:, 1:])  # (batch, L, dim)
        batch, length, dim = image.shape
        # vertical filter v: a weighted sum of the L rows, (batch, vertical, dim) flattened as the conv's
        vertical = (self.vertical.weight.view(-1, length) @ image + self.vertical.bias[:, None]).flatten(1)
        rows = image.reshape(batch, length * dim)
        horizontal = [  # height h: the h-row windows, consecutive in memory, times the filters
            F.relu(F.linear(rows.unfold(1, h * dim, dim), conv.weight.view(-1, h * dim), conv.bias)).amax(1)
            for h, conv in enumerate(self.horizontal, start=1)
        ]
        z = F.relu(self.hidden(self.dropout(torch.cat([vertical, *horizontal], dim=1))))
        if self.user_embedding is not None:
            z = torch.cat([z, self.user_embedding(tokens[:, 0])], dim=1)
        return self.output(self.dropout(z)).unsqueeze(1)


class Caser(SequenceRecommender):
    """Convolutional next-item model over the latest ``max_len`` items; early-stopped on validation NDCG@k."""

    name = "caser"
    id_axes = {
        "item_embedding.weight": (0, (1, "items")),
        "user_embedding.weight": (0, (1, "users")),
    }
    search_space = {
        "factors": [32, 64, 128],
        "max_len": [3, 5, 8],
        "horizontal": [8, 16, 32],
        "vertical": [2, 4, 8],
        "dropout": [0.2, 0.5],
        "user_embedding": [True, False],
    }

    class Settings(SequenceRecommender.Settings):
        max_len: int = Field(5, ge=1)
        """the paper's L: the latest items, whose embeddings form the convolved image"""
        horizontal: Count = 16
        """horizontal filters per height 1..L"""
        vertical: Count = 4
        """vertical filters"""
        user_embedding: bool = True
        """a learned user vector joins before the output layer, as in the paper"""
        dropout: Dropout = 0.5
        batch_size: BatchSize = 512

    def _build_module(self) -> nn.Module:
        return _CaserModule(
            self.n_items_,
            self.n_users_,
            self.factors,
            self.max_len,
            self.horizontal,
            self.vertical,
            self.dropout,
            self.user_embedding,
        )

    def _training_windows(self, events: pd.DataFrame) -> np.ndarray:
        return caser_windows(events, self.max_len)

    def _training_pair(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(user and the L items before the target, the target as the one output position)."""
        return batch[:, :-1], batch[:, -1:]

    def _score_tokens(self, events: pd.DataFrame, users: np.ndarray) -> np.ndarray:
        """User token (0 beyond training: the anonymous vector), then the latest ``max_len`` items."""
        users = np.asarray(users, dtype=np.int64)
        user_tokens = np.where(users < self.n_users_, users + 1, 0)
        return np.concatenate([user_tokens[:, None], last_items(events, users, self.max_len)], axis=1)
