//! `make bench-decode` (`cargo run --release -p mm-session-core --example bench-decode [RUNS]`):
//! decoding a 1024x1024 PNG and JPEG with the Rust decoders against stb_image, medians of RUNS
//! (default 25) interleaved runs, one line per stage (see stages.rs).

#[path = "../../tests/reference/photo.rs"]
mod photo;
mod stages;
#[path = "../../tests/reference/stb.rs"]
mod stb;

fn main() {
    let runs = std::env::args().nth(1).map(|a| a.parse().expect("RUNS: a number")).unwrap_or(25);
    for stage in [stages::decode_png_1024, stages::decode_jpeg_1024, stages::decode_jpeg_progressive_1024] {
        println!("{}", stage(runs).line());
    }
}
