"""The dashboard: read-only pages over one store, rendered on the server.

Pages: ``/`` goals with their live state, ``/goals/{id}`` a goal's cycles, plots and best
answer, ``/runs`` and ``/runs/{id}``, ``/evidence`` the leaderboard with the last week's plots.
Goal pages refresh their live part from ``?fragment=1`` every :data:`POLL_MS` (a few lines of
inline script); charts are SVG drawn with matplotlib here, and the Content-Security-Policy lets
the browser load nothing from another host.

:func:`dashboard_router` is a FastAPI router that ``apex serve`` can mount under a prefix;
:func:`create_app` serves it on its own (``apex ui``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import jinja2
from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse

from apex.errors import GoalError
from apex.goals.store import GoalStore
from apex.report import goal_report, period_report, run_report, sections_of
from apex.report.sections import money, number
from apex.store import EvidenceStore
from apex.store.tables import utcnow
from apex.ui.queries import recent_runs

POLL_MS = 1500
"""How often a live page asks for its fresh part."""
EVIDENCE_DAYS = 7
"""The period the evidence page plots."""
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self' 'unsafe-inline'; connect-src 'self'; base-uri 'none'; form-action 'none'"
)
"""Nothing from another host: every style, script and chart is inline or from this server."""


@functools.cache
def _templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("apex.ui", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["money"] = money
    env.filters["number"] = number
    return env


def _page(template: str, request: Request, poll_ms: int, **context: Any) -> HTMLResponse:
    fragment = request.query_params.get("fragment") == "1"
    prefix = request.scope.get("root_path", "") + str(request.scope.get("apex_ui_prefix", ""))
    html = (
        _templates()
        .get_template(template)
        .render(
            layout="fragment.html" if fragment else "base.html",
            base=prefix.rstrip("/"),
            poll_ms=poll_ms,
            **context,
        )
    )
    return HTMLResponse(html, headers={"Content-Security-Policy": CSP, "Cache-Control": "no-store"})


def dashboard_router(
    store: Callable[[], EvidenceStore], prefix: str = "", poll_ms: int = POLL_MS
) -> APIRouter:
    """The dashboard's routes over the store ``store()`` returns (called per request); live
    pages ask for their fresh part every ``poll_ms``."""
    router = APIRouter(prefix=prefix)
    page = functools.partial(_page, poll_ms=poll_ms)

    def scoped(request: Request) -> None:
        request.scope["apex_ui_prefix"] = prefix

    @router.get("/", response_class=HTMLResponse)
    def goals(request: Request) -> HTMLResponse:
        scoped(request)
        return page("goals.html", request, title="Goals", goals=GoalStore(store()).all())

    @router.get("/goals/{goal_id}", response_class=HTMLResponse)
    def goal(goal_id: str, request: Request) -> HTMLResponse:
        scoped(request)
        try:
            status = GoalStore(store()).status(goal_id)
        except GoalError as error:
            raise HTTPException(404, str(error)) from None
        report = goal_report(store(), goal_id)
        return page(
            "goal.html",
            request,
            title=f"Goal {goal_id}",
            goal=status,
            sections=sections_of(report)[1:4],
        )

    @router.get("/runs", response_class=HTMLResponse)
    def runs(request: Request) -> HTMLResponse:
        scoped(request)
        return page("runs.html", request, title="Runs", runs=recent_runs(store()))

    @router.get("/runs/{run_id}", response_class=HTMLResponse)
    def run(run_id: str, request: Request) -> HTMLResponse:
        scoped(request)
        report = run_report(store(), run_id)
        if report is None:
            raise HTTPException(404, f"no run '{run_id}' in this store")
        return page("sections.html", request, title=f"Run {run_id}", sections=sections_of(report))

    @router.get("/evidence", response_class=HTMLResponse)
    def evidence(request: Request) -> HTMLResponse:
        scoped(request)
        until = utcnow()
        report = period_report(store(), until - timedelta(days=EVIDENCE_DAYS), until)
        return page(
            "sections.html",
            request,
            title=f"Evidence (plots: the last {EVIDENCE_DAYS} days)",
            sections=sections_of(report)[1:],
        )

    @router.get("/favicon.ico")
    def favicon() -> HTMLResponse:
        return HTMLResponse("", status_code=204)

    return router


def create_app(db: str | None = None, *, poll_ms: int = POLL_MS) -> FastAPI:
    """The dashboard on its own over store ``db`` (None: ``APEX_DB``, else the default),
    opened read-only once."""
    opened = EvidenceStore(db, read_only=True)
    app = FastAPI(title="APEX dashboard", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(dashboard_router(lambda: opened, poll_ms=poll_ms))
    app.router.on_shutdown.append(opened.close)
    return app
