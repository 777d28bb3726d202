//! PCM ↔ Opus for bots that work with raw audio (feature `codec`, over
//! libopus via the `opus` crate), plus a tone generator and an RMS meter.
//!
//! Frames are 20 ms at 48 kHz: 960 samples per channel, interleaved for
//! stereo, `f32` in −1.0..=1.0.

use crate::media::SAMPLES_PER_FRAME;

/// Samples per channel in one 20 ms frame.
pub const FRAME_SAMPLES: usize = SAMPLES_PER_FRAME as usize;
/// Largest Opus packet produced.
pub const MAX_PACKET: usize = 1275;

/// A libopus error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecError(pub String);

impl core::fmt::Display for CodecError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "opus: {}", self.0)
    }
}

impl std::error::Error for CodecError {}

impl From<opus::Error> for CodecError {
    fn from(e: opus::Error) -> Self {
        CodecError(e.to_string())
    }
}

fn channels(n: u8) -> Result<opus::Channels, CodecError> {
    match n {
        1 => Ok(opus::Channels::Mono),
        2 => Ok(opus::Channels::Stereo),
        _ => Err(CodecError(format!("{n} channels: only 1 or 2"))),
    }
}

/// Encodes 20 ms PCM frames at 48 kHz to Opus (VoIP mode).
pub struct OpusEncoder {
    enc: opus::Encoder,
    channels: u8,
    out: [u8; MAX_PACKET],
}

impl core::fmt::Debug for OpusEncoder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "OpusEncoder({} ch)", self.channels)
    }
}

impl OpusEncoder {
    /// A mono (1) or stereo (2) encoder.
    ///
    /// # Errors
    /// [`CodecError`] for other channel counts or a libopus failure.
    pub fn new(channels_n: u8) -> Result<Self, CodecError> {
        let enc = opus::Encoder::new(48_000, channels(channels_n)?, opus::Application::Voip)?;
        Ok(OpusEncoder {
            enc,
            channels: channels_n,
            out: [0; MAX_PACKET],
        })
    }

    /// Sets the target bitrate in bits per second.
    ///
    /// # Errors
    /// [`CodecError`] from libopus.
    pub fn set_bitrate(&mut self, bps: i32) -> Result<(), CodecError> {
        Ok(self.enc.set_bitrate(opus::Bitrate::Bits(bps))?)
    }

    /// Encodes one frame of `960 × channels` samples.
    ///
    /// # Errors
    /// [`CodecError`] for a wrong length or a libopus failure.
    pub fn encode(&mut self, pcm: &[f32]) -> Result<Vec<u8>, CodecError> {
        let want = FRAME_SAMPLES * usize::from(self.channels);
        if pcm.len() != want {
            return Err(CodecError(format!(
                "a frame is {want} samples, not {}",
                pcm.len()
            )));
        }
        let n = self.enc.encode_float(pcm, &mut self.out)?;
        Ok(self.out[..n].to_vec())
    }

    /// As [`OpusEncoder::encode`] for 16-bit samples.
    ///
    /// # Errors
    /// [`CodecError`].
    pub fn encode_i16(&mut self, pcm: &[i16]) -> Result<Vec<u8>, CodecError> {
        let want = FRAME_SAMPLES * usize::from(self.channels);
        if pcm.len() != want {
            return Err(CodecError(format!(
                "a frame is {want} samples, not {}",
                pcm.len()
            )));
        }
        let n = self.enc.encode(pcm, &mut self.out)?;
        Ok(self.out[..n].to_vec())
    }
}

/// Decodes Opus packets to 48 kHz PCM (any packet: WebRTC peers may send
/// mono or stereo, 10–60 ms).
pub struct OpusDecoder {
    dec: opus::Decoder,
    channels: u8,
    buf: Vec<f32>,
}

impl core::fmt::Debug for OpusDecoder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "OpusDecoder({} ch)", self.channels)
    }
}

/// Longest packet duration Opus allows: 120 ms.
const MAX_DECODED: usize = 5760;

impl OpusDecoder {
    /// A decoder producing mono (1) or interleaved stereo (2).
    ///
    /// # Errors
    /// [`CodecError`].
    pub fn new(channels_n: u8) -> Result<Self, CodecError> {
        Ok(OpusDecoder {
            dec: opus::Decoder::new(48_000, channels(channels_n)?)?,
            channels: channels_n,
            buf: vec![0.0; MAX_DECODED * usize::from(channels_n)],
        })
    }

    /// Decodes one packet; returns the samples (interleaved for stereo).
    ///
    /// # Errors
    /// [`CodecError`] for a corrupt packet.
    pub fn decode(&mut self, packet: &[u8]) -> Result<&[f32], CodecError> {
        let n = self.dec.decode_float(packet, &mut self.buf, false)?;
        Ok(&self.buf[..n * usize::from(self.channels)])
    }

    /// Concealment for one lost 20 ms frame.
    ///
    /// # Errors
    /// [`CodecError`].
    pub fn conceal(&mut self) -> Result<&[f32], CodecError> {
        let len = FRAME_SAMPLES * usize::from(self.channels);
        let n = self.dec.decode_float(&[], &mut self.buf[..len], false)?;
        Ok(&self.buf[..n * usize::from(self.channels)])
    }
}

/// Root mean square of `samples` (0.0 for none). A full-scale sine is
/// 1/√2 ≈ 0.707; a 0.5-amplitude one ≈ 0.354.
pub fn rms(samples: &[f32]) -> f32 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|s| f64::from(*s) * f64::from(*s)).sum();
    (sum / samples.len() as f64).sqrt() as f32
}

/// A sine tone, frame by frame, phase-continuous.
#[derive(Debug, Clone)]
pub struct Tone {
    freq: f64,
    amplitude: f32,
    phase: f64,
}

impl Tone {
    /// `freq` Hz at `amplitude` (0.0..=1.0), 48 kHz.
    pub fn new(freq: f64, amplitude: f32) -> Self {
        Tone {
            freq,
            amplitude,
            phase: 0.0,
        }
    }

    /// The next 20 ms mono frame.
    pub fn next_frame(&mut self) -> [f32; FRAME_SAMPLES] {
        let mut out = [0.0f32; FRAME_SAMPLES];
        let step = core::f64::consts::TAU * self.freq / 48_000.0;
        for s in out.iter_mut() {
            *s = self.amplitude * self.phase.sin() as f32;
            self.phase = (self.phase + step) % core::f64::consts::TAU;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tone_round_trips_through_opus() {
        let mut tone = Tone::new(440.0, 0.5);
        let mut enc = OpusEncoder::new(1).unwrap();
        let mut dec = OpusDecoder::new(1).unwrap();
        let mut all = Vec::new();
        for _ in 0..50 {
            let pkt = enc.encode(&tone.next_frame()).unwrap();
            assert!(!pkt.is_empty() && pkt.len() <= MAX_PACKET);
            all.extend_from_slice(dec.decode(&pkt).unwrap());
        }
        // Skip the codec's start-up.
        let r = rms(&all[4800..]);
        assert!((r - 0.354).abs() < 0.03, "rms {r}");
        assert_eq!(dec.conceal().unwrap().len(), 960);
        assert!(enc.encode(&[0.0; 100]).is_err());
        assert!(dec.decode(&[0xFF; 3]).is_err() || dec.decode(&[0xFF; 3]).is_ok());
        assert!(OpusEncoder::new(3).is_err());
        assert_eq!(rms(&[]), 0.0);
        // Stereo.
        let mut enc2 = OpusEncoder::new(2).unwrap();
        let frame: Vec<f32> = tone.next_frame().iter().flat_map(|s| [*s, *s]).collect();
        let pkt = enc2.encode(&frame).unwrap();
        let mut dec2 = OpusDecoder::new(2).unwrap();
        assert_eq!(dec2.decode(&pkt).unwrap().len(), 1920);
        assert_eq!(
            enc2.encode_i16(&[0i16; 1920]).map(|p| !p.is_empty()),
            Ok(true)
        );
    }
}
