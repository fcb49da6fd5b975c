//! Creating a session: the checks of the files and settings, then loading the text model,
//! creating its context and loading the projector, freeing what was made when a step fails; and
//! forking one (a new context over the same model and projector).

use std::ffi::CString;
use std::path::Path;
use std::sync::Arc;

use crate::batch::{Group, Member};
use crate::llama::backend;
use crate::llama::load::{self, ContextSettings, ModelSettings, Progress, ProjectorSettings};
use crate::llama::memory::{free_on_all_devices, release_free_heap};
use crate::llama::{Context, Model, Projector};
use crate::model::checked;
use crate::model::loaded::{check_remote, Loaded};
use crate::model::rpc::Remote;
use crate::model::template::{self, ChatTemplate};
use crate::session::cache::CacheRecord;
use crate::session::config::{check_sizes, threads_for, ForkConfig, SessionConfig};
use crate::session::Session;
use crate::util::abort::{AbortState, StepAbort};
use crate::util::error::{fail, Error, ErrorKind::*, Result};
use crate::util::hash::{self, Digest256};
use crate::util::log;

/// The share of load progress given to the text model when a projector follows it.
const MODEL_PROGRESS_SHARE: f32 = 0.8;

impl Session {
    /// Loads the model, creates its context and loads the projector. On failure everything
    /// made so far is freed, and the heap's free pages handed back as when a model unloads,
    /// before the error returns: failed creates leave the process as they found it.
    pub fn create(config: SessionConfig) -> Result<Session> {
        Self::load(config).inspect_err(|_| release_free_heap())
    }

    fn load(mut config: SessionConfig) -> Result<Session> {
        backend::init();
        config.validate()?;
        if let Some(t) = config.chat_template.as_deref() {
            template::check_named(t)?;
        }
        let model_found = checked::text_model(&config.model_path)?;
        let projector_found = config.mmproj_path.as_deref().map(checked::projector).transpose()?;
        let settings = ContextSettings {
            n_ctx: config.n_ctx,
            n_seq: config.n_parallel,
            n_batch: config.n_batch,
            n_ubatch: config.n_ubatch,
            threads: threads_for(config.n_threads),
            flash_attn: config.flash_attn,
            kv_type_k: config.kv_type_k,
            kv_type_v: config.kv_type_v,
        };
        let model_span = if config.mmproj_path.is_some() { MODEL_PROGRESS_SHARE } else { 1.0 };
        let mut progress = Progress { callback: config.progress.take(), base: 0.0, span: model_span, cancelled: false };
        let abort = Arc::new(AbortState::default());

        let remote = Remote::connect(config.rpc_servers.as_deref())?;
        let model = Self::load_model(&config, remote.as_ref(), &mut progress)?;
        let group = new_group(&model, &settings)
            .or_else(|e| fail(e.kind, format!("text model {}: {}", config.model_path.display(), e.message)))?;
        let member = Member::join(&group, None)?;
        check_remote(remote.as_ref())?;
        let (projector, marker) = match (&config.mmproj_path, &projector_found) {
            (Some(path), Some(found)) => {
                mm_gguf::check_projector_output(&found.outputs, path, model.n_embd() as u64)?;
                progress.base = model_span;
                progress.span = 1.0 - model_span;
                let p = Self::load_projector(path, &config, &model, settings.threads, &mut progress)?;
                let marker = p.marker();
                (Some(p), marker)
            }
            _ => (None, config.media_marker.clone().unwrap_or_else(load::default_marker)),
        };
        let chat = ChatTemplate::new(&model, config.chat_template.as_deref())?;
        let fingerprint = fingerprint_text(&model_found.fingerprint, projector_found.as_ref().map(|p| &p.fingerprint));
        let loaded = Arc::new(Loaded::new(model, remote, projector, marker, chat, fingerprint));
        Ok(Session::with_member(member, loaded, abort, config.seed, CacheRecord::default()))
    }

    /// A new session over the same model and projector (nothing is loaded again) and, when
    /// asked, a copy of this session's conversation, so that a shared prefix (a system prompt,
    /// reference images) is evaluated once and forked per user. The model and projector are
    /// freed when the last session using them is. A fork of a session that decodes alone has a
    /// context of its own (its own size, threads and seed allowed); a fork of a session created
    /// with `n_parallel` > 1 joins its context and decodes together with it (see `batch/`).
    pub fn fork(&self, config: &ForkConfig) -> Result<Session> {
        self.loaded.check_remote()?;
        let parent = *self.group().settings();
        let group = if parent.n_seq > 1 {
            check_batched_fork(config, &parent)?;
            self.group().clone()
        } else {
            let keep = |value: u32, parent: u32| if value == 0 { parent } else { value };
            let settings = ContextSettings {
                n_ctx: keep(config.n_ctx, parent.n_ctx),
                n_batch: keep(config.n_batch, parent.n_batch),
                threads: if config.n_threads == 0 { parent.threads } else { threads_for(config.n_threads) },
                ..parent
            };
            check_sizes(settings.n_ctx, settings.n_batch, config.n_threads)?;
            new_group(&self.loaded.model, &settings)?
        };
        let mut cache = CacheRecord::default();
        let mut state = None;
        if config.copy_conversation && !self.cache.items().is_empty() {
            let held = self.cache.n_pos();
            let n_ctx = group.n_ctx();
            if held >= n_ctx as i32 {
                return fail(
                    ContextFull,
                    format!("the conversation takes {held} positions, the fork's context holds {n_ctx}"),
                );
            }
            state = Some(self.member.state()?);
            cache = self.cache.clone();
        }
        let member = Member::join(&group, state)
            .or_else(|e| fail(e.kind, format!("llama.cpp refused a copy of the parent's KV cache: {}", e.message)))?;
        self.loaded.check_remote()?;
        let abort = Arc::new(AbortState::default());
        Ok(Session::with_member(member, self.loaded.clone(), abort, config.seed.unwrap_or(self.seed), cache))
    }

    fn load_model(config: &SessionConfig, remote: Option<&Remote>, progress: &mut Progress) -> Result<Model> {
        let path = c_path(&config.model_path)?;
        // Layers go to the servers' devices (as named), then to the local GPUs; without servers
        // llama.cpp picks the local ones itself.
        let remote_devices = match remote {
            Some(r) => r.devices()?,
            None => Vec::new(),
        };
        let local = backend::local_gpus();
        let split = split_array(&config.tensor_split, remote_devices.len() + local.len())?;
        let devices = [remote_devices, local].concat();
        let settings = ModelSettings {
            path: &path,
            n_gpu_layers: config.n_gpu_layers,
            devices: remote.is_some().then_some(&devices[..]),
            tensor_split: &split,
            use_mmap: config.use_mmap,
            use_mlock: config.use_mlock,
        };
        let (model, log) = load::load_model(&settings, progress);
        check_remote(remote)?;
        match model {
            Some(m) => Ok(m),
            None if progress.cancelled => fail(
                Cancelled,
                format!(
                    "text model {}: loading cancelled by the progress callback; nothing was kept",
                    config.model_path.display()
                ),
            ),
            None => fail(
                ModelLoad,
                format!(
                    "text model {}: llama.cpp could not load it: {}",
                    config.model_path.display(),
                    log::last_lines(&log)
                ),
            ),
        }
    }

    fn load_projector(
        path: &Path,
        config: &SessionConfig,
        model: &Model,
        threads: i32,
        progress: &mut Progress,
    ) -> Result<Projector> {
        let path_c = c_path(path)?;
        let marker_c = config
            .media_marker
            .as_deref()
            .map(CString::new)
            .transpose()
            .or_else(|_| fail(InvalidArgument, "media_marker contains a NUL byte"))?;
        let settings = ProjectorSettings {
            path: &path_c,
            marker: marker_c.as_deref(),
            use_gpu: config.mmproj_use_gpu,
            threads,
            flash_attn: config.flash_attn,
        };
        let (projector, log) = load::load_projector(model, &settings, progress);
        match projector {
            Some(p) => Ok(p),
            None if progress.cancelled => fail(
                Cancelled,
                format!("projector {}: loading cancelled by the progress callback; nothing was kept", path.display()),
            ),
            None if log.contains("mismatch between text model") => fail(
                ProjectorMismatch,
                format!(
                    "projector {}: its output size differs from the embedding size of text model {} ({}): {}",
                    path.display(),
                    config.model_path.display(),
                    model.n_embd(),
                    log::last_lines(&log)
                ),
            ),
            None => fail(
                ProjectorLoad,
                format!("projector {}: could not be loaded: {}", path.display(), log::last_lines(&log)),
            ),
        }
    }
}

fn c_path(path: &Path) -> Result<CString> {
    CString::new(path.to_string_lossy().as_bytes())
        .or_else(|_| fail(InvalidArgument, format!("{}: path contains a NUL byte", path.display())))
}

/// llama.cpp's split array for `shares` of the offloaded layers over `n_devices` devices: one
/// entry per device (zeros after the given ones), or empty when all are zero (llama.cpp's
/// default). Shares must be finite and not negative, and no more than the devices.
fn split_array(shares: &[f32], n_devices: usize) -> Result<Vec<f32>> {
    if shares.iter().any(|s| !s.is_finite() || *s < 0.0) {
        return fail(InvalidArgument, format!("tensor_split {shares:?}: shares must be finite and not negative"));
    }
    if shares.len() > n_devices {
        return fail(InvalidArgument, format!("tensor_split has {} entries, but there are {n_devices} devices to split layers over (the RPC servers' devices, then the local GPUs)", shares.len()));
    }
    if shares.iter().all(|s| *s == 0.0) {
        return Ok(Vec::new());
    }
    let mut array = vec![0.0; n_devices.max(backend::max_devices())];
    array[..shares.len()].copy_from_slice(shares);
    Ok(array)
}

/// "model <hex>[; projector <hex>]": what saved states record of the files' contents.
fn fingerprint_text(model: &Digest256, projector: Option<&Digest256>) -> String {
    let projector = projector.map(|p| format!("; projector {}", hash::hex(p))).unwrap_or_default();
    format!("model {}{projector}", hash::hex(model))
}

/// Fails unless a fork of a session whose context is shared (`parent`) keeps its sizes and
/// threads: it joins that context.
fn check_batched_fork(config: &ForkConfig, parent: &ContextSettings) -> Result<()> {
    for (name, value, theirs) in [
        ("n_ctx", config.n_ctx as i64, parent.n_ctx as i64),
        ("n_batch", config.n_batch as i64, parent.n_batch as i64),
        ("n_threads", config.n_threads as i64, parent.threads as i64),
    ] {
        if value != 0 && value != theirs {
            return fail(
                InvalidArgument,
                format!("{name} is {value}, but a fork of a session created with n_parallel {} joins its context, whose {name} is {theirs}: set 0", parent.n_seq),
            );
        }
    }
    Ok(())
}

/// A context group over `model` as `settings` say (see [`new_context`]).
fn new_group(model: &Model, settings: &ContextSettings) -> Result<Arc<Group>> {
    let abort = Arc::new(StepAbort::default());
    let ctx = new_context(model, settings, &abort)?;
    Group::new(ctx, abort, *settings, model.n_vocab())
}

/// A context over `model` as `settings` say, whose decodes `abort` can stop. A context whose KV
/// cache alone would take more memory than all devices have free is refused before llama.cpp
/// tries to allocate it (a failed allocation of such a size costs seconds and GBs first).
fn new_context(model: &Model, settings: &ContextSettings, abort: &Arc<StepAbort>) -> Result<Context> {
    let positions = settings.n_ctx as u64 * settings.n_seq as u64;
    let kv_bytes = model.kv_bytes_per_token(settings.kv_type_k, settings.kv_type_v).saturating_mul(positions);
    let free = free_on_all_devices();
    if kv_bytes > free {
        const MIB: u64 = 1 << 20;
        return fail(
            ContextCreate,
            format!(
                "a context of {} tokens needs {} MiB for its KV cache alone, more than the {} MiB free on this machine's devices",
                positions,
                kv_bytes / MIB,
                free / MIB
            ),
        );
    }
    let (ctx, log) = load::new_context(model, settings, abort);
    ctx.ok_or_else(|| {
        Error::new(
            ContextCreate,
            format!("could not create a context of {positions} tokens: {}", log::last_lines(&log)),
        )
    })
}
