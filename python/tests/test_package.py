"""The Python package: arrays and files round trip exactly as the CLI codes them."""

import threading

import numpy as np
import pytest
from astropy.io import fits

import skyzip
from conftest import without_checksums


def test_the_readme_example():
    a = np.random.default_rng(0).poisson(100, (512, 512)).astype("uint16")
    d, h = skyzip.decompress(skyzip.compress(a))
    assert d.dtype == np.uint16 and (d == a).all()
    assert isinstance(h, fits.Header) and h["NAXIS1"] == 512


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "uint16", "int32", "uint32", "int64"])
def test_integer_arrays_come_back_exactly(dtype):
    rng = np.random.default_rng(1)
    info = np.iinfo(dtype)
    a = rng.integers(max(info.min, -3000), min(info.max, 3000), (3, 70, 130), endpoint=True)
    a = (a + (info.max // 2 if info.min == 0 else 0)).astype(dtype)
    # int64: the coder's range is ±2^62 (beyond it, refused: below).
    top, bottom = (2**62 - 1, -(2**62)) if dtype == "int64" else (info.max, info.min)
    a[0, :2, :3] = top
    a[1, 5, :] = bottom
    d, _ = skyzip.decompress(skyzip.compress(a))
    assert d.dtype == a.dtype and d.shape == a.shape and (d == a).all()


def test_int64_beyond_the_coders_range_is_refused_not_clamped():
    a = np.zeros((16, 16), "int64")
    a[3, 4] = np.iinfo("int64").max
    with pytest.raises(skyzip.SkyzipError, match="pixel 52 = 9223372036854775807 lies beyond"):
        skyzip.compress(a)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_floats_bit_exact_with_q0_and_nans_kept_in_every_mode(dtype):
    rng = np.random.default_rng(2)
    a = (100 + 5 * rng.standard_normal((200, 300))).astype(dtype)
    a[10:20, 30:40] = np.nan
    a[0, 0] = -0.0
    d, _ = skyzip.decompress(skyzip.compress(a, q=0))
    assert d.dtype == a.dtype
    assert (d.view(np.uint8) == a.view(np.uint8)).all(), "q=0 keeps every bit"
    for kw in ({}, {"max_error": 1.0}):
        d, _ = skyzip.decompress(skyzip.compress(a, **kw))
        assert (np.isnan(d) == np.isnan(a)).all(), kw
        ok = ~np.isnan(a)
        # σ ≈ 5: the default q = 4 keeps |error| ≤ σ/8; max_error = 1 within about σ.
        bound = 5 / 8 * 1.1 if not kw else 5 * 1.1
        assert np.abs(d[ok] - a[ok]).max() <= bound, kw


def test_a_constant_float_image_is_exact():
    a = np.full((64, 64), 3.25, dtype="float32")
    d, _ = skyzip.decompress(skyzip.compress(a))
    assert (d == a).all()


def test_the_header_travels_and_blank_is_the_integer_mask():
    a = np.random.default_rng(3).integers(0, 1000, (100, 120)).astype("int16")
    a[5:9, 7:11] = -32768
    h = fits.Header()
    h["OBJECT"] = ("M13", "target")
    h["BLANK"] = -32768
    h["CRVAL1"] = 250.42
    h["HISTORY"] = "flat-fielded"
    d, h2 = skyzip.decompress(skyzip.compress(a, h, max_error=2))
    assert h2["OBJECT"] == "M13" and h2["CRVAL1"] == 250.42 and h2["BLANK"] == -32768
    assert "flat-fielded" in str(h2["HISTORY"])
    assert (d[5:9, 7:11] == -32768).all(), "BLANK pixels survive a lossy mode"
    # A list of cards works without astropy's Header too.
    cards = [c.image for c in h.cards]
    d3, _ = skyzip.decompress(skyzip.compress(a, cards))
    assert (d3 == a).all()


def test_bad_input_raises_with_the_clis_message(tmp_path):
    a = np.zeros((32, 32), "int16")
    with pytest.raises(skyzip.SkyzipError, match="dtype complex128"):
        skyzip.compress(np.zeros((8, 8), complex))
    with pytest.raises(skyzip.SkyzipError, match="1 to 3 axes"):
        skyzip.compress(np.zeros((2, 2, 2, 2), "int16"))
    with pytest.raises(skyzip.SkyzipError, match="max_error"):
        skyzip.compress(a, max_error=-1)
    with pytest.raises(skyzip.SkyzipError, match="tile"):
        skyzip.compress(a, tile=7)
    with pytest.raises(skyzip.SkyzipError, match="model"):
        skyzip.compress(a, model="no-such-model")
    with pytest.raises(skyzip.SkyzipError):
        skyzip.decompress(b"SIMPLE  = not a FITS file")
    plain = tmp_path / "plain.fits"
    fits.PrimaryHDU(a).writeto(plain)
    with pytest.raises(skyzip.SkyzipError, match="not written by skyzip"):
        skyzip.decompress(plain.read_bytes())
    missing = tmp_path / "missing.fits"
    with pytest.raises(skyzip.SkyzipError, match="missing.fits: no such file"):
        skyzip.compress_file(missing, tmp_path / "out.fits")
    junk = tmp_path / "junk.fits"
    junk.write_bytes(b"this is not FITS" * 200)
    with pytest.raises(skyzip.SkyzipError, match="junk.fits"):
        skyzip.compress_file(junk, tmp_path / "out.fits")
    out = tmp_path / "out.sz.fits"
    skyzip.compress_file(plain, out)
    with pytest.raises(skyzip.SkyzipError, match="exists already"):
        skyzip.compress_file(plain, out)
    with pytest.raises(skyzip.SkyzipError, match="refusing to overwrite"):
        skyzip.compress_file(plain, plain, overwrite=True)
    with pytest.raises(skyzip.SkyzipError, match="already compressed by skyzip"):
        skyzip.compress_file(out, tmp_path / "twice.fits")
    with pytest.raises(skyzip.SkyzipError, match="not both"):
        skyzip.compress(a, max_error=1, rmse=1.0)
    with pytest.raises(skyzip.SkyzipError, match="rmse = -1"):
        skyzip.compress(a, rmse=-1)
    assert fits.getdata(plain).sum() == 0, "the input is untouched"


def test_threads_code_at_once():
    """The GIL is released while coding: four threads each round-trip their own image."""
    rng = np.random.default_rng(4)
    imgs = [rng.poisson(50 + 10 * k, (300, 300)).astype("int32") for k in range(4)]
    out = [None] * 4

    def work(k):
        out[k] = skyzip.decompress(skyzip.compress(imgs[k]))[0]

    ts = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    assert all((o == a).all() for o, a in zip(out, imgs))


def test_every_real_image_matches_the_cli(real_files, cli, tmp_path):
    for f in real_files:
        for mode in ([], ["--max-error", "1"]):
            kw = {"max_error": 1.0} if mode else {}
            ours, theirs = tmp_path / "py.sz.fits", tmp_path / "cli.sz.fits"
            skyzip.compress_file(f, ours, overwrite=True, verify=True, **kw)
            cli("compress", f, theirs, "--force", *mode)
            assert without_checksums(ours.read_bytes()) == without_checksums(theirs.read_bytes()), (f.name, mode)
            # The decoded files: the package's and the CLI's, pixel for pixel.
            back_py, back_cli = tmp_path / "py.fits", tmp_path / "cli.fits"
            skyzip.decompress_file(ours, back_py, overwrite=True)
            cli("decompress", theirs, back_cli, "--force")
            with fits.open(back_py) as a, fits.open(back_cli) as b, fits.open(f) as o:
                assert len(a) == len(b) == len(o)
                for x, y in zip(a, b):
                    if x.data is not None:
                        nan = x.data.dtype.kind == "f"
                        assert np.array_equal(x.data, y.data, equal_nan=nan), f.name
            # astropy opens the compressed file itself, and skyzip.open gives the images back.
            with fits.open(ours) as c:
                c.verify("exception")
            with skyzip.open(ours) as h, fits.open(f) as o:
                for x, y in zip(h, o):
                    if y.data is not None and not mode:
                        if y.data.dtype.kind == "f":
                            continue  # floats: quantised at σ/4 (checked by verify=True)
                        assert np.array_equal(x.data, y.data), f.name
        # The array API on the image astropy reads: integers exactly.
        with fits.open(f) as o:
            hdu = next(h for h in o if h.data is not None)
            data = hdu.data
            if data.dtype.kind in "iu":
                d, _ = skyzip.decompress(skyzip.compress(data, hdu.header))
                assert np.array_equal(d, data), f.name


def test_rmse_is_the_clis_target_rmse(cli, tmp_path):
    """rmse=R: the smaller of the largest max-error within R·σ RMSE and the RMSE mode (the
    CLI's --target-rmse)."""
    rng = np.random.default_rng(6)
    a = (1000 + 20 * rng.standard_normal((256, 384))).round().astype("int16")
    src = tmp_path / "noisy.fits"
    fits.PrimaryHDU(a).writeto(src)
    d, _ = skyzip.decompress(skyzip.compress(a, rmse=0.5))
    rmse = np.sqrt(np.mean((d.astype(float) - a) ** 2))
    assert 0 < rmse <= 0.5 * 20 * 1.05, rmse
    ours, theirs = tmp_path / "py.sz.fits", tmp_path / "cli.sz.fits"
    skyzip.compress_file(src, ours, rmse=0.5, verify=True)
    cli("compress", src, theirs, "--target-rmse", "0.5")
    assert without_checksums(ours.read_bytes()) == without_checksums(theirs.read_bytes())
