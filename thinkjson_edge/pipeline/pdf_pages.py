"""PDF pages rendered as images for OCR, with pypdfium2 (imported only when a page is).

A page that is one upright scan and nothing else (what a scanner writes) gives OCR the
scan's own pixels, taken from the file without rendering: a receipt saved as a PDF then
reads exactly as the receipt's image does. Any other page is rendered, at the resolution
of the sharpest image on it, or at ``DEFAULT_DPI`` without one; a rendering is kept under
the pixel limit by lowering its resolution, never refused: the resolution is ours to
choose. An embedded scan over the limit is refused like an image file.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from thinkjson_edge.errors import InputError
from thinkjson_edge.pipeline.images import ImageFile, pixel_limit

if TYPE_CHECKING:
    from PIL.Image import Image

POINTS_PER_INCH = 72
DEFAULT_DPI = 200  # enough for body text; a scan's own resolution wins when there is one
_MIN_DPI, _MAX_DPI = 100, 600  # a thumbnail-sized scan is still enlarged to be legible
_FULL_PAGE = 0.98  # of the page's width and height, for an image to be the whole page


class PdfPages:
    """The pages of a PDF, rendered one at a time."""

    def __init__(self, data: bytes, source: str) -> None:
        import pypdfium2

        self.source = source
        try:
            self._pdf: Any = pypdfium2.PdfDocument(data)
        except pypdfium2.PdfiumError as exc:
            raise InputError(
                f"{source}: its pages cannot be rendered for OCR ({exc}); the PDF looks damaged"
            ) from exc

    def __len__(self) -> int:
        return len(self._pdf)

    def render(self, index: int) -> tuple[Image, float]:
        """Page ``index`` (from 0) as an RGB image, and its pixels per PDF point."""
        import pypdfium2

        try:
            page = self._pdf[index]
            width, height = page.get_size()
            scan = self._whole_page_scan(page, width, height, index)
            if scan is not None:
                return scan, scan.width / width
            scale = _fit(_scan_scale(page), width, height, pixel_limit().value())
            image = page.render(scale=scale).to_pil().convert("RGB")
        except pypdfium2.PdfiumError as exc:
            raise InputError(
                f"{self.source}: page {index + 1} cannot be rendered for OCR ({exc})"
            ) from exc
        return image, scale

    def close(self) -> None:
        self._pdf.close()

    def _whole_page_scan(self, page: Any, width: float, height: float, index: int) -> Image | None:
        """The pixels of the one upright image that fills an unrotated page with nothing
        else on it; None for any other page."""
        objects = list(page.get_objects(max_depth=2))
        if page.get_rotation() or len(objects) != 1 or not _is_image(objects[0]):
            return None
        image = objects[0]
        left, bottom, right, top = image.get_bounds()
        matrix = image.get_matrix()
        upright = matrix.b == 0 and matrix.c == 0 and matrix.a > 0 and matrix.d > 0
        if not upright or right - left < _FULL_PAGE * width or top - bottom < _FULL_PAGE * height:
            return None
        if image.get_filters() == ["DCTDecode"]:  # a JPEG: decoded as the file would be
            jpeg = ImageFile(bytes(image.get_data(decode_simple=False)), self.source)
            jpeg.check_sizes()
            return jpeg.page(0)
        pixels_wide, pixels_high = image.get_px_size()
        if pixels_wide * pixels_high > pixel_limit().value():
            return None  # rendered instead, at a resolution within the limit
        return image.get_bitmap(render=False).to_pil().convert("RGB")


def _is_image(page_object: Any) -> bool:
    import pypdfium2.raw as pdfium_c

    return bool(page_object.type == pdfium_c.FPDF_PAGEOBJ_IMAGE)


def _scan_scale(page: Any) -> float:
    """Pixels per point of the sharpest image on the page, within the DPI bounds."""
    import pypdfium2.raw as pdfium_c

    best = DEFAULT_DPI / POINTS_PER_INCH
    scales = []
    for image in page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_IMAGE,), max_depth=2):
        left, bottom, right, top = image.get_bounds()
        pixels_wide, pixels_high = image.get_px_size()
        area = (right - left) * (top - bottom)
        if area > 0 and pixels_wide * pixels_high > 0:
            scales.append(math.sqrt(pixels_wide * pixels_high / area))  # rotation-proof
    if scales:
        best = max(scales)
    return min(max(best, _MIN_DPI / POINTS_PER_INCH), _MAX_DPI / POINTS_PER_INCH)


def _fit(scale: float, width: float, height: float, max_pixels: int) -> float:
    """``scale``, lowered until the rendered page has at most ``max_pixels``."""
    pixels = width * scale * height * scale
    if pixels <= max_pixels:
        return scale
    return scale * math.sqrt(max_pixels / pixels) * 0.999
