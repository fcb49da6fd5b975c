//! Writes the generated test models and image: `mm-fixtures DIR [--seed N] [--proj-out N]`.
//!
//! `--proj-out N` makes a projector whose output size is N instead of the text model's
//! embedding size (a mismatched pair, for tests).

use std::path::PathBuf;
use std::process::ExitCode;

use mm_session::fixtures::{write_all, FixtureSpec};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut dir = None;
    let mut spec = FixtureSpec::default();
    while let Some(arg) = args.next() {
        let mut number = |name: &str| args.next().and_then(|v| v.parse::<u64>().ok()).ok_or(format!("{name} needs a number"));
        let parsed = match arg.as_str() {
            "--seed" => number("--seed").map(|n| spec.seed = n),
            "--proj-out" => number("--proj-out").map(|n| spec.proj_out = Some(n as u32)),
            _ if dir.is_none() && !arg.starts_with('-') => Ok(dir = Some(PathBuf::from(&arg))),
            _ => Err(format!("unknown argument {arg}")),
        };
        if let Err(e) = parsed {
            eprintln!("mm-fixtures: {e}\nusage: mm-fixtures DIR [--seed N] [--proj-out N]");
            return ExitCode::from(2);
        }
    }
    let Some(dir) = dir else {
        eprintln!("usage: mm-fixtures DIR [--seed N] [--proj-out N]");
        return ExitCode::from(2);
    };
    match write_all(&dir, &spec) {
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
