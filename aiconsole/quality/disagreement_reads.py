"""What the Quality page reads about disagreement: one photo's two least alike sources (the review screen, for
a photo of the disagreement order) and the organization's most disagreeing photos with the counts (the
Disagreement tab). The report first brings the facts up to date by one bounded step (quality.disagreement)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from aiconsole.platform.actor import Actor
from aiconsole.platform.db import org_session
from aiconsole.platform.db.models import Photo, Prompt, PromptVersion
from aiconsole.platform.errors import ValidationFailed
from aiconsole.platform.settings import Settings
from aiconsole.providers.registry import PROVIDER_NAMES, capabilities
from aiconsole.quality import disagreement
from aiconsole.quality.disagreement import DISAGREEMENTS, RESULTS, RefreshReport, labels_of
from aiconsole.quality.disagreement_settings import threshold_of

MAX_LIST = 500


@dataclass(frozen=True)
class SourceView:
    """One source as people read it: provider (display name), model, prompt version ("name vN" or None) and
    the labels its newest result gave, sorted."""

    result_id: int
    provider: str
    model: str
    prompt_version: str | None
    labels: tuple[str, ...]


@dataclass(frozen=True)
class PairView:
    """A photo's least alike two sources, their Jaccard similarity, how many sources it has, and when the
    fact was computed."""

    photo_id: int
    jaccard: float
    sources: int
    a: SourceView
    b: SourceView
    computed_at: datetime


@dataclass(frozen=True)
class DisagreementRow:
    """One photo of the list: its file name and pair."""

    filename: str
    pair: PairView


@dataclass(frozen=True)
class DisagreementReport:
    """The threshold, photos compared (two sources or more), how many fall below it, the most disagreeing
    photos (lowest Jaccard first), and what the refresh before it did."""

    threshold: float
    compared: int
    below: int
    rows: tuple[DisagreementRow, ...]
    refresh: RefreshReport


def _versions(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = session.execute(select(PromptVersion.id, Prompt.name, PromptVersion.version)
                           .join(Prompt, Prompt.id == PromptVersion.prompt_id).where(PromptVersion.id.in_(ids)))
    return {int(r.id): f"{r.name} v{r.version}" for r in rows}


def _provider(name: str) -> str:
    return capabilities(name).display_name if name in PROVIDER_NAMES else name


def _pairs(session: Session, facts: Sequence[Any]) -> list[PairView]:
    """PairViews of fact rows, from their two results (one read for all)."""
    ids = {int(f.result_a_id) for f in facts} | {int(f.result_b_id) for f in facts}
    r = RESULTS.c
    results = {int(row.id): row for row in session.execute(
        select(r.id, r.ai_provider, r.model, r.prompt_version_id, r.tags).where(r.id.in_(ids or {0})))}
    versions = _versions(session, {int(v.prompt_version_id) for v in results.values()
                                   if v.prompt_version_id is not None})

    def side(result_id: int) -> SourceView:
        row = results[result_id]
        return SourceView(result_id=result_id, provider=_provider(row.ai_provider), model=row.model,
                          prompt_version=None if row.prompt_version_id is None else
                          versions.get(int(row.prompt_version_id)), labels=tuple(sorted(labels_of(row.tags))))

    return [PairView(photo_id=int(f.photo_id), jaccard=float(f.jaccard), sources=int(f.sources),
                     a=side(int(f.result_a_id)), b=side(int(f.result_b_id)), computed_at=f.computed_at)
            for f in facts if int(f.result_a_id) in results and int(f.result_b_id) in results]


def photo_pair(actor: Actor, *, photo_id: int, settings: Settings | None = None) -> PairView | None:
    """Photo `photo_id`'s least alike two sources, or None when it has fewer than two (quality.view). No
    refresh first: the screen asks for the photo it has just claimed, and the claim refreshed."""
    actor.require("quality.view")
    org = actor.organization_id
    with org_session(org, settings=settings) as s:
        fact = s.execute(select(DISAGREEMENTS).where(DISAGREEMENTS.c.organization_id == org,
                                                     DISAGREEMENTS.c.photo_id == photo_id)).first()
        pairs = _pairs(s, [fact]) if fact is not None else []
    return pairs[0] if pairs else None


def disagreement_report(actor: Actor, *, limit: int = 50, settings: Settings | None = None) -> DisagreementReport:
    """The organization's disagreement figures and its `limit` most disagreeing photos below the threshold."""
    actor.require("quality.view")
    if not 1 <= limit <= MAX_LIST:
        raise ValidationFailed(f"A list of {limit} photos is not offered.", hint=f"Ask for 1 to {MAX_LIST}.")
    step = disagreement.refresh(actor, settings=settings)
    org, d = actor.organization_id, DISAGREEMENTS.c
    with org_session(org, settings=settings) as s:
        threshold = threshold_of(s, org)
        compared = s.scalar(select(func.count()).select_from(DISAGREEMENTS).where(d.organization_id == org))
        below = s.scalar(select(func.count()).select_from(DISAGREEMENTS)
                         .where(d.organization_id == org, d.jaccard < threshold))
        facts = s.execute(select(DISAGREEMENTS).where(d.organization_id == org, d.jaccard < threshold)
                          .order_by(d.jaccard, d.photo_id).limit(limit)).all()
        names = {int(i): n for i, n in s.execute(select(Photo.id, Photo.filename).where(
            Photo.id.in_([int(f.photo_id) for f in facts] or [0])))}
        rows = tuple(DisagreementRow(filename=names.get(p.photo_id, ""), pair=p) for p in _pairs(s, facts))
    return DisagreementReport(threshold=threshold, compared=int(compared or 0), below=int(below or 0), rows=rows,
                              refresh=step)
