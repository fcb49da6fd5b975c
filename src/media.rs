//! Media items of a request, and their decoding into mtmd bitmaps.

use std::ffi::CString;
use std::path::Path;

use llama_cpp_sys_2 as sys;

use crate::error::{fail, mm_status::*, Error, Result};
use crate::gguf_check::check_regular_file;
use crate::llama::{Bitmap, Projector};

/// One image or audio clip, borrowed from the caller.
pub enum Media<'a> {
    /// A file that mtmd's helper decodes (PNG, JPEG, BMP, GIF, ...; WAV, MP3, FLAC).
    File(&'a Path),
    /// The bytes of such a file.
    Encoded(&'a [u8]),
    /// Raw pixels, 3 bytes (R, G, B) each, row after row.
    Rgb { width: u32, height: u32, pixels: &'a [u8] },
    /// Mono audio samples at the projector's sample rate, native-endian f32 (bytes, so that
    /// any alignment is accepted).
    Pcm(&'a [u8]),
}

/// The formats mtmd's helper decodes in-process, by their first bytes. Anything else (for
/// example TGA or WebP, or garbage) is refused here: the helper would otherwise hand it to an
/// `ffprobe`/`ffmpeg` child process, which a library must not start behind its caller's back.
fn sniff(head: &[u8]) -> Option<&'static str> {
    let starts = |magic: &[u8]| head.starts_with(magic);
    if starts(b"\x89PNG\r\n\x1a\n") {
        Some("PNG")
    } else if starts(&[0xFF, 0xD8, 0xFF]) {
        Some("JPEG")
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        Some("GIF")
    } else if starts(b"BM") {
        Some("BMP")
    } else if starts(b"8BPS") {
        Some("PSD")
    } else if starts(b"#?RADIANCE") || starts(b"#?RGBE") {
        Some("HDR")
    } else if head.len() >= 2 && head[0] == b'P' && (b'1'..=b'7').contains(&head[1]) {
        Some("PNM")
    } else if head.len() >= 12 && starts(b"RIFF") && &head[8..12] == b"WAVE" {
        Some("WAV")
    } else if starts(b"fLaC") {
        Some("FLAC")
    } else if starts(b"ID3") || (head.len() >= 2 && head[0] == 0xFF && head[1] & 0xE0 == 0xE0) {
        Some("MP3")
    } else {
        None
    }
}

const FORMATS: &str = "PNG, JPEG, GIF, BMP, PSD, HDR, PNM, WAV, FLAC or MP3";

/// The largest image accepted, in pixels (64 megapixels): larger ones are refused before they
/// are decoded, since a few header bytes could otherwise ask for terabytes.
pub const MM_MAX_IMAGE_PIXELS: u64 = 1 << 26;
const MAX_PIXELS: u64 = MM_MAX_IMAGE_PIXELS;

/// Checks the format, and for images the size stb_image will decode (read from the header by
/// `stbi_info_from_memory`, without decoding), before a decoder sees the bytes; returns the
/// format's name.
fn check_format(bytes: &[u8], what: &str) -> Result<&'static str> {
    let Some(format) = sniff(bytes) else {
        return fail(MM_ERR_MEDIA_DECODE, format!("{what}: not a known media format (expected {FORMATS})"));
    };
    if matches!(format, "WAV" | "FLAC" | "MP3") {
        return Ok(format);
    }
    let len = i32::try_from(bytes.len()).or_else(|_| fail(MM_ERR_MEDIA_DECODE, format!("{what}: {} bytes is too large for the image decoder", bytes.len())))?;
    let (mut w, mut h, mut channels) = (0, 0, 0);
    if unsafe { stbi_info_from_memory(bytes.as_ptr(), len, &mut w, &mut h, &mut channels) } == 0 {
        let why = unsafe { std::ffi::CStr::from_ptr(stbi_failure_reason()) }.to_string_lossy().into_owned();
        return fail(MM_ERR_MEDIA_DECODE, format!("{what}: {format} image header could not be read: {why}"));
    }
    let (w, h) = (w.max(0) as u64, h.max(0) as u64);
    if w == 0 || h == 0 {
        return fail(MM_ERR_MEDIA_DECODE, format!("{what}: {format} image of {w}x{h} pixels is empty"));
    }
    if w * h > MAX_PIXELS {
        return fail(MM_ERR_MEDIA_DECODE, format!("{what}: {format} image of {w}x{h} pixels is larger than the limit of {MAX_PIXELS} pixels"));
    }
    Ok(format)
}

/// Decodes item `index` and checks that the projector can take its kind.
pub fn decode(projector: &Projector, index: usize, media: &Media) -> Result<Bitmap> {
    let what = format!("media item {index}");
    let bitmap = match media {
        Media::File(path) => {
            check_regular_file(path, &what)?;
            let what = format!("{what} {}", path.display());
            let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
            if size > MAX_FILE_BYTES {
                return fail(MM_ERR_MEDIA_DECODE, format!("{what}: {size} bytes is more than the {MAX_FILE_BYTES}-byte limit"));
            }
            let bytes = std::fs::read(path).or_else(|e| fail(MM_ERR_MEDIA_DECODE, format!("{what}: cannot read it: {e}")))?;
            decode_encoded(projector, &what, &bytes)?
        }
        Media::Encoded(bytes) => decode_encoded(projector, &what, bytes)?,
        Media::Rgb { width, height, pixels } => {
            let needed = (*width as u64) * (*height as u64) * 3;
            if *width == 0 || *height == 0 {
                return fail(MM_ERR_INVALID_ARGUMENT, format!("{what}: raw RGB image of {width}x{height} pixels is empty"));
            }
            if needed / 3 > MAX_PIXELS {
                return fail(MM_ERR_INVALID_ARGUMENT, format!("{what}: raw RGB image of {width}x{height} is larger than the limit of {MAX_PIXELS} pixels"));
            }
            if (pixels.len() as u64) < needed {
                return fail(MM_ERR_INVALID_ARGUMENT, format!("{what}: raw RGB image of {width}x{height} needs {needed} bytes, got {}", pixels.len()));
            }
            image_bitmap(&what, *width, *height, pixels, "rgb", &pixels[..needed as usize])?
        }
        Media::Pcm(bytes) => {
            if bytes.is_empty() || bytes.len() % 4 != 0 {
                return fail(MM_ERR_INVALID_ARGUMENT, format!("{what}: PCM data of {} bytes is not a whole number of f32 samples", bytes.len()));
            }
            require_audio(projector, &what)?;
            let samples: Vec<f32> = bytes.chunks_exact(4).map(|b| f32::from_ne_bytes(b.try_into().unwrap())).collect();
            if let Some(bad) = samples.iter().position(|x| !x.is_finite()) {
                return fail(MM_ERR_INVALID_ARGUMENT, format!("{what}: sample {bad} is not a finite number"));
            }
            let bitmap = Bitmap::from_raw(unsafe { sys::mtmd_bitmap_init_from_audio(samples.len(), samples.as_ptr()) })
                .ok_or_else(|| Error::new(MM_ERR_MEDIA_DECODE, format!("{what}: mtmd could not take {} samples", samples.len())))?;
            set_content_id(&bitmap, &format!("pcm-{}", samples.len()), bytes);
            bitmap
        }
    };
    let is_audio = unsafe { sys::mtmd_bitmap_is_audio(bitmap.as_ptr()) };
    // mtmd asserts that a clip has more than one sample (mtmd.cpp:1600).
    if is_audio && unsafe { sys::mtmd_bitmap_get_n_bytes(bitmap.as_ptr()) } <= std::mem::size_of::<f32>() {
        return fail(MM_ERR_MEDIA_DECODE, format!("{what}: the audio clip has fewer than 2 samples"));
    }
    if !is_audio && !projector.supports_vision() {
        return fail(MM_ERR_UNSUPPORTED, format!("{what} is an image, but the projector has no vision encoder"));
    }
    Ok(bitmap)
}

/// The largest media file read.
const MAX_FILE_BYTES: u64 = 1 << 30;

fn require_audio(projector: &Projector, what: &str) -> Result<()> {
    if !projector.supports_audio() {
        return fail(MM_ERR_UNSUPPORTED, format!("{what} is audio, but the projector has no audio encoder"));
    }
    Ok(())
}

extern "C" {
    // stb_image, compiled into libmtmd.
    fn stbi_info_from_memory(buffer: *const u8, len: i32, x: *mut i32, y: *mut i32, channels: *mut i32) -> i32;
    fn stbi_load_from_memory(buffer: *const u8, len: i32, x: *mut i32, y: *mut i32, channels: *mut i32, desired_channels: i32) -> *mut u8;
    fn stbi_image_free(data: *mut std::os::raw::c_void);
    fn stbi_failure_reason() -> *const std::os::raw::c_char;
}

/// Decodes the bytes of an image or audio file. Images are decoded here with stb_image
/// rather than by mtmd's helper, which hands whatever stb_image cannot read to an `ffmpeg`
/// child process; audio goes to the helper, whose audio path never does.
fn decode_encoded(projector: &Projector, what: &str, bytes: &[u8]) -> Result<Bitmap> {
    if bytes.is_empty() {
        return fail(MM_ERR_MEDIA_DECODE, format!("{what}: the buffer is empty"));
    }
    let format = check_format(bytes, what)?;
    if matches!(format, "WAV" | "FLAC" | "MP3") {
        require_audio(projector, what)?;
        let (w, log) = crate::log::capture(|| unsafe { sys::mtmd_helper_bitmap_init_from_buf(projector.as_ptr(), bytes.as_ptr(), bytes.len(), false, sys::mtmd_helper_init_opt_default()) });
        return Bitmap::from_helper(w).ok_or_else(|| Error::new(MM_ERR_MEDIA_DECODE, format!("{what}: {format} audio could not be decoded: {}", crate::log::last_lines(&log))));
    }
    let len = i32::try_from(bytes.len()).or_else(|_| fail(MM_ERR_MEDIA_DECODE, format!("{what}: {} bytes is too large for the image decoder", bytes.len())))?;
    let (mut w, mut h, mut channels) = (0, 0, 0);
    let data = unsafe { stbi_load_from_memory(bytes.as_ptr(), len, &mut w, &mut h, &mut channels, 3) };
    if data.is_null() {
        let why = unsafe { std::ffi::CStr::from_ptr(stbi_failure_reason()) }.to_string_lossy().into_owned();
        return fail(MM_ERR_MEDIA_DECODE, format!("{what}: {format} image could not be decoded: {why}"));
    }
    let pixels = unsafe { std::slice::from_raw_parts(data, w as usize * h as usize * 3) };
    let bitmap = image_bitmap(what, w as u32, h as u32, pixels, "img", bytes);
    unsafe { stbi_image_free(data.cast()) };
    bitmap
}

/// An mtmd bitmap of RGB pixels, named by the hash of `source` (the bytes it came from).
fn image_bitmap(what: &str, width: u32, height: u32, pixels: &[u8], kind: &str, source: &[u8]) -> Result<Bitmap> {
    let bitmap = Bitmap::from_raw(unsafe { sys::mtmd_bitmap_init(width, height, pixels.as_ptr()) })
        .ok_or_else(|| Error::new(MM_ERR_MEDIA_DECODE, format!("{what}: mtmd could not take a {width}x{height} image")))?;
    set_content_id(&bitmap, &format!("{kind}-{width}x{height}"), source);
    Ok(bitmap)
}

/// Names raw media by their content (`kind` plus a 128-bit hash: two FNV-1a 64 lanes with
/// different offsets), so that the KV cache recognises them in a later request. mtmd's helpers
/// name decoded files by their SHA-256 themselves.
fn set_content_id(bitmap: &Bitmap, kind: &str, bytes: &[u8]) {
    let lane = |offset: u64| bytes.iter().fold(offset, |h, &b| (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01B3));
    let id = CString::new(format!("{kind}-{:016x}{:016x}", lane(0xcbf2_9ce4_8422_2325), lane(0x6c62_272e_07bb_0142))).expect("no NUL");
    unsafe { sys::mtmd_bitmap_set_id(bitmap.as_ptr() as *mut _, id.as_ptr()) };
}
