//! The key table: one list that drives the key handling, the footer and the help popup.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::net::Param;

/// What a key asks for, before the app state decides what it means right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAction {
    PauseResume,
    Step,
    Toggle(Param),
    Reestimate,
    Checkpoint,
    Curvature,
    FasterLearning,
    SlowerLearning,
    SelectUp,
    SelectDown,
    UnitView,
    UnitLeft,
    UnitRight,
    Window,
    LessSmoothing,
    MoreSmoothing,
    LogPageUp,
    LogPageDown,
    LogOldest,
    LogNewest,
    Filter,
    Chart,
    LogScale,
    Marker,
    Confusion,
    Settings,
    Detach,
    Help,
    Quit,
}

/// One row of the key table.
#[derive(Debug, Clone, Copy)]
pub struct KeyBinding {
    /// The keys of this row and what each does.
    pub keys: &'static [(KeyCode, KeyAction)],
    /// How the keys are written in the footer and the help popup.
    pub label: &'static str,
    /// A word or two for the footer.
    pub short: &'static str,
    /// A sentence for the help popup.
    pub description: &'static str,
    /// The keys change the run: a read-only viewer (`ltmlp watch`) neither shows nor takes them.
    pub steers: bool,
}

/// The learning-rate factor of `+` (and its inverse for `-`).
pub const LEARNING_RATE_FACTOR: f64 = 1.25;

/// Every key of the dashboard, in the order of the help popup.
pub const KEYS: &[KeyBinding] = &[
    KeyBinding {
        keys: &[(KeyCode::Char(' '), KeyAction::PauseResume)],
        label: "space",
        short: "pause",
        description: "pause / resume training",
        steers: true,
    },
    KeyBinding {
        keys: &[(KeyCode::Char('n'), KeyAction::Step)],
        label: "n",
        short: "step",
        description: "run one minibatch while paused",
        steers: true,
    },
    KeyBinding {
        keys: &[
            (KeyCode::Char('a'), KeyAction::Toggle(Param::Alpha)),
            (KeyCode::Char('b'), KeyAction::Toggle(Param::Beta)),
            (KeyCode::Char('g'), KeyAction::Toggle(Param::Gamma)),
        ],
        label: "a b g",
        short: "α β γ",
        description: "switch α / β / γ on or off (function-preserving)",
        steers: true,
    },
    KeyBinding {
        keys: &[(KeyCode::Char('r'), KeyAction::Reestimate)],
        label: "r",
        short: "re-estimate",
        description: "re-estimate the active transformations now",
        steers: true,
    },
    KeyBinding {
        keys: &[
            (KeyCode::Char('+'), KeyAction::FasterLearning),
            (KeyCode::Char('='), KeyAction::FasterLearning),
            (KeyCode::Char('-'), KeyAction::SlowerLearning),
        ],
        label: "+ -",
        short: "lr",
        description: "learning rate ×1.25 / ÷1.25",
        steers: true,
    },
    KeyBinding {
        keys: &[
            (KeyCode::Up, KeyAction::SelectUp),
            (KeyCode::Char('k'), KeyAction::SelectUp),
            (KeyCode::Down, KeyAction::SelectDown),
            (KeyCode::Char('j'), KeyAction::SelectDown),
        ],
        label: "↑ ↓",
        short: "layer",
        description: "select a hidden layer (also k / j)",
        steers: false,
    },
    KeyBinding {
        keys: &[(KeyCode::Enter, KeyAction::UnitView)],
        label: "enter",
        short: "units",
        description: "open / close the unit view of the selected layer",
        steers: false,
    },
    KeyBinding {
        keys: &[
            (KeyCode::Left, KeyAction::UnitLeft),
            (KeyCode::Right, KeyAction::UnitRight),
        ],
        label: "← →",
        short: "unit",
        description: "move the unit view's cursor (details of one unit)",
        steers: false,
    },
    KeyBinding {
        keys: &[(KeyCode::Char('w'), KeyAction::Window)],
        label: "w",
        short: "window",
        description: "loss panel: whole run / last 10 epochs",
        steers: false,
    },
    KeyBinding {
        keys: &[
            (KeyCode::Char('['), KeyAction::LessSmoothing),
            (KeyCode::Char(']'), KeyAction::MoreSmoothing),
        ],
        label: "[ ]",
        short: "smooth",
        description: "less / more smoothing of the minibatch loss line",
        steers: false,
    },
    KeyBinding {
        keys: &[
            (KeyCode::PageUp, KeyAction::LogPageUp),
            (KeyCode::PageDown, KeyAction::LogPageDown),
            (KeyCode::Home, KeyAction::LogOldest),
            (KeyCode::End, KeyAction::LogNewest),
        ],
        label: "PgUp PgDn",
        short: "log",
        description: "scroll the event log (Home: oldest, End: follow the newest)",
        steers: false,
    },
    KeyBinding {
        keys: &[(KeyCode::Char('/'), KeyAction::Filter)],
        label: "/",
        short: "filter",
        description: "filter the event log (enter applies, esc clears)",
        steers: false,
    },
    KeyBinding {
        keys: &[(KeyCode::Char('c'), KeyAction::Chart)],
        label: "c",
        short: "chart",
        description: "switch between sparklines and a large loss chart",
        steers: false,
    },
    KeyBinding {
        keys: &[(KeyCode::Char('l'), KeyAction::LogScale)],
        label: "l",
        short: "log y",
        description: "logarithmic loss axis (chart and sparklines)",
        steers: false,
    },
    KeyBinding {
        keys: &[(KeyCode::Char('m'), KeyAction::Marker)],
        label: "m",
        short: "marker",
        description: "chart marker: braille dots / half blocks (no Braille font)",
        steers: false,
    },
    KeyBinding {
        keys: &[(KeyCode::Char('s'), KeyAction::Checkpoint)],
        label: "s",
        short: "save",
        description: "save a checkpoint now (quitting saves one too)",
        steers: true,
    },
    KeyBinding {
        keys: &[(KeyCode::Char('h'), KeyAction::Curvature)],
        label: "h",
        short: "curvature",
        description: "curvature: gradient-to-Newton angle, off-diagonal ratios (small nets)",
        steers: true,
    },
    KeyBinding {
        keys: &[(KeyCode::Char('e'), KeyAction::Settings)],
        label: "e",
        short: "settings",
        description: "edit the live settings: rates, noise, decay, policy, γ, epochs, patience",
        steers: true,
    },
    KeyBinding {
        keys: &[(KeyCode::Char('d'), KeyAction::Detach)],
        label: "d",
        short: "detach",
        description: "detach: close the dashboard and leave the run training (ltmlp attach)",
        steers: true,
    },
    KeyBinding {
        keys: &[(KeyCode::Char('x'), KeyAction::Confusion)],
        label: "x",
        short: "confusion",
        description: "confusion matrix of the monitored split at the latest evaluation",
        steers: false,
    },
    KeyBinding {
        keys: &[(KeyCode::Char('?'), KeyAction::Help)],
        label: "?",
        short: "help",
        description: "show / hide this help (esc closes it too)",
        steers: false,
    },
    KeyBinding {
        keys: &[(KeyCode::Char('q'), KeyAction::Quit)],
        label: "q",
        short: "quit",
        description: "quit: stop the run or detach from it (asks); ctrl-c detaches at once",
        steers: false,
    },
];

/// The rows a viewer shows: all of them, or without the steering keys when read-only.
pub fn visible(read_only: bool) -> impl Iterator<Item = &'static KeyBinding> {
    KEYS.iter().filter(move |k| !(read_only && k.steers))
}

/// The action bound to a key, if any.
pub fn lookup(key: &KeyEvent) -> Option<KeyAction> {
    if key
        .modifiers
        .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT)
    {
        return None;
    }
    KEYS.iter()
        .flat_map(|b| b.keys.iter())
        .find(|(code, _)| *code == key.code)
        .map(|&(_, action)| action)
}

/// Whether the key is Ctrl-C (quit at once).
pub fn is_interrupt(key: &KeyEvent) -> bool {
    key.modifiers.contains(KeyModifiers::CONTROL)
        && matches!(key.code, KeyCode::Char('c') | KeyCode::Char('C'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_bound_once() {
        let mut seen = Vec::new();
        for (code, _) in KEYS.iter().flat_map(|b| b.keys.iter()) {
            assert!(!seen.contains(code), "{code:?} is bound twice");
            seen.push(*code);
        }
    }

    #[test]
    fn ctrl_c_is_not_the_chart_key() {
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert!(is_interrupt(&ctrl_c));
        assert_eq!(lookup(&ctrl_c), None);
        let c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::NONE);
        assert_eq!(lookup(&c), Some(KeyAction::Chart));
    }
}
