//! llama.cpp's own render of a chat (`common_chat_templates_apply`, what llama-server runs per
//! request), through the shim's thin C wrapper of it, which takes the chat as OpenAI JSON with
//! the real texts in the messages: the reference the library's render is compared with, in
//! tests/capi/tools.rs and in `make bench-templates` (examples/bench_templates.rs).

use std::ffi::{c_void, CStr, CString};
use std::os::raw::c_char;

use llama_cpp_sys_2 as sys;

extern "C" {
    fn mm_chat_templates_init(model: *const sys::llama_model, tmpl: *const c_char) -> *mut c_void;
    fn mm_chat_templates_free(t: *mut c_void);
    fn mm_chat_templates_native_tools(t: *const c_void) -> i32;
    fn mm_chat_apply(
        t: *const c_void,
        native_tools: bool,
        vocab: *const sys::llama_vocab,
        request: *const c_char,
    ) -> *mut c_void;
    fn mm_chat_applied_free(a: *mut c_void);
    fn mm_chat_applied_prompt(a: *const c_void, len: *mut usize) -> *const c_char;
    fn mm_guard_what() -> *const c_char;
}

/// A model's vocabulary and a template parsed by llama.cpp's chat layer.
pub struct LlamaChat {
    model: *mut sys::llama_model,
    templates: *mut c_void,
    native_tools: bool,
}

impl LlamaChat {
    /// The vocabulary of the model at `model_path` and `template` (the model's own when None).
    pub fn new(model_path: &CStr, template: Option<&str>) -> LlamaChat {
        // SAFETY: llama.cpp's loader and the shim's functions, with NUL-terminated strings that
        // outlive the calls; the results are checked.
        unsafe {
            let mut mp = sys::llama_model_default_params();
            mp.vocab_only = true;
            let model = sys::llama_model_load_from_file(model_path.as_ptr(), mp);
            assert!(!model.is_null());
            let text = template.map(|t| CString::new(t).unwrap());
            let templates = mm_chat_templates_init(model, text.as_ref().map_or(std::ptr::null(), |t| t.as_ptr()));
            assert!(!templates.is_null(), "{}", CStr::from_ptr(mm_guard_what()).to_string_lossy());
            // Tools in the template's own syntax where llama.cpp knows it (otherwise the shim's
            // generic format, which is this library's, not llama.cpp's).
            let native_tools = mm_chat_templates_native_tools(templates) == 1;
            LlamaChat { model, templates, native_tools }
        }
    }

    /// The prompt llama.cpp renders for `request` (JSON: see shim/chat.cpp's `mm_chat_apply`),
    /// or its error.
    pub fn render(&self, request: &str) -> Result<String, String> {
        let request = CString::new(request).unwrap();
        // SAFETY: the model and templates live as long as `self`; a non-NULL render is read
        // (its prompt, `len` bytes) before it is freed once.
        unsafe {
            let vocab = sys::llama_model_get_vocab(self.model);
            let a = mm_chat_apply(self.templates, self.native_tools, vocab, request.as_ptr());
            if a.is_null() {
                return Err(CStr::from_ptr(mm_guard_what()).to_string_lossy().into_owned());
            }
            let mut len = 0;
            let p = mm_chat_applied_prompt(a, &mut len);
            let text = String::from_utf8(std::slice::from_raw_parts(p.cast::<u8>(), len).to_vec()).unwrap();
            mm_chat_applied_free(a);
            Ok(text)
        }
    }
}

impl Drop for LlamaChat {
    fn drop(&mut self) {
        // SAFETY: both were made in `new` and are freed only here.
        unsafe {
            mm_chat_templates_free(self.templates);
            sys::llama_model_free(self.model);
        }
    }
}

/// `s` as a JSON string.
pub fn q(s: &str) -> String {
    mm_core::json_quote(s)
}
