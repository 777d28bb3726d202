//! A small inflater (RFC 1951 DEFLATE), after Mark Adler's `puff.c`: the
//! embedded PWA's gzip members, for the rare client that does not accept
//! gzip. It only ever reads bytes `build.rs` wrote, but any input is safe:
//! every read and write is bounds-checked and a bad stream is `None`.
//! Canonical Huffman codes are decoded a bit at a time — small code, not
//! fast (docs/dependencies.md weighs it against `miniz_oxide`).

/// Reads bits least-significant first.
struct Bits<'a> {
    src: &'a [u8],
    pos: usize,
    buf: u32,
    cnt: u32,
}

impl Bits<'_> {
    /// `need` (≤ 16) bits.
    fn bits(&mut self, need: u32) -> Option<u32> {
        while self.cnt < need {
            let b = *self.src.get(self.pos)?;
            self.pos += 1;
            self.buf |= u32::from(b) << self.cnt;
            self.cnt += 8;
        }
        let v = self.buf & ((1 << need) - 1);
        self.buf >>= need;
        self.cnt -= need;
        Some(v)
    }
}

/// A canonical Huffman code: codes per length, symbols in code order.
struct Huffman<const N: usize> {
    count: [u16; 16],
    symbol: [u16; N],
    /// Unused code space: 0 for a complete code.
    left: i32,
}

impl<const N: usize> Huffman<N> {
    /// Builds the code for `lengths`; `None` if over-subscribed.
    fn new(lengths: &[u8]) -> Option<Self> {
        let mut h = Huffman {
            count: [0; 16],
            symbol: [0; N],
            left: 0,
        };
        for &l in lengths {
            *h.count.get_mut(usize::from(l))? += 1;
        }
        if usize::from(h.count[0]) == lengths.len() {
            return Some(h);
        }
        let mut left: i32 = 1;
        for len in 1..16 {
            left = (left << 1) - i32::from(h.count[len]);
            if left < 0 {
                return None;
            }
        }
        h.left = left;
        let mut offs = [0u16; 16];
        for len in 1..15 {
            offs[len + 1] = offs[len] + h.count[len];
        }
        for (sym, &l) in lengths.iter().enumerate() {
            if l != 0 {
                let o = &mut offs[usize::from(l)];
                *h.symbol.get_mut(usize::from(*o))? = u16::try_from(sym).ok()?;
                *o += 1;
            }
        }
        Some(h)
    }

    /// Complete, or the single one-bit code RFC 1951 allows for a block
    /// with one distance (or one literal/length) code.
    fn usable(self) -> Option<Self> {
        let single = self.count[1] == 1 && self.count[2..].iter().all(|&c| c == 0);
        (self.left == 0 || single).then_some(self)
    }

    fn decode(&self, b: &mut Bits<'_>) -> Option<u16> {
        let (mut code, mut first, mut index) = (0i32, 0i32, 0i32);
        for len in 1..16 {
            code |= i32::try_from(b.bits(1)?).ok()?;
            let count = i32::from(self.count[len]);
            if code - count < first {
                let i = usize::try_from(index + (code - first)).ok()?;
                return self.symbol.get(i).copied();
            }
            index += count;
            first = (first + count) << 1;
            code <<= 1;
        }
        None
    }
}

const LENS: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
const LEXT: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
const DISTS: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
    2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
];
const DEXT: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];

/// Output into a fixed buffer.
struct Out<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Out<'_> {
    fn push(&mut self, b: u8) -> Option<()> {
        *self.buf.get_mut(self.len)? = b;
        self.len += 1;
        Some(())
    }
}

fn codes(
    b: &mut Bits<'_>,
    out: &mut Out<'_>,
    lit: &Huffman<288>,
    dist: &Huffman<30>,
) -> Option<()> {
    loop {
        let sym = usize::from(lit.decode(b)?);
        if sym < 256 {
            out.push(sym as u8)?;
        } else if sym == 256 {
            return Some(());
        } else {
            let s = sym - 257;
            let len = usize::from(*LENS.get(s)?) + b.bits(u32::from(LEXT[s]))? as usize;
            let d = usize::from(dist.decode(b)?);
            let back = usize::from(*DISTS.get(d)?) + b.bits(u32::from(DEXT[d]))? as usize;
            let from = out.len.checked_sub(back)?;
            for i in 0..len {
                let byte = *out.buf.get(from + i)?;
                out.push(byte)?;
            }
        }
    }
}

fn stored(b: &mut Bits<'_>, out: &mut Out<'_>) -> Option<()> {
    // Drop the rest of the current byte.
    b.buf = 0;
    b.cnt = 0;
    let head = b.src.get(b.pos..b.pos + 4)?;
    let len = u16::from_le_bytes([head[0], head[1]]);
    if len != !u16::from_le_bytes([head[2], head[3]]) {
        return None;
    }
    b.pos += 4;
    let data = b.src.get(b.pos..b.pos + usize::from(len))?;
    b.pos += data.len();
    let dst = out.buf.get_mut(out.len..out.len + data.len())?;
    dst.copy_from_slice(data);
    out.len += data.len();
    Some(())
}

fn fixed(b: &mut Bits<'_>, out: &mut Out<'_>) -> Option<()> {
    let mut lengths = [0u8; 288];
    for (i, l) in lengths.iter_mut().enumerate() {
        *l = match i {
            0..=143 => 8,
            144..=255 => 9,
            256..=279 => 7,
            _ => 8,
        };
    }
    // Both fixed codes are incomplete by design (288 and 30 symbols).
    let lit = Huffman::<288>::new(&lengths)?;
    let dist = Huffman::<30>::new(&[5; 30])?;
    codes(b, out, &lit, &dist)
}

fn dynamic(b: &mut Bits<'_>, out: &mut Out<'_>) -> Option<()> {
    const ORDER: [usize; 19] = [
        16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
    ];
    let nlen = b.bits(5)? as usize + 257;
    let ndist = b.bits(5)? as usize + 1;
    let ncode = b.bits(4)? as usize + 4;
    if nlen > 286 || ndist > 30 {
        return None;
    }
    let mut lengths = [0u8; 286 + 30];
    for &o in &ORDER[..ncode] {
        lengths[o] = b.bits(3)? as u8;
    }
    let lencode = Huffman::<19>::new(&lengths[..19])?;
    if lencode.left != 0 {
        return None;
    }
    let mut i = 0;
    while i < nlen + ndist {
        let sym = lencode.decode(b)?;
        if sym < 16 {
            lengths[i] = sym as u8;
            i += 1;
            continue;
        }
        let (value, repeat) = match sym {
            16 => (*lengths.get(i.checked_sub(1)?)?, 3 + b.bits(2)?),
            17 => (0, 3 + b.bits(3)?),
            _ => (0, 11 + b.bits(7)?),
        };
        let end = i + repeat as usize;
        lengths.get_mut(i..end.min(nlen + ndist))?.fill(value);
        if end > nlen + ndist {
            return None;
        }
        i = end;
    }
    if lengths[256] == 0 {
        return None;
    }
    let lit = Huffman::<288>::new(&lengths[..nlen])?.usable()?;
    let dist = Huffman::<30>::new(&lengths[nlen..nlen + ndist])?.usable()?;
    codes(b, out, &lit, &dist)
}

/// Inflates the raw DEFLATE stream `src` into `out`; the bytes written, or
/// `None` for a bad stream or one that does not fit.
pub(crate) fn inflate(src: &[u8], out: &mut [u8]) -> Option<usize> {
    let mut b = Bits {
        src,
        pos: 0,
        buf: 0,
        cnt: 0,
    };
    let mut o = Out { buf: out, len: 0 };
    loop {
        let last = b.bits(1)?;
        match b.bits(2)? {
            0 => stored(&mut b, &mut o)?,
            1 => fixed(&mut b, &mut o)?,
            2 => dynamic(&mut b, &mut o)?,
            _ => return None,
        }
        if last == 1 {
            return Some(o.len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `gzip -<level>` of `data`, deflate stream only (header and trailer cut).
    fn gzip_deflate(data: &[u8], level: &str) -> Vec<u8> {
        use std::io::Write;
        let mut child = std::process::Command::new("gzip")
            .args(["-n", "-c", level])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let input = data.to_vec();
        let w = std::thread::spawn(move || stdin.write_all(&input));
        let out = child.wait_with_output().unwrap();
        w.join().unwrap().unwrap();
        out.stdout[10..out.stdout.len() - 8].to_vec()
    }

    /// Streams from another encoder (GNU gzip): stored blocks (random bytes),
    /// fixed and dynamic Huffman blocks, long matches, empty input.
    #[test]
    fn inflates_what_gzip_writes() {
        let mut random = vec![0u8; 70_000];
        getrandom::fill(&mut random).unwrap();
        let text = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/pwa/app/main.js")).unwrap();
        let runs = vec![b'a'; 100_000];
        for data in [
            &random[..],
            &text[..],
            &runs[..],
            b"",
            b"a",
            b"abcabcabcabcabc",
        ] {
            for level in ["-1", "-6", "-9"] {
                let z = gzip_deflate(data, level);
                let mut out = vec![0u8; data.len()];
                assert_eq!(inflate(&z, &mut out), Some(data.len()), "{level}");
                assert_eq!(out, data);
                // One byte short of room: refused, not overrun.
                if !data.is_empty() {
                    let mut short = vec![0u8; data.len() - 1];
                    assert_eq!(inflate(&z, &mut short), None);
                }
            }
        }
    }

    /// Bad streams end in `None`, never a panic: every truncation and every
    /// single-bit flip of a real stream.
    #[test]
    fn bad_streams_are_refused_without_panics() {
        let text = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/pwa/app/api.js")).unwrap();
        let z = gzip_deflate(&text, "-9");
        let mut out = vec![0u8; text.len() + 64];
        for cut in 0..z.len() {
            assert_eq!(inflate(&z[..cut], &mut out), None, "cut at {cut}");
        }
        for i in 0..z.len() * 8 {
            let mut bad = z.clone();
            bad[i / 8] ^= 1 << (i % 8);
            let _ = inflate(&bad, &mut out);
        }
        assert_eq!(inflate(&[0b111], &mut out), None, "block type 3");
        assert_eq!(
            inflate(&[1, 1, 0, 0, 0], &mut out),
            None,
            "stored LEN/NLEN mismatch"
        );
    }
}
