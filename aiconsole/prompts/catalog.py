"""Reading prompts: the list with labels, versions with their usage, and side-by-side diffs
(word-level inside a line: `aiconsole.prompts.diffs`).

Usage per version is aggregated in SQL from ai_processing_results (grouped by prompt_version_id) and
cached for a minute. Changes to prompts live in `aiconsole.prompts`, which re-exports these readers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from aiconsole.platform import cache
from aiconsole.platform.actor import Actor
from aiconsole.platform.db.engine import get_engine, org_session
from aiconsole.platform.db.models import AiProcessingResult, PipelineConfig, Prompt, PromptLabel, PromptVersion, User
from aiconsole.platform.errors import NotFound
from aiconsole.platform.settings import Settings
from aiconsole.prompts.diffs import DiffRow, diff_rows

USAGE_TTL_S = 60.0
USAGE_CACHE_PREFIX = "prompt_usage"
__all__ = ["DiffRow", "PromptRow", "VersionRow", "diff_rows", "diff_versions", "invalidate_usage", "list_prompts",
           "list_versions", "load_prompt", "load_version", "usage_frame"]


@dataclass(frozen=True)
class PromptRow:
    """A prompt with its latest version number and where its labels point (label -> version number)."""

    id: int
    name: str
    description: str
    latest_version: int
    version_count: int
    labels: dict[str, int]
    active: bool
    created_at: datetime


@dataclass(frozen=True)
class VersionRow:
    """One immutable version with its labels and usage (results of photos processed with it)."""

    id: int
    prompt_id: int
    version: int
    content: str
    variables: tuple[str, ...]
    message: str
    author: str
    created_at: datetime
    labels: tuple[str, ...]
    photos: int
    avg_confidence: float | None
    cost_per_photo_micros: int | None


def load_prompt(s: Session, actor: Actor, prompt_id: int, *, lock: bool = False) -> Prompt:
    """The actor's organization's prompt (row-locked with `lock`), or NotFound."""
    query = select(Prompt).where(Prompt.id == prompt_id, Prompt.organization_id == actor.organization_id)
    prompt = s.scalar(query.with_for_update() if lock else query)
    if prompt is None:
        raise NotFound(f"There is no prompt #{prompt_id} in your organization.", hint="Reload the prompt list.")
    return prompt


def load_version(s: Session, actor: Actor, prompt_id: int, version_id: int) -> PromptVersion:
    """A version of that prompt in the actor's organization, or NotFound."""
    version = s.scalar(select(PromptVersion).where(
        PromptVersion.id == version_id, PromptVersion.prompt_id == prompt_id,
        PromptVersion.organization_id == actor.organization_id))
    if version is None:
        raise NotFound(f"Version #{version_id} does not belong to prompt #{prompt_id}.",
                       hint="Pick a version from the list.")
    return version


def _labels(s: Session, actor: Actor, prompt_ids: Iterable[int]) -> list[tuple[int, str, int, int]]:
    """(prompt_id, label, version_id, version number) for the prompts' labels."""
    rows = s.execute(
        select(PromptLabel.prompt_id, PromptLabel.label, PromptLabel.version_id, PromptVersion.version)
        .join(PromptVersion, PromptVersion.id == PromptLabel.version_id)
        .where(PromptLabel.organization_id == actor.organization_id, PromptLabel.prompt_id.in_(list(prompt_ids)))
        .order_by(PromptLabel.label)).all()
    return [(int(r[0]), str(r[1]), int(r[2]), int(r[3])) for r in rows]


def list_prompts(actor: Actor, *, settings: Settings | None = None) -> list[PromptRow]:
    """The organization's prompts by name, with their latest version and labels."""
    actor.require("pipeline.view")
    with org_session(actor.organization_id, engine=get_engine(settings)) as s:
        stats = s.execute(
            select(Prompt, func.max(PromptVersion.version), func.count(PromptVersion.id))
            .outerjoin(PromptVersion, (PromptVersion.prompt_id == Prompt.id)
                       & (PromptVersion.organization_id == actor.organization_id))
            .where(Prompt.organization_id == actor.organization_id)
            .group_by(Prompt.id).order_by(Prompt.name)).all()
        active = s.scalar(select(PipelineConfig.active_prompt_id)
                          .where(PipelineConfig.organization_id == actor.organization_id))
        labels: dict[int, dict[str, int]] = {}
        for prompt_id, label, _vid, number in _labels(s, actor, [p.id for p, _, _ in stats]):
            labels.setdefault(prompt_id, {})[label] = number
        return [PromptRow(id=p.id, name=p.name, description=p.description, latest_version=int(latest or 0),
                          version_count=int(count), labels=labels.get(p.id, {}), active=p.id == active,
                          created_at=p.created_at) for p, latest, count in stats]


def _usage(actor: Actor, prompt_id: int, settings: Settings | None) -> list[list[Any]]:
    def compute() -> list[list[Any]]:
        r = AiProcessingResult
        served = r.status.in_(("completed", "needs_review"))
        query = (select(r.prompt_version_id, func.count(case((served, 1))),
                        func.avg(case((served, r.avg_confidence))), func.sum(r.api_cost_micros))
                 .join(PromptVersion, PromptVersion.id == r.prompt_version_id)
                 .where(r.organization_id == actor.organization_id, PromptVersion.prompt_id == prompt_id,
                        PromptVersion.organization_id == actor.organization_id)
                 .group_by(r.prompt_version_id))
        with org_session(actor.organization_id, engine=get_engine(settings)) as s:
            return [[int(v), int(n), None if c is None else float(c), int(cost or 0)]
                    for v, n, c, cost in s.execute(query)]

    return cache.cached((USAGE_CACHE_PREFIX, actor.organization_id, prompt_id), USAGE_TTL_S, compute,
                        settings=settings)


def list_versions(actor: Actor, *, prompt_id: int, settings: Settings | None = None) -> list[VersionRow]:
    """A prompt's versions, newest first, with labels and usage.

    Usage counts photos served (completed or sent to review) with the version; cost per photo divides all
    the version's spend, failed attempts included, by those photos.
    """
    actor.require("pipeline.view")
    with org_session(actor.organization_id, engine=get_engine(settings)) as s:
        load_prompt(s, actor, prompt_id)
        rows = s.execute(
            select(PromptVersion, User.email).outerjoin(User, User.id == PromptVersion.author_id)
            .where(PromptVersion.prompt_id == prompt_id, PromptVersion.organization_id == actor.organization_id)
            .order_by(PromptVersion.version.desc())).all()
        labels: dict[int, list[str]] = {}
        for _pid, label, version_id, _n in _labels(s, actor, [prompt_id]):
            labels.setdefault(version_id, []).append(label)
    usage = {v: (n, conf, cost) for v, n, conf, cost in _usage(actor, prompt_id, settings)}
    out = []
    for v, email in rows:
        photos, conf, cost = usage.get(v.id, (0, None, 0))
        out.append(VersionRow(id=v.id, prompt_id=v.prompt_id, version=v.version, content=v.content,
                              variables=tuple(v.variables or ()), message=v.message, author=email or "(deleted user)",
                              created_at=v.created_at, labels=tuple(labels.get(v.id, ())), photos=photos,
                              avg_confidence=conf, cost_per_photo_micros=round(cost / photos) if photos else None))
    return out


def diff_versions(actor: Actor, *, prompt_id: int, left_version_id: int, right_version_id: int,
                  settings: Settings | None = None) -> list[DiffRow]:
    """Side-by-side diff rows from one version of a prompt to another."""
    actor.require("pipeline.view")
    with org_session(actor.organization_id, engine=get_engine(settings)) as s:
        left = load_version(s, actor, prompt_id, left_version_id).content
        right = load_version(s, actor, prompt_id, right_version_id).content
    return diff_rows(left, right)


def invalidate_usage(organization_id: int) -> None:
    """Drop cached usage figures (after results were recorded in bulk, e.g. by tests or a backfill)."""
    cache.invalidate(f"{USAGE_CACHE_PREFIX}:{organization_id}:")


def usage_frame(versions: Sequence[VersionRow]) -> pd.DataFrame:
    """The versions' usage as a DataFrame (oldest first) for `charts.prompt_versions_chart`."""
    return pd.DataFrame([{"version": v.version, "photos": v.photos, "avg_confidence": v.avg_confidence,
                          "cost_per_photo_micros": v.cost_per_photo_micros} for v in reversed(versions)],
                        columns=["version", "photos", "avg_confidence", "cost_per_photo_micros"])
