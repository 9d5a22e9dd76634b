"""Shared fixtures: the real development images beside the checkout (skipped when missing,
except under CI=true, where they must be there) and the CLI binary built by `cargo build
--release` / `cargo test --release`, to compare the package's files with the CLI's."""

import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
REAL = ROOT.parent / "shared" / "data" / "real"


def _need(what: str):
    if os.environ.get("CI"):
        pytest.fail(f"{what} is missing: CI must have it")
    pytest.skip(f"{what} is missing")


@pytest.fixture(scope="session")
def real_files():
    if not REAL.is_dir():
        _need(str(REAL))
    files = sorted(REAL.glob("*.fits"))
    assert len(files) >= 10, files
    return files


@pytest.fixture(scope="session")
def cli():
    exe = pathlib.Path(os.environ.get("SKYZIP_BIN", ROOT / "target" / "release" / "skyzip"))
    if not exe.exists():
        _need(f"the skyzip binary ({exe}; cargo build --release -p skyzip)")

    def run(*args, check=True):
        r = subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True)
        if check and r.returncode != 0:
            raise AssertionError(f"skyzip {' '.join(map(str, args))}: {r.stderr}")
        return r

    return run


def without_checksums(b: bytes) -> bytes:
    """A FITS file's bytes less its CHECKSUM/DATASUM cards (their comments carry the time)."""
    cards = [b[i : i + 80] for i in range(0, len(b), 80)]
    return b"".join(c for c in cards if not (c.startswith(b"CHECKSUM= ") or c.startswith(b"DATASUM = ")))
