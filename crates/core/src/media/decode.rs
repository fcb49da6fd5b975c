//! Memory-safe decoding of untrusted image and audio bytes (replaces stb_image and miniaudio on
//! the request path).
//!
//! Images (PNG, JPEG, BMP, PNM, WebP through the `image` crate; GIF through the `gif` crate) come
//! out as RGB8, the way `stbi_load_from_memory(.., 3)` gives them: grey and palette expanded,
//! alpha dropped without compositing, 16-bit samples reduced by `>> 8`, GIF's first frame laid on
//! the logical screen as stb_image does. The size in the header is checked against `max_pixels`
//! before any pixel buffer exists, and the decoders' own limits are set from it.
//!
//! Audio (WAV, FLAC, MP3 through `symphonia`) comes out as mono f32 at the requested rate, the
//! way llama.cpp's mtmd helper gets it from miniaudio's `ma_decoder` (f32, 1 channel, target
//! rate): channels averaged, then miniaudio's default resampler, linear interpolation with a
//! 4th-order Butterworth low-pass (two biquads), and the output length of
//! `ma_decoder_get_length_in_pcm_frames` (zero-filled at the end). The length cap is checked
//! against the header's frame count before decoding (WAV, FLAC, MP3 with a Xing/VBRI header) and
//! against the frames decoded so far while decoding, so no input makes the output outgrow it.

#![forbid(unsafe_code)]

use std::io::Cursor;
use std::num::NonZeroU64;

use symphonia::core::audio::conv::FromSample;
use symphonia::core::audio::sample::Sample;
use symphonia::core::audio::{Audio, AudioBuffer, GenericAudioBufferRef};
use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::errors::Error as AudioError;
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::{MediaSourceStream, MediaSourceStreamOptions};

use crate::media::format::Format;

/// The longest side of an image accepted, in pixels. clip.cpp's resampling takes memory in
/// proportion to the longer side, GBs for a long thin image within the pixel limit.
pub const MAX_IMAGE_SIDE: u32 = 32768;

/// A decoded image: `width * height` pixels of 3 bytes (R, G, B), row after row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

/// Checks a size read from a header: not empty, no side longer than [`MAX_IMAGE_SIDE`], at most
/// `max_pixels` pixels. Returns the byte length of its RGB8 buffer.
fn check_size(format: Format, width: u32, height: u32, max_pixels: u64) -> Result<usize, String> {
    let name = format.name();
    if width == 0 || height == 0 {
        return Err(format!("{name} image of {width}x{height} pixels is empty"));
    }
    let pixels = u64::from(width) * u64::from(height); // Cannot overflow: both fit in 32 bits.
    if pixels > max_pixels {
        return Err(format!("{name} image of {width}x{height} pixels is larger than the limit of {max_pixels} pixels"));
    }
    if width.max(height) > MAX_IMAGE_SIDE {
        return Err(format!(
            "{name} image of {width}x{height} pixels has a side longer than the limit of {MAX_IMAGE_SIDE}"
        ));
    }
    pixels
        .checked_mul(3)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| format!("{name} image of {width}x{height} pixels is too large for this machine"))
}

/// The size in an image's header, checked as [`decode_image`] checks it, without decoding any
/// pixel (the session sizes images that its KV cache already holds this way).
pub fn image_size(bytes: &[u8], format: Format, max_pixels: u64) -> Result<(u32, u32), String> {
    let (width, height) = if format == Format::Gif {
        let decoder =
            gif_options(max_pixels).read_info(bytes).map_err(|e| format!("GIF image header could not be read: {e}"))?;
        (u32::from(decoder.width()), u32::from(decoder.height()))
    } else {
        use image::ImageDecoder;
        image_decoder(bytes, format, max_pixels)?.dimensions()
    };
    check_size(format, width, height, max_pixels)?;
    Ok((width, height))
}

/// The `image` crate's decoder for `bytes`, its header read, its limits set from `max_pixels`.
fn image_decoder(bytes: &[u8], format: Format, max_pixels: u64) -> Result<impl image::ImageDecoder + '_, String> {
    let image_format = match format {
        Format::Png => image::ImageFormat::Png,
        Format::Jpeg => image::ImageFormat::Jpeg,
        Format::Bmp => image::ImageFormat::Bmp,
        Format::Pnm => image::ImageFormat::Pnm,
        Format::WebP => image::ImageFormat::WebP,
        Format::Gif | Format::Wav | Format::Flac | Format::Mp3 => {
            return Err(format!("{} is not read by the image crate", format.name()))
        }
    };
    // The decoders' own limits: no side longer than the pixel limit, and no more memory than an
    // image of that many 16-bit RGBA pixels takes, plus room for chunks and tables.
    let mut limits = image::Limits::default();
    let side = u32::try_from(max_pixels).unwrap_or(u32::MAX);
    limits.max_image_width = Some(side);
    limits.max_image_height = Some(side);
    limits.max_alloc = Some(max_pixels.saturating_mul(8).saturating_add(64 << 20));
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), image_format);
    reader.limits(limits);
    // Reads the header only.
    reader.into_decoder().map_err(|e| format!("{} image header could not be read: {e}", format.name()))
}

/// Decodes an image (the first frame of an animation) to RGB8. `format` is what `Format::sniff`
/// said of `bytes`.
pub fn decode_image(bytes: &[u8], format: Format, max_pixels: u64) -> Result<Image, String> {
    match format {
        Format::Gif => return decode_gif(bytes, max_pixels),
        Format::Wav | Format::Flac | Format::Mp3 => return Err(format!("{} is not an image format", format.name())),
        _ => {}
    }
    let name = format.name();
    use image::ImageDecoder;
    let decoder = image_decoder(bytes, format, max_pixels)?;
    let (width, height) = decoder.dimensions();
    let rgb_len = check_size(format, width, height, max_pixels)?;
    if format == Format::Jpeg && !jpeg_has_end(bytes) {
        // The JPEG decoder (like stb_image) fills a cut-off scan with grey and succeeds.
        return Err("JPEG image is truncated: no end-of-image marker after its last scan".into());
    }
    let decoded =
        image::DynamicImage::from_decoder(decoder).map_err(|e| format!("{name} image could not be decoded: {e}"))?;
    if (decoded.width(), decoded.height()) != (width, height) {
        return Err(format!("{name} image changed size while decoding"));
    }
    let rgb = to_rgb8(decoded);
    if rgb.len() != rgb_len {
        return Err(format!("{name} image decoded to {} bytes, expected {rgb_len}", rgb.len()));
    }
    Ok(Image { width, height, rgb })
}

/// Whether an end-of-image marker (FF D9) follows the last start-of-scan marker (FF DA). Neither
/// can occur inside entropy-coded data (an FF there is followed by 00 or a restart marker), so a
/// file cut inside its last scan has none.
fn jpeg_has_end(bytes: &[u8]) -> bool {
    let Some(sos) = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]) else {
        return false;
    };
    bytes[sos..].windows(2).any(|w| w == [0xFF, 0xD9])
}

/// RGB8 as stb_image gives it for 3 channels: grey repeated, alpha dropped, 16 bits `>> 8`.
fn to_rgb8(image: image::DynamicImage) -> Vec<u8> {
    use image::DynamicImage as D;
    fn map<T: Copy, const N: usize>(samples: &[T], f: impl Fn(&[T; N]) -> [u8; 3]) -> Vec<u8> {
        let mut out = Vec::with_capacity(samples.len() / N * 3);
        for px in samples.chunks_exact(N) {
            // chunks_exact gives N samples: the conversion cannot fail.
            if let Ok(px) = <&[T; N]>::try_from(px) {
                out.extend_from_slice(&f(px));
            }
        }
        out
    }
    let hi = |v: u16| (v >> 8) as u8;
    match image {
        D::ImageRgb8(b) => b.into_raw(),
        D::ImageRgba8(b) => map(b.as_raw(), |&[r, g, b, _]: &[u8; 4]| [r, g, b]),
        D::ImageLuma8(b) => map(b.as_raw(), |&[l]: &[u8; 1]| [l, l, l]),
        D::ImageLumaA8(b) => map(b.as_raw(), |&[l, _]: &[u8; 2]| [l, l, l]),
        D::ImageRgb16(b) => map(b.as_raw(), |&[r, g, b]: &[u16; 3]| [hi(r), hi(g), hi(b)]),
        D::ImageRgba16(b) => map(b.as_raw(), |&[r, g, b, _]: &[u16; 4]| [hi(r), hi(g), hi(b)]),
        D::ImageLuma16(b) => map(b.as_raw(), |&[l]: &[u16; 1]| [hi(l); 3]),
        D::ImageLumaA16(b) => map(b.as_raw(), |&[l, _]: &[u16; 2]| [hi(l); 3]),
        // Float images (none of the formats here gives one): the crate's own conversion.
        other => other.to_rgb8().into_raw(),
    }
}

/// The first frame of a GIF, composed as stb_image does: on a black, transparent screen; pixels
/// of the frame with the transparent index are left alone; pixels outside the frame take the
/// global palette's background colour (red and blue swapped, as stb_image has it) when its
/// index is above 0; a frame reaching past the screen is refused.
fn decode_gif(bytes: &[u8], max_pixels: u64) -> Result<Image, String> {
    let mut decoder =
        gif_options(max_pixels).read_info(bytes).map_err(|e| format!("GIF image header could not be read: {e}"))?;
    let (width, height) = (u32::from(decoder.width()), u32::from(decoder.height()));
    let rgb_len = check_size(Format::Gif, width, height, max_pixels)?;
    let global = decoder.global_palette().map(<[u8]>::to_vec).unwrap_or_default();
    // stb_image copies its palette entry, which it stores as B, G, R, A, straight into the
    // R, G, B, A output here: the background comes out with red and blue swapped. Kept, so that
    // the pixels stay those of stb_image.
    let background =
        decoder.bg_color().filter(|&i| i > 0).and_then(|i| global.get(i * 3..i * 3 + 3)).map(|c| [c[2], c[1], c[0]]);
    let frame = decoder
        .read_next_frame()
        .map_err(|e| format!("GIF image could not be decoded: {e}"))?
        .ok_or("GIF image has no frame")?;
    let palette = frame.palette.as_deref().unwrap_or(&global);
    let (left, top) = (usize::from(frame.left), usize::from(frame.top));
    let (frame_w, frame_h) = (usize::from(frame.width), usize::from(frame.height));
    let (w, h) = (width as usize, height as usize);
    if left + frame_w > w || top + frame_h > h {
        return Err("GIF frame lies outside the image".into());
    }
    if frame.buffer.len() < frame_w * frame_h {
        return Err("GIF frame is truncated".into());
    }
    let mut rgb = vec![0u8; rgb_len];
    let inside = |x: usize, y: usize| (left..left + frame_w).contains(&x) && (top..top + frame_h).contains(&y);
    for (i, px) in rgb.chunks_exact_mut(3).enumerate() {
        let (x, y) = (i % w, i / w);
        let colour =
            if inside(x, y) { frame_colour(frame, palette, (y - top) * frame_w + (x - left)) } else { background };
        if let Some(c) = colour {
            px.copy_from_slice(&c);
        }
    }
    Ok(Image { width, height, rgb })
}

/// The GIF decoder's options: palette indices out, frames checked against the screen, and a
/// frame's index buffer (one byte a pixel) no larger than `max_pixels`.
fn gif_options(max_pixels: u64) -> gif::DecodeOptions {
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::Indexed);
    options.check_frame_consistency(true);
    options.set_memory_limit(gif::MemoryLimit::Bytes(NonZeroU64::new(max_pixels.max(1)).unwrap_or(NonZeroU64::MIN)));
    options
}

/// The colour of pixel `i` of a GIF frame, or None where stb_image leaves the screen black:
/// the transparent index, and an index past the palette (stb_image's table is zeroed there).
fn frame_colour(frame: &gif::Frame<'_>, palette: &[u8], i: usize) -> Option<[u8; 3]> {
    let index = frame.buffer[i];
    if Some(index) == frame.transparent {
        return None;
    }
    let at = usize::from(index) * 3;
    palette.get(at..at + 3).map(|c| [c[0], c[1], c[2]])
}

/// The highest sample rate accepted, in and out (miniaudio's `MA_MAX_SAMPLE_RATE`).
const MAX_SAMPLE_RATE: u32 = 384_000;

/// miniaudio's `MA_MAX_CHANNELS`: more channels than this are refused.
const MAX_CHANNELS: u16 = 254;

/// Decodes an audio clip to mono f32 samples at `sample_rate`, refusing clips longer than
/// `max_seconds` (before decoding when the header tells the length) or shorter than 2 samples.
///
/// symphonia-format-riff 0.6.1 computes `channels * bytes_per_sample` in u16 when it reads a
/// WAV `fmt ` chunk (wave/chunks.rs:100), which panics in builds with overflow checks for
/// channel counts above 16383; the count is checked here first. The decoding runs under
/// `catch_unwind` in case another such panic is found: in release builds a panic becomes an
/// error (the default panic hook still prints its message); builds with debug assertions,
/// the fuzzing build among them, let it through so that fuzzing reports it.
pub fn decode_audio(bytes: &[u8], format: Format, sample_rate: u32, max_seconds: u32) -> Result<Vec<f32>, String> {
    if format == Format::Wav {
        if let Some(channels) = wav_channels(bytes) {
            if !(1..=MAX_CHANNELS).contains(&channels) {
                return Err(format!("WAV file has {channels} channels, outside 1..={MAX_CHANNELS}"));
            }
        }
    }
    match std::panic::catch_unwind(|| decode_audio_unguarded(bytes, format, sample_rate, max_seconds)) {
        Ok(result) => result,
        Err(panic) if cfg!(debug_assertions) => std::panic::resume_unwind(panic),
        Err(_) => Err(format!("{} audio could not be decoded: the decoder panicked", format.name())),
    }
}

/// The channel count in a WAV file's `fmt ` chunk, if there is one.
fn wav_channels(bytes: &[u8]) -> Option<u16> {
    let mut at = 12usize;
    while let Some(header) = bytes.get(at..at.checked_add(8)?) {
        let len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
        if &header[..4] == b"fmt " {
            let channels = bytes.get(at + 10..at + 12)?;
            return Some(u16::from_le_bytes([channels[0], channels[1]]));
        }
        at = at.checked_add(8)?.checked_add(len)?.checked_add(len & 1)?;
    }
    None
}

fn decode_audio_unguarded(
    bytes: &[u8],
    format: Format,
    sample_rate: u32,
    max_seconds: u32,
) -> Result<Vec<f32>, String> {
    let name = format.name();
    if !(1..=MAX_SAMPLE_RATE).contains(&sample_rate) {
        return Err(format!("output sample rate {sample_rate} Hz is outside 1..={MAX_SAMPLE_RATE}"));
    }
    let mut reader = open_audio(bytes, format)?;
    let track = first_track(reader.as_ref(), name)?;
    let cap =
        LengthCap { name, rate: track.rate, max_seconds, max_frames: u64::from(max_seconds) * u64::from(track.rate) }; // 32 x 19 bits: no overflow
    if let Some(n) = track.frames {
        cap.check(n)?;
    }
    let (mut out, frames_in) = decode_track(reader.as_mut(), &track, format, sample_rate, &cap)?;
    if let Some(n) = track.frames {
        // A header length that the data does not reach: the file is truncated.
        if format != Format::Mp3 && frames_in < n {
            return Err(format!("{name} audio is truncated: {frames_in} of {n} frames decoded"));
        }
    }
    // miniaudio's length: its zero-filled tail, or the frames past it dropped.
    let length = usize::try_from(frames_after_resampling(sample_rate, track.rate, frames_in))
        .map_err(|_| format!("{name} clip is too long"))?;
    out.resize(length, 0.0);
    if out.len() < 2 {
        return Err(format!("{name} clip has fewer than 2 samples"));
    }
    Ok(out)
}

/// The container reader of an audio file (for MP3, after its ID3v2 tags, which symphonia's
/// MPEG reader does not skip).
fn open_audio(bytes: &[u8], format: Format) -> Result<Box<dyn FormatReader + '_>, String> {
    use symphonia::default::formats::{FlacReader, MpaReader, WavReader};
    let bytes = if format == Format::Mp3 { skip_id3v2(bytes) } else { bytes };
    let stream = MediaSourceStream::new(Box::new(Cursor::new(bytes)), MediaSourceStreamOptions::default());
    let options = FormatOptions::default();
    let opened: Result<Box<dyn FormatReader + '_>, _> = match format {
        Format::Wav => WavReader::try_new(stream, options).map(|r| Box::new(r) as _),
        Format::Flac => FlacReader::try_new(stream, options).map(|r| Box::new(r) as _),
        Format::Mp3 => MpaReader::try_new(stream, options).map(|r| Box::new(r) as _),
        _ => return Err(format!("{} is not an audio format", format.name())),
    };
    opened.map_err(|e| format!("{} file could not be opened: {e}", format.name()))
}

/// What a file's header says of its first track.
struct Track {
    id: u32,
    rate: u32,
    /// The length in frames, when the header gives it (WAV, FLAC, MP3 with a Xing/VBRI tag).
    frames: Option<u64>,
    params: symphonia::core::codecs::audio::AudioCodecParameters,
}

fn first_track(reader: &dyn FormatReader, name: &str) -> Result<Track, String> {
    let track = reader.tracks().first().ok_or_else(|| format!("{name} file has no audio track"))?;
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .ok_or_else(|| format!("{name} file has no audio parameters"))?
        .clone();
    let rate = params.sample_rate.ok_or_else(|| format!("{name} file has no sample rate"))?;
    if !(1..=MAX_SAMPLE_RATE).contains(&rate) {
        return Err(format!("{name} sample rate {rate} Hz is outside 1..={MAX_SAMPLE_RATE}"));
    }
    Ok(Track { id: track.id, rate, frames: track.num_frames, params })
}

/// The length limit of a clip, in frames at its own rate.
struct LengthCap<'a> {
    name: &'a str,
    rate: u32,
    max_seconds: u32,
    max_frames: u64,
}

impl LengthCap<'_> {
    fn check(&self, frames: u64) -> Result<(), String> {
        if frames > self.max_frames {
            return Err(format!(
                "{} clip of {frames} frames at {} Hz is longer than the limit of {} s",
                self.name, self.rate, self.max_seconds
            ));
        }
        Ok(())
    }
}

/// Decodes the track's packets, mixed to mono and resampled to `sample_rate` as they come,
/// stopping as soon as the input passes the cap. Returns the output samples and the number of
/// input frames decoded.
fn decode_track(
    reader: &mut dyn FormatReader,
    track: &Track,
    format: Format,
    sample_rate: u32,
    cap: &LengthCap,
) -> Result<(Vec<f32>, u64), String> {
    let name = format.name();
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(&track.params, &AudioDecoderOptions::default())
        .map_err(|e| format!("{name} audio cannot be decoded: {e}"))?;
    let mut resampler = Resampler::new(track.rate, sample_rate);
    let mut out = Vec::new();
    if let Some(n) = track.frames {
        // Bounded by the cap, which the caller checked.
        out.reserve(
            usize::try_from(frames_after_resampling(sample_rate, track.rate, n)).unwrap_or(0).saturating_add(1),
        );
    }
    let (mut mono, mut frames_in, mut skipped_packets) = (Vec::new(), 0u64, 0u32);
    loop {
        let packet = match reader.next_packet() {
            Ok(Some(packet)) => packet,
            Ok(None) => break,
            // MP3 streams have no defined end; WAV and FLAC do.
            Err(AudioError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                if format == Format::Mp3 {
                    break;
                }
                return Err(format!("{name} audio is truncated: {e}"));
            }
            Err(e) => return Err(format!("{name} audio could not be read: {e}")),
        };
        if packet.track_id != track.id {
            continue;
        }
        let buffer = match decoder.decode(&packet) {
            Ok(buffer) => buffer,
            // An MP3 frame that cannot be decoded (e.g. its bit reservoir points before the
            // stream) is skipped, as players do; anything else is an error.
            Err(AudioError::DecodeError(_)) if format == Format::Mp3 => {
                skipped_packets += 1;
                continue;
            }
            Err(e) => return Err(format!("{name} audio could not be decoded: {e}")),
        };
        if buffer.spec().rate() != track.rate {
            return Err(format!(
                "{name} sample rate changes from {} Hz to {} Hz within the clip",
                track.rate,
                buffer.spec().rate()
            ));
        }
        mix_to_mono(buffer, &mut mono)?;
        frames_in += mono.len() as u64;
        cap.check(frames_in)?;
        for &x in &mono {
            resampler.push(x, &mut out);
        }
    }
    if frames_in == 0 && skipped_packets > 0 {
        return Err(format!("{name} audio could not be decoded: none of its {skipped_packets} frames decoded"));
    }
    Ok((out, frames_in))
}

/// The bytes after any ID3v2 tags (10-byte header, sync-safe size, optional 10-byte footer).
fn skip_id3v2(mut bytes: &[u8]) -> &[u8] {
    while bytes.len() >= 10 && bytes.starts_with(b"ID3") {
        let size = bytes[6..10].iter().fold(0usize, |n, &b| (n << 7) | usize::from(b & 0x7F));
        let footer = if bytes[5] & 0x10 != 0 { 10 } else { 0 };
        bytes = bytes.get(10 + size + footer..).unwrap_or(&[]);
    }
    bytes
}

/// Replaces `mono` by the average of the channels of `buffer`, converted to f32 as miniaudio's
/// decoders do (`x / 2^(bits-1)` for signed integers, `x / 127.5 - 1` for unsigned 8-bit WAV).
fn mix_to_mono(buffer: GenericAudioBufferRef<'_>, mono: &mut Vec<f32>) -> Result<(), String> {
    fn mix<S: Sample>(buf: &AudioBuffer<S>, mono: &mut Vec<f32>, f: impl Fn(S) -> f32) -> Result<(), String> {
        let frames = buf.frames();
        let channels = buf.num_planes();
        if channels == 0 {
            return Err("audio has no channels".into());
        }
        mono.clear();
        mono.resize(frames, 0.0);
        for c in 0..channels {
            let plane = buf.plane(c).ok_or("audio channel is missing")?;
            for (m, &s) in mono.iter_mut().zip(plane) {
                *m += f(s);
            }
        }
        let n = channels as f32;
        if channels > 1 {
            for m in mono.iter_mut() {
                *m /= n;
            }
        }
        Ok(())
    }
    use GenericAudioBufferRef as B;
    match buffer {
        // dr_wav: `x * 0.00784313725490196078f - 1`; 1 / 127.5 rounds to the same f32.
        B::U8(b) => mix(b, mono, |s| s as f32 * (1.0 / 127.5) - 1.0),
        B::U16(b) => mix(b, mono, f32::from_sample),
        B::U24(b) => mix(b, mono, f32::from_sample),
        B::U32(b) => mix(b, mono, f32::from_sample),
        B::S8(b) => mix(b, mono, f32::from_sample),
        B::S16(b) => mix(b, mono, f32::from_sample),
        B::S24(b) => mix(b, mono, f32::from_sample),
        B::S32(b) => mix(b, mono, f32::from_sample),
        B::F32(b) => mix(b, mono, |s| s),
        B::F64(b) => mix(b, mono, |s| s as f32),
    }
}

/// miniaudio's `ma_calculate_frame_count_after_resampling` (the length mtmd asks for).
fn frames_after_resampling(out_rate: u32, in_rate: u32, frames_in: u64) -> u64 {
    let (out_rate, in_rate) = (u64::from(out_rate), u64::from(in_rate));
    if out_rate == 0 || in_rate == 0 || frames_in == 0 {
        return 0;
    }
    if out_rate == in_rate {
        return frames_in;
    }
    // miniaudio computes in u64; u128 here so that no product can wrap (frames_in < 2^52).
    let (out_rate, in_rate, frames_in) = (u128::from(out_rate), u128::from(in_rate), u128::from(frames_in));
    let mut n = frames_in * out_rate / in_rate;
    let from_frac = n * (in_rate / out_rate) / out_rate;
    let preliminary = n * (in_rate % out_rate) + from_frac;
    if preliminary <= frames_in {
        n += 1;
    }
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// miniaudio's linear resampler (`ma_linear_resampler`, f32, one channel) with its default
/// low-pass: order 4 (two biquads, Butterworth Q), cut-off at half the lower rate, run on the
/// input frames when downsampling and on the output frames when upsampling; none when the rates
/// are equal. Fed one frame at a time; same arithmetic, in f32, as the C code.
struct Resampler {
    passthrough: bool,
    downsample: bool,
    out_rate: u32,
    advance_int: u32,
    advance_frac: u32,
    time_int: u32,
    time_frac: u32,
    x0: f32,
    x1: f32,
    lpf: [Biquad; 2],
}

#[derive(Clone, Copy)]
struct Biquad {
    b0: f32,
    b1: f32,
    b2: f32,
    a1: f32,
    a2: f32,
    r1: f32,
    r2: f32,
}

impl Biquad {
    /// miniaudio's `ma_lpf2` coefficients, computed in f64 and normalised to f32.
    fn low_pass(sample_rate: f64, cutoff: f64, q: f64) -> Biquad {
        let w = 2.0 * std::f64::consts::PI * cutoff / sample_rate;
        let (s, c) = (w.sin(), w.cos());
        let a = s / (2.0 * q);
        let (b0, b1, b2, a0, a1, a2) = ((1.0 - c) / 2.0, 1.0 - c, (1.0 - c) / 2.0, 1.0 + a, -2.0 * c, 1.0 - a);
        Biquad {
            b0: (b0 / a0) as f32,
            b1: (b1 / a0) as f32,
            b2: (b2 / a0) as f32,
            a1: (a1 / a0) as f32,
            a2: (a2 / a0) as f32,
            r1: 0.0,
            r2: 0.0,
        }
    }

    /// Direct form 2 transposed, as `ma_biquad_process_pcm_frame_f32__direct_form_2_transposed`.
    #[inline]
    fn process(&mut self, x: f32) -> f32 {
        let y = self.b0 * x + self.r1;
        self.r1 = self.b1 * x - self.a1 * y + self.r2;
        self.r2 = self.b2 * x - self.a2 * y;
        y
    }
}

impl Resampler {
    fn new(in_rate: u32, out_rate: u32) -> Resampler {
        fn gcd(a: u32, b: u32) -> u32 {
            if b == 0 {
                a
            } else {
                gcd(b, a % b)
            }
        }
        let g = gcd(in_rate, out_rate).max(1);
        let (i, o) = (in_rate / g, out_rate / g);
        // ma_lpf with order 4: two second-order sections with Q = 1 / (2 cos(a)), a = (1 + 2k) pi / 8.
        let (rate, cutoff) = (f64::from(i.max(o)), f64::from(i.min(o)) * 0.5);
        let q = |k: f64| 1.0 / (2.0 * ((1.0 + 2.0 * k) * (std::f64::consts::PI / 8.0)).cos());
        Resampler {
            passthrough: in_rate == out_rate,
            downsample: i > o,
            out_rate: o.max(1),
            advance_int: i / o.max(1),
            advance_frac: i % o.max(1),
            time_int: 1,
            time_frac: 0,
            x0: 0.0,
            x1: 0.0,
            lpf: [Biquad::low_pass(rate, cutoff, q(0.0)), Biquad::low_pass(rate, cutoff, q(1.0))],
        }
    }

    #[inline]
    fn filter(&mut self, x: f32) -> f32 {
        let y = self.lpf[0].process(x);
        self.lpf[1].process(y)
    }

    /// Takes one input frame; appends the output frames it completes.
    #[inline]
    fn push(&mut self, x: f32, out: &mut Vec<f32>) {
        if self.passthrough {
            out.push(x);
            return;
        }
        self.x0 = self.x1;
        self.x1 = if self.downsample { self.filter(x) } else { x };
        self.time_int -= 1;
        while self.time_int == 0 {
            let a = self.time_frac as f32 / self.out_rate as f32;
            let y = self.x0 + (self.x1 - self.x0) * a;
            let y = if self.downsample { y } else { self.filter(y) };
            out.push(y);
            self.time_int += self.advance_int;
            self.time_frac += self.advance_frac;
            if self.time_frac >= self.out_rate {
                self.time_frac -= self.out_rate;
                self.time_int += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::ImageEncoder;

    const LIMIT: u64 = 1 << 26;
    const PPM: image::codecs::pnm::PnmSubtype =
        image::codecs::pnm::PnmSubtype::Pixmap(image::codecs::pnm::SampleEncoding::Binary);

    fn encode(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut out = Vec::new();
        f(&mut out);
        out
    }

    fn png(w: u32, h: u32, data: &[u8], color: image::ExtendedColorType) -> Vec<u8> {
        encode(|o| image::codecs::png::PngEncoder::new(o).write_image(data, w, h, color).unwrap())
    }

    /// Raw-encoded PNG through the png crate (palette, low bit depths).
    fn png_raw(
        w: u32,
        h: u32,
        color: png::ColorType,
        depth: png::BitDepth,
        palette: Option<&[u8]>,
        trns: Option<&[u8]>,
        data: &[u8],
    ) -> Vec<u8> {
        encode(|o| {
            let mut e = png::Encoder::new(o, w, h);
            e.set_color(color);
            e.set_depth(depth);
            if let Some(p) = palette {
                e.set_palette(p.to_vec());
            }
            if let Some(t) = trns {
                e.set_trns(t.to_vec());
            }
            let mut w = e.write_header().unwrap();
            w.write_image_data(data).unwrap();
        })
    }

    fn decode(bytes: &[u8]) -> Result<Image, String> {
        decode_image(bytes, Format::sniff(bytes).expect("known format"), LIMIT)
    }

    /// A deterministic pattern with every byte value.
    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 131 + i / 7) as u8).collect()
    }

    #[test]
    fn png_colour_types_become_rgb_like_stb() {
        let (w, h) = (5u32, 3u32);
        let n = (w * h) as usize;
        let rgb = pattern(n * 3);
        let img = decode(&png(w, h, &rgb, image::ExtendedColorType::Rgb8)).unwrap();
        assert_eq!((img.width, img.height, &img.rgb), (w, h, &rgb));

        // RGBA: alpha dropped, colour kept even where alpha is 0 (no compositing).
        let rgba: Vec<u8> =
            pattern(n * 4).iter().enumerate().map(|(i, &v)| if i % 4 == 3 { (i % 3) as u8 * 127 } else { v }).collect();
        let img = decode(&png(w, h, &rgba, image::ExtendedColorType::Rgba8)).unwrap();
        let want: Vec<u8> = rgba.chunks(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
        assert_eq!(img.rgb, want);

        let grey = pattern(n);
        let img = decode(&png(w, h, &grey, image::ExtendedColorType::L8)).unwrap();
        assert_eq!(img.rgb, grey.iter().flat_map(|&l| [l, l, l]).collect::<Vec<_>>());

        let grey_alpha = pattern(n * 2);
        let img = decode(&png(w, h, &grey_alpha, image::ExtendedColorType::La8)).unwrap();
        assert_eq!(img.rgb, grey_alpha.chunks(2).flat_map(|p| [p[0]; 3]).collect::<Vec<_>>());

        // 16 bits: the high byte (stb_image's `>> 8`, not a rounding division by 257).
        let rgb16: Vec<u16> = (0..n * 3).map(|i| (i as u16).wrapping_mul(40503) | 0x00FF).collect();
        let bytes: Vec<u8> = rgb16.iter().flat_map(|v| v.to_ne_bytes()).collect();
        let img = decode(&png(w, h, &bytes, image::ExtendedColorType::Rgb16)).unwrap();
        assert_eq!(img.rgb, rgb16.iter().map(|v| (v >> 8) as u8).collect::<Vec<_>>());
        let rgba16: Vec<u16> = (0..n * 4).map(|i| (i as u16).wrapping_mul(7919) | 0x80).collect();
        let bytes: Vec<u8> = rgba16.iter().flat_map(|v| v.to_ne_bytes()).collect();
        let img = decode(&png(w, h, &bytes, image::ExtendedColorType::Rgba16)).unwrap();
        assert_eq!(
            img.rgb,
            rgba16
                .chunks(4)
                .flat_map(|p| [(p[0] >> 8) as u8, (p[1] >> 8) as u8, (p[2] >> 8) as u8])
                .collect::<Vec<_>>()
        );
        let l16: Vec<u16> = (0..n).map(|i| (i as u16) * 4099).collect();
        let bytes: Vec<u8> = l16.iter().flat_map(|v| v.to_ne_bytes()).collect();
        let img = decode(&png(w, h, &bytes, image::ExtendedColorType::L16)).unwrap();
        assert_eq!(img.rgb, l16.iter().flat_map(|v| [(v >> 8) as u8; 3]).collect::<Vec<_>>());

        // Palette with a transparent entry: its colour, alpha dropped.
        let palette = [10, 20, 30, 200, 100, 0, 1, 2, 3];
        let indices = [0u8, 1, 2, 1, 0, 2];
        let file = png_raw(3, 2, png::ColorType::Indexed, png::BitDepth::Eight, Some(&palette), Some(&[0]), &indices);
        let img = decode(&file).unwrap();
        assert_eq!(
            img.rgb,
            indices.iter().flat_map(|&i| palette[i as usize * 3..i as usize * 3 + 3].to_vec()).collect::<Vec<_>>()
        );

        // 1-bit grey: 0 and 255.
        let file = png_raw(8, 1, png::ColorType::Grayscale, png::BitDepth::One, None, None, &[0b1010_0110]);
        let img = decode(&file).unwrap();
        let want: Vec<u8> = [1, 0, 1, 0, 0, 1, 1, 0].iter().flat_map(|&b| [b * 255; 3]).collect();
        assert_eq!(img.rgb, want);
    }

    #[test]
    fn jpeg_baseline_and_progressive_decode() {
        let (w, h) = (32u32, 24u32);
        let rgb: Vec<u8> =
            (0..h).flat_map(|y| (0..w).flat_map(move |x| [(x * 8) as u8, (y * 10) as u8, 128])).collect();
        let file = encode(|o| {
            image::codecs::jpeg::JpegEncoder::new_with_quality(o, 95)
                .write_image(&rgb, w, h, image::ExtendedColorType::Rgb8)
                .unwrap()
        });
        let img = decode(&file).unwrap();
        assert_eq!((img.width, img.height), (w, h));
        let mean =
            img.rgb.iter().zip(&rgb).map(|(&a, &b)| (a as i32 - b as i32).abs()).sum::<i32>() as f64 / rgb.len() as f64;
        assert!(mean < 3.0, "mean abs diff {mean}");

        let img = decode(PROGRESSIVE_JPEG_16X16).unwrap();
        assert_eq!((img.width, img.height, img.rgb.len()), (16, 16, 16 * 16 * 3));
        // The source was R = 16 x, G = 16 y: check the corners roughly.
        let px = |x: usize, y: usize| &img.rgb[(y * 16 + x) * 3..(y * 16 + x) * 3 + 3];
        assert!(
            px(0, 0)[0] < 40 && px(15, 0)[0] > 200 && px(0, 15)[1] > 200,
            "{:?} {:?} {:?}",
            px(0, 0),
            px(15, 0),
            px(0, 15)
        );
    }

    fn gif_file(screen: (u16, u16), bg: u8, global: &[u8], frame: gif::Frame<'_>) -> Vec<u8> {
        encode(|o| {
            let mut e = gif::Encoder::new(&mut *o, screen.0, screen.1, global).unwrap();
            // The encoder writes background index 0; patch the logical screen descriptor.
            e.write_frame(&frame).unwrap();
            drop(e);
            o[11] = bg;
        })
    }

    #[test]
    fn gif_first_frame_like_stb() {
        let global = [0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255];
        // A full frame with a transparent index (2): those pixels stay black.
        let mut frame = gif::Frame {
            width: 3,
            height: 2,
            buffer: vec![0u8, 1, 2, 3, 2, 1].into(),
            transparent: Some(2),
            ..Default::default()
        };
        let img = decode(&gif_file((3, 2), 0, &global, frame.clone())).unwrap();
        assert_eq!(img.rgb, [0, 0, 0, 255, 0, 0, 0, 0, 0, 0, 0, 255, 0, 0, 0, 255, 0, 0]);

        // A frame smaller than the screen: outside pixels take background colour 3 (index > 0).
        frame.left = 1;
        frame.top = 1;
        let img = decode(&gif_file((4, 3), 3, &global, frame.clone())).unwrap();
        assert_eq!((img.width, img.height), (4, 3));
        let px = |x: usize, y: usize| img.rgb[(y * 4 + x) * 3..(y * 4 + x) * 3 + 3].to_vec();
        assert_eq!(px(0, 0), [255, 0, 0]); // colour 3 is blue: stb_image's R/B swap
        assert_eq!(px(1, 1), [0, 0, 0]);
        assert_eq!(px(2, 1), [255, 0, 0]);
        assert_eq!(px(3, 1), [0, 0, 0]); // transparent pixel inside the frame: not background
        assert_eq!(px(1, 2), [0, 0, 255]); // inside the frame: index 3, blue
                                           // Background index 0: outside pixels black.
        let img = decode(&gif_file((4, 3), 0, &global, frame)).unwrap();
        assert_eq!(&img.rgb[0..3], [0, 0, 0]);
    }

    #[test]
    fn bmp_pnm_webp_decode() {
        let (w, h) = (7u32, 5u32);
        let rgb = pattern((w * h * 3) as usize);
        let bmp = encode(|o| {
            image::codecs::bmp::BmpEncoder::new(o).write_image(&rgb, w, h, image::ExtendedColorType::Rgb8).unwrap()
        });
        assert_eq!(decode(&bmp).unwrap().rgb, rgb);
        let rgba = pattern((w * h * 4) as usize);
        let bmp = encode(|o| {
            image::codecs::bmp::BmpEncoder::new(o).write_image(&rgba, w, h, image::ExtendedColorType::Rgba8).unwrap()
        });
        assert_eq!(decode(&bmp).unwrap().rgb, rgba.chunks(4).flat_map(|p| [p[0], p[1], p[2]]).collect::<Vec<_>>());

        let ppm = encode(|o| {
            image::codecs::pnm::PnmEncoder::new(o)
                .with_subtype(PPM)
                .write_image(&rgb, w, h, image::ExtendedColorType::Rgb8)
                .unwrap()
        });
        assert_eq!(decode(&ppm).unwrap().rgb, rgb);
        let want = [0u8, 0, 0, 255, 255, 255, 255, 255, 255, 0, 0, 0];
        assert_eq!(decode(b"P1\n2 2\n1 0\n0 1\n").unwrap().rgb, want); // 1 is black
        assert_eq!(decode(b"P4\n2 2\n\x80\x40").unwrap().rgb, want);
        assert_eq!(decode(b"P2\n2 1\n255\n7 200\n").unwrap().rgb, [7, 7, 7, 200, 200, 200]);
        assert_eq!(decode(b"P5\n2 1\n255\n\x07\xc8").unwrap().rgb, [7, 7, 7, 200, 200, 200]);
        assert_eq!(decode(b"P3\n1 1\n255\n1 2 3\n").unwrap().rgb, [1, 2, 3]);
        assert_eq!(decode(b"P6\n1 1\n65535\n\x12\x34\xab\xcd\xff\x00").unwrap().rgb, [0x12, 0xab, 0xff]);

        let webp = encode(|o| {
            image::codecs::webp::WebPEncoder::new_lossless(o)
                .write_image(&rgba, w, h, image::ExtendedColorType::Rgba8)
                .unwrap()
        });
        let img = decode(&webp).unwrap();
        // Lossless WebP may change the colour of fully transparent pixels; compare the others.
        for (p, q) in rgba.chunks(4).zip(img.rgb.chunks(3)) {
            if p[3] != 0 {
                assert_eq!(&p[..3], q);
            }
        }
        let img = decode(LOSSY_WEBP_16X16).unwrap();
        assert_eq!((img.width, img.height, img.rgb.len()), (16, 16, 768));
    }

    /// Headers asking for huge images are refused by the size check itself (its message), before
    /// a decoder allocates pixels.
    #[test]
    fn oversized_and_empty_headers_refused() {
        let too_large = |bytes: &[u8]| {
            let e = decode(bytes).unwrap_err();
            assert!(e.contains("larger than the limit"), "{e}");
        };
        // PNG: 100000 x 100000 in IHDR, CRC fixed.
        let mut file = png(1, 1, &[1, 2, 3], image::ExtendedColorType::Rgb8);
        file[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        file[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let crc = mm_fixtures::crc32(&file[12..29]);
        file[29..33].copy_from_slice(&crc.to_be_bytes());
        too_large(&file);
        // With a small limit, a normal size is refused too.
        let e = decode_image(&png(10, 10, &[0; 300], image::ExtendedColorType::Rgb8), Format::Png, 99).unwrap_err();
        assert!(e.contains("larger than the limit of 99"), "{e}");

        too_large(b"P6\n100000 100000\n255\n\x00\x00\x00");
        too_large(b"P1\n65536 65536\n0");
        // GIF logical screen 65535 x 65535.
        let frame = gif::Frame { width: 1, height: 1, buffer: vec![0u8].into(), ..Default::default() };
        let mut file = gif_file((1, 1), 0, &[0, 0, 0, 1, 1, 1], frame);
        file[6..10].copy_from_slice(&[0xFF; 4]);
        too_large(&file);
        // BMP 30000 x 30000.
        let mut file = encode(|o| {
            image::codecs::bmp::BmpEncoder::new(o).write_image(&[0; 3], 1, 1, image::ExtendedColorType::Rgb8).unwrap()
        });
        file[18..22].copy_from_slice(&30_000i32.to_le_bytes());
        file[22..26].copy_from_slice(&30_000i32.to_le_bytes());
        too_large(&file);
        // JPEG: SOF0 of 60000 x 60000.
        let mut file = encode(|o| {
            image::codecs::jpeg::JpegEncoder::new(o)
                .write_image(&[0; 3 * 64], 8, 8, image::ExtendedColorType::Rgb8)
                .unwrap()
        });
        let sof = file.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        file[sof + 5..sof + 9].copy_from_slice(&[0xEA, 0x60, 0xEA, 0x60]);
        too_large(&file);
        // WebP lossless: 16383 x 16383 in the VP8L header (image-webp reads 16384 as 0).
        let mut file = encode(|o| {
            image::codecs::webp::WebPEncoder::new_lossless(o)
                .write_image(&[0; 4], 1, 1, image::ExtendedColorType::Rgba8)
                .unwrap()
        });
        let vp8l = file.windows(4).position(|w| w == b"VP8L").unwrap() + 8;
        assert_eq!(file[vp8l], 0x2F);
        let bits = u32::from_le_bytes(file[vp8l + 1..vp8l + 5].try_into().unwrap());
        let bits = (bits & !0x0FFF_FFFF) | 0x3FFE | (0x3FFE << 14);
        file[vp8l + 1..vp8l + 5].copy_from_slice(&bits.to_le_bytes());
        too_large(&file);

        for empty in [&b"P6\n0 5\n255\n"[..], b"P5\n5 0\n255\n"] {
            let e = decode(empty).unwrap_err();
            assert!(e.contains("empty") || e.contains("header"), "{e}");
        }
    }

    #[test]
    fn truncated_and_garbage_images_fail() {
        let (w, h) = (16u32, 16u32);
        let rgb = pattern((w * h * 3) as usize);
        let files = [
            png(w, h, &rgb, image::ExtendedColorType::Rgb8),
            encode(|o| {
                image::codecs::jpeg::JpegEncoder::new(o)
                    .write_image(&rgb, w, h, image::ExtendedColorType::Rgb8)
                    .unwrap()
            }),
            PROGRESSIVE_JPEG_16X16.to_vec(),
            encode(|o| {
                image::codecs::bmp::BmpEncoder::new(o).write_image(&rgb, w, h, image::ExtendedColorType::Rgb8).unwrap()
            }),
            encode(|o| {
                image::codecs::pnm::PnmEncoder::new(o)
                    .with_subtype(PPM)
                    .write_image(&rgb, w, h, image::ExtendedColorType::Rgb8)
                    .unwrap()
            }),
            encode(|o| {
                image::codecs::webp::WebPEncoder::new_lossless(o)
                    .write_image(&rgb, w, h, image::ExtendedColorType::Rgb8)
                    .unwrap()
            }),
            LOSSY_WEBP_16X16.to_vec(),
            {
                let palette: Vec<u8> = (0..=255u8).flat_map(|i| [i, i ^ 0x55, 255 - i]).collect();
                let frame = gif::Frame {
                    width: w as u16,
                    height: h as u16,
                    buffer: pattern((w * h) as usize).into(),
                    ..Default::default()
                };
                gif_file((w as u16, h as u16), 0, &palette, frame)
            },
        ];
        for file in &files {
            let format = Format::sniff(file).unwrap();
            decode_image(file, format, LIMIT).unwrap_or_else(|e| panic!("{}: {e}", format.name()));
            for cut in [file.len() / 2, file.len() * 3 / 4, 12] {
                let r = decode_image(&file[..cut], format, LIMIT);
                assert!(r.is_err(), "{} cut at {cut} of {} decoded", format.name(), file.len());
            }
        }
        assert!(decode_image(b"\x89PNG\r\n\x1a\ngarbage", Format::Png, LIMIT).is_err());
        assert!(decode_image(b"", Format::Jpeg, LIMIT).is_err());
        assert!(decode_image(b"RIFF\0\0\0\0WAVE", Format::Wav, LIMIT).is_err());
    }

    fn sine(rate: u32, frames: usize, channels: usize) -> Vec<f64> {
        (0..frames)
            .flat_map(|i| {
                (0..channels)
                    .map(move |c| 0.5 * (2.0 * std::f64::consts::PI * 440.0 * i as f64 / rate as f64 + c as f64).sin())
            })
            .collect()
    }

    #[test]
    fn wav_sample_formats_mix_to_mono() {
        let frames = 1000;
        let s = sine(16_000, frames, 2);
        for (bits, float, tol) in
            [(8, false, 0.02), (16, false, 1e-4), (24, false, 1e-6), (32, false, 1e-6), (32, true, 1e-6)]
        {
            let out =
                decode_audio(&mm_fixtures::audio::wav(16_000, 2, bits, float, &s), Format::Wav, 16_000, 10).unwrap();
            assert_eq!(out.len(), frames, "{bits}-bit");
            for (i, y) in out.iter().enumerate() {
                let want = (s[2 * i] + s[2 * i + 1]) / 2.0;
                assert!((f64::from(*y) - want).abs() < tol, "{bits}-bit float={float} frame {i}: {y} vs {want}");
            }
        }
        // 8-bit the way miniaudio converts it: x / 127.5 - 1.
        let out = decode_audio(&mm_fixtures::audio::wav(8000, 1, 8, false, &[0.0; 4]), Format::Wav, 8000, 1).unwrap();
        #[allow(clippy::excessive_precision)]
        let scale = 0.00784313725490196078_f32; // dr_wav's constant
        assert_eq!(scale.to_bits(), (1.0f32 / 127.5).to_bits());
        let want = 128.0 * scale - 1.0;
        assert_eq!(out, vec![want; 4]);
    }

    #[test]
    fn resampling_lengths_and_dc() {
        // miniaudio's output length; DC passes (filter gain 1); the first output is 0 (its one-frame lag).
        for (rin, rout, n) in
            [(44_100u32, 16_000u32, 44_100usize), (8000, 16_000, 8000), (48_000, 16_000, 4801), (22_050, 16_000, 1234)]
        {
            let out = decode_audio(&mm_fixtures::audio::wav(rin, 1, 32, true, &vec![0.25; n]), Format::Wav, rout, 10)
                .unwrap();
            assert_eq!(out.len() as u64, frames_after_resampling(rout, rin, n as u64), "{rin}->{rout}");
            let expected = (n as u64 * u64::from(rout) / u64::from(rin)) as usize;
            assert!(out.len() == expected || out.len() == expected + 1);
            assert_eq!(out[0], 0.0);
            let mid = out[out.len() / 2];
            assert!((mid - 0.25).abs() < 1e-3, "{rin}->{rout}: {mid}");
        }
    }

    #[test]
    fn flac_and_mp3_decode() {
        let out = decode_audio(FLAC_8K_MONO_800, Format::Flac, 8000, 1).unwrap();
        assert_eq!(out.len(), 800);
        for (i, y) in out.iter().enumerate() {
            let want = (12000.0 * (2.0 * std::f64::consts::PI * 440.0 * i as f64 / 8000.0).sin()).trunc() / 32768.0;
            assert!((f64::from(*y) - want).abs() < 1e-6, "frame {i}");
        }
        let out = decode_audio(FLAC_8K_MONO_800, Format::Flac, 16_000, 1).unwrap();
        assert_eq!(out.len(), 1600);

        let out = decode_audio(MP3_8K_MONO, Format::Mp3, 16_000, 1).unwrap();
        // 0.25 s at 8 kHz, with the encoder's delay and padding (no LAME tag to trim them).
        assert_eq!(out.len(), 6912); // 6 MPEG frames of 576 samples, at twice the rate
        let rms = (out.iter().map(|x| x * x).sum::<f32>() / out.len() as f32).sqrt();
        assert!(rms > 0.1, "rms {rms}");
        // An ID3v2 tag before the first frame is skipped.
        let mut tagged = b"ID3\x04\x00\x00\x00\x00\x00\x05hello".to_vec();
        tagged.extend_from_slice(MP3_8K_MONO);
        assert_eq!(decode_audio(&tagged, Format::sniff(&tagged).unwrap(), 16_000, 1).unwrap(), out);
    }

    #[test]
    fn audio_length_cap() {
        // WAV: a header claiming 10 minutes, refused before decoding (the file holds 4 bytes).
        let mut file = mm_fixtures::audio::wav(16_000, 1, 16, false, &[0.0, 0.0]);
        let len = 600 * 16_000 * 2u32;
        let n = file.len();
        file[n - 8..n - 4].copy_from_slice(&len.to_le_bytes());
        file[4..8].copy_from_slice(&(36 + len).to_le_bytes());
        let e = decode_audio(&file, Format::Wav, 16_000, 60).unwrap_err();
        assert!(e.contains("longer than the limit"), "{e}");
        // Real 3 s WAV with a 2 s cap.
        let e = decode_audio(&mm_fixtures::audio::wav(8000, 1, 16, false, &vec![0.1; 24_000]), Format::Wav, 16_000, 2)
            .unwrap_err();
        assert!(e.contains("longer than the limit"), "{e}");
        assert!(decode_audio(&mm_fixtures::audio::wav(8000, 1, 16, false, &vec![0.1; 24_000]), Format::Wav, 16_000, 3)
            .is_ok());

        // FLAC: STREAMINFO's total samples set to 2^36 - 1.
        let mut flac = FLAC_8K_MONO_800.to_vec();
        flac[21] |= 0x0F;
        flac[22..26].copy_from_slice(&[0xFF; 4]);
        let e = decode_audio(&flac, Format::Flac, 16_000, 3600).unwrap_err();
        assert!(e.contains("longer than the limit"), "{e}");

        // MP3 without a length in its header: 5 s of frames, stopped during decoding at 1 s.
        let long: Vec<u8> = MP3_8K_MONO.iter().copied().cycle().take(MP3_8K_MONO.len() * 20).collect();
        let e = decode_audio(&long, Format::Mp3, 16_000, 1).unwrap_err();
        assert!(e.contains("longer than the limit"), "{e}");
        assert!(decode_audio(&long, Format::Mp3, 16_000, 10).is_ok());
    }

    #[test]
    fn bad_audio_fails() {
        // Fewer than 2 samples.
        let e =
            decode_audio(&mm_fixtures::audio::wav(16_000, 1, 16, false, &[0.5]), Format::Wav, 16_000, 1).unwrap_err();
        assert!(e.contains("fewer than 2"), "{e}");
        // Truncated data (the header says more), truncated header, garbage.
        let file = mm_fixtures::audio::wav(16_000, 2, 16, false, &sine(16_000, 1000, 2));
        let e = decode_audio(&file[..file.len() - 100], Format::Wav, 16_000, 1).unwrap_err();
        assert!(e.contains("truncated"), "{e}");
        assert!(decode_audio(&file[..30], Format::Wav, 16_000, 1).is_err());
        assert!(decode_audio(&FLAC_8K_MONO_800[..200], Format::Flac, 16_000, 1).is_err());
        assert!(decode_audio(&FLAC_8K_MONO_800[..30], Format::Flac, 16_000, 1).is_err());
        assert!(decode_audio(b"fLaC\0\0\0\0", Format::Flac, 16_000, 1).is_err());
        assert!(decode_audio(&[0xFF, 0xFB, 0, 0, 0, 0], Format::Mp3, 16_000, 1).is_err());
        assert!(decode_audio(b"ID3\x04\0\0\0\0\0\0", Format::Mp3, 16_000, 1).is_err());
        assert!(decode_audio(&file, Format::Png, 16_000, 1).is_err());
        // 20000 channels: refused before symphonia, whose u16 block-align product overflows.
        let mut many = mm_fixtures::audio::wav(16_000, 1, 16, false, &[0.0; 8]);
        many[22..24].copy_from_slice(&20_000u16.to_le_bytes());
        let e = decode_audio(&many, Format::Wav, 16_000, 1).unwrap_err();
        assert!(e.contains("20000 channels"), "{e}");
        assert!(decode_audio(&file, Format::Wav, 0, 1).is_err());
    }

    /// a 16x16 gradient, libjpeg-turbo `cjpeg -progressive -quality 60`: 545 bytes.
    const PROGRESSIVE_JPEG_16X16: &[u8] = &[
        0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01,
        0x00, 0x00, 0xff, 0xdb, 0x00, 0x43, 0x00, 0x0d, 0x09, 0x0a, 0x0b, 0x0a, 0x08, 0x0d, 0x0b, 0x0a, 0x0b, 0x0e,
        0x0e, 0x0d, 0x0f, 0x13, 0x20, 0x15, 0x13, 0x12, 0x12, 0x13, 0x27, 0x1c, 0x1e, 0x17, 0x20, 0x2e, 0x29, 0x31,
        0x30, 0x2e, 0x29, 0x2d, 0x2c, 0x33, 0x3a, 0x4a, 0x3e, 0x33, 0x36, 0x46, 0x37, 0x2c, 0x2d, 0x40, 0x57, 0x41,
        0x46, 0x4c, 0x4e, 0x52, 0x53, 0x52, 0x32, 0x3e, 0x5a, 0x61, 0x5a, 0x50, 0x60, 0x4a, 0x51, 0x52, 0x4f, 0xff,
        0xdb, 0x00, 0x43, 0x01, 0x0e, 0x0e, 0x0e, 0x13, 0x11, 0x13, 0x26, 0x15, 0x15, 0x26, 0x4f, 0x35, 0x2d, 0x35,
        0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f,
        0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f,
        0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0xff, 0xc2, 0x00, 0x11,
        0x08, 0x00, 0x10, 0x00, 0x10, 0x03, 0x01, 0x22, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01, 0xff, 0xc4, 0x00,
        0x15, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x04, 0x05, 0xff, 0xc4, 0x00, 0x15, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x04, 0xff, 0xda, 0x00, 0x0c, 0x03, 0x01, 0x00, 0x02, 0x10, 0x03, 0x10,
        0x00, 0x00, 0x01, 0x8e, 0xd5, 0xbe, 0x67, 0xff, 0xc4, 0x00, 0x16, 0x10, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0xff, 0xda, 0x00, 0x08, 0x01,
        0x01, 0x00, 0x01, 0x05, 0x02, 0x59, 0x8b, 0x31, 0x26, 0x24, 0xcf, 0xff, 0xc4, 0x00, 0x15, 0x11, 0x01, 0x01,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0xff, 0xda,
        0x00, 0x08, 0x01, 0x03, 0x01, 0x01, 0x3f, 0x01, 0x32, 0x6f, 0xff, 0xc4, 0x00, 0x17, 0x11, 0x00, 0x03, 0x01,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x12, 0xff,
        0xda, 0x00, 0x08, 0x01, 0x02, 0x01, 0x01, 0x3f, 0x01, 0x55, 0xa3, 0xff, 0xc4, 0x00, 0x14, 0x10, 0x01, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x20, 0xff, 0xda, 0x00,
        0x08, 0x01, 0x01, 0x00, 0x06, 0x3f, 0x02, 0x1f, 0xff, 0xc4, 0x00, 0x15, 0x10, 0x01, 0x01, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x61, 0xff, 0xda, 0x00, 0x08, 0x01,
        0x01, 0x00, 0x01, 0x3f, 0x21, 0x9a, 0x68, 0xa2, 0xff, 0xda, 0x00, 0x0c, 0x03, 0x01, 0x00, 0x02, 0x00, 0x03,
        0x00, 0x00, 0x00, 0x10, 0xb7, 0xff, 0xc4, 0x00, 0x16, 0x11, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x11, 0x00, 0x21, 0xff, 0xda, 0x00, 0x08, 0x01, 0x03, 0x01,
        0x01, 0x3f, 0x10, 0x33, 0x6f, 0xff, 0xc4, 0x00, 0x14, 0x11, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xda, 0x00, 0x08, 0x01, 0x02, 0x01, 0x01, 0x3f,
        0x10, 0x5f, 0xff, 0xc4, 0x00, 0x15, 0x10, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x31, 0xff, 0xda, 0x00, 0x08, 0x01, 0x01, 0x00, 0x01, 0x3f, 0x10, 0x91,
        0x32, 0x04, 0x4f, 0xff, 0xd9,
    ];
    /// the same gradient, libwebp `cwebp -q 50` (lossy, VP8): 80 bytes.
    const LOSSY_WEBP_16X16: &[u8] = &[
        0x52, 0x49, 0x46, 0x46, 0x48, 0x00, 0x00, 0x00, 0x57, 0x45, 0x42, 0x50, 0x56, 0x50, 0x38, 0x20, 0x3c, 0x00,
        0x00, 0x00, 0x30, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x10, 0x00, 0x10, 0x00, 0x02, 0xc0, 0x4c, 0x25, 0xb0, 0x02,
        0x74, 0xba, 0x00, 0x03, 0x09, 0x2f, 0x0c, 0x30, 0xaa, 0x00, 0x00, 0xfe, 0xf9, 0x52, 0x7c, 0x68, 0x3a, 0xe4,
        0xee, 0x5f, 0x45, 0x4c, 0x3e, 0x22, 0xf0, 0xee, 0x50, 0xec, 0xdd, 0xa1, 0xcd, 0x76, 0xf3, 0xf3, 0x4c, 0x80,
        0xe9, 0xdf, 0x0d, 0xfb, 0x40, 0x00, 0x00, 0x00,
    ];
    /// 0.25 s of a 440 Hz sine at 8 kHz, LAME `-b 8` (MPEG-2.5 layer III, no Xing tag): 432 bytes.
    const MP3_8K_MONO: &[u8] = &[
        0xff, 0xe3, 0x18, 0xc4, 0x00, 0x0c, 0x40, 0x8a, 0xdd, 0xb9, 0x43, 0x00, 0x02, 0xaa, 0x05, 0x2d, 0xb6, 0xd0,
        0x1d, 0xdd, 0xdd, 0xdc, 0xfd, 0x11, 0x11, 0x10, 0xbd, 0xdd, 0xdd, 0xff, 0xf7, 0x70, 0x30, 0x30, 0x30, 0xfb,
        0x8a, 0x02, 0x17, 0x17, 0x07, 0xc3, 0xf9, 0x40, 0xc4, 0xa7, 0x87, 0xf8, 0x11, 0xda, 0x03, 0xfc, 0x08, 0xed,
        0x01, 0xfe, 0x04, 0x77, 0x3f, 0xd1, 0xef, 0xe8, 0x80, 0x01, 0x86, 0x10, 0x00, 0x00, 0x00, 0xc8, 0xbc, 0x4d,
        0xff, 0xe3, 0x18, 0xc4, 0x0a, 0x0f, 0x70, 0xf6, 0xc4, 0xf9, 0x93, 0x28, 0x00, 0x18, 0xff, 0x97, 0x49, 0x93,
        0x22, 0x2d, 0xfe, 0x2c, 0xe2, 0x1a, 0x00, 0xf8, 0x0b, 0x9a, 0xa0, 0x01, 0xfa, 0x24, 0x26, 0x60, 0x76, 0x89,
        0x13, 0x08, 0x81, 0x43, 0xa6, 0x31, 0xbf, 0xfc, 0x44, 0x3a, 0x1d, 0x30, 0x78, 0x3c, 0x53, 0xbf, 0xca, 0x88,
        0x82, 0xa0, 0xa8, 0x88, 0xf7, 0xfd, 0x60, 0xa8, 0x88, 0xf0, 0x69, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xe3, 0x18, 0xc4, 0x07, 0x0e, 0x78, 0xa6, 0x54, 0x01, 0xde, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xf8,
        0xd2, 0x08, 0x8c, 0x01, 0xc0, 0x09, 0x0a, 0x82, 0xa0, 0x14, 0x60, 0x5a, 0x0c, 0x46, 0x10, 0x60, 0xdc, 0x61,
        0x16, 0x2a, 0x46, 0x22, 0x75, 0x48, 0x63, 0x98, 0x27, 0xc6, 0x1c, 0x20, 0xbc, 0x60, 0x82, 0x08, 0x40, 0x60,
        0x2f, 0x0b, 0x80, 0x18, 0x18, 0x06, 0x4b, 0xba, 0xd3, 0x3a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xe3, 0x18, 0xc4, 0x08, 0x0e, 0xc8, 0xa6, 0x50, 0x01, 0x5e, 0x00, 0x00, 0xff, 0xff, 0xff, 0xf6, 0x50,
        0x04, 0x00, 0xa2, 0x20, 0x09, 0x30, 0x07, 0x00, 0xb3, 0x01, 0xe0, 0x1c, 0x14, 0x05, 0x93, 0x0c, 0x71, 0x05,
        0x31, 0x3f, 0x24, 0x33, 0x62, 0xd8, 0x53, 0x34, 0xaa, 0x0b, 0x81, 0xa0, 0x22, 0x30, 0x01, 0x03, 0x73, 0x03,
        0x30, 0x09, 0x02, 0x80, 0xa8, 0xf0, 0x07, 0xd5, 0x5e, 0x18, 0x55, 0xfd, 0x61, 0x7a, 0x5b, 0x1a, 0x99, 0x88,
        0xff, 0xe3, 0x18, 0xc4, 0x07, 0x0e, 0x41, 0x0a, 0xb8, 0x01, 0x99, 0x38, 0x00, 0xff, 0xff, 0xe7, 0xf8, 0x5d,
        0x94, 0x3f, 0xf1, 0x67, 0x77, 0xf7, 0xbf, 0xb7, 0x23, 0x0d, 0xd5, 0xa1, 0xba, 0x42, 0x32, 0x0d, 0xb5, 0x90,
        0xaf, 0xf5, 0xf8, 0xd4, 0xf7, 0xc0, 0xb0, 0x15, 0x12, 0x81, 0xf1, 0x51, 0xa1, 0xac, 0xbd, 0xff, 0xb1, 0x23,
        0x47, 0x44, 0x68, 0xff, 0x81, 0x85, 0x92, 0x01, 0x15, 0x92, 0x26, 0xb5, 0x54, 0x2c, 0xf9, 0x21, 0x42, 0x87,
        0xff, 0xe3, 0x18, 0xc4, 0x09, 0x0c, 0x20, 0xb5, 0xc8, 0x01, 0xc9, 0x18, 0x01, 0x16, 0x44, 0xd2, 0x68, 0x75,
        0x56, 0x72, 0x48, 0xa5, 0x2b, 0x22, 0x0b, 0x0a, 0xa6, 0x42, 0x08, 0x92, 0xd1, 0x10, 0xa4, 0x95, 0x0e, 0x22,
        0x44, 0xd5, 0xa1, 0x2a, 0x6c, 0x27, 0xe4, 0x15, 0x88, 0x2c, 0x27, 0x7f, 0xff, 0x41, 0x78, 0x37, 0x15, 0x4c,
        0x41, 0x4d, 0x45, 0x33, 0x2e, 0x31, 0x30, 0x30, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55,
    ];
    /// 800 frames of a 440 Hz sine at 8 kHz, 16-bit mono, `flac -8 --no-padding --no-seektable`: 368 bytes.
    const FLAC_8K_MONO_800: &[u8] = &[
        0x66, 0x4c, 0x61, 0x43, 0x00, 0x00, 0x00, 0x22, 0x10, 0x00, 0x10, 0x00, 0x00, 0x01, 0x1a, 0x00, 0x01, 0x1a,
        0x01, 0xf4, 0x00, 0xf0, 0x00, 0x00, 0x03, 0x20, 0x65, 0x96, 0xb2, 0x1f, 0x6a, 0x48, 0xf2, 0xc3, 0x75, 0x5f,
        0x75, 0x04, 0x1e, 0xf3, 0xc9, 0xbb, 0x84, 0x00, 0x00, 0x28, 0x20, 0x00, 0x00, 0x00, 0x72, 0x65, 0x66, 0x65,
        0x72, 0x65, 0x6e, 0x63, 0x65, 0x20, 0x6c, 0x69, 0x62, 0x46, 0x4c, 0x41, 0x43, 0x20, 0x31, 0x2e, 0x34, 0x2e,
        0x32, 0x20, 0x32, 0x30, 0x32, 0x32, 0x31, 0x30, 0x32, 0x32, 0x00, 0x00, 0x00, 0x00, 0xff, 0xf8, 0x74, 0x08,
        0x00, 0x03, 0x1f, 0xf7, 0x42, 0x00, 0x00, 0x0f, 0xe0, 0xb5, 0x3c, 0x3e, 0x00, 0x00, 0x01, 0x12, 0xba, 0x19,
        0x81, 0x21, 0x38, 0x5d, 0xb3, 0x24, 0x90, 0x92, 0x87, 0xbc, 0xc8, 0x60, 0x61, 0x33, 0xde, 0x14, 0x90, 0x92,
        0x4c, 0xdb, 0xa1, 0xc8, 0x48, 0x19, 0x85, 0xd4, 0x88, 0x68, 0x18, 0x42, 0x48, 0x53, 0x23, 0x64, 0xa1, 0x24,
        0x24, 0x26, 0x7d, 0xc2, 0x92, 0x42, 0x49, 0x9a, 0x44, 0xb3, 0x24, 0x84, 0x92, 0x87, 0x7c, 0xc8, 0x48, 0x49,
        0x0a, 0x4d, 0x89, 0x94, 0x24, 0x84, 0x30, 0x2c, 0x22, 0x57, 0x43, 0x30, 0x24, 0x27, 0x0b, 0xb6, 0x64, 0x92,
        0x12, 0x50, 0xf7, 0x99, 0x0c, 0x0c, 0x26, 0x7b, 0xc2, 0x92, 0x12, 0x49, 0x9b, 0x74, 0x39, 0x09, 0x03, 0x30,
        0xba, 0x91, 0x0d, 0x03, 0x08, 0x49, 0x0a, 0x64, 0x6c, 0x94, 0x24, 0x84, 0x84, 0xcf, 0xb8, 0x52, 0x48, 0x49,
        0x33, 0x48, 0x96, 0x64, 0x90, 0x92, 0x50, 0xef, 0x99, 0x09, 0x09, 0x21, 0x49, 0xb1, 0x32, 0x84, 0x90, 0x86,
        0x05, 0x84, 0x4a, 0xe8, 0x66, 0x04, 0x84, 0xe1, 0x76, 0xcc, 0x92, 0x42, 0x4a, 0x1e, 0xf3, 0x21, 0x81, 0x84,
        0xcf, 0x78, 0x52, 0x42, 0x49, 0x33, 0x6e, 0x87, 0x21, 0x20, 0x66, 0x17, 0x52, 0x21, 0xa0, 0x61, 0x09, 0x21,
        0x4c, 0x8d, 0x92, 0x84, 0x90, 0x90, 0x99, 0xf7, 0x0a, 0x49, 0x09, 0x26, 0x69, 0x12, 0xcc, 0x92, 0x12, 0x4a,
        0x1d, 0xf3, 0x21, 0x21, 0x24, 0x29, 0x36, 0x26, 0x50, 0x92, 0x10, 0xc0, 0xb0, 0x89, 0x5d, 0x0c, 0xc0, 0x90,
        0x9c, 0x2e, 0xd9, 0x92, 0x48, 0x49, 0x43, 0xde, 0x64, 0x30, 0x30, 0x99, 0xef, 0x0a, 0x48, 0x49, 0x26, 0x6d,
        0xd0, 0xe4, 0x24, 0x0c, 0xc2, 0xea, 0x44, 0x34, 0x0c, 0x21, 0x24, 0x29, 0x91, 0xb2, 0x50, 0x92, 0x12, 0x13,
        0x3e, 0xe1, 0x49, 0x21, 0x24, 0xcd, 0x22, 0x59, 0x92, 0x42, 0x49, 0x43, 0xbe, 0x64, 0x24, 0x24, 0x85, 0x26,
        0xc4, 0xca, 0x12, 0x42, 0x18, 0x10, 0x57, 0xed,
    ];
}
