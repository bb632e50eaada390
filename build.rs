//! Embeds the build id (`<git hash>-<profile>`) that `stoic health`, `stoic status`
//! and the status server report, and that the F1 certificate binds to.
//! Without git (a source tarball) the hash is `nogit`: the id is still non-empty and honest.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!s.is_empty()).then_some(s)
}

fn main() {
    let hash = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "nogit".to_owned());
    // No "-dirty" suffix: build.rs only reruns when HEAD or the index move, so a dirty flag
    // would go stale on unstaged edits and mislead in both directions.
    let profile = std::env::var("PROFILE").unwrap_or_else(|_| "unknown".to_owned());
    let id = format!("{hash}-{profile}");
    println!("cargo:rustc-env=STOIC_BUILD_ID={id}");
    // Rebuild the id when HEAD moves (new commit or branch switch) or the index changes.
    for p in ["HEAD", "index"] {
        if let Some(path) = git(&["rev-parse", "--git-path", p]) {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"]) {
        if let Some(path) = git(&["rev-parse", "--git-path", &r]) {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
