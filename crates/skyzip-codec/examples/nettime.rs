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
}
