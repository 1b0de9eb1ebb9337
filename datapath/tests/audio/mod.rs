//! Test audio shared by the G.729 tests: a speech-like signal and the correlation check.
#![allow(dead_code)]

/// A speech-like test signal: a glottal-pulse-rich harmonic series on a gliding pitch
/// (110–220 Hz), shaped by two moving formants, under a 4 Hz syllabic envelope with short pauses.
pub(crate) fn speech_like(n: usize) -> Vec<i16> {
    use std::f64::consts::PI;
    let mut phase = 0.0f64;
    (0..n)
        .map(|i| {
            let t = i as f64 / 8000.0;
            let f0 = 165.0 + 55.0 * (2.0 * PI * 0.7 * t).sin();
            phase += 2.0 * PI * f0 / 8000.0;
            let f1 = 600.0 + 250.0 * (2.0 * PI * 0.9 * t).sin();
            let f2 = 1700.0 + 500.0 * (2.0 * PI * 0.6 * t).cos();
            let mut x = 0.0;
            for h in 1..=20 {
                let f = f0 * h as f64;
                if f > 3600.0 {
                    break;
                }
                let g = 1.0 / (1.0 + ((f - f1) / 150.0).powi(2)) + 0.5 / (1.0 + ((f - f2) / 200.0).powi(2));
                x += g * (h as f64 * phase).sin();
            }
            let env = (2.0 * PI * 4.0 * t).sin().abs().powf(0.7);
            (6000.0 * env * x) as i16
        })
        .collect()
}

/// Best normalised cross-correlation of `out` against `src` over lags 0..=`max_lag` (the codec
/// delays), skipping the first `skip` samples (decoder warm-up). Returns (ncc, lag).
pub(crate) fn best_ncc(src: &[i16], out: &[i16], max_lag: usize, skip: usize) -> (f64, usize) {
    let mut best = (f64::MIN, 0);
    for lag in 0..=max_lag {
        let n = out.len().min(src.len() + lag) - lag;
        if n <= skip {
            break;
        }
        let (a, b) = (&src[skip..n], &out[skip + lag..n + lag]);
        let dot: f64 = a.iter().zip(b).map(|(&x, &y)| f64::from(x) * f64::from(y)).sum();
        let ea: f64 = a.iter().map(|&x| f64::from(x).powi(2)).sum();
        let eb: f64 = b.iter().map(|&x| f64::from(x).powi(2)).sum();
        let ncc = dot / (ea * eb).sqrt().max(1.0);
        if ncc > best.0 {
            best = (ncc, lag);
        }
    }
    best
}
