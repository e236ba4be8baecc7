"""Suggestions for a draft from the organization's own results: what its best-performing prompt versions share.

Per version of the prompt (aggregated in the database): results, review rate, average confidence. The best
version (lowest review rate, then highest confidence, among versions with enough results) is compared with the
draft on the traits the analysis reads (asks for JSON, sets a tag limit, length).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, func, select

from aiconsole.platform.actor import Actor
from aiconsole.platform.db import get_engine, org_session
from aiconsole.platform.db.models import AiProcessingResult, PromptVersion
from aiconsole.platform.settings import Settings
from aiconsole.prompts import analysis

MIN_RESULTS = 20  # a version with fewer results says too little to learn from


@dataclass(frozen=True)
class VersionPerformance:
    version: int
    content: str
    results: int
    review_rate: float
    avg_confidence: float | None


def version_performance(actor: Actor, *, prompt_id: int, settings: Settings | None = None
                        ) -> list[VersionPerformance]:
    """Each version of the prompt with >= MIN_RESULTS finished results, best first."""
    actor.require("pipeline.view")
    r = AiProcessingResult
    finished = r.status.in_(("completed", "needs_review"))
    query = (select(PromptVersion.version, PromptVersion.content, func.count().label("n"),
                    func.sum(case((r.status == "needs_review", 1), else_=0)).label("reviews"),
                    func.avg(r.avg_confidence).label("conf"))
             .join(PromptVersion, PromptVersion.id == r.prompt_version_id)
             .where(r.organization_id == actor.organization_id, PromptVersion.prompt_id == prompt_id, finished)
             .group_by(PromptVersion.version, PromptVersion.content)
             .having(func.count() >= MIN_RESULTS))
    with org_session(actor.organization_id, engine=get_engine(settings)) as s:
        rows = s.execute(query).all()
    out = [VersionPerformance(int(v), str(c), int(n), int(rv or 0) / int(n), float(cf) if cf is not None else None)
           for v, c, n, rv, cf in rows]
    return sorted(out, key=lambda p: (p.review_rate, -(p.avg_confidence or 0.0), -p.version))


def suggestions(draft: str, performance: list[VersionPerformance]) -> list[str]:
    """What the best version does that the draft does not (empty when there is nothing to learn from)."""
    if len(performance) < 2:
        return []
    best, worst = performance[0], performance[-1]
    if best.review_rate >= worst.review_rate:
        return []
    why = f"v{best.version}, the best-performing version ({best.review_rate:.0%} sent to review, against " \
          f"{worst.review_rate:.0%} for v{worst.version} over {best.results:,} photos)"
    out = []
    if analysis.output_format(best.content) == "json" and analysis.output_format(draft) != "json":
        out.append(f"Ask for a JSON answer: {why} does.")
    codes = {w.code for w in analysis.warnings_for(draft, provider="local", tokens=0, production_tokens=None)}
    best_codes = {w.code for w in analysis.warnings_for(best.content, provider="local", tokens=0,
                                                        production_tokens=None)}
    if "no_tag_limit" in codes and "no_tag_limit" not in best_codes:
        out.append(f"Set a tag limit: {why} sets one.")
    if len(draft) > 1.5 * len(best.content):
        out.append(f"Shorten it: {why} is {len(best.content):,} characters, this draft {len(draft):,}.")
    return out
