"""benchmarks/peers.py without the peer libraries: its side-by-side table, the ratio line, and the message
when the extra is missing."""

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "peers.py"


@pytest.fixture(scope="module")
def peers():
    spec = importlib.util.spec_from_file_location("peers_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module through sys.modules
    spec.loader.exec_module(module)
    return module


def test_the_table_puts_ours_beside_the_peer_with_ours_over_theirs(peers):
    rows = [
        peers.Row(
            "bpr",
            peers.Result("recpipeline", ndcg=0.3, own_ndcg=None, fit_s=2.0, fit_cpu_s=1.5, top_s=0.1),
            peers.Result("cornac", ndcg=0.4, own_ndcg=0.41, fit_s=4.0, fit_cpu_s=3.0, top_s=0.2),
        ),
        peers.Row(
            "sasrec",
            peers.Result("recpipeline", ndcg=0.25, own_ndcg=None, fit_s=9.0, fit_cpu_s=9.0, top_s=0.3),
            peers.Result("recbole", ndcg=0.2, own_ndcg=None, fit_s=3.0, fit_cpu_s=3.0, top_s=0.4),
        ),
    ]
    table = peers.side_by_side(rows).set_index("model")
    assert table.loc["bpr", "peer"] == "cornac"
    assert table.loc["bpr", "ours ndcg@10"] == 0.3 and table.loc["bpr", "peer ndcg@10"] == 0.4
    assert table.loc["bpr", "ndcg ours/peer"] == pytest.approx(0.75)
    assert table.loc["bpr", "fit ours/peer"] == pytest.approx(0.5)
    assert table.loc["bpr", "peer's own ndcg@10"] == 0.41
    assert math.isnan(table.loc["sasrec", "peer's own ndcg@10"])  # none computed: NaN, never 0
    assert table.loc["sasrec", "ndcg ours/peer"] == pytest.approx(1.25)
    assert table.loc["sasrec", "fit ours/peer"] == pytest.approx(3.0)

    line = json.loads(json.dumps(peers.ratios(table.reset_index())))
    assert line == {
        "ndcg_ours_over_peer": {"bpr": 0.75, "sasrec": 1.25},
        "fit_s_ours_over_peer": {"bpr": 0.5, "sasrec": 3.0},
    }


def test_a_missing_peer_library_names_the_extra(peers, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "recbole" else real(name, *a)
    )
    monkeypatch.setattr(peers, "PEER_LIBRARIES", ("json", "recbole"))
    with pytest.raises(SystemExit, match=r"extra `peers` \(recbole not installed\).*\.\[peers\]"):
        peers.require_peers()
