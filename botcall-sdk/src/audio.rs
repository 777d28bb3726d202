//! PCM16 audio at any sample rate over a call's 48 kHz Opus (feature
//! `codec`): what bindings and bots that work with raw samples need, so
//! that none of them carries its own resampler or codec glue.
//!
//! - [`Resampler`]: streaming mono rate conversion (any rate ↔ any rate),
//!   linear interpolation behind a box low-pass when downsampling. Speech
//!   quality, not mastering quality: enough for speech recognizers and
//!   text-to-speech output.
//! - [`PcmDecoder`]: Opus packets → PCM16 at the application's rate.
//! - [`PcmEncoder`]: PCM16 at the application's rate, in chunks of any
//!   length → 20 ms Opus packets.

use crate::codec::{CodecError, FRAME_SAMPLES, OpusDecoder, OpusEncoder};

/// Lowest and highest sample rates the helpers take (Hz).
pub const RATE_RANGE: core::ops::RangeInclusive<u32> = 8_000..=48_000;

/// The call's rate (Opus in WebRTC).
pub const CALL_RATE: u32 = 48_000;

/// Checks a sample rate against [`RATE_RANGE`].
///
/// # Errors
/// [`CodecError`] naming the rate.
pub fn check_rate(rate: u32) -> Result<u32, CodecError> {
    if RATE_RANGE.contains(&rate) {
        Ok(rate)
    } else {
        Err(CodecError(format!(
            "sample rate {rate} Hz: must be {}..={} Hz",
            RATE_RANGE.start(),
            RATE_RANGE.end()
        )))
    }
}

/// Samples in 20 ms at `rate`.
pub fn frame_samples(rate: u32) -> usize {
    (rate / 50) as usize
}

/// A streaming mono sample-rate converter. Chunks may have any length; the
/// output is continuous across them.
#[derive(Debug, Clone)]
pub struct Resampler {
    from: u32,
    to: u32,
    /// Input samples per output sample.
    step: f64,
    /// Position of the next output sample, in input samples from the last
    /// sample of the previous chunk (`-1.0` is that sample).
    pos: f64,
    prev: f32,
    /// Box filter length when downsampling (1: off), and its history.
    taps: usize,
    hist: Vec<f32>,
    scratch: Vec<f32>,
}

impl Resampler {
    /// A converter from `from` Hz to `to` Hz.
    ///
    /// # Errors
    /// [`CodecError`] for a rate outside [`RATE_RANGE`].
    pub fn new(from: u32, to: u32) -> Result<Self, CodecError> {
        check_rate(from)?;
        check_rate(to)?;
        let taps = if from > to {
            (from as usize).div_ceil(to as usize)
        } else {
            1
        };
        Ok(Resampler {
            from,
            to,
            step: f64::from(from) / f64::from(to),
            pos: 0.0,
            prev: 0.0,
            taps,
            hist: vec![0.0; taps.saturating_sub(1)],
            scratch: Vec::new(),
        })
    }

    /// The input rate.
    pub fn from_rate(&self) -> u32 {
        self.from
    }

    /// The output rate.
    pub fn to_rate(&self) -> u32 {
        self.to
    }

    /// Converts `input`, appending to `out`.
    pub fn process(&mut self, input: &[f32], out: &mut Vec<f32>) {
        if self.from == self.to {
            out.extend_from_slice(input);
            return;
        }
        if input.is_empty() {
            return;
        }
        let mut x = core::mem::take(&mut self.scratch);
        x.clear();
        if self.taps > 1 {
            // Moving average over `taps` samples: a low-pass with its first
            // zero at the output rate, against aliasing.
            let k = self.taps;
            let norm = 1.0 / k as f32;
            let mut sum: f32 = self.hist.iter().sum();
            let hl = self.hist.len();
            for (i, &s) in input.iter().enumerate() {
                sum += s;
                x.push(sum * norm);
                let old = if i >= hl { input[i - hl] } else { self.hist[i] };
                sum -= old;
            }
            // Keep the last k-1 inputs.
            let mut h: Vec<f32> = self.hist.iter().chain(input.iter()).copied().collect();
            let cut = h.len() - (k - 1);
            h.drain(..cut);
            self.hist = h;
        } else {
            x.extend_from_slice(input);
        }
        let n = x.len() as f64;
        let at = |i: isize| -> f32 { if i < 0 { self.prev } else { x[i as usize] } };
        while self.pos <= n - 1.0 {
            let i = self.pos.floor();
            let frac = (self.pos - i) as f32;
            let i = i as isize;
            let a = at(i);
            let v = if frac == 0.0 {
                a
            } else {
                a + (at(i + 1) - a) * frac
            };
            out.push(v);
            self.pos += self.step;
        }
        self.pos -= n;
        self.prev = x[x.len() - 1];
        self.scratch = x;
    }
}

/// PCM16 → f32 in −1.0..1.0.
pub fn i16_to_f32(pcm: &[i16], out: &mut Vec<f32>) {
    out.extend(pcm.iter().map(|&s| f32::from(s) / 32768.0));
}

/// f32 → PCM16, clipped.
pub fn f32_to_i16(pcm: &[f32], out: &mut Vec<i16>) {
    out.extend(
        pcm.iter()
            .map(|&s| (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16),
    );
}

/// Decodes a call's Opus packets to mono PCM16 at the application's rate.
#[derive(Debug)]
pub struct PcmDecoder {
    dec: OpusDecoder,
    rs: Resampler,
    f: Vec<f32>,
}

impl PcmDecoder {
    /// A decoder producing `rate` Hz.
    ///
    /// # Errors
    /// [`CodecError`] for a rate outside [`RATE_RANGE`] or a libopus failure.
    pub fn new(rate: u32) -> Result<Self, CodecError> {
        Ok(PcmDecoder {
            dec: OpusDecoder::new(1)?,
            rs: Resampler::new(CALL_RATE, rate)?,
            f: Vec::new(),
        })
    }

    /// The output rate.
    pub fn rate(&self) -> u32 {
        self.rs.to_rate()
    }

    /// Decodes one packet (`None`: conceal one lost 20 ms frame), appending
    /// the samples to `out`.
    ///
    /// # Errors
    /// [`CodecError`] for a corrupt packet.
    pub fn decode(&mut self, packet: Option<&[u8]>, out: &mut Vec<i16>) -> Result<(), CodecError> {
        let pcm = match packet {
            Some(p) => self.dec.decode(p)?,
            None => self.dec.conceal()?,
        };
        self.f.clear();
        self.rs.process(pcm, &mut self.f);
        f32_to_i16(&self.f, out);
        Ok(())
    }
}

/// Encodes mono PCM16 at the application's rate, in chunks of any length,
/// to 20 ms Opus packets at 48 kHz.
#[derive(Debug)]
pub struct PcmEncoder {
    enc: OpusEncoder,
    rs: Resampler,
    f: Vec<f32>,
    /// Resampled 48 kHz samples not yet a whole frame.
    pending: Vec<f32>,
}

impl PcmEncoder {
    /// An encoder taking `rate` Hz.
    ///
    /// # Errors
    /// [`CodecError`] for a rate outside [`RATE_RANGE`] or a libopus failure.
    pub fn new(rate: u32) -> Result<Self, CodecError> {
        Ok(PcmEncoder {
            enc: OpusEncoder::new(1)?,
            rs: Resampler::new(rate, CALL_RATE)?,
            f: Vec::new(),
            pending: Vec::with_capacity(FRAME_SAMPLES * 2),
        })
    }

    /// The input rate.
    pub fn rate(&self) -> u32 {
        self.rs.from_rate()
    }

    /// Takes `pcm`, returns the Opus packets of every 20 ms now complete
    /// (a remainder waits for the next chunk).
    ///
    /// # Errors
    /// [`CodecError`] from libopus.
    pub fn push(&mut self, pcm: &[i16]) -> Result<Vec<Vec<u8>>, CodecError> {
        self.f.clear();
        i16_to_f32(pcm, &mut self.f);
        let f = core::mem::take(&mut self.f);
        self.rs.process(&f, &mut self.pending);
        self.f = f;
        let mut packets = Vec::new();
        while self.pending.len() >= FRAME_SAMPLES {
            packets.push(self.enc.encode(&self.pending[..FRAME_SAMPLES])?);
            self.pending.drain(..FRAME_SAMPLES);
        }
        Ok(packets)
    }

    /// Pads the remainder with silence to a whole frame and encodes it
    /// (`None` when nothing waits).
    ///
    /// # Errors
    /// [`CodecError`] from libopus.
    pub fn flush(&mut self) -> Result<Option<Vec<u8>>, CodecError> {
        if self.pending.is_empty() {
            return Ok(None);
        }
        self.pending.resize(FRAME_SAMPLES, 0.0);
        let p = self.enc.encode(&self.pending)?;
        self.pending.clear();
        Ok(Some(p))
    }

    /// Drops the remainder (barge-in).
    pub fn clear(&mut self) {
        self.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Tone, rms};

    fn sine(rate: u32, freq: f32, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| 0.5 * (2.0 * core::f32::consts::PI * freq * i as f32 / rate as f32).sin())
            .collect()
    }

    #[test]
    fn chunked_resampling_keeps_length_and_level() {
        for (from, to) in [
            (48_000, 16_000),
            (16_000, 48_000),
            (24_000, 48_000),
            (44_100, 48_000),
            (48_000, 8_000),
        ] {
            let input = sine(from, 440.0, from as usize); // 1 s
            let mut r = Resampler::new(from, to).unwrap();
            let mut out = Vec::new();
            for chunk in input.chunks(317) {
                r.process(chunk, &mut out);
            }
            let want = to as usize;
            assert!(
                out.len().abs_diff(want) <= 2,
                "{from}->{to}: {} samples",
                out.len()
            );
            let level = rms(&out[want / 10..]);
            assert!((level - 0.354).abs() < 0.03, "{from}->{to}: rms {level}");
        }
    }

    #[test]
    fn downsampling_damps_what_the_new_rate_cannot_carry() {
        // 7 kHz at 48 kHz → 8 kHz would alias to 1 kHz.
        let input = sine(48_000, 7_000.0, 48_000);
        let mut r = Resampler::new(48_000, 8_000).unwrap();
        let mut out = Vec::new();
        r.process(&input, &mut out);
        assert!(rms(&out[800..]) < 0.12, "rms {}", rms(&out[800..]));
    }

    #[test]
    fn rates_outside_the_range_are_refused() {
        assert!(Resampler::new(4_000, 48_000).is_err());
        assert!(PcmEncoder::new(96_000).is_err());
        assert!(PcmDecoder::new(0).is_err());
    }

    #[test]
    fn pcm_goes_through_opus_at_16_and_24_khz() {
        let mut tone = Tone::new(440.0, 0.5);
        let mut enc48 = OpusEncoder::new(1).unwrap();
        let mut dec = PcmDecoder::new(16_000).unwrap();
        let mut out = Vec::new();
        for _ in 0..50 {
            let p = enc48.encode(&tone.next_frame()).unwrap();
            let before = out.len();
            dec.decode(Some(&p), &mut out).unwrap();
            assert_eq!(out.len() - before, 320);
        }
        dec.decode(None, &mut out).unwrap();
        let mut f = Vec::new();
        i16_to_f32(&out[3200..16000], &mut f);
        assert!((rms(&f) - 0.354).abs() < 0.06, "rms {}", rms(&f));

        // 24 kHz in odd chunks → whole 20 ms packets.
        let mut enc = PcmEncoder::new(24_000).unwrap();
        let mut pcm = Vec::new();
        f32_to_i16(&sine(24_000, 440.0, 24_000), &mut pcm);
        let mut packets = Vec::new();
        for c in pcm.chunks(1000) {
            packets.extend(enc.push(c).unwrap());
        }
        packets.extend(enc.flush().unwrap());
        assert!((49..=51).contains(&packets.len()), "{}", packets.len());
        let mut d = OpusDecoder::new(1).unwrap();
        let mut all = Vec::new();
        for p in &packets {
            all.extend_from_slice(d.decode(p).unwrap());
        }
        assert!((rms(&all[4800..40000]) - 0.354).abs() < 0.06);
        enc.push(&pcm[..100]).unwrap();
        enc.clear();
        assert_eq!(enc.flush().unwrap(), None);
    }
}
