//! The γ blow-up measured per unit (docs/reproduction.md, "Why γ blows up"): trains a preset
//! and, every few minibatches, writes each hidden unit's γ, whether ε holds it, the scale of
//! its outgoing weights in function units (γ·‖W[·][l][:, i]‖) and of their last step, and its
//! slope and saturation on the statistics probe.
//!
//! ```sh
//! cargo run --release --example gamma_probe -- OUT.csv PRESET VARIANT EVERY [KEY=VALUE ...]
//! ```
//!
//! One CSV row per unit and report: iteration, epoch, training loss of the last minibatch,
//! layer, unit, γ, held (γ at or above the level where ε outweighs the unit's own scale),
//! outgoing scale, relative step of it, mean tanh′, saturated, pre-activation std.

use std::io::Write;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use ltmlp::net::Network;
use ltmlp::preset::PresetFile;
use ltmlp::stats::Thresholds;
use ltmlp::train::{AnyData, Experiment, Trainer};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 4 {
        bail!("usage: gamma_probe OUT.csv PRESET VARIANT EVERY [KEY=VALUE ...]");
    }
    let (out, preset, variant) = (&args[0], &args[1], &args[2]);
    let every: u64 = args[3].parse().context("EVERY: a number of minibatches")?;
    let overrides: Vec<String> = args[4..].to_vec();
    let file = PresetFile::read(std::path::Path::new(preset))?;
    let resolved = file.resolve(Some(variant), &overrides)?;
    let exp = Experiment::prepare(resolved.clone(), None)?;
    let AnyData::F32(data) = exp.data else {
        bail!("the probe runs f32 presets")
    };
    let p = &resolved.preset;
    let held_level =
        Thresholds::gamma_cap_level(p.transforms.gamma_form, p.transforms.gamma_epsilon())
            .unwrap_or(f64::INFINITY);
    let net = Network::<f32>::init(exp.topology.clone(), p.train.seed);
    let mut t = Trainer::new(&resolved, Arc::clone(&data), net);
    let total = p.train.epochs as u64 * data.train.len().div_ceil(p.train.batch_size) as u64;
    let per_epoch = data.train.len().div_ceil(p.train.batch_size) as u64;
    let mut csv = std::io::BufWriter::new(std::fs::File::create(out)?);
    writeln!(
        csv,
        "iteration,epoch,loss,layer,unit,gamma,held,out_scale,out_step,tanh_slope,saturated,std_pre"
    )?;
    for it in 1..=total {
        let before = (it % every == 0).then(|| outgoing_scales(&t.net));
        let loss = match t.step() {
            Ok(loss) => loss.mean(),
            Err(d) => {
                eprintln!("diverged at iteration {it}: {}", d.reason);
                break;
            }
        };
        let Some(before) = before else { continue };
        let after = outgoing_scales(&t.net);
        let stats = t.layer_stats();
        for s in &stats {
            let Some(tr) = t.net.transforms[s.layer].as_ref() else {
                continue;
            };
            for i in 0..s.units {
                let gamma = tr.gamma[i] as f64;
                let (b, a) = (&before[s.layer][i], &after[s.layer][i]);
                let step = a
                    .iter()
                    .zip(b)
                    .map(|(x, y)| (x - y).powi(2))
                    .sum::<f64>()
                    .sqrt();
                let scale = a.iter().map(|x| x * x).sum::<f64>().sqrt();
                writeln!(
                    csv,
                    "{it},{},{loss:.5},{},{i},{gamma:.4},{},{scale:.5},{:.6},{:.4},{},{:.4}",
                    it.div_ceil(per_epoch),
                    s.layer,
                    u8::from(gamma >= held_level),
                    step / scale.max(1e-30),
                    s.per_unit.tanh_slope[i],
                    u8::from(s.per_unit.saturated[i]),
                    s.per_unit.std_pre[i],
                )?;
            }
        }
    }
    Ok(())
}

/// For every transformed layer l and unit i: the outgoing weights in function units,
/// γ_i·W[m][l][:, i] for every later layer m, as one vector.
fn outgoing_scales(net: &Network<f32>) -> Vec<Vec<Vec<f64>>> {
    let layers = net.depth() + 1;
    (0..layers)
        .map(|l| {
            let Some(tr) = net.transforms[l].as_ref() else {
                return Vec::new();
            };
            (0..tr.gamma.len())
                .map(|i| {
                    let gamma = tr.gamma[i] as f64;
                    (l + 1..layers)
                        .filter_map(|m| net.params.weights[m][l].as_ref())
                        .flat_map(|w| w.column(i).to_vec())
                        .map(|w| gamma * w as f64)
                        .collect()
                })
                .collect()
        })
        .collect()
}
