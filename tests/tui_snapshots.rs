//! The dashboard drawn into ratatui's `TestBackend`, compared with committed insta snapshots.
//! The app state is built from synthetic events, so nothing here depends on a clock.

mod tui_common;
use tui_common as common;

use ltmlp::train::Event;
use ltmlp::tui::{view, App};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

fn render(app: &App, width: u16, height: u16) -> TestBackend {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test backend");
    terminal.draw(|frame| view::draw(frame, app)).expect("draw");
    terminal.backend().clone()
}

/// The sizes every layout must stay legible at.
const SIZES: [(u16, u16); 4] = [(60, 16), (80, 24), (120, 40), (200, 60)];

#[test]
fn main_screen_at_every_size() {
    for (w, h) in SIZES {
        let screen = render(&common::mid_run(), w, h);
        insta::assert_snapshot!(format!("main_{w}x{h}"), screen);
    }
}

#[test]
fn unit_view_with_cursor_at_every_size() {
    let mut app = common::mid_run();
    app.unit_view = true;
    app.unit_cursor = 5;
    for (w, h) in SIZES {
        insta::assert_snapshot!(format!("units_{w}x{h}"), render(&app, w, h));
    }
}

#[test]
fn chart_with_alerts_at_every_size() {
    let mut app = common::overfitting();
    app.chart = true;
    for (w, h) in SIZES {
        insta::assert_snapshot!(format!("chart_alerts_{w}x{h}"), render(&app, w, h));
    }
}

#[test]
fn help_at_every_size() {
    let mut app = common::mid_run();
    app.help = true;
    for (w, h) in SIZES {
        insta::assert_snapshot!(format!("help_{w}x{h}"), render(&app, w, h));
    }
}

#[test]
fn main_screen_80x24() {
    insta::assert_snapshot!(render(&common::mid_run(), 80, 24));
}

#[test]
fn main_screen_120x40() {
    insta::assert_snapshot!(render(&common::mid_run(), 120, 40));
}

#[test]
fn help_popup() {
    let mut app = common::mid_run();
    app.help = true;
    insta::assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn unit_view() {
    let mut app = common::mid_run();
    app.unit_view = true;
    insta::assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn unit_view_120x40() {
    let mut app = common::mid_run();
    app.selected = 1;
    app.unit_view = true;
    insta::assert_snapshot!(render(&app, 120, 40));
}

#[test]
fn diverged_state() {
    insta::assert_snapshot!(render(&common::diverged(), 80, 24));
}

#[test]
fn loss_chart_log_scale() {
    let mut app = common::mid_run();
    app.chart = true;
    app.log_scale = true;
    app.marker = ltmlp::tui::app::ChartMarker::HalfBlock;
    insta::assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn confirm_quit() {
    let mut app = common::mid_run();
    app.confirm_quit = true;
    insta::assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn too_small() {
    insta::assert_snapshot!(render(&common::mid_run(), 40, 10));
}

#[test]
fn too_small_asks_before_quitting() {
    let mut app = common::mid_run();
    app.confirm_quit = true;
    let screen = render(&app, 40, 10).to_string();
    assert!(screen.contains("s stops and saves, d detaches"), "{screen}");
}

/// A baseline run's dashboard says why α β γ do nothing there, and an Adam run shows its
/// optimizer where SGD shows momentum.
#[test]
fn baseline_runs_say_what_does_not_apply() {
    use ltmlp::net::Flags;
    use ltmlp::preset::OptimizerKind;
    use ltmlp::train::Event;
    let text = |variant: &str, optimizer: OptimizerKind| {
        let mut app = App::new(Flags::NONE);
        let mut info = common::info();
        info.variant = variant.into();
        info.optimizer = optimizer;
        app.on_event(Event::Started(info));
        app.on_event(Event::Progress(common::progress(5, 1.0)));
        let screen = render(&app, 120, 40);
        let buffer = screen.buffer();
        let area = buffer.area;
        (0..area.height)
            .map(|y| {
                (0..area.width)
                    .map(|x| buffer[(x, y)].symbol().to_string())
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let bn = text("bn", OptimizerKind::Sgd);
    assert!(bn.contains("not on bn runs") && bn.contains("mom"), "{bn}");
    let adam = text("none", OptimizerKind::Adam);
    assert!(
        adam.contains("not under Adam") && adam.contains("opt adam"),
        "{adam}"
    );
    assert!(!adam.contains("mom 0."), "{adam}");
    let ab = text("ab", OptimizerKind::Sgd);
    assert!(ab.contains("a b g switch"), "{ab}");
}

/// `x` opens the confusion matrix of the latest evaluation; any key but x, q or esc leaves it.
#[test]
fn confusion_matrix_80x24() {
    use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let key = |c| KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE);
    let mut app = common::mid_run();
    let mut m = common::epoch(4, 0.3);
    m.confusion = Some(Box::new(common::confusion()));
    app.on_event(ltmlp::train::Event::Epoch(Box::new(m)));
    app.on_key(key('x'));
    assert!(app.confusion_view);
    app.on_key(key('w'));
    assert!(app.confusion_view, "keys never act behind the popup");
    insta::assert_snapshot!(render(&app, 80, 24));
    app.on_key(key('x'));
    assert!(!app.confusion_view);
}

/// A dashboard on a regression run that has started.
fn regression_run() -> App {
    let mut app = App::new(ltmlp::net::Flags::NONE);
    app.on_event(ltmlp::train::Event::Started(ltmlp::train::RunInfo {
        classify: false,
        task: Some(ltmlp::preset::Task::Regress),
        topology: "8-16-16-1(linear)".into(),
        ..common::info()
    }));
    app
}

/// A regression run's `x` says there is no confusion matrix, and why.
#[test]
fn confusion_key_on_a_regression_run_80x24() {
    let mut app = regression_run();
    app.on_event(Event::Epoch(Box::new(common::epoch(1, 0.4))));
    app.confusion_view = true;
    let screen = render(&app, 80, 24);
    assert!(screen.to_string().contains("regression run"), "{screen:?}");
    insta::assert_snapshot!(screen);
}

/// A regression run's loss panel says its losses are mean squared errors; a classifier's
/// does not.
#[test]
fn regression_loss_panel_names_mse() {
    let mut app = regression_run();
    for epoch in 1..=6 {
        app.on_event(Event::Progress(common::progress(50 * epoch as u64, 0.5)));
        app.on_event(Event::Epoch(Box::new(common::epoch(
            epoch,
            0.5 / epoch as f64,
        ))));
    }
    let screen = format!("{:?}", render(&app, 120, 40));
    assert!(screen.contains("Loss (MSE) · "), "{screen}");
    let classifier = format!("{:?}", render(&common::mid_run(), 120, 40));
    assert!(!classifier.contains("MSE"), "{classifier}");
}

/// The unit view's heat strips cover every evaluation of the run: the selected layer's units
/// lose spread and slope over 60 epochs (the strips' mass moves down), drawn a column per
/// epoch or per several.
#[test]
fn unit_view_heat_strips_cover_the_whole_run_120x40() {
    let mut app = common::mid_run();
    for e in 4..=60 {
        let fade = 1.0 - e as f64 / 64.0;
        let mut m = common::epoch(e, 0.3);
        m.layers = vec![common::layer(1, 256, fade), common::layer(2, 256, 0.5)];
        for s in &mut m.layers[0].per_unit.tanh_slope {
            *s *= fade;
        }
        app.on_event(Event::Epoch(Box::new(m)));
    }
    app.unit_view = true;
    assert_eq!(app.epoch_spread.len(), 60);
    insta::assert_snapshot!(render(&app, 120, 40));
}
