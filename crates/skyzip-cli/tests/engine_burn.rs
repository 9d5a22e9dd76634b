//! The codec engine's float net (plain loops, no framework) computes what burn's trained model
//! computes: the engine's integer model is quantised from the right function.

use skyzip_codec::engine::{FloatNet, Map, NetShape};
use skyzip_nn::burn::prelude::*;
use skyzip_nn::model::Code;
use skyzip_train::checkpoint::{ExportInfo, Part};

#[test]
fn the_engine_float_net_is_burns_net() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../skyzip-codec/models/float");
    let weights = std::fs::read(dir.join("default.safetensors")).unwrap();
    let (_, cfg) =
        ExportInfo::parse(&std::fs::read_to_string(dir.join("default.json")).unwrap()).unwrap();
    let device = Device::flex();
    let mut model = cfg.init(&device);
    skyzip_train::checkpoint::load_weights_bytes(&mut model, weights.clone(), Part::Full).unwrap();
    let f = FloatNet::from_safetensors(
        &weights,
        NetShape {
            width: 16,
            stages: vec![16, 16, 16],
            latent: 4,
            shuffle: false,
        },
    )
    .unwrap();
    // A 64×64 simulated CCD stamp, normalised as the model's input.
    let sim = skyzip_sim::by_name("ccd").unwrap();
    let st = &skyzip_sim::generate(sim.as_ref(), 7, 0, 1)[0];
    let mut t = st.image.clone();
    skyzip_data::NormKind::Asinh { softening: 3.0 }
        .fit(&t)
        .forward(&mut t);
    let c: Vec<f32> = (0..64 * 64).map(|k| t[(k / 64) * st.nx + k % 64]).collect();
    let x = skyzip_nn::image_tensor(&c, 1, 64, 64, &device);
    let Code::Conv(zb) = model.encode(x) else {
        panic!("a conv code")
    };
    let [_, zc, zh, zw] = zb.dims();
    let zb: Vec<f32> = zb.into_data().try_to_vec::<f32>().unwrap();
    let zf = f.encode(&Map {
        c: 1,
        h: 64,
        w: 64,
        data: c,
    });
    let dz = zf
        .data
        .iter()
        .zip(&zb)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(dz < 1e-3, "max |Δz| {dz}");
    let zr: Vec<f32> = zb.iter().map(|v| v.round()).collect();
    let code = Code::Conv(Tensor::from_data(
        TensorData::new(zr.clone(), [1, zc, zh, zw]),
        &device,
    ));
    let mb: Vec<f32> = model
        .decode(code.clone(), None)
        .into_data()
        .try_to_vec()
        .unwrap();
    let vb: Vec<f32> = model
        .variance(code, None, cfg.eps())
        .unwrap()
        .into_data()
        .try_to_vec()
        .unwrap();
    let (mf, vf) = f.decode(&Map {
        c: zc,
        h: zh,
        w: zw,
        data: zr,
    });
    let dm = mb
        .iter()
        .zip(&mf.data)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(dm < 1e-3, "max |Δμ| {dm}");
    // burn's σ² = softplus(v) + ε.
    let dv = vb
        .iter()
        .zip(&vf.data)
        .map(|(a, &b)| (a - (skyzip_codec::detmath::softplus(b as f64) as f32 + 1e-4)).abs())
        .fold(0f32, f32::max);
    assert!(dv < 1e-3, "max |Δσ²| {dv}");
}

#[test]
fn prior_tables_match_the_network_they_come_from() {
    // `export --part codec` turns a rate model's prior into integer tables; their costs are
    // the burn network's likelihoods.
    use skyzip_nn::prior::{widths, FactorizedPrior};
    let device = Device::flex();
    device.seed(5);
    let prior = FactorizedPrior::new(3, &device);
    let layers: Vec<skyzip_codec::prior::LayerWeights> = prior
        .weights()
        .into_iter()
        .map(|l| skyzip_codec::prior::LayerWeights {
            matrix: l.matrix,
            bias: l.bias,
            factor: l.factor,
        })
        .collect();
    let t = skyzip_codec::prior::tables(&layers, &widths(), 3);
    assert_eq!(t.len(), 3);
    let ks: Vec<f32> = (0..3).flat_map(|_| (-8..=8).map(|k| k as f32)).collect();
    let z = Tensor::<4>::from_data(TensorData::new(ks, [1, 3, 1, 17]), &device);
    let p = prior.likelihood(z).into_data().try_to_vec::<f32>().unwrap();
    for c in 0..3 {
        for (i, k) in (-8..=8).enumerate() {
            let want = -(p[c * 17 + i] as f64).log2();
            let got = t[c].cost(k);
            assert!(
                (want - got).abs() < 0.01,
                "channel {c}, k = {k}: {got} vs {want}"
            );
        }
    }
}
