//! stb_image, the C decoder that `decode.rs` replaced on the request path, kept as the reference
//! of the decode tests and the decode bench. Its symbols come from libmtmd (llama.cpp's
//! mtmd-helper.cpp compiles stb_image in), which llama-cpp-sys-2 links; the library no longer
//! calls it.

use std::os::raw::{c_int, c_void};

extern "C" {
    fn stbi_load_from_memory(
        buffer: *const u8,
        len: c_int,
        x: *mut c_int,
        y: *mut c_int,
        channels: *mut c_int,
        desired_channels: c_int,
    ) -> *mut u8;
    fn stbi_image_free(data: *mut c_void);
}

/// A picture as stb_image decodes it with 3 channels (how media.rs called it): width, height
/// and RGB pixels, or `None` when stb_image refuses the bytes.
pub fn stb_rgb(bytes: &[u8]) -> Option<(u32, u32, Vec<u8>)> {
    let len = c_int::try_from(bytes.len()).ok()?;
    let (mut w, mut h, mut channels) = (0, 0, 0);
    // SAFETY: `bytes` is `len` readable bytes and the three outputs are writable.
    let data = unsafe { stbi_load_from_memory(bytes.as_ptr(), len, &mut w, &mut h, &mut channels, 3) };
    if data.is_null() {
        return None;
    }
    let n = w as usize * h as usize * 3;
    // SAFETY: stb_image returned `w * h` pixels of 3 bytes at `data`, which is freed once, after
    // they are copied.
    let rgb = unsafe {
        let rgb = std::slice::from_raw_parts(data, n).to_vec();
        stbi_image_free(data.cast());
        rgb
    };
    Some((w as u32, h as u32, rgb))
}
