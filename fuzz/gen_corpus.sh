#!/bin/bash
# gen_corpus.sh FIXTURES CORPUS: writes the seed corpora of fuzz_media, fuzz_prompt, fuzz_params
# and fuzz_gguf into CORPUS/<target>/ from the generated fixtures and a few hand-made inputs
# (fuzz_state saves its own seeds: fuzz_state.c). The seeds are made here, never committed;
# the fuzzers add what they find to the same directories.
set -euo pipefail
fx=$1 out=$2
for f in tiny-llama.gguf tiny-mmproj.gguf tiny-image.png; do
  [ -f "$fx/$f" ] || { echo "gen_corpus: $fx/$f is missing (run mm-fixtures $fx --audio)"; exit 1; }
done
mkdir -p "$out"/{fuzz_media,fuzz_prompt,fuzz_params,fuzz_gguf}
seed() { printf "$2" > "$out/$1"; }  # seed TARGET/NAME PRINTF-FORMAT

# fuzz_media: the generated PNG and WAV, and one small file of each other format the library
# decodes (no JPEG/GIF encoder needed: these are written byte by byte).
m=fuzz_media
cp "$fx/tiny-image.png" "$out/$m/tiny-image.png"
[ -f "$fx/tiny-tone.wav" ] && { cp "$fx/tiny-tone.wav" "$out/$m/tiny-tone.wav"; { cat "$fx/tiny-tone.wav"; printf "\xa5\xa5"; } > "$out/$m/tiny-tone-audio.wav"; }
seed $m/p6.ppm 'P6\n2 2\n255\n\xff\x00\x00\x00\xff\x00\x00\x00\xff\xff\xff\xff'
seed $m/p5.pgm 'P5\n3 1\n255\n\x00\x80\xff'
seed $m/p4.pbm 'P4\n8 2\n\xa5\x5a'
seed $m/p3.ppm 'P3\n1 1\n255\n10 20 30\n'
seed $m/p1.pbm 'P1\n2 2\n0 1\n1 0\n'
# BMP: 2x2, 24 bits, bottom-up rows padded to 4 bytes.
seed $m/rgb.bmp 'BM\x46\x00\x00\x00\x00\x00\x00\x00\x36\x00\x00\x00\x28\x00\x00\x00\x02\x00\x00\x00\x02\x00\x00\x00\x01\x00\x18\x00\x00\x00\x00\x00\x10\x00\x00\x00\x13\x0b\x00\x00\x13\x0b\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\x00\xff\x00\x00\x00\xff\x00\x00\xff\xff\xff\x00\x00'
# GIF89a: 1x1, a 2-colour palette, LZW data for one pixel.
seed $m/dot.gif 'GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00\x21\xf9\x04\x01\x00\x00\x00\x00\x2c\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02\x44\x01\x00\x3b'
# Lossless WebP (VP8L, from cwebp -lossless): 1x1, one green pixel.
seed $m/dot.webp 'RIFF\x1c\x00\x00\x00WEBPVP8L\x0f\x00\x00\x00\x2f\x00\x00\x00\x00\x07\xd0\xff\x88\xfe\x07\x22\xa2\xff\x01\x00'
# The test media of tests/media/ (tests/media/README.md): a lossy WebP, a FLAC and an MP3, the
# audio ones also with the audio bytes.
media=$(cd "$(dirname "$0")/../tests/media" && pwd)
cp "$media/seeing-red-lossy.webp" "$out/$m/red-lossy.webp"
for f in tone.flac tone.mp3; do cp "$media/$f" "$out/$m/$f"; { cat "$media/$f"; printf '\xa5\xa5'; } > "$out/$m/audio-$f"; done
# Baseline JPEG: 8x8 grey, one quantisation table of ones, one-code Huffman tables (DC
# category 0, AC end-of-block), so the scan is the two bits 00 padded with ones.
seed $m/grey.jpg "\xff\xd8\xff\xdb\x00\x43\x00$(printf '\\x01%.0s' $(seq 64))\xff\xc0\x00\x0b\x08\x00\x08\x00\x08\x01\x01\x11\x00\xff\xc4\x00\x14\x00\x01$(printf '\\x00%.0s' $(seq 15))\x00\xff\xc4\x00\x14\x10\x01$(printf '\\x00%.0s' $(seq 15))\x00\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00\x3f\xff\xd9"
# Raw RGB: 7x5 (header: width-1, height-1 as 16-bit little endian, flags 0), 105 pixel bytes.
{ printf '\x06\x00\x04\x00\x00'; head -c 105 "$fx/tiny-image.png"; } > "$out/$m/rgb-7x5.raw"
# PCM f32: 1000 zero samples, and 500 samples of 0.5 ending in the audio byte 0xa5.
head -c 4000 /dev/zero > "$out/$m/pcm-zero.f32"
{ for i in $(seq 499); do printf '\x00\x00\x00\x3f'; done; printf '\x00\x00\x00\xa5'; } > "$out/$m/pcm-half-audio.f32"
seed $m/empty ''

# fuzz_prompt: byte 0 (mode, media, grammar, stops, overflow), byte 1 (max_tokens, sampling,
# file media, callback stop, small session, messages), then NUL-separated segments.
p=fuzz_prompt
seed $p/plain '\x00\x00The capital of France is'
seed $p/marker '\x04\x01Look at <__media__> and tell me.'
seed $p/two-media '\x08\x09<__media__> or <__media__>?'
seed $p/no-marker-media '\x0c\x00three pictures follow'
seed $p/bad-count '\x04\x00<__media__><__media__>'
seed $p/stops '\x60\x07the cat\x00e\x00th\x00 '
seed $p/grammar '\x10\x03answer:\x00root ::= "yes" | "no"'
seed $p/grammar-utf8 '\x10\x03pick\x00root ::= [a-z\\u00e9\\u4e2d]+ "." '
seed $p/special '\x00\x01<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n'
seed $p/invalid-utf8 '\x00\x00caf\xc3\x28 \xff\xfe'
seed $p/chat '\x01\x40\x00You are terse.\x00\x05What is this?\x00'
seed $p/chat-roles '\x01\xc3\x01Hello\x00\x02Hi!\x00\x03tool\x00{"x":1}\x00\x05<__media__> and now?'
seed $p/chat-overflow '\x83\x60\x00sys\x00\x0dtwo pictures\x00\x02ok\x00\x0dagain'
seed $p/count '\x06\x00count <__media__> me'
seed $p/count-chat '\x07\x40\x01hi\x00\x05look'
seed $p/small-ctx '\x04\x23<__media__> <__media__>'

# fuzz_params: byte 0 bit 0 = create; see fuzz_params.c for the fields that follow.
q=fuzz_params
seed $q/ask-default '\x00\x00\x00\x02\x00\x03\x00\x00\x00\x00\x00'
seed $q/ask-nan '\x00\x00\x01\x0f\x00\x0f\x00\x00\x00\x00'
seed $q/ask-stops '\x00\x06\x02\x02\x00\x03\x00\x00\x00\x00 \x00e\x00the'
seed $q/ask-grammar '\x00\x08\x01\x00\x00\x03\x00\x00\x00\x00root ::= [a-z]+'
seed $q/ask-size '\x00\x00\x00\x00\x00\x03\x00\x00\x00\x85\x01'
seed $q/create-text '\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00'
seed $q/create-vision '\x01\x65\x80\x0a\x00\x00\x00\x00\x00\x00\x00\x00\x00[img]'
seed $q/create-audio '\x01\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00'
seed $q/create-template '\x01\x41\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00{%% for m in messages %%}{{ m.content }}{%% endfor %%}'
seed $q/create-cancel '\x01\x11\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00'

# fuzz_gguf: the fixtures whole, cut short, and as header-only inputs ("GGHD", the fixture
# whose tensor data the harness appends, the header).
g=fuzz_gguf
i=0
for f in tiny-llama.gguf tiny-mmproj.gguf tiny-audio-mmproj.gguf; do
  [ -f "$fx/$f" ] || { i=$((i + 1)); continue; }
  n=$(cat "$fx/$f.data-start")
  cp "$fx/$f" "$out/$g/$f"
  head -c "$n" "$fx/$f" > "$out/$g/${f%.gguf}-header-only.gguf"
  head -c $((n + 1000)) "$fx/$f" > "$out/$g/${f%.gguf}-truncated.gguf"
  { printf 'GGHD'; printf "\\x0$i"; head -c "$n" "$fx/$f"; } > "$out/$g/${f%.gguf}.gghd"
  i=$((i + 1))
done
for t in fuzz_media fuzz_prompt fuzz_params fuzz_gguf; do
  echo "corpus/$t: $(ls "$out/$t" | wc -l) files"
done
