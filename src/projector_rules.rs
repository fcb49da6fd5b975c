//! Which tensors each projector type needs or must not have, so that a projector GGUF
//! (`general.architecture = "clip"`) can be rejected before clip.cpp aborts the whole process
//! on it. A missing *required* tensor already makes clip.cpp's loader throw, and that error is
//! caught. The rules here cover only tensors that the loader (`clip_model_loader::load_tensors`)
//! loads as *optional*, which a graph builder then either asserts on (`GGML_ASSERT`) or passes
//! unguarded to a ggml op (a NULL dereference, so SIGSEGV). Either way the process dies while
//! `clip_init` runs: the graph is built for warm-up, and the `clip_graph` constructor calls
//! `clip_n_mmproj_embd`. Where a crash happens only later, on the first encode or in
//! `mtmd_init`, its comment says so. Source: llama.cpp vendored in llama-cpp-sys-2 0.1.161,
//! `tools/mtmd/` (clip.cpp, clip-impl.h, models/*.cpp). All file:line references are to that tree.
//!
//! Trailing-comment legend: `assert` = explicit GGML_ASSERT/GGML_ABORT on the pointer;
//! `segv` = unguarded use of an optional tensor (NULL deref). Metadata and shape conditions
//! that abort are listed in the table on [`metadata_and_shape_asserts`].

/// Tensors a projector type's graph needs (GGML_ASSERT if absent) and must not have (GGML_ASSERT if present), as GGUF tensor names; "%d" stands for every layer index 0..block_count.
///
/// `block_count` is `clip.vision.block_count` for `v.blk.*` names, `clip.audio.block_count`
/// for `a.blk.*` names and `clip.gen.audio.block_count` for `a.gen.code.blk.*` names. Names with
/// a literal `0` (e.g. `a.blk.0.ln1.weight`) are asserted for layer 0 only. `required` also lists
/// tensors whose absence causes a NULL dereference (`segv` in the comments); from the caller's
/// side that is the same kind of process abort.
pub struct TensorRules {
    pub required: &'static [&'static str],
    pub forbidden: &'static [&'static str],
}

/// A rule that applies only when the tensor `when` is present (`present == true`) or absent
/// (`present == false`). Every tensor in `then_required` must then exist. `%d` placeholders are
/// bound to the same index (or, for two `%d`, the same pair of indices) in `when` and in
/// `then_required`. Check them for every layer 0..block_count, and for every (stage, block)
/// pair that exists where the name has two `%d`.
pub struct Conditional {
    pub when: &'static str,
    pub present: bool,
    pub then_required: &'static [&'static str],
}

/// Every projector type string in clip-impl.h:513-577 (`PROJECTOR_TYPE_NAMES`). Any other string
/// makes clip.cpp throw "unknown projector type" (clip.cpp:1288), which is caught.
pub const PROJECTOR_TYPES: [&str; 63] = [
    "mlp", "ldp", "ldpv2", "resampler", "adapter", "qwen2vl_merger", "qwen2.5vl_merger",
    "qwen3vl_merger", "ling3vl", "step3vl", "gemma3", "gemma3nv", "gemma3na", "gemma4v", "gemma4a",
    "gemma4uv", "gemma4ua", "phi4", "idefics3", "pixtral", "ultravox", "internvl", "llama4",
    "qwen2a", "qwen3a", "glma", "qwen2.5o", "voxtral", "meralion", "musicflamingo", "lfm2",
    "kimivl", "paddleocr", "lightonocr", "cogvlm", "janus_pro", "dots_ocr", "dots3note_v",
    "dots3note_a", "deepseekocr", "deepseekocr2", "deepseek4v", "lfm2a", "glm4v", "glm5v",
    "youtuvl", "yasa2", "kimik25", "nemotron_v2_vl", "exaone4_5", "hunyuanvl", "minicpmv4_6",
    "granite_speech", "mimovl", "minimax_m3", "granite4_vision", "mimo_audio", "parakeet",
    "qwen3tts_spkenc", "qwen3tts_gen", "pockettts_spkenc", "pockettts_gen", "muse-glimmer",
];

/// The projector type clip.cpp actually uses for one encoder, given the raw string (clip.cpp:1266-1296).
/// For each encoder flagged by `clip.has_vision_encoder` / `clip.has_audio_encoder` /
/// `clip.has_gen_audio_encoder`, clip.cpp reads `clip.projector_type` first. Only if that key is
/// absent or empty does it read `clip.vision.projector_type`, `clip.audio.projector_type` or
/// `clip.gen.audio.projector_type` respectively. So when `clip.projector_type` is set, it applies
/// to *every* encoder in the file. The legacy `"qwen2.5o"` becomes `"qwen2.5vl_merger"` for
/// vision and `"qwen2a"` for any other encoder (clip.cpp:1292-1296). If the vision type is
/// `gemma3nv`, the audio encoder is skipped altogether (clip.cpp:4022).
pub fn resolve_type(raw: &str, is_vision: bool) -> &str {
    match (raw, is_vision) {
        ("qwen2.5o", true) => "qwen2.5vl_merger",
        ("qwen2.5o", false) => "qwen2a",
        _ => raw,
    }
}

// ---- shared pieces -------------------------------------------------------------------------

const NONE: TensorRules = TensorRules { required: &[], forbidden: &[] };

// build_vit (clip.cpp:337): with no fused qkv, q/k/v go straight into build_mm (clip.cpp:424,429,434)
const QKV_V: &[Conditional] = &[Conditional {
    when: "v.blk.%d.attn_qkv.weight", present: false,
    then_required: &["v.blk.%d.attn_q.weight", "v.blk.%d.attn_k.weight", "v.blk.%d.attn_v.weight"], // segv clip.cpp:424-434
}];
const QKV_A: &[Conditional] = &[Conditional {
    when: "a.blk.%d.attn_qkv.weight", present: false,
    then_required: &["a.blk.%d.attn_q.weight", "a.blk.%d.attn_k.weight", "a.blk.%d.attn_v.weight"], // segv clip.cpp:424-434
}];

// MoE ffn in build_vit (clip.cpp:517-518). hparams.n_expert_used is only read for dots3note_v,
// so elsewhere it is 0 and GGML_ASSERT(n_expert_used > 0) fires (clip.cpp:712).
const MOE_V: &str = "v.blk.%d.ffn_gate_exps.weight"; // assert clip.cpp:712
const MOE_A: &str = "a.blk.%d.ffn_gate_exps.weight"; // assert clip.cpp:712

// llava.cpp graph (mlp, ldp, ldpv2, adapter): no qkv path, unconditional position embeddings
const LLAVA: TensorRules = TensorRules {
    required: &[
        "v.patch_embd.weight",    // segv clip.cpp:574 (build_inp, llava.cpp:32)
        "v.position_embd.weight", // segv llava.cpp:43 (ggml_get_rows)
        "v.blk.%d.attn_q.weight", // segv llava.cpp:72 (layers < max feature layer)
        "v.blk.%d.attn_k.weight", // segv llava.cpp:77
        "v.blk.%d.attn_v.weight", // segv llava.cpp:82
    ],
    forbidden: &[],
};

/// The rules for the projector type named in `clip.projector_type` (vision) or `clip.audio.projector_type`/... (audio) — say exactly which key.
///
/// Key order, per encoder (clip.cpp:1270-1283): `clip.projector_type` if present and non-empty,
/// else `clip.vision.projector_type` (vision encoder), `clip.audio.projector_type` (audio
/// encoder) or `clip.gen.audio.projector_type` (audio-generation encoder). Pass the string through
/// [`resolve_type`] first (for `"qwen2.5o"`). Types with no such rule, and unknown strings, give
/// empty lists. See also [`conditional_rules`].
pub fn rules(projector_type: &str) -> TensorRules {
    match projector_type {
        // llava.cpp. For "mlp", see conditional_rules (mm.2 / mm.3 / mm.4)
        "mlp" => TensorRules {
            required: &[
                "v.patch_embd.weight",    // segv clip.cpp:574 (llava.cpp:32)
                "v.position_embd.weight", // segv llava.cpp:43
                "v.blk.%d.attn_q.weight", // segv llava.cpp:72
                "v.blk.%d.attn_k.weight", // segv llava.cpp:77
                "v.blk.%d.attn_v.weight", // segv llava.cpp:82
                "mm.0.weight",            // segv llava.cpp:166 / :176
                "mm.0.bias",              // segv llava.cpp:167 / :177
            ],
            forbidden: &[],
        },
        "ldp" | "ldpv2" | "adapter" => LLAVA,

        // minicpmv.cpp (resampler)
        "resampler" => TensorRules {
            required: &[
                "v.patch_embd.weight",    // segv clip.cpp:574 (minicpmv.cpp:30)
                "v.position_embd.weight", // segv minicpmv.cpp:28
            ],
            forbidden: &["v.class_embd", MOE_V], // assert minicpmv.cpp:4; MoE clip.cpp:712
        },
        "minicpmv4_6" => TensorRules {
            required: &[
                "v.patch_embd.weight",    // segv clip.cpp:574 (minicpmv.cpp:170)
                "v.position_embd.weight", // segv minicpmv.cpp:133
                "v.blk.%d.attn_q.weight", // segv minicpmv.cpp:189 (own layer loop, no qkv path)
                "v.blk.%d.attn_k.weight", // segv minicpmv.cpp:193
                "v.blk.%d.attn_v.weight", // segv minicpmv.cpp:197
            ],
            forbidden: &[],
        },

        // qwen2vl.cpp
        "qwen2vl_merger" | "qwen2.5vl_merger" => TensorRules {
            required: &[
                "v.patch_embd.weight",    // segv qwen2vl.cpp:15
                "v.patch_embd.weight.1",  // segv qwen2vl.cpp:16
                "v.blk.%d.attn_q.weight", "v.blk.%d.attn_q.bias", // segv qwen2vl.cpp:114-115
                "v.blk.%d.attn_k.weight", "v.blk.%d.attn_k.bias", // segv qwen2vl.cpp:116-117
                "v.blk.%d.attn_v.weight", "v.blk.%d.attn_v.bias", // segv qwen2vl.cpp:118-119
            ],
            forbidden: &[
                "v.patch_embd.bias", // assert qwen2vl.cpp:33
                "v.class_embd",      // assert qwen2vl.cpp:34
            ],
        },
        // qwen3vl.cpp
        "qwen3vl_merger" => TensorRules {
            required: &[
                "v.patch_embd.bias",        // assert qwen3vl.cpp:4
                "v.position_embd.weight",   // assert qwen3vl.cpp:5
                "v.patch_embd.weight",      // segv qwen2vl.cpp:15 (via qwen3vl.cpp:16)
                "v.patch_embd.weight.1",    // segv qwen2vl.cpp:16
                "v.blk.%d.attn_qkv.weight", // segv qwen3vl.cpp:81
                "v.blk.%d.attn_qkv.bias",   // segv qwen3vl.cpp:82
            ],
            forbidden: &["v.class_embd"], // assert qwen3vl.cpp:6
        },
        // ling3vl.cpp (build_vit; mm.input_norm.weight is asserted at :7 but the loader already requires it)
        "ling3vl" => TensorRules {
            required: &[
                "v.patch_embd.weight",    // segv qwen2vl.cpp:15 (via ling3vl.cpp:17)
                "v.patch_embd.weight.1",  // segv qwen2vl.cpp:16
                "v.position_embd.weight", // segv clip.cpp:317 / assert clip.cpp:319 (ling3vl.cpp:41)
            ],
            forbidden: &["v.class_embd", MOE_V], // assert ling3vl.cpp:6; clip.cpp:712
        },
        // step3vl.cpp
        "step3vl" => TensorRules {
            required: &[
                "v.patch_embd.weight",    // assert step3vl.cpp:5
                "v.position_embd.weight", // assert step3vl.cpp:6
            ],
            forbidden: &["v.class_embd", MOE_V], // assert step3vl.cpp:4; clip.cpp:712
        },

        // siglip.cpp
        "gemma3" | "idefics3" | "janus_pro" => TensorRules {
            required: &["v.patch_embd.weight"], // segv clip.cpp:574 (siglip.cpp:4)
            forbidden: &[MOE_V],                // assert clip.cpp:712
        },
        "lfm2" | "phi4" => TensorRules {
            required: &[
                "v.patch_embd.weight",    // segv clip.cpp:574 (siglip.cpp:4)
                "v.position_embd.weight", // segv clip.cpp:317 / assert clip.cpp:319 (siglip.cpp:8)
            ],
            forbidden: &[MOE_V], // assert clip.cpp:712
        },

        // mobilenetv5.cpp (no generic layers: has_standard_layers = false, clip.cpp:2270)
        "gemma3nv" => TensorRules {
            required: &["v.conv_stem.conv.weight"], // segv mobilenetv5.cpp:254
            forbidden: &[],
        },
        // no loader case for gemma3na: load_hparams throws "unknown vision projector type" (clip.cpp:2038)
        "gemma3na" => NONE,

        // gemma4v.cpp
        "gemma4v" => TensorRules {
            required: &[
                "v.patch_embd.weight",    // segv gemma4v.cpp:12
                "v.position_embd.weight", // segv gemma4v.cpp:27
            ],
            forbidden: &[MOE_V], // assert clip.cpp:712
        },
        // gemma4uv.cpp (no build_vit, no layer use)
        "gemma4uv" => TensorRules {
            required: &[
                "v.patch_embd.weight",    // segv gemma4uv.cpp:22
                "v.patch_embd.bias",      // segv gemma4uv.cpp:23
                "v.position_embd.weight", // segv gemma4uv.cpp:38
            ],
            forbidden: &[],
        },
        // gemma4a.cpp guards every optional tensor, but clip_n_mmproj_embd does not
        "gemma4a" => TensorRules {
            required: &["mm.a.input_projection.weight"], // segv clip.cpp:6026 (called from clip_graph ctor clip.cpp:262)
            forbidden: &[],
        },
        "gemma4ua" => NONE,

        // pixtral.cpp (see conditional_rules for mm.patch_merger.weight)
        "pixtral" | "lightonocr" => TensorRules {
            required: &["v.patch_embd.weight"], // segv clip.cpp:574 (pixtral.cpp:19)
            forbidden: &[MOE_V],                // assert clip.cpp:712
        },

        // whisper-enc.cpp
        "ultravox" | "voxtral" | "qwen2a" | "glma" | "meralion" | "musicflamingo" => TensorRules {
            required: &[
                "a.position_embd.weight", // segv whisper-enc.cpp:6 (->ne[1])
                "a.blk.0.ln1.weight", "a.blk.0.ln1.bias", // assert whisper-enc.cpp:28
                "a.blk.0.ln2.weight", "a.blk.0.ln2.bias", // assert whisper-enc.cpp:29
                "a.blk.0.attn_q.bias",    // assert whisper-enc.cpp:30
                "a.blk.0.attn_v.bias",    // assert whisper-enc.cpp:31
            ],
            forbidden: &[
                "a.blk.0.attn_k.bias", // assert whisper-enc.cpp:32
                MOE_A,                 // assert clip.cpp:712
            ],
        },
        // qwen3a.cpp
        "qwen3a" => TensorRules {
            required: &["a.position_embd.weight"], // segv qwen3a.cpp:64
            forbidden: &[MOE_A],                   // assert clip.cpp:712
        },
        // conformer.cpp (own layer loop)
        "lfm2a" => TensorRules {
            required: &[
                "a.position_embd.weight", // segv conformer.cpp:7, clip.cpp:6060
                "a.blk.%d.attn_q.weight", "a.blk.%d.attn_q.bias", // segv conformer.cpp:90-91
                "a.blk.%d.attn_k.weight", "a.blk.%d.attn_k.bias", // segv conformer.cpp:99-100
                "a.blk.%d.attn_v.weight", "a.blk.%d.attn_v.bias", // segv conformer.cpp:104-105
                "a.blk.%d.attn_out.bias", // segv conformer.cpp:146
            ],
            forbidden: &[],
        },

        // internvl.cpp / nemotron-v2-vl.cpp / llama4.cpp
        "internvl" | "nemotron_v2_vl" => TensorRules {
            required: &[
                "v.class_embd",           // assert internvl.cpp:4 / nemotron-v2-vl.cpp:4
                "v.position_embd.weight", // assert internvl.cpp:5 / nemotron-v2-vl.cpp:5
                "v.patch_embd.weight",    // segv clip.cpp:574 (internvl.cpp:8 / nemotron-v2-vl.cpp:10)
            ],
            forbidden: &[MOE_V], // assert clip.cpp:712
        },
        "llama4" => TensorRules {
            required: &[
                "v.class_embd",           // assert llama4.cpp:4
                "v.position_embd.weight", // assert llama4.cpp:5
                "v.patch_embd.weight",    // segv llama4.cpp:22
            ],
            forbidden: &[MOE_V], // assert clip.cpp:712
        },

        // kimivl.cpp / paddleocr.cpp / kimik25.cpp
        "kimivl" | "paddleocr" => TensorRules {
            required: &[
                "v.patch_embd.weight",    // segv clip.cpp:574 (kimivl.cpp:21 / paddleocr.cpp:21)
                "v.position_embd.weight", // segv clip.cpp:317 / assert :319 (kimivl.cpp:13 / paddleocr.cpp:20)
            ],
            forbidden: &[MOE_V], // assert clip.cpp:712
        },
        "kimik25" => TensorRules {
            required: &[
                "v.patch_embd.weight",    // segv clip.cpp:574 (kimik25.cpp:52)
                "v.position_embd.weight", // assert kimik25.cpp:14
            ],
            forbidden: &[MOE_V], // assert clip.cpp:712
        },

        // cogvlm.cpp (own layer loop, fused qkv only)
        "cogvlm" => TensorRules {
            required: &[
                "v.class_embd",             // assert cogvlm.cpp:4
                "v.position_embd.weight",   // assert cogvlm.cpp:5
                "v.patch_embd.weight",      // segv clip.cpp:574 (cogvlm.cpp:10)
                "v.blk.%d.attn_qkv.weight", // segv cogvlm.cpp:22
                "v.blk.%d.attn_qkv.bias",   // segv cogvlm.cpp:24
            ],
            forbidden: &[],
        },

        // dotsocr.cpp / dots3note.cpp (MoE only for dots3note_v, see conditional_rules)
        "dots_ocr" => TensorRules {
            required: &["v.patch_embd.weight"], // segv clip.cpp:574 (dotsocr.cpp:21)
            forbidden: &[MOE_V],                // assert clip.cpp:712
        },
        "dots3note_v" => TensorRules {
            required: &["v.patch_embd.weight"], // segv clip.cpp:574 (dotsocr.cpp:21)
            forbidden: &[],
        },
        "dots3note_a" => TensorRules { required: &[], forbidden: &[MOE_A] }, // assert clip.cpp:712

        // deepseekocr.cpp / deepseekocr2.cpp / deepseek4v.cpp
        "deepseekocr" => TensorRules {
            required: &[
                "v.position_embd.weight", // segv deepseekocr.cpp:323
                "v.class_embd",           // segv deepseekocr.cpp:345
                "v.image_newline",        // segv deepseekocr.cpp:379 / :404
            ],
            forbidden: &[MOE_V], // assert clip.cpp:712
        },
        "deepseekocr2" => TensorRules {
            required: &[
                "v.resample_query_1024.weight", // segv deepseekocr2.cpp:37 (1024 global view, used at warm-up)
                "v.resample_query_768.weight",  // segv deepseekocr2.cpp:37 (768 tiles, on encode)
            ],
            forbidden: &[MOE_V], // assert clip.cpp:712
        },
        "deepseek4v" => TensorRules {
            required: &["v.patch_embd.weight"], // segv clip.cpp:574 (deepseek4v.cpp:33)
            forbidden: &[MOE_V],                // assert clip.cpp:712
        },

        // glm4v.cpp
        "glm4v" | "glm5v" => TensorRules {
            required: &[
                "v.patch_embd.bias",     // assert glm4v.cpp:4
                "v.patch_embd.weight",   // segv glm4v.cpp:12
                "v.patch_embd.weight.1", // segv glm4v.cpp:24
            ],
            forbidden: &["v.class_embd", MOE_V], // assert glm4v.cpp:5; clip.cpp:712
        },

        // youtuvl.cpp (own layer loop)
        "youtuvl" => TensorRules {
            required: &[
                "v.patch_embd.weight", // segv youtuvl.cpp:46
                "v.blk.%d.attn_q.weight", "v.blk.%d.attn_q.bias", // segv youtuvl.cpp:99-100
                "v.blk.%d.attn_k.weight", "v.blk.%d.attn_k.bias", // segv youtuvl.cpp:101-102
                "v.blk.%d.attn_v.weight", "v.blk.%d.attn_v.bias", // segv youtuvl.cpp:103-104
            ],
            forbidden: &["v.class_embd"], // assert youtuvl.cpp:4
        },

        // yasa2.cpp (ConvNeXt; see conditional_rules for the blocks)
        "yasa2" => TensorRules {
            required: &["v.patch_embd.weight"], // assert clip.cpp:2568 (in load_tensors)
            forbidden: &[],
        },

        // hunyuanvl.cpp
        "hunyuanvl" => TensorRules {
            required: &[
                "v.patch_embd.weight",    // segv clip.cpp:574 (hunyuanvl.cpp:14)
                "v.position_embd.weight", // assert clip.cpp:5395 (on first encode)
            ],
            forbidden: &[MOE_V], // assert clip.cpp:712
        },

        // parakeet.cpp (own layer loop) + its mel preprocessor
        "parakeet" => TensorRules {
            required: &[
                "a.blk.%d.attn_q.weight", // segv parakeet.cpp:141
                "a.blk.%d.attn_k.weight", // segv parakeet.cpp:142
                "a.blk.%d.attn_v.weight", // segv parakeet.cpp:143
                "a.blk.%d.ln1.weight", "a.blk.%d.ln1.bias", // segv parakeet.cpp:134
                "a.blk.%d.ln2.weight", "a.blk.%d.ln2.bias", // segv parakeet.cpp:403
                "mm.a.norm_pre.weight",   // segv parakeet.cpp:409
                "mm.a.mlp.2.weight",      // segv clip.cpp:6079 (clip_n_mmproj_embd, from clip.cpp:262)
                "a.mel_filters",          // assert mtmd-audio.cpp:1262 (in mtmd_init; size must be n_mel_bins*257)
                "a.window",               // assert mtmd-audio.cpp:1267 (in mtmd_init; size must be 400)
            ],
            forbidden: &[],
        },

        // exaone4_5.cpp (own layer loop, fused qkv only)
        "exaone4_5" => TensorRules {
            required: &[
                "v.blk.%d.attn_qkv.weight", // assert exaone4_5.cpp:88
                "v.patch_embd.weight",      // segv exaone4_5.cpp:23
                "v.patch_embd.weight.1",    // segv exaone4_5.cpp:29
            ],
            forbidden: &[
                "v.patch_embd.bias", // assert exaone4_5.cpp:5
                "v.class_embd",      // assert exaone4_5.cpp:6
            ],
        },

        // granite-speech.cpp (own layer loop)
        "granite_speech" => TensorRules {
            required: &[
                "a.blk.%d.attn_q.weight", // segv granite-speech.cpp:81
                "a.blk.%d.attn_k.weight", // segv granite-speech.cpp:82
                "a.blk.%d.attn_v.weight", // segv granite-speech.cpp:83
                "a.blk.%d.attn_out.bias", // segv granite-speech.cpp:119
            ],
            forbidden: &[],
        },

        // mimovl.cpp (own layer loop; attn_sinks rule depends on metadata, see the table)
        "mimovl" => TensorRules {
            required: &[
                "v.patch_embd.weight",      // assert mimovl.cpp:23
                "v.patch_embd.weight.1",    // assert mimovl.cpp:24
                "v.blk.0.attn_qkv.weight",  // assert mimovl.cpp:41
                "v.blk.%d.attn_qkv.weight", // segv mimovl.cpp:131
                "v.blk.%d.attn_qkv.bias",   // segv mimovl.cpp:132
            ],
            forbidden: &["v.class_embd"], // assert mimovl.cpp:25
        },

        // minimax-m3.cpp (mm.1/mm.2/mm.merger.* asserted at :27-28 but the loader already requires them)
        "minimax_m3" => TensorRules {
            required: &["v.patch_embd.weight", "v.patch_embd.weight.1"], // assert minimax-m3.cpp:26
            forbidden: &[
                "v.patch_embd.bias", // assert minimax-m3.cpp:24
                "v.class_embd",      // assert minimax-m3.cpp:25
                MOE_V,               // assert clip.cpp:712
            ],
        },

        // granite4-vision.cpp (own layer loop)
        "granite4_vision" => TensorRules {
            required: &[
                "v.patch_embd.weight",    // assert granite4-vision.cpp:311
                "v.position_embd.weight", // assert granite4-vision.cpp:312
                "v.blk.%d.attn_q.weight", // segv granite4-vision.cpp:333
                "v.blk.%d.attn_k.weight", // segv granite4-vision.cpp:335
                "v.blk.%d.attn_v.weight", // segv granite4-vision.cpp:337
            ],
            forbidden: &["v.class_embd"], // assert granite4-vision.cpp:313
        },

        // mimo-audio.cpp (a.rvq.codebook.weight / mm.a.code_embd.weight: the loader throws, clip.cpp:2917)
        "mimo_audio" => TensorRules { required: &[], forbidden: &[MOE_A] }, // assert clip.cpp:712

        // qwen3tts-gen.cpp code predictor (audio-generation encoder, prefix a.gen.code;
        // graph built on generation, there is no warm-up)
        "qwen3tts_gen" => TensorRules {
            required: &[
                "a.gen.code.blk.%d.attn_q.weight",      // segv qwen3tts-gen.cpp:140
                "a.gen.code.blk.%d.attn_k.weight",      // segv qwen3tts-gen.cpp:149
                "a.gen.code.blk.%d.attn_v.weight",      // segv qwen3tts-gen.cpp:150
                "a.gen.code.blk.%d.ln1.weight",         // segv qwen3tts-gen.cpp:146
                "a.gen.code.blk.%d.attn_q_norm.weight", // segv qwen3tts-gen.cpp:156
                "a.gen.code.blk.%d.attn_k_norm.weight", // segv qwen3tts-gen.cpp:158
                "a.gen.code.blk.%d.ln2.weight",         // segv qwen3tts-gen.cpp:179
                "a.gen.code.blk.%d.ffn_gate.weight",    // segv qwen3tts-gen.cpp:181
            ],
            forbidden: &[],
        },
        // pockettts-spkenc.cpp (own layer loop)
        "pockettts_spkenc" => TensorRules {
            required: &[
                "a.blk.%d.attn_q.weight", // segv pockettts-spkenc.cpp:12
                "a.blk.%d.attn_k.weight", // segv pockettts-spkenc.cpp:13
                "a.blk.%d.attn_v.weight", // segv pockettts-spkenc.cpp:14
                "a.blk.%d.ls1.weight",    // segv pockettts-spkenc.cpp:27
                "a.blk.%d.ls2.weight",    // segv pockettts-spkenc.cpp:33
            ],
            forbidden: &[],
        },
        // the loader requires everything these two use
        "qwen3tts_spkenc" | "pockettts_gen" => NONE,

        // muse-glimmer.cpp
        "muse-glimmer" => TensorRules {
            required: &[
                "v.patch_embd.weight",    // segv clip.cpp:574 (muse-glimmer.cpp:39)
                "v.position_embd.weight", // segv clip.cpp:317 / assert :319 (muse-glimmer.cpp:40)
            ],
            forbidden: &[MOE_V], // assert clip.cpp:712
        },

        // "qwen2.5o": resolve with resolve_type() first; unknown strings: clip.cpp throws (clip.cpp:1288)
        _ => NONE,
    }
}

/// Rules that depend on whether another tensor is present, for the same type string as [`rules`].
pub fn conditional_rules(projector_type: &str) -> &'static [Conditional] {
    match projector_type {
        // llava.cpp: mm.3.weight present switches "mlp" to MLP_NORM (clip.cpp:2384-2386)
        "mlp" => &[
            Conditional { when: "mm.3.weight", present: false, then_required: &["mm.2.weight"] }, // segv clip.cpp:5991 (clip_n_mmproj_embd, from clip.cpp:262)
            Conditional { when: "mm.2.weight", present: true, then_required: &["mm.2.bias"] }, // segv llava.cpp:172 (only used without mm.3.weight)
            Conditional {
                when: "mm.3.weight", present: true,
                then_required: &["mm.1.weight", "mm.1.bias", "mm.3.bias", "mm.4.weight", "mm.4.bias"], // segv llava.cpp:181-194, clip.cpp:5993
            },
        ],
        "pixtral" | "lightonocr" => &[
            Conditional {
                when: "v.blk.%d.attn_qkv.weight", present: false,
                then_required: &["v.blk.%d.attn_q.weight", "v.blk.%d.attn_k.weight", "v.blk.%d.attn_v.weight"], // segv clip.cpp:424-434
            },
            Conditional { when: "mm.patch_merger.weight", present: true, then_required: &["mm.input_norm.weight"] }, // segv pixtral.cpp:32
        ],
        "dots3note_v" => &[
            Conditional {
                when: "v.blk.%d.attn_qkv.weight", present: false,
                then_required: &["v.blk.%d.attn_q.weight", "v.blk.%d.attn_k.weight", "v.blk.%d.attn_v.weight"], // segv clip.cpp:424-434
            },
            Conditional {
                when: "v.blk.%d.ffn_gate_exps.weight", present: true,
                then_required: &["v.blk.%d.ffn_gate_inp.weight", "v.blk.%d.ffn_up_exps.weight", "v.blk.%d.ffn_down_exps.weight"], // segv clip.cpp:715, 732, 734
            },
        ],
        // build_vit users (vision)
        "resampler" | "ling3vl" | "step3vl" | "gemma3" | "idefics3" | "janus_pro" | "lfm2" | "phi4" | "gemma4v"
        | "internvl" | "nemotron_v2_vl" | "llama4" | "kimivl" | "paddleocr" | "kimik25" | "dots_ocr"
        | "deepseekocr" | "deepseekocr2" | "deepseek4v" | "glm4v" | "glm5v" | "hunyuanvl" | "minimax_m3"
        | "muse-glimmer" => QKV_V,
        // build_vit users (audio)
        "ultravox" | "voxtral" | "qwen2a" | "glma" | "meralion" | "musicflamingo" | "qwen3a" | "dots3note_a"
        | "mimo_audio" => QKV_A,
        // mobilenetv5.cpp, names "v.blk.<stage>.<block>.*"
        "gemma3nv" => &[
            Conditional { when: "v.blk.%d.%d.conv_exp.weight", present: true, then_required: &["v.blk.%d.%d.conv_pwl.weight"] }, // segv mobilenetv5.cpp:78
            Conditional {
                when: "v.blk.%d.%d.attn.query.proj.weight", present: true,
                then_required: &[
                    "v.blk.%d.%d.attn.key.proj.weight",    // segv mobilenetv5.cpp:174
                    "v.blk.%d.%d.attn.value.proj.weight",  // segv mobilenetv5.cpp:187
                    "v.blk.%d.%d.attn.output.proj.weight", // segv mobilenetv5.cpp:235
                ],
            },
        ],
        // yasa2.cpp, names "v.stage.<stage>.blk.<block>.*"
        "yasa2" => &[Conditional {
            when: "v.stage.%d.blk.%d.dw.weight", present: true,
            then_required: &["v.stage.%d.blk.%d.pw1.weight", "v.stage.%d.blk.%d.pw2.weight"], // segv yasa2.cpp:121, :136
        }],
        _ => &[],
    }
}

/// Other assert conditions (and a few SIGFPE/hang cases) that depend only on GGUF metadata or
/// tensor shapes, to check before loading. `V` = `clip.vision.`, `A` = `clip.audio.`;
/// `n_embd` = `{V|A}embedding_length`, `n_head` = `{V|A}attention.head_count`,
/// `n_head_kv` = `{V|A}attention.head_count_kv` (defaults to n_head), `n_layer` = `{V|A}block_count`,
/// `d_head` = `{V|A}attention.head_dim` if present else `n_embd / n_head`. Default values are the
/// ones clip.cpp uses when an optional key is absent. "(encode)" = fires on the first
/// encode/preprocess, not while loading.
///
/// | Types | Where | Keys / tensors | Condition that must hold |
/// |---|---|---|---|
/// | all | gguf.cpp:196, :1140 (via clip.cpp:3849-3934) | every scalar key clip.cpp reads, when present | exact GGUF type and a scalar: BOOL for `clip.has_{vision,audio,gen_audio}_encoder`, `clip.use_gelu`, `clip.use_silu`; INT32 for `clip.minicpmv_version`; FLOAT32 for `{V|A}attention.layer_norm_epsilon`, `V swiglu_clamp`; STRING for `clip.projector_type`, `clip.{vision,audio,gen.audio}.projector_type`, `general.name`, `general.description`, `V mm_patch_merge_type`, `clip.gen.audio.model_variant`; UINT32 for every other scalar `clip.*` key (array keys are checked with throws) |
/// | build_vit users, llava, qwen2vl, youtuvl, minicpmv4_6, granite4_vision | clip.cpp:453-455, llava.cpp:87-89, qwen2vl.cpp:121-123, youtuvl.cpp:106-108 -> ggml.c:3758/3778 | n_head, n_head_kv, head_dim, attn_q/k/v.weight | `n_head > 0`; `attn_q.weight.ne[1] == n_head*d_head`; `attn_k/v.weight.ne[1] == n_head_kv*d_head` (so `n_embd % n_head == 0` without head_dim) |
/// | build_vit users with fused qkv | clip.cpp:411, :417 | `v.blk.%d.attn_q_norm.weight`, `attn_k_norm.weight` | `ne[0] == d_head` when `attn_qkv.weight` is present |
/// | lfm2, phi4, qwen3vl_merger, ling3vl, kimivl, paddleocr, step3vl, muse-glimmer, glm4v/glm5v (if it has pos embd) | clip.cpp:317-325 -> ggml.c:3758 | `v.position_embd.weight` | `ne[0] == n_embd` and `ne[1]` a perfect square |
/// | kimik25 | kimik25.cpp:20 | `v.position_embd.weight` | `ne[0] == n_embd` (3-D table [n_embd, w, h]) |
/// | gemma4v, gemma4uv | gemma4v.cpp:33, gemma4uv.cpp:44 -> ggml.c:1797 | `v.position_embd.weight` | holds two tables: `ne[0] == n_embd`, `ne[2] >= 2` |
/// | hunyuanvl | clip.cpp:5400 (encode) | `v.position_embd.weight` | `ne[1]` a perfect square |
/// | dots3note_v (MoE layers) | clip.cpp:712, :713 | `V expert_used_count`, `clip.use_silu` | if any `v.blk.%d.ffn_gate_exps.weight`: `expert_used_count >= 1` and `clip.use_silu == true` |
/// | idefics3, lfm2, kimivl, kimik25, nemotron_v2_vl (`V projector.scale_factor`, default 1!); dots_ocr (`V projector.scale_factor`); dots3note_v (`V spatial_merge_size`) | clip.cpp:902 (siglip.cpp:45/51, kimivl.cpp:34, kimik25.cpp:70, nemotron-v2-vl.cpp:25, dotsocr.cpp:35) | merge factor | `>= 2` |
/// | minicpmv4_6 | clip.cpp:1465 (load) | `V projector.scale_factor` (default 4) | `== 2 \|\| == 4` |
/// | internvl | clip.cpp:1488 (load) | `V preproc_min_tiles` (def 1), `V preproc_max_tiles` (def 12) | `min <= max < INT32_MAX` |
/// | internvl, llama4 | internvl.cpp:41, llama4.cpp:60 -> ggml.c:3778 | `V image_size`, `V patch_size`, `V projector.scale_factor` (def 1) | `(image_size / patch_size) % scale_factor == 0` |
/// | ldp, ldpv2 | llava.cpp:211, :318 -> ggml.c:3686 | `V image_size`, `V patch_size` | `image_size / patch_size == 24` |
/// | llama4 | llama4.cpp:22 -> ggml.c:3778 | `v.patch_embd.weight` | `nelements == patch_size^2 * 3 * n_embd` |
/// | qwen2vl_merger, qwen2.5vl_merger, qwen3vl_merger, ling3vl, glm4v, glm5v, exaone4_5, mimovl | qwen2vl.cpp:6-7, glm4v.cpp:19-20, exaone4_5.cpp:25-26, mimovl.cpp:59-60 (encode; images are aligned to patch_size*n_merge, mtmd-image.cpp:781) | `V spatial_merge_size` (default 2) | even (the graphs hard-code a 2x2 merge) |
/// | qwen2.5vl_merger, exaone4_5 | qwen2vl.cpp:196, exaone4_5.cpp:162 -> ggml.c:3739 | `V n_wa_pattern`, `V projection_dim`, `mm.2.weight` | if `n_wa_pattern > 0`: `projection_dim == mm.2.weight.ne[1]` |
/// | youtuvl; qwen2.5vl_merger, exaone4_5 | clip.cpp:4970-4977 (encode, infinite loop, not an abort) | `V window_size`, `V patch_size` | youtuvl: `window_size >= 2*patch_size`; the other two (window fixed at 112): `patch_size <= 56` |
/// | exaone4_5 | exaone4_5.cpp:17 | n_head, `V attention.head_count_kv` | `n_head % n_head_kv == 0` |
/// | mimovl | clip.cpp:1722 (load), mimovl.cpp:26-28, :41-44 | `V wa_pattern_mode`, n_head_kv, `v.blk.0.attn_qkv.weight` | `len(wa_pattern_mode) == n_layer`; `n_head_kv > 0`; `n_head % n_head_kv == 0`; `n_layer >= 1`; `attn_qkv.weight.ne[1] % (n_head + 2*n_head_kv) == 0` |
/// | mimovl | mimovl.cpp:157 | `V wa_pattern_mode`, `v.blk.%d.attn_sinks` | `attn_sinks` present for every layer `il` with `wa_pattern_mode[il] != -1` |
/// | mimovl | clip.cpp:5104 (encode) | `V window_size` | `> 0` |
/// | deepseekocr2 | deepseekocr2.cpp:4-5 | n_head, `V attention.head_count_kv` | `n_head_kv > 0 && n_head % n_head_kv == 0` |
/// | deepseekocr, deepseekocr2 | clip.cpp:1938 (load) | `V preproc_min_tiles` (def 2), `V preproc_max_tiles` (def 9 / 6) | `0 <= min <= max <= 256` |
/// | deepseek4v | deepseek4v.cpp:83 -> ggml.c:3739 | `v.token_embd.img_start/img_end/img_pad`, `v.image_newline` | each has `nelements == mm.2.weight.ne[1]` |
/// | minimax_m3 | clip.cpp:1695 (load) | `V spatial_merge_size` | `> 0` (asserted before the throwing sanity check) |
/// | granite4_vision | granite4-vision.cpp:314, :372 | `V feature_layer` | non-empty; every entry in `[0, n_layer)` (the loader throws only for `> n_layer`) |
/// | granite4_vision | granite4-vision.cpp:87, :64, clip.cpp:4432 (SIGFPE) | `V projector.window_side`, `V projector.query_side` | both `> 0` |
/// | granite4_vision | granite4-vision.cpp:253 (encode, tiled images) | `v.image_newline`, `V projection_dim` | `nelements(v.image_newline) == projection_dim` |
/// | gemma3nv | mobilenetv5.cpp:397, :325, :376 | MSFA output channels, `V image_size` | channels after MSFA `== n_embd`; with `w16 = ceil(image_size/16)`, `w32 = ceil(image_size/32)`: `w16 % w32 == 0` and (`w16 <= 16` or `w16 % 16 == 0`) |
/// | ultravox, voxtral, qwen2a, glma, meralion, musicflamingo | whisper-enc.cpp:6; :28-32 | `a.position_embd.weight`, n_layer | `a.position_embd.weight.ne[1] >= 1500` (warm-up uses 3000 mel frames, clip-model.h:88); `n_layer >= 1` (`layers[0]` read) |
/// | ultravox, voxtral, meralion | clip.cpp:4297 (encode) | `A projector.stack_factor` | `> 0` |
/// | glma | clip.cpp:4323 (encode, SIGFPE) | `A projector.stack_factor` | `> 0` |
/// | lfm2a | conformer.cpp:7 | `a.position_embd.weight` | `ne[1] >= 1500` |
/// | parakeet | clip.cpp:1498, :1501 (load); mtmd-audio.cpp:1262, :1267 (mtmd_init) | `A subsampling_factor`, `A conv_kernel_size`, `a.mel_filters`, `a.window` | `subsampling_factor == 8`; `conv_kernel_size > 0` and odd; `nelements(a.mel_filters) == num_mel_bins * 257`; `nelements(a.window) == 400` |
/// | granite_speech | clip.cpp:2007 (load) | `A chunk_size` | `0 < chunk_size <= 8192` |
/// | granite_speech | granite-speech.cpp:220, :222, :225, clip.cpp:4401 (SIGFPE); granite-speech.cpp:238 -> ggml.c:3758 | `A projector.window_size`, `A projector.downsample_rate`, `A projector.head_count`, `a.proj_query` | all three `> 0`; `nelements(a.proj_query) == n_embd * (window_size / downsample_rate)` |
/// | mimo_audio | mimo-audio.cpp:43, :82-83, :114-115; clip.cpp:5543 (encode) | n_layer, `A rvq.num_quantizers`, `A window_size`, `a.rvq.codebook.weight`, `mm.a.code_embd.weight` | `n_layer >= 3`; `codebook.ne[2] == code_embd.ne[2] == num_quantizers`; `codebook.ne[0] == code_embd.ne[0] ==` downsample output width; `window_size > 0` |
/// | qwen3tts_spkenc | qwen3tts-spkenc.cpp:169 | `A block_count` | `== 3` |
/// | pockettts_gen | pockettts-gen.cpp:110 (generation) | `clip.gen.audio.block_count` | `>= 1` |
/// | phi4, dots_ocr, dots3note_v, mimovl, paddleocr, exaone4_5, hunyuanvl (when the keys are given) | mtmd-image.cpp:773 (encode) | `V image_min_pixels`, `V image_max_pixels` | both `> 0` |
/// | llava (`v.class_embd`, `adapter.boi/eoi`), llama4, internvl, nemotron_v2_vl, deepseekocr (`v.class_embd`), cogvlm/glma (`v.boi`, `v.eoi`), hunyuanvl (`v.image_newline`, `mm.image_begin/end`), deepseek4v (sentinels), deepseekocr/deepseekocr2 (`v.image_newline`, `v.view_seperator`), granite4_vision (`v.image_newline`) | ggml.c:2637, :2645 (ggml_concat; e.g. llava.cpp:36, :360, llama4.cpp:31, cogvlm.cpp:91, whisper-enc.cpp:126, hunyuanvl.cpp:43, :56, deepseekocr.cpp:346, :381) | those tensors | type F32 (the activations they are concatenated with are F32), and `ne[0]` equal to the width they are joined to (n_embd, or the projector output size for boi/eoi/newline/separators) |
pub mod metadata_and_shape_asserts {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_has_a_known_prefix() {
        let ok = |n: &str| ["v.", "a.", "mm.", "adapter."].iter().any(|p| n.starts_with(p));
        for t in PROJECTOR_TYPES {
            let r = rules(resolve_type(t, true));
            for n in r.required.iter().chain(r.forbidden) {
                assert!(ok(n), "{t}: {n}");
            }
            for c in conditional_rules(t) {
                assert!(ok(c.when), "{t}: {}", c.when);
                for n in c.then_required {
                    assert!(ok(n), "{t}: {n}");
                }
            }
        }
    }

    #[test]
    fn qwen25o_resolves_per_encoder() {
        assert_eq!(resolve_type("qwen2.5o", true), "qwen2.5vl_merger");
        assert_eq!(resolve_type("qwen2.5o", false), "qwen2a");
        assert!(rules("qwen2vl_merger").forbidden.contains(&"v.patch_embd.bias"));
        assert!(rules("ultravox").forbidden.contains(&"a.blk.0.attn_k.bias"));
    }
}
