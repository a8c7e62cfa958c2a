//! `madoguchi serve` stops gracefully on SIGTERM (exit 0 after "stopped"),
//! also when the signal comes right after start-up.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[cfg(unix)]
#[test]
fn sigterm_shuts_serve_down_gracefully() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_madoguchi"))
        .arg("serve")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("MADOGUCHI__STORAGE__DATABASE", dir.path().join("serve.db"))
        // Any free port: another serve (a benchmark) may hold the default.
        .env("MADOGUCHI__WEB__LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .env_remove("MADOGUCHI_DISCORD_TOKEN")
        .env_remove("MADOGUCHI_TEAMS_APP_SECRET")
        .stderr(Stdio::piped())
        .spawn()
        .expect("start serve");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    // Wait until it has said which channels are off (it is up).
    let mut line = String::new();
    while !line.contains("teams") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).expect("read") > 0,
            "serve ended early"
        );
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let mut rest = String::new();
    for l in stderr.lines() {
        rest.push_str(&l.expect("line"));
        rest.push('\n');
    }
    let exit = child.wait().expect("wait");
    assert!(exit.success(), "exit {exit}: {rest}");
    assert!(rest.contains("stopped"), "{rest}");
}
