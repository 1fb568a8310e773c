"""Image files as page images: which format a file is, its pages, each decoded within limits.

JPEG, PNG, TIFF (every page of a multi-page TIFF), BMP, WebP and GIF (its first frame) are
read with Pillow, imported only when an image is read. Before a page is decoded its size
is checked against the pixel limit (``THINKJSON_MAX_IMAGE_PIXELS``), so a small file that
declares a huge picture is refused without the memory it would take; a file that is
truncated or damaged is refused with what was found.
"""

from __future__ import annotations

import io
import warnings
from typing import TYPE_CHECKING

from thinkjson_edge.errors import InputError
from thinkjson_edge.files import ReadLimit

if TYPE_CHECKING:
    from PIL.Image import Image

IMAGE_PIXELS_VARIABLE = "THINKJSON_MAX_IMAGE_PIXELS"
# An A4 page at 1200 dpi is 140 million pixels; at 600 dpi, 35 million. Decoded as RGB a
# page takes 3 bytes per pixel, so the default bounds one page to about 300 MB.
MAX_IMAGE_PIXELS = 100_000_000

_BMP_HEADER_SIZES = frozenset({12, 40, 52, 56, 64, 108, 124})


def pixel_limit() -> ReadLimit:
    """The bound on the pixels of one page image (an image's page, or a rendered PDF page)."""
    return ReadLimit("one page image", IMAGE_PIXELS_VARIABLE, MAX_IMAGE_PIXELS, unit="pixels")


def image_format(data: bytes) -> str | None:
    """The image format the bytes begin with ("JPEG", "PNG", ...), or None for none read here."""
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith((b"II*\x00", b"MM\x00*")):
        return "TIFF"
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "WebP"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if _looks_like_bmp(data):
        return "BMP"
    return None


def _looks_like_bmp(data: bytes) -> bool:
    # "BM" alone starts plenty of text ("BMW ..."): the reserved words must be zero and
    # the header size one that BMP writers use.
    if not data.startswith(b"BM") or len(data) < 18:
        return False
    return data[6:10] == bytes(4) and int.from_bytes(data[14:18], "little") in _BMP_HEADER_SIZES


class ImageFile:
    """The pages of an image file, decoded one at a time as RGB."""

    def __init__(self, data: bytes, source: str) -> None:
        from PIL import Image, UnidentifiedImageError

        self.source = source
        self.format = image_format(data) or "image"
        self._limit = pixel_limit()
        _allow_pillow(self._limit.value())
        self.count = 1
        try:
            self._image = Image.open(io.BytesIO(data))
            frames = 1 if self.format == "GIF" else getattr(self._image, "n_frames", 1)
        except Image.DecompressionBombError as exc:  # over twice our bound: Pillow's check
            raise InputError(
                f"{source}: is a {self.format} image larger than {self._limit.refusal()} ({exc})"
            ) from exc
        except (UnidentifiedImageError, *_DECODE_ERRORS) as exc:
            raise self._damaged(exc) from exc
        self.count = max(int(frames), 1)

    def check_sizes(self) -> None:
        """Refuse the file now if any page has more pixels than the limit."""
        try:
            for index in range(self.count):
                self._image.seek(index)
                self._check_size(index)
        except InputError:
            raise
        except _DECODE_ERRORS as exc:
            raise self._damaged(exc, index) from exc

    def page(self, index: int) -> Image:
        """Page ``index`` (from 0) as an upright RGB image; InputError if it cannot be."""
        from PIL import ImageOps

        try:
            self._image.seek(index)
            self._check_size(index)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Pillow's own bomb warning: checked above
                self._image.load()
                upright = ImageOps.exif_transpose(self._image)
            return _as_rgb(upright)
        except InputError:
            raise
        except _DECODE_ERRORS as exc:
            raise self._damaged(exc, index) from exc

    def _check_size(self, index: int) -> None:
        width, height = self._image.size
        if width * height > self._limit.value():
            where = f"page {index + 1} is" if self.count > 1 else "is"
            raise InputError(
                f"{self.source}: {where} a {self.format} image of {width:,} by {height:,} = "
                f"{width * height:,} pixels, more than {self._limit.refusal()}"
            )

    def _damaged(self, error: BaseException, index: int | None = None) -> InputError:
        where = f" (page {index + 1})" if index is not None and self.count > 1 else ""
        return InputError(
            f"{self.source}: looks like a {self.format} image but cannot be decoded for OCR"
            f"{where} ({type(error).__name__}: {error}); the file looks truncated or damaged"
        )


# What Pillow raises on a damaged or truncated file, whichever decoder reads it.
_DECODE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    TypeError,
    ZeroDivisionError,
    MemoryError,
)


def _allow_pillow(limit: int) -> None:
    """Pillow refuses images over twice its own bound; ours is checked first and may be
    raised above it, so Pillow's is lifted to ours."""
    from PIL import Image

    if Image.MAX_IMAGE_PIXELS is not None and limit > Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = limit


def _as_rgb(image: Image) -> Image:
    """RGB for OCR: transparency over white, 16-bit and float greys scaled to 8 bits."""
    from PIL import Image as PILImage

    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        import numpy as np

        values = np.asarray(image, dtype=np.float64)
        low, high = float(values.min()), float(values.max())
        scaled = (values - low) * (255.0 / (high - low)) if high > low else values * 0
        return PILImage.fromarray(scaled.astype(np.uint8), "L").convert("RGB")
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = PILImage.new("RGB", rgba.size, "white")
        white.paste(rgba, mask=rgba.getchannel("A"))
        return white
    return image.convert("RGB")
