//! In-memory datasets of equally sized images (plain `f32` arrays, no deep-learning types):
//! from a simulator, from FITS files cut into stamps, or from a dataset `skyzip simulate` wrote;
//! with per-image invertible normalisation, a seeded train/validation split and shuffled,
//! optionally augmented batches.

use crate::augment::{resize_bilinear, Dihedral};
use crate::norm::{Norm, NormKind};
use crate::stamps::{cut, StampSpec};
use crate::DataError;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use skyzip_fits::{read_all_images, read_table, HduSelector};
use skyzip_sim::noise::Noise;
use skyzip_sim::{generate, noise_rng, sample_rng, Simulator};
use std::path::{Path, PathBuf};

/// Where an item came from.
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    /// Sample `index` of simulator `kind` with `seed`.
    Sim { kind: String, seed: u64, index: u64 },
    /// A stamp with lower-left corner (x0, y0) of plane `plane` of HDU `hdu` of a file.
    File {
        path: PathBuf,
        hdu: usize,
        plane: usize,
        x0: usize,
        y0: usize,
    },
}

/// Images of one size with optional targets and parameters.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    pub nx: usize,
    pub ny: usize,
    /// Inputs, item after item, each row-major `ny`×`nx`.
    pub inputs: Vec<f32>,
    /// Targets of the same shape (clean images for denoising); None = reconstruct the input.
    pub targets: Option<Vec<f32>>,
    pub param_names: Vec<String>,
    /// Scalar labels, one row per item.
    pub params: Vec<Vec<f64>>,
    pub origins: Vec<Origin>,
    /// The normalisation applied to each item (identity until [`Dataset::normalise`]).
    pub norms: Vec<Norm>,
}

impl Dataset {
    /// The items of several datasets, in order. Sizes must agree; targets must be present in
    /// all or none; parameters (labels) are kept only when every part has the same names.
    pub fn concat(parts: Vec<Dataset>) -> Result<Dataset, crate::DataError> {
        let Some(first) = parts.first() else {
            return Err(crate::DataError::invalid("nothing to concatenate"));
        };
        let (nx, ny) = (first.nx, first.ny);
        let names = first.param_names.clone();
        let with_targets = first.targets.is_some();
        let same_labels = parts.iter().all(|p| p.param_names == names);
        let mut out = Dataset {
            nx,
            ny,
            targets: with_targets.then(Vec::new),
            param_names: if same_labels { names } else { Vec::new() },
            ..Dataset::default()
        };
        for (k, p) in parts.into_iter().enumerate() {
            if (p.nx, p.ny) != (nx, ny) {
                return Err(crate::DataError::invalid(format!(
                    "source {k} has {}×{} images, source 0 has {nx}×{ny}",
                    p.nx, p.ny
                )));
            }
            if p.targets.is_some() != with_targets {
                return Err(crate::DataError::invalid(format!(
                    "source {k} {} targets and source 0 {}",
                    if p.targets.is_some() { "has" } else { "has no" },
                    if with_targets { "does" } else { "does not" }
                )));
            }
            out.inputs.extend(p.inputs);
            if let (Some(t), Some(pt)) = (out.targets.as_mut(), p.targets) {
                t.extend(pt);
            }
            if same_labels {
                out.params.extend(p.params);
            }
            out.origins.extend(p.origins);
            out.norms.extend(p.norms);
        }
        if !same_labels {
            out.params = vec![Vec::new(); out.origins.len()];
        }
        Ok(out)
    }
}

/// A batch in NCHW order with C = 1.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub n: usize,
    pub nx: usize,
    pub ny: usize,
    pub x: Vec<f32>,
    pub y: Vec<f32>,
    pub indices: Vec<usize>,
}

/// Indices of a split.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    pub train: Vec<usize>,
    pub val: Vec<usize>,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.origins.len()
    }
    pub fn is_empty(&self) -> bool {
        self.origins.is_empty()
    }
    fn npix(&self) -> usize {
        self.nx * self.ny
    }
    pub fn input(&self, i: usize) -> &[f32] {
        &self.inputs[i * self.npix()..(i + 1) * self.npix()]
    }
    /// The target of item i (its input when the dataset has no targets).
    pub fn target(&self, i: usize) -> &[f32] {
        match &self.targets {
            Some(t) => &t[i * self.npix()..(i + 1) * self.npix()],
            None => self.input(i),
        }
    }

    /// `n` samples of a simulator; targets are the clean images. With `noise`, the input is the
    /// clean image corrupted by that noise model (a denoising set) instead of the simulator's own
    /// observation.
    pub fn from_simulator(
        sim: &dyn Simulator,
        seed: u64,
        n: usize,
        noise: Option<Noise>,
    ) -> Result<Dataset, DataError> {
        if n == 0 {
            return Err(DataError::invalid("a dataset needs at least 1 sample"));
        }
        let samples = generate(sim, seed, 0, n);
        let (nx, ny) = (samples[0].nx, samples[0].ny);
        let param_names: Vec<String> = samples[0].params.keys().cloned().collect();
        let mut d = Dataset {
            nx,
            ny,
            param_names,
            ..Default::default()
        };
        let mut targets = Vec::with_capacity(n * nx * ny);
        for (i, s) in samples.into_iter().enumerate() {
            match noise {
                Some(noise) => d
                    .inputs
                    .extend(noise.apply(&s.clean, &mut noise_rng(seed, i as u64))),
                None => d.inputs.extend_from_slice(&s.image),
            }
            targets.extend_from_slice(&s.clean);
            d.params
                .push(d.param_names.iter().map(|k| s.params[k]).collect());
            d.origins.push(Origin::Sim {
                kind: sim.name().to_string(),
                seed,
                index: i as u64,
            });
            d.norms.push(Norm::None);
        }
        d.targets = Some(targets);
        Ok(d)
    }

    /// Stamps from every image HDU and plane of FITS files (NaN where blank).
    pub fn from_fits_files(paths: &[PathBuf], spec: &StampSpec) -> Result<Dataset, DataError> {
        let mut d = Dataset {
            nx: spec.size,
            ny: spec.size,
            ..Default::default()
        };
        for path in paths {
            let imgs = read_all_images(path)?;
            if imgs.is_empty() {
                return Err(DataError::file(path, "holds no image"));
            }
            for img in &imgs {
                for plane in 0..img.planes() {
                    let data: Vec<f32> = img
                        .physical_plane(plane)
                        .iter()
                        .map(|&v| v as f32)
                        .collect();
                    let stamps = cut(&data, img.nx(), img.ny(), None, spec)
                        .map_err(|e| DataError::file(path, &format!("HDU {}: {e}", img.hdu)))?;
                    for s in stamps {
                        d.inputs.extend_from_slice(&s.data);
                        d.params.push(Vec::new());
                        d.norms.push(Norm::None);
                        d.origins.push(Origin::File {
                            path: path.clone(),
                            hdu: img.hdu,
                            plane,
                            x0: s.x0,
                            y0: s.y0,
                        });
                    }
                }
            }
        }
        if d.is_empty() {
            return Err(DataError::invalid("no stamp passed the blank-pixel limit"));
        }
        Ok(d)
    }

    /// A dataset written by `skyzip simulate`: a file, or a folder of its shards.
    pub fn from_skyzip(path: &Path) -> Result<Dataset, DataError> {
        let mut files: Vec<PathBuf> = if path.is_dir() {
            std::fs::read_dir(path)
                .map_err(|e| DataError::file(path, &e.to_string()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "fits"))
                .collect()
        } else {
            vec![path.to_path_buf()]
        };
        files.sort();
        if files.is_empty() {
            return Err(DataError::file(path, "no .fits files in this folder"));
        }
        let mut d = Dataset::default();
        for f in &files {
            let img = skyzip_fits::read_image(f, &HduSelector::Index(0))?;
            let kind = img
                .header
                .string("SIMKIND")
                .ok_or_else(|| DataError::file(f, "is not a skyzip dataset (no SIMKIND card)"))?;
            let seed = img.header.f64("SIMSEED").unwrap_or(0.0) as u64;
            let clean = skyzip_fits::read_image(f, &HduSelector::Name("CLEAN".into())).ok();
            let params = read_table(f, "PARAMS")?;
            let (nx, ny, planes) = (img.nx(), img.ny(), img.planes());
            if d.nx == 0 {
                (d.nx, d.ny) = (nx, ny);
                d.param_names = params.columns.iter().skip(1).map(|c| c.0.clone()).collect();
                if clean.is_some() {
                    d.targets = Some(Vec::new());
                }
            } else if (d.nx, d.ny) != (nx, ny) {
                return Err(DataError::file(
                    f,
                    &format!("images are {nx}×{ny}, not {}×{}", d.nx, d.ny),
                ));
            }
            let cols: Vec<Vec<f64>> = params
                .columns
                .iter()
                .map(|c| c.1.as_f64().unwrap_or_default())
                .collect();
            if params.rows() != planes || cols.is_empty() {
                return Err(DataError::file(
                    f,
                    "PARAMS rows do not match the image planes",
                ));
            }
            for p in 0..planes {
                d.inputs
                    .extend(img.physical_plane(p).iter().map(|&v| v as f32));
                if let (Some(t), Some(c)) = (d.targets.as_mut(), clean.as_ref()) {
                    t.extend(c.physical_plane(p).iter().map(|&v| v as f32));
                }
                d.params.push(cols.iter().skip(1).map(|c| c[p]).collect());
                d.origins.push(Origin::Sim {
                    kind: kind.clone(),
                    seed,
                    index: cols[0][p] as u64,
                });
                d.norms.push(Norm::None);
            }
        }
        Ok(d)
    }

    /// Fits `kind` to each item's input and applies it to input and target alike.
    pub fn normalise(&mut self, kind: NormKind) {
        let n = self.npix();
        for i in 0..self.len() {
            let norm = kind.fit(&self.inputs[i * n..(i + 1) * n]);
            norm.forward(&mut self.inputs[i * n..(i + 1) * n]);
            if let Some(t) = self.targets.as_mut() {
                norm.forward(&mut t[i * n..(i + 1) * n]);
            }
            self.norms[i] = norm;
        }
    }

    /// Replaces NaN (blank) pixels by `value` in inputs and targets (after normalising).
    pub fn fill_nan(&mut self, value: f32) {
        let fix = |v: &mut f32| {
            if !v.is_finite() {
                *v = value
            }
        };
        self.inputs.iter_mut().for_each(fix);
        if let Some(t) = self.targets.as_mut() {
            t.iter_mut().for_each(fix);
        }
    }

    /// Resizes every image bilinearly to `ox`×`oy` (e.g. 150 → 187 as the radio seed did).
    pub fn resize(&mut self, ox: usize, oy: usize) {
        let n = self.npix();
        let rs = |v: &[f32]| -> Vec<f32> {
            v.chunks(n)
                .flat_map(|c| resize_bilinear(c, self.nx, self.ny, ox, oy))
                .collect()
        };
        self.inputs = rs(&self.inputs);
        self.targets = self.targets.as_ref().map(|t| rs(t));
        (self.nx, self.ny) = (ox, oy);
    }

    /// A deterministic split: the items shuffled by `seed`, the last `val_fraction` for validation.
    pub fn split(&self, val_fraction: f64, seed: u64) -> Result<Split, DataError> {
        if !(0.0..1.0).contains(&val_fraction) {
            return Err(DataError::invalid(format!(
                "validation fraction {val_fraction} is not in [0, 1)"
            )));
        }
        let mut idx: Vec<usize> = (0..self.len()).collect();
        idx.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ 0x73706c6974));
        let n_val = ((self.len() as f64) * val_fraction).round() as usize;
        let val = idx.split_off(self.len() - n_val);
        Ok(Split { train: idx, val })
    }

    /// The batches of one epoch: `indices` shuffled by (seed, epoch) (kept in order when
    /// `shuffle` is false), each item optionally under a random flip/rotation (square images).
    pub fn batches(
        &self,
        indices: &[usize],
        batch: usize,
        seed: u64,
        epoch: u64,
        shuffle: bool,
        augment: bool,
    ) -> Vec<Batch> {
        let mut order = indices.to_vec();
        let mut rng = sample_rng(seed ^ 0x6261746368, epoch);
        if shuffle {
            order.shuffle(&mut rng);
        }
        order
            .chunks(batch.max(1))
            .map(|chunk| {
                let mut x = Vec::with_capacity(chunk.len() * self.npix());
                let mut y = Vec::with_capacity(chunk.len() * self.npix());
                for &i in chunk {
                    if augment && self.nx == self.ny {
                        let d = Dihedral::ALL[rng.random_range(0..8)];
                        x.extend(d.apply(self.input(i), self.nx, self.ny).2);
                        y.extend(d.apply(self.target(i), self.nx, self.ny).2);
                    } else {
                        x.extend_from_slice(self.input(i));
                        y.extend_from_slice(self.target(i));
                    }
                }
                Batch {
                    n: chunk.len(),
                    nx: self.nx,
                    ny: self.ny,
                    x,
                    y,
                    indices: chunk.to_vec(),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod concat_tests {
    use super::*;

    fn part(n: usize, side: usize, labels: &[&str], targets: bool) -> Dataset {
        let npix = side * side;
        Dataset {
            nx: side,
            ny: side,
            inputs: (0..n * npix).map(|i| i as f32).collect(),
            targets: targets.then(|| vec![1.0; n * npix]),
            param_names: labels.iter().map(|s| s.to_string()).collect(),
            params: vec![vec![0.5; labels.len()]; n],
            origins: (0..n)
                .map(|i| Origin::Sim {
                    kind: "toy".into(),
                    seed: 1,
                    index: i as u64,
                })
                .collect(),
            norms: vec![Norm::None; n],
        }
    }

    #[test]
    fn concat_keeps_items_in_order_and_refuses_mismatches() {
        let d =
            Dataset::concat(vec![part(2, 4, &["a"], false), part(3, 4, &["a"], false)]).unwrap();
        assert_eq!((d.len(), d.inputs.len(), d.params.len()), (5, 80, 5));
        assert_eq!(d.param_names, vec!["a"]);
        // Different labels: kept for none.
        let d = Dataset::concat(vec![part(2, 4, &["a"], false), part(1, 4, &[], false)]).unwrap();
        assert!(d.param_names.is_empty() && d.params.iter().all(Vec::is_empty));
        let e = Dataset::concat(vec![part(1, 4, &[], false), part(1, 8, &[], false)]).unwrap_err();
        assert!(e.to_string().contains("8×8"), "{e}");
        assert!(Dataset::concat(vec![part(1, 4, &[], true), part(1, 4, &[], false)]).is_err());
        assert!(Dataset::concat(vec![]).is_err());
    }
}
