// describe MODEL MMPROJ IMAGE... [-p PROMPT]: the C++ version of examples/c/describe.c. Streams
// an answer about the images, prints the memory report, destroys the session (at the end of
// its scope) and prints how many sessions are left.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "mm_session.hpp"

static double mib(std::uint64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }

int main(int argc, char **argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: %s MODEL MMPROJ IMAGE... [-p PROMPT]\n", argv[0]);
        return 2;
    }
    std::string prompt = "Describe the image.";
    std::vector<mm::Media> media;
    for (int i = 3; i < argc; i++) {
        if (std::string(argv[i]) == "-p" && i + 1 < argc) {
            prompt = argv[++i];
        } else {
            media.push_back(mm::Media::file(argv[i]));
        }
    }
    try {
        mm::SessionParams p;
        p.model = argv[1];
        p.mmproj = argv[2];
        p.n_ctx = 2048;
        if (const char *threads = std::getenv("MM_THREADS")) p.n_threads = std::atoi(threads);
        mm::Session s = mm::Session::create(p);

        mm::AskOptions o;
        o.max_tokens = 48;
        o.seed = 7;
        s.ask(prompt, media, o, [](std::string_view piece) {
            std::fwrite(piece.data(), 1, piece.size(), stdout);
            std::fflush(stdout);
            return true;
        });
        std::printf("\n");
        mm_ask_info info = s.last_ask();
        std::printf("prompt: %u positions, %u media encoded, %u tokens generated (%.1f ms + %.1f ms)\n", info.prompt_positions, info.media_encoded,
                    info.tokens_generated, info.prompt_ms, info.generate_ms);
        mm_memory_stats m = s.memory();
        std::printf("memory (MiB)     host      gpu\n");
        std::printf("  model      %8.3f %8.3f\n", mib(m.model_host), mib(m.model_gpu));
        std::printf("  kv cache   %8.3f %8.3f\n", mib(m.kv_host), mib(m.kv_gpu));
        std::printf("  compute    %8.3f %8.3f\n", mib(m.compute_host), mib(m.compute_gpu));
        std::printf("  projector  %8.3f %8.3f\n", mib(m.projector_host), mib(m.projector_gpu));
    } catch (const mm::Error &e) {
        std::fprintf(stderr, "%s (%s)\n", e.what(), e.status_name());
        return 1;
    }
    std::printf("live sessions: %zu\n", mm::live_sessions());
    return 0;
}
