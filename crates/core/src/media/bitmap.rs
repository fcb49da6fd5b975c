//! A media item to an mtmd bitmap: read, decoded (`decode.rs`) and named by a hash of its
//! content, so that the KV cache record recognises it in a later request.

use std::ffi::{CStr, CString};

use crate::llama::{Bitmap, Projector};
use crate::media::decode::{self, MAX_IMAGE_SIDE};
use crate::media::format::{Format, Media, MAX_AUDIO_SECONDS, MAX_IMAGE_PIXELS};
use crate::util::error::{fail, Error, ErrorKind::*, Result};
use crate::util::files::{read_file, regular_file};
use crate::util::hash;
use crate::util::memo::FileMemo;

/// The largest media file read.
const MAX_FILE_BYTES: u64 = 1 << 30;

/// An image file's content id and size, as decoding it found them.
#[derive(Clone)]
struct KnownImage {
    id: CString,
    width: u32,
    height: u32,
}

/// Image files decoded lately (`memo.rs`): a follow-up that sends the same file again, while
/// the KV cache holds it, neither reads nor hashes it.
static IMAGE_FILES: FileMemo<KnownImage, 64> = FileMemo::new();

/// The bitmap of item `index`: decoded, once the projector is known to take its kind. An image
/// whose content id `placeholder` accepts is not decoded: it becomes a placeholder of its size and id,
/// which mtmd tokenizes without preprocessing and which must never be evaluated (the session
/// uses them for images its KV cache already holds).
pub fn to_bitmap(
    projector: &Projector,
    index: usize,
    media: &Media,
    placeholder: &dyn Fn(&str) -> bool,
) -> Result<Bitmap> {
    let what = format!("media item {index}");
    let bitmap = match media {
        Media::File(path) => {
            let m = regular_file(path, &what)?;
            let what = format!("{what} {}", path.display());
            if m.len() > MAX_FILE_BYTES {
                return fail(
                    MediaDecode,
                    format!("{what}: {} bytes is more than the {MAX_FILE_BYTES}-byte limit", m.len()),
                );
            }
            // An unchanged image file whose content id is known needs no reading at all.
            let known = IMAGE_FILES.get(&m);
            if let Some(k) = known.as_ref().filter(|k| placeholder(&k.id.to_string_lossy())) {
                return image_bitmap(&what, k.width, k.height, &k.id, None);
            }
            let bytes = read_file(path).or_else(|e| fail(MediaDecode, format!("{what}: cannot read it: {e}")))?;
            let bitmap = decode_encoded(projector, &what, &bytes, placeholder)?;
            if known.is_none() && !bitmap.is_audio() {
                IMAGE_FILES.put(&m, KnownImage { id: bitmap.id(), width: bitmap.width(), height: bitmap.height() });
            }
            bitmap
        }
        Media::Encoded(bytes) => decode_encoded(projector, &what, bytes, placeholder)?,
        Media::Rgb { width, height, pixels } => {
            if *width == 0 || *height == 0 {
                return fail(InvalidArgument, format!("{what}: raw RGB image of {width}x{height} pixels is empty"));
            }
            let needed = match image_bytes(*width, *height) {
                Some(n) => n,
                None => return fail(InvalidArgument, format!("{what}: raw RGB image of {width}x{height} is larger than the limits of {MAX_IMAGE_PIXELS} pixels and {MAX_IMAGE_SIDE} pixels a side")),
            };
            if pixels.len() < needed {
                return fail(
                    InvalidArgument,
                    format!("{what}: raw RGB image of {width}x{height} needs {needed} bytes, got {}", pixels.len()),
                );
            }
            let pixels = &pixels[..needed];
            let id = content_id(&format!("rgb-{width}x{height}"), pixels);
            let pixels = (!placeholder(&id.to_string_lossy())).then_some(pixels);
            image_bitmap(&what, *width, *height, &id, pixels)?
        }
        Media::Pcm(bytes) => {
            if bytes.is_empty() || bytes.len() % 4 != 0 {
                return fail(
                    InvalidArgument,
                    format!("{what}: PCM data of {} bytes is not a whole number of f32 samples", bytes.len()),
                );
            }
            require_audio(projector, &what)?;
            let rate = projector.audio_sample_rate().max(1) as u64;
            let seconds = (bytes.len() / 4) as u64 / rate;
            if seconds >= MAX_AUDIO_SECONDS as u64 {
                return fail(InvalidArgument, format!("{what}: {} samples at {rate} Hz is {seconds} s of audio, more than the limit of {MAX_AUDIO_SECONDS} s", bytes.len() / 4));
            }
            let mut samples: Vec<f32> = Vec::new();
            samples
                .try_reserve_exact(bytes.len() / 4)
                .or_else(|_| fail(Internal, format!("{what}: no memory for {} samples", bytes.len() / 4)))?;
            samples.extend(bytes.chunks_exact(4).map(|b| f32::from_ne_bytes(b.try_into().expect("chunks of 4"))));
            if let Some(bad) = samples.iter().position(|x| !x.is_finite()) {
                return fail(InvalidArgument, format!("{what}: sample {bad} is not a finite number"));
            }
            audio_bitmap(&what, &samples, &format!("pcm-{}", samples.len()), bytes)?
        }
    };
    if !bitmap.is_audio() && !projector.supports_vision() {
        return fail(Unsupported, format!("{what} is an image, but the projector has no vision encoder"));
    }
    Ok(bitmap)
}

/// The bytes of an RGB image of `width` x `height` pixels, or `None` when it has more than
/// [`MAX_IMAGE_PIXELS`] or a side longer than [`MAX_IMAGE_SIDE`] (every product checked, so no
/// size wraps around).
fn image_bytes(width: u32, height: u32) -> Option<usize> {
    if width.max(height) > MAX_IMAGE_SIDE {
        return None;
    }
    let pixels = (width as u64).checked_mul(height as u64).filter(|&p| p <= MAX_IMAGE_PIXELS)?;
    usize::try_from(pixels.checked_mul(3)?).ok()
}

fn require_audio(projector: &Projector, what: &str) -> Result<()> {
    if !projector.supports_audio() {
        return fail(Unsupported, format!("{what} is audio, but the projector has no audio encoder"));
    }
    Ok(())
}

/// Decodes the bytes of an image or audio file with the memory-safe decoders of `decode.rs`:
/// no caller byte reaches a C decoder (nor mtmd's helper, which would hand what it cannot read
/// to an `ffmpeg` child process). Images are refused from their header when larger than
/// [`MAX_IMAGE_PIXELS`], audio when longer than [`MAX_AUDIO_SECONDS`], before the pixels or
/// samples are allocated. An image whose content id `placeholder` accepts is sized from its
/// header and not decoded (see [`to_bitmap`]).
fn decode_encoded(
    projector: &Projector,
    what: &str,
    bytes: &[u8],
    placeholder: &dyn Fn(&str) -> bool,
) -> Result<Bitmap> {
    if bytes.is_empty() {
        return fail(MediaDecode, format!("{what}: the buffer is empty"));
    }
    let Some(format) = Format::sniff(bytes) else {
        return fail(MediaDecode, format!("{what}: not a known media format (expected {})", Format::list()));
    };
    if format.is_audio() {
        require_audio(projector, what)?;
        let rate = projector.audio_sample_rate();
        let samples = decode::decode_audio(bytes, format, rate, MAX_AUDIO_SECONDS)
            .or_else(|e| fail(MediaDecode, format!("{what}: {e}")))?;
        return audio_bitmap(what, &samples, "audio", bytes);
    }
    let (width, height) =
        decode::image_size(bytes, format, MAX_IMAGE_PIXELS).or_else(|e| fail(MediaDecode, format!("{what}: {e}")))?;
    let id = content_id(&format!("img-{width}x{height}"), bytes);
    if placeholder(&id.to_string_lossy()) {
        return image_bitmap(what, width, height, &id, None);
    }
    let image =
        decode::decode_image(bytes, format, MAX_IMAGE_PIXELS).or_else(|e| fail(MediaDecode, format!("{what}: {e}")))?;
    image_bitmap(what, image.width, image.height, &id, Some(&image.rgb))
}

/// An mtmd bitmap of RGB pixels named `id` (the content id), or without `pixels` a placeholder
/// of the image's size (see [`to_bitmap`]).
fn image_bitmap(what: &str, width: u32, height: u32, id: &CStr, pixels: Option<&[u8]>) -> Result<Bitmap> {
    let bitmap = match pixels {
        Some(pixels) => Bitmap::image(width, height, pixels, id),
        None => Bitmap::placeholder(width, height, id),
    };
    bitmap.ok_or_else(|| Error::new(MediaDecode, format!("{what}: mtmd could not take a {width}x{height} image")))
}

/// An mtmd bitmap of mono samples, named by the hash of `source`. mtmd asserts that a clip has
/// more than one sample (mtmd.cpp:1600), so shorter clips are refused here.
fn audio_bitmap(what: &str, samples: &[f32], kind: &str, source: &[u8]) -> Result<Bitmap> {
    if samples.len() < 2 {
        return fail(MediaDecode, format!("{what}: the audio clip has fewer than 2 samples"));
    }
    Bitmap::audio(samples, &content_id(kind, source))
        .ok_or_else(|| Error::new(MediaDecode, format!("{what}: mtmd could not take {} samples", samples.len())))
}

/// A media item's name in the cache record: its kind and the SHA-256 of its bytes.
fn content_id(kind: &str, bytes: &[u8]) -> CString {
    CString::new(format!("{kind}-{}", hash::hex(&hash::sha256(bytes)))).expect("no NUL in a kind and a hex digest")
}
