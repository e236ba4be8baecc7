"""Image intake: validate uploaded bytes, store them content-addressed, read them back, make thumbnails.

Nothing here trusts a file name. The type is sniffed from the bytes, the size is read from the header
before anything is decoded (so a 20,000 x 20,000 PNG is refused without allocating 1.2 GB), and then
the whole image is decoded once so truncated or damaged files are refused at the door instead of
failing later in a worker.

Storage URIs this module produces and reads:
  photos/<sha[:2]>/<sha256>.<ext>   relative to the data directory (what `store_image` returns)
  file:///.../photos/<sha[:2]>/...  the same file as an absolute URI (must lie inside the photo store)
  demo://<sample>/<variant>         a demo photo rendered on demand by `aiconsole.samples`
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import NoReturn
from urllib.parse import unquote, urlparse

from PIL import (
    BmpImagePlugin,
    GifImagePlugin,
    Image,
    ImageFile,
    ImageOps,
    JpegImagePlugin,
    PngImagePlugin,
    TiffImagePlugin,
    UnidentifiedImageError,
    WebPImagePlugin,
)

from aiconsole.platform.errors import ImageRejected, NotFound, ValidationFailed
from aiconsole.platform.settings import Settings, get_settings

# Pillow format -> (MIME type, file extension). MPO is the multi-picture JPEG some cameras write.
ACCEPTED_FORMATS: dict[str, tuple[str, str]] = {
    "JPEG": ("image/jpeg", "jpg"),
    "PNG": ("image/png", "png"),
    "WEBP": ("image/webp", "webp"),
    "GIF": ("image/gif", "gif"),
    "BMP": ("image/bmp", "bmp"),
    "TIFF": ("image/tiff", "tif"),
}
_ALIASES = {"MPO": "JPEG"}
ACCEPTED_TEXT = "JPEG, PNG, WEBP, GIF, BMP or TIFF"
STORE_PREFIX = "photos"
DEMO_SCHEME = "demo"

# Header readers that do not run Pillow's decompression-bomb check, used only to report the size of
# an image that check refused.
_HEADER_READERS: dict[str, type[ImageFile.ImageFile]] = {
    "JPEG": JpegImagePlugin.JpegImageFile,
    "PNG": PngImagePlugin.PngImageFile,
    "WEBP": WebPImagePlugin.WebPImageFile,
    "GIF": GifImagePlugin.GifImageFile,
    "BMP": BmpImagePlugin.BmpImageFile,
    "TIFF": TiffImagePlugin.TiffImageFile,
}


@dataclass(frozen=True)
class ImageInfo:
    """What validation learned about an accepted image (all of it from the bytes, none from the name)."""

    sha256: str
    content_type: str
    format: str
    extension: str
    width: int
    height: int
    byte_size: int


def _settings(settings: Settings | None) -> Settings:
    return settings or get_settings()


def human_size(n: int) -> str:
    """A byte count for people: 512 bytes, 3.4 KB, 25.0 MB (1 KB = 1,024 bytes)."""
    if n < 1024:
        return f"{n:,} bytes"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB"
    if n < 1024**3:
        return f"{n / 1024**2:.1f} MB"
    return f"{n / 1024**3:.2f} GB"


def _display_name(filename: str) -> str:
    name = PurePosixPath((filename or "").replace("\\", "/")).name or "unnamed file"
    return name if len(name) <= 80 else name[:77] + "..."


def sniff_format(data: bytes) -> str | None:
    """The accepted Pillow format the bytes start like (JPEG, PNG, ...), or None."""
    head = data[:16]
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head.startswith((b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")):
        return "TIFF"
    if head.startswith(b"BM") and len(data) >= 26:
        return "BMP"
    return None


_FTYP_IMAGE_BRANDS = {b"heic": "HEIC", b"heix": "HEIC", b"hevc": "HEIC", b"heim": "HEIC", b"heis": "HEIC",
                      b"mif1": "HEIF", b"msf1": "HEIF", b"avif": "AVIF", b"avis": "AVIF"}


def _unsupported_image_kind(data: bytes) -> str | None:
    """Names image formats we recognise but do not accept, so the message can say which one it is."""
    head = data[:64]
    if head[4:8] == b"ftyp" and head[8:12] in _FTYP_IMAGE_BRANDS:
        return _FTYP_IMAGE_BRANDS[head[8:12]]
    if head.startswith(b"8BPS"):
        return "Photoshop (PSD)"
    if head.startswith(b"\x00\x00\x01\x00") and len(data) > 6:
        return "Windows icon (ICO)"
    if head.startswith((b"\x00\x00\x00\x0cjP  ", b"\xff\x4f\xff\x51")):
        return "JPEG 2000"
    if head.startswith((b"\xff\x0a", b"\x00\x00\x00\x0cJXL ")):
        return "JPEG XL"
    if head.startswith(b"qoif"):
        return "QOI"
    if head.startswith(b"DDS "):
        return "DirectDraw Surface (DDS)"
    lowered = data[:1024].lstrip().lower()
    if lowered.startswith(b"<svg") or (lowered.startswith(b"<?xml") and b"<svg" in lowered):
        return "SVG (vector drawing)"
    return None


def describe_content(data: bytes) -> str:
    """A short human description of what non-image bytes look like (PDF, ZIP, text "...", binary)."""
    head = data[:64]
    lowered = data[:512].lstrip().lower()
    if head.startswith(b"%PDF"):
        return "a PDF document"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "a ZIP archive (or an Office document)"
    if head.startswith(b"\x1f\x8b"):
        return "gzip-compressed data"
    if head.startswith((b"\x7fELF", b"MZ")):
        return "a program (executable)"
    if head[4:8] == b"ftyp":
        return "a video or audio file (MP4/MOV family)"
    if head.startswith((b"ID3", b"OggS", b"fLaC")) or (head[:4] == b"RIFF" and head[8:12] == b"WAVE"):
        return "an audio file"
    if lowered.startswith((b"<!doctype html", b"<html")):
        return "an HTML page"
    sample = data[:512]
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the sample's end is still text.
        text = sample[: exc.start].decode("utf-8") if exc.start >= len(sample) - 3 else ""
    if text and sum(ch.isprintable() or ch in "\r\n\t" for ch in text) >= 0.95 * len(text):
        preview = "".join(ch for ch in " ".join(text.split()) if ch.isprintable())[:40]
        if lowered.startswith((b"{", b"[")):
            return f'JSON text ("{preview}")'
        return f'plain text ("{preview}")'
    return f"unrecognised binary data (first bytes: {data[:8].hex(' ')})"


def _header_size(data: bytes, fmt: str) -> tuple[int, int] | None:
    reader = _HEADER_READERS.get(fmt)
    if reader is None:
        return None
    try:
        return reader(io.BytesIO(data)).size
    except Exception:  # any parse failure just means we cannot name the size
        return None


def _check_dimensions(name: str, width: int, height: int, settings: Settings) -> None:
    if width <= 0 or height <= 0:
        raise ImageRejected(f"'{name}' says it is {width} x {height} pixels, which is not a real image.",
                            hint="The file is damaged; export it again from the original.")
    side = max(width, height)
    if side > settings.max_image_side:
        raise ImageRejected(
            f"'{name}' is {width:,} x {height:,} pixels; its longest side is over the limit of "
            f"{settings.max_image_side:,} pixels.",
            hint="Resize it (e.g. to 4,000 pixels on the long side) or raise AICONSOLE_MAX_IMAGE_SIDE.")
    pixels = width * height
    if pixels > settings.max_image_pixels:
        raise ImageRejected(
            f"'{name}' is {width:,} x {height:,} = {pixels:,} pixels, over the limit of "
            f"{settings.max_image_pixels:,} pixels.",
            hint="Resize it or raise AICONSOLE_MAX_IMAGE_PIXELS.")
    pillow_limit = Image.MAX_IMAGE_PIXELS
    if pillow_limit is not None and pixels > pillow_limit:
        _bomb(name, (width, height))


def _reason(exc: Exception) -> str:
    # Pillow's messages sometimes embed the repr of our BytesIO; that helps nobody.
    text = re.sub(r"\s*<_io\.BytesIO object at 0x[0-9a-f]+>", "", str(exc)).strip()
    if isinstance(exc, UnidentifiedImageError) or not text:
        return "its header is not valid"
    return text


def _bomb(name: str, size: tuple[int, int] | None) -> NoReturn:
    dims = f"{size[0]:,} x {size[1]:,} pixels" if size else "more pixels than it is safe to decode"
    raise ImageRejected(
        f"'{name}' is {dims}, which Pillow's decompression-bomb guard refuses to decode "
        f"(limit {Image.MAX_IMAGE_PIXELS:,} pixels).",
        hint="Resize the image before uploading it.")


def _open(data: bytes, formats: list[str] | None) -> ImageFile.ImageFile:
    with warnings.catch_warnings():
        # Pillow only warns between 1x and 2x its pixel limit; treat the warning like the error it
        # raises above 2x so a bomb never reaches decode. (The warnings filter is process-global; the
        # explicit pixel check in _check_dimensions is what guarantees the refusal under threads.)
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        return Image.open(io.BytesIO(data), formats=formats)


def validate_image(data: bytes, *, filename: str, settings: Settings | None = None) -> ImageInfo:
    """Check that `data` is a complete, accepted image within the limits; ImageRejected says why not."""
    settings = _settings(settings)
    name = _display_name(filename)
    size = len(data)
    if size == 0:
        raise ImageRejected(f"'{name}' is empty (0 bytes).",
                            hint="The upload or copy did not finish; choose the file again.")
    if size > settings.max_upload_bytes:
        limit = human_size(settings.max_upload_bytes)
        raise ImageRejected(
            f"'{name}' is {human_size(size)}, over the upload limit of {limit}.",
            hint="Export it at a lower quality or size, or raise AICONSOLE_MAX_UPLOAD_BYTES.")

    fmt = sniff_format(data)
    if fmt is None:
        kind = _unsupported_image_kind(data)
        if kind is None:
            kind = _pillow_only_format(data)
        if kind is not None:
            raise ImageRejected(f"'{name}' is in {kind} format, which is not accepted.",
                                hint=f"Convert it to JPEG or PNG and upload it again "
                                     f"(accepted: {ACCEPTED_TEXT}).")
        raise ImageRejected(f"'{name}' is not an image: its content is {describe_content(data)}.",
                            hint=f"Choose a photo file ({ACCEPTED_TEXT}); the file name's extension is not "
                                 "what counts, the content is.")

    readable = f"a {fmt}"
    damaged_hint = "The file is truncated or damaged; export or download the original again."
    try:
        im = _open(data, [fmt, *[alias for alias, target in _ALIASES.items() if target == fmt]])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        header = _header_size(data, fmt)
        if header is not None:
            _check_dimensions(name, header[0], header[1], settings)
        _bomb(name, header)
    except Exception as exc:  # Pillow's parsers raise a zoo of types for broken headers
        raise ImageRejected(f"'{name}' starts like {readable} image but its header cannot be read "
                            f"({_reason(exc)}).",
                            hint=damaged_hint) from None

    with im:
        width, height = im.size
        _check_dimensions(name, width, height, settings)
        actual = _ALIASES.get(str(im.format), str(im.format))
        if actual not in ACCEPTED_FORMATS:
            raise ImageRejected(f"'{name}' is in {im.format} format, which is not accepted.",
                                hint=f"Convert it to JPEG or PNG (accepted: {ACCEPTED_TEXT}).")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                im.load()  # a GIF loads its first frame only, which is what the pipeline analyses
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            _bomb(name, (width, height))
        except Exception as exc:  # decoders raise OSError, SyntaxError, ValueError, zlib/struct errors...
            raise ImageRejected(f"'{name}' is {readable} image that cannot be decoded ({_reason(exc)}).",
                                hint=damaged_hint) from None
    if fmt == "PNG":
        # PNG chunks carry CRCs that load() does not check; verify() does, in a second quick pass.
        try:
            with _open(data, ["PNG"]) as again:
                again.verify()
        except Exception as exc:
            raise ImageRejected(f"'{name}' is a PNG image with damaged data ({_reason(exc)}).",
                                hint=damaged_hint) from None

    content_type, extension = ACCEPTED_FORMATS[actual]
    return ImageInfo(sha256=hashlib.sha256(data).hexdigest(), content_type=content_type, format=actual,
                     extension=extension, width=width, height=height, byte_size=size)


def _pillow_only_format(data: bytes) -> str | None:
    # Formats Pillow can identify that our sniffer does not know (PCX, SGI, PPM...): name them.
    try:
        with _open(data, None) as im:
            return f"{im.format}"
    except Exception:
        return None


def _store_path(sha: str, ext: str, settings: Settings) -> tuple[str, Path]:
    relative = f"{STORE_PREFIX}/{sha[:2]}/{sha}.{ext}"
    return relative, settings.photo_dir / sha[:2] / f"{sha}.{ext}"


def store_image(data: bytes, *, settings: Settings | None = None) -> str:
    """Store image bytes under the photo store by sha256 (atomic, idempotent); returns a relative URI."""
    settings = _settings(settings)
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageRejected("These bytes are not an accepted image, so they were not stored.",
                            hint="Run validate_image first and store only what it accepts.")
    sha = hashlib.sha256(data).hexdigest()
    relative, path = _store_path(sha, ACCEPTED_FORMATS[fmt][1], settings)
    if path.exists() and path.stat().st_size == len(data):
        return relative
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write a temporary file in the same folder and rename it over the target: readers never see a
    # half-written photo, and two writers of the same bytes both end with the same complete file.
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return relative


def _refuse_uri(uri: str, settings: Settings) -> ValidationFailed:
    return ValidationFailed(
        f"Refusing to read photo URI '{uri[:200]}': it points outside the photo store "
        f"({settings.photo_dir}).",
        hint="Photo URIs must be ones aiconsole produced: photos/<xx>/<sha256>.<ext>, a file:// URI inside "
             "the photo store, or demo://<sample>/<variant>.")


def _stored_file(uri: str, settings: Settings) -> str:
    # Plain string work, not pathlib: a worker resolves thousands of URIs a second.
    root = _real_folder(str(settings.photo_dir))
    if uri.startswith("file://"):
        parsed = urlparse(uri)
        if parsed.netloc not in ("", "localhost"):
            raise _refuse_uri(uri, settings)
        text = os.path.normpath(unquote(parsed.path))
    else:
        if "\\" in uri or "\x00" in uri or uri.startswith("/"):
            raise _refuse_uri(uri, settings)
        parts = [p for p in uri.split("/") if p not in ("", ".")]
        if len(parts) < 2 or parts[0] != STORE_PREFIX or ".." in parts:
            raise _refuse_uri(uri, settings)
        text = os.path.join(root, *parts[1:])
    if "\x00" in text:
        raise _refuse_uri(uri, settings)
    # realpath follows symlinks, so a link planted inside the store cannot lead outside it either. The
    # store's folders are resolved once (a worker reads thousands of photos a second from a few hundred
    # folders); the file itself is checked on every read.
    folder, name = os.path.split(text)
    resolved = os.path.join(_real_folder(folder), name)
    if os.path.islink(resolved):
        resolved = os.path.realpath(resolved)
    if resolved == root or not resolved.startswith(root + os.sep):
        raise _refuse_uri(uri, settings)
    return resolved


@lru_cache(maxsize=4096)
def _real_folder(path: str) -> str:
    return os.path.realpath(path)


def load_image_bytes(uri: str, *, settings: Settings | None = None) -> bytes:
    """The bytes behind a storage URI this module (or the demo) produced."""
    settings = _settings(settings)
    scheme = urlparse(uri).scheme if "://" in uri else ""
    if scheme == DEMO_SCHEME:
        from aiconsole.providers import samples  # scikit-image is heavy; load it only for demo photos

        return samples.render_demo_uri(uri)
    if scheme not in ("", "file"):
        raise ValidationFailed(
            f"Photo URI '{uri[:200]}' uses the '{scheme}' scheme, which this installation cannot read.",
            hint="Store the photo through aiconsole (upload it on Live Status) so it lives in the photo "
                 "store.")
    path = _stored_file(uri, settings)
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        raise NotFound(f"The photo file for '{uri}' is missing from the photo store ({settings.photo_dir}).",
                       hint="Restore the data directory from a backup or upload the photo again.") from None


def thumbnail(data: bytes, max_side: int) -> bytes:
    """A JPEG no larger than max_side on either side, upright (EXIF orientation applied), for galleries."""
    if not 16 <= max_side <= 4096:
        raise ValidationFailed(f"A thumbnail size of {max_side} pixels is out of range.",
                               hint="Use 16 to 4,096 pixels.")
    with _open(data, None) as im:
        if im.format == "JPEG":
            # Let libjpeg decode at 1/2, 1/4 or 1/8 scale: far faster for big photos.
            im.draft("RGB", (max_side, max_side))
        frame = ImageOps.exif_transpose(im)
        if frame.mode in ("RGBA", "LA", "PA") or (frame.mode == "P" and "transparency" in frame.info):
            rgba = frame.convert("RGBA")
            flat = Image.new("RGB", rgba.size, (255, 255, 255))
            flat.paste(rgba, mask=rgba.getchannel("A"))
            frame = flat
        else:
            frame = frame.convert("RGB")
        frame.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        frame.save(out, "JPEG", quality=82)
        return out.getvalue()
