//! The fixture generator writes the same bytes for the same seed, and other bytes for another.

use mm_session::fixtures::{self, FixtureSpec};

#[test]
fn same_seed_same_bytes() {
    let base = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fixture-determinism");
    let write = |name: &str, seed: u64| {
        let dir = base.join(name);
        fixtures::write_all(&dir, &FixtureSpec { seed, ..FixtureSpec::default() }).unwrap();
        [fixtures::MODEL_FILE, fixtures::MMPROJ_FILE, fixtures::IMAGE_FILE].map(|f| std::fs::read(dir.join(f)).unwrap())
    };
    let (a, b, c) = (write("a", 5), write("b", 5), write("c", 6));
    assert_eq!(a, b);
    for i in 0..3 {
        assert_ne!(a[i], c[i], "file {i} ignores the seed");
    }
    assert_eq!(&a[0][..4], b"GGUF");
    assert_eq!(&a[2][..8], b"\x89PNG\r\n\x1a\n");
}
