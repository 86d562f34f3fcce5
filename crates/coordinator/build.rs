//! Stamps the git commit into the library for `op_coordinator_build_info{version, commit}`, so a
//! dashboard tells which build each coordinator runs. Outside a git checkout (a crates.io tarball,
//! a source archive, no `git` installed) the commit is `unknown` and the build still succeeds.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(output.stdout).ok()?.trim().to_owned();
    (output.status.success() && !text.is_empty()).then_some(text)
}

fn main() {
    let commit = git(&["rev-parse", "--short", "HEAD"]);
    println!("cargo:rustc-env=OPC_GIT_COMMIT={}", commit.as_deref().unwrap_or("unknown"));
    println!("cargo:rerun-if-changed=build.rs");
    if commit.is_none() {
        return;
    }
    // Rebuild when HEAD moves: HEAD itself (a checkout), the branch it points at (a commit), and
    // packed-refs (a `git gc` moves the branch there). `--git-path` resolves all three in a linked
    // worktree too, where `.git` is a file.
    let mut watched = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    watched.extend(git(&["symbolic-ref", "-q", "HEAD"]));
    for path in watched {
        // Only existing files: cargo reruns the script on every build while a watched path is
        // missing (a repository without packed-refs), which would rebuild the crate every time.
        if let Some(resolved) = git(&["rev-parse", "--git-path", &path])
            && std::path::Path::new(&resolved).exists()
        {
            println!("cargo:rerun-if-changed={resolved}");
        }
    }
}
