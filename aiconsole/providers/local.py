"""The `local` provider: offline analysis of the image itself, free, no keys, no network.

Primary tags name what is in the photo: an ImageNet-1k classifier (EfficientNet-Lite0 on onnxruntime, see
object_tagger) gives class probabilities, imagenet_tags turns them into readable tags with broader tags
(tabby cat -> cat -> pet, mammal -> animal), and each tag's confidence IS the softmax probability (a broader
tag's, the summed probability of its classes). Tags under OBJECT_MIN_CONFIDENCE are left out.

Secondary tags describe the image; they carry their measured confidence times DESCRIPTOR_WEIGHT (0.35).
So a description ("square", "gray") never outranks an object the model is at least 35 % sure of, and it
stays under the default reject threshold (0.4): descriptions never send a photo to review, and an
organization that wants one applied (say "black and white") gives that label an override. The measurements:

- size class ("small image", ...) and orientation ("landscape orientation", "portrait orientation",
  "square", "panoramic"): read from the pixel dimensions after EXIF rotation, so confidence 1.0.
- colours: every pixel of a 128-px thumbnail is named by hue/saturation/value (red, orange, yellow, green,
  teal, blue, purple, pink, brown, black, white, gray); a colour covering at least 10 % of the image is a
  tag whose confidence IS that share of pixels. "black and white" when at least 90 % of pixels carry no
  colour (near-black pixels do not count), with that share as confidence.
- brightness ("dark", "bright"), contrast ("low contrast", "high contrast") and sharpness ("sharp",
  "blurry", from scikit-image's blur_effect, Crété-Roffet 2007): each fires past a threshold; confidence is
  0.5 at the threshold rising linearly to 0.95 at a clear margin. These are margins, not calibrated
  probabilities, so they never claim more than 0.95.
- faces ("face"): scikit-image ships OpenCV's LBP frontal-face cascade offline. Raw cascade windows are
  grouped by overlap; a group of at least 6 agreeing windows is a face (on the 17 sample photos x 12 looks,
  no photo without a frontal face reached 6). Confidence 0.6 at 6 windows, up to 0.9 at 16 or more:
  uncalibrated, and frontal faces only.

Faces are content, not description: "face" keeps the cascade's confidence.

Every measurement, and the model's five most probable classes, are in `raw_response` so the debug view
shows why a tag was (not) given.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
from PIL import Image

from aiconsole.providers.base import (
    AnalysisRequest,
    ImageInput,
    ProviderResult,
    make_tags,
    provider_error,
    timed,
    truncate_raw,
)
from aiconsole.providers.object_tagger import Classification, decode, describe, get_tagger
from aiconsole.providers.pricing import LOCAL_MODEL

NAME = "local"
SIZE_CLASSES = ((100_000, "thumbnail"), (1_000_000, "small image"), (4_000_000, "medium image"),
                (12_000_000, "large image"), (None, "very large image"))
COLOR_MIN_SHARE = 0.10
MAX_COLORS = 3
FACE_MIN_WINDOWS = 6
FACE_SIDE = 320
OBJECT_MIN_CONFIDENCE = 0.1
DESCRIPTOR_WEIGHT = 0.35  # below pipeline.rules.DEFAULT_REJECT (a test holds it there)


def margin_confidence(value: float, threshold: float, clear: float) -> float | None:
    """0.5 when `value` just passes `threshold` towards `clear` (either direction), 0.95 at `clear`; else None."""
    span = clear - threshold
    passed = (value - threshold) / span
    if passed <= 0:
        return None
    return round(0.5 + 0.45 * min(1.0, passed), 4)


def size_class(width: int, height: int) -> str:
    """The size label for an image of width x height pixels."""
    pixels = width * height
    for bound, label in SIZE_CLASSES:
        if bound is None or pixels < bound:
            return label
    raise AssertionError("unreachable: the last size class has no bound")


def orientation(width: int, height: int) -> str:
    """'panoramic' (2:1 or wider/taller), 'square' (within 5 %), else landscape/portrait orientation."""
    ratio = max(width, height) / min(width, height)
    if ratio >= 2.0:
        return "panoramic"
    if ratio <= 1.05:
        return "square"
    return "landscape orientation" if width > height else "portrait orientation"


def hsv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hue in degrees, saturation and value in 0..1 of an (..., 3) uint8 RGB array."""
    a = rgb.astype(np.float32) / 255.0
    mx, mn = a.max(axis=-1), a.min(axis=-1)
    delta = mx - mn
    sat = np.where(mx > 0, delta / np.maximum(mx, 1e-6), 0.0)
    r, g, b = a[..., 0], a[..., 1], a[..., 2]
    safe = np.maximum(delta, 1e-6)
    hue = np.select([mx == r, mx == g], [((g - b) / safe) % 6, (b - r) / safe + 2], (r - g) / safe + 4) * 60.0
    return hue, sat, mx


def color_names(rgb: np.ndarray) -> np.ndarray:
    """A colour name per pixel of an (..., 3) uint8 RGB array, by hue/saturation/value."""
    hue, sat, val = hsv(rgb)
    names = np.full(hue.shape, "gray", dtype=object)
    chroma = (sat >= 0.2) & (val >= 0.2)
    bins = [(15, "red"), (45, "orange"), (70, "yellow"), (170, "green"), (200, "teal"), (260, "blue"),
            (290, "purple"), (340, "pink"), (361, "red")]
    lower = 0.0
    for upper, name in bins:
        names[chroma & (hue >= lower) & (hue < upper)] = name
        lower = upper
    names[chroma & (hue >= 15) & (hue < 45) & (val < 0.6)] = "brown"
    names[~chroma & (val >= 0.85)] = "white"
    names[val < 0.2] = "black"
    return names


def colorless_share(rgb: np.ndarray) -> float | None:
    """Share of the visible (not near-black) pixels that carry no colour; None if under 10 % are visible."""
    _, sat, val = hsv(rgb)
    visible = val >= 0.2
    if visible.mean() < 0.1:
        return None
    return float((sat[visible] < 0.15).mean())


_thread_state = threading.local()


def _face_cascade() -> Any:
    # One cascade per thread: scikit-image does not document Cascade as safe to share between threads,
    # and loading the XML costs a few milliseconds once per worker thread.
    cascade = getattr(_thread_state, "cascade", None)
    if cascade is None:
        from skimage import data
        from skimage.feature import Cascade

        cascade = _thread_state.cascade = Cascade(data.lbp_frontal_face_cascade_filename())
    return cascade


def _group_windows(windows: list[tuple[int, int, int, int]]) -> list[list[tuple[int, int, int, int]]]:
    """Union windows (row, col, w, h) overlapping by IoU >= 0.3 into groups."""
    parent = list(range(len(windows)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, (r1, c1, w1, h1) in enumerate(windows):
        for j in range(i + 1, len(windows)):
            r2, c2, w2, h2 = windows[j]
            inter = max(0, min(r1 + h1, r2 + h2) - max(r1, r2)) * max(0, min(c1 + w1, c2 + w2) - max(c1, c2))
            if inter and inter / (w1 * h1 + w2 * h2 - inter) >= 0.3:
                parent[find(i)] = find(j)
    groups: dict[int, list[tuple[int, int, int, int]]] = {}
    for i, window in enumerate(windows):
        groups.setdefault(find(i), []).append(window)
    return list(groups.values())


def detect_faces(gray: Image.Image) -> list[dict[str, Any]]:
    """Frontal faces in a grayscale image: boxes in its pixel coordinates with the windows that agree."""
    small = gray.copy()
    small.thumbnail((FACE_SIDE, FACE_SIDE))
    scale = gray.width / small.width
    pixels = np.asarray(small, dtype=np.float64) / 255.0
    raw = _face_cascade().detect_multi_scale(
        img=pixels, scale_factor=1.2, step_ratio=1, min_size=(20, 20), max_size=pixels.shape,
        min_neighbor_number=1, intersection_score_threshold=1.01)  # > 1: keep every raw window
    windows = [(int(d["r"]), int(d["c"]), int(d["width"]), int(d["height"])) for d in raw]
    faces = []
    for group in _group_windows(windows):
        if len(group) < FACE_MIN_WINDOWS:
            continue
        box = np.mean(np.array(group, dtype=np.float64), axis=0) * scale
        faces.append({"row": round(box[0]), "col": round(box[1]), "width": round(box[2]), "height": round(box[3]),
                      "windows": len(group),
                      "confidence": round(min(0.9, 0.6 + 0.03 * (len(group) - FACE_MIN_WINDOWS)), 4)})
    return sorted(faces, key=lambda f: -f["windows"])


def _decoded(data: bytes) -> Image.Image:
    try:
        return decode(data)
    except Exception as exc:  # Pillow raises many types for undecodable data
        raise provider_error("bad_request", f"The local analyzer could not decode the image "
                                            f"({type(exc).__name__}: {str(exc)[:200]}).",
                             hint="Re-upload the photo; retrying will not help.") from exc


def measure(data: bytes | Image.Image, *, faces: bool = True) -> dict[str, Any]:
    """Every measurement the local analyzer makes of an image (the raw response, without the objects)."""
    from skimage.measure import blur_effect

    rgb = data if isinstance(data, Image.Image) else _decoded(data)
    width, height = rgb.size
    work = rgb.copy()
    work.thumbnail((512, 512))
    a = np.asarray(work, dtype=np.float32) / 255.0
    luma = 0.2126 * a[..., 0] + 0.7152 * a[..., 1] + 0.0722 * a[..., 2]
    thumb = rgb.copy()
    thumb.thumbnail((128, 128))
    names, counts = np.unique(color_names(np.asarray(thumb)), return_counts=True)
    shares = {str(n): round(float(c) / float(counts.sum()), 4) for n, c in zip(names, counts, strict=True)}
    colorless = colorless_share(np.asarray(thumb))
    out: dict[str, Any] = {
        "width": width, "height": height, "megapixels": round(width * height / 1e6, 3),
        "size_class": size_class(width, height), "orientation": orientation(width, height),
        "brightness": round(float(luma.mean()), 4), "contrast": round(float(luma.std()), 4),
        "blur_effect": round(float(blur_effect(luma)), 4),
        "color_shares": dict(sorted(shares.items(), key=lambda kv: -kv[1])),
        "colorless_share": None if colorless is None else round(colorless, 4),
    }
    if faces:
        out["faces"] = detect_faces(rgb.convert("L"))
    return out


def descriptor_tags(m: dict[str, Any]) -> list[tuple[str, float]]:
    """(label, measured confidence) of the descriptions in a measurement dict, as the module docstring says."""
    pairs: list[tuple[str, float]] = [(m["size_class"], 1.0), (m["orientation"], 1.0)]
    for label, value, threshold, clear in (
        ("dark", m["brightness"], 0.30, 0.10),
        ("bright", m["brightness"], 0.70, 0.90),
        ("low contrast", m["contrast"], 0.08, 0.03),
        ("high contrast", m["contrast"], 0.27, 0.35),
        ("sharp", m["blur_effect"], 0.35, 0.20),
        ("blurry", m["blur_effect"], 0.55, 0.80),
    ):
        conf = margin_confidence(value, threshold, clear)
        if conf is not None:
            pairs.append((label, conf))
    if m["colorless_share"] is not None and m["colorless_share"] >= 0.9:
        pairs.append(("black and white", m["colorless_share"]))
    colors = [(n, s) for n, s in m["color_shares"].items() if s >= COLOR_MIN_SHARE]
    pairs.extend(colors[:MAX_COLORS])
    return pairs


def tags_from(m: dict[str, Any], objects: Classification) -> list[tuple[str, float]]:
    """(label, confidence) pairs: object tags first-class, descriptors secondary, faces as detected."""
    pairs = [(t.label, t.confidence) for t in objects.tags if t.confidence >= OBJECT_MIN_CONFIDENCE]
    pairs += [(label, round(conf * DESCRIPTOR_WEIGHT, 4)) for label, conf in descriptor_tags(m)]
    if m.get("faces"):
        pairs.append(("face", m["faces"][0]["confidence"]))
    return pairs


class LocalProvider:
    """The offline analyzer; cost 0, no network; safe to share between threads."""

    name = NAME

    def __init__(self, *, faces: bool = True) -> None:
        self.faces = faces

    def analyze(self, image: ImageInput, request: AnalysisRequest) -> ProviderResult:
        """Name the objects in the image, measure it, and turn both into tags."""
        trace: list[dict[str, Any]] = []
        started = time.perf_counter()
        with timed(trace, "analyze", provider=NAME, model=request.model, image_bytes=len(image.data)) as step:
            rgb = _decoded(image.data)
            tagger = get_tagger()
            objects = tagger.classify(rgb, min_confidence=OBJECT_MIN_CONFIDENCE)
            measurements = measure(rgb, faces=self.faces)
            measurements["objects"] = describe(tagger, objects)
            tags = make_tags(tags_from(measurements, objects), max_labels=request.max_labels)
            step["labels"] = len(tags)
        latency_ms = round((time.perf_counter() - started) * 1000)
        return ProviderResult(provider=NAME, model=request.model or LOCAL_MODEL, tags=tags, input_tokens=0,
                              output_tokens=0, units=1, cost_micros=0, latency_ms=latency_ms,
                              raw_response=truncate_raw(measurements), trace=tuple(trace))

    def warm_up(self) -> None:
        """Load (the first time: build) the object tagger's model, so the first photo does not wait for it."""
        get_tagger()
