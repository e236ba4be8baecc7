"""What a batch correction works on: the filter over an organization's tags, each template's parameters and
which selected rows it would change, and the preview (how many, and a sample with thumbnails).

A filter selects tags by label, confidence range (both ends included), the provider, model and prompt version
of the result that produced them, when their photo arrived ([since, until)), their review state, whether a
person decided them already, and their photo's status. A template then changes the selected tags it would
change (a row already so is not selected again):

- rename A to B: tags labelled A that are not rejected (B the label, state corrected);
- remove a label: tags with that label (deleted from their photos);
- add a label: the selected tags' photos that have no live (not rejected) tag with it (a person's tag, accepted);
- accept at or above X / reject at or below Y: tags at or past the threshold, unless a person already accepted
  (or corrected) / rejected them.

Everything is SQL over the organization's rows; the selection a batch ran on is stored as JSON (`to_json`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, Table, and_, exists, func, not_, select

from aiconsole.pipeline.images import load_image_bytes, thumbnail
from aiconsole.pipeline.rules import normalize_label
from aiconsole.platform import formatting as fmt
from aiconsole.platform.db.models import (
    BATCH_TEMPLATES,
    PHOTO_STATUSES,
    TAG_REVIEW_STATES,
    AiProcessingResult,
    Photo,
    PhotoTag,
)
from aiconsole.platform.errors import AiconsoleError, ValidationFailed
from aiconsole.quality.review_record import checked_label

TAGS = cast(Table, PhotoTag.__table__)
PHOTOS = cast(Table, Photo.__table__)
RESULTS = cast(Table, AiProcessingResult.__table__)

# The templates' parameters, in the order the panel asks for them.
TEMPLATE_PARAMS: dict[str, tuple[str, ...]] = {
    "rename": ("from_label", "to_label"),
    "remove": ("label",),
    "add": ("label",),
    "accept": ("at_least",),
    "reject": ("at_most",),
}
assert set(TEMPLATE_PARAMS) == set(BATCH_TEMPLATES)
# A template that adds works photo by photo; the others tag by tag.
PHOTO_TEMPLATES = frozenset({"add"})
# The states and statuses the filter offers (the panel reads them here, not from the models).
FILTER_TAG_STATES: tuple[str, ...] = TAG_REVIEW_STATES
FILTER_PHOTO_STATUSES: tuple[str, ...] = PHOTO_STATUSES
SAMPLE_SIZE = 12
THUMB_SIDE = 160


@dataclass(frozen=True)
class BatchFilter:
    """Which tags a batch selects (every field optional; empty tuples mean any)."""

    label: str | None = None
    min_confidence: float | None = None
    max_confidence: float | None = None
    provider: str | None = None
    model: str | None = None
    prompt_version_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    tag_states: tuple[str, ...] = ()
    decided: bool | None = None  # True: a person decided the tag already; False: nobody has
    photo_statuses: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The filter as stored with a batch (moments as ISO text, unset fields left out)."""
        out = {k: (v.isoformat() if isinstance(v, datetime) else list(v) if isinstance(v, tuple) else v)
               for k, v in asdict(self).items()}
        return {k: v for k, v in out.items() if v not in (None, [])}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BatchFilter:
        """The filter `to_json` stored."""
        kw: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in data:
                value = data[f.name]
                kw[f.name] = (datetime.fromisoformat(value) if f.name in ("since", "until")
                              else tuple(value) if isinstance(value, list) else value)
        return cls(**kw)


@dataclass(frozen=True)
class SamplePhoto:
    """One photo of a preview's sample: a selected tag on it, and its thumbnail (or why there is none)."""

    photo_id: int
    filename: str
    label: str
    confidence: float
    review_state: str
    thumbnail: bytes | None
    thumbnail_problem: str | None


@dataclass(frozen=True)
class BatchPreview:
    """What a batch would change: `matched` rows (tags; photos for a template that adds) on `photos` photos."""

    template: str
    unit: str  # "tag" or "photo"
    matched: int
    photos: int
    sample: tuple[SamplePhoto, ...]


def _unit(value: Any, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValidationFailed(f"The {what} {value!r} is not a number.",
                               hint="Use a confidence between 0 and 1, e.g. 0.8.") from None
    if isinstance(value, bool) or not math.isfinite(number) or not 0.0 <= number <= 1.0:
        raise ValidationFailed(f"The {what} {value!r} is not a confidence between 0 and 1.",
                               hint="Confidences run from 0 to 1, e.g. 0.8.")
    return number


def check_template(template: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The template's parameters, checked and normalized (labels as tags store them)."""
    if template not in TEMPLATE_PARAMS:
        raise ValidationFailed(f"There is no batch template {template!r}.",
                               hint=f"Use one of: {', '.join(TEMPLATE_PARAMS)}.")
    unknown = set(params) - set(TEMPLATE_PARAMS[template])
    if unknown:
        raise ValidationFailed(f"The {template} template takes no {', '.join(sorted(unknown))}.",
                               hint=f"It takes: {', '.join(TEMPLATE_PARAMS[template])}.")
    if template == "rename":
        old, new = checked_label(params.get("from_label"), "current"), checked_label(params.get("to_label"), "new")
        if old == new:
            raise ValidationFailed(f"Renaming '{old}' to '{new}' changes nothing.", hint="Type a different label.")
        return {"from_label": old, "to_label": new}
    if template in ("remove", "add"):
        return {"label": checked_label(params.get("label"))}
    key = TEMPLATE_PARAMS[template][0]
    return {key: _unit(params.get(key), "accept threshold" if template == "accept" else "reject threshold")}


def check_filter(filters: BatchFilter) -> BatchFilter:
    """The filter if every field makes sense, else ValidationFailed saying which does not."""
    lo, hi = filters.min_confidence, filters.max_confidence
    for value, what in ((lo, "lowest confidence"), (hi, "highest confidence")):
        if value is not None:
            _unit(value, what)
    if lo is not None and hi is not None and lo > hi:
        raise ValidationFailed(f"The confidence range {lo}-{hi} is empty.", hint="Put the lower value first.")
    if filters.since and filters.until and filters.since >= filters.until:
        raise ValidationFailed("The date range is empty: it ends before it starts.", hint="Swap the two dates.")
    for values, allowed, what in ((filters.tag_states, TAG_REVIEW_STATES, "tag state"),
                                  (filters.photo_statuses, PHOTO_STATUSES, "photo status")):
        wrong = [v for v in values if v not in allowed]
        if wrong:
            raise ValidationFailed(f"There is no {what} {wrong[0]!r}.", hint=f"Use some of: {', '.join(allowed)}.")
    return filters


def describe(template: str, params: Mapping[str, Any]) -> str:
    """A template with its parameters in words: "rename 'cat' to 'kitten'"."""
    if template == "rename":
        return f"rename '{params['from_label']}' to '{params['to_label']}'"
    if template == "remove":
        return f"remove '{params['label']}'"
    if template == "add":
        return f"add '{params['label']}' to every selected photo"
    if template == "accept":
        return f"accept tags at or above {fmt.number(params['at_least'])}"
    return f"reject tags at or below {fmt.number(params['at_most'])}"


def selected_tags(org: int, filters: BatchFilter) -> list[ColumnElement[bool]]:
    """The filter as conditions on TAGS (photo conditions through a correlated EXISTS, kept off the join)."""
    t, p, r = TAGS.c, PHOTOS.c, RESULTS.c
    conds: list[ColumnElement[bool]] = [t.organization_id == org]
    if filters.label and normalize_label(filters.label):
        conds.append(t.label == normalize_label(filters.label))
    if filters.min_confidence is not None:
        conds.append(t.confidence >= filters.min_confidence)
    if filters.max_confidence is not None:
        conds.append(t.confidence <= filters.max_confidence)
    if filters.tag_states:
        conds.append(t.review_state.in_(filters.tag_states))
    if filters.decided is not None:
        conds.append(t.reviewed_at.is_not(None) if filters.decided else t.reviewed_at.is_(None))
    produced = [c for c in (r.ai_provider == filters.provider if filters.provider else None,
                            r.model == filters.model if filters.model else None,
                            r.prompt_version_id == filters.prompt_version_id
                            if filters.prompt_version_id is not None else None) if c is not None]
    if produced:
        conds.append(exists(select(r.id).where(r.id == t.result_id, *produced)))
    photo = [c for c in (p.created_at >= filters.since if filters.since else None,
                         p.created_at < filters.until if filters.until else None,
                         p.status.in_(filters.photo_statuses) if filters.photo_statuses else None) if c is not None]
    if photo:
        conds.append(exists(select(p.id).where(p.id == t.photo_id, *photo)))
    return conds


def live_label(photo_id: Any, label: str) -> ColumnElement[bool]:
    """The photo has a tag `label` that is not rejected."""
    t = TAGS.alias("live")
    return exists(select(t.c.id).where(t.c.photo_id == photo_id, t.c.label == label,
                                       t.c.review_state != "rejected"))


def template_tags(template: str, params: Mapping[str, Any]) -> list[ColumnElement[bool]]:
    """Which selected tags the template changes (see the module); for a template that adds, none are left out
    here (its photos are chosen by `photo_ids`)."""
    t = TAGS.c
    decided = t.reviewed_at.is_not(None)
    if template == "rename":
        return [t.label == params["from_label"], t.review_state != "rejected"]
    if template == "remove":
        return [t.label == params["label"]]
    if template == "accept":
        return [t.confidence >= params["at_least"],
                not_(and_(decided, t.review_state.in_(("accepted", "corrected"))))]
    if template == "reject":
        return [t.confidence <= params["at_most"], not_(and_(decided, t.review_state == "rejected"))]
    return []


def tag_ids(org: int, filters: BatchFilter, template: str, params: Mapping[str, Any]) -> Select[Any]:
    """(tag id, photo id) of every tag the batch changes, by tag id."""
    conds = [*selected_tags(org, filters), *template_tags(template, params)]
    return select(TAGS.c.id, TAGS.c.photo_id).where(*conds).order_by(TAGS.c.id)


def photo_ids(org: int, filters: BatchFilter, params: Mapping[str, Any]) -> Select[Any]:
    """Ids of the photos a template that adds changes (with a selected tag, without a live one labelled so)."""
    p = PHOTOS.c
    chosen = exists(select(TAGS.c.id).where(TAGS.c.photo_id == p.id, *selected_tags(org, filters)))
    return select(p.id).where(p.organization_id == org, chosen, not_(live_label(p.id, params["label"]))) \
        .order_by(p.id)


def counts(session: Any, *, org: int, filters: BatchFilter, template: str,
           params: Mapping[str, Any]) -> tuple[int, int]:
    """(rows the batch changes, photos they are on), counted in the database."""
    if template in PHOTO_TEMPLATES:
        n = int(session.scalar(select(func.count()).select_from(photo_ids(org, filters, params).subquery())) or 0)
        return n, n
    sub = tag_ids(org, filters, template, params).subquery()
    row = session.execute(select(func.count(), func.count(sub.c.photo_id.distinct()))).one()
    return int(row[0]), int(row[1])


def sample(session: Any, *, org: int, filters: BatchFilter, template: str, params: Mapping[str, Any],
           size: int = SAMPLE_SIZE) -> list[Any]:
    """Up to `size` of the newest photos the batch changes, each with one of its tags it selects."""
    t, p = TAGS.c, PHOTOS.c
    if template in PHOTO_TEMPLATES:
        chosen = photo_ids(org, filters, params).order_by(None).order_by(p.id.desc()).limit(size).subquery()
        one = (select(t.photo_id, func.min(t.id).label("tag_id"))
               .where(t.photo_id.in_(select(chosen.c.id)), *selected_tags(org, filters)).group_by(t.photo_id))
    else:
        one = (select(t.photo_id, func.max(t.id).label("tag_id"))
               .where(*selected_tags(org, filters), *template_tags(template, params))
               .group_by(t.photo_id).order_by(t.photo_id.desc()).limit(size))
    picked = one.subquery()
    rows = select(p.id, p.filename, p.storage_uri, t.label, t.confidence, t.review_state) \
        .join(picked, picked.c.photo_id == p.id).join(TAGS, t.id == picked.c.tag_id)
    return list(session.execute(rows.order_by(p.id.desc())).all())


def sample_photo(row: Any, *, thumbnails: bool) -> SamplePhoto:
    """A sample row with its thumbnail (a missing or unreadable file gives its reason instead)."""
    thumb, problem = None, None
    if thumbnails:
        try:
            thumb = thumbnail(load_image_bytes(row.storage_uri), THUMB_SIDE)
        except AiconsoleError as exc:
            problem = str(exc)
    return SamplePhoto(photo_id=row.id, filename=row.filename, label=row.label, confidence=float(row.confidence),
                       review_state=row.review_state, thumbnail=thumb, thumbnail_problem=problem)


def describe_filter(filters: BatchFilter, tz: str | None = None) -> str:
    """The filter in words ("label 'cat', confidence 0.2 to 0.6, not yet decided by a person"); 'every tag'."""
    f, parts = filters, []
    if f.label:
        parts.append(f"label '{normalize_label(f.label)}'")
    if f.min_confidence is not None or f.max_confidence is not None:
        lo, hi = f.min_confidence or 0.0, 1.0 if f.max_confidence is None else f.max_confidence
        parts.append(f"confidence {fmt.number(lo)} to {fmt.number(hi)}")
    parts += [f"{what} {value}" for what, value in (("provider", f.provider), ("model", f.model)) if value]
    if f.prompt_version_id is not None:
        parts.append(f"prompt version #{f.prompt_version_id}")
    if f.since:
        parts.append(f"photos arrived from {fmt.when(f.since, tz, seconds=False)}")
    if f.until:
        parts.append(f"photos arrived before {fmt.when(f.until, tz, seconds=False)}")
    if f.tag_states:
        parts.append("tags " + " or ".join(s.replace("_", " ") for s in f.tag_states))
    if f.decided is not None:
        parts.append("already decided by a person" if f.decided else "not yet decided by a person")
    if f.photo_statuses:
        parts.append("photos " + " or ".join(s.replace("_", " ") for s in f.photo_statuses))
    return ", ".join(parts) or "every tag"


def no_match_hint(template: str) -> str:
    """Why a batch might select nothing, for the preview's empty state."""
    if template in ("accept", "reject"):
        return "Tags a person already decided this way are left out; widen the filter or move the threshold."
    return "Widen the filter (label, confidence, dates, states) or check the label's spelling."

