//! The decode stages of the benchmarks: the Rust decoders (`mm_core::decode`) against
//! stb_image, the C decoder they replaced, on the same 1024x1024 photo-like picture, timed in
//! turn in one process (so that load from other processes hits both alike). Each stage is a
//! function, so that another bench program can run it (`#[path]` this file, with
//! `crates/core/tests/reference/{photo,stb}.rs` as the modules `photo` and `stb`).

use std::time::Instant;

use mm_core::decode::decode_image;
use mm_core::{Format, MAX_IMAGE_PIXELS};

use crate::photo;
use crate::stb::stb_rgb;

/// The picture's side in pixels.
const SIDE: u32 = 1024;

/// One stage's medians, in milliseconds.
pub struct Stage {
    pub name: &'static str,
    pub new_ms: f64,
    pub stb_ms: f64,
}

impl Stage {
    /// `stage=NAME new_ms=A stb_ms=B ratio=A/B`.
    pub fn line(&self) -> String {
        format!(
            "stage={} new_ms={:.2} stb_ms={:.2} ratio={:.2}",
            self.name,
            self.new_ms,
            self.stb_ms,
            self.new_ms / self.stb_ms
        )
    }
}

/// A PNG as libpng writes it by default (zlib level 6, adaptive filters), 3 channels.
pub fn decode_png_1024(runs: usize) -> Stage {
    let rgb = photo::photo(SIDE, SIDE);
    compare("decode_png_1024", &photo::png(&rgb, SIDE, SIDE), Format::Png, runs)
}

/// A baseline JPEG of quality 90 with 4:2:0 chroma, as cameras and most encoders write them.
pub fn decode_jpeg_1024(runs: usize) -> Stage {
    let rgb = photo::photo(SIDE, SIDE);
    compare("decode_jpeg_1024", &photo::jpeg(&rgb, SIDE, SIDE, false, true, false), Format::Jpeg, runs)
}

/// The same JPEG, progressive.
pub fn decode_jpeg_progressive_1024(runs: usize) -> Stage {
    let rgb = photo::photo(SIDE, SIDE);
    compare("decode_jpeg_progressive_1024", &photo::jpeg(&rgb, SIDE, SIDE, true, true, false), Format::Jpeg, runs)
}

/// Medians of `runs` decodes of `file` by each decoder, taken in turn, after one untimed
/// decode each that also checks that both read the picture's size.
fn compare(name: &'static str, file: &[u8], format: Format, runs: usize) -> Stage {
    let new = || decode_image(file, format, MAX_IMAGE_PIXELS).expect("the Rust decoder reads it");
    let stb = || stb_rgb(file).expect("stb_image reads it");
    let (a, b) = (new(), stb());
    assert_eq!((a.width, a.height), (b.0, b.1), "{name}");
    let (mut new_ms, mut stb_ms) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    for _ in 0..runs.max(1) {
        new_ms.push(time_ms(new));
        stb_ms.push(time_ms(stb));
    }
    Stage { name, new_ms: median(new_ms), stb_ms: median(stb_ms) }
}

fn time_ms<T>(f: impl FnOnce() -> T) -> f64 {
    let start = Instant::now();
    std::hint::black_box(f());
    start.elapsed().as_secs_f64() * 1e3
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
