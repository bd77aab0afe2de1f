//! TensorBoard event files: the messages (`proto`), the TFRecord-framed writer (`writer`),
//! `ltmlp export-tb`, which converts run folders (`export`), and the live writer, a run's
//! subscriber (`live`).

pub mod export;
pub mod live;
pub mod proto;
pub mod writer;

pub use export::{export_tb_command, ExportTbArgs};
pub use writer::EventWriter;
