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
}

/// Each layer's least time over 50 runs, on the tile's own activations.
fn per_layer(model: &str, tile: &[f32], w: usize, h: usize) {
    use skyzip_codec::engine::Path;
    let p = Predictor::load(model).unwrap();
    let net = p.net();
    let x = net.quantise_input(tile, h, w);
    let x = if net.shuffle {
        skyzip_codec::engine::space_to_depth(&x)
    } else {
        x
    };
    let time = |l: &skyzip_codec::engine::IntLayer, x: &skyzip_codec::engine::Map<i16>| {
        let mut best = f64::MAX;
        let mut out = None;
        for _ in 0..50 {
            let t0 = std::time::Instant::now();
            out = Some(l.forward_fast(x));
            best = best.min(t0.elapsed().as_secs_f64());
        }
        (out.unwrap(), best)
    };
    let mut h0 = x;
    for (k, l) in net.encoder.iter().enumerate() {
        let (y, t) = time(l, &h0);
        println!(
            "  encoder.{k} {}→{} {}×{}→{}×{}: {:.3} ms",
            h0.c,
            y.c,
            h0.h,
            h0.w,
            y.h,
            y.w,
            t * 1e3
        );
        h0 = y;
    }
    let z = net.encode(net.quantise_input(tile, h, w), Path::Fast);
    let lat = skyzip_codec::engine::Map {
        c: z.c,
        h: z.h,
        w: z.w,
        data: z
            .data
            .iter()
            .map(|&v| (v << net.latent_frac.max(0)).clamp(-32768, 32767) as i16)
            .collect(),
    };
    let mut h1 = lat;
    for (k, l) in net.decoder.iter().enumerate() {
        let (y, t) = time(l, &h1);
        println!(
            "  decoder.{k} {}→{} {}×{}→{}×{}: {:.3} ms",
            h1.c,
            y.c,
            h1.h,
            h1.w,
            y.h,
            y.w,
            t * 1e3
        );
        h1 = y;
    }
}
