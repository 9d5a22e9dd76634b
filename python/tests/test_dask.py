"""skyzip.dask on a two-worker LocalCluster: the same files as the CLI's archive run."""

import numpy as np
import pytest
from astropy.io import fits

import skyzip

distributed = pytest.importorskip("dask.distributed")
import skyzip.dask  # noqa: E402
from conftest import without_checksums  # noqa: E402


def test_compress_files_on_a_local_cluster(tmp_path, cli):
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(5)
    paths = []
    for k in range(6):
        p = src / f"frame{k}.fits"
        fits.PrimaryHDU(rng.poisson(200 + 30 * k, (256 + 64 * k, 300)).astype("int16")).writeto(p)
        paths.append(p)
    bad = src / "broken.fits"
    bad.write_bytes(b"not FITS at all" * 300)
    out = tmp_path / "out"
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster, distributed.Client(cluster) as client:
        res = skyzip.dask.compress_files(paths + [bad], out, client=client, verify=True)
        assert [r["status"] for r in res] == ["ok, verified"] * 6 + ["failed"]
        assert "broken.fits" in res[-1]["error"]
        again = skyzip.dask.compress_files(paths, out, client=client, verify=True)
        assert all(r["status"] == "skipped, verified" for r in again)
    cli_out = tmp_path / "cli"
    cli("compress", *paths, "--out", cli_out)
    for p in paths:
        name = p.name.replace(".fits", ".sz.fits")
        a, b = (out / name).read_bytes(), (cli_out / name).read_bytes()
        assert without_checksums(a) == without_checksums(b), name
        d, _ = skyzip.decompress(a)
        assert (d == fits.getdata(p)).all()
