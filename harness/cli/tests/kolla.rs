//! The OpenStack API checks against the lab's real Keystone, and the faults a user meets:
//! a wrong password, an unreachable identity service, an endpoint answering HTML.

mod common;

use std::io::{Read, Write};

use common::{
    assert_contains, check, docker_answers, nfvi, require, run_to, succeed, temp_file, text,
    write_file,
};

const OPENRC: &str = "/var/lib/nfvi-verify/lab/admin-openrc.sh";

fn keystone_up() -> bool {
    std::path::Path::new(OPENRC).is_file() && std::net::TcpStream::connect("127.0.0.1:5000").is_ok()
}

/// Whether `what` listens on `addr`; without it the test is skipped (see [`require`]).
fn require_listening(what: &str, addr: &str) -> bool {
    require(
        &format!("{what} on {addr} (run `nfvi-verify lab up`)"),
        std::net::TcpStream::connect(addr).is_ok(),
    )
}

/// Whether the lab's Keystone answers; without it the test is skipped (see [`require`]).
fn require_keystone() -> bool {
    require(
        "the lab's Keystone (run `nfvi-verify lab up`)",
        keystone_up(),
    )
}

/// Runs `--suite kolla` (narrowed by `filter` globs) with `target` as the target file, without
/// any OS_* credentials from the environment; returns the exit code, results.json and the
/// text of every artifact.
fn run_suite(
    dir: &std::path::Path,
    target: &str,
    filter: &[&str],
) -> (i32, serde_json::Value, String) {
    run_suite_env(dir, target, filter, &[])
}

/// [`run_suite`] with extra environment variables.
fn run_suite_env(
    dir: &std::path::Path,
    target: &str,
    filter: &[&str],
    env: &[(&str, &str)],
) -> (i32, serde_json::Value, String) {
    let target_file = write_file(dir, "t.toml", target);
    let out = dir.join("run");
    let mut cmd = nfvi();
    cmd.env_remove("OS_AUTH_URL")
        .env_remove("OS_CLOUD")
        .env_remove("NFVI_REGISTRY_PASSWORD")
        .envs(env.iter().copied())
        .args(["run", "--suite", "kolla"]);
    for f in filter {
        cmd.args(["--filter", f]);
    }
    let (code, r) = run_to(cmd.arg("--target").arg(&target_file), &out);
    let all = [
        "results.json",
        "junit.xml",
        "report.html",
        "nfvi-verify.log",
    ]
    .iter()
    .map(|f| std::fs::read_to_string(out.join(f)).unwrap_or_default())
    .collect::<String>();
    (code, r, all)
}

fn run_kolla(openrc: &std::path::Path, dir: &std::path::Path) -> (i32, serde_json::Value, String) {
    run_suite(
        dir,
        &format!("[openstack]\nopenrc = \"{}\"\n", openrc.display()),
        &[],
    )
}

#[test]
fn the_api_sequence_passes_against_the_lab_keystone_and_hides_the_password() {
    if !require_keystone() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (code, r, all) = run_kolla(std::path::Path::new(OPENRC), dir.path());
    assert_eq!(code, 0, "{}", r["checks"]);
    for c in r["checks"].as_array().unwrap() {
        // The all-in-one default set deploys neither Cinder nor Swift.
        let absent = ["kolla.api.block-storage", "kolla.api.object-store"];
        let expected = if absent.contains(&c["id"].as_str().unwrap()) {
            "skipped"
        } else {
            "passed"
        };
        assert_eq!(c["outcome"], expected, "{}: {}", c["id"], c["message"]);
    }
    for (id, needle) in [
        (
            "kolla.api.compute",
            "Nova serves v2.1 (microversions up to 2.100)",
        ),
        (
            "kolla.api.compute-services",
            "3 compute services up (1 nova-compute)",
        ),
        ("kolla.api.network-agents", "4 network agents alive"),
        ("kolla.api.orchestration", "Heat serves v1.0"),
    ] {
        let m = text(check(&r, id), "message");
        assert!(m.contains(needle), "{id}: {m}");
    }
    assert!(
        all.contains("<th>Kolla stage</th>")
            && all.contains(
                "<tr><td>post-deploy (API smoke tests on its openrc)</td><td class=\"num\">"
            ),
        "the HTML groups the kolla results by Kolla stage"
    );
    let password = std::fs::read_to_string(OPENRC).unwrap();
    let password = password
        .lines()
        .find_map(|l| l.strip_prefix("export OS_PASSWORD="))
        .unwrap()
        .trim_matches('\'');
    assert!(
        !all.contains(password),
        "the password leaked into an artifact"
    );
    assert!(
        !all.contains("gAAAA"),
        "a fernet token leaked into an artifact"
    );
}

#[test]
fn a_wrong_password_fails_the_token_checks_naming_the_cause() {
    if !require_keystone() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let openrc = std::fs::read_to_string(OPENRC).unwrap();
    let wrong: String = openrc
        .lines()
        .map(|l| {
            if l.starts_with("export OS_PASSWORD=") {
                "export OS_PASSWORD='not-the-password-123'".to_owned()
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let rc = write_file(dir.path(), "wrong-openrc.sh", wrong);
    let (code, r, all) = run_kolla(&rc, dir.path());
    assert_eq!(code, 1);
    assert_eq!(
        check(&r, "kolla.api.identity-discovery")["outcome"],
        "passed"
    );
    let issue = check(&r, "kolla.api.token-issue");
    assert_eq!(issue["outcome"], "failed");
    let m = text(issue, "message");
    assert!(m.contains("401") && m.contains("wrong password"), "{m}");
    assert!(
        !all.contains("not-the-password-123"),
        "the password leaked into an artifact"
    );
}

/// An openrc in `dir` for an identity service on 127.0.0.1:`port`.
fn local_openrc(dir: &std::path::Path, port: u16) -> std::path::PathBuf {
    write_file(
        dir,
        "openrc.sh",
        format!(
            "export OS_AUTH_URL=http://127.0.0.1:{port}/v3\nexport OS_USERNAME=admin\nexport OS_PASSWORD=x\nexport OS_PROJECT_NAME=admin\n"
        ),
    )
}

#[test]
fn an_unreachable_or_non_json_identity_service_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (code, r, _) = run_kolla(&local_openrc(dir.path(), 1), dir.path());
    assert_eq!(code, 3);
    let d = check(&r, "kolla.api.identity-discovery");
    assert_eq!(d["outcome"], "error");
    assert_contains(text(d, "message"), "cannot reach http://127.0.0.1:1/v3");

    // An "identity service" that answers HTML.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten().take(8) {
            let mut conn = conn;
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n<html><body>Welcome to nginx!</body></html>");
        }
    });
    let dir2 = tempfile::tempdir().unwrap();
    let (_, r, _) = run_kolla(&local_openrc(dir2.path(), port), dir2.path());
    let d = check(&r, "kolla.api.identity-discovery");
    assert_contains(text(d, "message"), "text/html instead of JSON");
}

fn docker(args: &[&str]) -> String {
    succeed(std::process::Command::new("docker").args(args))
}

/// Removes the test's own containers, whatever the outcome. (Not the probe label: the
/// Docker tests count probe leftovers concurrently.)
struct Containers(Vec<String>);

impl Drop for Containers {
    fn drop(&mut self) {
        for c in &self.0 {
            let _ = std::process::Command::new("docker")
                .args(["rm", "-f", c])
                .output();
        }
    }
}

/// Starts a Kolla-shaped container of the test's own (host network, Kolla labels) with the
/// given health test and command.
fn kolla_shaped(name: &str, health: &str, command: &str) {
    kolla_shaped_with(name, health, command, "no");
}

/// [`kolla_shaped`] with a Docker restart policy.
fn kolla_shaped_with(name: &str, health: &str, command: &str, restart: &str) {
    run_ours(
        name,
        &[
            "--restart",
            restart,
            "--label",
            "maintainer=Kolla Project (https://launchpad.net/kolla)",
            "--label",
            "name=test",
            "--label",
            "kolla_version=test",
            "--health-cmd",
            health,
            "--health-interval",
            "1s",
            "--health-retries",
            "1",
            "nfvi-verify/busybox:lab",
            "sh",
            "-c",
            command,
        ],
    );
}

/// Starts a detached container `name` on the host network with the label that marks the
/// test's own containers, and `args` for the rest of `docker run`.
fn run_ours(name: &str, args: &[&str]) -> String {
    let ours = [
        "run",
        "-d",
        "--name",
        name,
        "--network",
        "host",
        "--label",
        "io.nfvi-verify.test=kolla",
    ];
    docker(&[&ours[..], args].concat())
}

#[test]
fn stopped_unhealthy_missing_and_flapping_containers_are_named() {
    if !require(
        "a Docker daemon with the lab's image (run `nfvi-verify lab up`)",
        docker_answers(),
    ) {
        return;
    }
    let p = format!("nfv-kt{}", std::process::id());
    let [good, sick, stopped, flappy, missing] =
        ["good", "sick", "stopped", "flappy", "missing"].map(|s| format!("{p}-{s}"));
    let _guard = Containers(vec![
        good.clone(),
        sick.clone(),
        stopped.clone(),
        flappy.clone(),
    ]);
    kolla_shaped(&good, "exit 0", "exec sleep 600");
    kolla_shaped(&sick, "echo probe-says-broken; exit 1", "exec sleep 600");
    kolla_shaped(&stopped, "exit 0", "exec sleep 600");
    docker(&["stop", "-t", "1", &stopped]);
    // Dies on start, and Docker keeps restarting it (Kolla before 2023.1 used a restart
    // policy; the restarts count as deaths either way).
    // The policy is set at creation: the container exits at once, and a stopped container
    // cannot be updated.
    kolla_shaped_with(&flappy, "exit 0", "exit 3", "always");
    std::thread::sleep(std::time::Duration::from_millis(1500));

    let dir = tempfile::tempdir().unwrap();
    let (code, r, _) = run_suite(
        dir.path(),
        &format!(
            "[openstack]\nopenrc = \"{OPENRC}\"\n[kolla]\ncontainers = [\"{good}\", \"{sick}\", \"{stopped}\", \"{flappy}\", \"{missing}\"]\n"
        ),
        &["kolla.containers.*"],
    );
    assert_eq!(code, 1, "non-conformant");
    let msg = |id: &str| {
        let c = check(&r, id);
        assert_eq!(c["outcome"], "failed", "{id}: {}", c["message"]);
        text(c, "message").to_owned()
    };
    let running = msg("kolla.containers.running");
    assert!(running.contains(&format!("{stopped}: exited")), "{running}");
    assert!(
        running.contains(&format!("{missing}: missing")),
        "{running}"
    );
    assert!(!running.contains(&format!("{good}:")), "{running}");
    assert!(!running.contains(&format!("{sick}:")), "{running}");
    let healthy = msg("kolla.containers.healthy");
    assert!(
        healthy.contains(&format!("{sick} is unhealthy")) && healthy.contains("probe-says-broken"),
        "{healthy}"
    );
    assert!(!healthy.contains(&good), "{healthy}");
    let flapping = msg("kolla.containers.flapping");
    assert!(flapping.contains(&format!("{flappy} ")), "{flapping}");
    assert!(
        !flapping.contains(&stopped),
        "one death is not a loop: {flapping}"
    );
    assert_eq!(
        check(&r, "kolla.containers.host-network")["outcome"],
        "passed"
    );
}

#[test]
fn an_unknown_kolla_release_is_bad_input() {
    let (_dir, target) = temp_file("t.toml", "[kolla]\nrelease = \"zed\"\n");
    let a = nfvi()
        .args(["list", "--suite", "kolla", "--target"])
        .arg(&target)
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(
        err.contains("t.toml:2") && err.contains("`zed`") && err.contains("2025.1"),
        "{err}"
    );
}

#[test]
fn a_registry_without_the_images_or_unreachable_is_named() {
    if !require_listening("the lab's registry", "127.0.0.1:4000") {
        return;
    }
    let run = |kolla: &str| {
        let dir = tempfile::tempdir().unwrap();
        run_suite(
            dir.path(),
            &format!("[kolla]\n{kolla}\n"),
            &["kolla.registry.*"],
        )
        .1
    };
    // The lab registry holds the 2025.1 images; a tag nobody pushed is missing everywhere,
    // and a release with more services names exactly the images it adds.
    let r = run("image_tag = \"2025.1-no-such-tag\"");
    assert_eq!(check(&r, "kolla.registry.api")["outcome"], "passed");
    let m = check(&r, "kolla.registry.images");
    assert_eq!(m["outcome"], "failed");
    let msg = text(m, "message");
    assert!(msg.starts_with("32 of 32 images"), "{msg}");
    assert!(
        msg.contains("nova-api") && msg.contains(":2025.1-no-such-tag"),
        "{msg}"
    );

    let r = run("release = \"2025.2\"");
    let msg = text(check(&r, "kolla.registry.images"), "message").to_owned();
    assert!(
        msg.starts_with("2 of 34 images")
            && msg.ends_with("neutron-periodic-worker, neutron-rpc-server"),
        "{msg}"
    );

    let r = run("registry = \"http://127.0.0.1:1\"");
    for id in ["kolla.registry.api", "kolla.registry.images"] {
        let c = check(&r, id);
        assert_eq!(c["outcome"], "error", "{id}");
        assert_contains(text(c, "message"), "cannot reach http://127.0.0.1:1/v2/");
    }

    let r = run("registry = \"\"");
    assert_eq!(check(&r, "kolla.registry.api")["outcome"], "skipped");
}

#[test]
fn clouds_yaml_credentials_work_and_a_broken_file_is_named() {
    const CLOUDS: &str = "/var/lib/nfvi-verify/lab/clouds.yaml";
    if !require(
        "the lab's Keystone and clouds.yaml (run `nfvi-verify lab up`)",
        keystone_up() && std::path::Path::new(CLOUDS).is_file(),
    ) {
        return;
    }
    let run = |openstack: &str, dir: &std::path::Path| {
        let (code, r, _) = run_suite(
            dir,
            &format!("[openstack]\n{openstack}\n"),
            &["kolla.api.*"],
        );
        (code, r)
    };
    let dir = tempfile::tempdir().unwrap();
    let (code, r) = run(
        &format!("openrc = \"\"\ncloud = \"kolla-admin\"\nclouds_yaml = \"{CLOUDS}\""),
        dir.path(),
    );
    assert_eq!(code, 0, "{}", r["checks"]);
    assert_eq!(
        check(&r, "kolla.api.token-issue")["evidence"]["properties"]["credentials from"],
        format!("cloud `kolla-admin` in {CLOUDS}")
    );

    let (dir, broken) = temp_file(
        "clouds.yaml",
        "clouds:\n  kolla-admin:\n    auth: [unclosed\n",
    );
    let (code, r) = run(
        &format!(
            "cloud = \"kolla-admin\"\nclouds_yaml = \"{}\"",
            broken.display()
        ),
        dir.path(),
    );
    assert_eq!(code, 3, "undecided, not conformant");
    let m = check(&r, "kolla.api.token-issue");
    assert_eq!(m["outcome"], "error");
    let msg = text(m, "message");
    assert!(
        msg.starts_with(&format!("{}:", broken.display()))
            && msg.contains("not a valid clouds.yaml"),
        "{msg}"
    );
}

/// An HTTP service on loopback that answers every request with `reply`, or never answers
/// when `reply` is `None`: a broken identity service or a broken catalog endpoint.
fn fake_identity(reply: Option<&'static [u8]>) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten().take(8) {
            let mut conn = conn;
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            match reply {
                Some(r) => {
                    let _ = conn.write_all(r);
                }
                None => held.push(conn),
            }
        }
    });
    port
}

#[test]
fn an_identity_service_answering_500_or_hanging_is_named_within_the_deadline() {
    let port = fake_identity(Some(
        b"HTTP/1.0 500 Internal Server Error\r\nContent-Type: application/json\r\n\r\n{\"error\": {\"code\": 500}}",
    ));
    let dir = tempfile::tempdir().unwrap();
    let (code, r, _) = run_kolla(&local_openrc(dir.path(), port), dir.path());
    assert_eq!(code, 1, "a 500 is the NFVI's failure");
    let d = check(&r, "kolla.api.identity-discovery");
    assert_eq!(d["outcome"], "failed");
    assert_contains(text(d, "message"), "answered 500");

    let port = fake_identity(None);
    let dir = tempfile::tempdir().unwrap();
    let t0 = std::time::Instant::now();
    let (code, r, _) = run_kolla(&local_openrc(dir.path(), port), dir.path());
    assert_eq!(code, 3, "undecided");
    let d = check(&r, "kolla.api.identity-discovery");
    assert_eq!(d["outcome"], "error");
    assert_contains(text(d, "message"), "did not answer within 10 s");
    assert!(t0.elapsed() < std::time::Duration::from_secs(60), "no hang");
}

/// A Keystone region of the test's own in the lab's real Keystone, deleted with its
/// endpoints at the end; runs that use the lab's openrc (region RegionOne) never see it.
struct Region {
    admin: nfvi_lab::apis::KeystoneAdmin,
    id: String,
}

impl Region {
    fn new(tag: &str) -> Self {
        let admin = nfvi_lab::apis::KeystoneAdmin::connect().unwrap();
        let id = format!("nfvi-test-{tag}-{}", std::process::id());
        admin.region(&id).unwrap();
        Self { admin, id }
    }

    /// Adds an internal endpoint of `service_type` at `url` to the region.
    fn endpoint(&self, service_type: &str, url: &str) {
        let service = self.admin.service(service_type, service_type).unwrap();
        self.admin
            .endpoint(&service, "internal", &self.id, url)
            .unwrap();
    }

    /// The text of a target file whose `[openstack]` table names the lab's openrc pointed at
    /// this region (written into `dir`).
    fn target(&self, dir: &std::path::Path) -> String {
        let text = std::fs::read_to_string(OPENRC).unwrap().replace(
            "OS_REGION_NAME=RegionOne",
            &format!("OS_REGION_NAME={}", self.id),
        );
        let rc = write_file(dir, "region-openrc.sh", text);
        format!("[openstack]\nopenrc = \"{}\"\n", rc.display())
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        if let Err(e) = self.admin.delete_region(&self.id) {
            eprintln!("cleanup: {e}");
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Sets a heartbeat file's age.
fn heartbeat(dir: &std::path::Path, binary: &str, age_secs: u64) {
    let f = std::fs::File::create(dir.join(binary)).unwrap();
    f.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(age_secs))
        .unwrap();
}

/// Runs the lab's API stand-in for `container` (nova_api, neutron_server) on `port` with the
/// test's heartbeat directory, and waits until it answers.
fn api_of_our_own(name: &str, container: &str, port: u16, heartbeats: &std::path::Path) {
    let command = nfvi_lab::apis::api_command_on(container, port).unwrap();
    run_ours(
        name,
        &[
            "-v",
            &format!("{}:/heartbeats", heartbeats.display()),
            "nfvi-verify/busybox:lab",
            "sh",
            "-c",
            &command,
        ],
    );
    let t0 = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t0.elapsed().as_secs() < 20,
            "{name} did not answer on {port}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn a_compute_service_down_or_a_dead_agent_is_named_and_clears_when_it_reports_again() {
    if !require(
        "the lab's Keystone and Docker (run `nfvi-verify lab up`)",
        keystone_up() && docker_answers(),
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let beats = dir.path().join("heartbeats");
    std::fs::create_dir(&beats).unwrap();
    for b in ["nova-scheduler", "nova-compute", "neutron-dhcp-agent"] {
        heartbeat(&beats, b, 0);
    }
    // Older than the lab's down time: nova and neutron report these down and dead.
    heartbeat(&beats, "nova-conductor", 300);
    heartbeat(&beats, "neutron-l3-agent", 300);
    let pid = std::process::id();
    let (nova, neutron) = (
        format!("nfvi-test-nova-{pid}"),
        format!("nfvi-test-neutron-{pid}"),
    );
    let _containers = Containers(vec![nova.clone(), neutron.clone()]);
    let (nova_port, neutron_port) = (free_port(), free_port());
    api_of_our_own(&nova, "nova_api", nova_port, &beats);
    api_of_our_own(&neutron, "neutron_server", neutron_port, &beats);
    let region = Region::new("services");
    region.endpoint("compute", &format!("http://127.0.0.1:{nova_port}/v2.1"));
    region.endpoint("network", &format!("http://127.0.0.1:{neutron_port}"));
    let target = region.target(dir.path());
    let filter = ["kolla.api.compute*", "kolla.api.network*"];

    let (code, r, _) = run_suite(dir.path(), &target, &filter);
    assert_eq!(code, 1, "{}", r["checks"]);
    assert_eq!(check(&r, "kolla.api.compute")["outcome"], "passed");
    // (check, what its message names, what it leaves out)
    for (id, named, healthy) in [
        (
            "kolla.api.compute-services",
            ["nova-conductor@", "is down"],
            "nova-compute@",
        ),
        (
            "kolla.api.network-agents",
            ["neutron-l3-agent@", "L3 agent"],
            "dhcp",
        ),
    ] {
        let c = check(&r, id);
        assert_eq!(c["outcome"], "failed", "{id}");
        let m = text(c, "message");
        assert!(named.iter().all(|n| m.contains(n)), "{id}: {m}");
        assert!(!m.contains(healthy), "{id}: {m}");
    }

    // They report again: the documents follow within their 2 s refresh.
    heartbeat(&beats, "nova-conductor", 0);
    heartbeat(&beats, "neutron-l3-agent", 0);
    std::thread::sleep(std::time::Duration::from_secs(3));
    let dir2 = tempfile::tempdir().unwrap();
    let (code, r, _) = run_suite(dir2.path(), &target, &filter);
    assert_eq!(code, 0, "{}", r["checks"]);
    let m = text(check(&r, "kolla.api.compute-services"), "message").to_owned();
    assert!(m.contains("3 compute services up"), "{m}");
}

#[test]
fn a_catalog_endpoint_answering_500_or_never_is_named_within_the_deadline() {
    if !require_keystone() {
        return;
    }
    let broken = fake_identity(Some(
        b"HTTP/1.0 500 Internal Server Error\r\nContent-Type: text/html\r\n\r\n<html><body>Internal Server Error</body></html>",
    ));
    let (code, r, _) = run_with_image_endpoint("500", broken);
    assert_eq!(code, 1, "{}", r["checks"]);
    for id in IMAGE_CHECKS {
        let c = check(&r, id);
        assert_eq!(c["outcome"], "failed", "{id}");
        let m = text(c, "message");
        assert!(
            m.contains(&format!("127.0.0.1:{broken}")) && m.contains("answered 500"),
            "{id}: {m}"
        );
    }

    let silent = fake_identity(None);
    let (code, r, took) = run_with_image_endpoint("hang", silent);
    assert_eq!(code, 1, "{}", r["checks"]);
    for id in IMAGE_CHECKS {
        let m = text(check(&r, id), "message").to_owned();
        assert!(
            m.contains(&format!("127.0.0.1:{silent}")) && m.contains("did not answer within 10 s"),
            "{id}: {m}"
        );
    }
    assert!(took < std::time::Duration::from_secs(60), "no hang");
}

/// The checks that use the image endpoint of the catalog.
const IMAGE_CHECKS: [&str; 2] = ["kolla.api.endpoints", "kolla.api.image"];

/// Runs [`IMAGE_CHECKS`] against a region of the test's own whose image endpoint is
/// 127.0.0.1:`port`: the exit code, results.json and how long the run took.
fn run_with_image_endpoint(tag: &str, port: u16) -> (i32, serde_json::Value, std::time::Duration) {
    let region = Region::new(tag);
    region.endpoint("image", &format!("http://127.0.0.1:{port}"));
    let dir = tempfile::tempdir().unwrap();
    let target = region.target(dir.path());
    let t0 = std::time::Instant::now();
    let (code, r, _) = run_suite(dir.path(), &target, &IMAGE_CHECKS);
    (code, r, t0.elapsed())
}

/// A process the test started, ended by its PID at the end.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sh(cmd: &str, dir: &std::path::Path) {
    succeed(
        std::process::Command::new("sh")
            .args(["-c", cmd])
            .current_dir(dir),
    );
}

fn wait_for_port(port: u16) {
    let t0 = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t0.elapsed().as_secs() < 20, "nothing answers on {port}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn keystone_behind_tls_with_a_private_ca_needs_the_bundle_and_says_where_to_give_it() {
    if !require(
        "the lab's Keystone, socat and openssl (run `nfvi-verify lab up`; `cargo xtask deps --tests`)",
        keystone_up()
            && std::path::Path::new("/usr/bin/socat").exists()
            && std::path::Path::new("/usr/bin/openssl").exists(),
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A private CA and a server certificate for 127.0.0.1, as Kolla's `certificates` command
    // makes them, and a TLS front for the real Keystone as HAProxy is in Kolla.
    sh(
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj '/CN=nfvi-verify test CA' \
         && openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj '/CN=127.0.0.1' \
         && printf 'subjectAltName=IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\nextendedKeyUsage=serverAuth\\n' > ext \
         && openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 -extfile ext",
        d,
    );
    let port = free_port();
    let _front = Child(
        std::process::Command::new("socat")
            .arg(format!(
                "OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,cert={0}/srv.pem,key={0}/srv.key,verify=0",
                d.display()
            ))
            .arg("TCP:127.0.0.1:5000")
            .spawn()
            .unwrap(),
    );
    wait_for_port(port);
    let rc = write_file(
        d,
        "tls-openrc.sh",
        std::fs::read_to_string(OPENRC).unwrap().replace(
            "http://127.0.0.1:5000/v3",
            &format!("https://127.0.0.1:{port}/v3"),
        ),
    );
    let filter = ["kolla.api.identity-discovery", "kolla.api.token-*"];
    let target = |extra: &str| format!("[openstack]\nopenrc = \"{}\"\n{extra}\n", rc.display());

    let run = |extra: &str| {
        let sub = tempfile::tempdir_in(d).unwrap();
        let r = run_suite(sub.path(), &target(extra), &filter);
        (r.0, r.1)
    };
    let (code, r) = run("");
    assert_eq!(code, 3, "{}", r["checks"]);
    let m = text(check(&r, "kolla.api.token-issue"), "message").to_owned();
    assert!(
        m.contains("certificate is not trusted") && m.contains("UnknownIssuer"),
        "{m}"
    );
    assert!(
        m.contains("openstack.cacert"),
        "says where to give the bundle: {m}"
    );

    let (code, r) = run(&format!("cacert = \"{}/ca.pem\"", d.display()));
    assert_eq!(code, 0, "{}", r["checks"]);
    let t = check(&r, "kolla.api.token-validate");
    assert_eq!(t["outcome"], "passed");
    assert!(
        t["evidence"]["properties"]["TLS"]
            .as_str()
            .unwrap()
            .contains("ca.pem")
    );

    let (code, r) = run("insecure = true");
    assert_eq!(code, 0, "{}", r["checks"]);
    let tls = check(&r, "kolla.api.identity-discovery")["evidence"]["properties"]["TLS"].clone();
    assert_eq!(tls, "certificate verification disabled (insecure)");

    let (code, r) = run(&format!("cacert = \"{}/ext\"", d.display()));
    assert_eq!(code, 3);
    let m = text(check(&r, "kolla.api.token-issue"), "message").to_owned();
    assert!(m.contains("holds no certificate"), "{m}");
}

#[test]
fn a_registry_that_wants_credentials_gets_them_from_the_target_or_docker_login() {
    let python = "/var/lib/nfvi-verify/lab/keystone/venv/bin/python";
    if !require(
        "docker-registry and the lab's Keystone venv (for bcrypt) (run `nfvi-verify lab up`)",
        std::path::Path::new("/usr/bin/docker-registry").exists()
            && std::path::Path::new(python).exists(),
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hash = std::process::Command::new(python)
        .args([
            "-c",
            "import bcrypt; print(bcrypt.hashpw(b'reg-pass-7', bcrypt.gensalt(rounds=4)).decode())",
        ])
        .output()
        .unwrap();
    assert!(hash.status.success());
    std::fs::write(
        d.join("htpasswd"),
        format!("nfvi:{}", String::from_utf8(hash.stdout).unwrap()),
    )
    .unwrap();
    let port = free_port();
    std::fs::write(
        d.join("config.yml"),
        format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {0}/data\nhttp:\n  addr: 127.0.0.1:{port}\nauth:\n  htpasswd:\n    realm: nfvi-test\n    path: {0}/htpasswd\n",
            d.display()
        ),
    )
    .unwrap();
    let _registry = Child(
        std::process::Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(d.join("config.yml"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_port(port);
    let home = d.join("home");
    std::fs::create_dir_all(home.join(".docker")).unwrap();
    let home_s = home.to_str().unwrap().to_owned();
    let target =
        |extra: &str| format!("[kolla]\nregistry = \"http://127.0.0.1:{port}\"\n{extra}\n");
    let run = |extra: &str, env: &[(&str, &str)]| {
        let sub = tempfile::tempdir_in(d).unwrap();
        let mut env = env.to_vec();
        env.push(("HOME", &home_s));
        let r = run_suite_env(sub.path(), &target(extra), &["kolla.registry.api"], &env);
        let c = check(&r.1, "kolla.registry.api").clone();
        (r.0, c)
    };

    let (code, c) = run("", &[]);
    assert_eq!((code, c["outcome"].as_str().unwrap()), (3, "error"), "{c}");
    let m = text(&c, "message");
    assert!(
        m.contains("answered 401")
            && m.contains("Basic realm=\"nfvi-test\"")
            && m.contains("NFVI_REGISTRY_PASSWORD"),
        "{m}"
    );

    let (code, c) = run(
        "registry_username = \"nfvi\"",
        &[("NFVI_REGISTRY_PASSWORD", "reg-pass-7")],
    );
    assert_eq!((code, c["outcome"].as_str().unwrap()), (0, "passed"), "{c}");
    let who = c["evidence"]["properties"]["authenticated as"]
        .as_str()
        .unwrap();
    assert!(who.starts_with("nfvi (basic)"), "{who}");

    let (code, c) = run(
        "registry_username = \"nfvi\"",
        &[("NFVI_REGISTRY_PASSWORD", "wrong")],
    );
    // A should-level failure is a warning, and this one-check run then verified no mandatory
    // requirement: incomplete.
    assert_eq!((code, c["outcome"].as_str().unwrap()), (3, "failed"), "{c}");
    let m = text(&c, "message");
    assert!(m.contains("rejected the credentials of user `nfvi`"), "{m}");
    assert!(!c.to_string().contains("reg-pass-7"));

    // `docker login` leaves an `auths` entry: base64 of user:password.
    std::fs::write(
        home.join(".docker/config.json"),
        format!("{{\"auths\": {{\"127.0.0.1:{port}\": {{\"auth\": \"bmZ2aTpyZWctcGFzcy03\"}}}}}}"),
    )
    .unwrap();
    let (code, c) = run("", &[]);
    assert_eq!((code, c["outcome"].as_str().unwrap()), (0, "passed"), "{c}");
    let who = c["evidence"]["properties"]["authenticated as"]
        .as_str()
        .unwrap();
    assert!(who.contains("config.json"), "{who}");
}

#[test]
fn the_dashboard_check_wants_horizon_not_any_page_and_skips_without_a_url() {
    if !require_listening("the lab's Kolla containers", "127.0.0.1:9292") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // glance_api's port answers 200, but with a version document, not Horizon.
    let (code, r, _) = run_suite(
        dir.path(),
        "[openstack]\ndashboard_url = \"http://127.0.0.1:9292/\"\n",
        &["kolla.api.dashboard"],
    );
    assert_eq!(code, 1);
    let m = text(check(&r, "kolla.api.dashboard"), "message").to_owned();
    assert!(m.contains("not with Horizon's login page"), "{m}");

    let dir = tempfile::tempdir().unwrap();
    let (_, r, _) = run_suite(
        dir.path(),
        "[openstack]\ndashboard_url = \"\"\n",
        &["kolla.api.dashboard"],
    );
    let c = check(&r, "kolla.api.dashboard");
    assert_eq!(c["outcome"], "skipped");
    assert!(text(c, "message").contains("int.api.07@ra1 stays unverified"));
}
