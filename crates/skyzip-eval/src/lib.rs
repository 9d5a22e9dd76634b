//! skyzip-eval: the numbers experiments are judged by, on plain arrays (no deep-learning types,
//! so it builds in seconds and every metric is checked against a reference implementation).
//!
//! Where it sits: models (skyzip-nn) are trained by skyzip-train, whose evaluation turns their
//! outputs into arrays and scores them here; the CLI writes the scores as JSON and tables.

pub mod catalog;
pub mod metrics;
pub mod photometry;
pub mod segmentation;

pub use metrics::{accuracy, mean_relative_error, roc_auc, Summary};
