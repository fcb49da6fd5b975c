//! The Rust decoders (`mm_core::decode`) against stb_image, the C decoder they replaced on the
//! request path: lossless formats (PNG, GIF, BMP, PNM) give the same pixels, with the
//! differences listed in `images_equal_stb`; JPEG stays within a small tolerance (the two use
//! different IDCTs and chroma upsampling); WebP, which stb_image cannot read, gives back the
//! pixels it was made from. `cargo test --release --test decode_images -- --nocapture` prints
//! each case.

// The hand-made file writers take every header field as an argument.
#![allow(clippy::too_many_arguments)]

#[path = "reference/photo.rs"]
mod photo;
#[path = "reference/stb.rs"]
mod stb;

use image::ImageEncoder;
use mm_core::decode::decode_image;
use mm_core::Format;
use mm_fixtures::png_chunk as chunk;
use stb::stb_rgb;

const LIMIT: u64 = mm_core::MAX_IMAGE_PIXELS;

fn pattern(n: usize, seed: u32) -> Vec<u8> {
    let mut s = seed.wrapping_mul(2_654_435_761).max(1);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s >> 24) as u8
        })
        .collect()
}

fn enc(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut o = Vec::new();
    f(&mut o);
    o
}

// ---- PNG writers -------------------------------------------------------------------------

/// zlib with stored blocks.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = if data.is_empty() { vec![&[][..]] } else { data.chunks(65535).collect() };
    for (i, b) in blocks.iter().enumerate() {
        out.push((i + 1 == blocks.len()) as u8);
        out.extend_from_slice(&(b.len() as u16).to_le_bytes());
        out.extend_from_slice(&(!(b.len() as u16)).to_le_bytes());
        out.extend_from_slice(b);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &x in data {
        a = (a + u32::from(x)) % 65521;
        b = (b + a) % 65521;
    }
    out.extend_from_slice(&((b << 16) | a).to_be_bytes());
    out
}

/// A PNG, optionally Adam7-interlaced, from packed rows (`bits` per sample, `spp` samples a
/// pixel), filter 0 on every row.
fn png_manual(
    w: u32,
    h: u32,
    color: u8,
    bits: u8,
    spp: u32,
    interlace: bool,
    plte: Option<&[u8]>,
    trns: Option<&[u8]>,
    samples: &[u16],
) -> Vec<u8> {
    let pack = |px: &[(u32, u32)]| -> Vec<u8> {
        // One row of the given pixels.
        let mut row = vec![0u8];
        let mut acc = 0u32;
        let mut nbits = 0;
        for &(x, y) in px {
            for s in 0..spp {
                let v = u32::from(samples[((y * w + x) * spp + s) as usize]);
                if bits == 16 {
                    row.extend_from_slice(&(v as u16).to_be_bytes());
                } else if bits == 8 {
                    row.push(v as u8);
                } else {
                    acc = (acc << bits) | (v & ((1 << bits) - 1));
                    nbits += bits;
                    if nbits == 8 {
                        row.push(acc as u8);
                        acc = 0;
                        nbits = 0;
                    }
                }
            }
        }
        if nbits > 0 {
            row.push((acc << (8 - nbits)) as u8);
        }
        row
    };
    let mut raw = Vec::new();
    if interlace {
        let passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)];
        for (x0, y0, dx, dy) in passes {
            for y in (y0..h).step_by(dy) {
                let px: Vec<(u32, u32)> = (x0..w).step_by(dx).map(|x| (x, y)).collect();
                if !px.is_empty() {
                    raw.extend(pack(&px));
                }
            }
        }
    } else {
        for y in 0..h {
            raw.extend(pack(&(0..w).map(|x| (x, y)).collect::<Vec<_>>()));
        }
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[bits, color, 0, 0, interlace as u8]);
    chunk(&mut out, b"IHDR", &ihdr);
    if let Some(p) = plte {
        chunk(&mut out, b"PLTE", p);
    }
    if let Some(t) = trns {
        chunk(&mut out, b"tRNS", t);
    }
    chunk(&mut out, b"IDAT", &zlib_stored(&raw));
    chunk(&mut out, b"IEND", &[]);
    out
}

fn png_cases() -> Vec<(String, Vec<u8>)> {
    use image::ExtendedColorType as C;
    let (w, h) = (37u32, 23u32);
    let n = (w * h) as usize;
    let mut cases = Vec::new();
    for (name, color, bpp) in [
        ("rgb8", C::Rgb8, 3),
        ("rgba8", C::Rgba8, 4),
        ("l8", C::L8, 1),
        ("la8", C::La8, 2),
        ("rgb16", C::Rgb16, 6),
        ("rgba16", C::Rgba16, 8),
        ("l16", C::L16, 2),
        ("la16", C::La16, 4),
    ] {
        let data = pattern(n * bpp, bpp as u32);
        let file = enc(|o| image::codecs::png::PngEncoder::new(o).write_image(&data, w, h, color).unwrap());
        cases.push((format!("png_{name}"), file));
    }
    // Manual: palette (8/4/2/1-bit, with tRNS), low-bit grey, grey/RGB with tRNS colour key,
    // each plain and interlaced.
    let palette: Vec<u8> = pattern(256 * 3, 77);
    for interlace in [false, true] {
        let tag = if interlace { "_adam7" } else { "" };
        for bits in [1u8, 2, 4, 8] {
            let max = (1u16 << bits) - 1;
            let s: Vec<u16> = pattern(n, u32::from(bits)).iter().map(|&v| u16::from(v) & max).collect();
            let plte = &palette[..3 * (max as usize + 1)];
            let trns = &[0u8, 128, 255][..3.min(max as usize + 1)];
            cases.push((
                format!("png_palette{bits}{tag}"),
                png_manual(w, h, 3, bits, 1, interlace, Some(plte), Some(trns), &s),
            ));
            cases.push((format!("png_grey{bits}{tag}"), png_manual(w, h, 0, bits, 1, interlace, None, None, &s)));
        }
        let s: Vec<u16> = pattern(n * 3, 5).iter().map(|&v| u16::from(v)).collect();
        cases.push((
            format!("png_rgb8_trns{tag}"),
            png_manual(w, h, 2, 8, 3, interlace, None, Some(&[0, s[0] as u8, 0, s[1] as u8, 0, s[2] as u8]), &s),
        ));
        let s16: Vec<u16> = pattern(n * 8, 6).chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
        cases.push((format!("png_rgba16{tag}"), png_manual(w, h, 6, 16, 4, interlace, None, None, &s16)));
        cases.push((
            format!("png_grey16_trns{tag}"),
            png_manual(w, h, 0, 16, 1, interlace, None, Some(&s16[0].to_be_bytes()), &s16),
        ));
    }
    cases
}

// ---- GIF, BMP, PNM ----------------------------------------------------------------------

fn gif(screen: (u16, u16), bg: u8, global: Option<&[u8]>, frames: &[gif::Frame<'_>]) -> Vec<u8> {
    enc(|o| {
        let mut e = gif::Encoder::new(&mut *o, screen.0, screen.1, global.unwrap_or(&[])).unwrap();
        for f in frames {
            e.write_frame(f).unwrap();
        }
        drop(e);
        o[11] = bg;
    })
}

fn gif_cases() -> Vec<(String, Vec<u8>)> {
    let (w, h) = (40u16, 30u16);
    let global = pattern(256 * 3, 9);
    let frame = |x: u16,
                 y: u16,
                 fw: u16,
                 fh: u16,
                 transparent: Option<u8>,
                 palette: Option<Vec<u8>>,
                 interlaced: bool,
                 seed: u32| {
        let buffer = pattern(usize::from(fw) * usize::from(fh), seed).into();
        gif::Frame {
            left: x,
            top: y,
            width: fw,
            height: fh,
            transparent,
            palette,
            interlaced,
            buffer,
            ..Default::default()
        }
    };
    let mut small = frame(0, 0, w, h, None, None, false, 3);
    small.buffer = small.buffer.iter().map(|v| v & 15).collect::<Vec<_>>().into(); // indices < 16
    vec![
        ("gif_full".into(), gif((w, h), 0, Some(&global), &[frame(0, 0, w, h, None, None, false, 1)])),
        ("gif_transparent".into(), gif((w, h), 0, Some(&global), &[frame(0, 0, w, h, Some(7), None, false, 2)])),
        ("gif_subframe_bg5".into(), gif((w, h), 5, Some(&global), &[frame(3, 4, 20, 11, Some(9), None, false, 3)])),
        ("gif_subframe_bg0".into(), gif((w, h), 0, Some(&global), &[frame(3, 4, 20, 11, None, None, false, 4)])),
        (
            "gif_local_palette".into(),
            gif((w, h), 2, None, &[frame(1, 1, 30, 20, Some(3), Some(pattern(256 * 3, 11)), false, 5)]),
        ),
        ("gif_interlaced".into(), gif((w, h), 0, Some(&global), &[frame(0, 0, w, h, None, None, true, 6)])),
        (
            "gif_two_frames".into(),
            gif(
                (w, h),
                1,
                Some(&global),
                &[frame(2, 2, 10, 10, None, None, false, 7), frame(0, 0, w, h, None, None, false, 8)],
            ),
        ),
        ("gif_small_palette".into(), gif((w, h), 0, Some(&global[..16 * 3]), &[small])),
    ]
}

/// A BMP with a BITMAPINFOHEADER (or V3 with bit masks), bottom-up unless `top_down`.
fn bmp(
    w: i32,
    h: i32,
    bpp: u16,
    compression: u32,
    masks: Option<[u32; 3]>,
    palette: &[[u8; 4]],
    pixel_data: &[u8],
    top_down: bool,
) -> Vec<u8> {
    let header_len = 40 + if masks.is_some() { 12 } else { 0 };
    let offset = 14 + header_len + palette.len() * 4;
    let mut f = b"BM".to_vec();
    f.extend_from_slice(&((offset + pixel_data.len()) as u32).to_le_bytes());
    f.extend_from_slice(&[0; 4]);
    f.extend_from_slice(&(offset as u32).to_le_bytes());
    f.extend_from_slice(&40u32.to_le_bytes());
    f.extend_from_slice(&w.to_le_bytes());
    f.extend_from_slice(&(if top_down { -h } else { h }).to_le_bytes());
    f.extend_from_slice(&1u16.to_le_bytes());
    f.extend_from_slice(&bpp.to_le_bytes());
    f.extend_from_slice(&compression.to_le_bytes());
    f.extend_from_slice(&(pixel_data.len() as u32).to_le_bytes());
    f.extend_from_slice(&[0; 8]);
    f.extend_from_slice(&(palette.len() as u32).to_le_bytes());
    f.extend_from_slice(&[0; 4]);
    if let Some(m) = masks {
        for v in m {
            f.extend_from_slice(&v.to_le_bytes());
        }
    }
    for p in palette {
        f.extend_from_slice(p);
    }
    f.extend_from_slice(pixel_data);
    f
}

fn bmp_cases() -> Vec<(String, Vec<u8>)> {
    use image::ExtendedColorType as C;
    let (w, h) = (29u32, 17u32);
    let n = (w * h) as usize;
    let mut cases = vec![
        (
            "bmp_rgb24".to_string(),
            enc(|o| image::codecs::bmp::BmpEncoder::new(o).write_image(&pattern(n * 3, 1), w, h, C::Rgb8).unwrap()),
        ),
        (
            "bmp_rgba32".to_string(),
            enc(|o| image::codecs::bmp::BmpEncoder::new(o).write_image(&pattern(n * 4, 2), w, h, C::Rgba8).unwrap()),
        ),
        (
            "bmp_l8".to_string(),
            enc(|o| image::codecs::bmp::BmpEncoder::new(o).write_image(&pattern(n, 3), w, h, C::L8).unwrap()),
        ),
    ];
    let palette: Vec<[u8; 4]> = pattern(256 * 4, 4).chunks(4).map(|c| [c[0], c[1], c[2], 0]).collect();
    let (wi, hi) = (w as i32, h as i32);
    for bpp in [1u16, 4, 8] {
        let stride = (w as usize * bpp as usize).div_ceil(32) * 4;
        let data = pattern(stride * h as usize, u32::from(bpp) + 10);
        let pal = &palette[..1 << bpp];
        cases.push((format!("bmp_pal{bpp}"), bmp(wi, hi, bpp, 0, None, pal, &data, false)));
        cases.push((format!("bmp_pal{bpp}_topdown"), bmp(wi, hi, bpp, 0, None, pal, &data, true)));
    }
    let stride16 = (w as usize * 2).div_ceil(4) * 4;
    let data16 = pattern(stride16 * h as usize, 20);
    cases.push(("bmp_16_555".into(), bmp(wi, hi, 16, 0, None, &[], &data16, false)));
    cases
        .push(("bmp_16_565_bitfields".into(), bmp(wi, hi, 16, 3, Some([0xF800, 0x07E0, 0x001F]), &[], &data16, false)));
    let data32 = pattern(w as usize * 4 * h as usize, 21);
    cases.push((
        "bmp_32_bitfields".into(),
        bmp(wi, hi, 32, 3, Some([0x00FF_0000, 0x0000_FF00, 0x0000_00FF]), &[], &data32, false),
    ));
    // RLE8: runs and absolute runs, end of line, end of bitmap.
    let mut rle = Vec::new();
    for y in 0..h {
        rle.extend_from_slice(&[10, (y * 3) as u8, 0, 5, 1, 2, 3, 4, 5, 0]); // 10 run + 5 absolute (padded)
        rle.extend_from_slice(&[(w - 15) as u8, 200, 0, 0]);
    }
    rle.extend_from_slice(&[0, 1]);
    cases.push(("bmp_rle8".into(), bmp(wi, hi, 8, 1, None, &palette, &rle, false)));
    cases
}

fn pnm_cases() -> Vec<(String, Vec<u8>)> {
    let (w, h) = (31usize, 19usize);
    let mut cases = Vec::new();
    for (magic, spp) in [("P5", 1), ("P6", 3)] {
        for maxval in [255u32, 65535, 1000, 100] {
            let mut f = format!("{magic}\n# comment\n{w} {h}\n{maxval}\n").into_bytes();
            let data = pattern(w * h * spp * 2, maxval);
            if maxval > 255 {
                for c in data.chunks(2) {
                    let v = u32::from(u16::from_be_bytes([c[0], c[1]])) % (maxval + 1);
                    f.extend_from_slice(&(v as u16).to_be_bytes());
                }
            } else {
                f.extend(data[..w * h * spp].iter().map(|&v| (u32::from(v) % (maxval + 1)) as u8));
            }
            cases.push((format!("pnm_{magic}_max{maxval}"), f));
        }
    }
    cases
}

#[test]
fn images_equal_stb() {
    let all: Vec<(String, Vec<u8>)> = [png_cases(), gif_cases(), bmp_cases(), pnm_cases()].concat();
    let (mut different, mut stb_refuses) = (Vec::new(), Vec::new());
    for (name, file) in &all {
        let format = Format::sniff(file).unwrap_or_else(|| panic!("{name}: not sniffed"));
        let new = decode_image(file, format, LIMIT).unwrap_or_else(|e| panic!("{name}: {e}"));
        let Some((w, h, old)) = stb_rgb(file) else {
            println!("{name:28} stb_image refuses it");
            stb_refuses.push(name.as_str());
            continue;
        };
        assert_eq!((new.width, new.height), (w, h), "{name}");
        let max = new.rgb.iter().zip(&old).map(|(a, b)| a.abs_diff(*b)).max().unwrap_or(0);
        println!("{name:28} {w}x{h} max difference {max}");
        if max > 0 {
            different.push((name.as_str(), max));
        }
    }
    // stb_image has no run-length-encoded BMP; the Rust decoder reads it.
    assert_eq!(stb_refuses, ["bmp_rle8"]);
    // Where the two differ, on purpose:
    // - 16-bit BMP: 5- and 6-bit channels widened by rounding (image) or by repeating their
    //   high bits (stb_image): at most 1 level apart;
    // - PNM whose maxval is not 255: stb_image neither scales samples to 0..255 nor reads 16-bit
    //   samples big-endian (it keeps the low byte); the Rust decoder does both (checked below).
    let expected = [("bmp_16_555", 1), ("bmp_16_565_bitfields", 1)];
    for (name, max) in different {
        if name.starts_with("pnm_") {
            assert!(!name.ends_with("max255"), "{name}");
            continue;
        }
        assert!(expected.iter().any(|&(n, m)| n == name && max <= m), "{name}: max difference {max}");
    }
    let scaled = decode_image(b"P5\n3 1\n1000\n\x03\xe8\x01\xf4\x00\x00", Format::Pnm, LIMIT).unwrap();
    assert_eq!(scaled.rgb, [255, 255, 255, 128, 128, 128, 0, 0, 0]);
    let wide = decode_image(b"P5\n1 1\n65535\n\x12\x34", Format::Pnm, LIMIT).unwrap();
    assert_eq!((wide.rgb[0], stb_rgb(b"P5\n1 1\n65535\n\x12\x34").unwrap().2[0]), (0x12, 0x34));
}

#[test]
fn a_photo_png_equals_stb() {
    let (w, h) = (301, 199);
    let rgb = photo::photo(w, h);
    let file = photo::png(&rgb, w, h);
    let new = decode_image(&file, Format::Png, LIMIT).unwrap();
    assert_eq!(new.rgb, rgb);
    assert_eq!(stb_rgb(&file).unwrap().2, rgb);
}

/// The documented JPEG tolerance (docs/media.md): per channel, no sample more than
/// `JPEG_MAX_DIFF` levels from stb_image's, and a mean difference under `JPEG_MEAN_DIFF`.
const JPEG_MAX_DIFF: u8 = 4;
const JPEG_MEAN_DIFF: f64 = 0.3;

#[test]
fn jpeg_within_tolerance_of_stb() {
    let (w, h) = (333, 211); // not a multiple of the 16-pixel MCU: edge blocks are padded
    let rgb = photo::photo(w, h);
    for (progressive, subsampled, grey, name) in [
        (false, true, false, "baseline 4:2:0"),
        (true, true, false, "progressive 4:2:0"),
        (false, false, false, "baseline 4:4:4"),
        (true, false, false, "progressive 4:4:4"),
        (false, false, true, "baseline grey"),
    ] {
        let file = photo::jpeg(&rgb, w, h, progressive, subsampled, grey);
        let new = decode_image(&file, Format::Jpeg, LIMIT).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (sw, sh, old) = stb_rgb(&file).unwrap();
        assert_eq!((new.width, new.height), (sw, sh), "{name}");
        let max = new.rgb.iter().zip(&old).map(|(a, b)| a.abs_diff(*b)).max().unwrap_or(0);
        let mean = new.rgb.iter().zip(&old).map(|(a, b)| f64::from(a.abs_diff(*b))).sum::<f64>() / old.len() as f64;
        println!("jpeg {name:18} {w}x{h}: max difference {max}, mean {mean:.3}");
        assert!(max <= JPEG_MAX_DIFF && mean < JPEG_MEAN_DIFF, "{name}: max {max}, mean {mean:.3}");
    }
}

#[test]
fn webp_decodes() {
    // Lossless: the pixels it was made from (alpha dropped; a fully transparent pixel may lose
    // its colour in the encoder, so every alpha here is at least 1).
    for (color, bpp) in [(image::ExtendedColorType::Rgb8, 3usize), (image::ExtendedColorType::Rgba8, 4)] {
        let (w, h) = (33u32, 21u32);
        let mut data = pattern((w * h) as usize * bpp, 3);
        if bpp == 4 {
            data.chunks_mut(4).for_each(|px| px[3] = px[3].max(1));
        }
        let file = enc(|o| image::codecs::webp::WebPEncoder::new_lossless(o).write_image(&data, w, h, color).unwrap());
        let img = decode_image(&file, Format::sniff(&file).unwrap(), LIMIT).unwrap();
        let want: Vec<u8> = data.chunks(bpp).flat_map(|p| [p[0], p[1], p[2]]).collect();
        assert_eq!((img.width, img.height, img.rgb), (w, h, want), "lossless {bpp} channels");
    }
    // Lossy (VP8, libwebp's cwebp -q 75 of a solid 32 px square, tests/media/README.md): the
    // colour comes back within a few levels.
    let file =
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/media/seeing-yellow-lossy.webp")).unwrap();
    let img = decode_image(&file, Format::sniff(&file).unwrap(), LIMIT).unwrap();
    assert_eq!((img.width, img.height), (32, 32));
    let max = img.rgb.chunks(3).flat_map(|p| [p[0].abs_diff(255), p[1].abs_diff(255), p[2].abs_diff(0)]).max().unwrap();
    assert!(max <= 8, "lossy yellow is {max} levels off");
}
