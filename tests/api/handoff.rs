//! Referral hand-offs sealed and opened outside the server: `ketnoi
//! referral keygen|seal|open`, and their interoperation both ways with
//! libsodium through PyNaCl (docs/examples/referral_handoff.py), as an app
//! in Python would do it.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const CONTACT: &str = "Chị Lan, 0912 345 678, cần gặp luật sư";
const PYTHON: &str = "/usr/bin/python3";

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples/referral_handoff.py")
}

/// Runs `program` with `args`, `stdin` on its standard input.
fn run(program: impl AsRef<std::ffi::OsStr>, args: &[&str], stdin: &[u8]) -> Output {
    let mut command = Command::new(program);
    command
        .args(args)
        // No database is needed; make sure none is touched.
        .env_remove("DATABASE_URL")
        .env("KETNOI_DATA_DIR", "/nonexistent/ketnoi-handoff-test")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

/// Like [`run`], and it must succeed.
fn ok(program: impl AsRef<std::ffi::OsStr>, args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let output = run(program, args, stdin);
    assert!(
        output.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn ketnoi(args: &[&str], stdin: &[u8]) -> Vec<u8> {
    ok(env!("CARGO_BIN_EXE_ketnoi"), args, stdin)
}

/// The Python example, which needs PyNaCl: a missing one fails the test.
fn python(args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let check = Command::new(PYTHON)
        .args(["-c", "import nacl.public"])
        .output();
    assert!(
        check.as_ref().is_ok_and(|output| output.status.success()),
        "{PYTHON} cannot import PyNaCl (nacl), which the referral hand-off example needs; \
         run scripts/install-deps (it installs python3-nacl): {}",
        match &check {
            Ok(output) => String::from_utf8_lossy(&output.stderr).into_owned(),
            Err(error) => error.to_string(),
        }
    );
    let script = example();
    let mut all = vec![script.to_str().unwrap()];
    all.extend_from_slice(args);
    ok(PYTHON, &all, stdin)
}

fn line(bytes: Vec<u8>) -> String {
    let text = String::from_utf8(bytes).unwrap();
    assert!(
        text.ends_with('\n') && text.lines().count() == 1,
        "{text:?}"
    );
    text.trim_end().to_owned()
}

/// A key pair made by `ketnoi referral keygen`: the secret key's file, and
/// the public key it printed.
fn keygen(dir: &Path) -> (String, String) {
    let file = dir.join("org.key");
    let file = file.to_str().unwrap();
    let public = line(ketnoi(
        &["referral", "keygen", "--secret-key-file", file],
        b"",
    ));
    (file.to_owned(), public)
}

#[test]
fn keygen_writes_a_private_key_file_once() {
    let dir = tempfile::tempdir().unwrap();
    let (file, public) = keygen(dir.path());
    assert!(ketnoi::exchange::sealed::parse_public_key(&public).is_ok());
    let metadata = std::fs::metadata(&file).unwrap();
    assert_eq!(metadata.permissions().mode() & 0o777, 0o600);
    let secret = std::fs::read_to_string(&file).unwrap();
    assert_eq!(secret.trim_end().len(), 44, "32 bytes of base64");
    assert_ne!(secret.trim_end(), public);

    // An existing key is never overwritten.
    let again = run(
        env!("CARGO_BIN_EXE_ketnoi"),
        &["referral", "keygen", "--secret-key-file", &file],
        b"",
    );
    assert!(!again.status.success());
    assert!(again.stdout.is_empty());
    assert!(String::from_utf8_lossy(&again.stderr).contains("never overwritten"));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), secret);
}

#[test]
fn ketnoi_seals_and_opens_and_tells_a_wrong_key() {
    let dir = tempfile::tempdir().unwrap();
    let (file, public) = keygen(dir.path());
    let sealed = line(ketnoi(
        &["referral", "seal", "--public-key", &public],
        CONTACT.as_bytes(),
    ));
    // As the API takes it.
    assert!(ketnoi::exchange::sealed::decode_handoff(&sealed).is_ok());
    let opened = ketnoi(
        &["referral", "open", "--secret-key-file", &file],
        sealed.as_bytes(),
    );
    assert_eq!(String::from_utf8(opened).unwrap(), CONTACT);

    // Another organisation's key does not open it, and says so without
    // showing anything.
    let other = tempfile::tempdir().unwrap();
    let (other_file, _) = keygen(other.path());
    let refused = run(
        env!("CARGO_BIN_EXE_ketnoi"),
        &["referral", "open", "--secret-key-file", &other_file],
        sealed.as_bytes(),
    );
    assert!(!refused.status.success());
    assert!(refused.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("does not open"), "{stderr}");
    assert!(!stderr.contains("0912"), "{stderr}");

    // A malformed public key is refused before anything is sealed.
    let bad = run(
        env!("CARGO_BIN_EXE_ketnoi"),
        &["referral", "seal", "--public-key", "AAAA"],
        CONTACT.as_bytes(),
    );
    assert!(!bad.status.success());
    assert!(bad.stdout.is_empty());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("32 bytes"));
}

#[test]
fn ketnoi_seals_and_python_opens() {
    let dir = tempfile::tempdir().unwrap();
    let (file, public) = keygen(dir.path());
    let sealed = ketnoi(
        &["referral", "seal", "--public-key", &public],
        CONTACT.as_bytes(),
    );
    let opened = python(&["open", "--secret-key-file", &file], &sealed);
    assert_eq!(String::from_utf8(opened).unwrap(), CONTACT);
}

#[test]
fn python_seals_and_ketnoi_opens() {
    let dir = tempfile::tempdir().unwrap();
    let (file, public) = keygen(dir.path());
    let sealed = line(python(
        &["seal", "--public-key", &public],
        CONTACT.as_bytes(),
    ));
    assert!(ketnoi::exchange::sealed::decode_handoff(&sealed).is_ok());
    let opened = ketnoi(
        &["referral", "open", "--secret-key-file", &file],
        sealed.as_bytes(),
    );
    assert_eq!(String::from_utf8(opened).unwrap(), CONTACT);
    // And the library opens it as the receiving organisation's app would.
    let secret = std::fs::read_to_string(&file).unwrap();
    let opened = ketnoi::exchange::sealed::open(secret.trim(), &sealed).unwrap();
    assert_eq!(opened, CONTACT.as_bytes());
}
