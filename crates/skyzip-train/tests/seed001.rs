//! Seed 001's U-Net autoencoder on tiny data: its loss falls with and without skips, and the
//! evaluation separates what the 8-number code carries from what the skip maps carry.

use skyzip_nn::burn::prelude::*;
use skyzip_train::config::Experiment;
use skyzip_train::*;

fn radio(skips: bool) -> Experiment {
    serde_json::from_value(serde_json::json!({
        "model": {"name": "unet-ae", "size": 32, "filters": [4, 8], "latent": 4, "skips": skips},
        "data": {"source": {"type": "simulator", "kind": "radio", "n": 64, "seed": 4},
                 "normalisation": {"kind": "min-max"}, "resize": 32, "augment": true,
                 "test": {"n": 16, "seed": 40}},
        "loss": "bce",
        "optimizer": {"kind": "adam", "lr": 0.003},
        "batch_size": 8,
        "epochs": 12,
        "seed": 4
    }))
    .unwrap()
}

#[test]
fn unet_ae_learns_and_its_skips_are_measured_apart() {
    for skips in [true, false] {
        let d = tempfile::tempdir().unwrap();
        let e = radio(skips);
        let r = train(
            &e,
            d.path(),
            &Device::flex(),
            &TrainOptions::default(),
            |_, _, _, _| {},
        )
        .unwrap();
        let h = &r.history;
        assert!(h[11].val.mse < 0.8 * h[0].val.mse, "skips {skips}: {h:?}");
        let mcfg = e.model_config().unwrap();
        let ev = ae_eval::evaluate(d.path(), &e, &mcfg, &Device::flex(), 40, 16, Some(d.path()))
            .unwrap();
        assert_eq!(ev.test_items, 16);
        assert_eq!(ev.code_values, 4);
        assert!(d.path().join("traversal.png").exists());
        if skips {
            // 4·32² + 8·16² values beside the 4-number code.
            assert_eq!(ev.side_channel_values, 4 * 32 * 32 + 8 * 16 * 16);
            let c = ev
                .code_only
                .expect("a skip model is also scored without its skips");
            assert!(
                c.mse > ev.quality.mse,
                "zeroed skips {c:?} vs {:?}",
                ev.quality
            );
        } else {
            assert_eq!(ev.side_channel_values, 0);
            assert!(ev.code_only.is_none());
        }
    }
}
