//! The codec nets' time on one 256² tile (the encoder; both decoders), the least of 150 runs:
//! `cargo run --release -p skyzip-codec --example nettime [MODEL]`. For profiling the engine
//! alone (`perf record` on this binary); `skyzip bench codec` measures the whole codec.
use skyzip_codec::Predictor;

fn main() {
    let model = std::env::args().nth(1).unwrap_or("default".into());
    let p = Predictor::load(&model).unwrap();
    let (w, h) = (256usize, 256usize);
    let mut s = 1u64;
    let tile: Vec<f32> = (0..w * h)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s % 1000) as f32 / 1000.0 - 0.5) * 2.0
        })
        .collect();
    let reps = 150;
    let mut lat = None;
    let mut te = f64::MAX;
    for _ in 0..reps {
        let t0 = std::time::Instant::now();
        lat = Some(p.encode(&tile, w, h));
        te = te.min(t0.elapsed().as_secs_f64());
    }
    let (l, shape) = lat.unwrap();
    let mut td = f64::MAX;
    for _ in 0..reps {
        let t0 = std::time::Instant::now();
        std::hint::black_box(p.decode(&l, shape));
        td = td.min(t0.elapsed().as_secs_f64());
    }
    println!(
        "encode net {:.3} ms  decode nets {:.3} ms per 256² tile",
        te * 1e3,
        td * 1e3
    );
    per_layer(&model, &tile, w, h);
    input_and_encoder(&p, &tile, w, h);
}

/// The least time of the input quantisation and of the encoder net alone (the first line's
/// encode time is the two together).
fn input_and_encoder(p: &Predictor, tile: &[f32], w: usize, h: usize) {
    use skyzip_codec::engine::Path;
    let net = p.net();
    let q = net.quantise_input(tile, h, w);
    let (mut tq, mut te) = (f64::MAX, f64::MAX);
    for _ in 0..100 {
        let t0 = std::time::Instant::now();
        std::hint::black_box(net.quantise_input(tile, h, w));
        tq = tq.min(t0.elapsed().as_secs_f64());
        let t0 = std::time::Instant::now();
        std::hint::black_box(net.encode(q.clone(), Path::Fast));
        te = te.min(t0.elapsed().as_secs_f64());
    }
    println!(
        "input quantisation {:.3} ms, encoder net {:.3} ms",
        tq * 1e3,
        te * 1e3
    );
}

/// Each layer's least time over 50 runs, on the tile's own activations.
fn per_layer(model: &str, tile: &[f32], w: usize, h: usize) {
    use skyzip_codec::engine::Path;
    let p = Predictor::load(model).unwrap();
    let net = p.net();
    let x = net.encoder_input(net.quantise_input(tile, h, w));
    time_layers("encoder", &net.encoder, x);
    let z = net.encode(net.quantise_input(tile, h, w), Path::Fast);
    time_layers("decoder", &net.decoder, net.decoder_input(&z));
}

/// Runs `layers` in turn from `x`, printing each one's shapes and least time.
fn time_layers(
    part: &str,
    layers: &[skyzip_codec::engine::IntLayer],
    x: skyzip_codec::engine::Map<i16>,
) {
    let mut h = x;
    for (k, l) in layers.iter().enumerate() {
        let mut best = f64::MAX;
        let mut y = l.forward_fast(&h);
        for _ in 0..50 {
            let t0 = std::time::Instant::now();
            y = l.forward_fast(&h);
            best = best.min(t0.elapsed().as_secs_f64());
        }
        println!(
            "  {part}.{k} {}→{} {}×{}→{}×{}: {:.3} ms",
            h.c,
            y.c,
            h.h,
            h.w,
            y.h,
            y.w,
            best * 1e3
        );
        h = y;
    }
}
