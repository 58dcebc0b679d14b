//! Hostile, truncated and corrupted inputs: every one is an error naming the file and the
//! position, never a panic, and quick.

mod common;
use common::present;

use std::io::Write;
use std::path::{Path, PathBuf};

use nfvi_suite_evidence::ingest::{self, IngestError};

fn write(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

fn refused(path: &Path) -> IngestError {
    let e = ingest::ingest(path).expect_err("refused");
    let text = e.to_string();
    assert!(
        text.starts_with(&format!("evidence {}", path.display())),
        "{text}"
    );
    e
}

#[test]
fn every_real_file_truncated_is_refused_with_a_position() {
    let d = common::evidence_dir();
    let tmp = tempfile::tempdir().unwrap();
    for rel in [
        "k8s-e2e/cncf-v1.33-catalyst-cloud/junit_01.xml",
        "k8s-e2e/cncf-v1.24-openstack-magnum/junit_01.xml",
        "k8s-e2e/homelab-srv6-v1.32.0-2025-02-22/junit_01.xml",
        "kube-bench/newrelic-cis-1.23-k8s-1.25/kube-bench-output.json",
        "kube-bench/eks-1.0-2021/kube-bench-report.json",
        "tempest/tempest-calls-2016/calls.subunit",
        "tempest/stestr-sample-failure/failure.subunit",
        "tempest/mos8-tempest-2015/tempest-report.xml",
        "sonobuoy/sonobuoy-testdata-v0.9/results-0.9.tar.gz",
        "sonobuoy/aks-cmd-runner-v1.23.8/202207231508_sonobuoy_8650e677-fe8c-4d3f-87bd-7bd78b705a6b.tar.gz",
    ] {
        if !present(&d, rel) {
            continue;
        }
        let data = std::fs::read(d.join(rel)).unwrap();
        // The last cut drops the last byte that is not a trailing newline.
        let last = data.iter().rposition(|b| !b.is_ascii_whitespace()).unwrap();
        for cut in [
            data.len() / 7,
            data.len() / 3,
            data.len() / 2,
            data.len() * 4 / 5,
            last,
        ] {
            let name = format!("cut-{cut}-{}", rel.rsplit('/').next().unwrap());
            let p = write(tmp.path(), &name, &data[..cut]);
            assert!(
                ingest::ingest(&p).is_err(),
                "{rel} cut at {cut} of {} was accepted",
                data.len()
            );
            let e = refused(&p);
            assert!(
                e.at.is_some() || e.message.contains("truncated") || e.message.contains("EOF"),
                "{rel} at {cut}: {e}"
            );
        }
    }
}

#[test]
fn a_truncated_junit_names_the_line() {
    let tmp = tempfile::tempdir().unwrap();
    let p = write(tmp.path(), "junit_01.xml", b"<testsuites>\n  <testsuite name=\"Kubernetes e2e suite\">\n    <testcase name=\"[It] x\" status=\"passed\">");
    let e = refused(&p);
    assert_eq!(e.at.as_deref(), Some("line 3:45"), "{e}");
}

#[test]
fn billion_laughs_and_deep_nesting() {
    let tmp = tempfile::tempdir().unwrap();
    let mut lol =
        String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n <!ENTITY lol \"lol\">\n");
    for i in 1..10 {
        lol.push_str(&format!(
            " <!ENTITY lol{i} \"{}\">\n",
            format!("&lol{};", i - 1).repeat(10)
        ));
    }
    lol.push_str("]>\n<testsuite name=\"&lol9;\"/>");
    let e = refused(&write(tmp.path(), "lol.xml", lol.as_bytes()));
    assert!(
        e.message.contains("DOCTYPE") && e.at.as_deref() == Some("line 2:1"),
        "{e}"
    );

    let undefined = refused(&write(
        tmp.path(),
        "ent.xml",
        b"<testsuite name=\"&lol9;\"/>",
    ));
    assert!(undefined.message.contains("attribute"), "{undefined}");

    let deep = format!("<testsuites>{}", "<x>".repeat(100_000));
    assert!(
        refused(&write(tmp.path(), "deep.xml", deep.as_bytes()))
            .message
            .contains("deeper")
    );

    let json = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let e = refused(&write(tmp.path(), "deep.json", json.as_bytes()));
    assert!(
        e.at.as_deref().is_some_and(|a| a.starts_with("line 1:")),
        "{e}"
    );
    let obj = format!("{{\"Controls\":{}", "{\"a\":".repeat(100_000));
    assert!(
        refused(&write(tmp.path(), "deep2.json", obj.as_bytes()))
            .at
            .is_some()
    );
}

/// A gzip'd tar with the given (name, bytes) members, names written raw (`../` kept).
fn tarball(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let gz = flate2::write::GzEncoder::new(&mut out, flate2::Compression::fast());
        let mut b = tar::Builder::new(gz);
        for (name, data) in members {
            let mut h = tar::Header::new_gnu();
            h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap().finish().unwrap();
    }
    out
}

const V1: &[u8] = br#"<testsuite name="Kubernetes e2e suite" tests="1" failures="0"><testcase name="[sig-x] y [Conformance]" classname="Kubernetes e2e suite" time="1"></testcase></testsuite>"#;

#[test]
fn archives_skip_junk_and_refuse_escapes_and_bombs() {
    let tmp = tempfile::tempdir().unwrap();
    // macOS junk beside the real JUnit is ignored, and not recorded as read.
    let ok = tarball(&[
        (
            "plugins/e2e/results/global/._junit_01.xml",
            b"\x00\x05\x16\x07junk",
        ),
        ("plugins/e2e/results/global/junit_01.xml", V1),
        (
            "resources/ns/kube-system/Secrets.json",
            b"{\"token\":\"not read\"}",
        ),
    ]);
    let i = ingest::ingest(&write(tmp.path(), "ok.tar.gz", &ok)).unwrap();
    assert_eq!(
        i.provenance[0].members,
        vec!["plugins/e2e/results/global/junit_01.xml".to_owned()]
    );

    let escape = tarball(&[
        ("../../etc/evil", b"x"),
        ("plugins/e2e/results/global/junit_01.xml", V1),
    ]);
    let e = refused(&write(tmp.path(), "escape.tar.gz", &escape));
    assert!(e.message.contains("outside the archive"), "{e}");

    // A member inflating past 64 MiB: 65 MiB of zeros, 65 KiB compressed.
    let mut bomb = Vec::new();
    {
        let gz = flate2::write::GzEncoder::new(&mut bomb, flate2::Compression::fast());
        let mut b = tar::Builder::new(gz);
        let mut h = tar::Header::new_gnu();
        h.set_path("plugins/e2e/results/global/e2e.log").unwrap();
        let size = 65u64 << 20;
        h.set_size(size);
        h.set_cksum();
        b.append(&h, std::io::repeat(0).take_bytes(size)).unwrap();
        b.into_inner().unwrap().finish().unwrap();
    }
    assert!(bomb.len() < 1 << 20);
    let started = std::time::Instant::now();
    let e = refused(&write(tmp.path(), "bomb.tar.gz", &bomb));
    assert!(
        e.message.contains("64 MiB")
            && e.at.as_deref() == Some("member plugins/e2e/results/global/e2e.log"),
        "{e}"
    );
    assert!(started.elapsed().as_secs() < 5);

    let plain = refused(&write(
        tmp.path(),
        "other.tar.gz",
        &tarball(&[("hello.txt", b"hi")]),
    ));
    assert!(plain.message.contains("not a Sonobuoy"), "{plain}");
}

trait TakeBytes: std::io::Read + Sized {
    fn take_bytes(self, n: u64) -> std::io::Take<Self> {
        std::io::Read::take(self, n)
    }
}
impl<R: std::io::Read> TakeBytes for R {}

/// A small deterministic generator (no rand crate in the tree).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

#[test]
fn random_and_mutated_bytes_never_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = Lcg(0x5eed);
    let starts: [&[u8]; 6] = [b"\xb3", b"<", b"{", b"[", b"\x1f\x8b", b""];
    for n in 0..300 {
        let len = (rng.next() % 4096) as usize;
        let mut data: Vec<u8> = starts[n % starts.len()].to_vec();
        data.extend((0..len).map(|_| rng.next() as u8));
        let p = write(tmp.path(), &format!("r{n}"), &data);
        if let Err(e) = ingest::ingest(&p) {
            assert!(e.to_string().contains(&p.display().to_string()));
        }
    }
    let d = common::evidence_dir();
    for rel in [
        "tempest/stestr-sample-failure/failure.subunit",
        "kube-bench/eks-1.0-2021/kube-bench-report.json",
        "tempest/mos8-tempest-2015/tempest-report.xml",
        "sonobuoy/sonobuoy-testdata-v0.9/results-0.9.tar.gz",
    ] {
        if !present(&d, rel) {
            continue;
        }
        let data = std::fs::read(d.join(rel)).unwrap();
        for n in 0..40 {
            let mut m = data.clone();
            for _ in 0..(1 + n % 4) {
                let at = (rng.next() as usize) % m.len();
                m[at] = rng.next() as u8;
            }
            let _ = ingest::ingest(&write(tmp.path(), "m", &m));
        }
    }
    let mut w = std::fs::File::create(tmp.path().join("done")).unwrap();
    w.write_all(b"ok").unwrap();
}

#[test]
fn empty_and_unknown_files_list_the_accepted_kinds() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, data) in [
        ("empty", &b""[..]),
        ("text", b"hello world\n"),
        ("dir-less.yaml", b"a: 1\n"),
    ] {
        let e = refused(&write(tmp.path(), name, data));
        assert!(
            e.message.contains("not a supported kind") && e.message.contains("kube-bench JSON"),
            "{e}"
        );
    }
    let e = refused(tmp.path());
    assert!(e.message.contains("without junit_01.xml"), "{e}");
    let e = refused(&tmp.path().join("missing.xml"));
    assert!(e.message.contains("cannot"), "{e}");
}

/// A file beside the named evidence (e2e.log, PRODUCT.yaml, a submission directory's
/// junit_01.xml) that is a symbolic link is refused, naming it: whoever produced the directory
/// cannot make the run read, and a bundle pack, another file (here a stand-in for
/// /etc/shadow). The same files as regular copies are read.
#[test]
fn files_beside_the_evidence_are_never_read_through_a_link() {
    let d = common::evidence_dir();
    let rel = "k8s-e2e/cncf-v1.33-catalyst-cloud";
    if !present(&d, &format!("{rel}/junit_01.xml")) {
        return;
    }
    let secret_dir = tempfile::tempdir().unwrap();
    let secret = write(
        secret_dir.path(),
        "shadow",
        b"root:$6$notahash:19000:0:99999:7:::\n",
    );
    for (linked, named_dir) in [
        ("e2e.log", false),
        ("PRODUCT.yaml", false),
        ("junit_01.xml", true),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        for name in ["junit_01.xml", "e2e.log", "PRODUCT.yaml"] {
            let to = tmp.path().join(name);
            if name == linked {
                std::os::unix::fs::symlink(&secret, &to).unwrap();
            } else {
                std::fs::copy(d.join(rel).join(name), &to).unwrap();
            }
        }
        let named = if named_dir {
            tmp.path().to_owned()
        } else {
            tmp.path().join("junit_01.xml")
        };
        let e = ingest::ingest(&named).expect_err("a linked file beside the evidence");
        let text = e.to_string();
        assert!(text.contains(linked), "{text}");
        assert!(text.contains("a symbolic link"), "{text}");
        assert!(!text.contains("notahash"), "{text}");
        // The control: the same directory with a regular copy is read.
        std::fs::remove_file(tmp.path().join(linked)).unwrap();
        std::fs::copy(d.join(rel).join(linked), tmp.path().join(linked)).unwrap();
        let ok = ingest::ingest(&named).expect("regular files are read");
        assert_eq!(ok.provenance.len(), 3, "{linked}");
    }
}
