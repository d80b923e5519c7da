"""NIfTI reading and writing for label maps and images, with geometry and clear errors.

On disk NIfTI stores (x, y, z[, t]); in memory volumes are (z, y, x) or (t, z, y, x) and keep
the NIfTI affine of the (x, y, z) index (see :mod:`cardio_explorer.engine.volume`). 4D files
put time last with the frame duration in pixdim[4].
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.io.atomic import atomic_write
from cardio_explorer.engine.io.nifti_load import NIFTI_SUFFIXES, is_nifti_path, load_nifti
from cardio_explorer.engine.labels import (
    ACDC_TO_INTERNAL,
    INTERNAL_TO_ACDC,
    LABEL_TABLE,
    LabelTable,
    remap,
)
from cardio_explorer.engine.volume import ImageVolume, LabelVolume, Volume

_SPACE_TO_MM = {"mm": 1.0, "meter": 1000.0, "micron": 1e-3}
_TIME_TO_MS = {"msec": 1.0, "sec": 1000.0, "usec": 1e-3}
# A cardiac frame lasts 10-200 ms; an untagged pixdim[4] below this is a placeholder, not ms.
_MIN_UNTAGGED_FRAME_MS = 5.0


def nifti_stem(path: str | Path) -> str:
    """File name without its .nii / .nii.gz suffix."""
    name = Path(path).name
    for suffix in NIFTI_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


# reading ------------------------------------------------------------------------------------
def _squeeze_trailing(data: np.ndarray) -> np.ndarray:
    """Drop singleton axes after the third (a 4D file with one frame is 3D)."""
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    return data


def _check_ndim(path: Path, data: np.ndarray, ndim: int | None) -> None:
    if data.ndim < 3:
        raise CardioInputError(path, f"{data.ndim}D file, a 3D volume (x, y, slices) is needed")
    if data.ndim > 4:
        raise CardioInputError(
            path, f"{data.ndim}D file with shape {data.shape}; only 3D and 3D+t are supported"
        )
    if ndim is not None and data.ndim != ndim:
        raise CardioInputError(path, f"{data.ndim}D file where a {ndim}D volume is needed")


def _affine_mm(image: nib.Nifti1Image) -> np.ndarray:
    """The file's affine (sform, else qform) in mm, honouring the spatial unit code."""
    affine = np.array(image.affine, dtype=np.float64)
    space_unit, _ = image.header.get_xyzt_units()
    scale = _SPACE_TO_MM.get(space_unit, 1.0)  # 'unknown' is taken as mm, as every viewer does
    affine[:3, :] *= scale
    return affine


def _frame_duration_ms(image: nib.Nifti1Image) -> float | None:
    """pixdim[4] in ms for a 4D file, honouring the time unit code; None when not given."""
    header = image.header
    if header["dim"][0] < 4:
        return None
    value = float(header["pixdim"][4])
    if not np.isfinite(value) or value <= 0:
        return None
    _, time_unit = header.get_xyzt_units()
    if time_unit in _TIME_TO_MS:
        return value * _TIME_TO_MS[time_unit]
    if time_unit == "unknown" and value >= _MIN_UNTAGGED_FRAME_MS:
        return value
    return None


def _to_memory_order(data: np.ndarray) -> np.ndarray:
    """(x, y, z[, t]) on disk -> (z, y, x) or (t, z, y, x) in memory."""
    return np.ascontiguousarray(data.transpose(tuple(range(data.ndim))[::-1]))


def read_label_volume(
    path: str | Path,
    *,
    acdc_labels: bool = False,
    name: str | None = None,
    ndim: int | None = None,
) -> LabelVolume:
    """Read a label map (integer or integral float on disk); ACDC values remapped when asked.

    ndim: None accepts 3D and 3D+t; 3 or 4 requires that many dimensions.
    """
    path = Path(path)
    image, raw = load_nifti(path)
    raw = _squeeze_trailing(raw)
    _check_ndim(path, raw, ndim)
    labels = _integral_labels(path, raw)
    if acdc_labels:
        labels = remap(labels, ACDC_TO_INTERNAL)
    return LabelVolume(
        data=_to_memory_order(labels),
        affine=_affine_mm(image),
        frame_duration_ms=_frame_duration_ms(image) if labels.ndim == 4 else None,
        name=name if name is not None else nifti_stem(path),
    )


def _integral_labels(path: Path, raw: np.ndarray, table: LabelTable = LABEL_TABLE) -> np.ndarray:
    """uint8 labels from any numeric array, or an error naming the file and the problem."""
    if not np.issubdtype(raw.dtype, np.number) or np.issubdtype(raw.dtype, np.complexfloating):
        raise CardioInputError(path, f"labels must be numeric, file holds {raw.dtype}")
    if np.issubdtype(raw.dtype, np.floating):
        if not np.all(np.isfinite(raw)):
            raise CardioInputError(path, "labels contain NaN or infinite values")
        if not np.array_equal(raw, np.round(raw)):
            raise CardioInputError(path, "labels contain non-integer values")
    values = np.unique(raw)
    unknown = sorted(set(values.tolist()) - set(table.values))
    if unknown:
        shown = [int(v) if float(v).is_integer() else v for v in unknown[:10]]
        raise CardioInputError(path, f"unknown label values {shown}; expected {list(table.values)}")
    return raw.astype(np.uint8)


def read_image_volume(
    path: str | Path, name: str | None = None, *, ndim: int | None = None
) -> ImageVolume:
    """Read an image as raw float32 intensities (no normalisation)."""
    path = Path(path)
    image, raw = load_nifti(path)
    raw = _squeeze_trailing(raw)
    _check_ndim(path, raw, ndim)
    if not np.issubdtype(raw.dtype, np.number) or np.issubdtype(raw.dtype, np.complexfloating):
        raise CardioInputError(path, f"intensities must be real numbers, file holds {raw.dtype}")
    data = raw.astype(np.float32)
    if not np.all(np.isfinite(data)):
        raise CardioInputError(path, "image contains NaN or infinite intensities")
    return ImageVolume(
        data=_to_memory_order(data),
        affine=_affine_mm(image),
        frame_duration_ms=_frame_duration_ms(image) if data.ndim == 4 else None,
        name=name if name is not None else nifti_stem(path),
    )


# writing ------------------------------------------------------------------------------------
def _to_nifti(vol: Volume, data_xyz: np.ndarray) -> nib.Nifti1Image:
    image = nib.Nifti1Image(data_xyz, vol.affine)
    header = image.header
    header.set_data_dtype(data_xyz.dtype)
    image.set_qform(vol.affine, code=1)
    image.set_sform(vol.affine, code=1)
    zooms = list(vol.spacing_xyz)
    if vol.is_4d:
        # pixdim[4] = 0 means "not known" and reads back as None.
        zooms.append(float(vol.frame_duration_ms or 0.0))
    header.set_zooms(zooms)
    header.set_xyzt_units("mm", "msec" if vol.is_4d else "unknown")
    header["scl_slope"] = 1.0
    header["scl_inter"] = 0.0
    return image


def _check_target(path: Path) -> None:
    if not is_nifti_path(path):
        raise CardioInputError(path, "output must end in .nii or .nii.gz")


def _to_disk_order(data: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(data.transpose(tuple(range(data.ndim))[::-1]))


def write_label_volume(vol: LabelVolume, path: str | Path, *, acdc_labels: bool = False) -> Path:
    """Write labels as uint8 NIfTI (ACDC values 1 RV, 2 MYO, 3 LV when acdc_labels)."""
    path = Path(path)
    _check_target(path)
    data = np.asarray(vol.data, dtype=np.uint8)
    if acdc_labels:
        data = remap(data, INTERNAL_TO_ACDC)
    image = _to_nifti(vol, _to_disk_order(data))
    return atomic_write(path, lambda tmp: nib.save(image, str(tmp)))


# int16 steps of 1/32767 over [-1, 1]: 3e-5, far below any MR noise floor.
_INT16_SLOPE = 1.0 / 32767.0


def write_image_volume(vol: ImageVolume, path: str | Path, *, quantise: bool = False) -> Path:
    """Write an image as float32 NIfTI, or with ``quantise`` as int16 scaled by scl_slope.

    Quantising needs intensities in [-1, 1] (normalised images); it halves the bytes to gzip,
    which dominates writing a cohort, and readers apply the slope transparently.
    """
    path = Path(path)
    _check_target(path)
    data = np.asarray(vol.data, dtype=np.float32)
    if not quantise:
        image = _to_nifti(vol, _to_disk_order(data))
        return atomic_write(path, lambda tmp: nib.save(image, str(tmp)))
    if data.size and (data.min() < -1.0 or data.max() > 1.0):
        raise CardioInputError(path, "quantised images must lie in [-1, 1]; normalise first")
    stored = np.round(data / _INT16_SLOPE).astype(np.int16)
    image = _to_nifti(vol, _to_disk_order(stored))
    image.header.set_slope_inter(_INT16_SLOPE, 0.0)
    return atomic_write(path, lambda tmp: nib.save(image, str(tmp)))


# label tables -------------------------------------------------------------------------------
_ITKSNAP_HEADER = """\
################################################
# ITK-SnAP Label Description File
# File format:
# IDX   -R-  -G-  -B-  -A--  VIS MSH  LABEL
# Fields:
#    IDX:   Zero-based index
#    -R-:   Red color component (0..255)
#    -G-:   Green color component (0..255)
#    -B-:   Blue color component (0..255)
#    -A-:   Label transparency (0.00 .. 1.00)
#    VIS:   Label visibility (0 or 1)
#    MSH:   Label mesh visibility (0 or 1)
#  LABEL:   Label description
################################################
"""


def label_table_text(
    *, acdc_labels: bool = False, table: LabelTable = LABEL_TABLE, slicer: bool = False
) -> str:
    """Text of a label table: ITK-SNAP label description, or a 3D Slicer .ctbl when slicer."""
    rows = []
    for entry in table.entries:
        value = INTERNAL_TO_ACDC[entry.value] if acdc_labels else entry.value
        rows.append((value, entry))
    rows.sort(key=lambda row: row[0])
    if slicer:
        lines = ["# Color table file cardio-explorer", f"# {len(rows)} values"]
        for value, e in rows:
            alpha = 0 if e.value == 0 else 255
            name = e.description.replace(" ", "_")
            lines.append(f"{value} {name} {e.rgb[0]} {e.rgb[1]} {e.rgb[2]} {alpha}")
        return "\n".join(lines) + "\n"
    lines = []
    for value, e in rows:
        visible = 0 if e.value == 0 else 1
        r, g, b = e.rgb
        lines.append(
            f"{value:5d} {r:5d} {g:4d} {b:4d} {visible:8d} {visible:2d} {visible:2d}"
            f'    "{e.description}"'
        )
    return _ITKSNAP_HEADER + "\n".join(lines) + "\n"


def write_label_table(
    path: str | Path, *, acdc_labels: bool = False, table: LabelTable = LABEL_TABLE
) -> Path:
    """Write the label names and colours; ``.ctbl`` gives a 3D Slicer table, else ITK-SNAP."""
    path = Path(path)
    text = label_table_text(
        acdc_labels=acdc_labels, table=table, slicer=path.suffix.lower() == ".ctbl"
    )
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
