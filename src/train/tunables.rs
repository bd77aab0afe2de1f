//! The settings a run can change while it trains: one list of preset keys, read and written
//! through the preset itself, so that a live value is checked by the same rules and messages
//! as a preset file or `--set`.

use crate::preset::{PolicyKind, Preset, Resolved};
use crate::protocol::Tunable;

/// One live setting: its preset key and what it does, for the dashboard's editor and
/// `ltmlp ctl DIR set`.
#[derive(Debug, Clone, Copy)]
pub struct LiveKey {
    pub key: &'static str,
    pub about: &'static str,
}

/// Every setting that can change mid-run. Anything else (the network's shape, the data, the
/// seed, the batch size) defines the experiment and is refused.
pub const LIVE_KEYS: &[LiveKey] = &[
    LiveKey {
        key: "train.learning_rate",
        about: "base learning rate of the schedule (the + - keys scale it)",
    },
    LiveKey {
        key: "train.momentum",
        about: "momentum (the final one of a ramp)",
    },
    LiveKey {
        key: "train.muon_learning_rate",
        about: "Muon's rate for the hidden layers' matrices (follows the schedule)",
    },
    LiveKey {
        key: "train.muon_momentum",
        about: "Muon's momentum of the hidden layers' matrices",
    },
    LiveKey {
        key: "train.kfac_damping",
        about: "K-FAC's Tikhonov damping (the factors are inverted again at the next step)",
    },
    LiveKey {
        key: "train.input_noise",
        about: "std of the Gaussian noise added to each minibatch's inputs",
    },
    LiveKey {
        key: "train.weight_decay",
        about: "L2 decay of weights and biases",
    },
    LiveKey {
        key: "train.epochs",
        about: "length of the run: extend or shorten it",
    },
    LiveKey {
        key: "train.patience",
        about: "early stop after N epochs without a better validation result",
    },
    LiveKey {
        key: "transforms.policy",
        about: "when α β γ are re-estimated: every, paper or never",
    },
    LiveKey {
        key: "transforms.every",
        about: "minibatches between re-estimations (policy every)",
    },
    LiveKey {
        key: "transforms.gamma_form",
        about: "γ's normalisation: product or rms (from the next re-estimation)",
    },
    LiveKey {
        key: "transforms.gamma_epsilon",
        about: "ε in γ's formula (from the next re-estimation)",
    },
    LiveKey {
        key: "transforms.gamma_control",
        about: "γ's blow-up control: rollback, off (the papers' rule), momentum, step or bound",
    },
    LiveKey {
        key: "transforms.gamma_bound",
        about: "γ's bound under gamma_control = bound (from the next re-estimation)",
    },
    LiveKey {
        key: "transforms.gamma_step_power",
        about: "p under gamma_control = step: outgoing steps divided by γ^p",
    },
    LiveKey {
        key: "guard.mode",
        about: "collapsed units: off, warn, cap, unit-off or reinit",
    },
    LiveKey {
        key: "guard.gamma_cap",
        about: "γ's bound for a collapsed unit under guard.mode = cap",
    },
    LiveKey {
        key: "stats.every",
        about: "minibatches between two statistics snapshots",
    },
];

/// The current value of every live key, as TOML text ("unset" for an absent optional value).
pub fn current(preset: &Preset) -> Vec<Tunable> {
    let table = toml::Table::try_from(preset).unwrap_or_default();
    LIVE_KEYS
        .iter()
        .map(|k| {
            let mut node = Some(&table);
            let parts: Vec<&str> = k.key.split('.').collect();
            for part in &parts[..parts.len() - 1] {
                node = node.and_then(|t| t.get(*part)).and_then(|v| v.as_table());
            }
            let value = node
                .and_then(|t| t.get(parts[parts.len() - 1]))
                .map_or_else(
                    || "unset".to_string(),
                    // Strings as typed (`--set transforms.policy=paper`), without TOML quotes.
                    |v| v.as_str().map_or_else(|| v.to_string(), str::to_string),
                );
            let value = match (k.key, preset.transforms.gamma_epsilon) {
                // The default depends on the form: show the value in force.
                ("transforms.gamma_epsilon", None) => preset.transforms.gamma_epsilon().to_string(),
                _ => value,
            };
            Tunable {
                key: k.key.to_string(),
                value,
            }
        })
        .collect()
}

/// `resolved` with `key` set to `value`, validated; refused for keys that are not live, for
/// values the preset rules reject, and for changes that cannot apply mid-run.
pub fn retune(resolved: &Resolved, key: &str, value: &str) -> Result<Resolved, String> {
    let key = key.trim();
    if !LIVE_KEYS.iter().any(|k| k.key == key) {
        let keys: Vec<&str> = LIVE_KEYS.iter().map(|k| k.key).collect();
        return Err(format!(
            "`{key}` cannot change while the run trains; live settings: {}",
            keys.join(", ")
        ));
    }
    let next = resolved.with_override(&format!("{key}={value}"))?;
    if next.preset.transforms.policy == PolicyKind::Sample
        && resolved.preset.transforms.policy != PolicyKind::Sample
    {
        return Err(
            "transforms.policy: `sample` draws its sample when a run starts; start a run with it"
                .into(),
        );
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preset::PresetFile;

    fn resolved() -> Resolved {
        PresetFile::builtin_default()
            .unwrap()
            .resolve(None, &[])
            .unwrap()
    }

    #[test]
    fn every_live_key_is_a_preset_key_with_a_value() {
        let r = resolved();
        for t in current(&r.preset) {
            if t.value == "unset" {
                continue;
            }
            let mut again = retune(&r, &t.key, &t.value)
                .unwrap_or_else(|e| panic!("{}: {e}", t.key))
                .preset;
            // The shown ε is the one in force, also where the preset leaves it to the form.
            assert_eq!(
                again.transforms.gamma_epsilon(),
                r.preset.transforms.gamma_epsilon()
            );
            again.transforms.gamma_epsilon = r.preset.transforms.gamma_epsilon;
            assert_eq!(again, r.preset, "{}", t.key);
        }
    }

    #[test]
    fn values_are_checked_by_the_preset_rules() {
        let r = resolved();
        let e = retune(&r, "train.momentum", "1.2").unwrap_err();
        assert!(e.contains("train.momentum") && e.contains("[0, 1)"), "{e}");
        let e = retune(&r, "model.hidden", "[3]").unwrap_err();
        assert!(
            e.contains("cannot change") && e.contains("train.momentum"),
            "{e}"
        );
        let next = retune(&r, "train.momentum", "0.95").unwrap();
        assert_eq!(next.preset.train.momentum, 0.95);
        assert!(retune(&r, "transforms.policy", "sample").is_err());
    }
}
