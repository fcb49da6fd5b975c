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

// Weights and compute buffers of a projector, by a dry run of its loader (no tensor data read).
int mm_shim_projector_memory(const char * path, bool use_gpu, int n_threads, uint64_t * host, uint64_t * device) noexcept {
    try {
        struct mtmd_context_params params = mtmd_context_params_default();
        params.use_gpu = use_gpu;
        params.n_threads = n_threads;
        params.warmup = true;  // the warmup pass sizes the compute buffers
        *host = 0;
        *device = 0;
        mtmd_memory_usage usage = mtmd_get_memory_usage(path, params);
        if (usage.image_max_tokens < 0 && usage.backend_mem_usage.empty()) {
            return -1;
        }
        for (const auto & [dev, size] : usage.backend_mem_usage) {
            const bool cpu = dev == nullptr || ggml_backend_dev_type(dev) == GGML_BACKEND_DEVICE_TYPE_CPU;
            (cpu ? *host : *device) += size;
        }
        return 0;
    } catch (...) {
        return -1;
    }
}

}
