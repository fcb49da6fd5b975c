//! Media ready for the projector: mtmd bitmaps.

use std::ffi::{CStr, CString};
use std::ptr::NonNull;

use llama_cpp_sys_2 as sys;

/// Decoded media (image or audio samples) ready to tokenize (`mtmd_bitmap_free` on drop).
pub struct Bitmap(NonNull<sys::mtmd_bitmap>);

impl Bitmap {
    /// An image of `width` x `height` RGB pixels (`rgb` holds exactly that many), named `id`.
    pub fn image(width: u32, height: u32, rgb: &[u8], id: &CStr) -> Option<Self> {
        debug_assert_eq!(rgb.len() as u64, width as u64 * height as u64 * 3);
        // SAFETY: `rgb` holds width * height * 3 bytes, which mtmd copies.
        let bitmap = NonNull::new(unsafe { sys::mtmd_bitmap_init(width, height, rgb.as_ptr()) }).map(Bitmap)?;
        bitmap.set_id(id);
        Some(bitmap)
    }
    /// An image of `width` x `height` pixels without its pixels, named `id`: mtmd tokenizes
    /// it (same positions, same id) without preprocessing, and refuses to encode it.
    pub fn placeholder(width: u32, height: u32, id: &CStr) -> Option<Self> {
        // SAFETY: NULL data makes a placeholder; nothing is read.
        let bitmap = NonNull::new(unsafe { sys::mtmd_bitmap_init(width, height, std::ptr::null()) }).map(Bitmap)?;
        bitmap.set_id(id);
        Some(bitmap)
    }
    /// Mono audio samples, named `id`.
    pub fn audio(samples: &[f32], id: &CStr) -> Option<Self> {
        // SAFETY: mtmd copies `samples.len()` floats.
        let bitmap =
            NonNull::new(unsafe { sys::mtmd_bitmap_init_from_audio(samples.len(), samples.as_ptr()) }).map(Bitmap)?;
        bitmap.set_id(id);
        Some(bitmap)
    }
    fn set_id(&self, id: &CStr) {
        // SAFETY: the bitmap is alive and mtmd copies the id.
        unsafe { sys::mtmd_bitmap_set_id(self.0.as_ptr(), id.as_ptr()) };
    }
    pub(super) fn as_ptr(&self) -> *const sys::mtmd_bitmap {
        self.0.as_ptr()
    }
    pub fn is_audio(&self) -> bool {
        // SAFETY: the bitmap is alive.
        unsafe { sys::mtmd_bitmap_is_audio(self.as_ptr()) }
    }
    pub fn width(&self) -> u32 {
        // SAFETY: the bitmap is alive.
        unsafe { sys::mtmd_bitmap_get_nx(self.as_ptr()) }
    }
    pub fn height(&self) -> u32 {
        // SAFETY: the bitmap is alive.
        unsafe { sys::mtmd_bitmap_get_ny(self.as_ptr()) }
    }
    /// The id it was given.
    pub fn id(&self) -> CString {
        // SAFETY: the bitmap is alive and its id a NUL-terminated string it owns.
        unsafe { CStr::from_ptr(sys::mtmd_bitmap_get_id(self.as_ptr())) }.to_owned()
    }
}

impl Drop for Bitmap {
    fn drop(&mut self) {
        // SAFETY: the pointer came from mtmd_bitmap_init* and is freed only here.
        unsafe { sys::mtmd_bitmap_free(self.0.as_ptr()) }
    }
}
