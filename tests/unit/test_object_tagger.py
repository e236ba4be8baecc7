"""The offline object tagger with the real EfficientNet-Lite0 weights on scikit-image's real photos."""

from __future__ import annotations

import io
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aiconsole.pipeline.rules import DEFAULT_REJECT
from aiconsole.platform.errors import ConfigError
from aiconsole.providers import object_tagger
from aiconsole.providers.base import AnalysisRequest, ImageInput
from aiconsole.providers.imagenet_tags import CLASS_COUNT, object_tags, tag_table
from aiconsole.providers.local import DESCRIPTOR_WEIGHT, LocalProvider, descriptor_tags
from aiconsole.providers.object_tagger import ObjectTagger, decode, get_tagger, weights_path
from aiconsole.providers.pricing import LOCAL_MODEL
from aiconsole.providers.samples import sample_photo
from aiconsole.providers.torch_checkpoint import LEGACY_MAGIC, load_state_dict


@pytest.fixture(scope="module")
def tagger(tmp_path_factory: pytest.TempPathFactory) -> ObjectTagger:
    return ObjectTagger(tmp_path_factory.mktemp("models"))


def _tags(tagger: ObjectTagger, name: str) -> dict[str, float]:
    return {t.label: t.confidence for t in tagger.classify(decode(sample_photo(name))).tags}


def test_coffee_is_espresso(tagger: ObjectTagger) -> None:
    classification = tagger.classify(decode(sample_photo("coffee")))
    assert classification.top_classes(1)[0][0] == "espresso"
    # espresso, coffee and drink tie (the one class carries all three); on a tie the finer tag comes first
    assert [t.label for t in classification.tags[:3]] == ["espresso", "coffee", "drink"]
    tags = _tags(tagger, "coffee")
    assert tags["espresso"] >= 0.9 and tags["coffee"] >= tags["espresso"] and tags["drink"] >= tags["coffee"]


def test_chelsea_is_a_cat(tagger: ObjectTagger) -> None:
    classification = tagger.classify(decode(sample_photo("chelsea")))
    assert classification.top_classes(1)[0][0] in {"tabby cat", "tiger cat", "Egyptian Mau"}
    tags = _tags(tagger, "chelsea")
    assert tags["cat"] >= 0.8
    assert tags["animal"] >= tags["mammal"] >= tags["cat"] and tags["pet"] >= tags["cat"]
    assert "dog" not in tags and "tiger" not in tags


def test_rocket_is_a_rocket_or_missile(tagger: ObjectTagger) -> None:
    top_two = [t.label for t in tagger.classify(decode(sample_photo("rocket"))).tags[:2]]
    assert {"rocket", "missile"} & set(top_two)


@pytest.mark.parametrize("name", ["coffee", "chelsea", "rocket", "camera", "motorcycle", "astronaut"])
def test_every_broader_tag_is_present_and_at_least_as_confident(tagger: ObjectTagger, name: str) -> None:
    table = tag_table()
    tags = _tags(tagger, name)
    for label, confidence in tags.items():
        for parent in table.parents.get(label, ()):
            assert parent in tags and tags[parent] >= confidence, (name, label, parent)


def test_probabilities_are_a_distribution(tagger: ObjectTagger) -> None:
    batch = np.stack([object_tagger.preprocess(decode(sample_photo(n)))[0] for n in ("coffee", "moon")])
    probs = tagger.probabilities(batch)
    assert probs.shape == (2, CLASS_COUNT) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    assert (probs >= 0).all()


def test_noise_below_the_floor_adds_up_to_nothing() -> None:
    flat = np.full(CLASS_COUNT, 1.0 / CLASS_COUNT, dtype=np.float32)
    assert object_tags(flat, min_confidence=0.1) == []
    probs = np.zeros(CLASS_COUNT, dtype=np.float32)
    names = tag_table().class_labels
    probs[names.index("tabby cat")], probs[names.index("tiger cat")] = 0.5, 0.3
    tags = {t.label: (t.confidence, t.height) for t in object_tags(probs, min_confidence=0.1)}
    assert tags["tabby cat"] == (0.5, 0) and tags["tiger cat"] == (0.3, 0)
    assert tags["cat"] == (pytest.approx(0.8), 1) and tags["animal"][0] == pytest.approx(0.8)  # counted once


def test_the_table_names_every_class_and_has_no_cycles() -> None:
    table = tag_table()
    assert len(table.class_labels) == CLASS_COUNT
    for label in table.parents:
        assert label not in table.ancestors(label)
    assert {"cat", "pet", "mammal", "animal"} <= table.ancestors("tabby cat")
    assert {"coffee", "drink"} <= table.ancestors("espresso") and "rocket" in table.ancestors("missile")


def test_descriptors_are_secondary() -> None:
    data = sample_photo("coffee")
    with Image.open(io.BytesIO(data)) as im:
        image = ImageInput(data, "image/jpeg", im.width, im.height, "0" * 64)
    result = LocalProvider(faces=False).analyze(image, AnalysisRequest(model=LOCAL_MODEL))
    tags = [(t.label, t.confidence) for t in result.tags]
    assert tags[0][0] in {"espresso", "coffee", "drink"} and tags[0][1] >= 0.9
    measured = dict(descriptor_tags(result.raw_response))
    assert measured["landscape orientation"] == 1.0
    for label, confidence in tags:
        if label in measured:
            assert confidence == pytest.approx(measured[label] * DESCRIPTOR_WEIGHT, abs=1e-4)
            assert confidence < DEFAULT_REJECT  # never sends a photo to review under the default rules
    assert result.raw_response["objects"]["top_classes"][0][0] == "espresso"


def test_the_built_graph_is_reused(tmp_path: Path) -> None:
    first = ObjectTagger(tmp_path)
    assert first.built and first.model_path.is_file() and first.model_path.parent == tmp_path
    stamp = first.model_path.stat().st_mtime_ns
    second = ObjectTagger(tmp_path)
    assert not second.built and second.model_path == first.model_path
    assert first.model_path.stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == [first.model_path.name]  # no temporary file left behind
    image = object_tagger.preprocess(decode(sample_photo("chelsea")))
    assert np.array_equal(first.probabilities(image), second.probabilities(image))
    assert get_tagger() is get_tagger()


def test_the_weights_are_read_without_torch() -> None:
    weights = load_state_dict(weights_path())
    assert weights["_conv_stem.weight"].shape == (32, 3, 3, 3) and weights["_fc.weight"].shape == (1000, 1280)
    assert len({k.split(".")[1] for k in weights if k.startswith("_blocks.")}) == 16
    assert all(v.flags.c_contiguous for v in weights.values())


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            import os

            return os.system, ("echo pwned",)

    path = tmp_path / "evil.pth"
    with path.open("wb") as fh:
        for part in (LEGACY_MAGIC, 1001, {"little_endian": True}):
            pickle.dump(part, fh, protocol=2)
        pickle.dump({"x": Evil()}, fh, protocol=2)
        fh.write(struct.pack("<q", 0))
    with pytest.raises(ConfigError, match="could not be read"):
        load_state_dict(path)


def test_a_tiny_image_is_not_classified(tagger: ObjectTagger) -> None:
    tiny = Image.new("RGB", (8, 8), (200, 30, 30))
    found = tagger.classify(tiny)
    assert found.tags == () and found.top_classes() == [] and not found.probabilities.any()
    assert tagger.classify(tiny.resize((object_tagger.MIN_SIDE, 40))).top_classes(1)  # large enough: run
