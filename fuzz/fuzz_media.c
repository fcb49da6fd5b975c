/*
 * fuzz_media: media decoding and encoding.
 *
 * The input is one media buffer. Each run asks the vision session (tiny-llama + tiny-mmproj),
 * max_tokens 1, greedy:
 *   1. with the input as MM_MEDIA_ENCODED: the format sniffer, then the Rust image decoders
 *      (crates/core/src/decode.rs: PNG, JPEG, GIF, BMP, PNM, WebP; audio is refused before
 *      decoding: no audio encoder), then mtmd's image preprocessing and the encoder;
 *   2. with MM_MEDIA_RGB: width and height from the first 4 bytes (10 bits each, so 1..1024),
 *      a flag byte, and the rest as pixels. Flag bit 0 fits the height to the bytes there
 *      are, bit 1 zeroes the width (bit 3 set) or the height, bit 2 passes 1 byte less: the
 *      size checks and odd shapes (1 x 1024, ...) through the preprocessor;
 *   3. with MM_MEDIA_PCM_F32, the whole input as samples (refused: no audio encoder).
 * When the fixtures have the audio projector and the input's last byte is 0xA5, 1 and 3 also
 * go to the audio session (tiny-llama + tiny-audio-mmproj) through mm_session_count_tokens
 * (the Rust WAV, FLAC and MP3 decoders and resampler, then mtmd's mel spectrogram), and through mm_session_ask (the audio encoder
 * too) when the byte before it is 0xA5 as well. Any clip is padded to 30 s, so one audio count
 * costs about 65 ms and an ask 120 ms in this build, against about 1 ms for an image: done for
 * every input, audio would cut the run rate a hundredfold, so libFuzzer chooses when.
 * Bit 4 of byte 4 adds sizes that lie: raw RGB whose width and height are 32-bit values from
 * bytes 5-12 (products that overflow, or pass the buffer), each refused unless the buffer holds
 * width * height * 3 bytes; and, with the audio session, PCM whose size claims more than
 * MM_MAX_AUDIO_SECONDS, refused before any sample is read or allocated.
 * Bit 0 of the last byte puts a marker in the prompt (else the media go before the text).
 * Every call's status and answer are checked (fuzz_common.h); the session is reset after each
 * request so that runs do not depend on one another.
 */
#include "fuzz_common.h"

static mm_session *g_vision; /* tiny-llama + tiny-mmproj */
static mm_session *g_audio;  /* tiny-llama + tiny-audio-mmproj, when generated */
static fuzz_text g_text;

static void fuzz_init(void) {
    char path[4096];
    g_vision = fuzz_open("tiny-llama.gguf", "tiny-mmproj.gguf", 1024);
    if (fuzz_file_exists(fuzz_fixture(path, sizeof path, "tiny-audio-mmproj.gguf")))
        g_audio = fuzz_open("tiny-llama.gguf", "tiny-audio-mmproj.gguf", 1024);
}

static int ask_media(mm_session *s, int kind, const uint8_t *data, size_t size, uint32_t w, uint32_t h, bool marker) {
    mm_media m;
    memset(&m, 0, sizeof m);
    m.kind = kind;
    m.data = data;
    m.size = size;
    m.width = w;
    m.height = h;
    mm_ask_params a = mm_ask_params_default();
    a.prompt = marker ? "Look: <__media__> What is it?" : "What is it?";
    a.media = &m;
    a.n_media = 1;
    a.max_tokens = 1;
    a.temperature = 0.0f;
    int st = fuzz_ask(s, &a, &g_text);
    fuzz_reset(s);
    return st;
}

/* The audio session: count the positions (decode + mel), or ask (encoder too). */
static int audio_media(int kind, const uint8_t *data, size_t size, bool marker, bool ask) {
    if (ask) return ask_media(g_audio, kind, data, size, 0, 0, marker);
    mm_media m;
    memset(&m, 0, sizeof m);
    m.kind = kind;
    m.data = data;
    m.size = size;
    mm_ask_params a = mm_ask_params_default();
    a.prompt = marker ? "Listen: <__media__> What is it?" : "What is it?";
    a.media = &m;
    a.n_media = 1;
    uint32_t n = 0;
    int st = mm_session_count_tokens(g_audio, &a, &n);
    fuzz_check_status("mm_session_count_tokens", st);
    if (st == MM_OK && n == 0) FUZZ_DIE("count_tokens: 0 positions for a prompt with text and audio");
    return st;
}

static int fuzz_one(const uint8_t *data, size_t size) {
    bool marker = size && (data[size - 1] & 1);
    bool audio = g_audio && size && data[size - 1] == 0xA5;
    bool audio_ask = audio && size >= 2 && data[size - 2] == 0xA5;

    /* 1. The buffer as an encoded file. */
    ask_media(g_vision, MM_MEDIA_ENCODED, data, size, 0, 0, marker);
    if (audio) audio_media(MM_MEDIA_ENCODED, data, size, marker, audio_ask);

    /* 2. Raw RGB pixels, shape from the first bytes. */
    if (size >= 5) {
        uint32_t w = 1 + ((data[0] | (uint32_t)data[1] << 8) & 0x3FF);
        uint32_t h = 1 + ((data[2] | (uint32_t)data[3] << 8) & 0x3FF);
        uint8_t flags = data[4];
        const uint8_t *pix = data + 5;
        size_t n = size - 5;
        if ((flags & 1) && n >= 3 * (size_t)w) h = (uint32_t)(n / (3 * (size_t)w));
        if (flags & 2) {
            if (flags & 8) w = 0; else h = 0;
        }
        if ((flags & 4) && n > 0) n--;
        int st = ask_media(g_vision, MM_MEDIA_RGB, pix, n, w, h, marker);
        /* Documented: size must be at least width * height * 3, and an empty image is refused. */
        if (st == MM_OK && (w == 0 || h == 0 || n < (size_t)w * h * 3))
            FUZZ_DIE("raw RGB %ux%u with %zu bytes was accepted", w, h, n);
    }

    /* 2b. Sizes that lie. */
    if (size >= 13 && (data[4] & 0x10)) {
        uint32_t w = data[5] | (uint32_t)data[6] << 8 | (uint32_t)data[7] << 16 | (uint32_t)data[8] << 24;
        uint32_t h = data[9] | (uint32_t)data[10] << 8 | (uint32_t)data[11] << 16 | (uint32_t)data[12] << 24;
        int st = ask_media(g_vision, MM_MEDIA_RGB, data + 13, size - 13, w, h, marker);
        unsigned __int128 need = (unsigned __int128)w * h * 3;
        if (st == MM_OK && (w == 0 || h == 0 || need > size - 13))
            FUZZ_DIE("raw RGB %ux%u with %zu bytes was accepted", w, h, size - 13);
        if (g_audio) {
            size_t lie = (size_t)MM_MAX_AUDIO_SECONDS * 16000 * 4 + (((size_t)w << 32 | h) >> 8);
            st = audio_media(MM_MEDIA_PCM_F32, data, lie, marker, false);
            if (st != MM_ERR_INVALID_ARGUMENT) FUZZ_DIE("PCM claiming %zu bytes returned %d, not MM_ERR_INVALID_ARGUMENT", lie, st);
        }
    }

    /* 3. The whole buffer as f32 PCM samples. */
    int st = ask_media(g_vision, MM_MEDIA_PCM_F32, data, size, 0, 0, marker);
    if (st == MM_OK) FUZZ_DIE("PCM audio accepted by a session without an audio encoder");
    if (audio) {
        st = audio_media(MM_MEDIA_PCM_F32, data, size, marker, audio_ask);
        if (st == MM_OK && (size == 0 || size % 4)) FUZZ_DIE("PCM data of %zu bytes (not whole f32 samples) was accepted", size);
    }
    return 0;
}
