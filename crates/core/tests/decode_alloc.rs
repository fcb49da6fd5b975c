//! Peak heap use while refusing oversized headers and over-long audio: the refusal must come
//! before any large allocation. (Its own test binary: it installs a counting allocator.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;

use image::ImageEncoder;
use mm_core::decode::{decode_audio, decode_image};
use mm_core::Format;
use mm_fixtures::png_chunk as chunk;

struct Counting;
static NOW: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

// SAFETY: every call goes to the system allocator unchanged; only the byte counts are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let now = NOW.fetch_add(l.size(), Relaxed) + l.size();
        PEAK.fetch_max(now, Relaxed);
        // SAFETY: the caller's layout, as GlobalAlloc::alloc requires.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        NOW.fetch_sub(l.size(), Relaxed);
        // SAFETY: `p` came from `alloc` above, with this layout.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// Peak bytes allocated above the level at the call.
fn peak(f: impl FnOnce() -> Result<(), String>) -> (usize, String) {
    let _g = ONE_AT_A_TIME.lock().unwrap();
    let base = NOW.load(Relaxed);
    PEAK.store(base, Relaxed);
    let r = f();
    (PEAK.load(Relaxed) - base, r.err().unwrap_or_default())
}

#[test]
fn oversized_images_refused_before_allocating() {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut png, b"IHDR", &[&100_000u32.to_be_bytes()[..], &100_000u32.to_be_bytes(), &[8, 2, 0, 0, 0]].concat());
    chunk(&mut png, b"IDAT", &[0x78, 0x01, 0x01, 0x01, 0x00, 0xFE, 0xFF, 0x00, 0x00, 0x01, 0x00, 0x01]);
    chunk(&mut png, b"IEND", &[]);
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new(&mut jpeg)
        .write_image(&[0; 192], 8, 8, image::ExtendedColorType::Rgb8)
        .unwrap();
    let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    jpeg[sof + 5..sof + 9].copy_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF]);
    let mut bmp = Vec::new();
    image::codecs::bmp::BmpEncoder::new(&mut bmp).write_image(&[0; 3], 1, 1, image::ExtendedColorType::Rgb8).unwrap();
    bmp[18..22].copy_from_slice(&60_000i32.to_le_bytes());
    bmp[22..26].copy_from_slice(&60_000i32.to_le_bytes());
    let gif = b"GIF89a\xff\xff\xff\xff\x80\x00\x00\x00\x00\x00\xff\xff\xff,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;".to_vec();
    let mut webp = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut webp)
        .write_image(&[0; 4], 1, 1, image::ExtendedColorType::Rgba8)
        .unwrap();
    let bits = u32::from_le_bytes(webp[21..25].try_into().unwrap());
    webp[21..25].copy_from_slice(&((bits & !0x0FFF_FFFF) | 0x3FFE | (0x3FFE << 14)).to_le_bytes());
    // Lossy WebP: the 14-bit width and height of the VP8 key frame header.
    let mut vp8 =
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/media/seeing-red-lossy.webp")).unwrap();
    let at = vp8.windows(3).position(|w| w == [0x9D, 0x01, 0x2A]).unwrap() + 3;
    vp8[at..at + 4].copy_from_slice(&[0xFF, 0x3F, 0xFF, 0x3F]);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("PNG 100000x100000", png),
        ("JPEG 65535x65535", jpeg),
        ("BMP 60000x60000", bmp),
        ("GIF 65535x65535", gif),
        ("WebP 16383x16383", webp),
        ("lossy WebP 16383x16383", vp8),
        ("PNM 100000x100000", b"P6\n100000 100000\n255\n\0\0\0".to_vec()),
    ];
    for (name, file) in cases {
        let format = Format::sniff(&file).unwrap();
        let (bytes, err) = peak(|| decode_image(&file, format, mm_core::MAX_IMAGE_PIXELS).map(|_| ()));
        println!("alloc {name:20} refused with peak heap {bytes} bytes: {err}");
        assert!(err.contains("larger than the limit"), "{name}: {err}");
        assert!(bytes < 256 << 10, "{name}: {bytes} bytes");
    }
}

#[test]
fn long_audio_refused_within_cap() {
    // A WAV header claiming 1 hour of 48 kHz stereo (the file holds 4 bytes of it).
    let mut wav = b"RIFF\0\0\0\0WAVEfmt \x10\0\0\0\x01\0\x02\0\x80\xbb\0\0\0\xee\x02\0\x04\0\x10\0data".to_vec();
    let data_len: u32 = 48_000 * 4 * 3600;
    wav.extend_from_slice(&data_len.to_le_bytes());
    wav.extend_from_slice(&[0; 4]);
    let riff = (wav.len() as u32 - 8 - 4) + data_len;
    wav[4..8].copy_from_slice(&riff.to_le_bytes());
    let (bytes, err) = peak(|| decode_audio(&wav, Format::Wav, 16_000, 30).map(|_| ()));
    println!("alloc WAV header of 3600 s, cap 30 s: peak heap {bytes} bytes: {err}");
    assert!(err.contains("longer than the limit"), "{err}");
    assert!(bytes < 1 << 20, "{bytes}");
    // A real 40 s WAV (44.1 kHz mono) with the cap at 30 s: refused, heap bounded by the
    // output at 16 kHz for the cap (30 s x 16000 x 4 bytes = 1.9 MB, x2 for Vec growth).
    let n = 44_100 * 40;
    let mut wav = b"RIFF\0\0\0\0WAVEfmt \x10\0\0\0\x01\0\x01\0\x44\xac\0\0\x88\x58\x01\0\x02\0\x10\0data".to_vec();
    wav.extend_from_slice(&(n as u32 * 2).to_le_bytes());
    wav.extend((0..n).flat_map(|i| (((i % 100) as i16) * 100).to_le_bytes()));
    let riff = wav.len() as u32 - 8;
    wav[4..8].copy_from_slice(&riff.to_le_bytes());
    // Header length 40 s: refused before decoding. Now hide the length (streamed WAV, 0xFFFFFFFF).
    let (bytes, err) = peak(|| decode_audio(&wav, Format::Wav, 16_000, 30).map(|_| ()));
    println!("alloc WAV of 40 s, cap 30 s: peak heap {bytes} bytes: {err}");
    let at = wav.windows(4).position(|w| w == b"data").unwrap() + 4;
    wav[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    wav[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    let (bytes, err) = peak(|| decode_audio(&wav, Format::Wav, 16_000, 30).map(|_| ()));
    println!("alloc WAV of 40 s without a length, cap 30 s: peak heap {bytes} bytes: {err}");
    assert!(err.contains("longer than the limit"), "{err}");
    assert!(bytes < 5 << 20, "{bytes}");
}
