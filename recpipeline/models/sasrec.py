"""SASRec (Kang & McAuley 2018, "Self-Attentive Sequential Recommendation").

Causal self-attention over the user's latest ``max_len`` items (learned positions, pre-norm transformer
blocks); the state at the last position scores the next item against the shared item embeddings. Training
and scoring details are in ``recpipeline.models.sequential``. The transformer here also serves BERT4Rec
(``recpipeline.models.bert4rec``), without the causal mask.
"""

from __future__ import annotations

from typing import Annotated, Self

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from recpipeline.models.sequential import SequenceRecommender, init_embeddings
from recpipeline.models.settings import Count

#: additive attention mask value: finite, so a row with every key masked (padding) stays finite
_MASKED = -1e9


#: attention heads per block
Heads = Annotated[
    int, Field(ge=1, description="attention heads per block (each of factors / heads dimensions)")
]


class TransformerSettings(SequenceRecommender.Settings):
    """The transformer's shape (SASRec, BERT4Rec): its heads split ``factors``."""

    blocks: Count = 2
    """transformer blocks"""
    heads: Heads = 1

    @model_validator(mode="after")
    def _heads_split_factors(self) -> Self:
        if self.factors % self.heads:
            raise ValueError(f"factors ({self.factors}) must be divisible by heads ({self.heads})")
        return self


class AttentionBlock(nn.Module):
    """Pre-norm transformer block: self-attention under an additive mask, then a feed-forward layer."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.attention_norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.ff_norm = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(dim, dim))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, length, dim = x.shape
        q, k, v = (
            self.qkv(self.attention_norm(x)).view(batch, length, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        )
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + self.dropout(self.out(attended.transpose(1, 2).reshape(batch, length, dim)))
        return x + self.dropout(self.ff(self.ff_norm(x)))


class TransformerEncoder(nn.Module):
    """Token + learned position embeddings through ``blocks`` attention blocks; padding (token 0) is never
    attended to. ``causal``: a position sees only itself and earlier ones (SASRec); else all (BERT4Rec)."""

    def __init__(
        self, n_tokens: int, dim: int, max_len: int, blocks: int, heads: int, dropout: float, causal: bool
    ) -> None:
        super().__init__()
        self.item_embedding = nn.Embedding(n_tokens, dim, padding_idx=0)
        self.position_embedding = nn.Embedding(max_len, dim)
        self.blocks = nn.ModuleList(AttentionBlock(dim, heads, dropout) for _ in range(blocks))
        self.norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        order = torch.full((max_len, max_len), _MASKED) if causal else torch.zeros(max_len, max_len)
        self.register_buffer("order", torch.triu(order, diagonal=1), persistent=False)
        init_embeddings(self.item_embedding, self.position_embedding)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        length = tokens.shape[1]
        real = (tokens > 0).unsqueeze(-1)
        x = self.dropout(self.item_embedding(tokens) + self.position_embedding.weight[:length]) * real
        # (batch, 1, query, key): causal where so built, and no attention to padding keys
        mask = self.order[:length, :length] + torch.where(real.transpose(1, 2), 0.0, _MASKED).unsqueeze(1)
        for block in self.blocks:
            x = block(x, mask) * real
        return self.norm(x)


class SASRec(SequenceRecommender):
    """Self-attentive next-item model; early-stopped on validation NDCG@k."""

    name = "sasrec"
    # token 0 pads, item i is token i + 1
    id_axes = {"item_embedding.weight": (0, (1, "items"))}
    search_space = {
        "factors": [32, 64, 128],
        "blocks": [1, 2],
        "dropout": [0.1, 0.2, 0.5],
        "max_len": [50, 100, 200],
    }

    Settings = TransformerSettings

    def _build_module(self) -> nn.Module:
        return TransformerEncoder(
            self.n_items_ + 1, self.factors, self.max_len, self.blocks, self.heads, self.dropout, causal=True
        )
