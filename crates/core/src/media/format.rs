//! What a media item is: the caller's image or audio clip ([`Media`]), the file formats
//! accepted ([`Format`]) and the limits of what is decoded.

use std::path::Path;

/// One image or audio clip, borrowed from the caller.
pub enum Media<'a> {
    /// An image or audio file (see [`Format`]).
    File(&'a Path),
    /// The bytes of such a file.
    Encoded(&'a [u8]),
    /// Raw pixels, 3 bytes (R, G, B) each, row after row.
    Rgb { width: u32, height: u32, pixels: &'a [u8] },
    /// Mono audio samples at the projector's sample rate, native-endian f32 (bytes, so that
    /// any alignment is accepted).
    Pcm(&'a [u8]),
}

/// The encoded formats accepted, known by their first bytes. Anything else is refused before a
/// decoder sees it; these are decoded in Rust (`decode.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Png,
    Jpeg,
    Gif,
    Bmp,
    /// Netpbm P1 to P6 (ASCII and binary bitmaps, greymaps and pixmaps; not P7, PAM).
    Pnm,
    WebP,
    Wav,
    Flac,
    Mp3,
}

impl Format {
    /// Every format, for messages.
    const ALL: [Format; 9] = [
        Format::Png,
        Format::Jpeg,
        Format::Gif,
        Format::Bmp,
        Format::Pnm,
        Format::WebP,
        Format::Wav,
        Format::Flac,
        Format::Mp3,
    ];

    /// The format of a file that starts with `head` (12 bytes are enough).
    pub fn sniff(head: &[u8]) -> Option<Format> {
        let starts = |magic: &[u8]| head.starts_with(magic);
        let riff = |form: &[u8]| head.len() >= 12 && starts(b"RIFF") && &head[8..12] == form;
        Some(if starts(b"\x89PNG\r\n\x1a\n") {
            Format::Png
        } else if starts(&[0xFF, 0xD8, 0xFF]) {
            Format::Jpeg
        } else if starts(b"GIF87a") || starts(b"GIF89a") {
            Format::Gif
        } else if starts(b"BM") {
            Format::Bmp
        } else if head.len() >= 2 && head[0] == b'P' && (b'1'..=b'6').contains(&head[1]) {
            Format::Pnm
        } else if riff(b"WEBP") {
            Format::WebP
        } else if riff(b"WAVE") {
            Format::Wav
        } else if starts(b"fLaC") {
            Format::Flac
        } else if starts(b"ID3") || (head.len() >= 2 && head[0] == 0xFF && head[1] & 0xE0 == 0xE0) {
            Format::Mp3
        } else {
            return None;
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Png => "PNG",
            Format::Jpeg => "JPEG",
            Format::Gif => "GIF",
            Format::Bmp => "BMP",
            Format::Pnm => "PNM",
            Format::WebP => "WebP",
            Format::Wav => "WAV",
            Format::Flac => "FLAC",
            Format::Mp3 => "MP3",
        }
    }

    pub fn is_audio(self) -> bool {
        matches!(self, Format::Wav | Format::Flac | Format::Mp3)
    }

    /// "PNG, JPEG, ... or MP3".
    pub(crate) fn list() -> String {
        let names: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
        format!("{} or {}", names[..names.len() - 1].join(", "), names[names.len() - 1])
    }
}

/// The largest image accepted, in pixels (64 megapixels): larger ones are refused before they
/// are decoded, since a few header bytes could otherwise ask for terabytes.
pub const MAX_IMAGE_PIXELS: u64 = 1 << 26;

/// The longest audio clip accepted, in seconds (10 minutes). Longer clips are refused before
/// any sample is allocated or decoded.
pub const MAX_AUDIO_SECONDS: u32 = 600;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_formats() {
        let cases: &[(&[u8], Option<Format>)] = &[
            (b"\x89PNG\r\n\x1a\n....", Some(Format::Png)),
            (&[0xFF, 0xD8, 0xFF, 0xE0], Some(Format::Jpeg)),
            (b"GIF89a", Some(Format::Gif)),
            (b"GIF87a", Some(Format::Gif)),
            (b"BM....", Some(Format::Bmp)),
            (b"P1\n", Some(Format::Pnm)),
            (b"P6\n", Some(Format::Pnm)),
            (b"RIFF\0\0\0\0WEBPVP8 ", Some(Format::WebP)),
            (b"RIFF\0\0\0\0WAVEfmt ", Some(Format::Wav)),
            (b"fLaC", Some(Format::Flac)),
            (b"ID3\x04", Some(Format::Mp3)),
            (&[0xFF, 0xFB, 0x90], Some(Format::Mp3)),
            // Formats stb_image read and the Rust decoders do not: PAM, PSD, Radiance HDR.
            (b"P7\n", None),
            (b"8BPS\0\x01", None),
            (b"#?RADIANCE\n", None),
            (b"RIFF\0\0\0\0AVI ", None),
            (b"", None),
            (b"hello", None),
        ];
        for (head, want) in cases {
            assert_eq!(Format::sniff(head), *want, "{head:?}");
        }
        assert_eq!(Format::list(), "PNG, JPEG, GIF, BMP, PNM, WebP, WAV, FLAC or MP3");
    }
}
