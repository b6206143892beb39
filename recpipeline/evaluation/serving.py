"""The evaluation report on loopback: ``recpipeline report`` serves it in the foreground, ``recpipeline ui``
beside the Dagster UI, whose metrics and report assets link to it (a browser does not open ``file://`` links
from an http page, and the UI cannot serve a file of the warehouse).

Every request reads the file again from the storage root's ``report/`` folder (a local path or an fsspec
URL), so a new run's report shows on reload. Only plain file names of that folder are served (the report and
the charts the metrics asset writes there), only on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from upath import UPath

HOST = "127.0.0.1"
#: the port the report is served on unless ``PORT_ENV_VAR`` says otherwise; the UI's links use the same
DEFAULT_PORT = 3001
PORT_ENV_VAR = "RECPIPELINE_REPORT_PORT"
#: the report's folder under the storage root, and the page
REPORT_FOLDER = "report"
REPORT_PAGE = "report.html"
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".png": "image/png", ".svg": "image/svg+xml"}
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def report_port() -> int:
    """``$RECPIPELINE_REPORT_PORT``, else ``DEFAULT_PORT``."""
    return int(os.environ.get(PORT_ENV_VAR) or DEFAULT_PORT)


def report_url(name: str = REPORT_PAGE, port: int | None = None) -> str:
    """Where a browser on this machine opens ``name`` of the report folder."""
    return f"http://{HOST}:{port or report_port()}/{name}"


def report_folder(root: str) -> UPath:
    return UPath(root) / REPORT_FOLDER


def _handler(root: str) -> type[BaseHTTPRequestHandler]:
    folder = report_folder(root)

    class ReportHandler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            name = urlsplit(self.path).path.lstrip("/")
            if not name:
                self.send_response(HTTPStatus.FOUND)
                self.send_header("Location", f"/{REPORT_PAGE}")
                self.end_headers()
                return
            suffix = os.path.splitext(name)[1]
            path = folder / name
            if not _FILE_NAME.match(name) or suffix not in CONTENT_TYPES or not path.exists():
                self._not_found(name)
                return
            body = path.read_bytes()
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", CONTENT_TYPES[suffix])
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _not_found(self, name: str) -> None:
            body = (
                f"<!DOCTYPE html><title>Not found</title><p>No {name} under {folder}: materialize the "
                "<code>report</code> asset (<code>recpipeline run</code>, or from the Dagster UI).</p>"
            ).encode()
            self.send_response(HTTPStatus.NOT_FOUND)
            self.send_header("Content-Type", CONTENT_TYPES[".html"])
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args) -> None:  # noqa: A002 (http.server's name)
            pass  # one line per request on stderr would drown the UI's own log

    return ReportHandler


def make_server(root: str, port: int | None = None) -> ThreadingHTTPServer:
    """A server of ``root``'s report folder on 127.0.0.1 (port 0: a free one), bound, not yet serving."""
    return ThreadingHTTPServer((HOST, report_port() if port is None else port), _handler(root))


def serve(
    root: str,
    port: int | None = None,
    ready: Callable[[str], None] | None = None,
    while_parent_lives: bool = False,
) -> None:
    """Serve ``root``'s report folder until interrupted (Ctrl-C); ``ready`` gets the report's URL once the
    port is bound. ``while_parent_lives``: also stop when the process that started this one ends (beside
    ``recpipeline ui``: the UI's process)."""
    # a process started in the background of a non-interactive shell inherits SIGINT ignored, and Python then
    # installs no KeyboardInterrupt handler of its own: Ctrl-C (and SIGTERM) must stop the server wherever
    # it was started
    for stop in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop, signal.default_int_handler)
    with make_server(root, port) as server:
        if while_parent_lives:
            threading.Thread(target=_stop_with_parent, args=(server, os.getppid()), daemon=True).start()
        if ready is not None:
            ready(report_url(port=server.server_address[1]))
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: stop quietly
            server.serve_forever()


def _stop_with_parent(server: ThreadingHTTPServer, parent: int, interval: float = 2.0) -> None:
    while os.getppid() == parent:
        time.sleep(interval)
    server.shutdown()
