//! Comparing runs: reading run folders back, grouping them by setting, aggregating over seeds,
//! choosing each variant's best setting on validation, and writing the report and plots.

pub mod aggregate;
pub mod csv_tables;
pub mod group;
pub mod plot;
pub mod report;
pub mod runs;
pub mod select;

pub use aggregate::{aggregate, aggregate_groups, GroupReport, Include, Stat, VariantReport};
pub use report::{report_command, write_report, ReportFiles};
pub use runs::{read_runs, scan, SavedRun};
