//! The UnitCoder synthesis pipeline: retrieve functions from a corpus, have the model write unit tests,
//! run and fix, polish, and emit post-training data. One record type flows through the stages.

pub mod record;
pub mod retrieve;

pub use record::{Record, RecordReader};
