"""Reading a NIfTI file within bounds: the header is checked before any voxel data are read.

The header's dims x datatype must fit :data:`MAX_VOLUME_VOXELS` and :data:`MAX_NIFTI_BYTES`, its
geometry must be finite, non-singular and of a plausible spacing. A .nii.gz is decompressed as a
stream that stops at the bound, so a small file that expands without end is refused early; the
stream is read to its end, so gzip still checks its length and CRC.
"""

from __future__ import annotations

import gzip
import io
import zlib
from pathlib import Path
from typing import BinaryIO

import nibabel as nib
import numpy as np

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.limits import (
    MAX_FRAMES,
    MAX_NIFTI_BYTES,
    MAX_VOLUME_VOXELS,
    SPACING_MM,
    check_voxels,
)

NIFTI_SUFFIXES = (".nii.gz", ".nii")
_SPACE_TO_MM = {"mm": 1.0, "meter": 1000.0, "micron": 1e-3}
_HEADER_BYTES = 540  # NIfTI-2; NIfTI-1 needs 348
_SLACK = 1 << 16  # trailing bytes tolerated after the voxels a header declares
_ZLIB_MEANINGS = {
    "incorrect data check": "CRC check failed",
    "incorrect length check": "length check failed",
}

# Errors nibabel, gzip and zlib raise on a damaged or truncated file.
READ_ERRORS = (
    OSError,
    EOFError,
    zlib.error,
    gzip.BadGzipFile,
    ValueError,
    nib.filebasedimages.ImageFileError,
    nib.spatialimages.HeaderDataError,
    ArithmeticError,  # e.g. vox_offset inf
)


def is_nifti_path(path: str | Path) -> bool:
    """True when the name ends in .nii or .nii.gz."""
    return Path(path).name.lower().endswith(NIFTI_SUFFIXES)


def describe_error(exc: BaseException) -> str:
    """'Type: first line' of an exception, for one-line messages."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def load_nifti(path: Path) -> tuple[nib.Nifti1Image, np.ndarray]:
    """Header and raw array (scaling applied) of a NIfTI file within the bounds, or one error."""
    if not path.exists():
        raise CardioInputError(path, "file not found")
    if not path.is_file():
        raise CardioInputError(path, "not a file")
    if not is_nifti_path(path):
        raise CardioInputError(path, "not a NIfTI file (expected .nii or .nii.gz)")
    try:
        with open(path, "rb") as handle:
            if path.name.lower().endswith(".gz"):
                blob = _gunzip(path, handle)
            else:
                blob = _read_plain(path, handle)
    except OSError as exc:
        raise CardioInputError(path, f"cannot read ({describe_error(exc)})") from None
    image_class = nifti_class(blob)
    if image_class is None:
        raise CardioInputError(path, "not a NIfTI file (no NIfTI-1 or NIfTI-2 header)")
    try:
        image = image_class.from_bytes(bytes(blob))
        del blob
        data = np.asarray(np.asanyarray(image.dataobj))
    except READ_ERRORS as exc:
        raise CardioInputError(path, f"not a readable NIfTI file ({describe_error(exc)})") from None
    return image, data


def nifti_class(blob: bytes | bytearray) -> type[nib.Nifti1Image] | None:
    """NIfTI-1 or NIfTI-2 image class from the header size field, None for anything else."""
    if len(blob) < 4:
        return None
    for order in ("<", ">"):
        size = int(np.frombuffer(bytes(blob[:4]), dtype=f"{order}i4")[0])
        if size == 348:
            return nib.Nifti1Image
        if size == 540:
            return nib.Nifti2Image
    return None


def check_header(path: Path, prefix: bytes | bytearray) -> int:
    """Bytes the header says the file holds (offset + voxel data); one error for a header over
    the bounds or with broken geometry. ``prefix``: the file's first bytes (decompressed)."""
    image_class = nifti_class(prefix)
    if image_class is None:
        raise CardioInputError(path, "not a NIfTI file (no NIfTI-1 or NIfTI-2 header)")
    size = 348 if image_class is nib.Nifti1Image else 540
    if len(prefix) < size:
        raise CardioInputError(path, f"truncated: {len(prefix)} bytes, shorter than a header")
    try:
        block = io.BytesIO(bytes(prefix[:size]))
        header = image_class.header_class.from_fileobj(block, check=False)
        shape = tuple(int(v) for v in header.get_data_shape())
        itemsize = int(header.get_data_dtype().itemsize)
        offset = int(header.get_data_offset())
    except (*READ_ERRORS, KeyError, TypeError) as exc:
        raise CardioInputError(path, f"unreadable NIfTI header ({describe_error(exc)})") from None
    if len(shape) < 3:
        raise CardioInputError(path, f"{len(shape)}D file, a 3D volume (x, y, slices) is needed")
    voxels = check_voxels(path, shape, MAX_VOLUME_VOXELS)
    if len(shape) > 3 and shape[3] > MAX_FRAMES:
        raise CardioInputError(path, f"{shape[3]:,} frames; at most {MAX_FRAMES}")
    total = offset + voxels * itemsize
    if total > MAX_NIFTI_BYTES:
        raise CardioInputError(path, f"{total:,} bytes of data; at most {MAX_NIFTI_BYTES:,} read")
    _check_geometry(path, header)
    return total


def _check_geometry(path: Path, header: nib.Nifti1Header) -> None:
    """pixdim and the affine: finite, non-singular, spacing within SPACING_MM."""
    pixdim = np.asarray(header["pixdim"][1:4], dtype=np.float64)
    if not np.all(np.isfinite(pixdim)):
        raise CardioInputError(path, f"pixdim {pixdim.tolist()} holds NaN or infinity")
    try:
        affine = np.asarray(header.get_best_affine(), dtype=np.float64)
    except (ValueError, ArithmeticError, nib.spatialimages.HeaderDataError) as exc:
        raise CardioInputError(path, f"unusable affine ({describe_error(exc)})") from None
    if not np.all(np.isfinite(affine)):
        raise CardioInputError(path, "affine (sform or qform) holds NaN or infinity")
    try:
        space_unit, _ = header.get_xyzt_units()
    except KeyError:
        code = int(header["xyzt_units"])
        raise CardioInputError(path, f"xyzt_units {code} names no unit") from None
    linear = affine[:3, :3] * _SPACE_TO_MM.get(space_unit, 1.0)  # in mm
    spacing = np.linalg.norm(linear, axis=0)
    if abs(np.linalg.det(linear)) < 1e-9 or np.any(spacing < SPACING_MM[0]):
        raise CardioInputError(path, "affine is singular (zero spacing?)")
    if np.any(spacing > SPACING_MM[1]):
        raise CardioInputError(
            path, f"voxel spacing {spacing.round(3).tolist()} mm; at most {SPACING_MM[1]:g} mm"
        )


def _read_plain(path: Path, handle: BinaryIO) -> bytes:
    size = path.stat().st_size
    prefix = handle.read(_HEADER_BYTES)
    if nifti_class(prefix) is not None:
        check_header(path, prefix)
    if size > MAX_NIFTI_BYTES:
        raise CardioInputError(path, f"file of {size:,} bytes; at most {MAX_NIFTI_BYTES:,} read")
    return prefix + handle.read()


def _gunzip(path: Path, handle: BinaryIO, limit: int = MAX_NIFTI_BYTES) -> bytearray:
    """Decompress a (multi-member) gzip stream, checking the NIfTI header as soon as it is in
    and stopping at ``limit`` bytes; truncation and CRC errors are one clear error."""
    if path.stat().st_size > limit:
        raise CardioInputError(path, f"file of {path.stat().st_size:,} bytes; at most {limit:,}")
    data = handle.read()  # compressed, so smaller than what it expands to
    if data[:2] != b"\x1f\x8b":
        raise CardioInputError(path, "truncated or corrupt gzip data (Not a gzipped file)")
    out = bytearray()
    checked = False
    decoder = zlib.decompressobj(wbits=31)
    try:
        while True:
            if decoder.eof:  # the next gzip member, or padding
                data = decoder.unused_data
                if not data.strip(b"\0"):
                    break
                decoder = zlib.decompressobj(wbits=31)
            # Only the header's bytes until it is checked: a 1 MB bomb could otherwise expand
            # to a GB in one call.
            cap = limit if checked else _HEADER_BYTES
            piece = decoder.decompress(data, cap + 1 - len(out))
            data = decoder.unconsumed_tail
            out += piece
            if not checked and len(out) > _HEADER_BYTES:
                if nifti_class(out) is not None:  # no more than the header declares
                    limit = min(limit, check_header(path, out) + _SLACK)
                checked = True
            if len(out) > limit:
                raise CardioInputError(
                    path,
                    f"expands to more than {limit:,} bytes, more than its header "
                    f"declares or the limit of {MAX_NIFTI_BYTES:,}",
                )
            if not piece and not data and not decoder.eof:
                break  # input used up before the stream's end
    except zlib.error as exc:
        text = str(exc)
        for code, meaning in _ZLIB_MEANINGS.items():
            text = meaning if code in text else text
        raise CardioInputError(path, f"truncated or corrupt gzip data ({text})") from None
    if not decoder.eof:
        raise CardioInputError(path, "truncated or corrupt gzip data (stream ends early)")
    if not checked and nifti_class(out) is not None:
        check_header(path, out)
    return out
