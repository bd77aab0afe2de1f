//! The dashboard state without a terminal: keys, switches and trainer events.

mod tui_common;
use tui_common as common;

use ltmlp::net::Param;
use ltmlp::train::{Command, Event, RunState};
use ltmlp::tui::app::LogKind;
use ltmlp::tui::{Action, App};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn ch(c: char) -> KeyEvent {
    key(KeyCode::Char(c))
}

#[test]
fn space_pauses_and_resumes_according_to_the_state() {
    let mut app = common::mid_run();
    assert_eq!(app.on_key(ch(' ')), Some(Action::Send(Command::Pause)));
    // The state changes only when the trainer says so.
    assert_eq!(app.state, RunState::Running);
    app.on_event(Event::State(RunState::Paused));
    assert_eq!(app.state, RunState::Paused);
    assert_eq!(app.log.back().map(|l| l.text.as_str()), Some("paused"));
    assert_eq!(app.on_key(ch(' ')), Some(Action::Send(Command::Resume)));
}

#[test]
fn n_steps_only_while_paused() {
    let mut app = common::mid_run();
    assert_eq!(app.on_key(ch('n')), None);
    app.on_event(Event::State(RunState::Paused));
    assert_eq!(app.on_key(ch('n')), Some(Action::Send(Command::Step)));
}

#[test]
fn transformation_and_learning_rate_keys_send_commands() {
    let mut app = common::mid_run();
    let sent = |app: &mut App, c: char| app.on_key(ch(c));
    assert_eq!(
        sent(&mut app, 'a'),
        Some(Action::Send(Command::Toggle(Param::Alpha)))
    );
    assert_eq!(
        sent(&mut app, 'b'),
        Some(Action::Send(Command::Toggle(Param::Beta)))
    );
    assert_eq!(
        sent(&mut app, 'g'),
        Some(Action::Send(Command::Toggle(Param::Gamma)))
    );
    assert_eq!(sent(&mut app, 'r'), Some(Action::Send(Command::Reestimate)));
    assert_eq!(
        sent(&mut app, '+'),
        Some(Action::Send(Command::ScaleLearningRate(1.25)))
    );
    assert_eq!(
        sent(&mut app, '-'),
        Some(Action::Send(Command::ScaleLearningRate(0.8)))
    );
    // `+` typed with shift still counts.
    assert_eq!(
        app.on_key(KeyEvent::new(KeyCode::Char('+'), KeyModifiers::SHIFT)),
        Some(Action::Send(Command::ScaleLearningRate(1.25)))
    );
}

#[test]
fn key_releases_are_ignored() {
    let mut app = common::mid_run();
    let mut release = ch(' ');
    release.kind = KeyEventKind::Release;
    assert_eq!(app.on_key(release), None);
}

#[test]
fn a_switch_updates_the_flags_and_logs_the_output_change() {
    let mut app = common::mid_run();
    let no_beta = ltmlp::net::Flags {
        beta: false,
        ..common::AB
    };
    app.on_event(common::switch(170, Param::Beta, false, no_beta));
    assert!(!app.flags.beta && app.flags.alpha);
    let line = app.log.back().expect("a log line");
    assert_eq!(line.iteration, Some(170));
    assert_eq!(line.kind, LogKind::Transform);
    assert!(line.text.contains("β switched off"), "{}", line.text);
    assert!(line.text.contains("3.1e-9"), "{}", line.text);
}

#[test]
fn a_refused_switch_is_a_warning() {
    let mut app = common::mid_run();
    app.on_event(Event::Log(
        "α not switched: α needs shortcut connections".into(),
    ));
    assert_eq!(app.log.back().map(|l| l.kind), Some(LogKind::Warning));
    assert!(app.flags.alpha);
}

#[test]
fn scheduled_reestimations_are_summed_up_on_one_line() {
    let app = common::mid_run();
    let scheduled: Vec<_> = app
        .log
        .iter()
        .filter(|l| l.text.contains("scheduled"))
        .collect();
    assert_eq!(scheduled.len(), 1, "three epochs in a row share a line");
    assert_eq!(scheduled[0].scheduled, 3);
    assert!(scheduled[0].text.contains("4.2e-7"));
}

#[test]
fn layer_selection_stays_in_range_and_enter_opens_the_unit_view() {
    let mut app = common::mid_run();
    assert_eq!(app.selected, 0);
    app.on_key(key(KeyCode::Up));
    assert_eq!(app.selected, 0);
    app.on_key(key(KeyCode::Down));
    app.on_key(key(KeyCode::Down));
    assert_eq!(app.selected, 1);
    assert_eq!(app.selected_layer().map(|l| l.layer), Some(2));
    assert_eq!(app.on_key(key(KeyCode::Enter)), None);
    assert!(app.unit_view);
    app.on_key(key(KeyCode::Esc));
    assert!(!app.unit_view);
    // Fewer layers in a newer snapshot: the selection follows.
    app.on_event(Event::Layers {
        iteration: 200,
        layers: vec![common::layer(1, 8, 1.0)],
    });
    assert_eq!(app.selected, 0);
}

#[test]
fn older_statistics_do_not_replace_newer_ones() {
    let mut app = common::mid_run();
    let newest = app.layers_iteration;
    app.on_event(Event::Layers {
        iteration: newest - 1,
        layers: vec![],
    });
    assert_eq!(app.layers.len(), 2);
}

#[test]
fn view_keys_toggle_ui_state_only() {
    let mut app = common::mid_run();
    assert_eq!(app.on_key(ch('c')), None);
    assert!(app.chart);
    assert_eq!(app.on_key(ch('l')), None);
    assert!(app.log_scale);
    assert_eq!(app.on_key(ch('?')), None);
    assert!(app.help);
    app.on_key(key(KeyCode::Esc));
    assert!(!app.help);
}

#[test]
fn quit_asks_while_training_and_not_after() {
    let mut app = common::mid_run();
    assert_eq!(app.on_key(ch('q')), None);
    assert!(app.confirm_quit);
    // Any other key cancels.
    assert_eq!(app.on_key(ch('x')), None);
    assert!(!app.confirm_quit);
    // Stop the run (s, or y as before), or detach from it (d).
    app.on_key(ch('q'));
    assert_eq!(app.on_key(ch('y')), Some(Action::Stop));
    app.on_key(ch('q'));
    assert_eq!(app.on_key(ch('d')), Some(Action::Quit));
    // A read-only viewer only closes itself.
    app.stopping = false;
    app.read_only = true;
    app.on_key(ch('q'));
    assert!(app.confirm_quit);
    assert_eq!(app.on_key(ch('y')), Some(Action::Quit));

    let mut over = common::diverged();
    assert_eq!(over.on_key(ch('q')), Some(Action::Quit));
}

#[test]
fn ctrl_c_quits_at_once() {
    let mut app = common::mid_run();
    let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
    assert_eq!(app.on_key(ctrl_c), Some(Action::Quit));
    assert!(!app.chart);
}

#[test]
fn divergence_stops_with_the_reason_in_the_log() {
    let mut app = common::diverged();
    assert_eq!(app.state, RunState::Diverged);
    assert!(!app.training());
    assert!(app
        .log
        .iter()
        .any(|l| l.text.contains("training loss is NaN")));
    assert!(app.log.iter().any(|l| l.kind == LogKind::Error));
    // Commands are no longer sent once training is over.
    assert_eq!(app.on_key(ch(' ')), None);
    assert_eq!(app.on_key(ch('a')), None);
    assert_eq!(app.summary.as_ref().map(|s| s.iterations), Some(172));
}

#[test]
fn the_log_keeps_a_bounded_number_of_lines() {
    let mut app = common::mid_run();
    for i in 0..2000 {
        app.on_event(Event::Log(format!("line {i}")));
    }
    assert!(app.log.len() <= 500);
    assert_eq!(app.log.back().map(|l| l.text.as_str()), Some("line 1999"));
}

#[test]
fn eta_is_known_only_while_running() {
    let mut app = common::mid_run();
    let eta = app.eta_seconds().expect("running");
    // 170 of 1000 iterations in 1.7 s.
    assert!((eta - 8.3).abs() < 1e-9, "{eta}");
    app.on_event(Event::State(RunState::Paused));
    assert_eq!(app.eta_seconds(), None);
}

#[test]
fn the_docs_list_every_key() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/tui.md"))
        .expect("docs/tui.md");
    for k in ltmlp::tui::keymap::KEYS {
        assert!(
            doc.contains(k.description),
            "docs/tui.md lacks the key `{}`: {}",
            k.label,
            k.description
        );
    }
}

#[test]
fn keys_never_act_behind_the_help_popup() {
    let mut app = common::mid_run();
    app.on_key(ch('?'));
    assert!(app.help);
    for c in ['a', ' ', 'r', '+', 'c', 'w'] {
        assert_eq!(app.on_key(ch(c)), None, "{c} acted behind the help");
    }
    assert!(!app.chart, "c did not switch the chart behind the help");
    assert!(app.help, "other keys leave the help open");
    app.on_key(key(KeyCode::Esc));
    assert!(!app.help);
    assert_eq!(
        app.on_key(ch('a')),
        Some(Action::Send(Command::Toggle(Param::Alpha)))
    );
}

#[test]
fn scheduled_re_estimations_share_one_log_line_until_another_line_comes() {
    let mut app = common::mid_run();
    let before = app.log.len();
    for e in 4..=9 {
        app.on_event(Event::Epoch(Box::new(common::epoch(e, 0.6 / e as f64))));
    }
    let scheduled: Vec<_> = app.log.iter().skip(before).collect();
    assert_eq!(scheduled.len(), 1, "{scheduled:?}");
    assert_eq!(scheduled[0].scheduled, 6);
    assert!(scheduled[0]
        .text
        .contains("6 scheduled re-estimations since it 200"));
    assert_eq!(scheduled[0].iteration, Some(450));
    app.on_event(Event::Log("learning rate → 0.1250".into()));
    app.on_event(Event::Epoch(Box::new(common::epoch(10, 0.06))));
    assert_eq!(
        app.log.len(),
        before + 3,
        "a new summary after another line"
    );
    // The transforms panel shows the latest scheduled re-estimation.
    assert_eq!(app.last_transform.map(|t| t.iteration), Some(500));
}

#[test]
fn the_status_position_follows_every_event_not_only_progress_reports() {
    let mut app = common::mid_run();
    assert_eq!(app.iteration(), 170);
    // A position report after a pause (NaN loss: no new minibatch) moves the position without
    // adding a loss point.
    let points = app.train_loss.len();
    let mut p = common::progress(173, f64::NAN);
    p.learning_rate = 0.125;
    app.on_event(Event::Progress(p));
    assert_eq!(app.iteration(), 173);
    assert_eq!(app.progress.unwrap().learning_rate, 0.125);
    assert_eq!(app.train_loss.len(), points);
    // An epoch's end is newer than the last progress report.
    app.on_event(Event::Epoch(Box::new(common::epoch(4, 0.3))));
    assert_eq!(app.iteration(), 200);
    // A finished run reports the epochs it completed.
    let mut s = common::summary(RunState::Finished, None);
    s.epochs_completed = 20;
    s.iterations = 1000;
    app.on_event(Event::Finished(Box::new(s)));
    assert_eq!(app.progress.unwrap().epoch, 20);
    assert_eq!(app.iteration(), 1000);
}

#[test]
fn the_log_filter_takes_the_keys_while_typed() {
    let mut app = common::mid_run();
    app.on_key(ch('/'));
    for c in "ALPHA".chars() {
        assert_eq!(app.on_key(ch(c)), None);
    }
    app.on_key(key(KeyCode::Backspace));
    for c in "a sw".chars() {
        app.on_key(ch(c));
    }
    app.on_key(key(KeyCode::Enter));
    assert_eq!(app.log_filter, "ALPHa sw");
    // Matches "α switched …"? No: the filter is literal; nothing matches.
    assert!(app.filtered_log().is_empty());
    app.on_key(ch('/'));
    for _ in 0..8 {
        app.on_key(key(KeyCode::Backspace));
    }
    for c in "switched".chars() {
        app.on_key(ch(c));
    }
    app.on_key(key(KeyCode::Enter));
    assert_eq!(app.filtered_log().len(), 2);
    app.on_key(key(KeyCode::Esc));
    assert!(app.log_filter.is_empty());
}

#[test]
fn the_log_scrolls_by_pages_and_end_follows_again() {
    let mut app = common::mid_run();
    for i in 0..40 {
        app.on_event(Event::Log(format!("line {i}")));
    }
    app.log_page.set(10);
    app.on_key(key(KeyCode::PageUp));
    assert_eq!(app.log_scroll, 10);
    app.on_key(key(KeyCode::Home));
    assert_eq!(app.log_scroll, app.log.len() - 1);
    app.on_key(key(KeyCode::PageDown));
    assert_eq!(app.log_scroll, app.log.len() - 11);
    app.on_key(key(KeyCode::End));
    assert_eq!(app.log_scroll, 0);
}

#[test]
fn alerts_are_raised_once_and_shown() {
    let app = common::overfitting();
    let texts: Vec<String> = app.alerts.iter().map(|a| a.text()).collect();
    assert!(
        texts.iter().any(|t| t.contains("validation loss rising")),
        "{texts:?}"
    );
    assert!(
        texts
            .iter()
            .any(|t| t.contains("layer 2: 35% of units saturated")),
        "{texts:?}"
    );
    let logged = app
        .log
        .iter()
        .filter(|l| l.kind == LogKind::Warning && l.text.contains("saturated"))
        .count();
    assert_eq!(logged, 1, "an alert is logged once while it holds");
}

#[test]
fn the_unit_cursor_stays_within_the_layer() {
    let mut app = common::mid_run();
    app.on_key(key(KeyCode::Enter));
    app.on_key(key(KeyCode::Left));
    assert_eq!(app.unit_cursor, 0);
    for _ in 0..300 {
        app.on_key(key(KeyCode::Right));
    }
    assert_eq!(app.unit_cursor, 255);
}

/// A saturation alert while γ is on also says what is happening and what to try, once per run
/// even when the alert comes and goes; without γ the hint does not appear.
#[test]
fn a_saturation_alert_with_gamma_on_explains_the_blow_up_once() {
    for gamma in [false, true] {
        let mut app = common::mid_run();
        let mut saturated = common::layers();
        saturated[1].saturated_fraction = 0.35;
        for e in 4..=9usize {
            let mut m = common::epoch(e, 0.3);
            m.flags.gamma = gamma;
            m.layers = if e % 2 == 0 {
                saturated.clone()
            } else {
                common::layers()
            };
            app.on_event(Event::Epoch(Box::new(m)));
        }
        let hints = app
            .log
            .iter()
            .filter(|l| l.kind == LogKind::Warning && l.text.starts_with("γ blow-up"))
            .count();
        let alerts = app
            .log
            .iter()
            .filter(|l| l.text.contains("units saturated"))
            .count();
        assert_eq!(alerts, 3, "the alert itself comes back each time");
        assert_eq!(
            hints,
            usize::from(gamma),
            "γ {gamma}: hint logged {hints} times"
        );
    }
}

/// A rollback of the γ control arrives with the epoch's metrics and is logged as a warning.
#[test]
fn a_rollback_is_logged_with_its_epoch() {
    use ltmlp::protocol::{TransformCause, TransformEvent};
    let mut app = common::mid_run();
    let mut m = common::epoch(4, 0.3);
    m.transform_events.push(TransformEvent {
        iteration: 213,
        cause: TransformCause::Rollback { to: 150 },
        flags: m.flags,
        max_output_change: f64::NAN,
    });
    app.on_event(Event::Epoch(Box::new(m)));
    assert!(
        app.log.iter().any(|l| l.kind == LogKind::Warning
            && l.text.contains("rolled back to iteration 150, rate halved")),
        "{:?}",
        app.log.iter().map(|l| &l.text).collect::<Vec<_>>()
    );
}

#[test]
fn a_foreign_run_is_sent_only_the_commands_its_trainer_declared() {
    let mut app = common::mid_run();
    let mut info = app.info.clone().expect("mid_run has a header");
    info.trainer = Some(Box::new(ltmlp::protocol::ForeignTrainer {
        producer: "toy".into(),
        version: "1.0".into(),
        layers: Vec::new(),
        commands: vec!["pause".into(), "resume".into(), "stop".into()],
        settings: Vec::new(),
        config: Default::default(),
    }));
    app.info = Some(info);
    assert_eq!(app.on_key(ch(' ')), Some(Action::Send(Command::Pause)));
    assert_eq!(app.on_key(ch('a')), None);
    assert_eq!(
        app.log.back().map(|l| l.text.as_str()),
        Some("toy 1.0 does not carry out `toggle` (not declared)")
    );
    assert_eq!(app.on_key(ch('+')), None);
}
