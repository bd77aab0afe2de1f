//! The comparison view (`ltmlp tui --compare DIR`) drawn into ratatui's `TestBackend` from a
//! synthetic state, compared with committed insta snapshots at every supported size; and the
//! folder check that refuses what is not a comparison.

use ltmlp::compare::aggregate::CurvePoint;
use ltmlp::compare::{Stat, VariantReport};
use ltmlp::tui::compare::{check_folder, draw, CompareError, CompareState};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

/// The sizes every layout must stay legible at.
const SIZES: [(u16, u16); 4] = [(60, 16), (80, 24), (120, 40), (200, 60)];

fn stat(mean: f64, std: f64, n: usize) -> Option<Stat> {
    Some(Stat { mean, std, n })
}

/// A variant whose mean validation error falls from `start` towards `floor` over `epochs`.
fn variant(name: &str, start: f64, floor: f64, epochs: usize, in_progress: usize) -> VariantReport {
    let curve: Vec<CurvePoint> = (1..=epochs)
        .map(|epoch| {
            let mean = floor + (start - floor) / epoch as f64;
            CurvePoint {
                epoch,
                examples: (epoch * 1000) as f64,
                seconds: epoch as f64,
                mean,
                min: mean - 0.1,
                max: mean + 0.1,
                runs: 3,
            }
        })
        .collect();
    let last = curve.last().map_or(f64::NAN, |p| p.mean);
    VariantReport {
        variant: name.to_string(),
        setting: Vec::new(),
        label: name.to_string(),
        runs: 3,
        counted: 3 - in_progress,
        in_progress,
        failed: Vec::new(),
        metric: "validation error %".to_string(),
        final_validation: stat(last, 0.05, 3),
        best_validation: stat(last - 0.02, 0.04, 3),
        test_at_best: stat(last + 0.1, 0.06, 3),
        final_train_loss: stat(0.01, 0.001, 3),
        target: None,
        reached_target: 0,
        epochs_to_target: None,
        examples_to_target: None,
        seconds_to_target: None,
        train_loss_at: Vec::new(),
        collapsed_at_end: stat(0.0, 0.0, 3),
        per_class_test_at_best: Vec::new(),
        validation_curve: curve,
        train_loss_curve: Vec::new(),
        config: Default::default(),
    }
}

fn state() -> CompareState {
    CompareState {
        folder: "runs/compare-demo".to_string(),
        reports: vec![
            variant("none", 9.0, 3.0, 12, 0),
            variant("ab", 7.0, 1.8, 12, 0),
            variant("abg", 5.0, 1.5, 9, 2),
        ],
        runs: 9,
        in_progress: 2,
        log_scale: false,
        error: None,
    }
}

fn render(state: &CompareState, width: u16, height: u16) -> TestBackend {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test backend");
    terminal.draw(|frame| draw(frame, state)).expect("draw");
    terminal.backend().clone()
}

fn text(backend: &TestBackend) -> String {
    let buffer = backend.buffer();
    let width = buffer.area.width as usize;
    buffer
        .content
        .chunks(width)
        .map(|row| row.iter().map(|c| c.symbol()).collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn compare_view_at_every_size() {
    for (width, height) in SIZES {
        insta::assert_snapshot!(
            format!("compare_view_{width}x{height}"),
            render(&state(), width, height)
        );
    }
}

#[test]
fn compare_view_keeps_its_legend_and_counts_at_80x24() {
    let screen = text(&render(&state(), 80, 24));
    assert!(
        screen.contains("7 of 9 runs finished, 2 in progress"),
        "{screen}"
    );
    for name in ["━ none", "━ ab", "━ abg"] {
        assert!(
            screen.contains(name),
            "legend entry {name} missing:\n{screen}"
        );
    }
    // Every variant has its row in the table, with its best figure.
    for line in ["none", "ab", "abg"] {
        assert!(
            screen
                .lines()
                .any(|l| l.trim_start_matches('│').split_whitespace().next() == Some(line)),
            "no table row for {line}:\n{screen}"
        );
    }
}

#[test]
fn compare_view_log_scale() {
    let mut state = state();
    state.log_scale = true;
    insta::assert_snapshot!("compare_view_log_80x24", render(&state, 80, 24));
}

#[test]
fn a_folder_that_is_not_a_comparison_is_refused_with_the_way_out() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let refused = check_folder(&empty).unwrap_err();
    assert!(matches!(refused, CompareError::NoRuns(_)), "{refused}");
    assert!(
        refused.to_string().contains("ltmlp compare PRESET --out"),
        "{refused}"
    );

    let run = tmp.path().join("run");
    std::fs::create_dir(&run).unwrap();
    std::fs::write(run.join(ltmlp::sink::CONFIG_FILE), "name = \"x\"\n").unwrap();
    let refused = check_folder(&run).unwrap_err();
    assert!(matches!(refused, CompareError::SingleRun(_)), "{refused}");
    assert!(refused.to_string().contains("ltmlp watch"), "{refused}");
}
