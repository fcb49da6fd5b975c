//! One table entry per projector type: which tensors its graph needs or must not have, which
//! depend on other tensors, where its output size is read and how long its position table must
//! be; so that a projector GGUF (`general.architecture = "clip"`) can be refused before
//! clip.cpp aborts the whole process on it.
//!
//! A missing *required* tensor already makes clip.cpp's loader throw, and that error is caught.
//! The rules here cover only tensors that the loader (`clip_model_loader::load_tensors`) loads as
//! *optional*, which a graph builder then either asserts on (`GGML_ASSERT`) or passes unguarded
//! to a ggml op (a NULL dereference, so SIGSEGV). Either way the process dies while `clip_init`
//! runs: the graph is built for warm-up, and the `clip_graph` constructor calls
//! `clip_n_mmproj_embd`. Where a crash happens only later, on the first encode or in
//! `mtmd_init`, its comment says so. Source: llama.cpp vendored in llama-cpp-sys-2 0.1.161,
//! `tools/mtmd/` (clip.cpp, clip-impl.h, models/*.cpp); all file:line references are to that
//! tree. Trailing-comment legend: `assert` = explicit GGML_ASSERT/GGML_ABORT on the pointer;
//! `segv` = unguarded use of an optional tensor (NULL deref).
//!
//! Tensor names use `%d` for every layer index `0..block_count` of their encoder
//! (`clip.vision.block_count` for `v.blk.*`, `clip.audio.block_count` for `a.blk.*`,
//! `clip.gen.audio.block_count` for `a.gen.*`); names with a literal `0` are asserted for layer 0
//! only. Two `%d` (stage, block) stand for every pair that exists in the file.
//!
//! To support a new projector type: add its entry to [`TYPES`] (the test
//! `every_type_has_one_entry` keeps names unique).

/// What clip.cpp needs of one projector type (or several that share every rule).
pub struct ProjectorType {
    /// The `clip.projector_type` strings this entry is for.
    pub names: &'static [&'static str],
    /// Tensors the graph needs (GGML_ASSERT or NULL dereference when absent).
    pub required: &'static [&'static str],
    /// Tensors the graph asserts are absent.
    pub forbidden: &'static [&'static str],
    /// Tensors needed only when another one is present (or absent).
    pub conditional: &'static [Conditional],
    /// Where `clip_n_mmproj_embd` reads the output size: the first entry whose condition holds.
    /// Empty: mtmd checks it itself (after loading, leaking the encoder when it differs).
    pub output: &'static [OutputSize],
    /// How long the position table must be.
    pub positions: Positions,
}

/// A rule that applies only when the tensor `when` is present (`present == true`) or absent
/// (`present == false`): every tensor in `then_required` must then exist. `%d` placeholders are
/// bound to the same index (or, for two `%d`, the same pair of indices) in `when` and in
/// `then_required`.
#[derive(Clone, Copy)]
pub struct Conditional {
    pub when: &'static str,
    pub present: bool,
    pub then_required: &'static [&'static str],
}

/// The output size is `tensor.ne[axis]`, when `when_present` is absent or present in the file.
pub struct OutputSize {
    pub when_present: Option<&'static str>,
    pub tensor: &'static str,
    pub axis: usize,
}

const fn out(tensor: &'static str, axis: usize) -> OutputSize {
    OutputSize { when_present: None, tensor, axis }
}

const fn out_if(when: &'static str, tensor: &'static str, axis: usize) -> OutputSize {
    OutputSize { when_present: Some(when), tensor, axis }
}

/// Rows a position table must have, because the graph reads that many (`ggml_get_rows`
/// asserts otherwise).
pub enum Positions {
    Unchecked,
    /// `v.position_embd.weight`: one row a patch, plus one for `v.class_embd` when present
    /// (clip_graph_llava, models/llava.cpp:7); the patch kernel must match the patch size.
    PerPatch,
    /// A fixed number of rows of the named table.
    Rows(&'static str, u64),
}

/// Whisper encoders' positions (models/whisper-enc.cpp:6): 1500 for a 30 s window.
const WHISPER_POSITIONS: u64 = 1500;

const UNCHECKED: ProjectorType = ProjectorType {
    names: &[],
    required: &[],
    forbidden: &[],
    conditional: &[],
    output: &[],
    positions: Positions::Unchecked,
};

/// The projector type clip.cpp actually uses for one encoder, given the raw string
/// (clip.cpp:1266-1296): the legacy `"qwen2.5o"` becomes `"qwen2.5vl_merger"` for vision and
/// `"qwen2a"` for any other encoder.
pub fn resolve_type(raw: &str, is_vision: bool) -> &str {
    match (raw, is_vision) {
        ("qwen2.5o", true) => "qwen2.5vl_merger",
        ("qwen2.5o", false) => "qwen2a",
        _ => raw,
    }
}

/// The entry for a (resolved) projector type name; `None`: clip.cpp does not know it.
pub fn find(name: &str) -> Option<&'static ProjectorType> {
    TYPES.iter().find(|t| t.names.contains(&name))
}

// ---- shared pieces -------------------------------------------------------------------------

// build_vit (clip.cpp:337): with no fused qkv, q/k/v go straight into build_mm (clip.cpp:424,429,434)
const QKV_V: &[Conditional] = &[Conditional {
    when: "v.blk.%d.attn_qkv.weight",
    present: false,
    then_required: &["v.blk.%d.attn_q.weight", "v.blk.%d.attn_k.weight", "v.blk.%d.attn_v.weight"], // segv clip.cpp:424-434
}];
const QKV_A: &[Conditional] = &[Conditional {
    when: "a.blk.%d.attn_qkv.weight",
    present: false,
    then_required: &["a.blk.%d.attn_q.weight", "a.blk.%d.attn_k.weight", "a.blk.%d.attn_v.weight"], // segv clip.cpp:424-434
}];

// MoE ffn in build_vit (clip.cpp:517-518). hparams.n_expert_used is only read for dots3note_v,
// so elsewhere it is 0 and GGML_ASSERT(n_expert_used > 0) fires (clip.cpp:712).
const MOE_V: &str = "v.blk.%d.ffn_gate_exps.weight"; // assert clip.cpp:712
const MOE_A: &str = "a.blk.%d.ffn_gate_exps.weight"; // assert clip.cpp:712

// llava.cpp: mm.3.weight present switches "mlp" to MLP_NORM (clip.cpp:2384-2386)
const MLP_LAYERS: &[Conditional] = &[
    Conditional { when: "mm.3.weight", present: false, then_required: &["mm.2.weight"] }, // segv clip.cpp:5991 (clip_n_mmproj_embd, from clip.cpp:262)
    Conditional { when: "mm.2.weight", present: true, then_required: &["mm.2.bias"] }, // segv llava.cpp:172 (only used without mm.3.weight)
    Conditional {
        when: "mm.3.weight",
        present: true,
        then_required: &["mm.1.weight", "mm.1.bias", "mm.3.bias", "mm.4.weight", "mm.4.bias"], // segv llava.cpp:181-194, clip.cpp:5993
    },
];
const PIXTRAL: &[Conditional] = &[
    QKV_V[0],
    Conditional { when: "mm.patch_merger.weight", present: true, then_required: &["mm.input_norm.weight"] }, // segv pixtral.cpp:32
];
const DOTS3NOTE_V: &[Conditional] = &[
    QKV_V[0],
    Conditional {
        when: "v.blk.%d.ffn_gate_exps.weight",
        present: true,
        then_required: &[
            "v.blk.%d.ffn_gate_inp.weight",
            "v.blk.%d.ffn_up_exps.weight",
            "v.blk.%d.ffn_down_exps.weight",
        ], // segv clip.cpp:715, 732, 734
    },
];
// mobilenetv5.cpp, names "v.blk.<stage>.<block>.*"
const MOBILENET: &[Conditional] = &[
    Conditional { when: "v.blk.%d.%d.conv_exp.weight", present: true, then_required: &["v.blk.%d.%d.conv_pwl.weight"] }, // segv mobilenetv5.cpp:78
    Conditional {
        when: "v.blk.%d.%d.attn.query.proj.weight",
        present: true,
        then_required: &[
            "v.blk.%d.%d.attn.key.proj.weight",    // segv mobilenetv5.cpp:174
            "v.blk.%d.%d.attn.value.proj.weight",  // segv mobilenetv5.cpp:187
            "v.blk.%d.%d.attn.output.proj.weight", // segv mobilenetv5.cpp:235
        ],
    },
];
// yasa2.cpp, names "v.stage.<stage>.blk.<block>.*"
const CONVNEXT: &[Conditional] = &[Conditional {
    when: "v.stage.%d.blk.%d.dw.weight",
    present: true,
    then_required: &["v.stage.%d.blk.%d.pw1.weight", "v.stage.%d.blk.%d.pw2.weight"], // segv yasa2.cpp:121, :136
}];

/// Every projector type of clip-impl.h:513-577 (`PROJECTOR_TYPE_NAMES`) but the legacy
/// "qwen2.5o" ([`resolve_type`]). Any other string makes clip.cpp throw "unknown projector type"
/// (clip.cpp:1288), which is caught.
#[rustfmt::skip]
pub static TYPES: &[ProjectorType] = &[
    // llava.cpp. For "mlp", see conditional_rules (mm.2 / mm.3 / mm.4)
    ProjectorType {
        names: &["mlp"],
        required: &[
            "v.patch_embd.weight",    // segv clip.cpp:574 (llava.cpp:32)
            "v.position_embd.weight", // segv llava.cpp:43
            "v.blk.%d.attn_q.weight", // segv llava.cpp:72
            "v.blk.%d.attn_k.weight", // segv llava.cpp:77
            "v.blk.%d.attn_v.weight", // segv llava.cpp:82
            "mm.0.weight",            // segv llava.cpp:166 / :176
            "mm.0.bias",              // segv llava.cpp:167 / :177
        ],
        conditional: MLP_LAYERS,
        output: &[out_if("mm.3.weight", "mm.3.bias", 0), out("mm.2.weight", 1)],
        positions: Positions::PerPatch,
        ..UNCHECKED
    },
    // llava.cpp
    ProjectorType {
        names: &["ldp", "ldpv2", "adapter"],
        required: &[
            "v.patch_embd.weight",    // segv clip.cpp:574 (build_inp, llava.cpp:32)
            "v.position_embd.weight", // segv llava.cpp:43 (ggml_get_rows)
            "v.blk.%d.attn_q.weight", // segv llava.cpp:72 (layers < max feature layer)
            "v.blk.%d.attn_k.weight", // segv llava.cpp:77
            "v.blk.%d.attn_v.weight", // segv llava.cpp:82
        ],
        positions: Positions::PerPatch,
        ..UNCHECKED
    },
    // minicpmv.cpp (resampler)
    ProjectorType {
        names: &["resampler"],
        required: &[
            "v.patch_embd.weight",    // segv clip.cpp:574 (minicpmv.cpp:30)
            "v.position_embd.weight", // segv minicpmv.cpp:28
        ],
        forbidden: &["v.class_embd", MOE_V], // assert minicpmv.cpp:4; MoE clip.cpp:712
        conditional: QKV_V,
        ..UNCHECKED
    },
    // minicpmv.cpp (minicpmv4_6: own layer loop, no qkv path)
    ProjectorType {
        names: &["minicpmv4_6"],
        required: &[
            "v.patch_embd.weight",    // segv clip.cpp:574 (minicpmv.cpp:170)
            "v.position_embd.weight", // segv minicpmv.cpp:133
            "v.blk.%d.attn_q.weight", // segv minicpmv.cpp:189 (own layer loop, no qkv path)
            "v.blk.%d.attn_k.weight", // segv minicpmv.cpp:193
            "v.blk.%d.attn_v.weight", // segv minicpmv.cpp:197
        ],
        ..UNCHECKED
    },
    // qwen2vl.cpp
    ProjectorType {
        names: &["qwen2vl_merger", "qwen2.5vl_merger"],
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
        output: &[out("mm.2.bias", 0)],
        ..UNCHECKED
    },
    // qwen3vl.cpp
    ProjectorType {
        names: &["qwen3vl_merger"],
        required: &[
            "v.patch_embd.bias",        // assert qwen3vl.cpp:4
            "v.position_embd.weight",   // assert qwen3vl.cpp:5
            "v.patch_embd.weight",      // segv qwen2vl.cpp:15 (via qwen3vl.cpp:16)
            "v.patch_embd.weight.1",    // segv qwen2vl.cpp:16
            "v.blk.%d.attn_qkv.weight", // segv qwen3vl.cpp:81
            "v.blk.%d.attn_qkv.bias",   // segv qwen3vl.cpp:82
        ],
        forbidden: &["v.class_embd"], // assert qwen3vl.cpp:6
        ..UNCHECKED
    },
    // ling3vl.cpp (build_vit; mm.input_norm.weight is asserted at :7 but the loader already requires it)
    ProjectorType {
        names: &["ling3vl"],
        required: &[
            "v.patch_embd.weight",    // segv qwen2vl.cpp:15 (via ling3vl.cpp:17)
            "v.patch_embd.weight.1",  // segv qwen2vl.cpp:16
            "v.position_embd.weight", // segv clip.cpp:317 / assert clip.cpp:319 (ling3vl.cpp:41)
        ],
        forbidden: &["v.class_embd", MOE_V], // assert ling3vl.cpp:6; clip.cpp:712
        conditional: QKV_V,
        output: &[out("mm.2.bias", 0)],
        ..UNCHECKED
    },
    // step3vl.cpp
    ProjectorType {
        names: &["step3vl"],
        required: &[
            "v.patch_embd.weight",    // assert step3vl.cpp:5
            "v.position_embd.weight", // assert step3vl.cpp:6
        ],
        forbidden: &["v.class_embd", MOE_V], // assert step3vl.cpp:4; clip.cpp:712
        conditional: QKV_V,
        ..UNCHECKED
    },
    // siglip.cpp
    ProjectorType {
        names: &["gemma3"],
        required: &["v.patch_embd.weight"], // segv clip.cpp:574 (siglip.cpp:4)
        forbidden: &[MOE_V], // assert clip.cpp:712
        conditional: QKV_V,
        output: &[out("mm.input_projection.weight", 0)],
        ..UNCHECKED
    },
    ProjectorType {
        names: &["idefics3"],
        required: &["v.patch_embd.weight"], // segv clip.cpp:574 (siglip.cpp:4)
        forbidden: &[MOE_V], // assert clip.cpp:712
        conditional: QKV_V,
        output: &[out("mm.model.fc.weight", 1)],
        ..UNCHECKED
    },
    ProjectorType {
        names: &["janus_pro"],
        required: &["v.patch_embd.weight"], // segv clip.cpp:574 (siglip.cpp:4)
        forbidden: &[MOE_V], // assert clip.cpp:712
        conditional: QKV_V,
        ..UNCHECKED
    },
    // siglip.cpp
    ProjectorType {
        names: &["lfm2"],
        required: &[
            "v.patch_embd.weight",    // segv clip.cpp:574 (siglip.cpp:4)
            "v.position_embd.weight", // segv clip.cpp:317 / assert clip.cpp:319 (siglip.cpp:8)
        ],
        forbidden: &[MOE_V], // assert clip.cpp:712
        conditional: QKV_V,
        output: &[out("mm.2.weight", 1)],
        ..UNCHECKED
    },
    ProjectorType {
        names: &["phi4"],
        required: &[
            "v.patch_embd.weight",    // segv clip.cpp:574 (siglip.cpp:4)
            "v.position_embd.weight", // segv clip.cpp:317 / assert clip.cpp:319 (siglip.cpp:8)
        ],
        forbidden: &[MOE_V], // assert clip.cpp:712
        conditional: QKV_V,
        ..UNCHECKED
    },
    // mobilenetv5.cpp (no generic layers: has_standard_layers = false, clip.cpp:2270)
    ProjectorType {
        names: &["gemma3nv"],
        required: &["v.conv_stem.conv.weight"], // segv mobilenetv5.cpp:254
        conditional: MOBILENET,
        output: &[out("mm.input_projection.weight", 0)],
        ..UNCHECKED
    },
    // no loader case for gemma3na: load_hparams throws "unknown vision projector type" (clip.cpp:2038)
    ProjectorType {
        names: &["gemma3na"],
        ..UNCHECKED
    },
    // gemma4v.cpp
    ProjectorType {
        names: &["gemma4v"],
        required: &[
            "v.patch_embd.weight",    // segv gemma4v.cpp:12
            "v.position_embd.weight", // segv gemma4v.cpp:27
        ],
        forbidden: &[MOE_V], // assert clip.cpp:712
        conditional: QKV_V,
        output: &[out("mm.input_projection.weight", 1)],
        ..UNCHECKED
    },
    // gemma4uv.cpp (no build_vit, no layer use)
    ProjectorType {
        names: &["gemma4uv"],
        required: &[
            "v.patch_embd.weight",    // segv gemma4uv.cpp:22
            "v.patch_embd.bias",      // segv gemma4uv.cpp:23
            "v.position_embd.weight", // segv gemma4uv.cpp:38
        ],
        output: &[out("mm.input_projection.weight", 1)],
        ..UNCHECKED
    },
    // gemma4a.cpp guards every optional tensor, but clip_n_mmproj_embd does not
    ProjectorType {
        names: &["gemma4a"],
        required: &["mm.a.input_projection.weight"], // segv clip.cpp:6026 (called from clip_graph ctor clip.cpp:262)
        ..UNCHECKED
    },
    // gemma4ua: the loader requires everything it uses
    ProjectorType {
        names: &["gemma4ua"],
        ..UNCHECKED
    },
    // pixtral.cpp (see conditional_rules for mm.patch_merger.weight)
    ProjectorType {
        names: &["pixtral", "lightonocr"],
        required: &["v.patch_embd.weight"], // segv clip.cpp:574 (pixtral.cpp:19)
        forbidden: &[MOE_V], // assert clip.cpp:712
        conditional: PIXTRAL,
        output: &[out("mm.2.weight", 1)],
        ..UNCHECKED
    },
    // whisper-enc.cpp
    ProjectorType {
        names: &["ultravox", "voxtral", "musicflamingo"],
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
        conditional: QKV_A,
        output: &[out("mm.a.mlp.2.weight", 1)],
        positions: Positions::Rows("a.position_embd.weight", WHISPER_POSITIONS),
    },
    ProjectorType {
        names: &["qwen2a"],
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
        conditional: QKV_A,
        output: &[out("mm.a.fc.weight", 1)],
        positions: Positions::Rows("a.position_embd.weight", WHISPER_POSITIONS),
    },
    ProjectorType {
        names: &["glma", "meralion"],
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
        conditional: QKV_A,
        positions: Positions::Rows("a.position_embd.weight", WHISPER_POSITIONS),
        ..UNCHECKED
    },
    // qwen3a.cpp
    ProjectorType {
        names: &["qwen3a"],
        required: &["a.position_embd.weight"], // segv qwen3a.cpp:64
        forbidden: &[MOE_A], // assert clip.cpp:712
        conditional: QKV_A,
        ..UNCHECKED
    },
    // conformer.cpp (own layer loop)
    ProjectorType {
        names: &["lfm2a"],
        required: &[
            "a.position_embd.weight", // segv conformer.cpp:7, clip.cpp:6060
            "a.blk.%d.attn_q.weight", "a.blk.%d.attn_q.bias", // segv conformer.cpp:90-91
            "a.blk.%d.attn_k.weight", "a.blk.%d.attn_k.bias", // segv conformer.cpp:99-100
            "a.blk.%d.attn_v.weight", "a.blk.%d.attn_v.bias", // segv conformer.cpp:104-105
            "a.blk.%d.attn_out.bias", // segv conformer.cpp:146
        ],
        positions: Positions::Rows("a.position_embd.weight", WHISPER_POSITIONS),
        ..UNCHECKED
    },
    // internvl.cpp / nemotron-v2-vl.cpp / llama4.cpp
    ProjectorType {
        names: &["internvl", "nemotron_v2_vl"],
        required: &[
            "v.class_embd",           // assert internvl.cpp:4 / nemotron-v2-vl.cpp:4
            "v.position_embd.weight", // assert internvl.cpp:5 / nemotron-v2-vl.cpp:5
            "v.patch_embd.weight",    // segv clip.cpp:574 (internvl.cpp:8 / nemotron-v2-vl.cpp:10)
        ],
        forbidden: &[MOE_V], // assert clip.cpp:712
        conditional: QKV_V,
        output: &[out("mm.3.weight", 1)],
        ..UNCHECKED
    },
    // llama4.cpp
    ProjectorType {
        names: &["llama4"],
        required: &[
            "v.class_embd",           // assert llama4.cpp:4
            "v.position_embd.weight", // assert llama4.cpp:5
            "v.patch_embd.weight",    // segv llama4.cpp:22
        ],
        forbidden: &[MOE_V], // assert clip.cpp:712
        conditional: QKV_V,
        ..UNCHECKED
    },
    // kimivl.cpp / paddleocr.cpp / kimik25.cpp
    ProjectorType {
        names: &["kimivl", "paddleocr"],
        required: &[
            "v.patch_embd.weight",    // segv clip.cpp:574 (kimivl.cpp:21 / paddleocr.cpp:21)
            "v.position_embd.weight", // segv clip.cpp:317 / assert :319 (kimivl.cpp:13 / paddleocr.cpp:20)
        ],
        forbidden: &[MOE_V], // assert clip.cpp:712
        conditional: QKV_V,
        output: &[out("mm.2.weight", 1)],
        ..UNCHECKED
    },
    // kimik25.cpp
    ProjectorType {
        names: &["kimik25"],
        required: &[
            "v.patch_embd.weight",    // segv clip.cpp:574 (kimik25.cpp:52)
            "v.position_embd.weight", // assert kimik25.cpp:14
        ],
        forbidden: &[MOE_V], // assert clip.cpp:712
        conditional: QKV_V,
        output: &[out("mm.2.weight", 1)],
        ..UNCHECKED
    },
    // cogvlm.cpp (own layer loop, fused qkv only)
    ProjectorType {
        names: &["cogvlm"],
        required: &[
            "v.class_embd",             // assert cogvlm.cpp:4
            "v.position_embd.weight",   // assert cogvlm.cpp:5
            "v.patch_embd.weight",      // segv clip.cpp:574 (cogvlm.cpp:10)
            "v.blk.%d.attn_qkv.weight", // segv cogvlm.cpp:22
            "v.blk.%d.attn_qkv.bias",   // segv cogvlm.cpp:24
        ],
        ..UNCHECKED
    },
    // dotsocr.cpp / dots3note.cpp (MoE only for dots3note_v, see conditional_rules)
    ProjectorType {
        names: &["dots_ocr"],
        required: &["v.patch_embd.weight"], // segv clip.cpp:574 (dotsocr.cpp:21)
        forbidden: &[MOE_V], // assert clip.cpp:712
        conditional: QKV_V,
        output: &[out("mm.2.weight", 1)],
        ..UNCHECKED
    },
    // dots3note.cpp (MoE, see the conditional rules)
    ProjectorType {
        names: &["dots3note_v"],
        required: &["v.patch_embd.weight"], // segv clip.cpp:574 (dotsocr.cpp:21)
        conditional: DOTS3NOTE_V,
        output: &[out("mm.2.weight", 1)],
        ..UNCHECKED
    },
    // dots3note.cpp (audio)
    ProjectorType {
        names: &["dots3note_a"],
        forbidden: &[MOE_A], // assert clip.cpp:712
        conditional: QKV_A,
        ..UNCHECKED
    },
    // deepseekocr.cpp / deepseekocr2.cpp / deepseek4v.cpp
    ProjectorType {
        names: &["deepseekocr"],
        required: &[
            "v.position_embd.weight", // segv deepseekocr.cpp:323
            "v.class_embd",           // segv deepseekocr.cpp:345
            "v.image_newline",        // segv deepseekocr.cpp:379 / :404
        ],
        forbidden: &[MOE_V], // assert clip.cpp:712
        conditional: QKV_V,
        ..UNCHECKED
    },
    ProjectorType {
        names: &["deepseekocr2"],
        required: &[
            "v.resample_query_1024.weight", // segv deepseekocr2.cpp:37 (1024 global view, used at warm-up)
            "v.resample_query_768.weight",  // segv deepseekocr2.cpp:37 (768 tiles, on encode)
        ],
        forbidden: &[MOE_V], // assert clip.cpp:712
        conditional: QKV_V,
        ..UNCHECKED
    },
    ProjectorType {
        names: &["deepseek4v"],
        required: &["v.patch_embd.weight"], // segv clip.cpp:574 (deepseek4v.cpp:33)
        forbidden: &[MOE_V], // assert clip.cpp:712
        conditional: QKV_V,
        output: &[out("mm.2.weight", 1)],
        ..UNCHECKED
    },
    // glm4v.cpp
    ProjectorType {
        names: &["glm4v", "glm5v"],
        required: &[
            "v.patch_embd.bias",     // assert glm4v.cpp:4
            "v.patch_embd.weight",   // segv glm4v.cpp:12
            "v.patch_embd.weight.1", // segv glm4v.cpp:24
        ],
        forbidden: &["v.class_embd", MOE_V], // assert glm4v.cpp:5; clip.cpp:712
        conditional: QKV_V,
        ..UNCHECKED
    },
    // youtuvl.cpp (own layer loop)
    ProjectorType {
        names: &["youtuvl"],
        required: &[
            "v.patch_embd.weight", // segv youtuvl.cpp:46
            "v.blk.%d.attn_q.weight", "v.blk.%d.attn_q.bias", // segv youtuvl.cpp:99-100
            "v.blk.%d.attn_k.weight", "v.blk.%d.attn_k.bias", // segv youtuvl.cpp:101-102
            "v.blk.%d.attn_v.weight", "v.blk.%d.attn_v.bias", // segv youtuvl.cpp:103-104
        ],
        forbidden: &["v.class_embd"], // assert youtuvl.cpp:4
        output: &[out("mm.2.bias", 0)],
        ..UNCHECKED
    },
    // yasa2.cpp (ConvNeXt; see conditional_rules for the blocks)
    ProjectorType {
        names: &["yasa2"],
        required: &["v.patch_embd.weight"], // assert clip.cpp:2568 (in load_tensors)
        conditional: CONVNEXT,
        output: &[out("mm.2.weight", 1)],
        ..UNCHECKED
    },
    // hunyuanvl.cpp
    ProjectorType {
        names: &["hunyuanvl"],
        required: &[
            "v.patch_embd.weight",    // segv clip.cpp:574 (hunyuanvl.cpp:14)
            "v.position_embd.weight", // assert clip.cpp:5395 (on first encode)
        ],
        forbidden: &[MOE_V], // assert clip.cpp:712
        conditional: QKV_V,
        ..UNCHECKED
    },
    // parakeet.cpp (own layer loop) + its mel preprocessor
    ProjectorType {
        names: &["parakeet"],
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
        ..UNCHECKED
    },
    // exaone4_5.cpp (own layer loop, fused qkv only)
    ProjectorType {
        names: &["exaone4_5"],
        required: &[
            "v.blk.%d.attn_qkv.weight", // assert exaone4_5.cpp:88
            "v.patch_embd.weight",      // segv exaone4_5.cpp:23
            "v.patch_embd.weight.1",    // segv exaone4_5.cpp:29
        ],
        forbidden: &[
            "v.patch_embd.bias", // assert exaone4_5.cpp:5
            "v.class_embd",      // assert exaone4_5.cpp:6
        ],
        output: &[out("mm.2.bias", 0)],
        ..UNCHECKED
    },
    // granite-speech.cpp (own layer loop)
    ProjectorType {
        names: &["granite_speech"],
        required: &[
            "a.blk.%d.attn_q.weight", // segv granite-speech.cpp:81
            "a.blk.%d.attn_k.weight", // segv granite-speech.cpp:82
            "a.blk.%d.attn_v.weight", // segv granite-speech.cpp:83
            "a.blk.%d.attn_out.bias", // segv granite-speech.cpp:119
        ],
        ..UNCHECKED
    },
    // mimovl.cpp (own layer loop; attn_sinks rule depends on metadata, see the table)
    ProjectorType {
        names: &["mimovl"],
        required: &[
            "v.patch_embd.weight",      // assert mimovl.cpp:23
            "v.patch_embd.weight.1",    // assert mimovl.cpp:24
            "v.blk.0.attn_qkv.weight",  // assert mimovl.cpp:41
            "v.blk.%d.attn_qkv.weight", // segv mimovl.cpp:131
            "v.blk.%d.attn_qkv.bias",   // segv mimovl.cpp:132
        ],
        forbidden: &["v.class_embd"], // assert mimovl.cpp:25
        ..UNCHECKED
    },
    // minimax-m3.cpp (mm.1/mm.2/mm.merger.* asserted at :27-28 but the loader already requires them)
    ProjectorType {
        names: &["minimax_m3"],
        required: &["v.patch_embd.weight", "v.patch_embd.weight.1"], // assert minimax-m3.cpp:26
        forbidden: &[
            "v.patch_embd.bias", // assert minimax-m3.cpp:24
            "v.class_embd",      // assert minimax-m3.cpp:25
            MOE_V,               // assert clip.cpp:712
        ],
        conditional: QKV_V,
        ..UNCHECKED
    },
    // granite4-vision.cpp (own layer loop)
    ProjectorType {
        names: &["granite4_vision"],
        required: &[
            "v.patch_embd.weight",    // assert granite4-vision.cpp:311
            "v.position_embd.weight", // assert granite4-vision.cpp:312
            "v.blk.%d.attn_q.weight", // segv granite4-vision.cpp:333
            "v.blk.%d.attn_k.weight", // segv granite4-vision.cpp:335
            "v.blk.%d.attn_v.weight", // segv granite4-vision.cpp:337
        ],
        forbidden: &["v.class_embd"], // assert granite4-vision.cpp:313
        ..UNCHECKED
    },
    // mimo-audio.cpp (a.rvq.codebook.weight / mm.a.code_embd.weight: the loader throws, clip.cpp:2917)
    ProjectorType {
        names: &["mimo_audio"],
        forbidden: &[MOE_A], // assert clip.cpp:712
        conditional: QKV_A,
        ..UNCHECKED
    },
    // qwen3tts-gen.cpp code predictor (audio-generation encoder, prefix a.gen.code;
    // graph built on generation, there is no warm-up)
    // qwen3tts-gen.cpp code predictor (audio-generation encoder, prefix a.gen.code; its graph is
    // built on generation, there is no warm-up)
    ProjectorType {
        names: &["qwen3tts_gen"],
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
        ..UNCHECKED
    },
    // pockettts-spkenc.cpp (own layer loop)
    ProjectorType {
        names: &["pockettts_spkenc"],
        required: &[
            "a.blk.%d.attn_q.weight", // segv pockettts-spkenc.cpp:12
            "a.blk.%d.attn_k.weight", // segv pockettts-spkenc.cpp:13
            "a.blk.%d.attn_v.weight", // segv pockettts-spkenc.cpp:14
            "a.blk.%d.ls1.weight",    // segv pockettts-spkenc.cpp:27
            "a.blk.%d.ls2.weight",    // segv pockettts-spkenc.cpp:33
        ],
        ..UNCHECKED
    },
    // the loader requires everything these two use
    ProjectorType {
        names: &["qwen3tts_spkenc", "pockettts_gen"],
        ..UNCHECKED
    },
    // muse-glimmer.cpp
    ProjectorType {
        names: &["muse-glimmer"],
        required: &[
            "v.patch_embd.weight",    // segv clip.cpp:574 (muse-glimmer.cpp:39)
            "v.position_embd.weight", // segv clip.cpp:317 / assert :319 (muse-glimmer.cpp:40)
        ],
        forbidden: &[MOE_V], // assert clip.cpp:712
        conditional: QKV_V,
        output: &[out("mm.2.weight", 1)],
        ..UNCHECKED
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_has_one_entry() {
        let mut names: Vec<&str> = TYPES.iter().flat_map(|t| t.names.iter().copied()).collect();
        assert_eq!(names.len(), 62, "clip-impl.h names 63 types, one of them the legacy qwen2.5o");
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 62, "a type has two entries");
    }

    #[test]
    fn every_name_has_a_known_prefix() {
        let ok = |n: &str| ["v.", "a.", "mm.", "adapter."].iter().any(|p| n.starts_with(p));
        for t in TYPES {
            let conditional = t.conditional.iter().flat_map(|c| std::iter::once(&c.when).chain(c.then_required));
            let outputs = t.output.iter().flat_map(|o| o.when_present.iter().chain(std::iter::once(&o.tensor)));
            for n in t.required.iter().chain(t.forbidden).chain(conditional).chain(outputs) {
                assert!(ok(n), "{:?}: {n}", t.names);
            }
        }
    }

    #[test]
    fn qwen25o_resolves_per_encoder() {
        assert_eq!(resolve_type("qwen2.5o", true), "qwen2.5vl_merger");
        assert_eq!(resolve_type("qwen2.5o", false), "qwen2a");
        assert!(find("qwen2vl_merger").unwrap().forbidden.contains(&"v.patch_embd.bias"));
        assert!(find("ultravox").unwrap().forbidden.contains(&"a.blk.0.attn_k.bias"));
        assert!(find("qwen2.5o").is_none());
    }
}
