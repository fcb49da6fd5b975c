//! Chat templates, rendered by llama.cpp.

use std::ffi::{CStr, CString};

use llama_cpp_sys_2 as sys;

use crate::llama::guard::{self, check, THREW};
use crate::util::error::{fail, ErrorKind::*, Result};

/// Renders messages (with their markers placed) with `template`, a Jinja template string
/// llama.cpp recognises or a built-in name such as "chatml".
pub fn render_chat(template: &str, messages: &[(String, String)]) -> Result<String> {
    let template_c =
        CString::new(template).or_else(|_| fail(InvalidArgument, "the chat template contains a NUL byte"))?;
    let c_strings = messages
        .iter()
        .enumerate()
        .map(|(i, (role, text))| match (CString::new(role.as_str()), CString::new(text.as_str())) {
            (Ok(r), Ok(t)) => Ok((r, t)),
            _ => fail(InvalidArgument, format!("message {i} contains a NUL byte")),
        })
        .collect::<Result<Vec<_>>>()?;
    let chat: Vec<sys::llama_chat_message> =
        c_strings.iter().map(|(r, t)| sys::llama_chat_message { role: r.as_ptr(), content: t.as_ptr() }).collect();
    let mut buf = vec![0u8; 256 + 2 * messages.iter().map(|(r, t)| r.len() + t.len()).sum::<usize>()];
    for _ in 0..2 {
        let n = apply_chat_template(&template_c, &chat, &mut buf)?;
        if n < 0 {
            return fail(Unsupported, "llama.cpp does not recognise this model's chat template (tokenizer.chat_template); set chat_template to a built-in name such as \"chatml\"");
        }
        if (n as usize) <= buf.len() {
            buf.truncate(n as usize);
            return String::from_utf8(buf).or_else(|_| fail(InvalidArgument, "the rendered chat is not UTF-8"));
        }
        buf.resize(n as usize, 0);
    }
    fail(Internal, "llama_chat_apply_template kept asking for more room")
}

/// Renders chat messages with `template` (Jinja text llama.cpp recognises, or a built-in name)
/// into `buf`; returns the length it needs, or a negative value for an unknown template.
fn apply_chat_template(template: &CStr, chat: &[sys::llama_chat_message], buf: &mut [u8]) -> Result<i32> {
    // SAFETY: the messages' strings outlive the call, and `buf` has room for `buf.len()` bytes.
    let n = unsafe {
        guard::mm_guard_chat_apply_template(
            template.as_ptr(),
            chat.as_ptr(),
            chat.len(),
            buf.as_mut_ptr().cast(),
            buf.len().min(i32::MAX as usize) as i32,
            THREW,
        )
    };
    check(n, "llama_chat_apply_template")
}
