"""GRU4Rec (Hidasi et al. 2016, "Session-based Recommendations with Recurrent Neural Networks").

A GRU reads the user's latest ``max_len`` items; its state after the last one, projected, scores the next
item against the shared item embeddings. Here sequences are per user rather than per session, and the loss
is a softmax cross-entropy (full, or sampled with logQ correction above ``full_softmax_max_items``; see
``recpipeline.models.sequential``) instead of the paper's session-parallel ranking losses.
"""

from __future__ import annotations

import torch
from torch import nn

from recpipeline.models.sequential import SequenceRecommender, init_embeddings
from recpipeline.models.settings import Count


class _GRU4RecModule(nn.Module):
    def __init__(self, n_items: int, dim: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.item_embedding = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.dropout = nn.Dropout(dropout)
        self.gru = nn.GRU(
            dim, dim, num_layers=layers, batch_first=True, dropout=dropout if layers > 1 else 0.0
        )
        self.project = nn.Linear(dim, dim)
        init_embeddings(self.item_embedding)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        states, _ = self.gru(self.dropout(self.item_embedding(tokens)))
        return self.project(self.dropout(states))


class GRU4Rec(SequenceRecommender):
    """Recurrent next-item model; early-stopped on validation NDCG@k."""

    name = "gru4rec"
    id_axes = {"item_embedding.weight": (0, (1, "items"))}
    search_space = {
        "factors": [32, 64, 128],
        "layers": [1, 2],
        "dropout": [0.1, 0.2, 0.5],
        "max_len": [50, 100, 200],
    }

    class Settings(SequenceRecommender.Settings):
        layers: Count = 1
        """stacked GRU layers"""

    def _build_module(self) -> nn.Module:
        return _GRU4RecModule(self.n_items_, self.factors, self.layers, self.dropout)
