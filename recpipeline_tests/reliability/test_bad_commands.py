"""Bad command lines (issue #27): each ends in exit 2 with one ``recpipeline: ...`` line, before any work."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recpipeline.cli import exposure_warning, main
from recpipeline.evaluation.external import clean_recommendations
from recpipeline_tests.reliability.test_bad_configs import BOMB


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("recpipeline: "), err
    assert len(err[0]) < 600, err[0][:1000]
    return err[0]


def session_files(folder: Path, lists: dict) -> list[str]:
    pd.DataFrame({"user_id": ["u"], "item_id": ["a"], "timestamp": ["2026-01-01T00:00:00Z"]}).to_csv(
        folder / "train.csv", index=False
    )
    pd.DataFrame(
        {
            "session_id": ["s1"] * 3,
            "item_id": ["a", "b", "c"],
            "timestamp": [f"2026-01-02T00:0{m}:00Z" for m in range(3)],
        }
    ).to_csv(folder / "test.csv", index=False)
    pd.DataFrame({"session_id": "s1", "item_id": ["b", "c"], **lists}).to_csv(
        folder / "lists.csv", index=False
    )
    return [
        "evaluate",
        "--sessions",
        "--train",
        str(folder / "train.csv"),
        "--test",
        str(folder / "test.csv"),
        "--recommendations",
        str(folder / "lists.csv"),
        "--k",
        "2",
    ]


@pytest.mark.parametrize(
    ("flag", "value"), [("--start", "2026-01-1"), ("--end", "2026-02-30"), ("--start", "yesterday")]
)
def test_backfill_dates_must_be_iso_dates(flag: str, value: str, capsys) -> None:
    dates = {"--start": "2026-01-01", "--end": "2026-01-02", flag: value}
    assert main(["backfill", "--no-progress", *(x for pair in dates.items() for x in pair)]) == 2
    assert flag in one_line(capsys)


@pytest.mark.parametrize(
    ("text", "words"),
    [(BOMB, "aliases"), ("", "empty"), ("seed: 1\nseed: 2\n", "twice"), (b"seed: \xe9\n", "UTF-8")],
)
def test_a_bad_configuration_file_through_the_cli(text, words: str, tmp_path: Path, capsys) -> None:
    settings = tmp_path / "settings.yaml"
    settings.write_bytes(text if isinstance(text, bytes) else text.encode())
    assert main(["run", "--config", str(settings), "--no-progress"]) == 2
    line = one_line(capsys)
    assert str(settings) in line and words in line


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_evaluate_min_rating_must_be_finite(value: str, tmp_path: Path, capsys) -> None:
    args = ["evaluate", "--train", "t.csv", "--test", "t.csv", "--recommendations", "r.csv", "--k", "5"]
    assert main([*args, f"--min-rating={value}"]) == 2
    assert "--min-rating" in one_line(capsys)


def test_evaluate_output_into_a_missing_folder_is_refused_before_the_work(tmp_path: Path, capsys) -> None:
    args = session_files(tmp_path, {"position": [1, 2], "rank": [1, 1]})
    assert main([*args, "--output", str(tmp_path / "missing" / "metrics.csv")]) == 2
    assert "does not exist" in one_line(capsys)


@pytest.mark.parametrize(
    ("lists", "words"),
    [
        ({"position": [1, 2], "rank": ["abc", 1]}, "'rank'"),
        ({"position": [1, 2], "rank": [1.5, 1]}, "'rank'"),
        ({"position": [1, 2], "rank": [0, 1]}, "'rank'"),
        ({"position": [0, 1], "rank": [1, 1]}, "'position'"),
        ({"position": [1.5, 2], "rank": [1, 1]}, "'position'"),
    ],
)
def test_evaluate_sessions_validates_positions_and_ranks(lists, words, tmp_path: Path, capsys) -> None:
    assert main(session_files(tmp_path, lists)) == 2
    line = one_line(capsys)
    assert "lists.csv" in line and words in line


def test_evaluate_sessions_refuses_an_unparseable_timestamp(tmp_path: Path, capsys) -> None:
    args = session_files(tmp_path, {"position": [1, 2], "rank": [1, 1]})
    test = pd.read_csv(tmp_path / "test.csv").assign(timestamp=["2026-01-02T00:00:00Z", "soon", "later"])
    test.to_csv(tmp_path / "test.csv", index=False)
    assert main(args) == 2
    line = one_line(capsys)
    assert "test.csv" in line and "'timestamp'" in line and "soon" in line


def test_ranks_beyond_int16_keep_their_value() -> None:
    n = 33_001
    frame = pd.DataFrame(
        {"user_id": "u", "item_id": [f"i{i}" for i in range(n)], "rank": np.arange(1.0, n + 1)}
    )
    user_map = pd.DataFrame({"id": ["u"], "idx": np.array([0], dtype=np.int32)})
    item_map = pd.DataFrame({"id": frame["item_id"], "idx": np.arange(n, dtype=np.int32)})
    table, _ = clean_recommendations(frame, "m", n, user_map, item_map)
    assert table["rank"].max() == n and table["rank"].min() == 1


def test_a_list_named_with_dollar_signs_draws() -> None:
    from recpipeline.evaluation.reports import _figure, _png

    fig, axes = _figure(1)
    name = r"my$\frac$model"
    axes[0].bar([name, "other"], [1.0, 2.0], label=name)
    axes[0].set_title(name)
    axes[0].legend()
    assert _png(fig).startswith("data:image/png;base64,")


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.5", "my-host.example"])
def test_the_ui_warns_beyond_loopback(host: str) -> None:
    warning = exposure_warning(host)
    assert warning and host in warning and "no authentication" in warning and "launch" in warning


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_the_ui_is_quiet_on_loopback(host: str) -> None:
    assert exposure_warning(host) is None
