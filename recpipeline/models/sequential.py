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
from collections.abc import Iterator
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from recpipeline.models.base import Logger
from recpipeline.models.context import EVENT_COLUMNS, FitContext, ScoreContext, time_ordered
from recpipeline.models.item_init import pca_projection, ridge_cold_items, title_vectors
from recpipeline.models.loop import Batch, Phase, Training
from recpipeline.models.neural import TorchRecommender
from recpipeline.models.settings import (
    BatchSize,
    Dropout,
    Epochs,
    Factors,
    LearningRate,
    Patience,
    TorchSettings,
    WeightDecay,
)
from recpipeline.models.similarity import cosine_neighbours
from recpipeline.models.text import DEFAULT_TEXT_ENCODER, check_text_encoder

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

    class Settings(TorchSettings):
        """What every sequence model takes; ``factors`` to ``patience`` with the defaults most of them use."""

        factors: Factors = 64
        max_len: int = Field(50, ge=1)
        """the latest items of a user's sequence the model reads"""
        dropout: Dropout = 0.2
        lr: LearningRate = 3e-3
        weight_decay: WeightDecay = 0.0
        epochs: Epochs = 30
        batch_size: BatchSize = 128
        patience: Patience = 5
        full_softmax_max_items: int = Field(10_000, ge=0)
        """the exact softmax up to this many items; above it a sampled one (``_item_loss``)"""
        sampled_negatives: int = Field(1024, ge=1)
        """negatives per batch of the sampled softmax"""
        negative_sampling: Literal["uniform", "popularity"] = "popularity"
        """the sampled softmax's proposal"""
        item_init: Literal["random", "text"] = "random"
        """the item table's start: random, or the titles' text-encoder vectors (``models.item_init``)"""

    def check_params(self) -> None:
        """With ``item_init: text`` the default text encoder must be installed (else only ``fit`` says so)."""
        if self.item_init == "text":
            check_text_encoder(self.name, DEFAULT_TEXT_ENCODER)

    @abstractmethod
    def _build_module(self) -> nn.Module: ...

    def training(self, train: sp.csr_matrix, context: FitContext, log: Logger) -> Training:
        """The windows shuffled once a pass, ``batch_size`` at a time, each cut into its (input, target)
        pair; the loss is ``_item_loss`` over the positions with a target."""
        if context.train_events is None:
            raise ValueError(f"{self.name}: needs the time-ordered train events (FitContext.train_events)")
        windows = torch.from_numpy(self._training_windows(context.train_events)).to(self.device_)
        rng = np.random.default_rng(self.seed)
        log(f"{self.name}: {len(windows)} training windows of {self.max_len} steps")
        proposal = self._negative_proposal(windows[:, 1:])
        titles = None

        def prepare(module: nn.Module) -> None:
            nonlocal titles
            titles = self._init_item_embeddings(context)

        def finish() -> None:
            if titles is not None:
                self._place_untrained_items(titles, train)

        def batches() -> Iterator[Batch]:
            # shuffled once per pass: each batch is then a slice (a view), not a gather
            shuffled = windows[torch.from_numpy(rng.permutation(len(windows))).to(self.device_)]
            for begin in range(0, len(shuffled), self.batch_size):
                inputs, targets = self._training_pair(shuffled[begin : begin + self.batch_size])
                yield inputs, targets, targets > 0

        def loss(
            module: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor
        ) -> torch.Tensor:
            return self._item_loss(module, module(inputs)[mask], targets[mask], proposal)

        return Training(
            (Phase(batches, loss, weight=lambda inputs, targets, mask: mask.sum()),),
            lr=self.lr,
            weight_decay=self.weight_decay,
            prepare=prepare,
            finish=finish,
            score_context=ScoreContext(history_events=context.train_events),
        )

    def _training_windows(self, events: pd.DataFrame) -> np.ndarray:
        """The token windows training draws its batches from (next-item windows of ``max_len + 1``)."""
        return training_windows(events, self.max_len)

    def _training_pair(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(module input tokens, target tokens at each output position; 0 = no target there)."""
        return batch[:, :-1], batch[:, 1:]

    def _init_item_embeddings(self, context: FitContext) -> np.ndarray | None:
        """With ``item_init: text`` the item rows start from the titles' PCA (``models.item_init``); returns
        the title vectors then, None otherwise. A warm start keeps the rows its previous fit learned."""
        if self.item_init != "text":
            return None
        titles = title_vectors(self.name, context.item_features, self.n_items_)
        projected, filled = pca_projection(titles, self.factors)
        use = (np.abs(titles).sum(axis=1) > 0)[:, None] & filled[None, :]
        if context.warm_start is not None:
            use[: context.warm_start.n_items_] = False
        with torch.no_grad():
            table = self._item_vectors(self.module_)
            table.copy_(torch.where(torch.from_numpy(use), torch.from_numpy(projected), table.cpu()))
        return titles

    def _place_untrained_items(self, titles: np.ndarray, train: sp.csr_matrix) -> None:
        """Items without training interactions get the embedding their title predicts (``item_init``)."""
        with torch.no_grad():
            table = self._item_vectors(self.module_)
            placed = ridge_cold_items(titles, table.float().cpu().numpy(), train.getnnz(axis=0) > 0)
            table.copy_(torch.from_numpy(placed))

    def _item_vectors(self, module: nn.Module) -> torch.Tensor:
        """The catalogue's rows of ``module``'s item table: token 0 is padding, tokens past ``n_items_`` (a
        mask) are not items."""
        return module.item_embedding.weight[1 : self.n_items_ + 1]

    def _negative_proposal(self, targets: torch.Tensor) -> torch.Tensor:
        """The sampled softmax's proposal over items from the training ``targets`` (tokens, 0 = padding):
        uniform, or proportional to each item's target count (+1, so every item can be drawn)."""
        n_items = self.n_items_
        if self.negative_sampling == "popularity":
            counts = torch.bincount(targets.reshape(-1), minlength=n_items + 1)[1:].float() + 1.0
        else:
            counts = torch.ones(n_items, device=targets.device)
        return counts / counts.sum()

    def _item_loss(
        self, module: nn.Module, states: torch.Tensor, targets: torch.Tensor, proposal: torch.Tensor
    ) -> torch.Tensor:
        """Mean cross-entropy of predicting item tokens ``targets`` (>= 1) from ``states`` (one row each) of
        ``module``.

        Up to ``full_softmax_max_items`` items: the exact softmax over the catalogue. Above: a sampled
        softmax, the target against ``sampled_negatives`` items drawn (shared by the batch) from the proposal
        ``q`` (``_negative_proposal``), every logit corrected by ``-log q`` (logQ correction: the
        sampled softmax's gradient is then an unbiased-in-the-limit estimate of the full one) and draws that
        hit a row's own target masked out.
        """
        limit = self.full_softmax_max_items
        if self.n_items_ <= limit:
            return F.cross_entropy(self._logits(module, states), targets - 1)
        samples = self.sampled_negatives
        negatives = torch.multinomial(proposal, samples, replacement=True)
        table = module.item_embedding.weight
        log_q = proposal.log()
        positive = (states * table[targets]).sum(-1) - log_q[targets - 1]
        sampled = states @ table[negatives + 1].T - log_q[negatives]
        sampled = sampled.masked_fill(negatives[None, :] == (targets - 1)[:, None], float("-inf"))
        logits = torch.cat([positive[:, None], sampled], dim=1)
        return F.cross_entropy(logits, torch.zeros_like(targets))

    def _logits(self, module: nn.Module, states: torch.Tensor) -> torch.Tensor:
        """Next-item logits over the catalogue (the padding token is not an item)."""
        return states @ self._item_vectors(module).T

    def _score(self, users: np.ndarray, history: sp.csr_matrix, context: ScoreContext | None) -> np.ndarray:
        """Next-item logits after each user's latest ``max_len`` history events (time order from context)."""
        if context is None or context.history_events is None:
            raise ValueError(
                f"{self.name}: scores from the time order of each user's events; pass "
                "ScoreContext(history_events=...) to score / recommend"
            )
        tokens = torch.from_numpy(self._score_tokens(context.history_events, users)).to(self.device_)
        out = np.empty((len(tokens), self.n_items_), dtype=np.float32)
        for begin in range(0, len(tokens), SCORE_BATCH_USERS):
            states = self.module_(tokens[begin : begin + SCORE_BATCH_USERS])[:, -1]
            out[begin : begin + len(states)] = self._logits(self.module_, states).float().cpu().numpy()
        return out

    def _score_tokens(self, events: pd.DataFrame, users: np.ndarray) -> np.ndarray:
        """The module's input tokens for scoring ``users``: their latest ``max_len`` items."""
        return last_items(events, users, self.max_len)

    def similar_items(self, items: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Cosine over the item embeddings (input and output side are the same table)."""
        vectors = self._item_vectors(self.module_).detach().float().cpu().numpy()
        return cosine_neighbours(vectors, np.asarray(items, dtype=np.int64), n)
