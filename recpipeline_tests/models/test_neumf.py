"""NeuMF's scoring shortcut: every (user, item) pair's logit from each side's share of the linear layers."""

import pytest
import torch

from recpipeline.models.neumf import _NeuMF


@pytest.mark.parametrize("layers", [[16, 8, 4], [16]])  # with a hidden tower, and without one
def test_every_pair_equals_the_pairwise_logits(layers):
    torch.manual_seed(0)
    module = _NeuMF(n_users=6, n_items=9, factors=4, layers=layers, feature_dim=0)
    for weights in module.parameters():
        torch.nn.init.normal_(weights, std=0.5)  # away from the tiny initial embeddings
    users = torch.tensor([0, 3, 5])
    gmf_items, mlp_items = module.item_vectors()
    shape = (len(users), 9, -1)
    pairwise = module.logits(
        module.gmf_user(users)[:, None].expand(shape),
        module.mlp_user(users)[:, None].expand(shape),
        gmf_items[None].expand(shape),
        mlp_items[None].expand(shape),
    )
    shortcut = module.every_pair(module.gmf_user(users), module.mlp_user(users), gmf_items, mlp_items)
    assert shortcut.shape == (3, 9)
    torch.testing.assert_close(shortcut, pairwise, rtol=1e-5, atol=1e-5)


def test_weight_decay_reaches_the_looked_up_rows_once_as_adams_would():
    """The sparse tables take no weight decay from their optimiser; the loss adds it on the batch's rows:
    the gradient of each looked-up row is ``weight_decay x row`` (once, however often it was looked up),
    and rows the batch did not look up get none."""
    from recpipeline.models.neumf import NeuMF

    module = _NeuMF(n_users=6, n_items=9, factors=4, layers=[16, 8], feature_dim=0)
    users, items = torch.tensor([1, 1, 4]), torch.tensor([2, 7, 7])
    NeuMF(weight_decay=0.1)._row_decay(module, users, items).backward()
    for table, looked_up in ((module.gmf_user, [1, 4]), (module.mlp_item, [2, 7])):
        gradient = table.weight.grad.to_dense()
        expected = torch.zeros_like(table.weight)
        expected[looked_up] = 0.1 * table.weight[looked_up].detach()
        torch.testing.assert_close(gradient, expected)
