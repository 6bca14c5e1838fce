"""celltrial.web: the web app and JSON API for sites (FastAPI): login, roles and site scope,
CSRF, data capture with automatic grading, corrections and the audit trail.

``create_app(database_url=None, secret_key=None)`` builds the app; ``celltrial web serve``
runs it. See docs/web.md.
"""

from celltrial.web.app import create_app

__all__ = ["create_app"]
