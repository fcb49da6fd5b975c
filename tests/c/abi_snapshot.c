/*
 * abi_snapshot.c: the released ABI of mm_session.h, pinned as literal numbers and checked by a
 * C compiler (tests/capi/abi.rs compiles it with gcc and with g++; it is never run).
 *
 * - Every struct's size and every field's offset. The rule for a new field: append it at the
 *   end of its struct (never in the middle, never in a reserved member), bump the version,
 *   and add here the offset of the new field, which is the size of the previous version (also
 *   listed in the library's *_VERSIONS table). Nothing already in this file may change, but
 *   for one thing: a struct's CHECK_SIZE moves to the section of its newest version, and the
 *   section it leaves says where the size it pinned is pinned now (the offset of the first
 *   field of the next version).
 * - Every constant the API takes or returns, by name and value: a constant documented in the
 *   docs or the header that is missing from the header does not compile here.
 */
#include <stddef.h>
#include "mm_session.h"

#ifdef __cplusplus
#define STATIC_CHECK(c, m) static_assert(c, m)
#else
#define STATIC_CHECK(c, m) _Static_assert(c, m)
#endif
#define CHECK_SIZE(T, n) STATIC_CHECK(sizeof(T) == (n), "sizeof " #T " changed")
#define CHECK_OFFSET(T, f, n) STATIC_CHECK(offsetof(T, f) == (n), "offset of " #T "." #f " changed")
#define CHECK_VALUE(c, v) STATIC_CHECK((c) == (v), #c " changed")

/* Layouts, version 1 (mm-session 0.1). */
CHECK_OFFSET(mm_session_params, struct_size, 0);
CHECK_OFFSET(mm_session_params, n_gpu_layers, 4);
CHECK_OFFSET(mm_session_params, model_path, 8);
CHECK_OFFSET(mm_session_params, mmproj_path, 16);
CHECK_OFFSET(mm_session_params, n_ctx, 24);
CHECK_OFFSET(mm_session_params, n_batch, 28);
CHECK_OFFSET(mm_session_params, n_threads, 32);
CHECK_OFFSET(mm_session_params, seed, 36);
CHECK_OFFSET(mm_session_params, mmproj_use_gpu, 40);
CHECK_OFFSET(mm_session_params, use_mmap, 41);
CHECK_OFFSET(mm_session_params, reserved0, 42);
CHECK_OFFSET(mm_session_params, media_marker, 48);
CHECK_OFFSET(mm_session_params, progress_callback, 56);
CHECK_OFFSET(mm_session_params, progress_user_data, 64);
CHECK_OFFSET(mm_session_params, chat_template, 72);
/* sizeof version 1: 32, the offset of mm_session_info.n_parallel (version 3). */
CHECK_OFFSET(mm_session_info, struct_size, 0);
CHECK_OFFSET(mm_session_info, n_ctx, 4);
CHECK_OFFSET(mm_session_info, n_past, 8);
CHECK_OFFSET(mm_session_info, supports_vision, 12);
CHECK_OFFSET(mm_session_info, supports_audio, 13);
CHECK_OFFSET(mm_session_info, reserved0, 14);
CHECK_OFFSET(mm_session_info, audio_sample_rate, 16);
CHECK_OFFSET(mm_session_info, reserved1, 20);
CHECK_OFFSET(mm_session_info, marker, 24);
CHECK_OFFSET(mm_memory_stats, struct_size, 0);
CHECK_OFFSET(mm_memory_stats, reserved0, 4);
CHECK_OFFSET(mm_memory_stats, model_host, 8);
CHECK_OFFSET(mm_memory_stats, model_gpu, 16);
CHECK_OFFSET(mm_memory_stats, kv_host, 24);
CHECK_OFFSET(mm_memory_stats, kv_gpu, 32);
CHECK_OFFSET(mm_memory_stats, compute_host, 40);
CHECK_OFFSET(mm_memory_stats, compute_gpu, 48);
CHECK_OFFSET(mm_memory_stats, projector_host, 56);
CHECK_OFFSET(mm_memory_stats, projector_gpu, 64);
CHECK_SIZE(mm_media, 40);
CHECK_OFFSET(mm_media, kind, 0);
CHECK_OFFSET(mm_media, width, 4);
CHECK_OFFSET(mm_media, height, 8);
CHECK_OFFSET(mm_media, reserved0, 12);
CHECK_OFFSET(mm_media, path, 16);
CHECK_OFFSET(mm_media, data, 24);
CHECK_OFFSET(mm_media, size, 32);
CHECK_SIZE(mm_message, 32);
CHECK_OFFSET(mm_message, role, 0);
CHECK_OFFSET(mm_message, text, 8);
CHECK_OFFSET(mm_message, media, 16);
CHECK_OFFSET(mm_message, n_media, 24);
/* sizeof version 1: 120, the offset of mm_ask_params.repeat_penalty (version 2). */
CHECK_OFFSET(mm_ask_params, struct_size, 0);
CHECK_OFFSET(mm_ask_params, max_tokens, 4);
CHECK_OFFSET(mm_ask_params, prompt, 8);
CHECK_OFFSET(mm_ask_params, media, 16);
CHECK_OFFSET(mm_ask_params, n_media, 24);
CHECK_OFFSET(mm_ask_params, temperature, 32);
CHECK_OFFSET(mm_ask_params, top_k, 36);
CHECK_OFFSET(mm_ask_params, top_p, 40);
CHECK_OFFSET(mm_ask_params, min_p, 44);
CHECK_OFFSET(mm_ask_params, seed, 48);
CHECK_OFFSET(mm_ask_params, reserved0, 52);
CHECK_OFFSET(mm_ask_params, stop, 56);
CHECK_OFFSET(mm_ask_params, n_stop, 64);
CHECK_OFFSET(mm_ask_params, on_text, 72);
CHECK_OFFSET(mm_ask_params, user_data, 80);
CHECK_OFFSET(mm_ask_params, messages, 88);
CHECK_OFFSET(mm_ask_params, n_messages, 96);
CHECK_OFFSET(mm_ask_params, grammar, 104);
CHECK_OFFSET(mm_ask_params, overflow, 112);
CHECK_OFFSET(mm_ask_params, reserved1, 116);
/* sizeof version 1: 48, the offset of mm_ask_info.prompt_tokens (version 2). */
CHECK_OFFSET(mm_ask_info, struct_size, 0);
CHECK_OFFSET(mm_ask_info, prompt_positions, 4);
CHECK_OFFSET(mm_ask_info, positions_reused, 8);
CHECK_OFFSET(mm_ask_info, tokens_evaluated, 12);
CHECK_OFFSET(mm_ask_info, media_encoded, 16);
CHECK_OFFSET(mm_ask_info, tokens_generated, 20);
CHECK_OFFSET(mm_ask_info, messages_dropped, 24);
CHECK_OFFSET(mm_ask_info, stop_reason, 28);
CHECK_OFFSET(mm_ask_info, prompt_ms, 32);
CHECK_OFFSET(mm_ask_info, generate_ms, 40);

/* Layouts, version 2 (mm-session 0.2): penalties, typical-p, DRY, logit bias, JSON Schema,
 * token log-probabilities and plain_prompt in mm_ask_params; prompt usage in mm_ask_info;
 * shared_by in mm_memory_stats; mm_fork_params. */
CHECK_OFFSET(mm_ask_params, repeat_penalty, 120);
CHECK_OFFSET(mm_ask_params, penalty_last_n, 124);
CHECK_OFFSET(mm_ask_params, frequency_penalty, 128);
CHECK_OFFSET(mm_ask_params, presence_penalty, 132);
CHECK_OFFSET(mm_ask_params, typical_p, 136);
CHECK_OFFSET(mm_ask_params, dry_multiplier, 140);
CHECK_OFFSET(mm_ask_params, dry_base, 144);
CHECK_OFFSET(mm_ask_params, dry_allowed_length, 148);
CHECK_OFFSET(mm_ask_params, dry_penalty_last_n, 152);
CHECK_OFFSET(mm_ask_params, n_probs, 156);
CHECK_OFFSET(mm_ask_params, logit_bias, 160);
CHECK_OFFSET(mm_ask_params, n_logit_bias, 168);
CHECK_OFFSET(mm_ask_params, json_schema, 176);
CHECK_OFFSET(mm_ask_params, on_token, 184);
CHECK_OFFSET(mm_ask_params, plain_prompt, 192);
CHECK_OFFSET(mm_ask_params, reserved2, 193);
/* sizeof version 2: 200 (mm_ask_params, unchanged in version 3); 64, the offset of
 * mm_ask_info.slot_wait_ms (version 3). */
CHECK_OFFSET(mm_ask_info, prompt_tokens, 48);
CHECK_OFFSET(mm_ask_info, media_items, 52);
CHECK_OFFSET(mm_ask_info, media_tokens, 56);
CHECK_OFFSET(mm_ask_info, media_positions, 60);
CHECK_SIZE(mm_logit_bias, 8);
CHECK_OFFSET(mm_logit_bias, token, 0);
CHECK_OFFSET(mm_logit_bias, bias, 4);
CHECK_SIZE(mm_token_logprob, 24);
CHECK_OFFSET(mm_token_logprob, token, 0);
CHECK_OFFSET(mm_token_logprob, logprob, 4);
CHECK_OFFSET(mm_token_logprob, text, 8);
CHECK_OFFSET(mm_token_logprob, len, 16);
/* sizeof version 2: 80, the offset of mm_memory_stats.context_shared_by (version 3). */
CHECK_OFFSET(mm_memory_stats, shared_by, 72);
CHECK_OFFSET(mm_memory_stats, reserved1, 76);
CHECK_SIZE(mm_fork_params, 24);
CHECK_OFFSET(mm_fork_params, struct_size, 0);
CHECK_OFFSET(mm_fork_params, n_ctx, 4);
CHECK_OFFSET(mm_fork_params, n_batch, 8);
CHECK_OFFSET(mm_fork_params, n_threads, 12);
CHECK_OFFSET(mm_fork_params, seed, 16);
CHECK_OFFSET(mm_fork_params, copy_conversation, 20);
CHECK_OFFSET(mm_fork_params, reserved0, 21);
/* sizeof version 2: 128, the offset of mm_session_params.n_parallel (version 3). */
CHECK_OFFSET(mm_session_params, rpc_servers, 80);
CHECK_OFFSET(mm_session_params, tensor_split, 88);
CHECK_OFFSET(mm_session_params, n_tensor_split, 96);
CHECK_OFFSET(mm_session_params, flash_attn, 104);
CHECK_OFFSET(mm_session_params, kv_type_k, 108);
CHECK_OFFSET(mm_session_params, kv_type_v, 112);
CHECK_OFFSET(mm_session_params, n_ubatch, 116);
CHECK_OFFSET(mm_session_params, use_mlock, 120);
CHECK_OFFSET(mm_session_params, reserved1, 121);

/* Layouts, version 3 (mm-session 0.3): sessions that decode together (n_parallel). */
CHECK_SIZE(mm_session_params, 136);
CHECK_OFFSET(mm_session_params, n_parallel, 128);
CHECK_OFFSET(mm_session_params, reserved2, 132);
CHECK_SIZE(mm_session_info, 40);
CHECK_OFFSET(mm_session_info, n_parallel, 32);
CHECK_OFFSET(mm_session_info, n_batch, 36);
CHECK_OFFSET(mm_ask_info, slot_wait_ms, 64);
CHECK_OFFSET(mm_ask_info, most_together, 72);
CHECK_OFFSET(mm_ask_info, reserved0, 76);
CHECK_SIZE(mm_memory_stats, 88);
CHECK_OFFSET(mm_memory_stats, context_shared_by, 80);
CHECK_OFFSET(mm_memory_stats, reserved2, 84);

/* Layouts, version 4 (the release after 0.3.0): tools, tool calls and reasoning. */
/* sizeof version 3: 200, the offset of mm_ask_params.message_ext (version 4). */
CHECK_SIZE(mm_ask_params, 248);
CHECK_OFFSET(mm_ask_params, message_ext, 200);
CHECK_OFFSET(mm_ask_params, tools, 208);
CHECK_OFFSET(mm_ask_params, tool_choice, 216);
CHECK_OFFSET(mm_ask_params, on_reasoning, 224);
CHECK_OFFSET(mm_ask_params, on_tool_call, 232);
CHECK_OFFSET(mm_ask_params, reasoning, 240);
CHECK_OFFSET(mm_ask_params, parallel_tool_calls, 244);
CHECK_OFFSET(mm_ask_params, reserved3, 245);
CHECK_SIZE(mm_message_ext, 32);
CHECK_OFFSET(mm_message_ext, tool_calls, 0);
CHECK_OFFSET(mm_message_ext, tool_call_id, 8);
CHECK_OFFSET(mm_message_ext, name, 16);
CHECK_OFFSET(mm_message_ext, reasoning_content, 24);
CHECK_SIZE(mm_tool_call_delta, 32);
CHECK_OFFSET(mm_tool_call_delta, index, 0);
CHECK_OFFSET(mm_tool_call_delta, id, 8);
CHECK_OFFSET(mm_tool_call_delta, name, 16);
CHECK_OFFSET(mm_tool_call_delta, arguments, 24);
/* sizeof version 3: 80, the offset of mm_ask_info.tool_calls (version 4). */
CHECK_SIZE(mm_ask_info, 88);
CHECK_OFFSET(mm_ask_info, tool_calls, 80);
CHECK_OFFSET(mm_ask_info, reserved1, 84);

/* Constants. */
CHECK_VALUE(MM_OK, 0);
CHECK_VALUE(MM_ERR_NULL_ARGUMENT, 1);
CHECK_VALUE(MM_ERR_INVALID_ARGUMENT, 2);
CHECK_VALUE(MM_ERR_INVALID_HANDLE, 3);
CHECK_VALUE(MM_ERR_FILE_NOT_FOUND, 4);
CHECK_VALUE(MM_ERR_NOT_A_FILE, 5);
CHECK_VALUE(MM_ERR_FILE_UNREADABLE, 6);
CHECK_VALUE(MM_ERR_WRONG_FILE_KIND, 7);
CHECK_VALUE(MM_ERR_MODEL_LOAD, 8);
CHECK_VALUE(MM_ERR_CONTEXT_CREATE, 9);
CHECK_VALUE(MM_ERR_PROJECTOR_LOAD, 10);
CHECK_VALUE(MM_ERR_PROJECTOR_MISMATCH, 11);
CHECK_VALUE(MM_ERR_CANCELLED, 12);
CHECK_VALUE(MM_ERR_UNSUPPORTED, 13);
CHECK_VALUE(MM_ERR_MEDIA_COUNT, 14);
CHECK_VALUE(MM_ERR_MEDIA_DECODE, 15);
CHECK_VALUE(MM_ERR_CONTEXT_FULL, 16);
CHECK_VALUE(MM_ERR_TOKENIZE, 17);
CHECK_VALUE(MM_ERR_EVAL, 18);
CHECK_VALUE(MM_ERR_STATE_CORRUPT, 19);
CHECK_VALUE(MM_ERR_STATE_MISMATCH, 20);
CHECK_VALUE(MM_ERR_IO, 21);
CHECK_VALUE(MM_ERR_BUSY, 22);
CHECK_VALUE(MM_ERR_FORKED, 23);
CHECK_VALUE(MM_ERR_REMOTE, 24);
CHECK_VALUE(MM_ERR_INTERNAL, 99);
CHECK_VALUE(MM_MEDIA_FILE, 1);
CHECK_VALUE(MM_MEDIA_ENCODED, 2);
CHECK_VALUE(MM_MEDIA_RGB, 3);
CHECK_VALUE(MM_MEDIA_PCM_F32, 4);
CHECK_VALUE(MM_LOG_DEBUG, 1);
CHECK_VALUE(MM_LOG_INFO, 2);
CHECK_VALUE(MM_LOG_WARN, 3);
CHECK_VALUE(MM_LOG_ERROR, 4);
CHECK_VALUE(MM_LOG_OFF, 5);
CHECK_VALUE(MM_STOP_NONE, 0);
CHECK_VALUE(MM_STOP_EOG, 1);
CHECK_VALUE(MM_STOP_MAX_TOKENS, 2);
CHECK_VALUE(MM_STOP_STRING, 3);
CHECK_VALUE(MM_STOP_CALLBACK, 4);
CHECK_VALUE(MM_STOP_CONTEXT_FULL, 5);
CHECK_VALUE(MM_STOP_TOOL_CALLS, 6);
CHECK_VALUE(MM_REASONING_SEPARATE, 0);
CHECK_VALUE(MM_REASONING_INLINE, 1);
CHECK_VALUE(MM_REASONING_OFF, 2);
CHECK_VALUE(MM_MAX_TOOLS_BYTES, 65536u);
CHECK_VALUE(MM_OVERFLOW_FAIL, 0);
CHECK_VALUE(MM_OVERFLOW_DROP_OLDEST, 1);
CHECK_VALUE(MM_SEED_DEFAULT, 0xFFFFFFFFu);
CHECK_VALUE(MM_MAX_IMAGE_PIXELS, 67108864u);
CHECK_VALUE(MM_MAX_IMAGE_SIDE, 32768u);
CHECK_VALUE(MM_MAX_PARALLEL, 256u);
CHECK_VALUE(MM_MAX_AUDIO_SECONDS, 600u);
CHECK_VALUE(MM_VERSION_NUMBER, MM_VERSION_MAJOR * 10000 + MM_VERSION_MINOR * 100 + MM_VERSION_PATCH);
CHECK_VALUE(MM_FLASH_ATTN_AUTO, 0);
CHECK_VALUE(MM_FLASH_ATTN_OFF, 1);
CHECK_VALUE(MM_FLASH_ATTN_ON, 2);
CHECK_VALUE(MM_KV_F16, 0);
CHECK_VALUE(MM_KV_Q8_0, 1);
CHECK_VALUE(MM_KV_Q4_0, 2);
