"""Fast draws for the generator: items by fixed weights within a category, and ``u.v`` for sampled pairs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TEMPERATURE = 0.25  # softmax temperature of u.v within a category
POP_POWER = 0.8  # exponent a on the Zipf popularity in item choice
_GUIDE_PER_ITEM = 2  # guide-table buckets per item of the largest category (inverse-CDF steps ~1)
_BLOCK_CELLS = 1 << 17  # candidates per block: cache-sized temporaries (faster), never changes results


def block_rows(width: int) -> int:
    """Rows per block so that a block of ``width`` candidates per row stays under ``_BLOCK_CELLS``."""
    return max(1, _BLOCK_CELLS // max(width, 1))


@dataclass(frozen=True)
class ItemSampler:
    """Draws an item of a given category with probability proportional to fixed weights (inverse CDF).

    A guide table (Chen & Asau) maps equal slices of a category's [0, 1) to the first candidate position, so a
    draw is a lookup plus a step or two instead of a binary search over the catalogue.
    """

    items: np.ndarray  # item indices grouped by category
    cum: np.ndarray  # cumulative weight share within the category, aligned with items; exactly 1.0 at its end
    guide: np.ndarray  # (n_categories * buckets,) first position whose cum exceeds the slice's lower edge
    buckets: int

    @classmethod
    def build(cls, order: np.ndarray, bounds: np.ndarray, weights: np.ndarray) -> ItemSampler:
        """``order``: item indices grouped by category, category c at ``order[bounds[c]:bounds[c + 1]]``."""
        n_categories = bounds.size - 1
        buckets = max(1, _GUIDE_PER_ITEM * int(np.diff(bounds).max()))
        ordered_weights = weights[order]
        cum = np.ones(order.size)  # a weightless category is never drawn from; ones keep walks bounded
        guide = np.empty(n_categories * buckets, dtype=np.int64)
        edges = np.arange(buckets) / buckets
        for category in range(n_categories):
            low, high = int(bounds[category]), int(bounds[category + 1])
            running = np.cumsum(ordered_weights[low:high])
            if high > low and running[-1] > 0:
                # exactly 1.0 at the end: a walk stops there at the latest, uniforms < 1
                cum[low:high] = running / running[-1]
            guide[category * buckets : (category + 1) * buckets] = low + np.searchsorted(
                cum[low:high], edges, side="right"
            )
        return cls(order, cum, guide, buckets)

    def draw(self, categories: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
        """Item for each (category, uniform in [0, 1)); monotone in the uniform within a category."""
        slot = np.minimum((uniforms * self.buckets).astype(np.int64), self.buckets - 1)
        position = self.guide[categories * self.buckets + slot]
        todo = np.flatnonzero(self.cum[position] <= uniforms)
        while todo.size:  # a few rounds: a guide slice spans ~1 item
            position[todo] += 1
            todo = todo[self.cum[position[todo]] <= uniforms[todo]]
        return self.items[position]


@dataclass(frozen=True)
class Affinity:
    """``u.v`` for many sampled (user, item) pairs.

    Item vectors are kept as 32-byte records (8 float32s), one array per 8 dimensions: numpy's ``take``
    copies such records on a fast path, several times quicker than 64-byte rows or 2-D fancy indexing,
    which would otherwise dominate a large day.
    """

    item_parts: tuple[np.ndarray, ...]
    user_vec: np.ndarray  # (n_users, 8 * len(item_parts)) float32, zero-padded

    @classmethod
    def build(cls, item_vec: np.ndarray, user_vec: np.ndarray) -> Affinity:
        dims = item_vec.shape[1]
        width = -(-dims // 8) * 8

        def padded(vec: np.ndarray) -> np.ndarray:
            return np.pad(vec.astype(np.float32), ((0, 0), (0, width - dims)))

        items = padded(item_vec)
        record = np.dtype((np.void, 32))
        parts = tuple(
            np.ascontiguousarray(items[:, k : k + 8]).view(record).ravel() for k in range(0, width, 8)
        )
        for part in parts:
            part.flags.writeable = False
        user = padded(user_vec)
        user.flags.writeable = False
        return cls(parts, user)

    def dots(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """(rows, width) float32: ``u.v`` of user ``users[i]`` with each item of ``items[i]``."""
        rows, width = items.shape
        flat = items.ravel()
        user_vectors = self.user_vec[users]
        out = np.zeros((rows, width, 1), dtype=np.float32)
        for k, part in enumerate(self.item_parts):
            vecs = part.take(flat).view(np.float32).reshape(rows, width, 8)
            out += np.matmul(vecs, user_vectors[:, 8 * k : 8 * k + 8, None])
        return out[:, :, 0]
