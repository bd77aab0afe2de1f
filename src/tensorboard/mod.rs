//! TensorBoard event files: the messages (`proto`), the TFRecord-framed writer (`writer`) and
//! `ltmlp export-tb`, which converts run folders (`export`).

pub mod export;
pub mod proto;
pub mod writer;

pub use export::{export_tb_command, ExportTbArgs};
pub use writer::EventWriter;
