"""Storage: typed models, engines and org-scoped sessions."""

from aiconsole.platform.db.engine import (
    dispose_engines,
    get_engine,
    get_service_engine,
    make_engine,
    org_session,
    service_session,
)

__all__ = ["dispose_engines", "get_engine", "get_service_engine", "make_engine", "org_session", "service_session"]
