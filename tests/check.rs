//! `madoguchi check` reports each kind of broken content as the right single
//! line: every case in `tests/fixtures/check/cases.toml` copies the real
//! `flows/` and `locales/` into a temporary folder, applies one mutation (an
//! exact snippet of a real file, which must occur exactly once, replaced by a
//! broken version), runs the real binary and expects exit code 1 with one
//! problem line on stdout containing every expected substring (the file, the
//! node or message id and what is wrong). The unmodified content must pass.
//! All failing cases are reported together, each with its name and the full
//! output, so one content edit that breaks several snippets shows them all.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Cases {
    case: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    file: String,
    find: String,
    replace: String,
    expect: Vec<String>,
    /// Problem lines the mutation makes; 1 unless it is inherently two
    /// problems (the case's comment says why).
    #[serde(default = "one")]
    lines: usize,
}

fn one() -> usize {
    1
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn load_cases() -> Vec<Case> {
    let path = repo().join("tests/fixtures/check/cases.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let cases: Cases =
        toml::from_str(&text).unwrap_or_else(|e| panic!("{} is invalid: {e}", path.display()));
    cases.case
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create folder");
    for entry in std::fs::read_dir(from).expect("read folder") {
        let entry = entry.expect("folder entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

/// A fresh copy of the repository's content.
fn content_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary folder");
    copy_dir(&repo().join("flows"), &dir.path().join("flows"));
    copy_dir(&repo().join("locales"), &dir.path().join("locales"));
    dir
}

/// Runs `madoguchi check` on `dir/flows` and `dir/locales`, with no config
/// file or environment override that could change the default locale.
fn run_check(dir: &Path) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_madoguchi"));
    command
        .arg("check")
        .arg("--flows")
        .arg(dir.join("flows"))
        .arg("--locales")
        .arg(dir.join("locales"))
        .current_dir(dir)
        .env_remove("MADOGUCHI_CONFIG");
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("MADOGUCHI__") {
            command.env_remove(key);
        }
    }
    command.output().expect("run madoguchi check")
}

fn describe(output: &Output) -> String {
    format!(
        "exit code {:?}\n--- stdout\n{}--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Applies the case's mutation to a copy and checks the output; `Err` says
/// what is wrong, with the full output.
fn run_case(case: &Case) -> Result<(), String> {
    let dir = content_copy();
    let path = dir.path().join(&case.file);
    let text =
        std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", case.file))?;
    let found = text.matches(case.find.as_str()).count();
    if found != 1 {
        return Err(format!(
            "`find` occurs {found} times in {} (must be exactly once; update the snippet):\n{}",
            case.file, case.find
        ));
    }
    std::fs::write(&path, text.replacen(&case.find, &case.replace, 1))
        .map_err(|e| format!("cannot write {}: {e}", case.file))?;

    let output = run_check(dir.path());
    let stdout = String::from_utf8_lossy(&output.stdout).replace('\\', "/");
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut wrong = Vec::new();
    if output.status.code() != Some(1) {
        wrong.push("exit code is not 1".to_string());
    }
    if lines.len() != case.lines {
        wrong.push(format!(
            "{} problem line(s), expected {}",
            lines.len(),
            case.lines
        ));
    }
    if !lines
        .iter()
        .any(|line| case.expect.iter().all(|e| line.contains(e.as_str())))
    {
        wrong.push(format!("no line contains all of {:?}", case.expect));
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(format!("{}\n{}", wrong.join("; "), describe(&output)))
    }
}

#[test]
fn unmodified_content_passes() {
    let dir = content_copy();
    let output = run_check(dir.path());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.starts_with("ok:") && stdout.lines().count() == 1,
        "the repository's content must pass `madoguchi check`\n{}",
        describe(&output)
    );
}

#[test]
fn each_broken_fixture_is_reported_as_its_own_line() {
    let cases = load_cases();
    assert!(!cases.is_empty(), "no cases in cases.toml");
    let mut names = std::collections::HashSet::new();
    for case in &cases {
        assert!(
            names.insert(case.name.as_str()),
            "case name \"{}\" is used twice",
            case.name
        );
        assert!(
            !case.expect.is_empty() && case.lines >= 1,
            "case \"{}\" must expect something",
            case.name
        );
    }
    // A problem in the content itself would show up in every case: say so
    // once instead.
    let baseline = run_check(content_copy().path());
    assert!(
        baseline.status.success(),
        "the unmodified content already fails `madoguchi check`, so the cases cannot be judged\n{}",
        describe(&baseline)
    );

    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| {
            run_case(case)
                .err()
                .map(|why| format!("case \"{}\" ({}): {why}", case.name, case.file))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} case(s) failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}
