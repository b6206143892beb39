"""CFGAN (Chae, Kang, Kim & Lee 2018, "CFGAN: A Generic Collaborative Filtering Framework based on
Generative Adversarial Networks"): vector-wise adversarial collaborative filtering.

The generator maps a user's history vector ``c_u`` (the condition) to a purchase vector ``r_hat_u`` over all
items (sigmoid outputs); the discriminator tells real purchase vectors from generated ones, both given
``c_u``. Fed as is, the generator would win by outputting all ones (the real vector is 1 on every purchased
item and the discriminator only sees the purchased positions), so the paper adds two negative-sampling
schemes, resampled for every user and step:

- ZR (zero reconstruction): a ``zr_ratio`` share of the user's unobserved items is pushed to 0 by a
  squared-error term weighted ``zr_weight`` in the generator's loss;
- PM (partial masking): the generator's output is shown to the discriminator on the purchased items plus a
  ``pm_ratio`` share of unobserved ones, so it learns to expect zeros there.

The paper's best variant uses both (CFGAN_ZP) on the purchase vector itself (real = condition, its
"i"-variant). Scores are the generator's output for any history row (fold-in).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from recpipeline.models.base import Logger, no_log, prepare_matrix
from recpipeline.models.context import FitContext, ScoreContext
from recpipeline.models.neural import (
    TorchRecommender,
    TrainingRows,
    frozen,
    nonempty_rows,
    resolve_device,
    score_rows,
)
from recpipeline.models.similarity import cosine_neighbours


def _tower(width_in: int, hidden: list[int], width_out: int) -> nn.Sequential:
    """Sigmoid hidden layers (the paper's activation) and a linear output of ``width_out`` logits."""
    widths = [width_in, *hidden]
    layers: list[nn.Module] = []
    for a, b in zip(widths[:-1], widths[1:], strict=True):
        layers += [nn.Linear(a, b), nn.Sigmoid()]
    return nn.Sequential(*layers, nn.Linear(widths[-1], width_out))


class _CFGAN(nn.Module):
    def __init__(self, n_items: int, generator: list[int], discriminator: list[int]) -> None:
        super().__init__()
        self.generator = _tower(n_items, generator, n_items)
        self.discriminator = _tower(2 * n_items, discriminator, 1)

    def forward(self, condition: torch.Tensor) -> torch.Tensor:
        """The generated purchase vector (probabilities) for history rows ``condition``."""
        return torch.sigmoid(self.generator(condition))

    def judge(self, purchases: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """The discriminator's logit that ``purchases`` is a real purchase vector of user ``condition``."""
        return self.discriminator(torch.cat([purchases, condition], dim=1)).squeeze(1)


class CFGAN(TorchRecommender):
    """CFGAN with ZR and PM negative sampling, early-stopped on validation NDCG@k (module docstring)."""

    name = "cfgan"
    # the discriminator reads a purchase vector beside a generated one
    id_axes = {
        "generator.0.weight": (1, ("items",)),
        "generator.2.weight": (0, ("items",)),
        "generator.2.bias": (0, ("items",)),
        "discriminator.0.weight": (1, ("items", "items")),
    }
    search_space = {
        "zr_ratio": [0.3, 0.7],
        "pm_ratio": [0.3, 0.7],
        "zr_weight": [0.03, 0.1],
        "generator": [[400], [400, 400]],
    }
    #: purchase vectors are 0/1 (the paper's setting; not a hyperparameter here)
    binarize = True

    def __init__(
        self,
        generator: list[int] | None = None,
        discriminator: list[int] | None = None,
        zr_ratio: float = 0.7,
        pm_ratio: float = 0.7,
        zr_weight: float = 0.1,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        generator_steps: int = 1,
        discriminator_steps: int = 1,
        epochs: int = 400,
        batch_size: int = 64,
        patience: int = 20,
        k: int = 10,
        seed: int = 42,
        device: str = "auto",
        num_threads: int = 0,
    ) -> None:
        super().__init__(
            generator=[400] if generator is None else generator,
            discriminator=[125] if discriminator is None else discriminator,
            zr_ratio=zr_ratio,
            pm_ratio=pm_ratio,
            zr_weight=zr_weight,
            lr=lr,
            weight_decay=weight_decay,
            generator_steps=generator_steps,
            discriminator_steps=discriminator_steps,
            epochs=epochs,
            batch_size=batch_size,
            patience=patience,
            k=k,
            seed=seed,
            device=device,
            num_threads=num_threads,
        )

    def _build_module(self) -> nn.Module:
        return _CFGAN(self.n_items_, self.generator, self.discriminator)

    def fit(
        self,
        train: sp.csr_matrix,
        validation: sp.csr_matrix | None = None,
        *,
        context: FitContext | None = None,
        log: Logger = no_log,
    ) -> CFGAN:
        self._start_fit(train, context)
        self.device_ = resolve_device(self.device)
        order_rng = np.random.default_rng(self.seed)
        rows = TrainingRows(nonempty_rows(train, self.binarize), self.device_)

        def run_passes(
            passes: int, optimiser: torch.optim.Optimizer, loss_of: Callable[[torch.Tensor], torch.Tensor]
        ) -> torch.Tensor:
            """``passes`` shuffled passes over the users; the mean loss, summed on the device (no sync)."""
            total, steps = torch.zeros((), device=self.device_), 0
            for _ in range(passes):
                for x in rows.batches(order_rng.permutation(len(rows)), self.batch_size):
                    loss = loss_of(x)
                    optimiser.zero_grad(set_to_none=True)
                    loss.backward()
                    optimiser.step()
                    total, steps = total + loss.detach(), steps + 1
            return total / max(steps, 1)

        def run_epoch(epoch: int) -> str:
            d_mean = run_passes(
                self.discriminator_steps, d_optimiser, lambda x: self._discriminator_loss(module, x)
            )
            with frozen(module.discriminator):
                g_mean = run_passes(
                    self.generator_steps, g_optimiser, lambda x: self._generator_loss(module, x)
                )
            return f"loss discriminator {float(d_mean):.4f} generator {float(g_mean):.4f}"

        with self._seeded():
            module = self.module_ = self._initial_module(context)
            g_optimiser = torch.optim.Adam(
                module.generator.parameters(), lr=self.lr, weight_decay=self.weight_decay
            )
            d_optimiser = torch.optim.Adam(
                module.discriminator.parameters(), lr=self.lr, weight_decay=self.weight_decay
            )
            self._train_epochs(run_epoch, self._validator(train, validation), log)
        return self

    @staticmethod
    def _sample(x: torch.Tensor, ratio: float) -> torch.Tensor:
        """A 0/1 mask of about ``ratio`` of each row's unobserved items, drawn uniformly."""
        return ((torch.rand_like(x) < ratio) & (x == 0)).float()

    def _discriminator_loss(self, module: _CFGAN, x: torch.Tensor) -> torch.Tensor:
        """Real purchase vectors labelled 1, generated ones (shown on purchases + PM items) labelled 0."""
        with torch.no_grad():
            fake = module(x) * (x + self._sample(x, self.pm_ratio))
        real_logit, fake_logit = module.judge(x, x), module.judge(fake, x)
        return F.binary_cross_entropy_with_logits(
            real_logit, torch.ones_like(real_logit)
        ) + F.binary_cross_entropy_with_logits(fake_logit, torch.zeros_like(fake_logit))

    def _generator_loss(self, module: _CFGAN, x: torch.Tensor) -> torch.Tensor:
        """Fool the discriminator (non-saturating form) + ``zr_weight`` x squared outputs on the ZR items."""
        generated = module(x)
        fake_logit = module.judge(generated * (x + self._sample(x, self.pm_ratio)), x)
        adversarial = F.binary_cross_entropy_with_logits(fake_logit, torch.ones_like(fake_logit))
        zero_reconstruction = (generated.pow(2) * self._sample(x, self.zr_ratio)).sum(dim=1).mean()
        return adversarial + self.zr_weight * zero_reconstruction

    # -- inference --------------------------------------------------------------------------------------

    def _score(self, users: np.ndarray, history: sp.csr_matrix, context: ScoreContext | None) -> np.ndarray:
        """The generator's logits for the history rows (same order as its purchase probabilities)."""
        return score_rows(prepare_matrix(history, self.binarize), self.device_, self.module_.generator)

    def similar_items(self, items: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Cosine over the generator's output-layer item vectors (rows of its last weight matrix)."""
        vectors = self.module_.generator[-1].weight.detach().float().cpu().numpy()
        return cosine_neighbours(vectors, np.asarray(items, dtype=np.int64), n)
