"""The demo's review history, so Quality Control shows something true on first start.

Two kinds of review, as a real team works: the low-confidence queue (the history's reviewer corrections of
needs_review tags, grouped into one review per photo) and a random sample of processed photos (about 3 % of
completed photos a day, every AI tag decided, whatever its verdict), the only reviews whose decisions estimate
the AI's precision without bias. A sampled tag is approved when it is truly in the photo and rejected
otherwise, so the sample's precision is the history's own. Each review becomes rows of reviews,
review_decisions (label, confidence, verdict, provider, model and prompt version as decided) and
ground_truth (the photo's reviewed accepted and corrected labels, as quality.decisions writes them).

`sample_reviews` runs on the in-memory history before it is written (it changes tag states and appends
corrections); `review_rows` builds the rows once the history has database ids; `double_review_rows` adds the
blind second reviews the organization's 5 % share routes (most decided, the newest still waiting), which
feed the reviewer agreement figures (kappa, disagreements to adjudicate).
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from aiconsole.demo.history import ACCEPT, REJECT, History
from aiconsole.quality import double_review

SAMPLE_SHARE = 0.03  # of completed photos, reviewed in random order
SAMPLE_DELAY_HOURS = 12.0  # mean time from processing to a sample review
# What a reviewer says when rejecting, by share (wrong labels mostly; generic ones next).
REJECT_REASONS = (("wrong", 0.62), ("too_generic", 0.22), ("duplicate", 0.08), ("other", 0.08))
_ACTION = {"accept": "approve", "reject": "reject", "correct": "rename", "add": "add"}
_SAMPLED = "random"


def _verdict(confidence: float) -> str:
    return "accepted" if confidence >= ACCEPT else "rejected" if confidence < REJECT else "needs_review"


def _reason(rng: random.Random) -> str:
    pick, acc = rng.random(), 0.0
    for reason, share in REJECT_REASONS:
        acc += share
        if pick < acc:
            return reason
    return REJECT_REASONS[-1][0]


def sample_reviews(rng: random.Random, history: History, now: datetime) -> int:
    """Review a random sample of completed photos (every AI tag decided by its truth); how many photos."""
    by_photo: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for tag in history.tags:
        by_photo[tag["_photo"]].append(tag)
    sampled = 0
    for pk, photo in enumerate(history.photos):
        tags = by_photo.get(pk, [])
        if photo["status"] != "completed" or not tags or any(t["reviewed_at"] is not None for t in tags):
            continue
        if rng.random() >= SAMPLE_SHARE:
            continue
        at = photo["completed_at"] + timedelta(hours=rng.expovariate(1 / SAMPLE_DELAY_HOURS), minutes=1)
        if at >= now - timedelta(minutes=5):
            continue
        who = "reviewer" if rng.random() < 0.8 else "admin"
        for tag in tags:
            true = tag["_true"]
            before = {"label": tag["label"], "confidence": tag["confidence"], "review_state": tag["review_state"]}
            state = "accepted" if true else "rejected"
            tag.update(review_state=state, reviewed_by=who, reviewed_at=at)
            history.corrections.append({"_photo": pk, "_tag": tag, "action": "accept" if true else "reject",
                                        "before": before, "after": {"label": tag["label"], "review_state": state},
                                        "user_id": who, "created_at": at, "_order": _SAMPLED})
            at += timedelta(seconds=rng.randint(2, 9))
        photo["updated_at"] = max(photo["updated_at"], at)
        sampled += 1
    return sampled


def review_rows(rng: random.Random, history: History, *, organization_id: int, photo_ids: list[int],
                tag_results: dict[int, int | None], users: dict[str, int],
                reserve: Callable[[int], list[int]]
                ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(reviews, review_decisions, ground_truth) rows for the written history (tags and results have their
    ids); `reserve(n)` gives n review ids. `tag_results` maps id(tag dict) to its result's index."""
    groups: dict[tuple[int, str], list[dict[str, Any]]] = defaultdict(list)
    for c in history.corrections:
        groups[(c["_photo"], c.get("_order", "lowest_confidence"))].append(c)
    reviews: list[dict[str, Any]] = []
    decisions: list[dict[str, Any]] = []
    for (pk, order), items in sorted(groups.items(), key=lambda kv: max(c["created_at"] for c in kv[1])):
        submitted = max(c["created_at"] for c in items)
        who = users[items[0]["user_id"]]
        review = {"organization_id": organization_id, "photo_id": photo_ids[pk], "reviewer_id": who,
                  "claim_token": str(uuid.UUID(int=rng.getrandbits(128))), "queue_order": order,
                  "claimed_at": min(c["created_at"] for c in items) - timedelta(seconds=rng.randint(4, 40)),
                  "submitted_at": submitted, "_pk": pk}
        for c in items:
            tag = c["_tag"]
            index = tag_results.get(id(tag))
            result = None if index is None else history.results[index]
            action = _ACTION[c["action"]]
            before = c["before"] or {}
            decisions.append({"_review": len(reviews),
                "organization_id": organization_id, "photo_id": review["photo_id"], "tag_id": tag["id"],
                "action": action, "reason": _reason(rng) if action == "reject" else None, "note": None,
                "label_before": before.get("label"), "label_after": None if action == "reject" else tag["label"],
                "confidence": before.get("confidence"),
                "ai_verdict": None if action == "add" else _verdict(float(before["confidence"])),
                "ai_provider": None if result is None else result["ai_provider"],
                "model": None if result is None else result["model"],
                "prompt_version_id": None if result is None else result["prompt_version_id"],
                "reviewer_id": users[c["user_id"]], "created_at": c["created_at"]})
        reviews.append(review)
    latest_review: dict[int, int] = {}
    for rid, review in zip(reserve(len(reviews)), reviews, strict=True):
        review["id"] = rid
        latest_review[review.pop("_pk")] = rid  # reviews run oldest first: the last one per photo wins
    for d in decisions:
        d["review_id"] = reviews[d.pop("_review")]["id"]
    truth = _ground_truth(organization_id=organization_id, photo_ids=photo_ids, groups=groups, users=users)
    for row in truth:
        row["review_id"] = latest_review[row.pop("_photo")]
    return reviews, decisions, truth


def _ground_truth(*, organization_id: int, photo_ids: list[int],
                  groups: dict[tuple[int, str], list[dict[str, Any]]], users: dict[str, int]) -> list[dict[str, Any]]:
    """Per reviewed photo, its reviewed accepted and corrected labels (decisions.py's rule)."""
    latest: dict[int, dict[str, Any]] = {}
    for (pk, _order), items in groups.items():
        last = max(items, key=lambda c: c["created_at"])
        if pk not in latest or last["created_at"] > latest[pk]["created_at"]:
            latest[pk] = last
    labels: dict[int, set[str]] = defaultdict(set)
    for (pk, _order), items in groups.items():  # every reviewed tag has its decision among them
        labels[pk].update(c["_tag"]["label"] for c in items if c["_tag"]["review_state"] in ("accepted", "corrected"))
    return [{"organization_id": organization_id, "photo_id": photo_ids[pk], "label": label, "source": "review",
             "set_by": users[latest[pk]["user_id"]], "created_at": latest[pk]["created_at"], "_photo": pk}
            for pk in sorted(labels) for label in sorted(labels[pk])]


DOUBLE_SHARE = 0.05  # the demo organization's setting: a twentieth of reviewed photos get a second reviewer
SECOND_DELAY_HOURS = 8.0  # mean time from a first review to its blind second review
AGREE = 0.86  # how often the second reviewer keeps or rejects a tag as the first did


def double_review_rows(rng: random.Random, reviews: list[dict[str, Any]], decisions: list[dict[str, Any]], *,
                       organization_id: int, users: dict[str, int], now: datetime,
                       reserve: Callable[[int], list[int]]
                       ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(second reviews, their decisions, double_reviews) for the reviews the routing draw sends to a second,
    blind reviewer (quality.double_review.routed at DOUBLE_SHARE): the other of reviewer and admin decides each
    AI tag again, agreeing AGREE of the time; those too recent wait for their second review."""
    by_review: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for d in decisions:
        by_review[d["review_id"]].append(d)
    people = {users["reviewer"]: users["admin"], users["admin"]: users["reviewer"]}
    seconds: list[dict[str, Any]] = []
    second_decisions: list[dict[str, Any]] = []
    doubles: list[dict[str, Any]] = []
    for first in reviews:
        judged = [d for d in by_review[first["id"]] if d["action"] != "add"]  # a second reviewer sees AI tags only
        if not judged or not double_review.routed(organization_id, first["photo_id"], DOUBLE_SHARE):
            continue
        at = first["submitted_at"] + timedelta(hours=rng.expovariate(1 / SECOND_DELAY_HOURS), minutes=2)
        double = {"organization_id": organization_id, "photo_id": first["photo_id"], "first_review_id": first["id"],
                  "second_review_id": None, "status": "waiting", "created_at": first["submitted_at"]}
        doubles.append(double)
        if at >= now - timedelta(minutes=5):
            continue  # still waiting for its second reviewer
        who = people.get(first["reviewer_id"], users["reviewer"])
        second = {"organization_id": organization_id, "photo_id": first["photo_id"], "reviewer_id": who,
                  "claim_token": str(uuid.UUID(int=rng.getrandbits(128))), "queue_order": "second_review",
                  "claimed_at": at - timedelta(seconds=rng.randint(5, 60)), "submitted_at": at, "_double": double}
        seconds.append(second)
        for d in judged:
            kept = d["action"] == "approve"
            keep = kept if rng.random() < AGREE else not kept
            second_decisions.append({**d, "_second": second, "action": "approve" if keep else "reject",
                                     "reason": None if keep else _reason(rng), "label_after": d["label_before"]
                                     if keep else None, "reviewer_id": who, "created_at": at})
    for rid, second in zip(reserve(len(seconds)), seconds, strict=True):
        second["id"] = rid
        double = second.pop("_double")
        double.update(second_review_id=rid, status="reviewed")
    for d in second_decisions:
        d["review_id"] = d.pop("_second")["id"]
        d.pop("id", None)
    return seconds, second_decisions, doubles
