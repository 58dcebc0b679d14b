//! `nfvi-verify bundle` and `verify` end to end with the real binary and the real
//! `ssh-keygen`: a host run is bundled with an ed25519 key, `ssh-keygen -Y verify` accepts
//! the signature, `verify` exits per the verdict, any changed byte of any member (or of the
//! bundle file) exits 3 naming it, and planted secrets never reach the bundle.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use nfvi_certify::archive::{Limits, read_strict, write_tar_gz};

const PW: &str = "Planted-Fake-Pw-4711";
const OS_PW: &str = "Planted-OS-Pw-0815";
const JWT: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6InBsYW50ZWQifQ.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6cGxhbnRlZCJ9.cGxhbnRlZC1zaWduYXR1cmU";
const KEY_BODY: &str = "UGxhbnRlZFByaXZhdGVLZXlCb2R5";
const ARCHIVE_TOKEN: &str = "planted-archive-token-not-used";
/// The body of a private key cut short inside results.json (no END line).
const CUT_KEY_BODY: &str = "UGxhbnRlZEN1dEtleUJvZHk";
const BLOCK_TOKEN: &str = "planted-block-token-4242";

fn have_ssh_keygen() -> bool {
    require(
        "ssh-keygen (openssh-client)",
        Command::new("ssh-keygen").arg("-?").output().is_ok(),
    )
}

struct Fixture {
    dir: tempfile::TempDir,
    run: PathBuf,
    key: PathBuf,
    signers: PathBuf,
    bundle: PathBuf,
    verdict: String,
}

fn sha256(path: &Path) -> String {
    nfvi_certify::manifest::sha256_hex(&std::fs::read(path).unwrap())
}

fn tar_gz(path: &Path, members: &[(&str, &str)]) {
    let m: Vec<(String, Vec<u8>)> = members
        .iter()
        .map(|(p, b)| ((*p).to_owned(), b.as_bytes().to_vec()))
        .collect();
    std::fs::write(path, write_tar_gz(&m, 0).unwrap()).unwrap();
}

/// A host run with planted secrets and two evidence files, bundled and signed.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let out = nfvi()
        .args(["run", "--suite", "host", "--no-progress", "--out"])
        .arg(&run)
        .output()
        .unwrap();
    assert!(matches!(out.status.code(), Some(0 | 1)), "{out:?}");
    // Secrets where operators leave them: the target, the log, evidence.
    let append = |name: &str, text: &str| {
        let p = run.join(name);
        let mut s = std::fs::read_to_string(&p).unwrap_or_default();
        s.push_str(text);
        std::fs::write(p, s).unwrap();
    };
    append(
        "target.toml",
        &format!("\n[registry]\npassword = \"{PW}\"\n"),
    );
    append(
        "nfvi-verify.log",
        &format!(
            "export OS_PASSWORD={OS_PW}\n-----BEGIN OPENSSH PRIVATE KEY-----\n{KEY_BODY}\n-----END OPENSSH PRIVATE KEY-----\n\
             openstack --os-password {OS_PW} server list\nauth:\n  token: >-\n    {BLOCK_TOKEN}\nnext: 1\n"
        ),
    );

    let e2e_log = write_file(
        dir.path(),
        "e2e.log",
        format!("I0101 using token {JWT}\nPASS\n"),
    );
    let sonobuoy = dir.path().join("sonobuoy_results.tar.gz");
    tar_gz(
        &sonobuoy,
        &[
            (
                "plugins/e2e/results/global/junit_01.xml",
                "<testsuites><testsuite name=\"e2e\" tests=\"1\"/></testsuites>\n",
            ),
            (
                "resources/ns/kube-system/secrets.json",
                &format!("{{\"token\": \"{ARCHIVE_TOKEN}\"}}"),
            ),
        ],
    );
    // The provenance a run with --evidence records (harness/core outcome.rs `Provenance`),
    // as matched to the cluster under test (otherwise the run would not be certifiable,
    // and its recorded certification would no longer agree with its checks).
    let results_path = run.join("results.json");
    let mut results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&results_path).unwrap()).unwrap();
    results["checks"][0]["evidence"]["provenance"] = serde_json::json!([
        {"tool": "kubernetes-e2e", "file": e2e_log.to_str().unwrap(), "sha256": sha256(&e2e_log),
         "identity": "Kubernetes v1.33.0", "identity_verified": true},
        {"tool": "sonobuoy", "file": sonobuoy.to_str().unwrap(), "sha256": sha256(&sonobuoy),
         "members": ["plugins/e2e/results/global/junit_01.xml"],
         "identity": "Kubernetes v1.33.0", "identity_verified": true}
    ]);
    // Truncated command output: a private key without its END line, inside a JSON string.
    let msg = results["checks"][0]["message"].as_str().unwrap().to_owned();
    results["checks"][0]["message"] =
        format!("{msg}\n-----BEGIN OPENSSH PRIVATE KEY-----\n{CUT_KEY_BODY}").into();
    std::fs::write(
        &results_path,
        serde_json::to_string_pretty(&results).unwrap(),
    )
    .unwrap();
    let verdict = results["verdict"].as_str().unwrap().to_owned();

    let key = dir.path().join("id_ed25519");
    succeed(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "ci", "-f"])
            .arg(&key),
    );
    let public = std::fs::read_to_string(dir.path().join("id_ed25519.pub")).unwrap();
    let signers = write_file(
        dir.path(),
        "allowed_signers",
        format!("ci@example.com namespaces=\"nfvi-verify\" {public}"),
    );
    let bundle = dir.path().join("B.tar.gz");
    let out = nfvi()
        .arg("bundle")
        .arg(&run)
        .arg("--sign")
        .arg(&key)
        .arg("--out")
        .arg(&bundle)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bundle failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_contains(&stdout, "secret(s) redacted");
    Fixture {
        dir,
        run,
        key,
        signers,
        bundle,
        verdict,
    }
}

fn verify(f: &Fixture, bundle: &Path) -> (i32, String) {
    let mut sig = bundle.as_os_str().to_owned();
    sig.push(".sig");
    let out = nfvi()
        .arg("verify")
        .arg(bundle)
        .arg("--allowed-signers")
        .arg(&f.signers)
        .arg("--signature")
        .arg(f.bundle.with_extension("gz.sig"))
        .output()
        .unwrap();
    let _ = sig;
    (
        out.status.code().unwrap(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn a_bundle_verifies_with_ssh_keygen_and_nfvi_verify_and_carries_no_secret() {
    if !have_ssh_keygen() {
        return;
    }
    let f = fixture();
    // Plain OpenSSH checks the signature without nfvi-verify.
    let out = Command::new("ssh-keygen")
        .args(["-Y", "verify", "-f"])
        .arg(&f.signers)
        .args(["-I", "ci@example.com", "-n", "nfvi-verify", "-s"])
        .arg(f.bundle.with_extension("gz.sig"))
        .stdin(std::fs::File::open(&f.bundle).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_contains(
        &String::from_utf8_lossy(&out.stdout),
        "Good \"nfvi-verify\" signature for ci@example.com",
    );

    // nfvi-verify: exit per the verdict, with the reason.
    let (code, text) = verify(&f, &f.bundle);
    assert_contains(
        &text,
        "signature    ok: good \"nfvi-verify\" signature for ci@example.com",
    );
    assert_contains(&text, "members      ok:");
    if f.verdict == "conformant" {
        assert_eq!(code, 0, "{text}");
    } else {
        assert_eq!(code, 1, "{text}");
        assert_contains(&text, &format!("the verdict is {}", f.verdict));
        assert_contains(&text, "VALID BUT NOT CERTIFIABLE");
    }
    // With an identity the file does not allow for the key: unverifiable.
    let out = nfvi()
        .arg("verify")
        .arg(&f.bundle)
        .arg("--allowed-signers")
        .arg(&f.signers)
        .args(["--identity", "mallory@example.com", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["outcome"], "unverifiable");
    assert_eq!(report["exit_code"], 3);
    assert_eq!(report["signature"]["ok"], false);
    assert_contains(
        report["signature"]["detail"][0].as_str().unwrap(),
        "not allowed for the identity",
    );

    // A signature made for another namespace is named as such, not as a change.
    let other = f.dir.path().join("N.tar.gz");
    std::fs::copy(&f.bundle, &other).unwrap();
    succeed(
        Command::new("ssh-keygen")
            .args(["-q", "-Y", "sign", "-n", "file", "-f"])
            .arg(&f.key)
            .arg(&other),
    );
    let out = nfvi()
        .arg("verify")
        .arg(&other)
        .arg("--allowed-signers")
        .arg(&f.signers)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert_contains(
        &text,
        "the signature's namespace is `file`, not `nfvi-verify`",
    );
    assert!(!text.contains("was changed"), "{text}");
    assert!(!text.contains("TAMPERED"), "{text}");

    // No planted secret in any member; each listed in the manifest.
    let members = read_strict(std::fs::File::open(&f.bundle).unwrap(), &Limits::DEFAULT).unwrap();
    let names: Vec<&str> = members.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(names[0], "manifest.json");
    for want in [
        "results.json",
        "junit.xml",
        "report.html",
        "badge.svg",
        "nfvi-verify.log",
        "target.toml",
        "evidence/1-e2e.log",
        "evidence/2-sonobuoy_results.tar.gz/plugins/e2e/results/global/junit_01.xml",
        "reference-model/data/suites/host.toml",
    ] {
        assert!(names.contains(&want), "no {want} in {names:?}");
    }
    for (name, bytes) in &members {
        let text = String::from_utf8_lossy(bytes);
        for secret in [
            PW,
            OS_PW,
            JWT,
            KEY_BODY,
            ARCHIVE_TOKEN,
            CUT_KEY_BODY,
            BLOCK_TOKEN,
        ] {
            assert!(!text.contains(secret), "{secret} left in {name}");
        }
    }
    let manifest: serde_json::Value = serde_json::from_slice(&members[0].1).unwrap();
    let redacted: Vec<(String, String)> = manifest["redactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["member"].as_str().unwrap().to_owned(),
                r["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for (member, kind) in [
        ("target.toml", "password"),
        ("nfvi-verify.log", "password"),
        ("nfvi-verify.log", "private-key"),
        ("evidence/1-e2e.log", "jwt"),
        ("results.json", "private-key"),
        ("nfvi-verify.log", "token"),
    ] {
        assert!(
            redacted.contains(&(member.to_owned(), kind.to_owned())),
            "{member} {kind} not in {redacted:?}"
        );
    }
    assert_eq!(manifest["bundle_format"], 1);
    assert_eq!(
        manifest["evidence"][1]["archive_members"][0],
        "plugins/e2e/results/global/junit_01.xml"
    );
    assert_eq!(
        manifest["tool"]["bundler_sha256"].as_str().unwrap().len(),
        64
    );
    // The same run bundled again gives the same bytes (deterministic headers, no clock).
    let again = f.dir.path().join("again.tar.gz");
    nfvi()
        .arg("bundle")
        .arg(&f.run)
        .arg("--sign")
        .arg(&f.key)
        .arg("--out")
        .arg(&again)
        .assert()
        .success();
    assert!(
        std::fs::read(&again).unwrap() == std::fs::read(&f.bundle).unwrap(),
        "bundling is not deterministic"
    );
}

#[test]
fn any_changed_byte_of_any_member_or_of_the_file_is_named() {
    if !have_ssh_keygen() {
        return;
    }
    let f = fixture();
    let members = read_strict(std::fs::File::open(&f.bundle).unwrap(), &Limits::DEFAULT).unwrap();
    let tampered = f.dir.path().join("T.tar.gz");
    for i in 0..members.len() {
        let mut m = members.clone();
        let name = m[i].0.clone();
        let bytes = &mut m[i].1;
        let at = if name == "manifest.json" {
            // Inside the run ID: still JSON, every hash intact.
            String::from_utf8_lossy(bytes)
                .find("\"run_id\": \"")
                .unwrap()
                + 12
        } else {
            bytes.len() / 2
        };
        bytes[at] ^= 0x01;
        std::fs::write(&tampered, write_tar_gz(&m, 0).unwrap()).unwrap();
        let (code, text) = verify(&f, &tampered);
        assert_eq!(code, 3, "{name}: {text}");
        assert_contains(&text, &format!("`{name}`"));
        assert_contains(&text, "TAMPERED");
    }
    // A member removed, and one added.
    let mut m = members.clone();
    let removed = m.remove(1).0;
    m.push(("extra.txt".to_owned(), b"x".to_vec()));
    std::fs::write(&tampered, write_tar_gz(&m, 0).unwrap()).unwrap();
    let (code, text) = verify(&f, &tampered);
    assert_eq!(code, 3, "{text}");
    assert_contains(&text, &format!("member `{removed}` is missing"));
    assert_contains(&text, "member `extra.txt` is not in the manifest");
    // One byte of the bundle file itself.
    let mut raw = std::fs::read(&f.bundle).unwrap();
    let mid = raw.len() / 2;
    raw[mid] ^= 0x01;
    std::fs::write(&tampered, &raw).unwrap();
    let (code, text) = verify(&f, &tampered);
    assert_eq!(code, 3, "{text}");
    assert_contains(&text, "signature    FAILED");
}

#[test]
fn bad_input_is_refused_with_exit_2() {
    if !have_ssh_keygen() {
        return;
    }
    let f = fixture();
    // No results.json.
    let empty = tempfile::tempdir().unwrap();
    assert_bad_input(
        nfvi()
            .arg("bundle")
            .arg(empty.path())
            .arg("--sign")
            .arg(&f.key),
        "has no results.json",
    );
    // An unreadable key, a passphrase-protected key.
    assert_bad_input(
        nfvi()
            .arg("bundle")
            .arg(&f.run)
            .arg("--sign")
            .arg(f.dir.path().join("nope")),
        "cannot read the key",
    );
    let enc = f.dir.path().join("enc");
    std::fs::copy(&f.key, &enc).unwrap();
    succeed(
        Command::new("ssh-keygen")
            .args(["-q", "-p", "-P", "", "-N", "not-a-real-passphrase", "-f"])
            .arg(&enc),
    );
    assert_bad_input(
        nfvi().arg("bundle").arg(&f.run).arg("--sign").arg(&enc),
        "ssh-keygen -Y sign -n nfvi-verify",
    );
    // Evidence changed since the run.
    std::fs::write(f.dir.path().join("e2e.log"), "changed\n").unwrap();
    assert_bad_input(
        nfvi()
            .arg("bundle")
            .arg(&f.run)
            .arg("--sign")
            .arg(&f.key)
            .arg("--out")
            .arg(f.dir.path().join("X.tar.gz")),
        "changed since the run",
    );
    assert!(!f.dir.path().join("X.tar.gz").exists());
    // verify: a malformed allowed_signers file, a file that is not a bundle.
    let bad = write_file(
        f.dir.path(),
        "bad_signers",
        "ci@example.com nosuchoption ssh-ed25519 AAAA\n",
    );
    assert_bad_input(
        nfvi()
            .arg("verify")
            .arg(&f.bundle)
            .arg("--allowed-signers")
            .arg(&bad),
        "line 1",
    );
    // Over the size cap, checked before reading (a sparse file: no disk used).
    let big = f.dir.path().join("big.tar.gz");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(nfvi_certify::verify::MAX_BUNDLE + 1)
        .unwrap();
    assert_bad_input(
        nfvi()
            .arg("verify")
            .arg(&big)
            .arg("--allowed-signers")
            .arg(&f.signers)
            .arg("--signature")
            .arg(f.bundle.with_extension("gz.sig")),
        "2 GiB",
    );
    let not = write_file(f.dir.path(), "not.tar.gz", "hello");
    std::fs::copy(
        f.bundle.with_extension("gz.sig"),
        f.dir.path().join("not.tar.gz.sig"),
    )
    .unwrap();
    assert_bad_input(
        nfvi()
            .arg("verify")
            .arg(&not)
            .arg("--allowed-signers")
            .arg(&f.signers),
        "not a bundle",
    );
}

/// A host run's directory and its results (it exits 1 on this machine, not conformant; its
/// results are what matters).
fn host_run() -> (
    tempfile::TempDir,
    PathBuf,
    nfvi_harness::results::RunResults,
) {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let _ = nfvi()
        .args(["run", "--suite", "host", "--no-progress", "--out"])
        .arg(&run)
        .output()
        .unwrap();
    let r = nfvi_harness::results::RunResults::load(&run.join("results.json")).unwrap();
    (dir, run, r)
}

/// Judges `r` again after an edit, and makes its verdict, totals and requirement statuses
/// agree with it (the certification is the caller's to record).
fn rejudge_host(r: &mut nfvi_harness::results::RunResults) -> nfvi_harness::judge::Rejudged {
    let model = nfvi_reference_model::load_embedded().unwrap();
    let j = nfvi_harness::judge::rejudge(r, &model, model.suite("host").unwrap(), None);
    r.verdict = j.verdict;
    r.totals = j.totals.clone();
    for (q, (_, s)) in r.requirements.iter_mut().zip(&j.statuses) {
        q.status = *s;
    }
    j
}

/// Writes `r` as the run's results.json, bundles and signs the run anew, and verifies the
/// bundle: the exit code and what verify printed.
fn sign_and_verify(
    dir: &Path,
    run: &Path,
    r: &nfvi_harness::results::RunResults,
) -> (Option<i32>, String) {
    std::fs::write(run.join("results.json"), r.to_json()).unwrap();
    let (key, signers) = signing_key(dir, "lab@example.com");
    let bundle = dir.join("B.tar.gz");
    bundle_run(run, &key, &bundle);
    let out = nfvi()
        .arg("verify")
        .arg(&bundle)
        .arg("--allowed-signers")
        .arg(&signers)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// A results.json edited by hand so that its failures weigh nothing (declared and effective
/// severity lowered to `may`), and judged again so that verdict, totals, statuses and
/// certification all agree with the edit: only what this build declares of its checks
/// gives it away.
#[test]
fn a_result_whose_declared_severity_was_lowered_is_named_as_tampering() {
    if !have_ssh_keygen() {
        return;
    }
    use nfvi_harness::check::Severity;
    let (dir, run, mut r) = host_run();
    let lowered: Vec<String> = r
        .checks
        .iter_mut()
        .filter(|c| c.decides_non_conformance(false))
        .map(|c| {
            c.severity = Severity::May;
            c.effective_severity = Severity::May;
            c.id.clone()
        })
        .collect();
    assert!(
        !lowered.is_empty(),
        "this machine fails mandatory host checks"
    );
    let j = rejudge_host(&mut r);
    assert!(j.problems.is_empty(), "{:?}", j.problems);
    r.certification = j.certification;
    let (code, text) = sign_and_verify(dir.path(), &run, &r);
    assert_eq!(code, Some(3), "{text}");
    assert_contains(
        &text,
        &format!("{}: recorded severity may, nfvi-verify", lowered[0]),
    );
}

/// A bundle signed before the rule that unobserved mandatory requirements stand in the way
/// of certification (its results.json records certifiable without that reason): verify
/// judges it by the rule, not certifiable with the reason, and does not call it tampered.
#[test]
fn a_bundle_from_before_the_unobserved_rule_is_judged_by_it_not_called_tampered() {
    if !have_ssh_keygen() {
        return;
    }
    use nfvi_harness::Status;
    let (dir, run, mut r) = host_run();
    // Every check of one mandatory requirement skipped, as when nothing could observe it.
    let req = r
        .requirements
        .iter()
        .find(|q| q.row.mandatory && q.row.applies && !q.row.checks.is_empty())
        .unwrap()
        .row
        .clone();
    for c in r.checks.iter_mut().filter(|c| req.checks.contains(&c.id)) {
        c.outcome = Status::Skipped;
    }
    let j = rejudge_host(&mut r);
    // What the older release recorded: every other reason, and not this one.
    let reasons: Vec<String> = j
        .certification
        .reasons
        .iter()
        .filter(|x| !x.contains(nfvi_harness::judge::UNOBSERVED))
        .cloned()
        .collect();
    assert!(
        reasons.len() < j.certification.reasons.len(),
        "{:?}",
        j.certification
    );
    r.certification.certifiable = reasons.is_empty();
    r.certification.reasons = reasons;
    let (code, text) = sign_and_verify(dir.path(), &run, &r);
    assert_eq!(code, Some(1), "{text}");
    assert_contains(&text, nfvi_harness::judge::UNOBSERVED);
    assert_contains(&text, req.id.as_str());
}

/// A bundle whose reference model was changed, with every hash and the signature made anew
/// (what a signer could do to loosen the rules it is judged by): valid, judged by its own
/// model, but not certifiable, since only the model a release embeds certifies.
#[test]
fn a_bundle_judged_by_another_reference_model_is_not_certifiable() {
    if !have_ssh_keygen() {
        return;
    }
    use nfvi_certify::manifest::{MODEL_PREFIX, Manifest, model_sha256, sha256_hex};
    let f = fixture();
    let mut members =
        read_strict(std::fs::File::open(&f.bundle).unwrap(), &Limits::DEFAULT).unwrap();
    let changed = "reference-model/data/suites/host.toml";
    let i = members.iter().position(|(p, _)| p == changed).unwrap();
    members[i]
        .1
        .extend_from_slice(b"\n# loosened by the signer\n");
    let model: Vec<(String, Vec<u8>)> = members
        .iter()
        .filter_map(|(p, b)| Some((p.strip_prefix(MODEL_PREFIX)?.to_owned(), b.clone())))
        .collect();
    let m = members
        .iter()
        .position(|(p, _)| p == "manifest.json")
        .unwrap();
    let mut manifest: Manifest = serde_json::from_slice(&members[m].1).unwrap();
    manifest.reference_model_sha256 =
        model_sha256(model.iter().map(|(p, b)| (p.as_str(), b.as_slice())));
    let entry = manifest
        .members
        .iter_mut()
        .find(|e| e.path == changed)
        .unwrap();
    entry.sha256 = sha256_hex(&members[i].1);
    entry.size = members[i].1.len() as u64;
    members[m].1 = serde_json::to_vec_pretty(&manifest).unwrap();
    let resigned = f.dir.path().join("M.tar.gz");
    std::fs::write(&resigned, write_tar_gz(&members, 0).unwrap()).unwrap();
    succeed(
        Command::new("ssh-keygen")
            .args(["-q", "-Y", "sign", "-n", "nfvi-verify", "-f"])
            .arg(&f.key)
            .arg(&resigned),
    );
    let out = nfvi()
        .arg("verify")
        .arg(&resigned)
        .arg("--allowed-signers")
        .arg(&f.signers)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(!text.contains("TAMPERED"), "{text}");
    assert_contains(&text, "differs from this binary's");
    assert_contains(&text, "not the one this nfvi-verify embeds");
}

/// A member of the run directory that is a symbolic link is refused, naming it: whoever can
/// write in the run directory cannot make `bundle` (run as root) pack another file, such as
/// /etc/shadow. The same run with the regular file bundles.
#[test]
fn a_run_member_that_is_a_link_is_never_packed() {
    if !have_ssh_keygen() {
        return;
    }
    let f = fixture();
    let secret = f.dir.path().join("shadow");
    std::fs::write(&secret, "root:$6$notahash:19000:0:99999:7:::\n").unwrap();
    let log = f.run.join("nfvi-verify.log");
    let kept = f.dir.path().join("log.kept");
    std::fs::rename(&log, &kept).unwrap();
    std::os::unix::fs::symlink(&secret, &log).unwrap();
    let out_file = f.dir.path().join("linked.tar.gz");
    let out = nfvi()
        .arg("bundle")
        .arg(&f.run)
        .arg("--sign")
        .arg(&f.key)
        .arg("--out")
        .arg(&out_file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_contains(&stderr, "nfvi-verify.log");
    assert_contains(&stderr, "symbolic link");
    assert!(!out_file.exists(), "a bundle was written");
    std::fs::remove_file(&log).unwrap();
    std::fs::rename(&kept, &log).unwrap();
    bundle_run(&f.run, &f.key, &out_file);
}
