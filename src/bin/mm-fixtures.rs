//! Writes the generated test models and image:
//! `mm-fixtures DIR [--seed N] [--proj-out N] [--size tiny|bench] [--audio]`.
//!
//! `--proj-out N` makes a projector whose output size is N instead of the text model's
//! embedding size (a mismatched pair, for tests). `--size bench` writes the larger pair of
//! `FixtureSpec::bench`. `--audio` adds `tiny-audio-mmproj.gguf` and `tiny-tone.wav`.

use std::path::PathBuf;
use std::process::ExitCode;

use mm_session::fixtures::{write_all, FixtureSpec};
use mm_session::fixtures_audio;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut dir = None;
    let mut spec = FixtureSpec::default();
    let mut audio = false;
    while let Some(arg) = args.next() {
        let mut number = |name: &str| args.next().and_then(|v| v.parse::<u64>().ok()).ok_or(format!("{name} needs a number"));
        let parsed = match arg.as_str() {
            "--seed" => number("--seed").map(|n| spec.seed = n),
            "--proj-out" => number("--proj-out").map(|n| spec.proj_out = Some(n as u32)),
            "--size" => match args.next().as_deref() {
                Some("tiny") => Ok(spec = FixtureSpec { seed: spec.seed, ..FixtureSpec::default() }),
                Some("bench") => Ok(spec = FixtureSpec { seed: spec.seed, ..FixtureSpec::bench() }),
                _ => Err("--size takes tiny or bench".to_string()),
            },
            "--audio" => Ok(audio = true),
            _ if dir.is_none() && !arg.starts_with('-') => Ok(dir = Some(PathBuf::from(&arg))),
            _ => Err(format!("unknown argument {arg}")),
        };
        if let Err(e) = parsed {
            eprintln!("mm-fixtures: {e}\nusage: mm-fixtures DIR [--seed N] [--proj-out N] [--size tiny|bench] [--audio]");
            return ExitCode::from(2);
        }
    }
    let Some(dir) = dir else {
        eprintln!("usage: mm-fixtures DIR [--seed N] [--proj-out N] [--size tiny|bench] [--audio]");
        return ExitCode::from(2);
    };
    let written = write_all(&dir, &spec).and_then(|_| match audio {
        true => fixtures_audio::write_audio_projector(&dir.join(fixtures_audio::AUDIO_MMPROJ_FILE), spec.n_embd, spec.seed)
            .and_then(|_| std::fs::write(dir.join(fixtures_audio::WAV_FILE), fixtures_audio::wav_tone(1.0, 16000, spec.seed)).map_err(|e| e.to_string())),
        false => Ok(()),
    });
    match written {
        Ok(()) => {
            println!("{}", dir.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mm-fixtures: {e}");
            ExitCode::FAILURE
        }
    }
}
