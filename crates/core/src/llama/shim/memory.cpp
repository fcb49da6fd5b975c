// Reads llama.cpp's own memory accounting, which it offers only as C++ API, and flattens it
// into plain numbers for Rust. No C++ exception leaves these functions.

#include <cstdint>
#include <map>

#include "ggml-backend.h"
#include "llama.h"
#include "mtmd.h"

// From llama.cpp src/llama-ext.h (not installed), at the version llama-cpp-sys-2 pins.
struct llama_memory_breakdown_data {
    size_t model   = 0;
    size_t context = 0;
    size_t compute = 0;

    size_t total() const { return model + context + compute; }
};
using llama_memory_breakdown = std::map<ggml_backend_buffer_type_t, llama_memory_breakdown_data>;
LLAMA_API llama_memory_breakdown llama_get_memory_breakdown(const struct llama_context * ctx);

// From llama.cpp tools/mtmd (clip.h and mtmd-internal.h, not installed), at the version
// llama-cpp-sys-2 pins (=0.1.161): clip's memory accounting, and the first members of
// mtmd_context, its vision and audio encoders.
struct clip_ctx;
std::map<ggml_backend_dev_t, size_t> clip_get_mem_usage(const struct clip_ctx * ctx);
struct mtmd_context_head {
    struct clip_ctx * ctx_v;
    struct clip_ctx * ctx_a;
};

extern "C" {

// Bytes by use (model weights, KV cache, compute buffers) and place (host memory or device).
struct mm_shim_bytes {
    uint64_t model_host, model_device;
    uint64_t kv_host, kv_device;
    uint64_t compute_host, compute_device;
};

int mm_shim_context_memory(const struct llama_context * ctx, struct mm_shim_bytes * out) noexcept {
    try {
        *out = {};
        for (const auto & [buft, mb] : llama_get_memory_breakdown(ctx)) {
            const bool host = ggml_backend_buft_is_host(buft);
            (host ? out->model_host : out->model_device) += mb.model;
            (host ? out->kv_host : out->kv_device) += mb.context;
            (host ? out->compute_host : out->compute_device) += mb.compute;
        }
        return 0;
    } catch (...) {
        return -1;
    }
}

// Weights and compute buffers of a live projector, from clip.cpp's own accounting.
int mm_shim_projector_memory(const struct mtmd_context * ctx, uint64_t * host, uint64_t * device) noexcept {
    try {
        *host = 0;
        *device = 0;
        const mtmd_context_head * head = reinterpret_cast<const mtmd_context_head *>(ctx);
        for (const clip_ctx * encoder : {head->ctx_v, head->ctx_a}) {
            if (encoder == nullptr) {
                continue;
            }
            for (const auto & [dev, size] : clip_get_mem_usage(encoder)) {
                const bool cpu = dev == nullptr || ggml_backend_dev_type(dev) == GGML_BACKEND_DEVICE_TYPE_CPU;
                (cpu ? *host : *device) += size;
            }
        }
        return 0;
    } catch (...) {
        return -1;
    }
}

}
