//! Audio timing without an allocator: Opus frame pacing at 20 ms and a
//! small fixed-capacity jitter buffer.

mod jitter;
mod pacer;

pub use jitter::{
    JITTER_CAPACITY, JitterBuffer, JitterFrame, JitterStats, MAX_FRAME_LEN, Push, SeqExtender,
};
pub use pacer::{FRAME_MS, FramePacer, FrameSlot, MAX_LAG_FRAMES, SAMPLE_RATE, SAMPLES_PER_FRAME};
