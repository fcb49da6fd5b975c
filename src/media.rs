//! Media items of a request, and their decoding into mtmd bitmaps.

use std::ffi::CString;
use std::io::Read;
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

fn check_format(head: &[u8], what: &str) -> Result<()> {
    match sniff(head) {
        Some(_) => Ok(()),
        None => fail(MM_ERR_MEDIA_DECODE, format!("{what}: not a known media format (expected {FORMATS})")),
    }
}

/// Decodes item `index` and checks that the projector can take its kind.
pub fn decode(projector: &Projector, index: usize, media: &Media) -> Result<Bitmap> {
    let what = format!("media item {index}");
    let bitmap = match media {
        Media::File(path) => {
            check_regular_file(path, &what)?;
            let mut head = Vec::with_capacity(16);
            std::fs::File::open(path)
                .and_then(|f| std::io::Read::take(f, 16).read_to_end(&mut head))
                .or_else(|e| fail(MM_ERR_MEDIA_DECODE, format!("{what} {}: cannot read it: {e}", path.display())))?;
            check_format(&head, &format!("{what} {}", path.display()))?;
            let path_c = CString::new(path.to_string_lossy().as_bytes()).or_else(|_| fail(MM_ERR_INVALID_ARGUMENT, format!("{what}: path contains a NUL byte")))?;
            let w = unsafe { sys::mtmd_helper_bitmap_init_from_file(projector.as_ptr(), path_c.as_ptr(), false, sys::mtmd_helper_init_opt_default()) };
            Bitmap::from_helper(w).ok_or_else(|| Error::new(MM_ERR_MEDIA_DECODE, format!("{what} {}: not a decodable image or audio file", path.display())))?
        }
        Media::Encoded(bytes) => {
            if bytes.is_empty() {
                return fail(MM_ERR_MEDIA_DECODE, format!("{what}: the buffer is empty"));
            }
            check_format(bytes, &what)?;
            let w = unsafe { sys::mtmd_helper_bitmap_init_from_buf(projector.as_ptr(), bytes.as_ptr(), bytes.len(), false, sys::mtmd_helper_init_opt_default()) };
            Bitmap::from_helper(w).ok_or_else(|| Error::new(MM_ERR_MEDIA_DECODE, format!("{what}: the {}-byte buffer is not a decodable image or audio file", bytes.len())))?
        }
        Media::Rgb { width, height, pixels } => {
            let needed = (*width as u64) * (*height as u64) * 3;
            if *width == 0 || *height == 0 {
                return fail(MM_ERR_INVALID_ARGUMENT, format!("{what}: raw RGB image of {width}x{height} pixels is empty"));
            }
            if (pixels.len() as u64) < needed {
                return fail(MM_ERR_INVALID_ARGUMENT, format!("{what}: raw RGB image of {width}x{height} needs {needed} bytes, got {}", pixels.len()));
            }
            let bitmap = Bitmap::from_raw(unsafe { sys::mtmd_bitmap_init(*width, *height, pixels.as_ptr()) })
                .ok_or_else(|| Error::new(MM_ERR_MEDIA_DECODE, format!("{what}: mtmd could not take a {width}x{height} image")))?;
            set_content_id(&bitmap, &format!("rgb-{width}x{height}"), &pixels[..needed as usize]);
            bitmap
        }
        Media::Pcm(bytes) => {
            if bytes.is_empty() || bytes.len() % 4 != 0 {
                return fail(MM_ERR_INVALID_ARGUMENT, format!("{what}: PCM data of {} bytes is not a whole number of f32 samples", bytes.len()));
            }
            if !projector.supports_audio() {
                return fail(MM_ERR_UNSUPPORTED, format!("{what} is audio, but the projector has no audio encoder"));
            }
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
    if is_audio && !projector.supports_audio() {
        return fail(MM_ERR_UNSUPPORTED, format!("{what} is audio, but the projector has no audio encoder"));
    }
    if !is_audio && !projector.supports_vision() {
        return fail(MM_ERR_UNSUPPORTED, format!("{what} is an image, but the projector has no vision encoder"));
    }
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
