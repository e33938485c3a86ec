//! `cargo xtask generate [DIR]`: man pages and shell completions of both
//! binaries, from their clap definitions (each binary's `--generate KIND`),
//! written to DIR (`target/generated` by default) for packaging or install.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail, ensure};

use crate::process;

/// `--generate` kinds and the file each is written to, for program `name`.
fn outputs(name: &str) -> [(&'static str, PathBuf); 6] {
    [
        ("man", Path::new("man").join(format!("{name}.1"))),
        (
            "complete-bash",
            Path::new("completions").join(format!("{name}.bash")),
        ),
        (
            "complete-zsh",
            Path::new("completions").join(format!("_{name}")),
        ),
        (
            "complete-fish",
            Path::new("completions").join(format!("{name}.fish")),
        ),
        (
            "complete-elvish",
            Path::new("completions").join(format!("{name}.elv")),
        ),
        (
            "complete-powershell",
            Path::new("completions").join(format!("_{name}.ps1")),
        ),
    ]
}

/// Builds the binaries and writes every file; prints where.
pub(crate) fn run(args: &[String]) -> anyhow::Result<()> {
    let root = process::workspace_root();
    let out = match args {
        [] => process::target_dir(&root)?.join("generated"),
        [dir] if !dir.starts_with('-') => std::env::current_dir()
            .context("cannot read the current directory")?
            .join(dir),
        _ => bail!("usage: cargo xtask generate [DIR]"),
    };
    let programs = ["iris-listener", "iris-client"];
    let bin_dir = process::cargo_build(&root, false, &programs)?;
    for program in programs {
        let binary = process::binary(&bin_dir, program)?;
        for (kind, file) in outputs(program) {
            let path = out.join(file);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            let output = Command::new(&binary)
                .args(["--generate", kind])
                .stdin(Stdio::null())
                .output()
                .with_context(|| format!("cannot run {}", binary.display()))?;
            ensure!(
                output.status.success() && !output.stdout.is_empty(),
                "`{program} --generate {kind}` failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
            std::fs::write(&path, &output.stdout)
                .with_context(|| format!("cannot write {}", path.display()))?;
            println!("wrote {}", path.display());
        }
    }
    Ok(())
}
