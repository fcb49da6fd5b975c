//! How much memory a session holds, by use and by place.

use crate::llama::memory::{context_bytes, projector_bytes};
use crate::session::report::MemoryStats;
use crate::session::Session;
use crate::util::error::{fail, ErrorKind::*, Result};

impl Session {
    /// The bytes the session holds, by use and place.
    pub fn memory(&self) -> Result<MemoryStats> {
        let Some(b) = context_bytes(self.context()) else {
            return fail(Internal, "llama.cpp's memory breakdown failed");
        };
        let mut s = MemoryStats {
            model_host: b.model_host,
            model_gpu: b.model_device,
            kv_host: b.kv_host,
            kv_gpu: b.kv_device,
            compute_host: b.compute_host,
            compute_gpu: b.compute_device,
            shared_by: self.loaded_shared_by() as u32,
            ..Default::default()
        };
        if let Some(projector) = self.projector() {
            let Some((host, gpu)) = projector_bytes(projector) else {
                return fail(Internal, "clip.cpp's memory accounting failed");
            };
            (s.projector_host, s.projector_gpu) = (host, gpu);
        }
        Ok(s)
    }
}
