//! Shell completions and man pages, generated from a program's clap
//! definition, as ripgrep does: `PROGRAM --generate KIND` prints one to
//! stdout, so what is installed always matches the binary.
//!
//! ```
//! let mut page = Vec::new();
//! iris_app::generate::write("man", clap::Command::new("demo").about("Demo."), &mut page)?;
//! assert!(String::from_utf8(page)?.starts_with(".ie"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use clap_complete::Shell;

/// The flag, checked before clap parses anything (so a program with a
/// required subcommand takes it alone).
pub const FLAG: &str = "--generate";

/// What `--generate` makes: `man`, or `complete-SHELL`.
pub const KINDS: [&str; 6] = [
    "man",
    "complete-bash",
    "complete-zsh",
    "complete-fish",
    "complete-elvish",
    "complete-powershell",
];

/// Writes `kind` (one of [`KINDS`]) for `command` to `out`.
pub fn write(kind: &str, command: clap::Command, out: &mut dyn Write) -> Result<(), String> {
    let shell = match kind {
        "man" => {
            return clap_mangen::Man::new(command)
                .render(out)
                .map_err(|e| format!("cannot write the man page: {e}"));
        }
        "complete-bash" => Shell::Bash,
        "complete-zsh" => Shell::Zsh,
        "complete-fish" => Shell::Fish,
        "complete-elvish" => Shell::Elvish,
        "complete-powershell" => Shell::PowerShell,
        other => {
            return Err(format!(
                "unknown --generate kind {other:?}; expected one of: {}",
                KINDS.join(", ")
            ));
        }
    };
    let mut command = command;
    let name = command.get_name().to_owned();
    clap_complete::generate(shell, &mut command, name, out);
    Ok(())
}

/// If the program was run as `PROGRAM --generate KIND`, writes it to stdout
/// and returns the exit code (2 for a usage error); otherwise `None`, and
/// the program parses its arguments as usual.
pub fn from_args(command: impl FnOnce() -> clap::Command) -> Option<ExitCode> {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if args.first().is_none_or(|arg| arg != FLAG) {
        return None;
    }
    let kind = match args.as_slice() {
        [_, kind] => kind.to_string_lossy().into_owned(),
        _ => {
            eprintln!(
                "error: usage: {FLAG} KIND, alone; KIND is one of: {}",
                KINDS.join(", ")
            );
            return Some(ExitCode::from(2));
        }
    };
    let mut text = Vec::new();
    if let Err(e) = write(&kind, command(), &mut text) {
        eprintln!("error: {e}");
        return Some(ExitCode::from(2));
    }
    let mut stdout = std::io::stdout().lock();
    Some(
        match stdout.write_all(&text).and_then(|()| stdout.flush()) {
            // A reader that stopped early (`| head`) is no error.
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                eprintln!("error: cannot write to standard output: {e}");
                ExitCode::FAILURE
            }
            _ => ExitCode::SUCCESS,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command() -> clap::Command {
        clap::Command::new("prog").about("A program.").arg(
            clap::Arg::new("allow-legacy-md5")
                .long("allow-legacy-md5")
                .action(clap::ArgAction::SetTrue),
        )
    }

    #[test]
    fn every_kind_names_the_flags() {
        for kind in KINDS {
            let mut out = Vec::new();
            write(kind, command(), &mut out).expect(kind);
            let text = String::from_utf8(out).expect("UTF-8");
            // roff escapes the dashes of the man page.
            assert!(
                text.contains("allow-legacy-md5") || text.contains("allow\\-legacy\\-md5"),
                "{kind}: {text}"
            );
        }
    }

    #[test]
    fn an_unknown_kind_lists_the_known_ones() {
        let error = write("complete-tcsh", command(), &mut Vec::new()).expect_err("unknown");
        assert!(error.contains("complete-bash"), "{error}");
    }
}
