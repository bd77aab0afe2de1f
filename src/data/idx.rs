//! Reading and writing IDX files (MNIST's format), raw or gzipped, with errors that name the
//! file and the fault. Nothing here panics on bad bytes.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use flate2::bufread::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;

use crate::bounded::{self, FileKind, ReadError};

/// IDX magic for unsigned-byte data with three dimensions (images).
const IMAGES_MAGIC: u32 = 0x0000_0803;
/// IDX magic for unsigned-byte data with one dimension (labels).
const LABELS_MAGIC: u32 = 0x0000_0801;
/// The first two bytes of every gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// What can be wrong with an IDX file. Every message starts with the file's path.
#[derive(Debug, thiserror::Error)]
pub enum IdxError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("{path}: corrupt or truncated gzip stream ({error}); download the file again")]
    Gzip {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}: the header promises more than {limit} bytes of data; the file is damaged or not an IDX file")]
    TooLarge { path: PathBuf, limit: usize },
    #[error("{path}: the header promises {bytes} bytes and this machine cannot hold them; free memory or use data.train_limit on a smaller copy")]
    OutOfMemory { path: PathBuf, bytes: usize },
    #[error("{path}: file is {len} bytes, too short for an IDX header of {needed} bytes")]
    ShortHeader {
        path: PathBuf,
        len: usize,
        needed: usize,
    },
    #[error(
        "{path}: bad magic number 0x{found:08x}, expected 0x{expected:08x} for an IDX {what} file; \
         is this the right file?"
    )]
    BadMagic {
        path: PathBuf,
        found: u32,
        expected: u32,
        what: &'static str,
    },
    #[error("{path}: wrong dimensions {dims:?}: every dimension must be at least 1")]
    WrongDimensions { path: PathBuf, dims: Vec<u32> },
    #[error(
        "{path}: truncated: the header promises {expected} bytes of data but the file holds {found}"
    )]
    Truncated {
        path: PathBuf,
        expected: usize,
        found: usize,
    },
    #[error(
        "{path}: {extra} bytes beyond the {expected} bytes the header promises; \
         the header's count is wrong or the file is damaged"
    )]
    TrailingBytes {
        path: PathBuf,
        expected: usize,
        extra: usize,
    },
    #[error(
        "{path}: {extra} bytes after the gzip stream (a second gzip member, or bytes appended \
         to the file); the file is damaged: download it again"
    )]
    AfterGzip { path: PathBuf, extra: usize },
    #[error(
        "{images}: holds {image_count} images but {labels} holds {label_count} labels; \
         the two files must describe the same examples"
    )]
    CountMismatch {
        images: PathBuf,
        image_count: usize,
        labels: PathBuf,
        label_count: usize,
    },
}

/// Images as stored: `count` images of `rows × cols` bytes, row-major, one after another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxImages {
    pub count: usize,
    pub rows: usize,
    pub cols: usize,
    pub pixels: Vec<u8>,
}

/// Largest IDX data accepted (a header promising more is not believed): 4 GiB, 80 times full
/// MNIST's training images.
pub const MAX_IDX_BYTES: usize = 4 << 30;
/// Most bytes counted past the promised end of a gzip stream before the count is given up.
const MAX_TRAILING_COUNT: u64 = 1 << 30;

/// Decompresses `bytes` if they are gzipped; raw IDX passes through. Memory is bounded by
/// what the header promises (at most [`MAX_IDX_BYTES`]), never by what the stream would
/// inflate to: the header is inflated first, then exactly the promised data. The file must
/// end with its one gzip stream: a second member or appended bytes are refused, as trailing
/// bytes of a raw IDX file are.
pub fn decompress(path: &Path, bytes: Vec<u8>, magic: u32) -> Result<Vec<u8>, IdxError> {
    if bytes.len() < 2 || bytes[..2] != GZIP_MAGIC {
        return Ok(bytes);
    }
    let gzip = |error| IdxError::Gzip {
        path: path.to_owned(),
        error,
    };
    let mut stream = GzDecoder::new(bytes.as_slice());
    let header_len = 4 + 4 * (magic & 0xff) as usize;
    let mut out = Vec::new();
    (&mut stream)
        .take(header_len as u64)
        .read_to_end(&mut out)
        .map_err(gzip)?;
    let word = |i: usize| u32::from_be_bytes([out[i], out[i + 1], out[i + 2], out[i + 3]]);
    if out.len() < header_len || word(0) != magic {
        // parse_header names what is wrong with the header.
        return Ok(out);
    }
    let promised = (1..header_len / 4)
        .map(|d| word(4 * d) as usize)
        .try_fold(1usize, |acc, d| acc.checked_mul(d));
    let promised = match promised {
        Some(0) => return Ok(out),
        Some(n) if n <= MAX_IDX_BYTES => n,
        _ => {
            return Err(IdxError::TooLarge {
                path: path.to_owned(),
                limit: MAX_IDX_BYTES,
            })
        }
    };
    out.try_reserve_exact(promised + 1)
        .map_err(|_| IdxError::OutOfMemory {
            path: path.to_owned(),
            bytes: promised,
        })?;
    (&mut stream)
        .take(promised as u64 + 1)
        .read_to_end(&mut out)
        .map_err(gzip)?;
    let data = out.len() - header_len;
    if data > promised {
        let more = std::io::copy(
            &mut (&mut stream).take(MAX_TRAILING_COUNT),
            &mut std::io::sink(),
        )
        .map_err(gzip)?;
        return Err(IdxError::TrailingBytes {
            path: path.to_owned(),
            expected: promised,
            extra: (data - promised) + more as usize,
        });
    }
    // The stream ended (a short read of `take`): what the decoder left is after its member.
    let after = stream.get_ref().len();
    if after > 0 {
        return Err(IdxError::AfterGzip {
            path: path.to_owned(),
            extra: after,
        });
    }
    Ok(out)
}

/// Reads a file through the bounded reader, then inflates it if it is gzipped.
fn read_file(path: &Path, magic: u32) -> Result<Vec<u8>, IdxError> {
    decompress(path, bounded::read(path, FileKind::Idx)?, magic)
}

fn parse_header<'a>(
    path: &Path,
    bytes: &'a [u8],
    expected: u32,
    what: &'static str,
) -> Result<(Vec<u32>, &'a [u8]), IdxError> {
    let ndims = (expected & 0xff) as usize;
    let header_len = 4 + 4 * ndims;
    let short = |needed: usize| IdxError::ShortHeader {
        path: path.to_owned(),
        len: bytes.len(),
        needed,
    };
    let word = |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    if bytes.len() < 4 {
        return Err(short(header_len));
    }
    let magic = word(0);
    if magic != expected {
        return Err(IdxError::BadMagic {
            path: path.to_owned(),
            found: magic,
            expected,
            what,
        });
    }
    if bytes.len() < header_len {
        return Err(short(header_len));
    }
    let dims: Vec<u32> = (0..ndims).map(|d| word(4 + 4 * d)).collect();
    if dims.contains(&0) {
        return Err(IdxError::WrongDimensions {
            path: path.to_owned(),
            dims,
        });
    }
    let expected_len = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d as usize))
        .unwrap_or(usize::MAX);
    let data = &bytes[header_len..];
    if data.len() < expected_len {
        return Err(IdxError::Truncated {
            path: path.to_owned(),
            expected: expected_len,
            found: data.len(),
        });
    }
    if data.len() > expected_len {
        return Err(IdxError::TrailingBytes {
            path: path.to_owned(),
            expected: expected_len,
            extra: data.len() - expected_len,
        });
    }
    Ok((dims, data))
}

/// Parses (already decompressed or gzipped) bytes of an idx3 image file.
pub fn parse_images(path: &Path, bytes: Vec<u8>) -> Result<IdxImages, IdxError> {
    let bytes = decompress(path, bytes, IMAGES_MAGIC)?;
    let (dims, data) = parse_header(path, &bytes, IMAGES_MAGIC, "images (idx3-ubyte)")?;
    Ok(IdxImages {
        count: dims[0] as usize,
        rows: dims[1] as usize,
        cols: dims[2] as usize,
        pixels: data.to_vec(),
    })
}

/// Parses (already decompressed or gzipped) bytes of an idx1 label file.
pub fn parse_labels(path: &Path, bytes: Vec<u8>) -> Result<Vec<u8>, IdxError> {
    let bytes = decompress(path, bytes, LABELS_MAGIC)?;
    let (_, data) = parse_header(path, &bytes, LABELS_MAGIC, "labels (idx1-ubyte)")?;
    Ok(data.to_vec())
}

/// Reads an idx3 image file, raw or gzipped.
pub fn read_images(path: &Path) -> Result<IdxImages, IdxError> {
    parse_images(path, read_file(path, IMAGES_MAGIC)?)
}

/// Reads an idx1 label file, raw or gzipped.
pub fn read_labels(path: &Path) -> Result<Vec<u8>, IdxError> {
    parse_labels(path, read_file(path, LABELS_MAGIC)?)
}

/// Checks that an image file and a label file describe the same number of examples.
pub fn check_counts(
    images_path: &Path,
    images: &IdxImages,
    labels_path: &Path,
    labels: &[u8],
) -> Result<(), IdxError> {
    if images.count != labels.len() {
        return Err(IdxError::CountMismatch {
            images: images_path.to_owned(),
            image_count: images.count,
            labels: labels_path.to_owned(),
            label_count: labels.len(),
        });
    }
    Ok(())
}

/// Encodes images as IDX bytes (uncompressed).
pub fn encode_images(images: &IdxImages) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + images.pixels.len());
    out.extend_from_slice(&IMAGES_MAGIC.to_be_bytes());
    for d in [images.count, images.rows, images.cols] {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(&images.pixels);
    out
}

/// Encodes labels as IDX bytes (uncompressed).
pub fn encode_labels(labels: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + labels.len());
    out.extend_from_slice(&LABELS_MAGIC.to_be_bytes());
    out.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    out.extend_from_slice(labels);
    out
}

/// Gzips bytes (used to write test fixtures and exported subsets).
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}
