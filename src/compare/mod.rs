//! Comparing variants across seeds: running the variant × seed grid, reading saved runs back,
//! aggregating them, and writing the report and learning-curve plots.

pub mod aggregate;
pub mod grid;
pub mod plot;
pub mod report;
pub mod runs;

pub use aggregate::{aggregate, Stat, VariantReport};
pub use grid::{run_grid, GridOptions};
pub use report::{write_report, ReportFiles};
pub use runs::{read_runs, SavedRun};
