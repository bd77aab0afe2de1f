//! CSV tables: a header row or none, the target column(s) by name or 0-based index (default:
//! the last column), every other column a numeric feature. Errors name the file, the row (as a
//! 1-based line of the file) and the column.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::bounded::{self, FileKind, ReadError};

/// A column, by header name or 0-based index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ColumnRef {
    Index(usize),
    Name(String),
}

impl std::fmt::Display for ColumnRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ColumnRef::Index(i) => write!(f, "{i}"),
            ColumnRef::Name(n) => write!(f, "`{n}`"),
        }
    }
}

/// How to read a table.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CsvOptions {
    /// Whether the first row names the columns; `None`: it does if any of its fields is not a number.
    pub header: Option<bool>,
    /// Target columns; empty: the last column.
    pub targets: Vec<ColumnRef>,
}

#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("{path}: line {line}: {reason}")]
    Malformed {
        path: PathBuf,
        line: u64,
        reason: String,
    },
    #[error(
        "{path}: line {line}, column {column}: {value:?} is not finite; every value must be a \
         finite number: fill in or drop that row"
    )]
    NotFinite {
        path: PathBuf,
        line: u64,
        column: String,
        value: String,
    },
    #[error("{path}: line {line}, column {column}: {value:?} is not a number")]
    NotANumber {
        path: PathBuf,
        line: u64,
        column: String,
        value: String,
    },
    #[error("{path}: line {line}: {found} fields, but the first row has {expected}")]
    Ragged {
        path: PathBuf,
        line: u64,
        found: usize,
        expected: usize,
    },
    #[error("{path}: data.target_columns: no column {column}; the columns are {columns}")]
    NoColumn {
        path: PathBuf,
        column: ColumnRef,
        columns: String,
    },
    #[error("{path}: no data rows")]
    Empty { path: PathBuf },
    #[error("{path}: every column is a target; at least one feature column is needed")]
    NoFeatures { path: PathBuf },
}

/// A numeric table split into features and targets, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub rows: usize,
    pub feature_names: Vec<String>,
    pub target_names: Vec<String>,
    pub features: Vec<f64>,
    pub targets: Vec<f64>,
    /// The file line of each row (for messages about a row).
    pub lines: Vec<u64>,
}

/// Reads a CSV file.
pub fn read(path: &Path, options: &CsvOptions) -> Result<Table, CsvError> {
    parse(path, &bounded::read(path, FileKind::Csv)?, options)
}

/// Parses CSV bytes; `path` is for messages.
pub fn parse(path: &Path, bytes: &[u8], options: &CsvOptions) -> Result<Table, CsvError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let mut records = reader.records();
    let malformed = |e: csv::Error| CsvError::Malformed {
        path: path.to_owned(),
        line: e.position().map_or(0, |p| p.line()),
        reason: e.to_string(),
    };
    let first = match records.next() {
        Some(r) => r.map_err(malformed)?,
        None => {
            return Err(CsvError::Empty {
                path: path.to_owned(),
            })
        }
    };
    let width = first.len();
    let header = options
        .header
        .unwrap_or_else(|| first.iter().any(|f| f.parse::<f64>().is_err()));
    let names: Vec<String> = if header {
        first.iter().map(str::to_string).collect()
    } else {
        (0..width).map(|i| i.to_string()).collect()
    };
    let columns = || names.join(", ");
    let mut target_idx = Vec::new();
    if options.targets.is_empty() {
        target_idx.push(width.saturating_sub(1));
    }
    for column in &options.targets {
        let idx = match column {
            ColumnRef::Index(i) => (*i < width).then_some(*i),
            ColumnRef::Name(n) => names.iter().position(|m| m == n),
        };
        target_idx.push(idx.ok_or_else(|| CsvError::NoColumn {
            path: path.to_owned(),
            column: column.clone(),
            columns: columns(),
        })?);
    }
    let feature_idx: Vec<usize> = (0..width).filter(|i| !target_idx.contains(i)).collect();
    if feature_idx.is_empty() {
        return Err(CsvError::NoFeatures {
            path: path.to_owned(),
        });
    }
    let mut table = Table {
        rows: 0,
        feature_names: feature_idx.iter().map(|&i| names[i].clone()).collect(),
        target_names: target_idx.iter().map(|&i| names[i].clone()).collect(),
        features: Vec::new(),
        targets: Vec::new(),
        lines: Vec::new(),
    };
    let add = |record: &csv::StringRecord, table: &mut Table| -> Result<(), CsvError> {
        let line = record.position().map_or(0, |p| p.line());
        if record.len() != width {
            return Err(CsvError::Ragged {
                path: path.to_owned(),
                line,
                found: record.len(),
                expected: width,
            });
        }
        let number = |i: usize| {
            let column = || format!("{} ({})", i, names[i]);
            match record[i].parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(v),
                Ok(_) => Err(CsvError::NotFinite {
                    path: path.to_owned(),
                    line,
                    column: column(),
                    value: record[i].to_string(),
                }),
                Err(_) => Err(CsvError::NotANumber {
                    path: path.to_owned(),
                    line,
                    column: column(),
                    value: record[i].to_string(),
                }),
            }
        };
        for &i in &feature_idx {
            table.features.push(number(i)?);
        }
        for &i in &target_idx {
            table.targets.push(number(i)?);
        }
        table.lines.push(line);
        table.rows += 1;
        Ok(())
    };
    if !header {
        add(&first, &mut table)?;
    }
    for record in records {
        let record = record.map_err(malformed)?;
        if record.len() == 1 && record[0].is_empty() {
            continue;
        }
        add(&record, &mut table)?;
    }
    if table.rows == 0 {
        return Err(CsvError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(table)
}
