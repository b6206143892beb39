"""Mult-VAE (Liang, Krishnan, Hoffman & Jebara 2018, "Variational Autoencoders for Collaborative Filtering").

The neural contender: an encoder maps a user's (L2-normalised, dropped-out) item row to a Gaussian latent,
the decoder maps the latent to a softmax over all items, trained on the multinomial log-likelihood with a
KL term annealed from 0 up to ``beta_max``. Scoring folds in any history row, so new users are served.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from recpipeline.models.als import cosine_neighbours
from recpipeline.models.base import Logger, Recommender, _silent, top_k_excluding

STATE_FILE = "model.safetensors"
#: users per forward pass when scoring / validating (bounds the dense users x items block)
EVAL_BATCH_USERS = 1024


class _VAE(nn.Module):
    """[n_items -> hidden -> 2*latent] tanh encoder, [latent -> hidden -> n_items] decoder."""

    def __init__(self, n_items: int, hidden: int, latent: int, generator: torch.Generator) -> None:
        super().__init__()
        self.latent = latent
        self.encoder = nn.Sequential(nn.Linear(n_items, hidden), nn.Tanh(), nn.Linear(hidden, 2 * latent))
        self.decoder = nn.Sequential(nn.Linear(latent, hidden), nn.Tanh(), nn.Linear(hidden, n_items))
        # the paper's initialisation: Glorot weights, tiny Gaussian biases
        for layer in (*self.encoder, *self.decoder):
            if isinstance(layer, nn.Linear):
                nn.init.xavier_uniform_(layer.weight, generator=generator)
                nn.init.normal_(layer.bias, std=0.001, generator=generator)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x)
        return h[:, : self.latent], h[:, self.latent :]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Deterministic logits (latent mean, no sampling): the scoring path."""
        mu, _ = self.encode(x)
        return self.decoder(mu)


def _resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class MultVAE(Recommender):
    """Variational autoencoder with multinomial likelihood over items; early-stopped on validation NDCG@k."""

    name = "mult_vae"

    def __init__(
        self,
        hidden: int = 600,
        latent: int = 200,
        dropout: float = 0.5,
        lr: float = 1e-3,
        epochs: int = 50,
        batch_size: int = 500,
        beta_max: float = 0.2,
        total_anneal_steps: int = 20000,
        patience: int = 5,
        k: int = 10,
        binarize: bool = True,
        seed: int = 42,
        device: str = "auto",
    ) -> None:
        super().__init__(
            hidden=hidden,
            latent=latent,
            dropout=dropout,
            lr=lr,
            epochs=epochs,
            batch_size=batch_size,
            beta_max=beta_max,
            total_anneal_steps=total_anneal_steps,
            patience=patience,
            k=k,
            binarize=binarize,
            seed=seed,
            device=device,
        )

    # -- data -------------------------------------------------------------------------------------------

    def _prepare(self, matrix: sp.csr_matrix) -> sp.csr_matrix:
        """Float32 CSR with explicit zeros dropped; binarised if asked (the paper uses click indicators)."""
        matrix = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
        matrix.sum_duplicates()
        matrix.eliminate_zeros()
        if self.binarize:
            matrix.data[:] = 1.0
        return matrix

    def _dense(self, rows: sp.csr_matrix) -> torch.Tensor:
        """One mini-batch densified on the device (the sparse form is what crosses to a GPU)."""
        rows = rows.tocoo()
        indices = torch.from_numpy(np.vstack([rows.row, rows.col]).astype(np.int64))
        values = torch.from_numpy(rows.data.astype(np.float32, copy=False))
        sparse = torch.sparse_coo_tensor(
            indices, values, rows.shape, is_coalesced=True, check_invariants=False
        )
        return sparse.to(self.device_).to_dense()

    # -- training ---------------------------------------------------------------------------------------

    def fit(
        self,
        train: sp.csr_matrix,
        validation: sp.csr_matrix | None = None,
        *,
        log: Logger = _silent,
    ) -> MultVAE:
        self.n_users_, self.n_items_ = train.shape
        self.device_ = _resolve_device(self.device)
        # private generators: deterministic per seed without touching torch's / numpy's global RNG state
        init_gen = torch.Generator().manual_seed(self.seed)
        noise_gen = torch.Generator(device=self.device_).manual_seed(self.seed + 1)
        order_rng = np.random.default_rng(self.seed)
        self.module_ = _VAE(self.n_items_, self.hidden, self.latent, init_gen).to(self.device_)
        optimiser = torch.optim.Adam(self.module_.parameters(), lr=self.lr, weight_decay=0.0)

        x_train = self._prepare(train)
        active = np.flatnonzero(np.diff(x_train.indptr) > 0)  # empty rows carry no likelihood signal
        val_users = np.empty(0, dtype=np.int64)
        if validation is not None:
            validation = sp.csr_matrix(validation)
            validation.eliminate_zeros()
            val_users = np.flatnonzero(np.diff(validation.indptr) > 0)

        best_ndcg, best_state, best_epoch, stale, step, beta = -np.inf, None, 0, 0, 0, 0.0
        for epoch in range(1, self.epochs + 1):
            if len(val_users) == 0:
                best_epoch = epoch  # without validation the last epoch's weights are kept
            start = time.perf_counter()
            self.module_.train()
            total_loss, n_batches = 0.0, 0
            shuffled = order_rng.permutation(active)
            for begin in range(0, len(shuffled), self.batch_size):
                idx = shuffled[begin : begin + self.batch_size]
                x = self._dense(x_train[idx])
                beta = (
                    self.beta_max
                    if self.total_anneal_steps <= 0
                    else min(self.beta_max, step / self.total_anneal_steps)
                )
                loss = self._loss(x, beta, noise_gen)
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                total_loss += float(loss.detach())
                n_batches += 1
                step += 1
            mean_loss = total_loss / max(n_batches, 1)

            if len(val_users) == 0:
                log(
                    f"mult_vae epoch {epoch}: loss {mean_loss:.4f} beta {beta:.3f} "
                    f"{time.perf_counter() - start:.1f}s"
                )
                continue
            ndcg = self._validation_ndcg(x_train, validation, val_users)
            log(
                f"mult_vae epoch {epoch}: loss {mean_loss:.4f} beta {beta:.3f} val ndcg@{self.k} {ndcg:.4f} "
                f"{time.perf_counter() - start:.1f}s"
            )
            if ndcg > best_ndcg:
                best_ndcg, best_epoch, stale = ndcg, epoch, 0
                best_state = copy.deepcopy(self.module_.state_dict())
            else:
                stale += 1
                if stale >= self.patience:
                    log(f"mult_vae: early stop after epoch {epoch} (no gain for {self.patience} epochs)")
                    break

        if best_state is not None:
            self.module_.load_state_dict(best_state)
            log(f"mult_vae: kept epoch {best_epoch} (val ndcg@{self.k} {best_ndcg:.4f})")
        self.best_epoch_ = best_epoch  # 1-based epoch whose weights were kept
        self.module_.eval()
        return self

    def _loss(self, x: torch.Tensor, beta: float, noise_gen: torch.Generator) -> torch.Tensor:
        """Negative ELBO, KL annealed: -multinomial log-likelihood of ``x`` + beta * KL(q(z|x) || N(0, I))."""
        h = F.normalize(x, dim=1)
        if self.dropout > 0:
            keep = torch.rand(h.shape, generator=noise_gen, device=h.device) >= self.dropout
            h = h * keep / (1.0 - self.dropout)
        mu, logvar = self.module_.encode(h)
        eps = torch.randn(mu.shape, generator=noise_gen, device=mu.device)
        z = mu + eps * torch.exp(0.5 * logvar)
        logits = self.module_.decoder(z)
        neg_ll = -(F.log_softmax(logits, dim=1) * x).sum(dim=1).mean()
        kl = 0.5 * (-logvar + logvar.exp() + mu.pow(2) - 1.0).sum(dim=1).mean()
        return neg_ll + beta * kl

    def _validation_ndcg(self, x_train: sp.csr_matrix, validation: sp.csr_matrix, users: np.ndarray) -> float:
        """Mean NDCG@k (binary relevance) of validation items, train items masked, folding in train rows."""
        discounts = 1.0 / np.log2(np.arange(2, self.k + 2))
        ideal = np.cumsum(discounts)  # ideal[n - 1]: IDCG with n relevant items
        total = 0.0
        for begin in range(0, len(users), EVAL_BATCH_USERS):
            idx = users[begin : begin + EVAL_BATCH_USERS]
            seen = x_train[idx]
            top, _ = top_k_excluding(self._logits(seen), seen, self.k)
            truth = validation[idx]
            relevant = truth.toarray() != 0  # one dense block per batch, the same size as the scores
            found = top >= 0
            hits = np.take_along_axis(relevant, np.where(found, top, 0), axis=1) & found
            n_relevant = np.minimum(np.diff(truth.indptr), self.k)
            total += float((hits @ discounts[: hits.shape[1]] / ideal[n_relevant - 1]).sum())
        return total / len(users)

    # -- inference --------------------------------------------------------------------------------------

    @torch.no_grad()
    def _logits(self, rows: sp.csr_matrix) -> np.ndarray:
        self.module_.eval()
        out = np.empty(rows.shape, dtype=np.float32)
        for begin in range(0, rows.shape[0], EVAL_BATCH_USERS):
            x = F.normalize(self._dense(rows[begin : begin + EVAL_BATCH_USERS]), dim=1)
            out[begin : begin + x.shape[0]] = self.module_(x).float().cpu().numpy()
        return out

    def score(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        """Decoder logits for the encoded history rows (latent mean, no sampling)."""
        return self._logits(self._prepare(history))

    def similar_items(self, items: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Cosine over the decoder's output-layer item vectors (rows of its last weight matrix)."""
        vectors = self.module_.decoder[-1].weight.detach().float().cpu().numpy()
        return cosine_neighbours(vectors, np.asarray(items, dtype=np.int64), n)

    # -- persistence: safetensors, never pickle ---------------------------------------------------------

    def _save_state(self, directory: Path) -> None:
        state = {key: value.detach().cpu().contiguous() for key, value in self.module_.state_dict().items()}
        save_file(state, str(Path(directory) / STATE_FILE))

    def _load_state(self, directory: Path) -> None:
        state = load_file(str(Path(directory) / STATE_FILE), device="cpu")
        self.device_ = _resolve_device(self.device)
        self.module_ = _VAE(self.n_items_, self.hidden, self.latent, torch.Generator())
        self.module_.load_state_dict(state)
        self.module_.to(self.device_).eval()
