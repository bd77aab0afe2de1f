//! The statistics probe (with the γ guard that reads it) and the curvature reading, measured
//! beside training where nothing waits for them.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use super::{Driver, StateKind};
use crate::analysis::quick::{quick_curvature, QuickCurvature, Refusal, QUICK_MAX_WEIGHTS};
use crate::net::Workspace;
use crate::protocol::Event;
use crate::stats::LayerStats;
use crate::train::guard::GuardMode;

/// A statistics probe measured on another thread: the statistics and the workspace back.
pub(super) type Probing<T> = JoinHandle<(Vec<LayerStats>, Workspace<T>)>;

impl<T: StateKind> Driver<T> {
    /// Starts a quick curvature reading on a copy of the network; training goes on. Networks
    /// beyond the dense limit get the Krylov method's reading, on one core of its own.
    pub(super) fn curvature_in_background(&self) {
        let weights = self.trainer.net.params.len(false);
        let dense = weights <= QUICK_MAX_WEIGHTS;
        let net = self.trainer.net.clone();
        let data = Arc::clone(self.trainer.data());
        let (batch, labels) = self.trainer.last_batch();
        let (batch, labels) = (batch.to_owned(), labels.to_vec());
        let iteration = self.trainer.iteration;
        let events = self.events.clone();
        let method = if dense { "dense" } else { "Krylov" };
        self.send(Event::Log(format!(
            "curvature @ it {iteration}: measuring {weights} weights in the background ({method})…"
        )));
        let spawned = std::thread::Builder::new()
            .name("ltmlp-curvature".into())
            .spawn(move || {
                let train = &data.train;
                // The quick measurement reads only its first rows: decode no more of them.
                let rows = train.len().min(crate::analysis::quick::QUICK_MAX_EXAMPLES);
                let x = train.rows(0, rows);
                let (x, y) = (x.view(), train.class_indices());
                let line = if dense {
                    curvature_line(
                        iteration,
                        quick_curvature(&net, x, y, batch.view(), &labels),
                    )
                } else {
                    crate::analysis::quick::krylov_line(
                        iteration,
                        &net,
                        x,
                        y,
                        batch.view(),
                        &labels,
                    )
                };
                let _ = events.send(Event::Log(line));
            });
        if let Err(e) = spawned {
            self.send(Event::Log(format!("curvature: cannot start a thread: {e}")));
        }
    }

    /// Lets the γ guard look at `layers`; its events go out at once and, when it changed the
    /// network, `layers` is measured again.
    pub(super) fn guard(&mut self, layers: &mut Vec<crate::stats::LayerStats>) {
        let before = self.trainer.pending_event_count();
        match self.trainer.guard(layers) {
            Ok(0) => {}
            Ok(acted) => {
                for event in self.trainer.pending_events_since(before) {
                    self.send(Event::Transform(event));
                }
                if self.exp.resolved.preset.guard.mode != GuardMode::Warn {
                    *layers = self.trainer.layer_stats();
                }
                self.send(Event::Log(format!(
                    "guard ({}): {acted} collapsed unit{}",
                    self.exp.resolved.preset.guard.mode.name(),
                    if acted == 1 { "" } else { "s" }
                )));
            }
            Err(e) => self.send(Event::Log(format!("guard refused: {e}"))),
        }
    }

    /// Fresh statistics after a change of the transformations, so that no view shows the old
    /// ones beside the new flags (paused or not).
    pub(super) fn send_layers(&mut self) {
        let layers = self.trainer.layer_stats();
        self.send(Event::Layers {
            iteration: self.trainer.iteration,
            layers,
        });
    }

    /// The statistics probe due now: measured on a copy of the network on the free core when
    /// nothing waits for its result (no γ guard looks at it), else here.
    pub(super) fn probe_statistics(&mut self) {
        let aside = self.trainer.overlaps_evaluation()
            && self.exp.resolved.preset.guard.mode == GuardMode::Off;
        // The last probe's result goes out first, so that they arrive in order.
        self.collect_statistics(true);
        let started = Instant::now();
        let iteration = self.trainer.iteration;
        if aside {
            let (net, probe) = (self.trainer.net.clone(), self.trainer.stats_probe());
            let mut ws = self.trainer.stats_workspace();
            let spawned = std::thread::Builder::new()
                .name("ltmlp-statistics".into())
                .spawn(move || (probe.measure(&net, &mut ws), ws));
            if let Ok(handle) = spawned {
                self.probing = Some((iteration, handle));
                self.wall.statistics += started.elapsed().as_secs_f64();
                return;
            }
        }
        let mut layers = self.trainer.layer_stats();
        self.wall.statistics += started.elapsed().as_secs_f64();
        self.guard(&mut layers);
        self.send(Event::Layers { iteration, layers });
    }

    /// Sends the statistics measured on the free core, when they are done (or waiting for them).
    pub(super) fn collect_statistics(&mut self, wait: bool) {
        let Some((iteration, probing)) = self.probing.take_if(|(_, h)| wait || h.is_finished())
        else {
            return;
        };
        let started = Instant::now();
        let (layers, ws) = probing
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        self.trainer.keep_stats_workspace(ws);
        self.wall.statistics += started.elapsed().as_secs_f64();
        self.send(Event::Layers { iteration, layers });
    }
}

/// One log line for a curvature reading.
fn curvature_line(iteration: u64, reading: Result<QuickCurvature, Refusal>) -> String {
    // The readings are (μ, angle in degrees): the damping first, as the grid is searched.
    let angle = |a: Option<(f64, f64)>| {
        a.map_or_else(
            || "undefined".to_string(),
            |(mu, deg)| format!("{deg:.1}° (μ={mu:.0e})"),
        )
    };
    match reading {
        Ok(q) => format!(
            "curvature @ it {iteration}: ∠(g, Newton) {}, ∠(g, natural) {}, off-diagonal H {:.2} F {:.2}",
            angle(q.newton_angle),
            angle(q.natural_angle),
            q.hessian.off_diagonal_ratio,
            q.fisher.off_diagonal_ratio
        ),
        Err(refusal) => format!("curvature @ it {iteration}: {refusal}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::spectrum::SpectrumStats;

    #[test]
    pub(super) fn curvature_line_gives_the_angle_then_the_damping() {
        let spectrum = SpectrumStats {
            size: 2,
            min: 0.1,
            max: 1.0,
            floor: 1e-8,
            above_floor: 2,
            condition: Some(10.0),
            negative_share: 0.0,
            negative_share_beyond_floor: 0.0,
            off_diagonal_ratio: 0.25,
            diagonal_mean: 0.5,
            diagonal_spread: Some(2.0),
        };
        let reading = QuickCurvature {
            weights: 10,
            examples: 5,
            hessian: spectrum.clone(),
            fisher: spectrum,
            newton_angle: Some((1e-4, 57.3)),
            natural_angle: None,
        };
        let line = curvature_line(7, Ok(reading));
        assert!(line.contains("∠(g, Newton) 57.3° (μ=1e-4)"), "{line}");
        assert!(line.contains("∠(g, natural) undefined"), "{line}");
    }
}
