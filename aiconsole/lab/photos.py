"""The photo a prompt-lab test runs on: a gallery sample, an uploaded file, or one of the organization's photos.

Every choice goes through intake's checks (type sniffed from the bytes, size and pixel limits, the
decompression-bomb guard) before a provider sees it. An uploaded file is only validated: it is never
stored, queued or recorded. A photo id is looked up in the actor's organization only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from aiconsole.pipeline.images import load_image_bytes, thumbnail, validate_image
from aiconsole.platform.actor import Actor
from aiconsole.platform.db import get_engine, org_session
from aiconsole.platform.db.models import Photo
from aiconsole.platform.errors import NotFound, ValidationFailed
from aiconsole.platform.settings import Settings, get_settings
from aiconsole.providers.base import ImageInput


@dataclass(frozen=True)
class PhotoChoice:
    """The photo to test on: a sample of the gallery, an uploaded file, or one of the org's photos."""

    kind: Literal["sample", "upload", "photo"]
    sample: str | None = None
    variant: int = 0
    filename: str | None = None
    data: bytes | None = None
    photo_id: int | None = None

    @classmethod
    def from_sample(cls, name: str, variant: int = 0) -> PhotoChoice:
        """Variant `variant` of the scikit-image sample `name` (aiconsole.samples)."""
        return cls("sample", sample=name, variant=variant)

    @classmethod
    def from_upload(cls, filename: str, data: bytes) -> PhotoChoice:
        """An uploaded file; it is validated like an upload but never stored or queued."""
        return cls("upload", filename=filename, data=data)

    @classmethod
    def from_photo(cls, photo_id: int) -> PhotoChoice:
        """A photo already in the actor's organization."""
        return cls("photo", photo_id=photo_id)


@dataclass(frozen=True)
class TestPhoto:
    """The photo a test ran on, as intake saw it."""

    __test__ = False  # not a pytest class, despite its name
    source: str
    label: str
    width: int
    height: int
    content_type: str
    byte_size: int
    sha256: str


def resolve_photo(session: Session, organization_id: int, choice: PhotoChoice,
                  settings: Settings) -> tuple[ImageInput, TestPhoto]:
    """The photo's bytes for a provider and what intake learned about them; NotFound/ImageRejected say why not."""
    if choice.kind == "sample":
        from aiconsole.providers import samples  # scikit-image is heavy; load it only when a sample is chosen

        sample = samples.get_sample(choice.sample or "")
        data = samples.sample_photo(sample.name, choice.variant)
        label, source, name = f"{sample.title} (sample {sample.name}, look {choice.variant})", "sample", sample.name
    elif choice.kind == "upload":
        data, name = choice.data or b"", choice.filename or "upload"
        label, source = name, "upload"
    elif choice.kind == "photo":
        row = session.scalar(select(Photo).where(Photo.organization_id == organization_id,
                                                 Photo.id == choice.photo_id))
        if row is None:
            raise NotFound(f"There is no photo #{choice.photo_id} in this organization.",
                           hint="Use the id of one of this organization's photos, or pick a sample or upload one.")
        data = load_image_bytes(row.storage_uri, settings=settings)
        name, label, source = row.filename or f"photo {row.id}", f"photo #{row.id} ({row.filename})", "photo"
    else:
        raise ValidationFailed(f"Unknown photo choice {choice.kind!r}.", hint="Pick a sample, upload or photo id.")
    # Every photo goes through intake's checks (type sniffing, limits, bomb guard) before a provider sees it.
    info = validate_image(data, filename=name, settings=settings)
    image = ImageInput(data=data, content_type=info.content_type, width=info.width, height=info.height,
                       sha256=info.sha256)
    return image, TestPhoto(source, label, info.width, info.height, info.content_type, info.byte_size, info.sha256)


def photo_preview(actor: Actor, *, photo: PhotoChoice, max_side: int = 320,
                  settings: Settings | None = None) -> bytes:
    """A JPEG thumbnail of the chosen photo (validated like a test run would)."""
    actor.require("testing.run")
    settings = settings or get_settings()
    with org_session(actor.organization_id, engine=get_engine(settings)) as s:
        image, _ = resolve_photo(s, actor.organization_id, photo, settings)
    return thumbnail(image.data, max_side)
