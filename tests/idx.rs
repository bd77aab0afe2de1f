//! The IDX reader: round trips, the embedded subset's known facts, and one distinct error per
//! kind of damage.

use std::path::Path;

use ltmlp::data::idx::{self, IdxImages};
use ltmlp::data::source::RawTargets;
use ltmlp::data::{self, DataSource, SourceError};

fn sample_images() -> IdxImages {
    IdxImages {
        count: 3,
        rows: 2,
        cols: 4,
        pixels: (0..24).map(|i| (i * 10) as u8).collect(),
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn round_trip_raw_and_gzipped() {
    let dir = tempfile::tempdir().unwrap();
    let images = sample_images();
    let labels = vec![5u8, 0, 4];
    let raw = write(dir.path(), "img", &idx::encode_images(&images));
    let gz = write(
        dir.path(),
        "img.gz",
        &idx::gzip(&idx::encode_images(&images)),
    );
    assert_eq!(idx::read_images(&raw).unwrap(), images);
    assert_eq!(idx::read_images(&gz).unwrap(), images);
    let lab = write(
        dir.path(),
        "lab.gz",
        &idx::gzip(&idx::encode_labels(&labels)),
    );
    assert_eq!(idx::read_labels(&lab).unwrap(), labels);
}

fn error_for(name: &str, bytes: &[u8], labels: bool) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), name, bytes);
    let result = if labels {
        idx::read_labels(&path).map(|_| ())
    } else {
        idx::read_images(&path).map(|_| ())
    };
    let message = result.unwrap_err().to_string();
    assert!(
        message.contains(name),
        "message must name the file: {message}"
    );
    message
}

#[test]
fn each_kind_of_damage_has_its_own_message() {
    let good = idx::encode_images(&sample_images());

    let mut bad_magic = good.clone();
    bad_magic[3] = 0x01;
    let magic = error_for("magic", &bad_magic, false);
    assert!(magic.contains("bad magic number 0x00000801"), "{magic}");

    let truncated = error_for("truncated", &good[..good.len() - 5], false);
    assert!(
        truncated.contains("truncated") && truncated.contains("24 bytes"),
        "{truncated}"
    );

    let short = error_for("short", &good[..10], false);
    assert!(short.contains("too short for an IDX header"), "{short}");

    let mut zero_dim = good.clone();
    zero_dim[8..12].copy_from_slice(&0u32.to_be_bytes());
    let dims = error_for("dims", &zero_dim, false);
    assert!(dims.contains("wrong dimensions"), "{dims}");

    let mut trailing = good.clone();
    trailing.extend_from_slice(&[1, 2, 3]);
    let extra = error_for("extra", &trailing, false);
    assert!(extra.contains("3 bytes beyond"), "{extra}");

    let gz = idx::gzip(&good);
    let corrupt = error_for("corrupt.gz", &gz[..gz.len() / 2], false);
    assert!(corrupt.contains("corrupt or truncated gzip"), "{corrupt}");

    let label_magic = error_for("labels-as-images", &idx::encode_labels(&[1, 2]), false);
    assert!(label_magic.contains("bad magic"), "{label_magic}");

    let messages = [&magic, &truncated, &short, &dims, &extra, &corrupt];
    for (i, a) in messages.iter().enumerate() {
        for b in &messages[i + 1..] {
            assert_ne!(a, b);
        }
    }
}

#[test]
fn count_mismatch_between_images_and_labels_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let images = sample_images();
    for (name, bytes) in [
        ("train-images-idx3-ubyte", idx::encode_images(&images)),
        ("t10k-images-idx3-ubyte", idx::encode_images(&images)),
        ("t10k-labels-idx1-ubyte", idx::encode_labels(&[1, 2, 3])),
        ("train-labels-idx1-ubyte", idx::encode_labels(&[1, 2])),
    ] {
        write(dir.path(), name, &bytes);
    }
    let err = data::load(&DataSource::Path(dir.path().to_owned(), Default::default())).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, SourceError::Idx(_)), "{message}");
    assert!(
        message.contains("holds 3 images") && message.contains("holds 2 labels"),
        "{message}"
    );
}

#[test]
fn a_missing_file_names_what_the_directory_must_hold() {
    let dir = tempfile::tempdir().unwrap();
    let message = data::load(&DataSource::Path(dir.path().to_owned(), Default::default()))
        .unwrap_err()
        .to_string();
    assert!(message.contains("train-images-idx3-ubyte"), "{message}");
}

#[test]
fn never_panics_on_arbitrary_bytes() {
    let mut state = 0x1234_5678u32;
    for len in 0..200usize {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (state >> 24) as u8
            })
            .collect();
        let _ = idx::parse_images(Path::new("fuzz"), bytes.clone());
        let _ = idx::parse_labels(Path::new("fuzz"), bytes);
    }
}

#[test]
fn embedded_subset_matches_its_published_facts() {
    let raw = data::load(&DataSource::Embedded).unwrap();
    assert_eq!(raw.train.count, 6000);
    assert_eq!(raw.test.count, 1000);
    assert_eq!(raw.train.shape, vec![28, 28]);
    let labels = |t: &RawTargets| match t {
        RawTargets::Labels(l) => l[..5].to_vec(),
        RawTargets::Values { .. } => panic!("IDX labels are integers"),
    };
    assert_eq!(labels(&raw.train.targets), [5, 0, 4, 1, 9]);
    assert_eq!(labels(&raw.test.targets), [7, 2, 1, 0, 4]);
}
