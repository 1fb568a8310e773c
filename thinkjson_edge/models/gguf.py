"""Read a GGUF file's header (metadata and tensor table) with the standard library only.

Used where the ``train`` extra may be missing (``models info``, ``models import``), and to
tell a truncated or corrupt file apart before llama.cpp or transformers fail less clearly.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from thinkjson_edge.errors import ConversionError, ModelLoadError

GGUF_MAGIC = b"GGUF"
PROVENANCE_PREFIX = "thinkjson."  # our keys in a converted model's metadata (convert.provenance)
DEFAULT_ALIGNMENT = 32
LONG_ARRAY = 16  # arrays longer than this are summarised, not kept (vocabularies, merges)

# ggml tensor type -> (elements per block, bytes per block)
_BLOCKS: dict[int, tuple[int, int]] = {
    0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34),
    9: (32, 40), 10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176),
    14: (256, 210), 15: (256, 292), 16: (256, 66), 17: (256, 74), 18: (256, 98),
    19: (256, 50), 20: (32, 18), 21: (256, 110), 22: (256, 82), 23: (256, 136), 24: (1, 1),
    25: (1, 2), 26: (1, 4), 27: (1, 8), 28: (1, 8), 29: (256, 56), 30: (1, 2),
}  # fmt: skip
TYPE_NAMES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 9: "Q8_1",
    10: "Q2_K", 11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K", 30: "BF16",
}  # fmt: skip
# general.file_type -> the name users pass to --quant
FILE_TYPES = {
    0: "f32", 1: "f16", 2: "q4_0", 3: "q4_1", 7: "q8_0", 8: "q5_0", 9: "q5_1", 14: "q4_k_s",
    15: "q4_k_m", 16: "q5_k_s", 17: "q5_k_m", 18: "q6_k", 32: "bf16",
}  # fmt: skip

_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
            10: "<Q", 11: "<q", 12: "<d"}  # fmt: skip
_STRING, _ARRAY = 8, 9


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    type_id: int
    offset: int  # from the start of the data section

    @property
    def type_name(self) -> str:
        return TYPE_NAMES.get(self.type_id, f"type{self.type_id}")

    @property
    def nbytes(self) -> int | None:
        block = _BLOCKS.get(self.type_id)
        if block is None:
            return None
        count = 1
        for dim in self.shape:
            count *= dim
        return count // block[0] * block[1]


@dataclass
class GGUFHeader:
    path: Path
    version: int
    metadata: dict[str, Any]
    array_lengths: dict[str, int] = field(default_factory=dict)  # of summarised arrays
    tensors: list[TensorInfo] = field(default_factory=list)
    data_offset: int = 0
    file_size: int = 0

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", "unknown"))

    @property
    def file_type(self) -> str:
        code = self.metadata.get("general.file_type")
        return FILE_TYPES.get(code, f"type {code}") if code is not None else "unknown"

    def data_end(self) -> int:
        """Where the last tensor's bytes end (-1 when a tensor type is unknown here)."""
        end = self.data_offset
        for tensor in self.tensors:
            if tensor.nbytes is None:
                return -1
            end = max(end, self.data_offset + tensor.offset + tensor.nbytes)
        return end


def read_header(path: Path) -> GGUFHeader:
    """Parse ``path``'s header; raise ConversionError if it is not a complete GGUF file."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            size = path.stat().st_size
            if size < 24:
                raise ConversionError(f"{path} is too short to be a GGUF file ({size} bytes)")
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
                header = _Parser(view, path).parse()
    except OSError as exc:
        raise ConversionError(f"{path} cannot be read: {exc.strerror or exc}") from exc
    header.file_size = size
    end = header.data_end()
    if end > size:
        raise ConversionError(
            f"{path} is truncated: its tensors need {end:,} bytes but the file has {size:,}; "
            "copy or download it again"
        )
    return header


class _Parser:
    def __init__(self, view: mmap.mmap, path: Path) -> None:
        self.view, self.path, self.pos = view, path, 0

    def parse(self) -> GGUFHeader:
        try:
            return self._parse()
        except (struct.error, UnicodeDecodeError, ValueError, MemoryError, OverflowError) as exc:
            raise ConversionError(
                f"{self.path} is truncated or corrupt: its GGUF header cannot be read ({exc})"
            ) from exc

    def _parse(self) -> GGUFHeader:
        if self.view[:4] != GGUF_MAGIC:
            raise ConversionError(f"{self.path} is not a GGUF file (no GGUF magic)")
        self.pos = 4
        version = self._scalar("<I")
        if version not in (2, 3):
            raise ConversionError(f"{self.path}: GGUF version {version} is not supported")
        tensor_count, kv_count = self._scalar("<Q"), self._scalar("<Q")
        if tensor_count > 1_000_000 or kv_count > 1_000_000:
            raise ValueError("implausible tensor or key count")
        header = GGUFHeader(self.path, version, {})
        for _ in range(kv_count):
            key = self._string()
            type_id = self._scalar("<I")
            if type_id == _ARRAY:
                value, length = self._array()
                if value is None:
                    header.array_lengths[key] = length
                    continue
            else:
                value = self._value(type_id)
            header.metadata[key] = value
        for _ in range(tensor_count):
            name = self._string()
            dims = self._scalar("<I")
            if dims > 8:
                raise ValueError(f"tensor {name!r} has {dims} dimensions")
            shape = tuple(self._scalar("<Q") for _ in range(dims))
            header.tensors.append(TensorInfo(name, shape, self._scalar("<I"), self._scalar("<Q")))
        alignment = int(header.metadata.get("general.alignment", DEFAULT_ALIGNMENT))
        header.data_offset = -(-self.pos // alignment) * alignment
        return header

    def _scalar(self, fmt: str) -> Any:
        (value,) = struct.unpack_from(fmt, self.view, self.pos)
        self.pos += struct.calcsize(fmt)
        return value

    def _string(self) -> str:
        length = self._scalar("<Q")
        if self.pos + length > len(self.view):
            raise ValueError("a string runs past the end of the file")
        raw = self.view[self.pos : self.pos + length]
        self.pos += length
        return raw.decode("utf-8")

    def _value(self, type_id: int) -> Any:
        if type_id == _STRING:
            return self._string()
        if type_id in _SCALARS:
            return self._scalar(_SCALARS[type_id])
        if type_id == _ARRAY:
            return self._array()[0]
        raise ValueError(f"unknown metadata type {type_id}")

    def _array(self) -> tuple[list[Any] | None, int]:
        item_type, length = self._scalar("<I"), self._scalar("<Q")
        if item_type in _SCALARS:  # skip without decoding: vocabularies are long
            step = struct.calcsize(_SCALARS[item_type])
            if length > LONG_ARRAY:
                self.pos += step * length
                if self.pos > len(self.view):
                    raise ValueError("an array runs past the end of the file")
                return None, length
        values = [self._value(item_type) for _ in range(length)]
        return (values if length <= LONG_ARRAY else None), length


def read_provenance(metadata: dict[str, Any]) -> dict[str, Any]:
    """The ``thinkjson.*`` keys of a GGUF's metadata: where a converted model came from."""
    return {key: value for key, value in metadata.items() if key.startswith(PROVENANCE_PREFIX)}


def check_gguf(path: Path) -> None:
    """Raise ModelLoadError unless ``path`` is a readable GGUF file."""
    if not path.exists():
        raise ModelLoadError(f"model file {path} does not exist")
    if not path.is_file():
        raise ModelLoadError(f"model path {path} is not a file")
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise ModelLoadError(f"model file {path} cannot be read: {exc.strerror or exc}") from exc
    if magic != GGUF_MAGIC:
        raise ModelLoadError(
            f"model file {path} is not a GGUF file (it starts with {magic!r}, not b'GGUF'); "
            "convert it to GGUF first"
        )
