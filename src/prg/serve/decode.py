"""Bytes from the network -> arrays the pipeline takes, with the limits a public endpoint needs.

Every check that can be made from a file's header is made before its pixels are decoded: a 30000 x 30000 PNG is
a few kilobytes on the wire and 2.7 GB in memory (a decompression bomb), so the pixel count is read from the
header and refused first. Nothing is unpickled (``.npy`` is read with ``allow_pickle=False``).
"""

from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

__all__ = ["DEPTH_FORMATS", "RequestError", "decode_b64", "decode_depth", "decode_image"]

DEPTH_FORMATS = ("png", "tiff", "npy")


@dataclass
class RequestError(Exception):
    """A request the server refuses: HTTP ``status``, a stable ``code``, a message naming the problem, and the
    request ``field`` it is about (None for the request as a whole)."""

    status: int
    code: str
    message: str
    field: str | None = None

    def __str__(self) -> str:
        return self.message

    def to_json(self) -> dict[str, object]:
        return {"error": {"code": self.code, "message": self.message, "field": self.field}}


def decode_b64(text: str, field: str) -> bytes:
    """Standard or URL-safe base64 (a ``data:...;base64,`` prefix is allowed) -> bytes; 422 when malformed."""
    s = text.strip()
    if s.startswith("data:") and "," in s:
        s = s.split(",", 1)[1]
    s = "".join(s.split())
    try:
        if "-" in s or "_" in s:
            return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
        return base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(422, "bad_base64", f"{field} is not valid base64", field) from None


def _check_pixels(width: int, height: int, max_pixels: int, field: str) -> None:
    if width < 1 or height < 1:
        raise RequestError(422, "empty_image", f"{field} has no pixels ({width} x {height})", field)
    if width * height > max_pixels:
        raise RequestError(
            413,
            "image_too_large",
            f"{field} is {width} x {height} = {width * height / 1e6:.1f} megapixels; the limit is "
            f"{max_pixels / 1e6:.1f} (prg serve --max-pixels)",
            field,
        )


def _open(data: bytes, field: str) -> Image.Image:
    if not data:
        raise RequestError(422, "empty_file", f"{field} is empty", field)
    try:
        return Image.open(io.BytesIO(data))  # reads the header only
    except Image.DecompressionBombError as e:  # PIL's own guard (over twice its MAX_IMAGE_PIXELS) fired first
        raise RequestError(413, "image_too_large", f"{field} is too large: {e}", field) from None
    except UnidentifiedImageError:
        raise RequestError(
            415, "not_an_image", f"{field} is not an image PRG can read (PNG, JPEG, WebP, BMP, TIFF)", field
        ) from None
    except (OSError, ValueError) as e:
        raise RequestError(422, "bad_image", f"{field} cannot be read: {e}", field) from None


def _load(im: Image.Image, field: str) -> None:
    try:
        im.load()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        # a truncated PNG: "image file is truncated", or a broken chunk's CRC / zlib error
        raise RequestError(422, "corrupt_image", f"{field} is truncated or corrupt ({e})", field) from None


def decode_image(data: bytes, max_pixels: int, field: str = "image") -> np.ndarray:
    """An encoded image -> ``[H x W x 3]`` uint8 RGB. 415 not an image, 413 over ``max_pixels`` (from the
    header, before decoding), 422 truncated or corrupt."""
    with _open(data, field) as im:
        _check_pixels(im.width, im.height, max_pixels, field)
        _load(im, field)
        return np.asarray(im.convert("RGB"))


def _sniff(data: bytes) -> str | None:
    if data.startswith(b"\x93NUMPY"):
        return "npy"
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    return None


def decode_depth(
    data: bytes, max_pixels: int, fmt: str | None = None, depth_scale: float = 0.001, field: str = "depth"
) -> np.ndarray:
    """An encoded depth image -> ``[H x W]`` float32 metres (0 / NaN = no reading; the pipeline masks them).

    ``fmt``: ``png`` (16-bit, units of ``depth_scale`` metres: millimetres by default, as RGB-D cameras write),
    ``tiff`` or ``npy`` (metres); None: from the file's magic bytes."""
    if not data:
        raise RequestError(422, "empty_file", f"{field} is empty", field)
    kind = fmt.lower().lstrip(".") if fmt else _sniff(data)
    kind = {"tif": "tiff"}.get(kind or "", kind)
    if kind not in DEPTH_FORMATS:
        got = fmt or "unknown"
        msg = f"{field} must be a 16-bit PNG, a TIFF or a .npy array (got {got})"
        raise RequestError(415, "bad_depth_format", msg, field)
    if not (np.isfinite(depth_scale) and depth_scale > 0):
        raise RequestError(422, "bad_depth_scale", f"depth_scale must be > 0, got {depth_scale}", "depth_scale")
    try:
        if kind == "npy":
            buf = io.BytesIO(data)
            version = np.lib.format.read_magic(buf)
            fmt_ = np.lib.format
            read_header = fmt_.read_array_header_1_0 if version == (1, 0) else fmt_.read_array_header_2_0
            shape, _, dtype = read_header(buf)  # the header, before any data
            if dtype.hasobject:
                raise RequestError(422, "bad_depth", f"{field}: an object array is not depth", field)
            if len(shape) not in (2, 3):
                raise RequestError(422, "bad_depth", f"{field} must be a 2-D array, got shape {shape}", field)
            _check_pixels(shape[1], shape[0], max_pixels, field)
            buf.seek(0)
            depth = np.load(buf, allow_pickle=False).astype(np.float32)
        elif kind == "tiff":
            import tifffile

            with tifffile.TiffFile(io.BytesIO(data)) as tif:
                shape = tif.pages[0].shape
                if len(shape) < 2:
                    raise RequestError(422, "bad_depth", f"{field} must be a 2-D image, got shape {shape}", field)
                _check_pixels(shape[1], shape[0], max_pixels, field)
                depth = np.asarray(tif.pages[0].asarray(), dtype=np.float32)
        else:
            with _open(data, field) as im:
                _check_pixels(im.width, im.height, max_pixels, field)
                _load(im, field)
                raw = np.asarray(im)
            depth = raw.astype(np.float32) * (depth_scale if raw.dtype.kind in "ui" else 1.0)
    except RequestError:
        raise
    except (OSError, ValueError, TypeError, EOFError) as e:
        raise RequestError(422, "bad_depth", f"{field} cannot be read as {kind}: {e}", field) from None
    if depth.ndim == 3:
        depth = depth[..., 0]
    if depth.ndim != 2:
        raise RequestError(422, "bad_depth", f"{field} must be a 2-D image, got shape {depth.shape}", field)
    return depth
