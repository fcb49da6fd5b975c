//! How much memory a session holds, by use and by place.

use crate::llama::memory::projector_bytes;
use crate::session::report::MemoryStats;
use crate::session::Session;
use crate::util::error::{fail, ErrorKind::*, Result};

impl Session {
    /// The bytes the session holds, by use and place. In a shared context, the KV cache
    /// figures are the session's share (the cache divided by its slots, plus what the session
    /// parked in host memory while its slot was lent) and the compute buffers are the context's.
    pub fn memory(&self) -> Result<MemoryStats> {
        let group = self.group();
        let Some(b) = group.bytes() else {
            return fail(Internal, "llama.cpp's memory breakdown failed");
        };
        let slots = group.n_slots() as u64;
        let mut s = MemoryStats {
            model_host: b.model_host,
            model_gpu: b.model_device,
            kv_host: b.kv_host / slots + self.member.parked_bytes(),
            kv_gpu: b.kv_device / slots,
            compute_host: b.compute_host,
            compute_gpu: b.compute_device,
            shared_by: self.loaded_shared_by() as u32,
            context_shared_by: group.members() as u32,
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
