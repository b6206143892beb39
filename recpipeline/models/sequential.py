"""Shared machinery of the next-item sequence models (SASRec, GRU4Rec).

A user is their time-ordered item sequence (consecutive repeats of one item collapsed: a view, cart and
purchase of the same item are one step). Training cuts each sequence into windows of ``max_len + 1`` items
(right-aligned, left-padded with 0; item ``i`` is token ``i + 1``) and learns to predict every next item with
a full softmax over the catalogue (cross-entropy, which trains faster and better than the sampled BCE of the
original papers on catalogues of this size). Scoring encodes the last ``max_len`` items of each user's
history events and reads the next-item logits at the last position.
"""

from __future__ import annotations

from abc import abstractmethod

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from recpipeline.models.base import Logger, no_log
from recpipeline.models.context import EVENT_COLUMNS, FitContext, ScoreContext, time_ordered
from recpipeline.models.neural import TorchRecommender, resolve_device
from recpipeline.models.similarity import cosine_neighbours

#: sequences per forward pass when scoring
SCORE_BATCH_USERS = 512


def _collapsed(events: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(users, items) in user-then-time order, consecutive repeats of the same item by a user dropped."""
    ordered = time_ordered(events[["user_idx", "item_idx", "timestamp"]])
    users = ordered["user_idx"].to_numpy(np.int64)
    items = ordered["item_idx"].to_numpy(np.int64)
    keep = np.ones(len(users), dtype=bool)
    keep[1:] = (users[1:] != users[:-1]) | (items[1:] != items[:-1])
    return users[keep], items[keep]


def _steps_from_end(users: np.ndarray) -> np.ndarray:
    """For user-sorted rows: how many later rows the same user has (0 = the user's latest item)."""
    n = len(users)
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]]) if n else np.empty(0, np.int64)
    ends = np.r_[starts[1:], n] - 1
    return np.repeat(ends, np.diff(np.r_[starts, n])) - np.arange(n)


def last_items(events: pd.DataFrame, users: np.ndarray, length: int) -> np.ndarray:
    """``(len(users), length)`` tokens: each user's latest ``length`` items, right-aligned, 0-padded."""
    users = np.asarray(users, dtype=np.int64)
    seq_users, items = _collapsed(events[events["user_idx"].isin(users)])
    back = _steps_from_end(seq_users)
    keep = back < length
    out = np.zeros((len(users), length), dtype=np.int64)
    rows = pd.Index(users).get_indexer(seq_users[keep])
    out[rows, length - 1 - back[keep]] = items[keep] + 1
    return out


def training_windows(events: pd.DataFrame, max_len: int) -> np.ndarray:
    """Every next-item target of every user exactly once, in windows of ``max_len + 1`` tokens.

    Window ``w`` (counted from a user's latest item) holds the items ``w * max_len .. w * max_len + max_len``
    steps from the end, right-aligned; inputs are ``window[:, :-1]``, targets ``window[:, 1:]``.
    """
    users, items = _collapsed(events)
    back = _steps_from_end(users)
    lengths = np.bincount(users) if len(users) else np.empty(0, np.int64)
    per_user = np.where(lengths >= 2, (lengths - 2) // max_len + 1, 0)  # windows with at least one target
    offsets = np.r_[0, np.cumsum(per_user)[:-1]] if len(per_user) else per_user
    out = np.zeros((int(per_user.sum()), max_len + 1), dtype=np.int64)
    window = back // max_len
    primary = window < per_user[users]
    out[offsets[users[primary]] + window[primary], max_len - back[primary] % max_len] = items[primary] + 1
    # the item right before a window's first target also opens that window (as its column 0)
    opener = (back % max_len == 0) & (back > 0)
    out[offsets[users[opener]] + window[opener] - 1, 0] = items[opener] + 1
    return out


def init_embeddings(*tables: nn.Embedding) -> None:
    """Small initial embeddings: the item table is also the output layer, and N(0, 1) rows would start the
    softmax with logits of standard deviation ~sqrt(d), peaked and slow to train."""
    for table in tables:
        nn.init.normal_(table.weight, std=0.02)
        if table.padding_idx is not None:
            nn.init.zeros_(table.weight[table.padding_idx])


class SequenceRecommender(TorchRecommender):
    """Base of the sequence models: the module maps ``(batch, max_len)`` tokens to ``(batch, max_len, d)``
    states and has an ``item_embedding`` table (token 0 = padding) tied to the output layer.
    """

    event_columns = EVENT_COLUMNS

    @abstractmethod
    def _build_module(self) -> nn.Module: ...

    def fit(
        self,
        train: sp.csr_matrix,
        validation: sp.csr_matrix | None = None,
        *,
        context: FitContext | None = None,
        log: Logger = no_log,
    ) -> SequenceRecommender:
        self._start_fit(train, context)
        if context is None or context.train_events is None:
            raise ValueError(f"{self.name}: needs the time-ordered train events (FitContext.train_events)")
        self.device_ = resolve_device(self.device)
        windows = torch.from_numpy(training_windows(context.train_events, self.max_len)).to(self.device_)
        rng = np.random.default_rng(self.seed)
        log(f"{self.name}: {len(windows)} training windows of {self.max_len} steps")

        def run_epoch(epoch: int) -> str:
            order = torch.from_numpy(rng.permutation(len(windows))).to(self.device_)
            total, n_targets = 0.0, 0
            for begin in range(0, len(order), self.batch_size):
                batch = windows[order[begin : begin + self.batch_size]]
                targets = batch[:, 1:]
                mask = targets > 0
                states = self.module_(batch[:, :-1])[mask]
                loss = F.cross_entropy(self._logits(states), targets[mask] - 1)
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                total += float(loss.detach()) * int(mask.sum())
                n_targets += int(mask.sum())
            return f"loss {total / max(n_targets, 1):.4f}"

        score_context = ScoreContext(history_events=context.train_events)
        with self._seeded():
            self.module_ = self._build_module().to(self.device_)
            optimiser = torch.optim.Adam(
                self.module_.parameters(), lr=self.lr, weight_decay=self.weight_decay
            )
            self._train_epochs(run_epoch, self._validator(train, validation, score_context), log)
        return self

    def _logits(self, states: torch.Tensor) -> torch.Tensor:
        """Next-item logits over the catalogue (the padding token is not an item)."""
        return states @ self.module_.item_embedding.weight[1:].T

    def _score(self, users: np.ndarray, history: sp.csr_matrix, context: ScoreContext | None) -> np.ndarray:
        """Next-item logits after each user's latest ``max_len`` history events (time order from context)."""
        if context is None or context.history_events is None:
            raise ValueError(
                f"{self.name}: scores from the time order of each user's events; pass "
                "ScoreContext(history_events=...) to score / recommend"
            )
        tokens = torch.from_numpy(last_items(context.history_events, users, self.max_len)).to(self.device_)
        out = np.empty((len(tokens), self.n_items_), dtype=np.float32)
        for begin in range(0, len(tokens), SCORE_BATCH_USERS):
            states = self.module_(tokens[begin : begin + SCORE_BATCH_USERS])[:, -1]
            out[begin : begin + len(states)] = self._logits(states).float().cpu().numpy()
        return out

    def similar_items(self, items: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Cosine over the item embeddings (input and output side are the same table)."""
        vectors = self.module_.item_embedding.weight[1:].detach().float().cpu().numpy()
        return cosine_neighbours(vectors, np.asarray(items, dtype=np.int64), n)
