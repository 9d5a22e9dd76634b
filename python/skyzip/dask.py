"""skyzip on a Dask cluster: one task per file, on whatever ``dask.distributed`` client runs.

    from dask.distributed import Client
    import skyzip.dask
    client = Client("scheduler:8786")          # or a dask-jobqueue SLURMCluster / PBSCluster
    results = skyzip.dask.compress_files(paths, "/archive/out", client=client, verify=True)

Each task runs :func:`skyzip.compress_file` on a worker, so every output is the same file the
CLI writes (``OUT/NAME.sz.fits``, as ``skyzip compress … --out OUT``), appearing under its name
only once complete (and verified with ``verify=True``). Outputs that exist already are skipped
(re-verified with ``verify=True``, redone if they fail), so a rerun after a lost worker finishes
the job. A file that fails is reported in its result, and the others go on.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Iterable, List, Optional

from . import SkyzipError, compress_file, verify_file

_FITS = (".fits.fz", ".fits", ".fit", ".fts", ".fz")


def output_name(path: str) -> str:
    """The CLI's output name: NAME.sz.fits for NAME.fits (and .fit, .fts, .fz, .fits.fz)."""
    base = os.path.basename(path)
    low = base.lower()
    for s in _FITS:
        if low.endswith(s) and len(low) > len(s):
            return base[: -len(s)] + ".sz.fits"
    return base + ".sz.fits"


def _one(src: str, out_dir: str, opts: Dict[str, Any]) -> Dict[str, Any]:
    import time

    dst = os.path.join(out_dir, output_name(src))
    t = time.time()
    verify = bool(opts.get("verify", False))
    try:
        if os.path.exists(dst) and not opts.get("overwrite", False):
            if not verify:
                return {"input": src, "output": dst, "status": "skipped"}
            try:
                verify_file(src, dst, model=None)
                return {"input": src, "output": dst, "status": "skipped, verified"}
            except SkyzipError:
                opts = dict(opts, overwrite=True)
        report = compress_file(src, dst, **opts)
        return {
            "input": src,
            "output": dst,
            "status": "ok, verified" if verify else "ok",
            "in_bytes": os.path.getsize(src),
            "out_bytes": report["file_bytes"],
            "seconds": time.time() - t,
        }
    except SkyzipError as e:
        return {"input": src, "output": dst, "status": "failed", "error": str(e)}


def compress_files(
    paths: Iterable[str],
    out_dir: str,
    client: Optional[Any] = None,
    **opts: Any,
) -> List[Dict[str, Any]]:
    """Compresses every file of ``paths`` into ``out_dir`` on a dask.distributed client (the
    current default client when ``client`` is None). ``opts`` are those of
    :func:`skyzip.compress_file` (``max_error``, ``q``, ``model``, ``verify``, …). Returns one
    result per file, in order: input, output, status ("ok", "ok, verified", "skipped",
    "skipped, verified" or "failed" with "error"), bytes and seconds."""
    from dask.distributed import default_client

    client = client if client is not None else default_client()
    paths = [os.fspath(p) for p in paths]
    names = [output_name(p) for p in paths]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise SkyzipError(f"{dup[0]}: two inputs would write this output")
    os.makedirs(out_dir, exist_ok=True)
    futures = client.map(_one, paths, out_dir=os.fspath(out_dir), opts=opts, pure=False)
    return client.gather(futures)
