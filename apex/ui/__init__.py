"""The read-only dashboard: goals with live state, cycles, runs, the evidence leaderboard.

``apex ui`` serves :func:`create_app`; ``apex serve`` can mount :func:`dashboard_router`.
"""

from apex.ui.app import create_app, dashboard_router

__all__ = ["create_app", "dashboard_router"]
