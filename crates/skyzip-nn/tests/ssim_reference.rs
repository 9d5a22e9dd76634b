//! SSIM and MS-SSIM against values computed once with scikit-image 0.26 and pytorch-msssim 1.0.0
//! (`tools/ssim_reference.py` builds the same images and prints them).

use skyzip_nn::burn::prelude::*;
use skyzip_nn::loss::{ms_ssim, ssim, Loss};

fn hashimg(n: usize, salt: u64) -> Vec<f64> {
    let mut v = Vec::with_capacity(n * n);
    for i in 0..n as u64 {
        for j in 0..n as u64 {
            let h = ((i * 7919 + j * 104729 + salt * 15485863) * 2654435761) % 4294967296;
            v.push(h as f64 / 4294967296.0);
        }
    }
    v
}

/// The pair of images k of side n, exactly as the Python script makes them.
fn pair(n: usize, k: usize) -> (Vec<f32>, Vec<f32>) {
    let (ha, hb) = (hashimg(n, 2 * k as u64), hashimg(n, 2 * k as u64 + 1));
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for i in 0..n {
        for j in 0..n {
            let p = i * n + j;
            let (fi, fj) = (i as f64, j as f64);
            let xv =
                0.5 + 0.3 * (0.13 * fi * (k as f64 + 1.0)).sin() * (0.07 * fj).cos() + 0.1 * ha[p];
            let yv = xv + 0.15 * (hb[p] - 0.5) + 0.05 * (0.05 * (fi + fj)).sin();
            x.push(xv as f32);
            y.push(yv as f32);
        }
    }
    (x, y)
}

fn batch(n: usize) -> (Tensor<4>, Tensor<4>) {
    let dev = Device::flex();
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for k in 0..2 {
        let (x, y) = pair(n, k);
        xs.extend(x);
        ys.extend(y);
    }
    (
        Tensor::from_data(TensorData::new(xs, [2, 1, n, n]), &dev),
        Tensor::from_data(TensorData::new(ys, [2, 1, n, n]), &dev),
    )
}

fn close(got: Tensor<1>, want: f64, what: &str) {
    let g = got.into_scalar::<f32>() as f64;
    assert!((g - want).abs() < 1e-4, "{what}: {g} vs reference {want}");
}

#[test]
fn ssim_matches_scikit_image_and_pytorch_msssim() {
    let (x, y) = batch(64);
    close(
        ssim(x.clone(), y.clone(), 1.0),
        0.7001429,
        "SSIM 64×64 (skimage)",
    );
    close(
        ssim(x.clone(), x.clone(), 1.0),
        1.0,
        "SSIM of an image with itself",
    );
    let (x, y) = batch(192);
    close(
        ssim(x.clone(), y.clone(), 1.0),
        0.6978082,
        "SSIM 192×192 (skimage)",
    );
    close(
        ms_ssim(x.clone(), y.clone(), 1.0, 5),
        0.9426248,
        "MS-SSIM 5 levels",
    );
    close(ms_ssim(x, y, 1.0, 3), 0.9324330, "MS-SSIM 3 levels");
}

#[test]
fn ssim_losses_are_differentiable_and_checked() {
    let dev = Device::flex().autodiff();
    let (x, y) = batch(64);
    let x = Tensor::from_data(x.into_data(), &dev).require_grad();
    let y = Tensor::from_data(y.into_data(), &dev);
    for loss in [
        Loss::parse("ssim").unwrap(),
        Loss::parse("ssim-l1").unwrap(),
        Loss::from_json(&serde_json::json!({"name": "ms-ssim", "levels": 3})).unwrap(),
    ] {
        let l = loss.forward(x.clone(), y.clone());
        let g = x.grad(&l.backward()).expect("a gradient");
        let v = g.into_data().try_to_vec::<f32>().unwrap();
        assert!(v.iter().all(|g| g.is_finite()) && v.iter().any(|g| *g != 0.0));
    }
    let ms5 = Loss::parse("ms-ssim").unwrap();
    assert!(ms5.check_shape(64, 64).unwrap_err().contains("176×176"));
    assert!(ms5.check_shape(192, 192).is_ok());
}
