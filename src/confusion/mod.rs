//! The confusion matrix of a classifier on one split: counts by true and predicted class, the
//! error of each class, and (in `png`) a picture of it. `ltmlp eval`, the trainer's epoch
//! evaluations, `summary.json`, the sweep report and the dashboard all use this one type.

pub mod png;

use serde::{Deserialize, Serialize};

/// Classifiers with more classes get no confusion matrix during training: each epoch's
/// metrics line would carry classes² counts (10⁴ at this limit) for a picture nobody can read.
pub const MAX_TRAINING_CLASSES: usize = 100;

/// `counts[true][predicted]`: how many examples of each true class got each prediction.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Confusion {
    pub counts: Vec<Vec<usize>>,
}

impl Confusion {
    /// An empty matrix of `classes` × `classes`.
    pub fn new(classes: usize) -> Self {
        Confusion {
            counts: vec![vec![0; classes]; classes],
        }
    }

    pub fn classes(&self) -> usize {
        self.counts.len()
    }

    /// Examples counted.
    pub fn examples(&self) -> usize {
        self.counts.iter().flatten().sum()
    }

    /// Examples of each true class.
    pub fn class_counts(&self) -> Vec<usize> {
        self.counts.iter().map(|row| row.iter().sum()).collect()
    }

    /// Misclassified examples (off the diagonal).
    pub fn errors(&self) -> usize {
        self.examples()
            - (0..self.classes())
                .map(|c| self.counts[c][c])
                .sum::<usize>()
    }

    /// Error % over all examples (0 for none).
    pub fn error_percent(&self) -> f64 {
        100.0 * self.errors() as f64 / self.examples().max(1) as f64
    }

    /// Error % of each true class (row); none for a class without examples, so that no NaN
    /// reaches JSON.
    pub fn per_class_error(&self) -> Vec<Option<f64>> {
        self.counts
            .iter()
            .enumerate()
            .map(|(c, row)| {
                let n: usize = row.iter().sum();
                (n > 0).then(|| 100.0 * (n - row[c]) as f64 / n as f64)
            })
            .collect()
    }
}

/// The confusion matrices of one epoch evaluation: the monitored split (`validation`, which
/// is the test set under `data.monitor = "test"`) and the test split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochConfusion {
    /// The data's label of each class, in class-index order.
    pub labels: Vec<i64>,
    pub validation: Confusion,
    pub test: Confusion,
}

/// Per-class error % at the end of a run (`summary.json`), in the order of `labels`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PerClassError {
    pub labels: Vec<i64>,
    /// On the monitored split at the last evaluation.
    pub final_validation: Vec<Option<f64>>,
    /// On the test split at the last evaluation.
    pub final_test: Vec<Option<f64>>,
    /// On the test split at the evaluation with the best validation result (the network a
    /// user keeps with early stopping).
    pub test_at_best: Vec<Option<f64>>,
    /// Test examples of each class: the weights that turn the per-class errors into the
    /// overall test error.
    pub test_examples: Vec<usize>,
}

impl PerClassError {
    /// From the last and the best evaluation's matrices (either may be missing).
    pub fn of(last: Option<&EpochConfusion>, best: Option<&EpochConfusion>) -> Option<Self> {
        let any = last.or(best)?;
        let per = |c: Option<&EpochConfusion>, pick: fn(&EpochConfusion) -> &Confusion| {
            c.map_or_else(Vec::new, |c| pick(c).per_class_error())
        };
        Some(PerClassError {
            labels: any.labels.clone(),
            final_validation: per(last, |c| &c.validation),
            final_test: per(last, |c| &c.test),
            test_at_best: per(best, |c| &c.test),
            test_examples: any.test.class_counts(),
        })
    }
}

/// The matrix as text: rows are true classes, columns predictions, each row's error at the end.
pub fn text(labels: &[i64], confusion: &Confusion) -> String {
    let names: Vec<String> = (0..confusion.classes())
        .map(|c| {
            labels
                .get(c)
                .map_or_else(|| c.to_string(), |l| l.to_string())
        })
        .collect();
    let widest_count = confusion
        .counts
        .iter()
        .flatten()
        .max()
        .map_or(1, |m| m.to_string().len());
    let w = names
        .iter()
        .map(String::len)
        .max()
        .unwrap_or(1)
        .max(widest_count)
        + 1;
    let mut s = format!(
        "confusion (rows: true class, columns: predicted)\n{:>w$} ",
        ""
    );
    for l in &names {
        s += &format!("{l:>w$}");
    }
    s += "   error\n";
    for ((name, row), error) in names
        .iter()
        .zip(&confusion.counts)
        .zip(confusion.per_class_error())
    {
        s += &format!("{name:>w$} ");
        for v in row {
            s += &format!("{v:>w$}");
        }
        match error {
            Some(e) => s += &format!("  {e:5.1}%\n"),
            None => s += "      -\n",
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Confusion {
        Confusion {
            counts: vec![vec![8, 2, 0], vec![1, 3, 0], vec![0, 0, 0]],
        }
    }

    #[test]
    fn per_class_errors_weighted_by_class_counts_give_the_error() {
        let c = sample();
        assert_eq!(c.examples(), 14);
        assert_eq!(c.errors(), 3);
        let per = c.per_class_error();
        assert_eq!(per, vec![Some(20.0), Some(25.0), None]);
        let weighted: f64 = per
            .iter()
            .zip(c.class_counts())
            .map(|(e, n)| e.unwrap_or(0.0) * n as f64)
            .sum::<f64>()
            / c.examples() as f64;
        assert!((weighted - c.error_percent()).abs() < 1e-12);
    }

    #[test]
    fn text_names_the_labels_and_each_row_error() {
        let t = text(&[3, 7, 9], &sample());
        assert!(t.contains(" 3  8 2 0   20.0%"), "{t}");
        assert!(t.contains(" 9  0 0 0      -"), "{t}");
    }
}
