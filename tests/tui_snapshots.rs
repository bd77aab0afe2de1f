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
    assert!(screen.contains("y stops"), "{screen}");
}
