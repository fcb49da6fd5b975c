//! The storage of each ggml tensor type: elements per block and bytes per block, as ggml's
//! `ggml_blck_size` / `ggml_type_size` give them in the llama.cpp that llama-cpp-sys-2 vendors
//! (a test in mm-session-core compares every entry with those functions). Kept here so that
//! reading a GGUF file needs no C code.

/// (elements per block, bytes per block) by ggml type number; `(0, 0)`: a removed type.
const BLOCKS: [(u64, u64); 43] = [
    (1, 4),     // 0 f32
    (1, 2),     // 1 f16
    (32, 18),   // 2 q4_0
    (32, 20),   // 3 q4_1
    (0, 0),     // 4 removed
    (0, 0),     // 5 removed
    (32, 22),   // 6 q5_0
    (32, 24),   // 7 q5_1
    (32, 34),   // 8 q8_0
    (32, 36),   // 9 q8_1
    (256, 84),  // 10 q2_K
    (256, 110), // 11 q3_K
    (256, 144), // 12 q4_K
    (256, 176), // 13 q5_K
    (256, 210), // 14 q6_K
    (256, 292), // 15 q8_K
    (256, 66),  // 16 iq2_xxs
    (256, 74),  // 17 iq2_xs
    (256, 98),  // 18 iq3_xxs
    (256, 50),  // 19 iq1_s
    (32, 18),   // 20 iq4_nl
    (256, 110), // 21 iq3_s
    (256, 82),  // 22 iq2_s
    (256, 136), // 23 iq4_xs
    (1, 1),     // 24 i8
    (1, 2),     // 25 i16
    (1, 4),     // 26 i32
    (1, 8),     // 27 i64
    (1, 8),     // 28 f64
    (256, 56),  // 29 iq1_m
    (1, 2),     // 30 bf16
    (0, 0),     // 31 removed
    (0, 0),     // 32 removed
    (0, 0),     // 33 removed
    (256, 54),  // 34 tq1_0
    (256, 66),  // 35 tq2_0
    (0, 0),     // 36 removed
    (0, 0),     // 37 removed
    (0, 0),     // 38 removed
    (32, 17),   // 39 mxfp4
    (64, 36),   // 40 nvfp4
    (128, 18),  // 41 q1_0
    (64, 18),   // 42 q2_0
];

/// Number of ggml types this table knows (`GGML_TYPE_COUNT`).
pub const TYPE_COUNT: u32 = BLOCKS.len() as u32;

/// (elements per block, bytes per block) of ggml type `t`; `None` for an unknown or removed
/// type.
pub fn block(t: u32) -> Option<(u64, u64)> {
    BLOCKS.get(t as usize).copied().filter(|&(n, _)| n > 0)
}
