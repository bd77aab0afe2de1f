//! Writing one TensorBoard event file: each event framed as a TFRecord (length, masked CRC-32C
//! of the length, data, masked CRC-32C of the data) and handed to the system when written; the
//! length is tracked, so that a record cut short is cut off again (`rewind`) and a resumed
//! run's file continues after a kept prefix.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use prost::Message;

use super::proto::{
    Dim, Event, Experiment, HParamsData, HParamsPluginData, HistogramProto, PluginData,
    SessionEndInfo, SessionStartInfo, SessionStatus, Summary, SummaryMetadata, SummaryValue,
    TensorProto, TensorShapeProto, Value, What, DT_FLOAT, DT_STRING,
};

/// The HParams plugin's name, data version and tags (TensorBoard's `plugins/hparams/metadata.py`).
const HPARAMS_PLUGIN: &str = "hparams";
const HPARAMS_VERSION: i32 = 0;
pub const EXPERIMENT_TAG: &str = "_hparams_/experiment";
pub const SESSION_START_TAG: &str = "_hparams_/session_start_info";
pub const SESSION_END_TAG: &str = "_hparams_/session_end_info";
/// Buckets of a histogram of unit statistics (a few hundred units a layer at most).
const HISTOGRAM_BUCKETS: usize = 30;

/// The TFRecord frame of `data`.
pub fn frame(data: &[u8]) -> Vec<u8> {
    let length = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&length);
    out.extend_from_slice(&masked_crc(&length).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
    out
}

/// TFRecord's masked CRC-32C (so that a CRC of data holding CRCs stays well spread).
pub fn masked_crc(data: &[u8]) -> u32 {
    let crc = crc32c::crc32c(data);
    (crc.rotate_right(15)).wrapping_add(0xa282_ead8)
}

/// The prefix every event file's name has (TensorBoard reads the files whose name holds
/// `tfevents`).
pub const EVENT_FILE_PREFIX: &str = "events.out.tfevents.";

/// An open event file.
pub struct EventWriter {
    path: PathBuf,
    file: File,
    /// Bytes of whole records written.
    len: u64,
}

impl EventWriter {
    /// Starts `events.out.tfevents.<wall_time>.ltmlp` in `dir` (which must exist) with its
    /// version record; an existing file is never replaced.
    pub fn create(dir: &Path, wall_time: f64) -> std::io::Result<Self> {
        let path = dir.join(format!("{EVENT_FILE_PREFIX}{}.ltmlp", wall_time as i64));
        crate::durable::fault::before_write(&path)?;
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)?;
        let mut writer = EventWriter { path, file, len: 0 };
        writer.write(&Event {
            wall_time,
            step: 0,
            what: Some(What::FileVersion("brain.Event:2".into())),
        })?;
        Ok(writer)
    }

    /// Continues the event file `path` after its first `keep` bytes (whole records; the rest
    /// was moved aside by the caller).
    pub fn continue_after(path: &Path, keep: u64) -> std::io::Result<Self> {
        let file = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)?;
        if file.metadata()?.len() != keep {
            crate::durable::fault::before_write(path)?;
            file.set_len(keep)?;
            file.sync_all()?;
        }
        Ok(EventWriter {
            path: path.to_owned(),
            file,
            len: keep,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes of whole records written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Cuts the file back to `len` bytes (undoing the records of an event that failed half way).
    pub fn rewind(&mut self, len: u64) {
        let _ = self.file.set_len(len);
        self.len = len;
    }

    /// Makes every record written durable.
    pub fn sync(&mut self) -> std::io::Result<()> {
        self.file.sync_data()
    }

    fn write(&mut self, event: &Event) -> std::io::Result<()> {
        let bytes = frame(&event.encode_to_vec());
        let written = crate::durable::fault::before_write(&self.path)
            .and_then(|()| self.file.write_all_at(&bytes, self.len));
        match written {
            Ok(()) => {
                self.len += bytes.len() as u64;
                Ok(())
            }
            Err(e) => {
                let _ = self.file.set_len(self.len);
                Err(e)
            }
        }
    }

    fn summary(&mut self, wall_time: f64, step: i64, value: SummaryValue) -> std::io::Result<()> {
        self.write(&Event {
            wall_time,
            step,
            what: Some(What::Summary(Summary { value: vec![value] })),
        })
    }

    /// One scalar (TensorBoard keeps scalars as 32-bit floats).
    pub fn scalar(&mut self, tag: &str, step: i64, wall_time: f64, x: f64) -> std::io::Result<()> {
        let value = SummaryValue {
            tag: tag.into(),
            metadata: None,
            value: Some(Value::SimpleValue(x as f32)),
        };
        self.summary(wall_time, step, value)
    }

    /// A histogram of `values` (finite ones; nothing is written when none is).
    pub fn histogram(
        &mut self,
        tag: &str,
        step: i64,
        wall_time: f64,
        values: &[f64],
    ) -> std::io::Result<()> {
        let Some(histo) = histogram(values) else {
            return Ok(());
        };
        let value = SummaryValue {
            tag: tag.into(),
            metadata: None,
            value: Some(Value::Histo(histo)),
        };
        self.summary(wall_time, step, value)
    }

    /// Markdown text, for the Text dashboard.
    pub fn text(
        &mut self,
        tag: &str,
        step: i64,
        wall_time: f64,
        text: &str,
    ) -> std::io::Result<()> {
        let value = SummaryValue {
            tag: tag.into(),
            metadata: Some(plugin_metadata("text", Vec::new())),
            value: Some(Value::Tensor(TensorProto {
                dtype: DT_STRING,
                tensor_shape: Some(TensorShapeProto { dim: Vec::new() }),
                string_val: vec![text.as_bytes().to_vec()],
            })),
        };
        self.summary(wall_time, step, value)
    }

    /// The HParams plugin's experiment record: the table's hparam and metric columns.
    pub fn experiment(&mut self, wall_time: f64, experiment: Experiment) -> std::io::Result<()> {
        self.hparams(
            EXPERIMENT_TAG,
            wall_time,
            HParamsData::Experiment(experiment),
        )
    }

    /// The HParams plugin's session start: one run's settings.
    pub fn session_start(
        &mut self,
        wall_time: f64,
        hparams: HashMap<String, prost_types::Value>,
        group_name: &str,
    ) -> std::io::Result<()> {
        let start = SessionStartInfo {
            hparams,
            group_name: group_name.into(),
            start_time_secs: wall_time,
        };
        self.hparams(
            SESSION_START_TAG,
            wall_time,
            HParamsData::SessionStartInfo(start),
        )
    }

    /// The HParams plugin's session end.
    pub fn session_end(&mut self, wall_time: f64, status: SessionStatus) -> std::io::Result<()> {
        let end = SessionEndInfo {
            status: status as i32,
            end_time_secs: wall_time,
        };
        self.hparams(SESSION_END_TAG, wall_time, HParamsData::SessionEndInfo(end))
    }

    fn hparams(&mut self, tag: &str, wall_time: f64, data: HParamsData) -> std::io::Result<()> {
        let content = HParamsPluginData {
            version: HPARAMS_VERSION,
            data: Some(data),
        }
        .encode_to_vec();
        // The plugin reads its records as tensors: an empty float one, as TensorBoard's own
        // writer (`metadata.NULL_TENSOR`) puts there.
        let value = SummaryValue {
            tag: tag.into(),
            metadata: Some(plugin_metadata(HPARAMS_PLUGIN, content)),
            value: Some(Value::Tensor(TensorProto {
                dtype: DT_FLOAT,
                tensor_shape: Some(TensorShapeProto {
                    dim: vec![Dim { size: 0 }],
                }),
                string_val: Vec::new(),
            })),
        };
        self.summary(wall_time, 0, value)
    }
}

fn plugin_metadata(plugin_name: &str, content: Vec<u8>) -> SummaryMetadata {
    SummaryMetadata {
        plugin_data: Some(PluginData {
            plugin_name: plugin_name.into(),
            content,
        }),
    }
}

/// Equal-width buckets from the least to the greatest finite value; `None` without any.
pub fn histogram(values: &[f64]) -> Option<HistogramProto> {
    let finite: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    let min = finite.iter().copied().reduce(f64::min)?;
    let max = finite.iter().copied().reduce(f64::max)?;
    let buckets = if max > min { HISTOGRAM_BUCKETS } else { 1 };
    let width = (max - min) / buckets as f64;
    let bucket_limit: Vec<f64> = (1..=buckets)
        .map(|i| {
            if i == buckets {
                max
            } else {
                min + width * i as f64
            }
        })
        .collect();
    let mut bucket = vec![0.0; buckets];
    for &x in &finite {
        let i = if width > 0.0 {
            (((x - min) / width).ceil() as usize).saturating_sub(1)
        } else {
            0
        };
        bucket[i.min(buckets - 1)] += 1.0;
    }
    Some(HistogramProto {
        min,
        max,
        num: finite.len() as f64,
        sum: finite.iter().sum(),
        sum_squares: finite.iter().map(|x| x * x).sum(),
        bucket_limit,
        bucket,
    })
}

/// The records of an event file's bytes with the offset each ends at; a torn or damaged
/// record ends the list (what follows cannot be trusted to be whole).
pub fn records(bytes: &[u8]) -> Vec<(u64, Event)> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while bytes.len() >= at + 12 {
        let mut length = [0u8; 8];
        length.copy_from_slice(&bytes[at..at + 8]);
        let n = u64::from_le_bytes(length);
        let Ok(n) = usize::try_from(n) else { break };
        let Some(end) = (at + 12).checked_add(n).and_then(|e| e.checked_add(4)) else {
            break;
        };
        if end > bytes.len() {
            break;
        }
        let data = &bytes[at + 12..at + 12 + n];
        let crc = u32::from_le_bytes(bytes[end - 4..end].try_into().unwrap_or_default());
        if crc != masked_crc(data) {
            break;
        }
        let Ok(event) = Event::decode(data) else {
            break;
        };
        out.push((end as u64, event));
        at = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_carries_tensorflows_masked_crc() {
        // The CRC-32C check value of "123456789" is 0xE3069283 (RFC 3720, B.4).
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
        let framed = frame(b"abc");
        assert_eq!(&framed[..8], &3u64.to_le_bytes());
        assert_eq!(&framed[12..15], b"abc");
        let masked = u32::from_le_bytes(framed[15..19].try_into().unwrap());
        let crc = crc32c::crc32c(b"abc");
        assert_eq!(masked, crc.rotate_right(15).wrapping_add(0xa282_ead8));
        assert_eq!(framed.len(), 19);
    }

    #[test]
    fn a_histogram_counts_every_finite_value_once() {
        let values = [0.0, 0.1, 0.5, 1.0, 1.0, f64::NAN];
        let h = histogram(&values).unwrap();
        assert_eq!(h.num, 5.0);
        assert_eq!(h.bucket.iter().sum::<f64>(), 5.0);
        assert_eq!((h.min, h.max), (0.0, 1.0));
        assert_eq!(*h.bucket_limit.last().unwrap(), 1.0);
        assert_eq!(h.bucket[0], 1.0, "0.0 is in the first bucket");
        assert_eq!(*h.bucket.last().unwrap(), 2.0, "both 1.0s are in the last");
        let one = histogram(&[2.0, 2.0]).unwrap();
        assert_eq!(
            (one.bucket.clone(), one.bucket_limit.clone()),
            (vec![2.0], vec![2.0])
        );
        assert!(histogram(&[f64::NAN]).is_none());
    }
}
