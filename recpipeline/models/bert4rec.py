"""BERT4Rec (Sun et al. 2019, "BERT4Rec: Sequential Recommendation with Bidirectional Encoder
Representations from Transformer").

A bidirectional transformer (SASRec's blocks without the causal mask) trained by the cloze task: in each
window of a user's latest ``max_len`` items a share ``mask_prob`` of the items is replaced by a ``[MASK]``
token and predicted from both sides; a share ``last_share`` of the windows instead masks only their last
item, as the paper adds, so training also sees the scoring situation. Scoring appends ``[MASK]`` after the
user's latest ``max_len - 1`` items and reads the item logits at that position. The output layer is the item
table itself (tied, as in the paper; the paper's extra projection head is left out) and the loss goes
through ``SequenceRecommender._item_loss`` (the exact softmax, or the sampled one on large catalogues).
The ``[MASK]`` token is row ``n_items + 1`` of the item table: not an item, never scored or recommended.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from pydantic import Field
from torch import nn

from recpipeline.models.sasrec import Heads, TransformerEncoder, TransformerSettings
from recpipeline.models.sequential import SequenceRecommender, last_items, training_windows
from recpipeline.models.settings import Dropout, Epochs, Patience


class BERT4Rec(SequenceRecommender):
    """Bidirectional masked-item (cloze) next-item model; early-stopped on validation NDCG@k."""

    name = "bert4rec"
    # token 0 pads, item i is token i + 1, the last token masks
    id_axes = {"item_embedding.weight": (0, (1, "items", 1))}
    search_space = {
        "factors": [32, 64, 128],
        "blocks": [1, 2],
        "dropout": [0.1, 0.2, 0.5],
        "mask_prob": [0.1, 0.2, 0.4],
        "max_len": [50, 100, 200],
    }

    class Settings(TransformerSettings):
        heads: Heads = 2
        max_len: int = Field(50, ge=2)
        """the latest items read, the ``[MASK]`` that scoring appends among them"""
        mask_prob: float = Field(0.2, gt=0, lt=1)
        """share of a training window's items masked (the cloze task)"""
        last_share: float = Field(0.1, ge=0, le=1)
        """share of the windows that mask only their last item, as scoring does"""
        dropout: Dropout = 0.1
        epochs: Epochs = 100
        patience: Patience = 10

    @property
    def _mask_token(self) -> int:
        return self.n_items_ + 1

    def _build_module(self) -> nn.Module:
        # tokens: 0 padding, 1..n_items the items, n_items + 1 [MASK]
        return TransformerEncoder(
            self.n_items_ + 2, self.factors, self.max_len, self.blocks, self.heads, self.dropout, causal=False
        )

    def _training_windows(self, events: pd.DataFrame) -> np.ndarray:
        """Windows of ``max_len`` tokens covering every item of every user with at least two items."""
        return training_windows(events, self.max_len - 1)

    def _training_pair(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A fresh cloze draw per batch: the masked input and the hidden item tokens (0 where not masked)."""
        real = batch > 0
        cloze = (torch.rand(batch.shape, device=batch.device) < self.mask_prob) & real
        only_last = torch.zeros_like(cloze)
        only_last[:, -1] = real[:, -1]  # windows are right-aligned: the last column is the latest item
        last = torch.rand(len(batch), 1, device=batch.device) < self.last_share
        cloze = torch.where(last, only_last, cloze)
        return batch.masked_fill(cloze, self._mask_token), batch * cloze

    def _score_tokens(self, events: pd.DataFrame, users: np.ndarray) -> np.ndarray:
        """The latest ``max_len - 1`` items, then ``[MASK]``: its state predicts the next item."""
        history = last_items(events, users, self.max_len - 1)
        return np.concatenate([history, np.full((len(users), 1), self._mask_token, np.int64)], axis=1)
