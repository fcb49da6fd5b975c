//! Saved state (`mm_session_save_state`, `mm_session_load_state`): a saved conversation resumes
//! with the same text and without encoding its media again, on the generated pair and on the
//! seeing pair; truncated, corrupt and missing files and states of other weights are refused and
//! leave the session as it was; a save never replaces what is not a regular file.

use std::path::Path;

use std::ffi::CString;

use crate::common::*;
use crate::conversation::{chat_params, distinct_pixels, info, rgb_items, session_info};
use crate::media::{expect, greedy, session, Image, QUESTION};
use ::mm_session::library::*;
use ::mm_session::session::*;
use ::mm_session::state::*;
use ::mm_session::status::mm_status;
use ::mm_session::status::mm_status::*;
use mm_fixtures::{self as fixtures, FixtureSpec};

fn load(s: *mut mm_session, path: &std::path::Path) -> (mm_status, String) {
    let c = CString::new(path.to_string_lossy().as_bytes()).unwrap();
    (unsafe { mm_session_load_state(s, c.as_ptr()) }, last_error())
}

#[test]
fn saved_state_resumes_the_same_conversation_without_encoding() {
    let m = models();
    let dir = fixture_dir().join("state");
    std::fs::create_dir_all(&dir).unwrap();
    let pixels = distinct_pixels(2);
    let turn1 = Chat::new(&[("user", "Describe these.", rgb_items(&pixels))]);

    // Uninterrupted.
    let s = create(&params(m)).unwrap();
    let a1 = ask(s, &turn1.on(chat_params())).unwrap();
    let turn2 = Chat::new(&[
        ("user", "Describe these.", rgb_items(&pixels)),
        ("assistant", &a1, vec![]),
        ("user", "More?", vec![]),
    ]);
    let a2 = ask(s, &turn2.on(chat_params())).unwrap();
    mm_session_destroy(s);

    // Interrupted: save, destroy, create, load, follow up.
    let s = create(&params(m)).unwrap();
    assert_eq!(ask(s, &turn1.on(chat_params())).unwrap(), a1);
    let state = dir.join("conversation.mmstate");
    assert_eq!(save(s, &state).0, mm_status::MM_OK, "{}", last_error());
    let n_past = session_info(s).n_past;
    mm_session_destroy(s);
    let s = create(&params(m)).unwrap();
    assert_eq!(load(s, &state).0, mm_status::MM_OK, "{}", last_error());
    assert_eq!(session_info(s).n_past, n_past);
    let resumed = ask(s, &turn2.on(chat_params())).unwrap();
    assert_eq!(resumed, a2, "same text as the uninterrupted conversation");
    assert_eq!(info(s).media_encoded, 0, "no image encoded after loading");

    // Bad files leave the session as it was.
    let bytes = std::fs::read(&state).unwrap();
    let truncated = dir.join("truncated.mmstate");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let garbage = dir.join("garbage.mmstate");
    std::fs::write(&garbage, b"definitely not a state file, just text").unwrap();
    let mut flipped_bytes = bytes.clone();
    let mid = flipped_bytes.len() / 2;
    flipped_bytes[mid] ^= 0x55;
    let flipped = dir.join("flipped.mmstate");
    std::fs::write(&flipped, &flipped_bytes).unwrap();
    let before = session_info(s).n_past;
    for (path, want) in [
        (&truncated, mm_status::MM_ERR_STATE_CORRUPT),
        (&garbage, mm_status::MM_ERR_STATE_CORRUPT),
        (&flipped, mm_status::MM_ERR_STATE_CORRUPT),
    ] {
        let (st, msg) = load(s, path);
        assert_eq!(st, want, "{}: {msg}", path.display());
        assert!(msg.contains(&path.file_name().unwrap().to_string_lossy().to_string()), "{msg}");
        assert_eq!(session_info(s).n_past, before);
    }
    assert_eq!(load(s, &dir.join("missing.mmstate")).0, mm_status::MM_ERR_FILE_NOT_FOUND);

    // A state of another model.
    let other_dir = dir.join("other-model");
    fixtures::write_all(&other_dir, &FixtureSpec { n_layer: 3, ..FixtureSpec::default() }).unwrap();
    let other_model = CString::new(other_dir.join(fixtures::MODEL_FILE).to_string_lossy().as_bytes()).unwrap();
    let other_proj = CString::new(other_dir.join(fixtures::MMPROJ_FILE).to_string_lossy().as_bytes()).unwrap();
    let mut op = params(m);
    op.model_path = other_model.as_ptr();
    op.mmproj_path = other_proj.as_ptr();
    let o = create(&op).unwrap();
    let (st, msg) = load(o, &state);
    assert_eq!(st, mm_status::MM_ERR_STATE_MISMATCH, "{msg}");
    mm_session_destroy(o);

    // Still the same conversation: a follow-up reuses it.
    assert_eq!(ask(s, &turn2.on(chat_params())).unwrap(), a2);
    assert_eq!(info(s).media_encoded, 0);
    mm_session_destroy(s);
    assert_eq!(mm_live_sessions(), 0);
}

fn save(s: *mut mm_session, path: &Path) -> (mm_status, String) {
    let st = unsafe { mm_session_save_state(s, path_c(path).as_ptr()) };
    (st, last_error())
}

/// Files in `dir` whose name says they are a save's temporary file.
fn temporaries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect()
}

#[test]
fn saves_never_replace_what_is_not_a_regular_file() {
    use std::os::unix::fs::FileTypeExt;
    let m = models();
    let s = create(&params(m)).unwrap();
    let prompt = c("Remember this.");
    assert_eq!(status_of_ask(s, &prompt_params(&prompt)), MM_OK);
    let dir = tmp_dir("save-targets");

    // A FIFO is refused and stays a FIFO (a write would block forever on it).
    let fifo = dir.join("fifo");
    assert_eq!(unsafe { libc::mkfifo(path_c(&fifo).as_ptr(), 0o600) }, 0);
    let (st, msg) = save(s, &fifo);
    assert_eq!(st, MM_ERR_IO, "{msg}");
    assert!(msg.contains("a FIFO"), "{msg}");
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());

    // A directory is refused.
    let (st, msg) = save(s, &dir);
    assert_eq!(st, MM_ERR_IO, "{msg}");
    assert!(msg.contains("a directory"), "{msg}");

    // A symbolic link to a regular file: the file it names is replaced, the link stays.
    let target = dir.join("target.mmstate");
    std::fs::write(&target, b"old").unwrap();
    let link = dir.join("link.mmstate");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let (st, msg) = save(s, &link);
    assert_eq!(st, MM_OK, "{msg}");
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert_ne!(std::fs::read(&target).unwrap(), b"old");
    assert_eq!(unsafe { mm_session_load_state(s, path_c(&link).as_ptr()) }, MM_OK, "{}", last_error());

    // A symbolic link to nothing, and one to a FIFO, are refused.
    let dangling = dir.join("dangling.mmstate");
    std::os::unix::fs::symlink(dir.join("nothing"), &dangling).unwrap();
    assert_eq!(save(s, &dangling).0, MM_ERR_IO);
    let to_fifo = dir.join("to-fifo");
    std::os::unix::fs::symlink(&fifo, &to_fifo).unwrap();
    let (st, msg) = save(s, &to_fifo);
    assert_eq!(st, MM_ERR_IO, "{msg}");
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());

    // A character device (as root, a copy of /dev/null's node made here) is refused and stays.
    if unsafe { libc::geteuid() } == 0 {
        let dev = dir.join("null-device");
        assert_eq!(unsafe { libc::mknod(path_c(&dev).as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) }, 0);
        let (st, msg) = save(s, &dev);
        assert_eq!(st, MM_ERR_IO, "{msg}");
        assert!(msg.contains("character device"), "{msg}");
        assert!(std::fs::symlink_metadata(&dev).unwrap().file_type().is_char_device());
    }

    // A regular file in a place where no file can be created names the real cause.
    let (st, msg) = save(s, Path::new("/proc/version"));
    assert_eq!(st, MM_ERR_IO, "{msg}");
    assert!(msg.contains("cannot create a temporary file in /proc"), "{msg}");
    assert!(std::fs::read_to_string("/proc/version").unwrap().starts_with("Linux"));

    assert!(temporaries(&dir).is_empty(), "{:?}", temporaries(&dir));
    assert_eq!(mm_session_destroy(s), MM_OK);
}

#[test]
fn a_state_of_other_weights_is_refused() {
    let m = models();
    let dir = tmp_dir("other-weights");
    fixtures::write_all(&dir, &FixtureSpec { seed: 2, ..FixtureSpec::default() }).unwrap();
    let other_model = path_c(&dir.join(fixtures::MODEL_FILE));
    let s = create(&params(m)).unwrap();
    let prompt = c("Remember this.");
    assert_eq!(status_of_ask(s, &prompt_params(&prompt)), MM_OK);
    let state = dir.join("first.mmstate");
    assert_eq!(save(s, &state).0, MM_OK);

    // Same architecture and sizes, other weights: refused.
    let mut p = params(m);
    p.model_path = other_model.as_ptr();
    let t = create(&p).unwrap();
    let st = unsafe { mm_session_load_state(t, path_c(&state).as_ptr()) };
    assert_eq!(st, MM_ERR_STATE_MISMATCH, "{}", last_error());
    // The same weights: accepted.
    let u = create(&params(m)).unwrap();
    assert_eq!(unsafe { mm_session_load_state(u, path_c(&state).as_ptr()) }, MM_OK, "{}", last_error());
    for x in [s, t, u] {
        assert_eq!(mm_session_destroy(x), MM_OK);
    }
}

#[test]
fn a_saved_state_still_sees_the_image() {
    let state = fixture_dir().join("seeing.mmstate");
    let image = Image::colour_file("yellow");
    let turn1 = Chat::new(&[("user", QUESTION, vec![image.item])]);
    let s = session();
    let (a1, _) = expect(s, &turn1.on(greedy()), "yellow", "turn 1");
    let path = CString::new(state.to_string_lossy().as_bytes()).unwrap();
    assert_eq!(unsafe { mm_session_save_state(s, path.as_ptr()) }, mm_status::MM_OK, "{}", last_error());
    assert_eq!(mm_session_destroy(s), mm_status::MM_OK);

    let s = session();
    assert_eq!(unsafe { mm_session_load_state(s, path.as_ptr()) }, mm_status::MM_OK, "{}", last_error());
    let turn2 = Chat::new(&[
        ("user", QUESTION, vec![image.item]),
        ("assistant", &a1, vec![]),
        ("user", "Once more: which colour?", vec![]),
    ]);
    let (_, i2) = expect(s, &turn2.on(greedy()), "yellow", "after load");
    assert_eq!(i2.media_encoded, 0, "the image came from the saved state: {i2:?}");
    assert_eq!(mm_session_destroy(s), mm_status::MM_OK);
    assert_eq!(mm_live_sessions(), 0);
}
