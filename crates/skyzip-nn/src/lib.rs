//! skyzip-nn: models and losses on burn (0.22: tensors are dispatched by `Device` at run time;
//! the CPU backend is burn's `flex`, GPU backends are cargo features).

pub mod bottleneck_ae;
pub mod conv_ae;
pub mod dense_ae;
pub mod estimator;
pub mod loss;
pub mod model;
pub mod pixel_ae;
pub mod prior;
pub mod tunable;
pub mod unet;
pub mod unet_ae;
pub mod vq;

pub use burn;
use burn::prelude::*;

/// The device named by `name`: "cpu"/"flex" (always available), "cuda" or "wgpu" when compiled in.
pub fn device(name: &str) -> Result<Device, String> {
    match name {
        "cpu" | "flex" => Ok(Device::flex()),
        #[cfg(feature = "cuda")]
        "cuda" => Ok(Device::cuda(0)),
        #[cfg(feature = "wgpu")]
        "wgpu" => Ok(Device::wgpu(Default::default())),
        other => Err(format!(
            "device '{other}' is not available in this build (cpu{}{})",
            if cfg!(feature = "cuda") { ", cuda" } else { "" },
            if cfg!(feature = "wgpu") { ", wgpu" } else { "" }
        )),
    }
}

/// A [b, 1, ny, nx] tensor from a batch's flat pixels.
pub fn image_tensor(data: &[f32], b: usize, ny: usize, nx: usize, device: &Device) -> Tensor<4> {
    Tensor::from_data(TensorData::new(data.to_vec(), [b, 1, ny, nx]), device)
}
