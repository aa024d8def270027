"""The annotation page's server: Bottle on Python's own WSGI server, 127.0.0.1 only.

One thread serves one request at a time, so answers reach the journal in the
order the person gave them. Routes: the page (``/`` and ``/static/…``, plain
files shipped in the package), ``/api/state``, ``/api/image/<pair>``,
``/api/answer`` and ``/api/undo`` (JSON).
"""

from __future__ import annotations

import errno
import json
import sys
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import bottle

from dav2_train.da2k.session import ANNOTATIONS_NAME, AnnotationSession, AnswerRejected

HOST = "127.0.0.1"
STATIC_DIR = Path(__file__).with_name("static")


class ServerError(RuntimeError):
    """The server cannot start (port taken, …); the message says what to do."""


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        pass  # one line per image fetch would drown the useful output


def create_app(session: AnnotationSession) -> bottle.Bottle:
    app = bottle.Bottle()

    def state(**extra) -> dict:
        return {
            "progress": session.progress(),
            "pair": session.current(),
            "output": str(session.folder / ANNOTATIONS_NAME),
        } | extra

    @app.get("/")
    def index():
        return bottle.static_file("index.html", root=str(STATIC_DIR))

    @app.get("/static/<name>")
    def static(name: str):
        return bottle.static_file(name, root=str(STATIC_DIR))

    @app.get("/api/state")
    def get_state():
        return state()

    @app.get("/api/image/<pair_id>")
    def image(pair_id: str):
        pair = session.pairs.get(pair_id)
        if pair is None:
            return bottle.HTTPError(404, f"no pair {pair_id!r}")
        return bottle.static_file(pair["image"], root=str(session.folder))

    @app.post("/api/answer")
    def answer():
        body = bottle.request.json or {}
        try:
            answered = session.answer(str(body.get("pair")), str(body.get("closer")))
        except AnswerRejected as exc:
            bottle.response.status = 409
            return state(error=str(exc))
        return state(answered=answered)

    @app.post("/api/undo")
    def undo():
        return state(undone=session.undo())

    return app


def bind(app: bottle.Bottle, port: int) -> WSGIServer:
    """A server listening on 127.0.0.1:``port`` (0 = any free port)."""
    try:
        return make_server(HOST, port, app, handler_class=_QuietHandler)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ServerError(
                f"port {port} on {HOST} is already in use (another `da2k annotate`?): pass "
                "--port N for another one, or --port 0 for any free port"
            ) from None
        raise ServerError(f"cannot listen on {HOST}:{port}: {exc.strerror or exc}") from None


def serve(session: AnnotationSession, port: int) -> None:
    server = bind(create_app(session), port)
    url = f"http://{HOST}:{server.server_port}/"
    print(
        f"da2k annotate: {json.dumps(session.progress())}; open {url} (Ctrl-C stops; "
        f"answers are kept in {session.journal.path})",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("da2k annotate: stopped", file=sys.stderr)
    finally:
        server.server_close()
        session.close()
