//! The dashboard drawn into ratatui's `TestBackend`, compared with committed insta snapshots.
//! The app state is built from synthetic events, so nothing here depends on a clock.

mod tui_common;
use tui_common as common;

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
