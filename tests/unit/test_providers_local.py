"""The offline analyzer on scikit-image's sample photos and on images whose answer is known by construction.

Descriptions (brightness, colours, size, ...) are secondary tags: their confidence is the measured one times
DESCRIPTOR_WEIGHT, which these tests divide back out (W). The object tags have tests of their own
(test_object_tagger.py).
"""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageFilter

from aiconsole.platform.errors import ProviderError
from aiconsole.providers.base import AnalysisRequest, ImageInput, ProviderResult
from aiconsole.providers.local import DESCRIPTOR_WEIGHT, LocalProvider, margin_confidence, orientation, size_class
from aiconsole.providers.pricing import LOCAL_MODEL
from aiconsole.providers.samples import sample_photo

REQ = AnalysisRequest(model=LOCAL_MODEL)
W = DESCRIPTOR_WEIGHT


def _jpeg(im: Image.Image, **save: object) -> bytes:
    out = io.BytesIO()
    im.save(out, "JPEG", quality=90, **save)
    return out.getvalue()


def _input(data: bytes) -> ImageInput:
    with Image.open(io.BytesIO(data)) as im:
        return ImageInput(data, "image/jpeg", im.width, im.height, "0" * 64)


def _tags(result: ProviderResult) -> dict[str, float]:
    return {t.label: t.confidence for t in result.tags}


def _analyze(data: bytes, *, faces: bool = False, max_labels: int = 15) -> ProviderResult:
    return LocalProvider(faces=faces).analyze(_input(data), AnalysisRequest(model=LOCAL_MODEL,
                                                                           max_labels=max_labels))


def _sample(name: str) -> Image.Image:
    return Image.open(io.BytesIO(sample_photo(name))).convert("RGB")


def test_result_shape_cost_zero_and_trace() -> None:
    result = _analyze(sample_photo("coffee"))
    assert result.provider == "local" and result.model == LOCAL_MODEL
    assert result.cost_micros == 0 and result.input_tokens == result.output_tokens == 0 and result.units == 1
    assert result.trace[0]["step"] == "analyze" and result.trace[0]["ms"] >= 0
    im = _sample("coffee")
    assert (result.raw_response["width"], result.raw_response["height"]) == im.size
    assert all(0 <= t.confidence <= 1 for t in result.tags)
    assert [t.confidence for t in result.tags] == sorted((t.confidence for t in result.tags), reverse=True)


def test_a_darkened_photo_is_labelled_dark_and_the_original_is_not() -> None:
    original = _sample("chelsea")
    dark = ImageEnhance.Brightness(original).enhance(0.25)
    assert "dark" not in _tags(_analyze(_jpeg(original)))
    tags = _tags(_analyze(_jpeg(dark)))
    assert tags["dark"] >= 0.9 * W  # mean luminance ~0.12, close to the 0.10 "clear" margin
    bright = _tags(_analyze(_jpeg(ImageEnhance.Brightness(original).enhance(2.2))))
    assert "bright" in bright and "dark" not in bright


def test_hubble_deep_field_is_dark_and_not_black_and_white() -> None:
    tags = _tags(_analyze(sample_photo("hubble_deep_field")))
    assert tags["dark"] >= 0.9 * W
    assert "black and white" not in tags  # mostly black sky, but what is visible is coloured


@pytest.mark.parametrize("name", ["camera", "coins", "moon", "page"])
def test_grayscale_samples_are_black_and_white(name: str) -> None:
    assert _tags(_analyze(sample_photo(name)))["black and white"] == 1.0 * W


@pytest.mark.parametrize("name", ["coffee", "chelsea", "retina", "motorcycle"])
def test_colour_samples_are_not_black_and_white(name: str) -> None:
    assert "black and white" not in _tags(_analyze(sample_photo(name)))


def test_blurring_a_sharp_photo_makes_it_blurry() -> None:
    original = _sample("coins")
    assert "sharp" in _tags(_analyze(_jpeg(original)))
    blurred = _tags(_analyze(_jpeg(original.filter(ImageFilter.GaussianBlur(4)))))
    assert "blurry" in blurred and "sharp" not in blurred


def test_low_contrast_moon() -> None:
    assert "low contrast" in _tags(_analyze(sample_photo("moon")))


def test_solid_colours_are_named_with_their_pixel_share() -> None:
    half = np.zeros((200, 300, 3), dtype=np.uint8)
    half[:, :150] = (220, 30, 30)   # red
    half[:, 150:] = (30, 60, 220)   # blue
    tags = _tags(_analyze(_jpeg(Image.fromarray(half))))
    assert tags["red"] == pytest.approx(0.5 * W, abs=0.02)
    assert tags["blue"] == pytest.approx(0.5 * W, abs=0.02)
    green = _tags(_analyze(_jpeg(Image.new("RGB", (64, 64), (40, 180, 60)))))
    assert green["green"] == pytest.approx(1.0 * W, abs=0.01)


def test_orientation_and_size_from_dimensions() -> None:
    assert orientation(400, 300) == "landscape orientation"
    assert orientation(300, 400) == "portrait orientation"
    assert orientation(1000, 1040) == "square"
    assert orientation(2000, 900) == "panoramic"
    assert size_class(300, 300) == "thumbnail"
    assert size_class(1024, 768) == "small image"
    assert size_class(2000, 1500) == "medium image"
    assert size_class(4000, 3000) == "very large image"
    tall = _sample("coffee").crop((0, 0, 200, 341))  # 68,200 pixels
    tags = _tags(_analyze(_jpeg(tall)))
    assert tags["portrait orientation"] == 1.0 * W and tags["thumbnail"] == 1.0 * W


def test_exif_rotation_is_applied_before_orientation() -> None:
    im = _sample("coffee")  # landscape pixels
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": a portrait photo as a camera stores it
    assert "portrait orientation" in _tags(_analyze(_jpeg(im, exif=exif.tobytes())))


def test_astronaut_has_a_face_and_objects_do_not() -> None:
    face = _analyze(sample_photo("astronaut"), faces=True)
    tags = _tags(face)
    assert 0.6 <= tags["face"] <= 0.9
    box = face.raw_response["faces"][0]
    # Eileen Collins' face in the 512 x 512 photo lies around rows 60-200, columns 160-280.
    assert 40 <= box["row"] <= 140 and 140 <= box["col"] <= 240 and box["windows"] >= 6
    for name in ("coffee", "brick", "gravel", "moon"):
        assert "face" not in _tags(_analyze(sample_photo(name), faces=True)), name


def test_margin_confidence() -> None:
    # "dark": threshold 0.30, clearly dark at 0.10 (the threshold lies above the clear value)
    assert margin_confidence(0.31, 0.30, 0.10) is None
    assert margin_confidence(0.30, 0.30, 0.10) is None
    assert margin_confidence(0.29, 0.30, 0.10) == pytest.approx(0.5225)
    assert margin_confidence(0.20, 0.30, 0.10) == pytest.approx(0.725)
    assert margin_confidence(0.02, 0.30, 0.10) == 0.95  # capped
    # "blurry": threshold 0.55, clearly blurry at 0.80 (the threshold lies below)
    assert margin_confidence(0.5, 0.55, 0.8) is None
    assert margin_confidence(0.675, 0.55, 0.8) == pytest.approx(0.725)


def test_max_labels_caps_tags() -> None:
    assert len(_analyze(sample_photo("camera"), max_labels=2).tags) == 2


def test_undecodable_bytes_are_a_bad_request() -> None:
    with pytest.raises(ProviderError) as info:
        LocalProvider().analyze(ImageInput(b"GIF89a-not-really", "image/gif", 1, 1, "0" * 64), REQ)
    assert info.value.kind == "bad_request" and info.value.retryable is False


def test_threads_share_one_provider() -> None:
    provider = LocalProvider()
    inputs = [_input(sample_photo(n, v)) for n in ("astronaut", "coffee") for v in range(3)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: provider.analyze(i, REQ), inputs))
    again = [provider.analyze(i, REQ) for i in inputs]
    assert [r.tags for r in results] == [r.tags for r in again]
