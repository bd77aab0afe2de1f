//! NumPy arrays: a parser of the documented `.npy` format (magic, version, a Python-dict header
//! with `descr`, `fortran_order` and `shape`, then the raw elements), `.npz` archives of them,
//! and the writer the export uses. A header that lies is caught before anything is allocated:
//! the element count it promises must match the bytes actually there.

use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::bounded::{self, FileKind, ReadError};

const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// The header of an array ltmlp writes is padded so that the data starts on this boundary.
const ALIGN: usize = 64;

/// What can be wrong with a `.npy` array. Every message names the file and the array.
#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("{path}: array `{array}`: {reason}")]
    Bad {
        path: PathBuf,
        array: String,
        reason: String,
    },
    #[error("{path}: not a zip archive or damaged ({reason}); write it with numpy.savez")]
    Zip { path: PathBuf, reason: String },
    #[error("{path}: no array `{array}`; the archive holds {found}; set data.arrays.{key}")]
    MissingArray {
        path: PathBuf,
        array: String,
        key: &'static str,
        found: String,
    },
}

/// Element values, widened: bytes stay bytes (pixels), other integers become i64, floats f64.
#[derive(Debug, Clone, PartialEq)]
pub enum NpyData {
    U8(Vec<u8>),
    Int(Vec<i64>),
    Float(Vec<f64>),
}

/// One array: its shape (C order) and elements.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    pub shape: Vec<usize>,
    pub data: NpyData,
}

impl NpyArray {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match &self.data {
            NpyData::U8(v) => v.len(),
            NpyData::Int(v) => v.len(),
            NpyData::Float(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements as f64.
    pub fn to_f64(&self) -> Vec<f64> {
        match &self.data {
            NpyData::U8(v) => v.iter().map(|&x| f64::from(x)).collect(),
            NpyData::Int(v) => v.iter().map(|&x| x as f64).collect(),
            NpyData::Float(v) => v.clone(),
        }
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Bool,
    Unsigned,
    Signed,
    Float,
}

/// What a `.npy` header says: where the data starts, its layout and how many bytes it takes.
struct Header {
    data_start: usize,
    shape: Vec<usize>,
    descr: String,
    big_endian: bool,
    kind: Kind,
    size: usize,
    data_bytes: usize,
}

/// The magic, version and header length of a `.npy` array need at most this many bytes.
const PREAMBLE: usize = 12;
/// Longest header read (numpy writes a few hundred bytes; version 1 cannot exceed 64 KiB).
const MAX_HEADER: usize = 1 << 20;

/// Parses the `.npy` bytes of the array called `array` (for messages).
pub fn parse(path: &Path, array: &str, bytes: &[u8]) -> Result<NpyArray, NpyError> {
    let bad = |reason: String| NpyError::Bad {
        path: path.to_owned(),
        array: array.to_string(),
        reason,
    };
    let Header {
        data_start,
        shape,
        descr,
        big_endian,
        kind,
        size,
        data_bytes: expected,
    } = parse_header(path, array, bytes)?;
    let data = &bytes[data_start..];
    if data.len() != expected {
        return Err(bad(format!(
            "shape {shape:?} of {descr} needs {expected} bytes of data but {} follow the header",
            data.len()
        )));
    }
    let word = |chunk: &[u8]| {
        let mut b = [0u8; 8];
        if big_endian {
            b[8 - size..].copy_from_slice(chunk);
            u64::from_be_bytes(b)
        } else {
            b[..size].copy_from_slice(chunk);
            u64::from_le_bytes(b)
        }
    };
    let chunks = data.chunks_exact(size);
    let data = match (kind, size) {
        (Kind::Unsigned, 1) => NpyData::U8(data.to_vec()),
        (Kind::Bool, 1) => NpyData::Int(data.iter().map(|&b| i64::from(b != 0)).collect()),
        (Kind::Unsigned, _) => {
            let values: Option<Vec<i64>> = chunks.map(|c| i64::try_from(word(c)).ok()).collect();
            NpyData::Int(values.ok_or_else(|| bad("a value exceeds the i64 range".into()))?)
        }
        (Kind::Signed, _) => NpyData::Int(
            chunks
                .map(|c| {
                    let shift = 64 - 8 * size as u32;
                    ((word(c) << shift) as i64) >> shift
                })
                .collect(),
        ),
        (Kind::Float, 4) => NpyData::Float(
            chunks
                .map(|c| f64::from(f32::from_bits(word(c) as u32)))
                .collect(),
        ),
        (Kind::Float, _) => NpyData::Float(chunks.map(|c| f64::from_bits(word(c))).collect()),
        (Kind::Bool, _) => return Err(bad(format!("bool of {size} bytes"))),
    };
    Ok(NpyArray { shape, data })
}

/// Reads the header at the start of `bytes` (which need hold no data).
fn parse_header(path: &Path, array: &str, bytes: &[u8]) -> Result<Header, NpyError> {
    let bad = |reason: String| NpyError::Bad {
        path: path.to_owned(),
        array: array.to_string(),
        reason,
    };
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(bad(
            "not a .npy array (no \\x93NUMPY magic); save it with numpy.save".into(),
        ));
    }
    let (header_len, start): (usize, usize) = match bytes[6] {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(bad(format!("unsupported .npy version {v}"))),
    };
    if header_len > MAX_HEADER {
        return Err(bad(format!(
            "a header of {header_len} bytes; numpy writes at most {MAX_HEADER}"
        )));
    }
    let header = bytes.get(start..start + header_len).ok_or_else(|| {
        bad(format!(
            "header of {header_len} bytes runs past the file's end"
        ))
    })?;
    let header = std::str::from_utf8(header).map_err(|_| bad("header is not text".into()))?;
    let descr = dict_value(header, "descr")
        .ok_or_else(|| bad("header has no 'descr'".into()))?
        .trim_matches(|c| c == '\'' || c == '"');
    if dict_value(header, "fortran_order").is_some_and(|v| v.starts_with("True")) {
        return Err(bad(
            "Fortran-ordered arrays are not read; save numpy.ascontiguousarray(a)".into(),
        ));
    }
    let shape = parse_shape(dict_value(header, "shape").unwrap_or(""))
        .ok_or_else(|| bad(format!("cannot read the shape in header {header:?}")))?;
    let (big_endian, kind, size) = parse_descr(descr).ok_or_else(|| {
        bad(format!(
            "dtype {descr:?} is not read; use a bool, integer or float array"
        ))
    })?;
    let data_bytes = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .and_then(|count| count.checked_mul(size))
        .ok_or_else(|| bad(format!("shape {shape:?} overflows")))?;
    Ok(Header {
        data_start: start + header_len,
        shape,
        descr: descr.to_string(),
        big_endian,
        kind,
        size,
        data_bytes,
    })
}

/// The `.npy` bytes of an archive member, inflated only as far as its header promises: the
/// preamble, then the header it announces, then exactly the data that header describes (a
/// member that inflates further is refused, whatever its zip entry claims).
fn read_member(path: &Path, array: &str, member: impl Read) -> Result<Vec<u8>, NpyError> {
    let mut member = member;
    let damaged = |e: std::io::Error| NpyError::Zip {
        path: path.to_owned(),
        reason: format!("{array}.npy: {e}"),
    };
    let mut bytes = Vec::new();
    (&mut member)
        .take(PREAMBLE as u64)
        .read_to_end(&mut bytes)
        .map_err(damaged)?;
    let header_len = match bytes.get(6) {
        Some(1) if bytes.len() >= 10 => usize::from(u16::from_le_bytes([bytes[8], bytes[9]])) + 10,
        Some(2 | 3) if bytes.len() >= 12 => {
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize + 12
        }
        // parse names what is wrong.
        _ => return Ok(bytes),
    };
    let wanted = header_len
        .min(MAX_HEADER + PREAMBLE)
        .saturating_sub(bytes.len());
    (&mut member)
        .take(wanted as u64)
        .read_to_end(&mut bytes)
        .map_err(damaged)?;
    let header = parse_header(path, array, &bytes)?;
    bytes.truncate(header.data_start.min(bytes.len()));
    let promised = header.data_bytes as u64;
    if promised > FileKind::Npz.limit() {
        return Err(NpyError::Bad {
            path: path.to_owned(),
            array: array.to_string(),
            reason: format!(
                "its header promises {promised} bytes, more than any array read ({})",
                bounded::human_bytes(FileKind::Npz.limit())
            ),
        });
    }
    if bytes.try_reserve_exact(header.data_bytes).is_err() {
        return Err(NpyError::Bad {
            path: path.to_owned(),
            array: array.to_string(),
            reason: format!(
                "its header promises {promised} bytes and this machine cannot hold them"
            ),
        });
    }
    let whole = bounded::read_at_most(&mut member, promised, &mut bytes).map_err(damaged)?;
    if !whole {
        return Err(NpyError::Bad {
            path: path.to_owned(),
            array: array.to_string(),
            reason: format!(
                "inflates past the {promised} bytes of data its header promises (shape {:?} of \
                 {}); the archive is damaged or crafted: write it again with numpy.savez",
                header.shape, header.descr
            ),
        });
    }
    Ok(bytes)
}

/// The text after `'key':` up to the next top-level comma of a Python dict literal.
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let at = header
        .find(&format!("'{key}'"))
        .or_else(|| header.find(&format!("\"{key}\"")))?;
    let rest = header[at + key.len() + 2..]
        .trim_start()
        .strip_prefix(':')?;
    let rest = rest.trim_start();
    let mut depth = 0i32;
    for (i, c) in rest.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            ',' | '}' if depth <= 0 => return Some(rest[..i].trim()),
            _ => {}
        }
    }
    Some(rest.trim())
}

fn parse_shape(text: &str) -> Option<Vec<usize>> {
    let inner = text.trim().strip_prefix('(')?.strip_suffix(')')?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('L').parse().ok())
        .collect()
}

/// (big endian, kind, element size) of a dtype string such as `<f4`, `|u1`, `>i8`.
fn parse_descr(descr: &str) -> Option<(bool, Kind, usize)> {
    let mut chars = descr.chars();
    let order = chars.next()?;
    let big = match order {
        '<' | '|' | '=' => false,
        '>' => true,
        _ => return None,
    };
    let kind = match chars.next()? {
        'b' => Kind::Bool,
        'u' => Kind::Unsigned,
        'i' => Kind::Signed,
        'f' => Kind::Float,
        _ => return None,
    };
    let size: usize = chars.as_str().parse().ok()?;
    let ok = match kind {
        Kind::Bool => size == 1,
        Kind::Float => size == 4 || size == 8,
        _ => matches!(size, 1 | 2 | 4 | 8),
    };
    ok.then_some((big, kind, size))
}

/// Reads one `.npy` file through the bounded reader.
pub fn read(path: &Path) -> Result<NpyArray, NpyError> {
    let bytes = bounded::read(path, FileKind::Npy)?;
    let name = path
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    parse(path, &name, &bytes)
}

/// An opened `.npz` archive.
pub struct Npz<R> {
    path: PathBuf,
    archive: zip::ZipArchive<R>,
}

impl Npz<std::fs::File> {
    /// Opens an archive through the bounded reader (a regular file within the limit).
    pub fn open(path: &Path) -> Result<Self, NpyError> {
        Self::new(path, bounded::open(path, FileKind::Npz)?.file)
    }
}

impl<R: Read + Seek> Npz<R> {
    pub fn new(path: &Path, reader: R) -> Result<Self, NpyError> {
        let archive = zip::ZipArchive::new(reader).map_err(|e| NpyError::Zip {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(Npz {
            path: path.to_owned(),
            archive,
        })
    }

    /// The array stored as `name.npy`; `key` is the preset key that names it (for messages).
    pub fn array(&mut self, name: &str, key: &'static str) -> Result<NpyArray, NpyError> {
        let entry = format!("{name}.npy");
        let found = || {
            let mut names: Vec<String> = self
                .archive
                .file_names()
                .filter_map(Result::ok)
                .map(|n| n.trim_end_matches(".npy").to_string())
                .collect();
            names.sort_unstable();
            names.join(", ")
        };
        let zip_error = |e: zip::result::ZipError| NpyError::Zip {
            path: self.path.clone(),
            reason: format!("{entry}: {e}"),
        };
        let index = match self.archive.index_for_name(&entry) {
            Some(i) => i,
            None => {
                return Err(NpyError::MissingArray {
                    path: self.path.clone(),
                    array: name.to_string(),
                    key,
                    found: found(),
                })
            }
        };
        let file = self.archive.by_index(index).map_err(zip_error)?;
        let bytes = read_member(&self.path, name, file)?;
        parse(&self.path, name, &bytes)
    }
}

/// Encodes a little-endian f32 or f64 array as `.npy` bytes (version 1, C order).
pub fn encode_f64(shape: &[usize], values: &[f64]) -> Vec<u8> {
    encode_raw(
        "<f8",
        shape,
        &mut values.iter().flat_map(|v| v.to_le_bytes()),
    )
}

/// Encodes an f32 array as `.npy` bytes.
pub fn encode_f32(shape: &[usize], values: &[f32]) -> Vec<u8> {
    encode_raw(
        "<f4",
        shape,
        &mut values.iter().flat_map(|v| v.to_le_bytes()),
    )
}

/// Encodes an i64 array as `.npy` bytes.
pub fn encode_i64(shape: &[usize], values: &[i64]) -> Vec<u8> {
    encode_raw(
        "<i8",
        shape,
        &mut values.iter().flat_map(|v| v.to_le_bytes()),
    )
}

/// Encodes a byte array as `.npy` bytes.
pub fn encode_u8(shape: &[usize], values: &[u8]) -> Vec<u8> {
    encode_raw("|u1", shape, &mut values.iter().copied())
}

fn encode_raw(descr: &str, shape: &[usize], data: &mut dyn Iterator<Item = u8>) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
    let unpadded = MAGIC.len() + 2 + 2 + header.len() + 1;
    header.push_str(&" ".repeat((ALIGN - unpadded % ALIGN) % ALIGN));
    header.push('\n');
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend(data);
    out
}

/// Writes named `.npy` byte strings as an (uncompressed) `.npz` archive.
pub fn write_npz<W: Write + Seek>(
    writer: W,
    arrays: &[(String, Vec<u8>)],
) -> zip::result::ZipResult<W> {
    let mut zip = zip::ZipWriter::new(writer);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(true);
    for (name, bytes) in arrays {
        zip.start_file(format!("{name}.npy"), options)?;
        zip.write_all(bytes)?;
    }
    zip.finish()
}
