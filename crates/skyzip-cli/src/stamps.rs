//! `skyzip stamps`: cut training stamps from FITS images into a skyzip dataset file.

use anyhow::{bail, Result};
use skyzip_data::{source_mask, Dataset, Origin, SourceMaskSpec, StampSpec};
use skyzip_fits::{Card, Column, FitsWriter, Header, ImageHdu, Pixels, Table};
use std::path::PathBuf;

#[derive(clap::Args)]
#[command(after_help = "Example:
  skyzip stamps frame1.fits frame2.fits --size 64 --stride 32 --mask --out stamps.fits")]
pub struct Args {
    /// FITS files; every image HDU and plane is cut.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Stamp side in pixels.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Step between stamps (default: the size, i.e. no overlap).
    #[arg(long)]
    stride: Option<usize>,
    /// Skip stamps with more than this fraction of blank (NaN/BLANK) pixels.
    #[arg(long, default_value_t = 0.5)]
    max_bad: f64,
    /// Also write a photutils-style source mask per stamp (MASK_SOURCE; background = 0).
    #[arg(long)]
    mask: bool,
    /// Output dataset file.
    #[arg(long)]
    out: PathBuf,
    /// Overwrite the output.
    #[arg(long)]
    force: bool,
}

pub fn run(a: Args) -> Result<()> {
    if a.files.iter().any(|f| f == &a.out) {
        bail!("{}: the output would overwrite an input", a.out.display());
    }
    let spec = StampSpec {
        size: a.size,
        stride: a.stride.unwrap_or(a.size),
        max_bad: a.max_bad,
    };
    let d = Dataset::from_fits_files(&a.files, &spec)?;
    let n = d.len();
    let mut h = Header::default();
    h.set(Card::string(
        "SIMKIND",
        "stamps",
        "skyzip dataset: stamps of FITS images",
    ));
    h.set(Card::value("NSAMPLE", &n.to_string(), "stamps (NAXIS3)"));
    h.set(Card::value(
        "STAMP",
        &a.size.to_string(),
        "stamp side (pixels)",
    ));
    h.set(Card::value(
        "STRIDE",
        &spec.stride.to_string(),
        "step between stamps",
    ));
    h.set(Card::value(
        "MAXBAD",
        &a.max_bad.to_string(),
        "max blank fraction kept",
    ));
    h.set(Card::new(
        "COMMENT PARAMS: INDEX, source FILE number (FILEn cards), HDU, PLANE, X0, Y0.",
    ));
    for (i, f) in a.files.iter().enumerate() {
        h.set(Card::string(
            &format!("FILE{}", i + 1),
            &f.display().to_string(),
            "source",
        ));
    }
    let mut w = FitsWriter::create(&a.out, a.force)?;
    w.write_image(
        &ImageHdu::new(vec![d.nx, d.ny, n], Pixels::F32(d.inputs.clone()), h),
        None,
    )?;
    if a.mask {
        let m: Vec<u8> = (0..n)
            .flat_map(|i| {
                source_mask(d.input(i), d.nx, d.ny, &SourceMaskSpec::photutils())
                    .into_iter()
                    .map(u8::from)
            })
            .collect();
        let mut mh = Header::default();
        mh.set(Card::string(
            "EXTNAME",
            "MASK_SOURCE",
            "1 = source (photutils recipe)",
        ));
        w.write_image(&ImageHdu::new(vec![d.nx, d.ny, n], Pixels::U8(m), mh), None)?;
    }
    let mut t = Table::default();
    let col = |f: &dyn Fn(&Origin) -> i64| Column::I64(d.origins.iter().map(f).collect());
    let file_no = |o: &Origin| match o {
        Origin::File { path, .. } => a
            .files
            .iter()
            .position(|f| f == path)
            .map_or(0, |p| p as i64 + 1),
        _ => 0,
    };
    t.columns
        .push(("INDEX".into(), Column::I64((0..n as i64).collect())));
    t.columns.push(("FILE".into(), col(&file_no)));
    for (name, k) in [("HDU", 0), ("PLANE", 1), ("X0", 2), ("Y0", 3)] {
        t.columns.push((
            name.into(),
            col(&|o| match o {
                Origin::File {
                    hdu, plane, x0, y0, ..
                } => [*hdu, *plane, *x0, *y0][k] as i64,
                _ => -1,
            }),
        ));
    }
    w.write_table("PARAMS", &t)?;
    w.finish()?;
    println!(
        "{}: {n} stamps of {}×{} from {} files",
        a.out.display(),
        d.nx,
        d.ny,
        a.files.len()
    );
    Ok(())
}
