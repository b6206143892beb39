"""One training step of the history-row models' first layer, and of a whole Mult-VAE step, at shop shape:
dense rows against their non-zeros (``models.neural.SparseRows``), per sparse kernel.

    python benchmarks/sparse_first_layer.py                      # 12.5k items, 80 items a row, hidden 600
    python benchmarks/sparse_first_layer.py --batches 100 500 --threads 2 --repeats 20

The shape is the 5M-event shop's (62.5k users x 12.5k items, ~80 items per user). Per case: CPU seconds
(``time.process_time``, all threads) and wall seconds per step, the mean of ``--repeats`` steps after one
warm-up, with the load average beside them (a shared machine skews the wall time; CPU time less so).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from recpipeline.models import create_model
from recpipeline.models.neural import SparseRows, item_major


def timed(step: Callable[[], None], repeats: int) -> tuple[float, float]:
    """CPU and wall seconds per call of ``step`` (one warm-up call first)."""
    step()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.process_time() - cpu) / repeats, (time.perf_counter() - wall) / repeats


def shop_rows(batch: int, n_items: int, per_row: int, rng: np.random.Generator) -> sp.csr_matrix:
    cols = np.concatenate([np.sort(rng.choice(n_items, per_row, replace=False)) for _ in range(batch)])
    indptr = np.arange(0, batch * per_row + 1, per_row)
    return sp.csr_matrix((np.ones(len(cols), np.float32), cols, indptr), shape=(batch, n_items))


def first_layer_cases(rows: sp.csr_matrix, hidden: int) -> dict[str, Callable[[], None]]:
    """Forward + backward of ``rows`` times the first layer (weight gradient only: the input is data)."""
    n_items = rows.shape[1]
    usual = nn.Linear(n_items, hidden)  # weight stored (hidden x items), row by row
    major = item_major(nn.Linear(n_items, hidden))
    dense = torch.from_numpy(rows.toarray())
    sparse = SparseRows.of(rows, torch.device("cpu"))
    coo, csr = dense.to_sparse(), dense.to_sparse_csr()
    grad = torch.randn(rows.shape[0], hidden)

    def step(layer: nn.Linear, forward: Callable[[nn.Linear], torch.Tensor]) -> Callable[[], None]:
        def run() -> None:
            layer.zero_grad(set_to_none=True)
            (forward(layer) * grad).sum().backward()

        return run

    return {
        "dense matmul (before)": step(usual, lambda layer: layer(dense)),
        "embedding_bag, usual layout": step(usual, lambda layer: sparse.times(layer.weight.t()) + layer.bias),
        "embedding_bag, item-major (chosen)": step(
            major, lambda layer: sparse.times(layer.weight.t()) + layer.bias
        ),
        "torch.sparse.mm COO, usual layout": step(
            usual, lambda layer: torch.sparse.mm(coo, layer.weight.t()) + layer.bias
        ),
        "CSR @ weight.t(), item-major": step(major, lambda layer: csr @ layer.weight.t() + layer.bias),
    }


def mult_vae_cases(rows: sp.csr_matrix, hidden: int) -> dict[str, Callable[[], None]]:
    """A whole Mult-VAE training step (loss, backward, fused Adam): the dense path as before, the sparse."""
    model = create_model("mult_vae", {"hidden": hidden, "device": "cpu"})
    model.n_items_, model.device_ = rows.shape[1], torch.device("cpu")
    dense_module = model._build_module()
    first = dense_module.encoder[0]
    first.weight = nn.Parameter(first.weight.detach().contiguous())  # the usual layout, as before
    sparse_module = model._build_module()
    dense = torch.from_numpy(rows.toarray())
    sparse = SparseRows.of(rows, torch.device("cpu"))

    def before() -> torch.Tensor:  # the previous loss, on dense rows
        h = F.dropout(F.normalize(dense, dim=1), p=model.dropout, training=True)
        mu, logvar = dense_module.encode(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        neg_ll = -(F.log_softmax(dense_module.decoder(z), dim=1) * dense).sum(dim=1).mean()
        return neg_ll + 0.2 * 0.5 * (-logvar + logvar.exp() + mu.pow(2) - 1.0).sum(dim=1).mean()

    def step(module: nn.Module, loss: Callable[[], torch.Tensor]) -> Callable[[], None]:
        optimiser = torch.optim.Adam(module.parameters(), lr=1e-3, fused=True)  # as models.loop

        def run() -> None:
            optimiser.zero_grad(set_to_none=True)
            loss().backward()
            optimiser.step()

        return run

    return {
        "Mult-VAE step, dense (before)": step(dense_module, before),
        "Mult-VAE step, sparse (now)": step(sparse_module, lambda: model._loss(sparse_module, sparse, 0.2)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=12_500)
    parser.add_argument("--per-row", type=int, default=80)
    parser.add_argument("--hidden", type=int, default=600)
    parser.add_argument("--batches", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    print(f"{args.items} items, {args.per_row} per row, hidden {args.hidden}, {args.threads} thread(s)")
    print("| batch | case | CPU ms / step | wall ms / step | load (1 min) |\n|---|---|---|---|---|")
    for batch in args.batches:
        rows = shop_rows(batch, args.items, args.per_row, rng)
        cases = {**first_layer_cases(rows, args.hidden), **mult_vae_cases(rows, args.hidden)}
        for name, step in cases.items():
            cpu, wall = timed(step, args.repeats)
            print(f"| {batch} | {name} | {cpu * 1e3:.1f} | {wall * 1e3:.1f} | {os.getloadavg()[0]:.1f} |")


if __name__ == "__main__":
    main()
