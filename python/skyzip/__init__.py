"""skyzip: learned compression of astronomical images, for numpy and astropy.

The same codec as the ``skyzip`` command line (Rust, in-process, the GIL released while it
codes): integers exactly, floats exactly after fpack-style quantisation at σ/q (``q=0``: bit for
bit), or every pixel within ``max_error`` σ of the original; NaN and BLANK masks survive every
mode. Compressed files are standard FITS (astropy, fitsverify and funpack open them).

    >>> import numpy as np, skyzip
    >>> a = np.random.default_rng(0).poisson(100, (512, 512)).astype("uint16")
    >>> buf = skyzip.compress(a)               # a complete FITS file, in memory
    >>> d, h = skyzip.decompress(buf)
    >>> bool((d == a).all())
    True
"""

from __future__ import annotations

import os
from typing import Any, List, Optional, Tuple, Union

import numpy as np

from . import _native
from ._native import FORMAT_VERSION, SkyzipError

__all__ = [
    "compress",
    "decompress",
    "compress_file",
    "decompress_file",
    "verify_file",
    "open",
    "SkyzipError",
    "FORMAT_VERSION",
    "__version__",
]

__version__ = _native.__version__

PathLike = Union[str, "os.PathLike[str]"]

_DTYPES = {
    ("u", 1): "u1",
    ("i", 1): "i1",
    ("i", 2): "i2",
    ("u", 2): "u2",
    ("i", 4): "i4",
    ("u", 4): "u4",
    ("i", 8): "i8",
    ("u", 8): "u8",
    ("f", 4): "f4",
    ("f", 8): "f8",
}


def _cards(header: Any) -> List[str]:
    """A header as 80-character cards: an astropy Header, a list of card strings, a dict of
    keyword → value (or value, comment), or None."""
    if header is None:
        return []
    try:  # astropy.io.fits.Header (CONTINUE cards come out as several 80-character cards)
        text = header.tostring(sep="", endcard=False, padding=False)
        return [text[i : i + 80] for i in range(0, len(text), 80)]
    except AttributeError:
        pass
    if isinstance(header, dict):
        try:
            from astropy.io import fits
        except ImportError as e:  # pragma: no cover - a dict needs astropy to format cards
            raise SkyzipError("header: a dict header needs astropy; pass a list of cards") from e
        h = fits.Header()
        for k, v in header.items():
            h[k] = v
        return _cards(h)
    cards = []
    for c in header:
        c = str(c)
        if len(c) > 80:
            raise SkyzipError(f"header: card longer than 80 characters: {c[:20]!r}…")
        cards.append(c)
    return cards


def _header(cards: List[str]) -> Any:
    """Cards as an astropy Header when astropy is installed, the list of cards otherwise."""
    try:
        from astropy.io import fits
    except ImportError:
        return list(cards)
    return fits.Header.fromstring("".join(c.ljust(80) for c in cards))


def _mode(lossless: bool, max_error: Optional[float], rmse: Optional[float], q: float, model: str, tile: int) -> dict:
    """The coding options of compress and compress_file, as the native module takes them."""
    if not lossless and max_error is None and rmse is None:
        raise SkyzipError("lossless=False needs max_error=E (every pixel within E·σ)")
    return {
        "max_error": None if max_error is None else float(max_error),
        "rmse": None if rmse is None else float(rmse),
        "q": float(q),
        "model": str(model),
        "tile": int(tile),
    }


def compress(
    data: np.ndarray,
    header: Any = None,
    *,
    lossless: bool = True,
    max_error: Optional[float] = None,
    rmse: Optional[float] = None,
    q: float = 4,
    model: str = "default",
    tile: int = 256,
) -> bytes:
    """Compresses an image (a 1-, 2- or 3-D array of physical values) into a complete FITS
    file in memory.

    lossless (the default): integers exact; floats exact after quantisation at σ/q (fpack's
    -q; ``q=0`` keeps every float bit, NaN payloads and -0.0 included). ``max_error=E``: every
    pixel within E·σ of the original (σ: the image's background noise). ``rmse=R``: the
    smaller file of the largest max-error whose RMSE stays within R·σ and the RMSE mode at R
    (no per-pixel bound), by real trials, as the CLI's --target-rmse. NaNs (and an integer
    image's BLANK, from the header) are kept as the mask in every mode. Unsigned and int8 arrays
    are stored as FITS stores them (BZERO); the header's BSCALE/BZERO are not used (the array is
    already physical). Raises SkyzipError on bad input."""
    opts = _mode(lossless, max_error, rmse, q, model, tile)
    a = np.asarray(data)
    key = (a.dtype.kind, a.dtype.itemsize)
    if key not in _DTYPES:
        raise SkyzipError(
            f"array: dtype {a.dtype} cannot be a FITS image (uint8–64, int8–64, float32/64)"
        )
    a = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("="))
    return _native.compress_array(
        a.tobytes(),
        _DTYPES[key],
        list(a.shape),
        _cards(header),
        **opts,
    )


def decompress(buf: Union[bytes, bytearray, memoryview], *, model: Optional[str] = None) -> Tuple[np.ndarray, Any]:
    """Decodes a file written by skyzip (bytes) into (data, header) of its first image.

    data: the physical values — int16/int32/… as stored, unsigned for the unsigned convention,
    float64 for other BSCALE/BZERO scaling (BLANK as NaN), floats as stored. header: an
    astropy Header when astropy is installed, a list of 80-character cards otherwise (without
    BSCALE/BZERO: the values are physical)."""
    raw, dtype, shape, cards = _native.decompress_bytes(bytes(buf), model=model)
    data = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("=")).reshape(shape).copy()
    return data, _header(cards)


def compress_file(
    src: PathLike,
    dst: PathLike,
    *,
    lossless: bool = True,
    max_error: Optional[float] = None,
    rmse: Optional[float] = None,
    q: float = 4,
    model: str = "default",
    tile: int = 256,
    overwrite: bool = False,
    verify: bool = False,
) -> dict:
    """``skyzip compress SRC DST``: every image HDU coded, other HDUs copied; the same bytes
    as the CLI. With ``verify=True`` the output is decoded and compared with the input before
    it takes its name. Returns a report (file bytes; per image tile bytes, estimated bits, σ)."""
    return _native.compress_file(
        os.fspath(src),
        os.fspath(dst),
        **_mode(lossless, max_error, rmse, q, model, tile),
        overwrite=bool(overwrite),
        verify=bool(verify),
    )


def decompress_file(
    src: PathLike, dst: PathLike, *, model: Optional[str] = None, overwrite: bool = False
) -> int:
    """``skyzip decompress SRC DST``: the original's HDUs back, images decoded. Returns the
    number of images decoded."""
    return _native.decompress_file(
        os.fspath(src), os.fspath(dst), model=model, overwrite=bool(overwrite)
    )


def verify_file(original: PathLike, compressed: PathLike, *, model: Optional[str] = None) -> dict:
    """Decodes ``compressed`` and compares it with ``original`` (shape, mask, the bound the
    file promises, header cards); raises SkyzipError on the first difference."""
    images, pixels, max_error = _native.verify_file(
        os.fspath(original), os.fspath(compressed), model=model
    )
    return {"images": images, "pixels": pixels, "max_error": max_error}


def open(path: PathLike, *, model: Optional[str] = None):  # noqa: A001 - astropy's name
    """A skyzip file as an ``astropy.io.fits.HDUList``: images decoded, other HDUs as they are
    (held in memory)."""
    from astropy.io import fits
    import io

    raw = _native.decompress_path_to_bytes(os.fspath(path), model=model)
    hdul = fits.open(io.BytesIO(raw))
    hdul.readall()
    return hdul
