"""What the emulator's models answer: what is in the photo, worded as the prompt observably asks.

Content is the local analyzer's view of the image: the object tagger's tags with their broader tags, and
the descriptions (colours, orientation, brightness, ...). It is computed once per image content and cached;
JPEG comments, which make the bytes of every demo variant differ, are not content.

Vision (no prompt) answers the object tags, most confident first, topped up with descriptions when it has
fewer than MIN_LABELS.

Gemini follows a prompt deterministically, as a model at temperature 0 would:
- the tag limit: "at most / up to / no more than / maximum N", "N tags" (and the schema's maxItems);
- casing: lower-case, Title Case or UPPER-CASE when asked; otherwise the wording picks lower or Sentence case;
- language: "in German / French / Spanish" through tag_translations (a tag it lacks stays in English);
- the JSON shape: the responseSchema when one is sent (as Gemini's structured output does), else the example
  in the prompt (`{"tags": [{"label": str, "confidence": number}]}` or a bare list, with its key names);
- vocabulary: descriptions (colour, tone, sharpness; not the file's size or orientation) only when the prompt
  asks for more than objects (scene, style, colour, ...);
  "no synonyms / duplicates" drops a broader tag that says no more than the tag below it; and the hash of the
  normalized prompt picks the granularity (finer: no top-level tags; broader: no class names under a broader
  tag), some synonyms ("drink" -> "beverage") and how overconfident the model is ("calibrated" keeps the
  probabilities). So two prompt versions give different tags, and the same prompt the same ones.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from aiconsole.providers.imagenet_tags import tag_table
from aiconsole.providers.local import DESCRIPTOR_WEIGHT, SIZE_CLASSES, descriptor_tags, measure
from aiconsole.providers.object_tagger import decode, get_tagger
from aiconsole.providers.tag_translations import LANGUAGES, translate

MIN_LABELS = 3
DEFAULT_LIMIT = 10
CACHE_SIZE = 1024
SYNONYMS = {"drink": "beverage", "car": "automobile", "motorcycle": "motorbike", "pet": "domestic animal",
            "photography": "photo equipment", "sea creature": "marine animal", "tableware": "dishware",
            "clothing": "apparel", "sport": "sports", "timepiece": "clock", "tabby cat": "tabby",
            "rocket": "launch vehicle", "vehicle": "transport", "espresso": "espresso coffee"}
_LIMIT = re.compile(r"\b(?:at most|up to|no more than|maximum(?: of)?|max\.?)\s+(\d{1,3})\b"
                    r"|\b(\d{1,3})\s+(?:[a-z-]+\s+){0,3}?(?:tags|labels)\b")
_ASKS_MORE_THAN_OBJECTS = re.compile(r"scene|style|colou?r|attribute|mood|lighting|composition|material")
# Facts about the file, not what a model looking at the photo would call its style.
_FILE_FACTS = {label for _, label in SIZE_CLASSES} | {"landscape orientation", "portrait orientation", "square",
                                                     "panoramic"}
_NO_DUPLICATES = re.compile(r"no (?:synonyms|duplicates)|without (?:synonyms|duplicates)|not repeat")


@dataclass(frozen=True)
class ContentTag:
    """One thing the emulator knows about an image; height -1 marks a description (not an object)."""

    label: str
    confidence: float
    height: int


@dataclass(frozen=True)
class Shape:
    """The JSON an answer takes: a bare list (wrapper None) or {wrapper: [...]}, with these item keys."""

    wrapper: str | None = None
    label_key: str = "label"
    confidence_key: str = "confidence"

    def render(self, labels: list[tuple[str, float]]) -> str:
        """The answer's JSON text for these labels."""
        items = [{self.label_key: label, self.confidence_key: conf} for label, conf in labels]
        return json.dumps({self.wrapper: items} if self.wrapper else items, ensure_ascii=False)


def content_key(data: bytes) -> str:
    """sha256 of the image bytes without JPEG comment segments (the same pixels give the same key)."""
    digest = hashlib.sha256()
    i = 2
    if data[:2] == b"\xff\xd8":
        while i + 4 <= len(data) and data[i] == 0xFF:
            marker = data[i + 1]
            if marker == 0xFF:  # fill byte
                i += 1
                continue
            if marker == 0xDA:  # start of scan: the rest is the entropy-coded image
                break
            length = int.from_bytes(data[i + 2:i + 4], "big")
            if marker != 0xFE:
                digest.update(data[i:i + 2 + length])
            i += 2 + length
        digest.update(data[i:])
    else:
        digest.update(data)
    return digest.hexdigest()


_cache: OrderedDict[str, tuple[ContentTag, ...]] = OrderedDict()
_cache_lock = threading.Lock()


def content_tags(data: bytes) -> tuple[ContentTag, ...]:
    """Object tags (most confident first) then descriptions, at their measured confidence; cached."""
    key = content_key(data)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    rgb = decode(data)
    objects = [ContentTag(t.label, t.confidence, t.height)
               for t in get_tagger().classify(rgb, min_confidence=0.03).tags]
    descriptions = [ContentTag(label, conf, -1) for label, conf in descriptor_tags(measure(rgb, faces=False))]
    tags = tuple(objects + sorted(descriptions, key=lambda t: -t.confidence))
    with _cache_lock:
        _cache[key] = tags
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return tags


def vision_labels(data: bytes) -> list[tuple[str, float]]:
    """What the Vision emulator labels these image bytes with, best first."""
    tags = content_tags(data)
    out = [(t.label, t.confidence) for t in tags if t.height >= 0 and t.confidence >= 0.1]
    extra = [(t.label, t.confidence) for t in tags if t.height >= 0 and t.confidence < 0.1]
    extra += [(t.label, round(t.confidence * DESCRIPTOR_WEIGHT, 4)) for t in tags if t.height < 0]
    return out + sorted(extra, key=lambda lc: -lc[1])[: max(0, MIN_LABELS - len(out))]


def normalized(prompt: str) -> str:
    """The prompt as its wording matters to the emulator: lower case, whitespace collapsed, digits masked."""
    return re.sub(r"\d+", "#", " ".join(prompt.lower().split()))


def prompt_limit(prompt: str) -> int | None:
    """The tag limit the prompt states, if any (the smallest when it states several)."""
    found = [int(a or b) for a, b in _LIMIT.findall(prompt.lower())]
    return min(found) if found else None


def prompt_language(prompt: str) -> str:
    """The language code asked for ("in German" -> "de"); "en" when none is named."""
    match = re.search(r"\b(?:in|auf|en)\s+(" + "|".join(LANGUAGES) + r")\b", prompt.lower())
    return LANGUAGES[match.group(1)] if match else "en"


def prompt_casing(prompt: str, seed: int) -> str:
    """'lower', 'title', 'upper' when the prompt asks; else 'lower' or 'sentence' by its wording."""
    text = prompt.lower()
    if re.search(r"lower[- ]?case", text):
        return "lower"
    if re.search(r"title[- ]?case", text):
        return "title"
    if re.search(r"upper[- ]?case|all caps|capital letters", text):
        return "upper"
    return "sentence" if seed % 3 == 2 else "lower"


def _cased(label: str, casing: str) -> str:
    if casing == "upper":
        return label.upper()
    if casing == "title":
        return " ".join(w[:1].upper() + w[1:] for w in label.split(" "))
    if casing == "sentence":
        return label[:1].upper() + label[1:]
    return label.lower()


def _granular(tags: list[ContentTag], choice: int) -> list[ContentTag]:
    """Finer (choice 0: no tags of height >= 2), as measured (1), or broader (2: no class names under a
    broader tag that is present)."""
    table = tag_table()
    present = {t.label for t in tags}
    if choice == 0:
        kept = [t for t in tags if t.height < 2]
    elif choice == 2:
        kept = [t for t in tags if t.height != 0 or not (table.ancestors(t.label) & present)]
    else:
        kept = tags
    return kept or tags


def _without_duplicates(tags: list[ContentTag]) -> list[ContentTag]:
    """Drop a broader tag within 0.03 of a tag below it: it says nothing the finer one does not."""
    table = tag_table()
    drop: set[str] = set()
    for t in tags:
        for up in table.ancestors(t.label):
            drop.update(u.label for u in tags if u.label == up and u.confidence - t.confidence <= 0.03)
    return [t for t in tags if t.label not in drop]


def gemini_labels(data: bytes, prompt: str, *, max_items: int | None = None) -> list[tuple[str, float]]:
    """The (label, confidence) pairs the Gemini emulator answers for this image and prompt, best first."""
    text = normalized(prompt)
    seed = int(hashlib.sha256(text.encode()).hexdigest()[:12], 16)
    style = bool(_ASKS_MORE_THAN_OBJECTS.search(text))
    seen = content_tags(data)
    objects = any(t.height >= 0 for t in seen)
    # With no object in sight a model still describes what it gets (a tiny or abstract image).
    tags = [t for t in seen if t.height >= 0 or ((style or not objects) and t.label not in _FILE_FACTS)]
    tags = _granular(tags, seed % 3)
    if _NO_DUPLICATES.search(text):
        tags = _without_duplicates(tags)
    calibrated = "calibrat" in text
    gamma = 1.0 if calibrated else (0.45, 0.6, 0.75)[(seed >> 4) % 3]
    jitter = 0.02 if calibrated else 0.06
    language, casing = prompt_language(prompt), prompt_casing(prompt, seed >> 8)
    scored: list[tuple[str, float]] = []
    for t in tags:
        rng = random.Random(f"{seed}:{t.label}")
        base = t.confidence * (0.6 if t.height < 0 else 1.0)  # a model puts what it sees above the style
        conf = round(min(0.99, max(0.01, base ** gamma + rng.uniform(-jitter, jitter))), 2)
        label = translate(t.label, language) if language != "en" else (
            SYNONYMS.get(t.label, t.label) if rng.random() < 0.35 else t.label)
        scored.append((_cased(label, casing), conf))
    ranked = sorted(scored, key=lambda lc: (-lc[1], lc[0]))
    kept = [lc for lc in ranked if lc[1] >= 0.2] or ranked[:MIN_LABELS]
    limits = [n for n in (prompt_limit(prompt), max_items) if n is not None]
    out: list[tuple[str, float]] = []
    for label, conf in kept:
        if label not in {lbl for lbl, _ in out}:  # two tags may translate to one word
            out.append((label, conf))
    return out[: min(limits) if limits else DEFAULT_LIMIT]


def _schema_shape(schema: dict[str, Any]) -> Shape | None:
    kind = str(schema.get("type") or "").upper()
    wrapper = None
    if kind == "OBJECT":
        arrays = [(k, v) for k, v in (schema.get("properties") or {}).items()
                  if str((v or {}).get("type") or "").upper() == "ARRAY"]
        if not arrays:
            return None
        wrapper, schema = arrays[0]
        kind = "ARRAY"
    if kind != "ARRAY":
        return None
    props = (schema.get("items") or {}).get("properties") or {}
    types = {k: str((v or {}).get("type") or "").upper() for k, v in props.items()}
    label = next((k for k, t in types.items() if t == "STRING"), "label")
    conf = next((k for k, t in types.items() if t in ("NUMBER", "INTEGER")), "confidence")
    return Shape(wrapper, label, conf)


def answer_shape(prompt: str, schema: dict[str, Any] | None) -> Shape:
    """The JSON shape to answer in: the response schema's, else the example the prompt gives, else a list."""
    if schema:
        shape = _schema_shape(schema)
        if shape is not None:
            return shape
    wrapped = re.search(r'\{\s*"(\w+)"\s*:\s*\[\s*\{([^{}]*)\}', prompt)
    bare = wrapped or re.search(r"\[\s*\{([^{}]*)\}", prompt)
    if bare is None:
        return Shape()
    keys = re.findall(r'"(\w+)"\s*:\s*"?(\w+)', bare.group(bare.lastindex or 1))
    label = next((k for k, t in keys if t.lower() in ("str", "string", "text")), keys[0][0] if keys else "label")
    conf = next((k for k, t in keys if t.lower() in ("number", "float", "int", "double")), "confidence")
    return Shape(wrapped.group(1) if wrapped else None, label, conf)
