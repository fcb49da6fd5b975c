//! The hand-set "seeing" pair (`fixtures_seeing`) through the C API: asked about an image, the
//! greedy answer is exactly the image's colour, then end of generation, for every media kind,
//! in every encoded format the library reads, in follow-ups answered from the cache, and about
//! the most recent image when there are several (after a saved state is loaded: `state`; after
//! a cancelled encode: `cancel`).

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

use crate::common::{ask, ask_info, bytes_item, create, encoded_item, fixture_dir, Chat};
use ::mm_session::ask::*;
use ::mm_session::conversation::*;
use ::mm_session::library::*;
use ::mm_session::session::*;
use ::mm_session::status::mm_status;
use mm_core::Format;
use mm_fixtures::png_rgb;
use mm_fixtures::seeing::{self, COLOURS, COLOUR_RGB, IMAGE_SIDE};

pub(crate) struct Pair {
    pub(crate) dir: PathBuf,
    pub(crate) model: CString,
    pub(crate) mmproj: CString,
}

/// The seeing pair and its images, written once per test binary.
pub(crate) fn pair() -> &'static Pair {
    static PAIR: OnceLock<Pair> = OnceLock::new();
    PAIR.get_or_init(|| {
        let dir = fixture_dir();
        seeing::write_seeing(&dir).expect("seeing fixtures");
        assert_eq!(mm_log_set(mm_log_level::MM_LOG_ERROR as i32, None, std::ptr::null_mut()), mm_status::MM_OK);
        let c = |f: &str| CString::new(dir.join(f).to_string_lossy().as_bytes()).unwrap();
        Pair { model: c(seeing::MODEL_FILE), mmproj: c(seeing::MMPROJ_FILE), dir }
    })
}

pub(crate) fn session() -> *mut mm_session {
    let p = pair();
    let mut params = mm_session_params_default();
    params.model_path = p.model.as_ptr();
    params.mmproj_path = p.mmproj.as_ptr();
    params.n_ctx = 1024;
    params.n_threads = 1;
    create(&params).expect("create")
}

/// One image, with the C strings and bytes its `mm_media` points to.
pub(crate) struct Image {
    path: Option<CString>,
    bytes: Vec<u8>,
    pub(crate) item: mm_media,
}

impl Image {
    fn file(name: &str) -> Image {
        let path = CString::new(pair().dir.join(name).to_string_lossy().as_bytes()).unwrap();
        let item = mm_media {
            kind: mm_media_kind::MM_MEDIA_FILE as i32,
            width: 0,
            height: 0,
            reserved0: 0,
            path: path.as_ptr(),
            data: std::ptr::null(),
            size: 0,
        };
        Image { path: Some(path), bytes: Vec::new(), item }
    }
    pub(crate) fn colour_file(colour: &str) -> Image {
        Image::file(&seeing::image_file(colour))
    }
    fn encoded(bytes: Vec<u8>) -> Image {
        let item = encoded_item(&bytes);
        Image { path: None, bytes, item }
    }
    fn rgb(side: u32, bytes: Vec<u8>) -> Image {
        let item = mm_media { width: side, height: side, ..bytes_item(mm_media_kind::MM_MEDIA_RGB, &bytes) };
        Image { path: None, bytes, item }
    }
}

fn rgb_of(colour: &str) -> [u8; 3] {
    COLOUR_RGB[COLOURS.iter().position(|c| *c == colour).unwrap()]
}

pub(crate) fn greedy() -> mm_ask_params {
    let mut a = mm_ask_params_default();
    a.temperature = 0.0;
    a.max_tokens = 8;
    a
}

fn last(s: *mut mm_session) -> mm_ask_info {
    let mut i = ask_info();
    assert_eq!(unsafe { mm_session_last_ask(s, &mut i) }, mm_status::MM_OK);
    i
}

/// Asks and checks that the answer is exactly `want` and that generation ended on an
/// end-of-generation token. Returns the raw answer and the request's figures.
pub(crate) fn expect(s: *mut mm_session, a: &mm_ask_params, want: &str, what: &str) -> (String, mm_ask_info) {
    let answer = ask(s, a).unwrap_or_else(|e| panic!("{what}: {e:?}"));
    let info = last(s);
    assert_eq!(answer.trim(), want, "{what}: {info:?}");
    assert_eq!(info.stop_reason, mm_stop_reason::MM_STOP_EOG as i32, "{what}: {info:?}");
    (answer, info)
}

pub(crate) const QUESTION: &str = "What colour is this picture?";

/// The one-image question as a chat message and as a raw prompt.
fn expect_both_ways(s: *mut mm_session, image: &mm_media, want: &str, what: &str) {
    let chat = Chat::new(&[("user", QUESTION, vec![*image])]);
    expect(s, &chat.on(greedy()), want, &format!("{what}, chat"));
    let prompt = CString::new(format!("<__media__>\n{QUESTION}")).unwrap();
    let mut a = greedy();
    a.prompt = prompt.as_ptr();
    a.media = image;
    a.n_media = 1;
    expect(s, &a, want, &format!("{what}, raw prompt"));
}

#[test]
fn each_colour_from_a_file() {
    let s = session();
    for colour in COLOURS {
        let image = Image::colour_file(colour);
        expect_both_ways(s, &image.item, colour, &format!("file {colour}"));
        assert!(image.path.is_some());
    }
    assert_eq!(mm_session_destroy(s), mm_status::MM_OK);
}

#[test]
fn the_default_sampler_gives_the_same_answers() {
    let s = session();
    for colour in COLOURS {
        let image = Image::colour_file(colour);
        let chat = Chat::new(&[("user", QUESTION, vec![image.item])]);
        for seed in 0..4 {
            let mut a = chat.on(greedy());
            let defaults = mm_ask_params_default();
            (a.temperature, a.top_k, a.top_p, a.min_p, a.seed) =
                (defaults.temperature, defaults.top_k, defaults.top_p, defaults.min_p, seed);
            expect(s, &a, colour, &format!("{colour}, temperature {}, seed {seed}", a.temperature));
        }
    }
    assert_eq!(mm_session_destroy(s), mm_status::MM_OK);
}

#[test]
fn each_colour_from_an_encoded_buffer() {
    let s = session();
    for colour in COLOURS {
        let png = std::fs::read(pair().dir.join(seeing::image_file(colour))).unwrap();
        let image = Image::encoded(png);
        expect_both_ways(s, &image.item, colour, &format!("encoded {colour}"));
        assert!(!image.bytes.is_empty());
    }
    // A PNG of another size is resized to the projector's 32 px first.
    let image = Image::encoded(png_rgb(80, 80, &seeing::solid_rgb(80, 80, rgb_of("yellow"))));
    expect_both_ways(s, &image.item, "yellow", "encoded 80 px yellow");
    assert_eq!(mm_session_destroy(s), mm_status::MM_OK);
}

/// An `IMAGE_SIDE`-pixel square of RGB pixels in each encoded format the library reads: PNG,
/// baseline and progressive JPEG (quality 90, 4:2:0, as cameras write them), GIF (on a 3-3-2
/// bit palette: 256 colours), 24-bit BMP, binary and ASCII PPM, lossless WebP.
fn encodings(rgb: &[u8]) -> Vec<(&'static str, Format, Vec<u8>)> {
    use image::ImageEncoder;
    let side = IMAGE_SIDE;
    let jpeg = |progressive: bool| {
        let mut out = Vec::new();
        let mut e = jpeg_encoder::Encoder::new(&mut out, 90);
        e.set_sampling_factor(jpeg_encoder::SamplingFactor::R_4_2_0);
        e.set_progressive(progressive);
        e.encode(rgb, side as u16, side as u16, jpeg_encoder::ColorType::Rgb).unwrap();
        out
    };
    let mut gif = Vec::new();
    {
        let palette: Vec<u8> =
            (0..=255u8).flat_map(|i| [(i >> 5) * 32 + 16, ((i >> 2) & 7) * 32 + 16, (i & 3) * 64 + 32]).collect();
        let indices: Vec<u8> = rgb.chunks(3).map(|p| (p[0] & 0xE0) | ((p[1] >> 5) << 2) | (p[2] >> 6)).collect();
        let mut e = gif::Encoder::new(&mut gif, side as u16, side as u16, &palette).unwrap();
        e.write_frame(&gif::Frame {
            width: side as u16,
            height: side as u16,
            buffer: indices.into(),
            ..Default::default()
        })
        .unwrap();
    }
    let mut bmp = Vec::new();
    image::codecs::bmp::BmpEncoder::new(&mut bmp).write_image(rgb, side, side, image::ExtendedColorType::Rgb8).unwrap();
    let mut webp = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut webp)
        .write_image(rgb, side, side, image::ExtendedColorType::Rgb8)
        .unwrap();
    let ppm = [format!("P6\n{side} {side}\n255\n").into_bytes(), rgb.to_vec()].concat();
    let ascii: String = rgb.iter().map(|v| format!("{v}\n")).collect();
    vec![
        ("PNG", Format::Png, png_rgb(side, side, rgb)),
        ("baseline JPEG", Format::Jpeg, jpeg(false)),
        ("progressive JPEG", Format::Jpeg, jpeg(true)),
        ("GIF", Format::Gif, gif),
        ("BMP", Format::Bmp, bmp),
        ("binary PPM", Format::Pnm, ppm),
        ("ASCII PPM", Format::Pnm, format!("P3\n{side} {side}\n255\n{ascii}").into_bytes()),
        ("lossless WebP", Format::WebP, webp),
    ]
}

#[test]
fn each_format_answers_the_colour() {
    let s = session();
    let mut pictures: Vec<(String, &str, Vec<u8>)> =
        COLOURS.iter().map(|c| (c.to_string(), *c, seeing::solid_rgb(IMAGE_SIDE, IMAGE_SIDE, rgb_of(c)))).collect();
    pictures.push(("noisy red".into(), "red", seeing::noisy_red(IMAGE_SIDE, IMAGE_SIDE, 7)));
    for (picture, want, rgb) in &pictures {
        for (name, format, bytes) in encodings(rgb) {
            assert_eq!(Format::sniff(&bytes), Some(format), "{name}");
            let image = Image::encoded(bytes);
            expect_both_ways(s, &image.item, want, &format!("{picture} as {name}"));
        }
    }
    // Lossy WebP (VP8), from libwebp's cwebp (tests/media/README.md).
    for colour in COLOURS {
        let bytes = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../tests/media/seeing-{colour}-lossy.webp")),
        )
        .unwrap();
        assert_eq!(Format::sniff(&bytes), Some(Format::WebP));
        let image = Image::encoded(bytes);
        expect_both_ways(s, &image.item, colour, &format!("{colour} as lossy WebP"));
    }
    assert_eq!(mm_session_destroy(s), mm_status::MM_OK);
}

#[test]
fn each_colour_from_raw_pixels() {
    let s = session();
    for colour in COLOURS {
        for side in [IMAGE_SIDE, 20, 57] {
            let image = Image::rgb(side, seeing::solid_rgb(side, side, rgb_of(colour)));
            expect_both_ways(s, &image.item, colour, &format!("raw {side} px {colour}"));
        }
    }
    assert_eq!(mm_session_destroy(s), mm_status::MM_OK);
}

#[test]
fn a_noisy_mostly_red_image() {
    let s = session();
    let image = Image::file(seeing::NOISY_RED_FILE);
    expect_both_ways(s, &image.item, "red", "noisy red file");
    for seed in 0..5 {
        let image = Image::rgb(IMAGE_SIDE, seeing::noisy_red(IMAGE_SIDE, IMAGE_SIDE, seed));
        expect_both_ways(s, &image.item, "red", &format!("noisy red, seed {seed}"));
    }
    assert_eq!(mm_session_destroy(s), mm_status::MM_OK);
}

/// Rows of `side` pixels: the top `top_rows` of one colour, the rest of another.
fn two_bands(side: u32, top_rows: u32, top: &str, bottom: &str) -> Vec<u8> {
    let mut px = seeing::solid_rgb(side, top_rows, rgb_of(top));
    px.extend(seeing::solid_rgb(side, side - top_rows, rgb_of(bottom)));
    px
}

#[test]
fn every_patch_counts_alike() {
    // The last patches of an image are its bottom row: a model that favoured its nearest image
    // tokens would name the bottom colour.
    let s = session();
    for (top_rows, top, bottom, want) in [
        (24, "red", "blue", "red"),
        (8, "red", "blue", "blue"),
        (24, "white", "black", "white"),
        (24, "green", "yellow", "green"),
    ] {
        let image = Image::rgb(IMAGE_SIDE, two_bands(IMAGE_SIDE, top_rows, top, bottom));
        expect_both_ways(s, &image.item, want, &format!("{top_rows} rows {top} over {bottom}"));
    }
    assert_eq!(mm_session_destroy(s), mm_status::MM_OK);
}

#[test]
fn without_an_image_the_answer_is_empty() {
    let s = session();
    let chat = Chat::new(&[("user", QUESTION, vec![])]);
    expect(s, &chat.on(greedy()), "", "no image");
    assert_eq!(last(s).tokens_generated, 0, "end of generation at once");
    assert_eq!(mm_session_destroy(s), mm_status::MM_OK);
}

#[test]
fn a_follow_up_is_answered_from_the_cache() {
    let s = session();
    for colour in ["green", "white"] {
        assert_eq!(mm_session_reset(s), mm_status::MM_OK);
        let image = Image::colour_file(colour);
        let turn1 = Chat::new(&[("user", QUESTION, vec![image.item])]);
        let (a1, i1) = expect(s, &turn1.on(greedy()), colour, "turn 1");
        assert_eq!(i1.media_encoded, 1);
        let turn2 = Chat::new(&[
            ("user", QUESTION, vec![image.item]),
            ("assistant", &a1, vec![]),
            ("user", "Are you sure? Tell me its colour again.", vec![]),
        ]);
        let (_, i2) = expect(s, &turn2.on(greedy()), colour, "turn 2");
        assert_eq!(i2.media_encoded, 0, "the image stays in the cache: {i2:?}");
        assert!(i2.positions_reused > 16, "{i2:?}");
    }
    assert_eq!(mm_session_destroy(s), mm_status::MM_OK);
}

/// The same with the image as the bytes of each format: the follow-up sizes the image from its
/// header (`decode::image_size`) and sends a placeholder, which must never be evaluated.
#[test]
fn a_follow_up_about_encoded_bytes_of_each_format_is_answered_from_the_cache() {
    let s = session();
    for (name, _, bytes) in encodings(&seeing::solid_rgb(IMAGE_SIDE, IMAGE_SIDE, rgb_of("yellow"))) {
        assert_eq!(mm_session_reset(s), mm_status::MM_OK);
        let image = Image::encoded(bytes);
        let turn1 = Chat::new(&[("user", QUESTION, vec![image.item])]);
        let (a1, i1) = expect(s, &turn1.on(greedy()), "yellow", &format!("{name}, turn 1"));
        assert_eq!(i1.media_encoded, 1, "{name}");
        let turn2 = Chat::new(&[
            ("user", QUESTION, vec![image.item]),
            ("assistant", &a1, vec![]),
            ("user", "Are you sure? Tell me its colour again.", vec![]),
        ]);
        let (_, i2) = expect(s, &turn2.on(greedy()), "yellow", &format!("{name}, turn 2"));
        assert_eq!(i2.media_encoded, 0, "{name}: the image stays in the cache: {i2:?}");
    }
    assert_eq!(mm_session_destroy(s), mm_status::MM_OK);
}

#[test]
fn the_answer_follows_the_most_recent_image_across_turns() {
    let s = session();
    let (red, blue) = (Image::colour_file("red"), Image::colour_file("blue"));
    let turn1 = Chat::new(&[("user", QUESTION, vec![red.item])]);
    let (a1, _) = expect(s, &turn1.on(greedy()), "red", "turn 1");
    let turn2 = Chat::new(&[
        ("user", QUESTION, vec![red.item]),
        ("assistant", &a1, vec![]),
        ("user", "And this one?", vec![blue.item]),
    ]);
    let (a2, i2) = expect(s, &turn2.on(greedy()), "blue", "turn 2");
    assert_eq!(i2.media_encoded, 1, "only the new image is encoded: {i2:?}");
    // A third turn without an image: still the most recent one.
    let turn3 = Chat::new(&[
        ("user", QUESTION, vec![red.item]),
        ("assistant", &a1, vec![]),
        ("user", "And this one?", vec![blue.item]),
        ("assistant", &a2, vec![]),
        ("user", "Which colour did you say?", vec![]),
    ]);
    let (_, i3) = expect(s, &turn3.on(greedy()), "blue", "turn 3");
    assert_eq!(i3.media_encoded, 0);

    // Three red images in turn 1 outweigh one blue image in turn 2 in any average.
    assert_eq!(mm_session_reset(s), mm_status::MM_OK);
    let reds = vec![red.item; 3];
    let turn1 = Chat::new(&[("user", QUESTION, reds.clone())]);
    let (a1, _) = expect(s, &turn1.on(greedy()), "red", "three reds");
    let turn2 =
        Chat::new(&[("user", QUESTION, reds), ("assistant", &a1, vec![]), ("user", "And this one?", vec![blue.item])]);
    expect(s, &turn2.on(greedy()), "blue", "three reds, then blue");
    assert_eq!(mm_session_destroy(s), mm_status::MM_OK);
}

#[test]
fn two_markers_in_one_prompt_answer_about_the_last_image() {
    let s = session();
    let pairs = [
        ("red", "blue"),
        ("blue", "red"),
        ("white", "black"),
        ("black", "white"),
        ("green", "yellow"),
        ("yellow", "green"),
        ("red", "red"),
    ];
    for (first, second) in pairs {
        let (a, b) = (Image::colour_file(first), Image::colour_file(second));
        let media = [a.item, b.item];
        // Adjacent markers (the images' tokens touch), and markers with text between.
        for text in
            [format!("<__media__><__media__>{QUESTION}"), format!("First <__media__> then <__media__> {QUESTION}")]
        {
            let prompt = CString::new(text).unwrap();
            let mut p = greedy();
            p.prompt = prompt.as_ptr();
            p.media = media.as_ptr();
            p.n_media = 2;
            expect(s, &p, second, &format!("{first} then {second}"));
        }
        let chat = Chat::new(&[("user", QUESTION, media.to_vec())]);
        expect(s, &chat.on(greedy()), second, &format!("chat, {first} then {second}"));
    }
    // Three older images of one colour outweigh the last one in any average: only recency
    // names the last one.
    for (older, newest) in [("red", "blue"), ("white", "black"), ("yellow", "green")] {
        let (a, b) = (Image::colour_file(older), Image::colour_file(newest));
        let media = [a.item, a.item, a.item, b.item];
        let prompt = CString::new(format!("<__media__><__media__><__media__><__media__>{QUESTION}")).unwrap();
        let mut p = greedy();
        p.prompt = prompt.as_ptr();
        p.media = media.as_ptr();
        p.n_media = 4;
        expect(s, &p, newest, &format!("three {older} then {newest}"));
    }
    assert_eq!(mm_session_destroy(s), mm_status::MM_OK);
}

#[test]
fn recency_holds_over_the_whole_context() {
    let p = pair();
    let mut params = mm_session_params_default();
    params.model_path = p.model.as_ptr();
    params.mmproj_path = p.mmproj.as_ptr();
    params.n_ctx = 4096; // the model's training context
    params.n_threads = 1;
    let s = create(&params).unwrap();
    let filler = |n: usize| "lorem ipsum dolor sit amet ".repeat(n);
    let (red, blue) = (Image::colour_file("red"), Image::colour_file("blue"));
    // One image at the very start, the question about 4000 positions later.
    let far = Chat::new(&[("user", &format!("{}{QUESTION}", filler(146)), vec![red.item])]);
    let (_, info) = expect(s, &far.on(greedy()), "red", "one image 4000 positions back");
    assert!(info.prompt_positions > 3950, "{info:?}");
    // Three red images, then 1500 positions later a blue one, 2400 positions back.
    let text1 = format!("<__media__><__media__><__media__>{}<__media__>{}{QUESTION}", filler(54), filler(89));
    let both = Chat::new(&[("user", &text1, vec![red.item, red.item, red.item, blue.item])]);
    let (_, info) = expect(s, &both.on(greedy()), "blue", "images far back");
    assert!(info.prompt_positions > 3950, "{info:?}");
    assert_eq!(mm_session_destroy(s), mm_status::MM_OK);
}

#[test]
fn the_fixtures_are_deterministic() {
    let dir = fixture_dir().join("again");
    seeing::write_seeing(&dir).unwrap();
    let mut files =
        vec![seeing::MODEL_FILE.to_string(), seeing::MMPROJ_FILE.to_string(), seeing::NOISY_RED_FILE.to_string()];
    files.extend(COLOURS.iter().map(|c| seeing::image_file(c)));
    for f in files {
        assert_eq!(std::fs::read(pair().dir.join(&f)).unwrap(), std::fs::read(dir.join(&f)).unwrap(), "{f}");
    }
}

#[test]
fn cycle_timing() {
    let image = Image::colour_file("blue");
    let chat = Chat::new(&[("user", QUESTION, vec![image.item])]);
    let cycles = 50;
    let started = Instant::now();
    for _ in 0..cycles {
        let s = session();
        expect(s, &chat.on(greedy()), "blue", "cycle");
        assert_eq!(mm_session_destroy(s), mm_status::MM_OK);
    }
    let cycle_ms = started.elapsed().as_secs_f64() * 1e3 / cycles as f64;
    let s = session();
    let started = Instant::now();
    for i in 0..cycles {
        assert_eq!(mm_session_reset(s), mm_status::MM_OK);
        let (_, info) = expect(s, &chat.on(greedy()), "blue", "request");
        assert_eq!(info.media_encoded, 1, "request {i}");
    }
    let request_ms = started.elapsed().as_secs_f64() * 1e3 / cycles as f64;
    assert_eq!(mm_session_destroy(s), mm_status::MM_OK);
    eprintln!("seeing: cycle_ms={cycle_ms:.2} (create, one image, answer, destroy) request_ms={request_ms:.2} (reset, one image, answer)");
}
