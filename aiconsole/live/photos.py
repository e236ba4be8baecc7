"""One photo of the queue as Live Status opens it: where it stands, what it is, and a thumbnail of its bytes."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import select

from aiconsole.pipeline.images import load_image_bytes, thumbnail
from aiconsole.platform.actor import Actor
from aiconsole.platform.db import org_session
from aiconsole.platform.db.models import Photo
from aiconsole.platform.db.types import utcnow
from aiconsole.platform.errors import AiconsoleError, NotFound

THUMB_SIDE = 320


@dataclass(frozen=True)
class PhotoView:
    """A photo's queue state and facts, with a JPEG thumbnail (None, with the reason, when its bytes are gone)."""

    id: int
    filename: str
    status: str
    priority: int
    attempts: int
    byte_size: int
    width: int
    height: int
    content_type: str
    created_at: datetime
    as_of: datetime  # when it was read (for "queued 3 min ago")
    last_error: str | None
    thumbnail: bytes | None
    thumbnail_problem: str | None


def photo_view(actor: Actor, *, photo_id: int, max_side: int = THUMB_SIDE) -> PhotoView:
    """Photo `photo_id` of the actor's organization now, with a thumbnail no larger than `max_side`."""
    actor.require("live_status.view")
    org = actor.organization_id
    with org_session(org) as s:
        p = s.scalar(select(Photo).where(Photo.organization_id == org, Photo.id == photo_id))
        if p is None:
            raise NotFound(f"Photo #{photo_id} is not in this organization.",
                           hint="Pick a photo from the upload results, or reload the page.")
        view = PhotoView(id=p.id, filename=p.filename, status=p.status, priority=p.priority, attempts=p.attempts,
                         byte_size=p.byte_size, width=p.width, height=p.height, content_type=p.content_type,
                         created_at=p.created_at, as_of=utcnow(), last_error=p.last_error, thumbnail=None,
                         thumbnail_problem=None)
        uri = p.storage_uri
    try:
        return replace(view, thumbnail=thumbnail(load_image_bytes(uri), max_side))
    except AiconsoleError as exc:  # a missing or unreadable file must not hide the photo's state
        return replace(view, thumbnail_problem=str(exc))
