//! Checks of model files before llama.cpp sees them: the path is a readable regular file, it is
//! GGUF, and its architecture is the kind of file the caller said it is.

use std::ffi::{CStr, CString};
use std::io::Read;
use std::path::Path;

use llama_cpp_sys_2 as sys;

use crate::error::{fail, mm_status::*, Result};

/// The architecture of projector files (`general.architecture`).
const PROJECTOR_ARCH: &str = "clip";

/// Fails unless `path` is a GGUF text model.
pub fn expect_text_model(path: &Path) -> Result<()> {
    let arch = architecture(path, "text model")?;
    if arch == PROJECTOR_ARCH {
        return fail(MM_ERR_WRONG_FILE_KIND, format!("text model {}: this is a projector (architecture 'clip'), not a text model", path.display()));
    }
    Ok(())
}

/// Fails unless `path` is a GGUF projector.
pub fn expect_projector(path: &Path) -> Result<()> {
    let arch = architecture(path, "projector")?;
    if arch != PROJECTOR_ARCH {
        return fail(MM_ERR_WRONG_FILE_KIND, format!("projector {}: this is a '{arch}' model, not a projector (architecture 'clip')", path.display()));
    }
    Ok(())
}

/// Checks that `path` is a readable regular file (`what` names it in messages).
pub fn check_regular_file(path: &Path, what: &str) -> Result<()> {
    if path.as_os_str().is_empty() {
        return fail(MM_ERR_INVALID_ARGUMENT, format!("{what}: the path is empty"));
    }
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => fail(MM_ERR_FILE_NOT_FOUND, format!("{what} {}: no such file", path.display())),
        Err(e) => fail(MM_ERR_FILE_UNREADABLE, format!("{what} {}: {e}", path.display())),
        Ok(m) if m.is_dir() => fail(MM_ERR_NOT_A_FILE, format!("{what} {}: is a directory, not a file", path.display())),
        Ok(m) if !m.is_file() => fail(MM_ERR_NOT_A_FILE, format!("{what} {}: is not a regular file", path.display())),
        Ok(_) => Ok(()),
    }
}

/// Reads `general.architecture` after checking the file and its magic.
fn architecture(path: &Path, what: &str) -> Result<String> {
    check_regular_file(path, what)?;
    let mut magic = [0u8; 4];
    let read = std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut magic));
    if let Err(e) = read {
        return fail(MM_ERR_FILE_UNREADABLE, format!("{what} {}: cannot read it: {e}", path.display()));
    }
    if &magic != b"GGUF" {
        return fail(MM_ERR_FILE_UNREADABLE, format!("{what} {}: not a GGUF file (bad magic)", path.display()));
    }
    let path_c = CString::new(path.to_string_lossy().as_bytes()).or_else(|_| fail(MM_ERR_INVALID_ARGUMENT, format!("{what}: path contains a NUL byte")))?;
    let params = sys::gguf_init_params { no_alloc: true, ctx: std::ptr::null_mut() };
    let (ctx, log) = crate::log::capture(|| unsafe { sys::gguf_init_from_file(path_c.as_ptr(), params) });
    if ctx.is_null() {
        return fail(MM_ERR_FILE_UNREADABLE, format!("{what} {}: malformed GGUF: {}", path.display(), log.trim()));
    }
    let key = c"general.architecture";
    let arch = unsafe {
        let id = sys::gguf_find_key(ctx, key.as_ptr());
        let arch = if id >= 0 && sys::gguf_get_kv_type(ctx, id) == sys::GGUF_TYPE_STRING {
            Some(CStr::from_ptr(sys::gguf_get_val_str(ctx, id)).to_string_lossy().into_owned())
        } else {
            None
        };
        sys::gguf_free(ctx);
        arch
    };
    arch.map_or_else(|| fail(MM_ERR_FILE_UNREADABLE, format!("{what} {}: GGUF without general.architecture", path.display())), Ok)
}
