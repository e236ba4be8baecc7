"""Real sample photos from scikit-image's offline data, with hand-written ground-truth labels.

Each sample has `VISUAL_VARIANTS` looks: variant look 0 is the photo itself, the others are
deterministic crops, flips, rotations, brightness/contrast changes and rescales of it. A variant number
`v` (any integer >= 0) renders look `v % VISUAL_VARIANTS` and writes `"aiconsole demo photo <name>/<v>"`
into a JPEG comment segment, so every variant number yields different bytes (and a different sha256)
while the pixel work is shared and cached. That is what lets the demo hold 50,000 distinct photos
without 50,000 files: `demo://<name>/<v>` URIs render on demand, byte for byte the same every time,
and the sha256 stored for such a photo IS the sha256 of those rendered bytes (`demo_photo` computes it
without rendering the pixels again).

Pixels are reproducible for a given Pillow/libjpeg build; a different libjpeg may encode different bytes,
which only matters for photos seeded under one build and re-rendered under another.
"""

from __future__ import annotations

import hashlib
import io
import random
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from PIL import Image, ImageEnhance

from aiconsole.platform.errors import NotFound, ValidationFailed

VISUAL_VARIANTS = 12
MAX_SIDE = 1024
JPEG_QUALITY = 85
DEMO_URI = re.compile(r"^demo://([a-z0-9_]+)/([0-9]{1,9})$")


@dataclass(frozen=True)
class Sample:
    """A sample photo: its name, what it shows (ground-truth labels) and labels a model may wrongly add."""

    name: str
    title: str
    labels: tuple[str, ...]
    distractors: tuple[str, ...]
    loader: str

    @property
    def source(self) -> str:
        """Where the pixels come from (see that function's docstring for credit and licence)."""
        return f"scikit-image sample data: skimage.data.{self.loader}"


SAMPLES: dict[str, Sample] = {
    s.name: s
    for s in (
        Sample("astronaut", "Astronaut portrait",
               ("person", "astronaut", "space suit", "flag", "smile", "portrait"),
               ("pilot", "firefighter", "uniform"), "astronaut"),
        Sample("coffee", "Cup of coffee",
               ("coffee", "cup", "saucer", "spoon", "drink", "table"),
               ("tea", "soup", "bowl"), "coffee"),
        Sample("chelsea", "Chelsea the cat",
               ("cat", "animal", "pet", "whiskers", "fur"),
               ("dog", "tiger", "fox"), "chelsea"),
        Sample("rocket", "Rocket on the launch pad",
               ("rocket", "launch pad", "tower", "night sky", "lights"),
               ("lighthouse", "skyscraper", "crane"), "rocket"),
        Sample("camera", "Cameraman on a field",
               ("person", "camera", "tripod", "grass", "black and white"),
               ("telescope", "rifle", "golf"), "camera"),
        Sample("coins", "Greek coins",
               ("coin", "money", "metal", "collection", "black and white"),
               ("button", "cookie", "medal"), "coins"),
        Sample("hubble_deep_field", "Hubble deep field",
               ("galaxy", "space", "stars", "astronomy", "night sky"),
               ("fireworks", "city lights", "bokeh"), "hubble_deep_field"),
        Sample("immunohistochemistry", "Stained tissue under a microscope",
               ("microscopy", "tissue", "cells", "stain", "biology"),
               ("wood grain", "marble", "map"), "immunohistochemistry"),
        Sample("retina", "Retina photograph",
               ("retina", "eye", "blood vessels", "medical imaging"),
               ("planet", "sun", "orange"), "retina"),
        Sample("moon", "Lunar surface",
               ("moon", "crater", "surface", "black and white"),
               ("snow", "concrete", "paper"), "moon"),
        Sample("page", "Printed page",
               ("text", "document", "page", "paper"),
               ("screenshot", "sign", "newspaper"), "page"),
        Sample("handwriting", "Handwritten formulas",
               ("handwriting", "text", "mathematics", "paper"),
               ("map", "chalkboard", "signature"), "text"),
        Sample("brick", "Brick wall",
               ("brick", "wall", "pattern", "texture"),
               ("tiles", "keyboard", "wood"), "brick"),
        Sample("grass", "Grass",
               ("grass", "plant", "texture", "nature"),
               ("hair", "fur", "hay"), "grass"),
        Sample("gravel", "Gravel",
               ("gravel", "stone", "texture", "ground"),
               ("cereal", "coffee beans", "sand"), "gravel"),
        Sample("colorwheel", "Colour wheel",
               ("color wheel", "colorful", "circle", "gradient"),
               ("rainbow", "sunset", "flower"), "colorwheel"),
        Sample("motorcycle", "Motorcycle in a garage",
               ("motorcycle", "vehicle", "wheel", "garage", "red"),
               ("bicycle", "scooter", "car"), "stereo_motorcycle"),
    )
}


def list_samples() -> list[Sample]:
    """Every sample photo, in a stable order."""
    return list(SAMPLES.values())


def get_sample(name: str) -> Sample:
    """The sample called `name`, or NotFound listing the names that exist."""
    sample = SAMPLES.get(name)
    if sample is None:
        raise NotFound(f"There is no sample photo '{name}'.", hint=f"Samples: {', '.join(SAMPLES)}.")
    return sample


def _load_array(loader: str) -> np.ndarray:
    from skimage import data  # imported lazily: scikit-image takes a second to import

    fn: Callable[[], object] = getattr(data, loader)
    value = fn()
    if isinstance(value, tuple):  # stereo_motorcycle returns (left, right, disparity)
        value = value[0]
    return np.asarray(value)


@lru_cache(maxsize=len(SAMPLES))
def base_image(name: str) -> Image.Image:
    """The sample as an RGB image, at most MAX_SIDE on its long side (cached)."""
    array = _load_array(get_sample(name).loader)
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    im = Image.fromarray(array).convert("RGB")
    if max(im.size) > MAX_SIDE:
        im.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    return im


@dataclass(frozen=True)
class VariantSpec:
    """The transformations of one look of a sample (look 0: none)."""

    look: int
    crop: tuple[float, float, float, float]  # left, top, right, bottom as fractions of the base
    flip: bool
    rotate: int  # degrees counter-clockwise, a multiple of 90
    brightness: float
    contrast: float
    long_side: int  # of the output; never larger than the cropped base


def variant_spec(name: str, variant: int) -> VariantSpec:
    """The look that variant number `variant` of sample `name` renders (deterministic)."""
    get_sample(name)
    look = _check_variant(variant) % VISUAL_VARIANTS
    if look == 0:
        return VariantSpec(0, (0.0, 0.0, 1.0, 1.0), False, 0, 1.0, 1.0, MAX_SIDE)
    # A string seed is hashed with SHA-512 by random.Random: stable across runs and PYTHONHASHSEED.
    rng = random.Random(f"aiconsole-sample:{name}:{look}")
    w_frac, h_frac = rng.uniform(0.65, 1.0), rng.uniform(0.65, 1.0)
    left, top = rng.uniform(0.0, 1.0 - w_frac), rng.uniform(0.0, 1.0 - h_frac)
    return VariantSpec(
        look=look,
        crop=(round(left, 4), round(top, 4), round(left + w_frac, 4), round(top + h_frac, 4)),
        flip=rng.random() < 0.5,
        rotate=rng.choice((0, 0, 0, 0, 90, 180, 270)),
        brightness=round(rng.uniform(0.7, 1.3), 3),
        contrast=round(rng.uniform(0.85, 1.2), 3),
        long_side=rng.choice((256, 320, 384, 448, 512, 640)),
    )


def _check_variant(variant: int) -> int:
    if isinstance(variant, bool) or not isinstance(variant, int) or not 0 <= variant <= 999_999_999:
        raise ValidationFailed(f"Sample variant {variant!r} is not valid.",
                               hint="Use a whole number from 0 to 999,999,999.")
    return variant


@lru_cache(maxsize=VISUAL_VARIANTS * len(SAMPLES))
def _render_look(name: str, look: int) -> bytes:
    spec = variant_spec(name, look)
    im = base_image(name)
    if look:
        w, h = im.size
        left, top, right, bottom = spec.crop
        im = im.crop((round(left * w), round(top * h), round(right * w), round(bottom * h)))
        if spec.flip:
            im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if spec.rotate:
            im = im.rotate(spec.rotate, expand=True)
        im = ImageEnhance.Brightness(im).enhance(spec.brightness)
        im = ImageEnhance.Contrast(im).enhance(spec.contrast)
        if max(im.size) > spec.long_side:
            scale = spec.long_side / max(im.size)
            im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))),
                           Image.Resampling.BICUBIC, reducing_gap=2.0)
    out = io.BytesIO()
    im.save(out, "JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


def _split_after_app0(jpeg: bytes) -> int:
    # JFIF requires its APP0 segment right after SOI; a comment goes after it.
    if jpeg[2:4] == b"\xff\xe0":
        (length,) = struct.unpack(">H", jpeg[4:6])
        return 4 + length
    return 2


def _comment_segment(name: str, variant: int) -> bytes:
    text = f"aiconsole demo photo {name}/{variant}".encode("ascii")
    return b"\xff\xfe" + struct.pack(">H", len(text) + 2) + text


def sample_photo(name: str, variant: int = 0) -> bytes:
    """JPEG bytes of variant `variant` of sample `name`; the same bytes every time."""
    get_sample(name)
    look = _render_look(name, _check_variant(variant) % VISUAL_VARIANTS)
    cut = _split_after_app0(look)
    return look[:cut] + _comment_segment(name, variant) + look[cut:]


@dataclass(frozen=True)
class DemoPhoto:
    """A demo:// photo's identity: URI, sample, variant, sha256 and size of its rendered bytes."""

    uri: str
    sample: str
    variant: int
    sha256: str
    byte_size: int
    width: int
    height: int


@lru_cache(maxsize=VISUAL_VARIANTS * len(SAMPLES))
def _look_size(name: str, look: int) -> tuple[int, int]:
    with Image.open(io.BytesIO(_render_look(name, look))) as im:
        return im.size


@lru_cache(maxsize=VISUAL_VARIANTS * len(SAMPLES))
def _look_parts(name: str, look: int) -> tuple[Any, bytes, int]:
    data = _render_look(name, look)
    cut = _split_after_app0(data)
    return hashlib.sha256(data[:cut]), data[cut:], cut


def demo_photo(name: str, variant: int) -> DemoPhoto:
    """The identity of demo://name/variant: the sha256 and size are those of `sample_photo(name, variant)`."""
    get_sample(name)
    look = _check_variant(variant) % VISUAL_VARIANTS
    head, tail, cut = _look_parts(name, look)
    comment = _comment_segment(name, variant)
    # Hash the shared head once per look, then only the comment and the rest: same digest as
    # hashing sample_photo()'s bytes, without building them.
    digest = head.copy()
    digest.update(comment)
    digest.update(tail)
    width, height = _look_size(name, look)
    return DemoPhoto(uri=f"demo://{name}/{variant}", sample=name, variant=variant, sha256=digest.hexdigest(),
                     byte_size=cut + len(comment) + len(tail), width=width, height=height)


def demo_uri(name: str, variant: int) -> str:
    """The demo:// URI of a sample variant."""
    get_sample(name)
    return f"demo://{name}/{_check_variant(variant)}"


def parse_demo_uri(uri: str) -> tuple[str, int]:
    """(sample, variant) of a demo:// URI; ValidationFailed for anything else."""
    match = DEMO_URI.match(uri or "")
    if match is None:
        raise ValidationFailed(f"'{(uri or '')[:200]}' is not a demo photo URI.",
                               hint="Demo URIs look like demo://chelsea/12.")
    name, variant = match.group(1), int(match.group(2))
    get_sample(name)
    return name, variant


def render_demo_uri(uri: str) -> bytes:
    """The JPEG bytes a demo:// URI stands for."""
    name, variant = parse_demo_uri(uri)
    return sample_photo(name, variant)
