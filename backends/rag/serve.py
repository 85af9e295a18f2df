"""The warm query path: `advisor rag serve INDEX` keeps the index and its model loaded behind a local HTTP endpoint.

The server listens on 127.0.0.1 only (stdlib `http.server`, one request at a time) and answers JSON:

    POST /query   {"question": "...", "k": 5, "mode": "hybrid", "rerank_model": null} → {"hits": [...], ...}
    GET  /health  → {"index_dir": "...", "generation": "gen-000003", "embedding_model": "..."}

Every request carries the token the server drew at start (`X-Advisor-Token`), since an index holds the text of
private documents and any local user can reach a port. The server writes its port, process id and token to an
owner-only file under the advisor state folder (`registry_path`), keyed by the index's resolved path; `advisor rag
query` reads it and asks the server, falling back to loading the model itself when none answers. Before each query
the server reopens the index if a build has published a new generation.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

from advisor.core.errors import AdvisorError
from backends.common.embedding import Embedder
from backends.rag.query import DEFAULT_MODE, Retriever
from backends.rag.results import QueryHit

__all__ = ["Endpoint", "find_server", "make_server", "registered", "registry_path", "remote_query", "serve"]

HOST = "127.0.0.1"
TOKEN_HEADER = "X-Advisor-Token"
MAX_REQUEST_BYTES = 1 << 20
CLIENT_TIMEOUT_S = 120.0  # a query that reranks on a loaded CPU can take tens of seconds


@dataclass(frozen=True)
class Endpoint:
    """A running server for one index."""

    url: str
    token: str
    pid: int


def _state_dir() -> Path:
    base = os.environ.get("ADVISOR_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "advisor"
    )
    return Path(base) / "rag-serve"


def registry_path(index_dir: str | Path) -> Path:
    """Where a server for `index_dir` records its port and token."""
    key = hashlib.sha256(str(Path(index_dir).resolve()).encode("utf-8", "surrogateescape")).hexdigest()[:24]
    return _state_dir() / f"{key}.json"


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: not our server
        return False
    return True


def find_server(index_dir: str | Path) -> Endpoint | None:
    """The server recorded for `index_dir` when its process is alive; None otherwise."""
    path = registry_path(index_dir)
    try:
        record = json.loads(path.read_text())
        endpoint = Endpoint(url=str(record["url"]), token=str(record["token"]), pid=int(record["pid"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if record.get("index_dir") != str(Path(index_dir).resolve()) or not _is_alive(endpoint.pid):
        return None
    return endpoint


def _request(endpoint: Endpoint, path: str, body: dict | None, timeout: float) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(endpoint.url + path, data=data, method="POST" if data else "GET",
                                     headers={"Content-Type": "application/json", TOKEN_HEADER: endpoint.token})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - our own 127.0.0.1 URL
        return json.loads(response.read())


def remote_query(endpoint: Endpoint, question: str, k: int = 5, mode: str = DEFAULT_MODE,
                 rerank_model: str | None = None) -> list[QueryHit] | None:
    """Ask a running server; None when it cannot be reached (the caller then queries locally).

    Raises:
        AdvisorError: the server answered with an error (a bad question, a reranker that cannot load).
    """
    try:
        answer = _request(endpoint, "/query", {"question": question, "k": k, "mode": mode,
                                               "rerank_model": rerank_model}, CLIENT_TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        try:
            error = json.loads(exc.read())
        except ValueError:
            error = {}
        if exc.code == 400 and "error" in error:
            raise AdvisorError(str(error["error"]), error.get("hint")) from None
        return None
    except (OSError, ValueError):  # refused, timed out, reset: no usable server
        return None
    return [QueryHit.model_validate(h) for h in answer["hits"]]


class _Handler(BaseHTTPRequestHandler):
    server: _RagServer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's name
        self.server.log(f"{self.address_string()} {format % args}")

    def _send(self, status: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _authorised(self) -> bool:
        given = self.headers.get(TOKEN_HEADER, "")
        if hmac.compare_digest(given.encode(), self.server.token.encode()):
            return True
        self._send(401, {"error": f"missing or wrong `{TOKEN_HEADER}`"})
        return False

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        if not self._authorised():
            return
        if self.path != "/health":
            self._send(404, {"error": f"no `{self.path}`: POST /query or GET /health"})
            return
        retriever = self.server.retriever
        retriever.refresh()
        self._send(200, {"index_dir": str(retriever.index_dir), "generation": retriever.generation,
                         "embedding_model": retriever.opened.manifest.embedding_model})

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        if not self._authorised():
            return
        if self.path != "/query":
            self._send(404, {"error": f"no `{self.path}`: POST /query or GET /health"})
            return
        try:
            length = int(self.headers.get("Content-Length", "0"))
            if not 0 < length <= MAX_REQUEST_BYTES:
                raise ValueError(f"body of {length} bytes (1 to {MAX_REQUEST_BYTES})")
            body = json.loads(self.rfile.read(length))
            if not isinstance(body, dict) or not isinstance(body.get("question"), str):
                raise ValueError("needs a JSON object with a `question` string")
            k, mode, rerank = body.get("k", 5), body.get("mode", DEFAULT_MODE), body.get("rerank_model")
            if not isinstance(k, int) or not isinstance(mode, str) or not isinstance(rerank, (str, type(None))):
                raise ValueError("`k` must be an integer, `mode` and `rerank_model` strings")
        except ValueError as exc:
            self._send(400, {"error": f"bad request: {exc}"})
            return
        retriever = self.server.retriever
        try:
            retriever.refresh()
            hits = retriever.search(body["question"], k, mode, rerank)
        except AdvisorError as exc:
            self._send(400, {"error": exc.message, "hint": exc.hint})
            return
        self.server.n_queries += 1
        self._send(200, {"generation": retriever.generation, "hits": [h.model_dump(mode="json") for h in hits]})


class _RagServer(HTTPServer):
    def __init__(self, retriever: Retriever, port: int, token: str, log: Callable[[str], None]) -> None:
        super().__init__((HOST, port), _Handler)
        self.retriever, self.token, self.log = retriever, token, log
        self.n_queries = 0

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server_address[1]}"


def make_server(retriever: Retriever, port: int = 0, token: str | None = None,
                log: Callable[[str], None] = lambda line: None) -> _RagServer:
    """An HTTP server on 127.0.0.1:`port` (0: a free one) answering queries with `retriever`; not started.

    Raises:
        AdvisorError: the port is taken or cannot be bound.
    """
    try:
        return _RagServer(retriever, port, token or secrets.token_urlsafe(24), log)
    except OSError as exc:
        raise AdvisorError(f"cannot listen on {HOST}:{port}: {exc.strerror or exc}",
                           "pick another port with `--port`, or 0 for any free one") from None


@contextlib.contextmanager
def registered(server: _RagServer) -> Iterator[Path]:
    """Record `server` for `advisor rag query` while the block runs (owner-only file); removed after."""
    from advisor.core.fileio import private_files, write_text_atomic

    path = registry_path(server.retriever.index_dir)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    record = {"url": server.url, "token": server.token, "pid": os.getpid(),
              "index_dir": str(server.retriever.index_dir.resolve())}
    with private_files():
        write_text_atomic(path, json.dumps(record))
    try:
        yield path
    finally:
        with contextlib.suppress(OSError, ValueError):
            if json.loads(path.read_text()).get("pid") == os.getpid():
                path.unlink()


@contextlib.contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    """SIGTERM stops the server as Ctrl-C does (its registry record is removed); the old handler comes back after."""
    import signal

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def serve(index_dir: str | Path, port: int = 0, embedder: Embedder | None = None,
          on_ready: Callable[[str], None] = print, log: Callable[[str], None] = lambda line: None) -> None:
    """Load the index and its model, then answer queries on 127.0.0.1:`port` until interrupted.

    Raises:
        AdvisorError: no index, a damaged one, a model that cannot load, a port that cannot be bound.
    """
    retriever = Retriever(index_dir, embedder)
    retriever.embedder  # noqa: B018 - load the model now, not on the first query
    server = make_server(retriever, port, log=log)
    with server, registered(server), _stop_on_sigterm():
        on_ready(f"serving `{retriever.index_dir}` ({retriever.generation}, {retriever.opened.manifest.embedding_model})"
                 f" on {server.url}; `advisor rag query {index_dir} QUESTION` uses it; Ctrl-C stops")
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
