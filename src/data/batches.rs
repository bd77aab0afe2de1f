//! The order in which training examples are visited: sequential with wrap-around, as in the
//! papers' code, or reshuffled (seeded) every pass.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};

/// A cursor over a permutation of `0..n` that hands out fixed-size minibatches forever.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchOrder {
    order: Vec<usize>,
    cursor: usize,
    shuffle: bool,
    rng: Pcg64Mcg,
}

impl BatchOrder {
    pub fn new(n: usize, shuffle: bool, seed: u64) -> Self {
        let mut rng = Pcg64Mcg::seed_from_u64(seed ^ 0x5eed_0bde_u64);
        let mut order: Vec<usize> = (0..n).collect();
        if shuffle {
            order.shuffle(&mut rng);
        }
        BatchOrder {
            order,
            cursor: 0,
            shuffle,
            rng,
        }
    }

    /// Fills `indices` with the next `indices.len()` example indices, wrapping around (and
    /// reshuffling, if asked) at the end of the data.
    pub fn next_batch(&mut self, indices: &mut [usize]) {
        for slot in indices.iter_mut() {
            if self.cursor == self.order.len() {
                self.cursor = 0;
                if self.shuffle {
                    self.order.shuffle(&mut self.rng);
                }
            }
            *slot = self.order[self.cursor];
            self.cursor += 1;
        }
    }
}
