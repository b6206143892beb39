"""Seconds per LightGCN training step on a shop-sized graph, and the epoch they add up to (issue #24).

    python benchmarks/lightgcn_epoch.py                          # defaults: 62.5k x 12.5k, 2.2M pairs
    python benchmarks/lightgcn_epoch.py --batch-size 8192 --steps 5 --threads 1

The graph: ``users`` x ``items`` with about ``pairs`` distinct (user, item) pairs, items drawn with
popularity ~ rank^-0.8. 2.2M is what the 5M-event bench shop (``recpipeline bench --events 5e6``: 62.5k
users, 12.5k items) has in its 24 training days. The model's own ``training`` hook builds the graph and the
batches; the script times the epoch's sampling (drawn when the pass starts), ``--steps`` steps (forward,
loss, backward, Adam) and the end-of-epoch refresh, in wall and CPU seconds, and prints the epoch they
imply: sampling + steps per epoch x seconds per step + refresh.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.sparse as sp
import torch

from recpipeline.models import create_model
from recpipeline.models.context import FitContext


def synthetic_graph(n_users: int, n_items: int, pairs: int, seed: int) -> sp.csr_matrix:
    """A binary users x items matrix with about ``pairs`` distinct pairs (draws repeat; topped up once)."""
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.8
    popularity /= popularity.sum()
    keys = np.empty(0, dtype=np.int64)
    while len(keys) < pairs:
        draws = pairs - len(keys)
        drawn = rng.integers(0, n_users, draws) * n_items + rng.choice(n_items, draws, p=popularity)
        keys = np.union1d(keys, drawn)
    users, items = np.divmod(keys[:pairs], n_items)
    return sp.csr_matrix((np.ones(pairs, np.float32), (users, items)), shape=(n_users, n_items))


class Clock:
    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def read(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=62_500)
    parser.add_argument("--items", type=int, default=12_500)
    parser.add_argument("--pairs", type=int, default=2_200_000)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the nightly bench used 1)")
    parser.add_argument("--batch-size", type=int, help="default: the model's")
    parser.add_argument("--layers", type=int, help="default: the model's")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    clock = Clock()
    train = synthetic_graph(args.users, args.items, args.pairs, seed=0)
    params = {"device": args.device, "num_threads": args.threads}
    params.update(
        {key: value for key, value in (("batch_size", args.batch_size), ("layers", args.layers)) if value}
    )
    model = create_model("lightgcn", params)
    model.n_users_, model.n_items_ = train.shape
    model.device_ = torch.device(args.device)
    training = model.training(train, FitContext(), print)
    module = model.fresh_module()
    training.prepare(module)
    (phase,) = training.phases
    optimiser = torch.optim.Adam(module.parameters(), lr=training.lr)
    wall, cpu = clock.read()
    print(
        f"graph {train.shape[0]:,} x {train.shape[1]:,}, {train.nnz:,} pairs, "
        f"built in {wall:.1f}s ({cpu:.1f} cpu s)"
    )

    clock = Clock()
    batches = iter(phase.batches())
    first = next(batches)
    sampling = clock.read()
    steps_per_epoch = -(-train.nnz // model.batch_size)
    clock = Clock()
    batch, done = first, 0
    while done < min(args.steps, steps_per_epoch):
        loss = phase.loss(module, *batch)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        done += 1
        batch = next(batches, None)
        if batch is None:
            break
    float(loss.detach())  # wait for the device
    step = tuple(seconds / done for seconds in clock.read())
    clock = Clock()
    training.epoch_end(module)
    refresh = clock.read()
    print(
        f"batch {model.batch_size}, layers {model.layers}, {torch.get_num_threads()} thread(s), "
        f"{args.device}: "
        f"{step[0]:.3f}s per step ({step[1]:.3f} cpu s) over {done} steps; sampling {sampling[0]:.1f}s, "
        f"refresh {refresh[0]:.2f}s"
    )
    for name, index in (("wall", 0), ("cpu", 1)):
        epoch = sampling[index] + steps_per_epoch * step[index] + refresh[index]
        print(f"epoch estimate ({name}): {steps_per_epoch} steps -> {epoch:.0f}s")


if __name__ == "__main__":
    main()
