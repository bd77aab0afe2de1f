//! The loaders beside IDX — CIFAR-10, NumPy `.npz` / `.npy`, CSV — on small generated files:
//! what they read, how labels become classes, regression targets, standardisation, and the
//! errors that name the file, row or array, and column.

use std::path::Path;

use ltmlp::data::csvfile::ColumnRef;
use ltmlp::data::{self, npy, prepare, DataSource, Preprocess, ReadOptions, TargetKind, Targets};

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn source(path: &Path, options: ReadOptions) -> DataSource {
    DataSource::Path(path.to_owned(), options)
}

fn prep(targets: TargetKind, validation: usize) -> Preprocess {
    Preprocess {
        downsample: 1,
        validation_size: Some(validation),
        targets,
        ..Preprocess::default()
    }
}

/// An npz of `n` train and `m` test examples of shape (2, 3) with the given labels.
fn npz(dir: &Path, train_labels: &[i64], test_labels: &[i64]) -> std::path::PathBuf {
    let x = |n: usize| {
        npy::encode_f32(
            &[n, 2, 3],
            &(0..n * 6).map(|i| i as f32).collect::<Vec<_>>(),
        )
    };
    let arrays = vec![
        ("x_train".to_string(), x(train_labels.len())),
        (
            "y_train".to_string(),
            npy::encode_i64(&[train_labels.len()], train_labels),
        ),
        ("x_test".to_string(), x(test_labels.len())),
        (
            "y_test".to_string(),
            npy::encode_i64(&[test_labels.len()], test_labels),
        ),
    ];
    let path = dir.join("d.npz");
    npy::write_npz(std::fs::File::create(&path).unwrap(), &arrays).unwrap();
    path
}

#[test]
fn npz_inputs_are_flattened_and_any_integer_labels_become_classes() {
    let dir = tempfile::tempdir().unwrap();
    let path = npz(dir.path(), &[10, -4, 10, 99, -4, 10], &[99, -4]);
    let raw = data::load(&source(&path, ReadOptions::default())).unwrap();
    assert_eq!(raw.train.shape, vec![2, 3]);
    let d = prepare::<f64>(&raw, &prep(TargetKind::Classes, 2)).unwrap();
    assert_eq!(d.class_labels, vec![-4, 10, 99]);
    assert_eq!(d.input_dim(), 6);
    assert_eq!(d.train.class_indices(), &[1, 0, 1, 2]);
    assert_eq!(d.test.class_indices(), &[2, 0]);
    // Row 1 of x_train is 6..12, flattened in C order.
    assert_eq!(
        d.train.input(1).to_vec(),
        vec![6.0, 7.0, 8.0, 9.0, 10.0, 11.0]
    );
}

#[test]
fn a_test_label_outside_the_training_classes_names_the_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = npz(dir.path(), &[0, 1, 0, 1], &[1, 5]);
    let raw = data::load(&source(&path, ReadOptions::default())).unwrap();
    let message = prepare::<f64>(&raw, &prep(TargetKind::Classes, 1))
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("label 5") && message.contains("example 1"),
        "{message}"
    );
}

#[test]
fn a_missing_npz_array_names_it_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = npz(dir.path(), &[0, 1], &[1]);
    let mut options = ReadOptions::default();
    options.arrays.x_train = "images".into();
    let message = data::load(&source(&path, options)).unwrap_err().to_string();
    assert!(
        message.contains("`images`") && message.contains("data.arrays.x_train"),
        "{message}"
    );
}

#[test]
fn npy_pairs_in_a_folder_are_detected() {
    let dir = tempfile::tempdir().unwrap();
    let x = npy::encode_u8(&[4, 2], &[0, 255, 51, 102, 0, 0, 255, 255]);
    write(dir.path(), "x_train.npy", &x);
    write(dir.path(), "x_test.npy", &x);
    let y = npy::encode_f64(&[4, 2], &[0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0]);
    write(dir.path(), "y_train.npy", &y);
    write(dir.path(), "y_test.npy", &y);
    let raw = data::load(&source(dir.path(), ReadOptions::default())).unwrap();
    assert_eq!(raw.format, data::DataFormat::Npy);
    let d = prepare::<f64>(&raw, &prep(TargetKind::Values, 1)).unwrap();
    // Bytes are pixels: scaled to [0, 1].
    assert_eq!(d.train.input(0).to_vec(), vec![0.0, 1.0]);
    let Targets::Values(v) = d.test.targets() else {
        panic!("values expected")
    };
    assert_eq!(v.dim(), (4, 2));
    assert_eq!(v[(3, 1)], 4.0);
}

#[test]
fn a_lying_npy_header_is_refused_without_allocating() {
    // The header promises 2^40 float64 elements; the file holds 16 bytes of data.
    let mut bytes = npy::encode_f64(&[2], &[1.0, 2.0]);
    let text = String::from_utf8_lossy(&bytes[10..]).replace("(2,)", "(1099511627776,)");
    bytes.truncate(10);
    bytes.extend_from_slice(text.as_bytes());
    let header_len = (text.find('\n').unwrap() + 1) as u16;
    bytes[8..10].copy_from_slice(&header_len.to_le_bytes());
    let message = npy::parse(Path::new("big.npy"), "x", &bytes)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("big.npy") && message.contains("`x`") && message.contains("needs"),
        "{message}"
    );
}

#[test]
fn npy_dtypes_round_trip_and_big_endian_is_read() {
    let a = npy::parse(Path::new("a"), "a", &npy::encode_i64(&[3], &[-5, 0, 7])).unwrap();
    assert_eq!(a.data, npy::NpyData::Int(vec![-5, 0, 7]));
    // A big-endian int16 array written by hand.
    let mut header = "{'descr': '>i2', 'fortran_order': False, 'shape': (2,), }".to_string();
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(&[0xff, 0xfe, 0x01, 0x00]);
    let b = npy::parse(Path::new("b"), "b", &bytes).unwrap();
    assert_eq!(b.data, npy::NpyData::Int(vec![-2, 256]));
}

fn csv_table(dir: &Path) -> std::path::PathBuf {
    let mut text = String::from("a,b,kind,y\n");
    for i in 0..10 {
        text += &format!("{},{},{},{}\n", i, 2 * i + 1, i % 2 * 5, 0.5 * i as f64);
    }
    write(dir, "t.csv", text.as_bytes())
}

#[test]
fn csv_target_by_name_features_standardised_on_the_training_split() {
    let dir = tempfile::tempdir().unwrap();
    let path = csv_table(dir.path());
    let mut options = ReadOptions::default();
    options.csv.targets = vec![ColumnRef::Name("y".into()), ColumnRef::Index(2)];
    let raw = data::load(&source(&path, options)).unwrap();
    // The last fifth of the rows is the test split.
    assert_eq!((raw.train.count, raw.test.count), (8, 2));
    let mut p = prep(TargetKind::Values, 2);
    p.standardize = true;
    let d = prepare::<f64>(&raw, &p).unwrap();
    assert_eq!(d.input_dim(), 2);
    let train = d.train.inputs();
    for j in 0..2 {
        let col = train.column(j);
        let mean = col.sum() / col.len() as f64;
        let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / col.len() as f64;
        assert!(
            mean.abs() < 1e-12 && (var - 1.0).abs() < 1e-12,
            "column {j}: {mean} {var}"
        );
    }
    // Training statistics only: rows 0..6 of `a` have mean 2.5.
    assert!((d.normalisation.mean[0] - 2.5).abs() < 1e-12);
    let Targets::Values(v) = d.test.targets() else {
        panic!()
    };
    assert_eq!(v.row(1).to_vec(), vec![4.5, 5.0]);
}

#[test]
fn csv_errors_name_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "bad.csv", b"x1,x2,label\n1,2,0\n3,oops,1\n");
    let message = data::load(&source(&path, ReadOptions::default()))
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("bad.csv")
            && message.contains("line 3")
            && message.contains("x2")
            && message.contains("oops"),
        "{message}"
    );
    let mut options = ReadOptions::default();
    options.csv.targets = vec![ColumnRef::Name("nope".into())];
    let message = data::load(&source(&path, options)).unwrap_err().to_string();
    assert!(
        message.contains("no column `nope`") && message.contains("x1, x2, label"),
        "{message}"
    );
    let path = write(dir.path(), "frac.csv", b"1,0.5\n2,1\n3,0\n4,1\n5,0\n");
    let raw = data::load(&source(&path, ReadOptions::default())).unwrap();
    let message = prepare::<f64>(&raw, &prep(TargetKind::Classes, 1))
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("line 1") && message.contains("0.5"),
        "{message}"
    );
}

fn cifar_record(label: u8, fill: impl Fn(usize, usize) -> u8) -> Vec<u8> {
    let mut r = vec![label];
    for c in 0..3 {
        for p in 0..1024 {
            r.push(fill(c, p));
        }
    }
    r
}

#[test]
fn cifar_batches_grayscale_and_pooling() {
    let dir = tempfile::tempdir().unwrap();
    let mut batch = Vec::new();
    for n in 0..4u8 {
        batch.extend(cifar_record(n, |c, _| [255, 0, 0][c]));
    }
    write(dir.path(), "data_batch_1.bin", &batch);
    write(
        dir.path(),
        "data_batch_2.bin",
        &cifar_record(9, |c, p| if c == 1 { (p % 2 * 255) as u8 } else { 0 }),
    );
    write(dir.path(), "test_batch.bin", &batch);
    let raw = data::load(&source(dir.path(), ReadOptions::default())).unwrap();
    assert_eq!(raw.format, data::DataFormat::Cifar10);
    assert_eq!(
        (raw.train.count, raw.train.shape.clone()),
        (5, vec![3, 32, 32])
    );
    let d = prepare::<f64>(&raw, &prep(TargetKind::Classes, 1)).unwrap();
    assert_eq!(d.input_dim(), 3072);
    let mut p = prep(TargetKind::Classes, 1);
    p.grayscale = true;
    p.downsample = 2;
    let d = prepare::<f64>(&raw, &p).unwrap();
    assert_eq!(
        (d.input_dim(), d.input_shape.clone()),
        (256, vec![1, 16, 16])
    );
    // Pure red is luma 0.299; the striped green image pools to half of 0.587.
    assert!((d.train.input(0)[0] - 0.299).abs() < 1e-12);
    assert!((d.validation.input(0)[7] - 0.587 / 2.0).abs() < 1e-12);
    // A cut-short batch names the file and the record.
    write(dir.path(), "data_batch_2.bin", &batch[..5000]);
    let message = data::load(&source(dir.path(), ReadOptions::default()))
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("data_batch_2.bin") && message.contains("record 2"),
        "{message}"
    );
}
