//! Plumbing for the `extern "C"` layer: the panic boundary every export runs in, and checked
//! conversions of C arguments.

use std::cell::RefCell;
use std::ffi::{CStr, CString};
use std::os::raw::c_char;
use std::panic::{self, AssertUnwindSafe};

use crate::status::{fail, mm_status, Result};

#[cfg(feature = "test-hooks")]
thread_local! {
    static INJECT_PANIC: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

thread_local! {
    /// `None` after a call that succeeded: a success allocates nothing (a small allocation
    /// made on every call would sit wherever the heap had room, among llama.cpp's buffers).
    static LAST_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
}

/// Records the calling thread's last error (interior NULs become spaces).
pub fn set_last_error(message: &str) {
    let c = CString::new(message.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = Some(c));
}

/// Clears the calling thread's last error, as a successful call does.
fn clear_last_error() {
    LAST_ERROR.with(|e| e.borrow_mut().take());
}

/// A pointer to the calling thread's last error ("" when there is none); valid until this
/// thread's next `mm_*` call.
pub fn last_error_ptr() -> *const std::os::raw::c_char {
    LAST_ERROR.with(|e| e.borrow().as_ref().map_or(c"".as_ptr(), |c| c.as_ptr()))
}

/// Makes every export called on this thread panic inside its boundary, to test that no export
/// runs outside one. Rust-only (not in the C API), and only in a build with the `test-hooks`
/// feature, which the integration tests turn on and the shipped library is built without.
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub fn inject_panic_for_tests(on: bool) {
    INJECT_PANIC.with(|p| p.set(on));
}

/// Panics when a test asked for it with [`inject_panic_for_tests`].
#[cfg(feature = "test-hooks")]
fn injected_panic(name: &str) {
    if INJECT_PANIC.with(std::cell::Cell::get) {
        panic!("panic injected into {name} by a test");
    }
}

/// Without the `test-hooks` feature no panic can be injected: nothing to do.
#[cfg(not(feature = "test-hooks"))]
fn injected_panic(_name: &str) {}

/// Runs the body of the export `name`: a panic becomes `MM_ERR_INTERNAL`, an error is recorded
/// as the thread's last error, success clears it. Every export's body is one call of this or
/// of [`boundary_value`]; `tests/capi/bad_input.rs` checks that each one is.
pub fn boundary(name: &str, body: impl FnOnce() -> Result<()>) -> mm_status {
    match panic::catch_unwind(AssertUnwindSafe(|| {
        injected_panic(name);
        body()
    })) {
        Ok(Ok(())) => {
            clear_last_error();
            mm_status::MM_OK
        }
        Ok(Err(e)) => {
            set_last_error(&format!("{name}: {}", e.message));
            e.status
        }
        Err(payload) => {
            set_last_error(&format!("{name}: internal error: {}", panic_message(&payload)));
            mm_status::MM_ERR_INTERNAL
        }
    }
}

/// The boundary for exports that return a value instead of a status: a panic gives `neutral`.
pub fn boundary_value<T>(name: &str, neutral: T, body: impl FnOnce() -> T) -> T {
    panic::catch_unwind(AssertUnwindSafe(|| {
        injected_panic(name);
        body()
    }))
    .unwrap_or_else(|payload| {
        set_last_error(&format!("{name}: internal error: {}", panic_message(&payload)));
        neutral
    })
}

fn panic_message(payload: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_string()
    }
}

/// A required pointer argument as a reference.
///
/// # Safety
/// `ptr` must be NULL or point to a valid `T` for the lifetime chosen by the caller.
pub unsafe fn required<'a, T>(ptr: *const T, what: &str) -> Result<&'a T> {
    // SAFETY: the caller's contract.
    match unsafe { ptr.as_ref() } {
        Some(r) => Ok(r),
        None => fail(mm_status::MM_ERR_NULL_ARGUMENT, format!("{what} is NULL")),
    }
}

/// A required NUL-terminated UTF-8 string argument.
///
/// # Safety
/// `ptr` must be NULL or point to a NUL-terminated string that outlives `'a`.
pub unsafe fn c_str<'a>(ptr: *const c_char, what: &str) -> Result<&'a str> {
    if ptr.is_null() {
        return fail(mm_status::MM_ERR_NULL_ARGUMENT, format!("{what} is NULL"));
    }
    // SAFETY: the caller's contract: a NUL-terminated string that outlives 'a.
    unsafe { CStr::from_ptr(ptr) }
        .to_str()
        .or_else(|_| fail(mm_status::MM_ERR_INVALID_ARGUMENT, format!("{what} is not valid UTF-8")))
}

/// An optional string argument: NULL gives `None`.
///
/// # Safety
/// As for [`c_str`].
pub unsafe fn opt_c_str<'a>(ptr: *const c_char, what: &str) -> Result<Option<&'a str>> {
    if ptr.is_null() {
        Ok(None)
    } else {
        // SAFETY: the caller's contract.
        unsafe { c_str(ptr, what) }.map(Some)
    }
}

/// A `(pointer, count)` array argument as a slice; NULL is accepted when `len` is 0.
///
/// # Safety
/// `ptr` must point to `len` valid elements when `len > 0`.
pub unsafe fn slice<'a, T>(ptr: *const T, len: usize, what: &str) -> Result<&'a [T]> {
    if len == 0 {
        Ok(&[])
    } else if ptr.is_null() {
        fail(mm_status::MM_ERR_NULL_ARGUMENT, format!("{what} is NULL but its count is {len}"))
    } else if len.checked_mul(std::mem::size_of::<T>()).is_none_or(|bytes| bytes > isize::MAX as usize) {
        fail(mm_status::MM_ERR_INVALID_ARGUMENT, format!("{what} has a count of {len}, more than any buffer can hold"))
    } else {
        // SAFETY: the caller's contract: `len` valid elements.
        Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
    }
}

/// Reads a caller's versioned struct, whose first field is `struct_size: u32` (the caller's
/// `sizeof`): fields the caller's version lacks keep `defaults`. `versions` lists the sizes a
/// version of the struct can have (each earlier version's `sizeof`); a size between them would
/// cut a field, or a pointer from its count or user data, and is refused. A size larger than
/// this library's struct comes from a newer header than the library (which the version rule
/// does not allow, docs/c-api.md, "ABI and versions") or is false: it is refused without reading a byte
/// past the library's own size, so that a false size cannot make the library read past the
/// caller's struct.
///
/// `bools` gives the offset and name of each `bool` field of `T`. A C caller can put any byte
/// in one, and a Rust `bool` that is neither 0 nor 1 is undefined behaviour, so the caller's
/// bytes are checked before they become a `T`: any other byte is refused with
/// `MM_ERR_INVALID_ARGUMENT` naming the field. (The header keeps `bool`: declaring the fields
/// `uint8_t` would change the released header.)
///
/// # Safety
/// `ptr` must be NULL or point to at least `min(struct_size, size_of::<T>())` readable bytes;
/// every field of `T` other than those in `bools` must be valid for any bytes (integers,
/// floats, pointers, optional function pointers), and each offset in `bools` must be that of a
/// `bool` field of `T`.
pub unsafe fn versioned<T: Copy>(
    ptr: *const T,
    defaults: T,
    versions: &[usize],
    bools: &[(usize, &str)],
    what: &str,
) -> Result<T> {
    if ptr.is_null() {
        return fail(mm_status::MM_ERR_NULL_ARGUMENT, format!("{what} is NULL"));
    }
    // SAFETY: every versioned struct starts with its u32 size, readable per the contract.
    let size = unsafe { std::ptr::read_unaligned(ptr as *const u32) } as usize;
    let ours = std::mem::size_of::<T>();
    if size > ours {
        return fail(
            mm_status::MM_ERR_INVALID_ARGUMENT,
            format!("{what}.struct_size is {size}, larger than this library's struct ({ours}): a header newer than the library, or a false size; upgrade the library or set it with the struct's _default() function"),
        );
    }
    if size < ours && !versions.contains(&size) {
        return fail(
            mm_status::MM_ERR_INVALID_ARGUMENT,
            format!("{what}.struct_size is {size}, not the size of any version of the struct ({versions:?}); initialise it with its _default() function"),
        );
    }
    // The caller's bytes over the defaults, held as bytes until the bool fields are checked.
    let mut out = std::mem::MaybeUninit::new(defaults);
    // SAFETY: `size` (at most `ours`) bytes are readable there and fit in `out`.
    unsafe { std::ptr::copy_nonoverlapping(ptr as *const u8, out.as_mut_ptr() as *mut u8, size) };
    for &(offset, name) in bools {
        // SAFETY: `offset` is that of a one-byte field inside `T` (the caller's contract), a byte
        // written either by `defaults` or by the copy above.
        let byte = unsafe { out.as_ptr().cast::<u8>().add(offset).read() };
        if byte > 1 {
            return fail(
                mm_status::MM_ERR_INVALID_ARGUMENT,
                format!("{what}.{name} is {byte}, not a bool: set it to 0 (false) or 1 (true)"),
            );
        }
    }
    // SAFETY: every byte of `out` is initialised (the defaults, then the caller's bytes), each
    // bool field holds 0 or 1, and every other field of `T` is valid for any bytes (the
    // caller's contract).
    Ok(unsafe { out.assume_init() })
}

/// Writes `value` into a caller's versioned output struct, whose first field is
/// `struct_size: u32` (set by the caller to its `sizeof`): only the bytes the caller's version
/// has are written, and its `struct_size` is left as it is.
///
/// # Safety
/// `out` must be NULL or point to at least `struct_size` writable bytes.
pub unsafe fn write_versioned<T: Copy>(out: *mut T, value: &T, min_size: usize, what: &str) -> Result<()> {
    if out.is_null() {
        return fail(mm_status::MM_ERR_NULL_ARGUMENT, format!("{what} is NULL"));
    }
    // SAFETY: every versioned struct starts with its u32 size, readable per the contract.
    let size = unsafe { std::ptr::read_unaligned(out as *const u32) } as usize;
    if size < min_size {
        return fail(
            mm_status::MM_ERR_INVALID_ARGUMENT,
            format!("{what}->struct_size is {size}; set it to sizeof the struct (at least {min_size})"),
        );
    }
    let n = size.min(std::mem::size_of::<T>());
    let header = std::mem::size_of::<u32>();
    // SAFETY: `n` bytes fit in both (the caller's contract for `out`); the size field is kept.
    unsafe {
        std::ptr::copy_nonoverlapping(
            (value as *const T as *const u8).add(header),
            (out as *mut u8).add(header),
            n - header,
        )
    };
    Ok(())
}
