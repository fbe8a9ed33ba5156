//! The GE2E network in plain Rust: a 3-layer LSTM (40 → 256 → 256 → 256, PyTorch gate order
//! i, f, g, o), then a linear layer 256 → 256, ReLU and L2 normalisation of the last hidden
//! state.
//!
//! Each layer first projects all its inputs at once (`W_ih x_t + b_ih + b_hh` for every frame),
//! so the sequential part is one 1024 x 256 matrix-vector product per frame.

/// Hidden size of every layer.
pub const HIDDEN: usize = 256;
const GATES: usize = 4 * HIDDEN;

/// Dot product with eight independent accumulators, so the compiler vectorises it.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        sum += x * y;
    }
    sum
}

/// `out[r] = bias[r] + dot(w[r], x)` for a row-major `rows x x.len()` matrix `w`.
fn matvec(w: &[f32], bias: &[f32], x: &[f32], out: &mut [f32]) {
    let cols = x.len();
    for (r, o) in out.iter_mut().enumerate() {
        *o = bias[r] + dot(&w[r * cols..(r + 1) * cols], x);
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// One LSTM layer.
#[derive(Debug, Clone)]
pub struct LstmLayer {
    /// Input size.
    pub input: usize,
    /// `4H x input`, row-major.
    pub w_ih: Vec<f32>,
    /// `4H x H`, row-major.
    pub w_hh: Vec<f32>,
    /// `b_ih + b_hh`, `4H`.
    pub bias: Vec<f32>,
}

impl LstmLayer {
    /// Runs the layer over `xs` (`T x input`, row-major) from a zero state; returns the hidden
    /// states, `T x H`.
    pub fn run(&self, xs: &[f32]) -> Vec<f32> {
        let steps = xs.len() / self.input;
        let mut pre = vec![0f32; steps * GATES];
        for t in 0..steps {
            matvec(
                &self.w_ih,
                &self.bias,
                &xs[t * self.input..(t + 1) * self.input],
                &mut pre[t * GATES..(t + 1) * GATES],
            );
        }
        let zero = [0f32; GATES];
        let mut h = vec![0f32; HIDDEN];
        let mut c = vec![0f32; HIDDEN];
        let mut gates = vec![0f32; GATES];
        let mut out = Vec::with_capacity(steps * HIDDEN);
        for t in 0..steps {
            matvec(&self.w_hh, &zero, &h, &mut gates);
            let p = &pre[t * GATES..(t + 1) * GATES];
            for j in 0..HIDDEN {
                let i = sigmoid(gates[j] + p[j]);
                let f = sigmoid(gates[HIDDEN + j] + p[HIDDEN + j]);
                let g = (gates[2 * HIDDEN + j] + p[2 * HIDDEN + j]).tanh();
                let o = sigmoid(gates[3 * HIDDEN + j] + p[3 * HIDDEN + j]);
                c[j] = f * c[j] + i * g;
                h[j] = o * c[j].tanh();
            }
            out.extend_from_slice(&h);
        }
        out
    }
}

/// The whole network.
#[derive(Debug, Clone)]
pub struct Network {
    /// The three LSTM layers.
    pub layers: Vec<LstmLayer>,
    /// `H x H`, row-major.
    pub linear_w: Vec<f32>,
    /// `H`.
    pub linear_b: Vec<f32>,
}

impl Network {
    /// Embeds `frames` (`T x 40`, row-major): the unit-norm 256-d vector, or `None` if the
    /// ReLU output is all zero.
    pub fn forward(&self, frames: &[f32]) -> Option<Vec<f32>> {
        let mut x = frames.to_vec();
        for layer in &self.layers {
            x = layer.run(&x);
        }
        let last = x.get(x.len().checked_sub(HIDDEN)?..)?;
        let mut y = vec![0f32; HIDDEN];
        matvec(&self.linear_w, &self.linear_b, last, &mut y);
        y.iter_mut().for_each(|v| *v = v.max(0.0));
        normalize(y)
    }
}

/// `v / |v|`, or `None` for a zero (or non-finite) vector.
pub fn normalize(mut v: Vec<f32>) -> Option<Vec<f32>> {
    let norm = dot(&v, &v).sqrt();
    if !norm.is_finite() || norm <= f32::MIN_POSITIVE {
        return None;
    }
    v.iter_mut().for_each(|x| *x /= norm);
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_naive() {
        let a: Vec<f32> = (0..37).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..37).map(|i| 1.0 - i as f32 * 0.1).collect();
        let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - naive).abs() < 1e-3);
    }

    #[test]
    fn one_step_matches_the_lstm_equations() {
        // Input 1; w_ih = 1 for every gate row, w_hh = 0, bias 0: gates are all x.
        let layer = LstmLayer {
            input: 1,
            w_ih: vec![1.0; GATES],
            w_hh: vec![0.0; GATES * HIDDEN],
            bias: vec![0.0; GATES],
        };
        let x = 0.7f32;
        let h = layer.run(&[x]);
        let s = 1.0 / (1.0 + (-x).exp());
        let c = s * x.tanh();
        let want = s * c.tanh();
        assert!(h.iter().all(|&v| (v - want).abs() < 1e-6));
    }
}
