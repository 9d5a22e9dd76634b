# Reference SSIM / MS-SSIM values pinned in crates/skyzip-nn/tests/ssim_reference.rs.
# Run once with scikit-image 0.26, pytorch-msssim 1.0.0 and torch 2.15:
#   pip install scikit-image pytorch-msssim torch && python3 tools/ssim_reference.py
import numpy as np, torch
from skimage.metrics import structural_similarity
from pytorch_msssim import ssim, ms_ssim

def hashimg(n, salt):
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    h = ((i * 7919 + j * 104729 + salt * 15485863) * 2654435761) % 4294967296
    return h / 4294967296.0

def pair(n, k):
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    x = 0.5 + 0.3 * np.sin(0.13 * i * (k + 1)) * np.cos(0.07 * j) + 0.1 * hashimg(n, 2 * k)
    y = x + 0.15 * (hashimg(n, 2 * k + 1) - 0.5) + 0.05 * np.sin(0.05 * (i + j))
    return x.astype(np.float32), y.astype(np.float32)

for n in (64, 192):
    xs, ys = zip(*[pair(n, k) for k in range(2)])
    X = torch.tensor(np.stack(xs))[:, None].double()
    Y = torch.tensor(np.stack(ys))[:, None].double()
    sk = np.mean([structural_similarity(x.astype(np.float64), y.astype(np.float64), data_range=1.0,
        gaussian_weights=True, sigma=1.5, use_sample_covariance=False) for x, y in zip(xs, ys)])
    pt = ssim(X, Y, data_range=1.0, size_average=True).item()
    print(f"n={n} ssim skimage={sk:.7f} pytorch-msssim={pt:.7f}")
    if n < 160: continue
    w = torch.tensor([0.0448, 0.2856, 0.3001])
    print(f"n={n} ms-ssim(3 levels) = {ms_ssim(X, Y, data_range=1.0, weights=(w / w.sum()).tolist()).item():.7f}")
    if n > 160:
        print(f"n={n} ms-ssim(5 levels) = {ms_ssim(X, Y, data_range=1.0).item():.7f}")
