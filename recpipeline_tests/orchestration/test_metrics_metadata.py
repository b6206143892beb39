"""The metrics asset's metadata as the UI lists it: the verdict first, short enough to show inline with its
chart, then a link that opens the HTML report; and the report server behind that link."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from dagster import MetadataValue

from recpipeline.evaluation.reports import MetricsOverview
from recpipeline.evaluation.serving import DEFAULT_PORT, PORT_ENV_VAR, make_server, report_url
from recpipeline.orchestration.assets.evaluation import (
    INLINE_MARKDOWN,
    headline_chart_path,
    metrics_metadata,
    verdict_entries,
)
from recpipeline_tests.orchestration.conftest import free_port, wait_for

CHART = ("Headline metrics at K=10, segment with_history", b"\x89PNG")


def test_metadata_lists_the_verdict_first_then_the_report_link_and_only_the_headline_numbers() -> None:
    overview = MetricsOverview(
        markdown={"verdict": "- ease wins.", "headline": "| model |", "all_metrics": "| metric |"},
        numbers={"ease/ndcg@10": 0.2, "popularity/ndcg@10": 0.1},
        headline_chart=CHART,
    )
    metadata = metrics_metadata(overview, {"as_of": "2026-10-28"}, "http://127.0.0.1:3001/headline-r1.png")
    assert list(metadata) == [
        "verdict",
        "report",
        "headline",
        "all_metrics",
        "as_of",
        "ease/ndcg@10",
        "popularity/ndcg@10",
    ]
    # the chart is an image the browser fetches by URL: the entry stays short, so the UI shows it inline
    assert metadata["verdict"] == MetadataValue.md(
        f"- ease wins.\n\n![{CHART[0]}](http://127.0.0.1:3001/headline-r1.png)"
    )
    numeric = [key for key, value in metadata.items() if isinstance(value, float)]
    assert numeric == ["ease/ndcg@10", "popularity/ndcg@10"]


def test_a_long_verdict_keeps_its_first_lines_and_the_chart_inline_and_the_rest_in_verdict_full() -> None:
    lines = [f"- line {i}: " + "x" * 150 for i in range(10)]
    verdict = "\n".join(lines)
    chart = "![chart](http://127.0.0.1:3001/headline-r1.png)"
    entries = verdict_entries(verdict, chart)
    assert list(entries) == ["verdict", "verdict_full"] and entries["verdict_full"] == verdict
    shown = entries["verdict"]
    assert len(shown) < INLINE_MARKDOWN and shown.startswith(lines[0]) and shown.endswith(chart)
    assert "(more in verdict_full)" in shown
    assert verdict_entries("- short", chart) == {"verdict": f"- short\n\n{chart}"}


def test_the_report_link_opens_the_loopback_report_server(monkeypatch) -> None:
    monkeypatch.delenv(PORT_ENV_VAR, raising=False)
    link = metrics_metadata(MetricsOverview(markdown={}, numbers={}), {})["report"]
    # a browser does not open a file:// link from an http page: the report is served on loopback
    assert link == MetadataValue.url(f"http://127.0.0.1:{DEFAULT_PORT}/report.html")
    monkeypatch.setenv(PORT_ENV_VAR, "4123")
    assert report_url() == "http://127.0.0.1:4123/report.html"
    assert headline_chart_path("r1") == "report/headline-r1.png"


def _get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


@pytest.fixture
def served(tmp_path: Path):
    """The report server on a free loopback port over ``tmp_path`` as the storage root."""
    server = make_server(str(tmp_path), port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_report_server_serves_the_report_folder_and_nothing_else(served) -> None:
    root, url = served
    assert _get(f"{url}/report.html")[0] == 404  # no report yet: a page that says how to make one
    (root / "report").mkdir()
    (root / "report" / "report.html").write_text("<h1>the report</h1>")
    (root / "report" / "headline-r1.png").write_bytes(b"\x89PNG")
    (root / "secret.parquet").write_bytes(b"PAR1")
    assert _get(f"{url}/report.html") == (200, "text/html; charset=utf-8", b"<h1>the report</h1>")
    assert _get(f"{url}/headline-r1.png?run=1") == (200, "image/png", b"\x89PNG")
    assert _get(f"{url}/")[0] == 200  # redirected to the report
    for path in ("../secret.parquet", "%2E%2E/secret.parquet", "report.html/../../secret.parquet"):
        assert _get(f"{url}/{path}")[0] == 404, path
    (root / "report" / "report.html").write_text("<h1>tonight's</h1>")
    assert _get(f"{url}/report.html")[2] == b"<h1>tonight's</h1>"  # read again on every request


def test_recpipeline_report_serves_the_storage_roots_report_until_ctrl_c(tmp_path: Path) -> None:
    (tmp_path / "warehouse" / "report").mkdir(parents=True)
    (tmp_path / "warehouse" / "report" / "report.html").write_text("<h1>the report</h1>")
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({"storage": str(tmp_path / "warehouse")}))
    port = free_port()
    cli = Path(sys.executable).with_name("recpipeline")
    server = subprocess.Popen(
        [str(cli), "report", "--config", str(config), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/report.html"
        wait_for(lambda: _answers(url), 30, "the report server", interval=0.2)
        assert _get(url) == (200, "text/html; charset=utf-8", b"<h1>the report</h1>")
    finally:
        server.send_signal(signal.SIGINT)  # Ctrl-C
        output, _ = server.communicate(timeout=30)
    assert server.returncode == 0, output
    assert f"at {url}" in output and "Ctrl-C" in output


def _answers(url: str) -> bool:
    try:
        return _get(url)[0] == 200
    except OSError:
        return False
