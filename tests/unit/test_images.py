"""Image intake: every refusal with its message, the accepted formats, the store, thumbnails."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from aiconsole.pipeline.images import load_image_bytes, store_image, thumbnail, validate_image
from aiconsole.platform.errors import ImageRejected, NotFound, ValidationFailed
from aiconsole.platform.settings import Settings
from aiconsole.providers.samples import sample_photo


def _encode(fmt: str, size: tuple[int, int] = (64, 48), mode: str = "RGB", **kw: object) -> bytes:
    im = Image.new(mode, size, "red" if mode != "L" else 128)
    # A gradient so encoders have real data to compress.
    for x in range(size[0]):
        im.putpixel((x, x % size[1]), (0, 0, 255) if mode == "RGB" else 0)
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _png_header(width: int, height: int, *, full_data: bool = False) -> bytes:
    """A 1-bit greyscale PNG of any size, built by hand so a huge one costs kilobytes, not gigabytes."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (struct.pack(">I", len(payload)) + kind + payload
                + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    raw = bytes((1 + (width + 7) // 8) * height) if full_data else b"\x00" * 64
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b""))


@pytest.mark.parametrize(
    ("fmt", "content_type", "ext", "kw"),
    [
        ("JPEG", "image/jpeg", "jpg", {}),
        ("PNG", "image/png", "png", {}),
        ("WEBP", "image/webp", "webp", {"quality": 80}),
        ("BMP", "image/bmp", "bmp", {}),
        ("TIFF", "image/tiff", "tif", {}),
        ("GIF", "image/gif", "gif", {}),
    ],
)
def test_accepted_formats(settings: Settings, fmt: str, content_type: str, ext: str, kw: dict) -> None:
    data = _encode(fmt, **kw)
    # The name lies on purpose: the type must come from the bytes.
    info = validate_image(data, filename="photo.dat", settings=settings)
    assert info.content_type == content_type
    assert info.format == fmt
    assert info.extension == ext
    assert (info.width, info.height) == (64, 48)
    assert info.byte_size == len(data)
    assert info.sha256 == hashlib.sha256(data).hexdigest()


def test_animated_gif_is_accepted_by_its_first_frame(settings: Settings) -> None:
    frames = [Image.new("RGB", (30, 20), c) for c in ("red", "green", "blue")]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    info = validate_image(buf.getvalue(), filename="anim.gif", settings=settings)
    assert (info.format, info.width, info.height) == ("GIF", 30, 20)


def test_grayscale_and_alpha_images_are_accepted(settings: Settings) -> None:
    assert validate_image(_encode("PNG", mode="RGBA"), filename="a.png", settings=settings).format == "PNG"
    assert validate_image(_encode("JPEG", mode="L"), filename="g.jpg", settings=settings).format == "JPEG"


def test_empty_file(settings: Settings) -> None:
    with pytest.raises(ImageRejected, match=r"'empty\.jpg' is empty \(0 bytes\)\. .*choose the file again"):
        validate_image(b"", filename="empty.jpg", settings=settings)


def test_over_the_upload_limit_names_the_limit(settings: Settings) -> None:
    small = settings.model_copy(update={"max_upload_bytes": 2048})
    big = _png_header(16, 16) + b"\x00" * (3 * 1024)  # trailing bytes after IEND: 3.1 KB in all
    with pytest.raises(ImageRejected, match=r"'big\.png' is 3\.1 KB, over the upload limit of 2\.0 KB\..*"
                                            r"AICONSOLE_MAX_UPLOAD_BYTES"):
        validate_image(big, filename="big.png", settings=small)


def test_text_file_named_jpg_is_not_an_image(settings: Settings) -> None:
    with pytest.raises(ImageRejected) as err:
        validate_image(b"Shopping list\nmilk\neggs\n", filename="holiday.jpg", settings=settings)
    msg = str(err.value)
    assert msg.startswith("'holiday.jpg' is not an image: "
                          "its content is plain text (\"Shopping list milk eggs\")")
    assert "JPEG, PNG, WEBP, GIF, BMP or TIFF" in msg


@pytest.mark.parametrize(
    ("data", "described"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "a PDF document"),
        (b"PK\x03\x04\x14\x00\x00\x00", "a ZIP archive"),
        (b"<!DOCTYPE html><html><body>", "an HTML page"),
        (b'{"photos": [1, 2, 3]}', 'JSON text ("{"photos": [1, 2, 3]}")'),
        (bytes(range(200)), "unrecognised binary data (first bytes: 00 01 02 03 04 05 06 07)"),
    ],
)
def test_non_images_are_described(settings: Settings, data: bytes, described: str) -> None:
    with pytest.raises(ImageRejected, match="is not an image: its content is " + described.replace("(", r"\(")
                       .replace(")", r"\)").replace("[", r"\[").replace("]", r"\]").replace("{", r"\{")):
        validate_image(data, filename="x.jpg", settings=settings)


def test_unsupported_image_formats_are_named(settings: Settings) -> None:
    ico = _encode("ICO", size=(32, 32))
    with pytest.raises(ImageRejected, match=r"'fav\.ico' is in Windows icon \(ICO\) format, "
                                            r"which is not accepted\. Convert it to JPEG or PNG"):
        validate_image(ico, filename="fav.ico", settings=settings)
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64)
    with pytest.raises(ImageRejected, match=r"'IMG_0001\.HEIC' is in HEIC format, which is not accepted"):
        validate_image(heic, filename="IMG_0001.HEIC", settings=settings)
    svg = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>'
    with pytest.raises(ImageRejected, match=r"is in SVG \(vector drawing\) format"):
        validate_image(svg, filename="logo.png", settings=settings)
    # A format only Pillow knows (no magic in our table) is named by Pillow's identification.
    pcx = _encode("PCX")
    with pytest.raises(ImageRejected, match=r"'scan\.pcx' is in PCX format, which is not accepted"):
        validate_image(pcx, filename="scan.pcx", settings=settings)


def test_truncated_jpeg_is_refused_by_the_full_decode(settings: Settings) -> None:
    data = sample_photo("chelsea", 0)
    with pytest.raises(ImageRejected, match=r"'cat\.jpg' is a JPEG image that cannot be decoded "
                                            r"\(image file is truncated.*\)\. The file is truncated"):
        validate_image(data[: len(data) // 2], filename="cat.jpg", settings=settings)


def test_damaged_png_data_is_refused(settings: Settings) -> None:
    data = bytearray(_encode("PNG", size=(64, 64)))
    data[-20] ^= 0xFF  # inside the compressed pixel data
    with pytest.raises(ImageRejected, match=r"'d\.png' is a PNG image "
                                            r"(that cannot be decoded|with damaged data)"):
        validate_image(bytes(data), filename="d.png", settings=settings)


def test_png_crc_mismatch_is_refused(settings: Settings) -> None:
    data = bytearray(_encode("PNG", size=(16, 16)))
    # Corrupt the IDAT chunk's CRC: the pixels decode fine, only verify() notices.
    at = data.find(b"IDAT")
    length = int.from_bytes(data[at - 4 : at], "big")
    data[at + 4 + length] ^= 0xFF
    with pytest.raises(ImageRejected, match=r"'c\.png' is a PNG image with damaged data"):
        validate_image(bytes(data), filename="c.png", settings=settings)


def test_broken_header_is_refused(settings: Settings) -> None:
    with pytest.raises(ImageRejected) as err:
        validate_image(b"\x89PNG\r\n\x1a\n" + bytes(40), filename="h.png", settings=settings)
    assert "starts like a PNG image but its header cannot be read (its header is not valid)" in str(err.value)
    assert "BytesIO" not in str(err.value)


def test_20000_square_png_is_refused_from_its_header(settings: Settings) -> None:
    # A real 1-bit 20,000 x 20,000 PNG: 48 KB on disk, 400 M pixels decoded.
    data = _png_header(20_000, 20_000, full_data=True)
    assert len(data) < 100_000
    with pytest.raises(ImageRejected, match=r"'huge\.png' is 20,000 x 20,000 pixels; its longest side is "
                                            r"over the limit of 12,000 pixels\..*AICONSOLE_MAX_IMAGE_SIDE"):
        validate_image(data, filename="huge.png", settings=settings)


def test_too_many_pixels(settings: Settings) -> None:
    data = _png_header(9_000, 9_000)
    with pytest.raises(ImageRejected, match=r"is 9,000 x 9,000 = 81,000,000 pixels, over the limit of "
                                            r"60,000,000 pixels\..*AICONSOLE_MAX_IMAGE_PIXELS"):
        validate_image(data, filename="wide.png", settings=settings)


def test_pillow_decompression_bomb_warning_becomes_a_refusal(settings: Settings) -> None:
    # Our own limits raised above Pillow's: Pillow's guard (a warning between 1x and 2x its limit,
    # about 89-179 M pixels) must still refuse the image rather than let it decode.
    lenient = settings.model_copy(update={"max_image_pixels": 500_000_000, "max_image_side": 50_000})
    data = _png_header(10_000, 10_000)
    with pytest.raises(ImageRejected, match=r"is 10,000 x 10,000 pixels, which Pillow's "
                                            r"decompression-bomb guard refuses to decode"):
        validate_image(data, filename="bomb.png", settings=lenient)
    # Above 2x Pillow raises instead of warning; the refusal reads the same.
    with pytest.raises(ImageRejected, match=r"is 20,000 x 20,000 pixels, which Pillow's decompression-bomb"):
        validate_image(_png_header(20_000, 20_000), filename="bomb2.png", settings=lenient)


def test_a_long_path_in_the_name_is_shortened_to_the_file_name(settings: Settings) -> None:
    with pytest.raises(ImageRejected, match=r"^'x\.jpg' is empty"):
        validate_image(b"", filename="C:\\Users\\me\\Pictures\\x.jpg", settings=settings)


def test_store_and_load_round_trip(settings: Settings) -> None:
    data = sample_photo("coffee", 7)
    uri = store_image(data, settings=settings)
    sha = hashlib.sha256(data).hexdigest()
    assert uri == f"photos/{sha[:2]}/{sha}.jpg"
    path = settings.photo_dir / sha[:2] / f"{sha}.jpg"
    assert path.read_bytes() == data
    assert load_image_bytes(uri, settings=settings) == data
    # The same file as an absolute file:// URI.
    assert load_image_bytes(path.resolve().as_uri(), settings=settings) == data
    # Idempotent: storing again changes nothing and leaves no temporary files behind.
    mtime = path.stat().st_mtime_ns
    assert store_image(data, settings=settings) == uri
    assert path.stat().st_mtime_ns == mtime
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_store_uses_the_sniffed_extension(settings: Settings) -> None:
    png = _encode("PNG")
    assert store_image(png, settings=settings).endswith(".png")
    with pytest.raises(ImageRejected, match="not an accepted image"):
        store_image(b"plain text", settings=settings)


def test_store_repairs_a_partial_file(settings: Settings) -> None:
    data = sample_photo("rocket", 2)
    uri = store_image(data, settings=settings)
    path = settings.photo_dir / uri.removeprefix("photos/")
    path.write_bytes(data[:100])  # e.g. a disk filled up outside aiconsole
    store_image(data, settings=settings)
    assert path.read_bytes() == data


def test_missing_file_is_not_found(settings: Settings) -> None:
    with pytest.raises(NotFound, match="missing from the photo store"):
        load_image_bytes("photos/ab/" + "ab" * 32 + ".jpg", settings=settings)


@pytest.mark.parametrize(
    "uri",
    [
        "photos/../secret.key",
        "photos/ab/../../aiconsole.db",
        "../../etc/passwd",
        "/etc/passwd",
        "photos\\..\\secret.key",
        "file:///etc/passwd",
        "file://evil.example.com/photos/x.jpg",
        "photos",
        "other/ab/x.jpg",
        "photos/ab/x.jpg\x00.png",
    ],
)
def test_path_traversal_is_refused(settings: Settings, uri: str) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / "secret.key").write_text("do not leak")
    with pytest.raises(ValidationFailed, match="outside the photo store"):
        load_image_bytes(uri, settings=settings)


def test_symlink_out_of_the_store_is_refused(settings: Settings, tmp_path: Path) -> None:
    outside = tmp_path / "outside.jpg"
    outside.write_bytes(b"secret")
    link_dir = settings.photo_dir / "ab"
    link_dir.mkdir(parents=True)
    (link_dir / "link.jpg").symlink_to(outside)
    with pytest.raises(ValidationFailed, match="outside the photo store"):
        load_image_bytes("photos/ab/link.jpg", settings=settings)


def test_symlinked_folder_out_of_the_store_is_refused(settings: Settings, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "x.jpg").write_bytes(b"secret")
    settings.photo_dir.mkdir(parents=True, exist_ok=True)
    (settings.photo_dir / "cd").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ValidationFailed, match="outside the photo store"):
        load_image_bytes("photos/cd/x.jpg", settings=settings)


def test_remote_schemes_are_refused_with_a_reason(settings: Settings) -> None:
    with pytest.raises(ValidationFailed, match="uses the 'https' scheme, which this installation "
                                               "cannot read"):
        load_image_bytes("https://example.com/a.jpg", settings=settings)


def test_demo_uris_render_the_sample(settings: Settings) -> None:
    assert load_image_bytes("demo://chelsea/12", settings=settings) == sample_photo("chelsea", 12)
    with pytest.raises(ValidationFailed, match="is not a demo photo URI"):
        load_image_bytes("demo://../../etc/passwd", settings=settings)


def test_thumbnail_is_a_small_upright_jpeg() -> None:
    big = _encode("PNG", size=(800, 200), mode="RGBA")
    thumb = thumbnail(big, 100)
    with Image.open(io.BytesIO(thumb)) as im:
        assert im.format == "JPEG"
        assert im.size == (100, 25)
        assert im.mode == "RGB"
    # EXIF orientation 6 (rotate 90 degrees clockwise) makes a landscape photo portrait.
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated = _encode("JPEG", size=(200, 100), exif=exif.tobytes())
    with Image.open(io.BytesIO(thumbnail(rotated, 50))) as im:
        assert im.size == (25, 50)
    with pytest.raises(ValidationFailed, match="out of range"):
        thumbnail(big, 0)
