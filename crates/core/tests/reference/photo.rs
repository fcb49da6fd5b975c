//! A photo-like test picture and its PNG and JPEG files, the same bytes on every run: what the
//! decode tests compare against stb_image and what the decode bench times.

use image::ImageEncoder;

/// `w` x `h` RGB pixels: smooth gradients and blobs plus a little noise, so that PNG filters
/// and JPEG's DCT meet something like a photograph rather than flat colour.
pub fn photo(w: u32, h: u32) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        ((state >> 32) % 17) as f32 - 8.0
    };
    let mut out = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
            let base = [
                120.0 + 90.0 * (fx * 3.1 + fy * 1.3).sin() + 30.0 * (fy * 9.0).cos(),
                110.0 + 80.0 * (fx * 1.7 - fy * 2.9).cos() + 25.0 * ((fx - 0.5) * (fy - 0.3) * 40.0).sin(),
                100.0 + 70.0 * (fx * fy * 6.0).sin() + 40.0 * (fx * 5.0).cos(),
            ];
            out.extend(base.map(|b| (b + noise()).clamp(0.0, 255.0) as u8));
        }
    }
    out
}

/// A PNG the way libpng and most tools write one: zlib level 6, adaptive filters. (Not the
/// `image` crate's default fast encoder, whose streams its own decoder reads on a fast path.)
pub fn png(rgb: &[u8], w: u32, h: u32) -> Vec<u8> {
    use image::codecs::png::{CompressionType, FilterType, PngEncoder};
    let mut out = Vec::new();
    PngEncoder::new_with_quality(&mut out, CompressionType::Level(6), FilterType::Adaptive)
        .write_image(rgb, w, h, image::ExtendedColorType::Rgb8)
        .expect("PNG encoding");
    out
}

/// A JPEG of quality 90, baseline or progressive, with the chroma subsampling cameras use
/// (4:2:0) or none (4:4:4); `grey` encodes the luma of each pixel only.
pub fn jpeg(rgb: &[u8], w: u32, h: u32, progressive: bool, subsampled: bool, grey: bool) -> Vec<u8> {
    use jpeg_encoder::{ColorType, Encoder, SamplingFactor};
    let mut out = Vec::new();
    let mut encoder = Encoder::new(&mut out, 90);
    encoder.set_sampling_factor(if subsampled { SamplingFactor::R_4_2_0 } else { SamplingFactor::R_4_4_4 });
    encoder.set_progressive(progressive);
    let (w, h) = (u16::try_from(w).expect("JPEG width"), u16::try_from(h).expect("JPEG height"));
    if grey {
        let luma: Vec<u8> = rgb
            .chunks(3)
            .map(|p| ((u32::from(p[0]) * 77 + u32::from(p[1]) * 150 + u32::from(p[2]) * 29) >> 8) as u8)
            .collect();
        encoder.encode(&luma, w, h, ColorType::Luma).expect("JPEG encoding");
    } else {
        encoder.encode(rgb, w, h, ColorType::Rgb).expect("JPEG encoding");
    }
    out
}
