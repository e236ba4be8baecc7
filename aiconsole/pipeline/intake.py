"""Putting photos into the queue: validate every file, store its bytes, insert pending rows.

One bad file never blocks the good ones and nothing is lost: each file gets its own verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from aiconsole.pipeline.images import store_image, validate_image
from aiconsole.platform import audit, cache
from aiconsole.platform.actor import Actor
from aiconsole.platform.db import org_session
from aiconsole.platform.db.models import Photo
from aiconsole.platform.db.types import utcnow
from aiconsole.platform.errors import ImageRejected, ValidationFailed
from aiconsole.platform.settings import Settings, get_settings

MAX_FILES_PER_BATCH = 500
MAX_PRIORITY = 100


@dataclass(frozen=True)
class FileVerdict:
    """The outcome for one file: queued (with its photo id), duplicate, or rejected with the reason."""

    filename: str
    outcome: str
    message: str
    photo_id: int | None = None


@dataclass
class EnqueueReport:
    """Per-file verdicts of one enqueue call."""

    verdicts: list[FileVerdict] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        """How many files ended with `outcome` (queued, duplicate, rejected)."""
        return sum(1 for v in self.verdicts if v.outcome == outcome)

    @property
    def message(self) -> str:
        """The summary, under the name every action report uses."""
        return self.summary

    @property
    def summary(self) -> str:
        """One line for the UI or the CLI."""
        return (f"{self.count('queued')} queued, {self.count('duplicate')} already known, "
                f"{self.count('rejected')} rejected")


def enqueue_files(
    actor: Actor,
    files: list[tuple[str, bytes]],
    *,
    priority: int = 0,
    source: str = "upload",
    settings: Settings | None = None,
) -> EnqueueReport:
    """Validate, store and queue `files` ((filename, bytes) pairs) for the actor's organization."""
    actor.require("photos.upload")
    settings = settings or get_settings()
    if not files:
        raise ValidationFailed("No files were given.", hint="Choose one or more JPEG, PNG or WEBP photos.")
    if len(files) > MAX_FILES_PER_BATCH:
        raise ValidationFailed(f"{len(files)} files is more than {MAX_FILES_PER_BATCH} in one batch.",
                               hint="Upload them in smaller batches.")
    if not 0 <= priority <= MAX_PRIORITY:
        raise ValidationFailed(f"Priority {priority} is out of range.",
                               hint=f"Use 0 (normal) to {MAX_PRIORITY} (first).")
    report = EnqueueReport()
    org = actor.organization_id
    for filename, data in files:
        name = (filename or "unnamed")[:512]
        try:
            info = validate_image(data, filename=name, settings=settings)
        except ImageRejected as exc:
            report.verdicts.append(FileVerdict(name, "rejected", str(exc)))
            continue
        with org_session(org) as s:
            existing = s.scalar(select(Photo.id).where(Photo.organization_id == org, Photo.sha256 == info.sha256))
        if existing is not None:
            report.verdicts.append(FileVerdict(name, "duplicate",
                                               f"Already in this organization as photo #{existing}; not queued again.",
                                               existing))
            continue
        uri = store_image(data, settings=settings)
        now = utcnow()
        try:
            with org_session(org) as s:
                photo = Photo(organization_id=org, sha256=info.sha256, storage_uri=uri, filename=name,
                              content_type=info.content_type, byte_size=info.byte_size, width=info.width,
                              height=info.height, source=source, status="pending", priority=priority,
                              created_at=now, updated_at=now)
                s.add(photo)
                s.flush()
                audit.record(s, actor=actor, action="photo.enqueue", entity_type="photo",
                             entity_id=str(photo.id), before=None,
                             after={"filename": name, "sha256": info.sha256, "priority": priority},
                             summary=f"Queued {name} ({info.width}x{info.height}, {info.byte_size:,} bytes)")
                photo_id = photo.id
        except IntegrityError:
            # Another upload of the same bytes won the race; report it the same way as a duplicate.
            report.verdicts.append(FileVerdict(name, "duplicate", "Already queued by a concurrent upload."))
            continue
        report.verdicts.append(FileVerdict(name, "queued", f"Queued as photo #{photo_id}.", photo_id))
    if report.count("queued"):
        cache.invalidate_live(org)
    return report
