//! ltmlp: a terminal lab for multi-layer perceptrons whose hidden units use the transformed
//! nonlinearities of Raiko, Valpola & LeCun (2012) and Vatanen et al. (2013).

/// `println!` for the commands' reports, through [`headless::say`]: a closed or broken stdout
/// (`ltmlp eval DIR | head`, a vanished SSH terminal) is ignored instead of panicking, so that
/// a command still writes its files and a long sweep keeps running.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::headless::say(&::std::format!($($arg)*))
    };
}

/// `print!` with the same tolerance of a closed stdout as [`say!`].
#[macro_export]
macro_rules! say_part {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = write!(::std::io::stdout().lock(), $($arg)*);
    }};
}

pub mod analysis;
pub mod bench;
pub mod bounded;
pub mod cli;
pub mod compare;
pub mod confusion;
pub mod data;
pub mod durable;
pub mod eval;
pub mod export;
pub mod headless;
pub mod host;
pub mod nan_json;
pub mod net;
pub mod preset;
pub mod protocol;
pub mod real;
pub mod remote;
pub mod sink;
pub mod stats;
pub mod sweep;
pub mod tensorboard;
pub mod train;
pub mod tui;
