//! Planted secrets of every kind, in every kind of input the bundle carries, and look-alikes
//! that must stay.

use super::*;

/// Obviously fake secrets (the scanner must find them; nothing real is kept here).
const PW: &str = "Hunter2-fake-pw";
const JWT: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImZha2UifQ.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQifQ.ZmFrZS1zaWduYXR1cmUtbm90LXJlYWw";

fn pem(label: &str) -> String {
    format!(
        "-----BEGIN {label}-----\nFAKEbase64FAKEbase64FAKE\nFAKEbase64==\n-----END {label}-----"
    )
}

/// (input, kinds expected, secret that must be gone)
fn rows() -> Vec<(String, Vec<&'static str>, String)> {
    let mut r: Vec<(String, Vec<&'static str>, String)> = vec![
        // results.json (JSON, and JSON inside a JSON string).
        (
            format!("{{\"stdout\": \"password={PW}\", \"x\": 1}}"),
            vec!["password"],
            PW.into(),
        ),
        (
            format!("{{\"properties\": {{\"db_password\": \"{PW}\"}}}}"),
            vec!["password"],
            PW.into(),
        ),
        (
            format!("  \"message\": \"{{\\\"password\\\": \\\"{PW}\\\"}}\","),
            vec!["password"],
            PW.into(),
        ),
        // A password on a command line in a log is a secret.
        (
            format!("  \"cmd\": \"login --password \\\"{PW}\\\" now\""),
            vec!["password"],
            PW.into(),
        ),
        (
            format!("  \"cmd\": \"login --password=\\\"{PW}\\\" now\""),
            vec!["password"],
            PW.into(),
        ),
        (
            format!("{{\"auths\": {{\"reg.example\": {{\"auth\": \"dXNlcjp{PW}\"}}}}}}"),
            vec!["registry-auth"],
            PW.into(),
        ),
        (
            format!("{{\"identitytoken\": \"{PW}\"}}"),
            vec!["registry-auth"],
            PW.into(),
        ),
        (
            format!(
                "{{\"log\": \"{}\"}}",
                pem("RSA PRIVATE KEY").replace('\n', "\\n")
            ),
            vec!["private-key"],
            "FAKEbase64".into(),
        ),
        // junit XML and HTML.
        (
            format!("<system-out>export OS_PASSWORD={PW}\n</system-out>"),
            vec!["password"],
            PW.into(),
        ),
        (
            format!("<failure message=\"token: {JWT}\"/>"),
            vec!["jwt"],
            JWT.into(),
        ),
        (
            format!("<td>curl -H 'Authorization: Bearer {PW}' https://x</td>"),
            vec!["authorization"],
            PW.into(),
        ),
        (
            format!("<pre>X-Auth-Token: {PW}</pre>"),
            vec!["token"],
            PW.into(),
        ),
        // log.
        (
            format!("2026-01-01T00:00:00Z INFO Authorization: Basic {PW}"),
            vec!["authorization"],
            PW.into(),
        ),
        (
            format!("connecting to mysql://nova:{PW}@198.18.0.5:3306/nova"),
            vec!["url-password"],
            PW.into(),
        ),
        (
            format!("OS_APPLICATION_CREDENTIAL_SECRET='{PW}'"),
            vec!["secret"],
            PW.into(),
        ),
        (
            format!("export OS_TOKEN=\"{PW}\""),
            vec!["token"],
            PW.into(),
        ),
        (
            format!("OS_CLIENT_SECRET={PW} other=1"),
            vec!["secret"],
            PW.into(),
        ),
        // target and waivers TOML.
        (format!("password = \"{PW}\""), vec!["password"], PW.into()),
        (
            format!("[registry]\napi_key = '{PW}'"),
            vec!["api-key"],
            PW.into(),
        ),
        (
            format!("creds = {{ user = \"a\", secret = \"{PW}\" }}"),
            vec!["secret"],
            PW.into(),
        ),
        (
            format!("reason = \"see https://ci:{PW}@ci.example/job\""),
            vec!["url-password"],
            PW.into(),
        ),
        // Ansible inventory lines, YAML, kubeconfig.
        (
            format!("node1 ansible_host=198.18.0.1 ansible_password={PW} ansible_become_pass={PW}"),
            vec!["password", "password"],
            PW.into(),
        ),
        (
            format!("node2 ansible_ssh_pass={PW}"),
            vec!["password"],
            PW.into(),
        ),
        (
            format!(
                "users:\n- name: admin\n  user:\n    token: {PW}\n    client-key-data: LS0tLS1{PW}\n    client-certificate-data: LS0tLS1CRUdJTg=="
            ),
            vec!["token", "private-key"],
            PW.into(),
        ),
        (
            format!("credential: \"{PW}\""),
            vec!["credential"],
            PW.into(),
        ),
        // e2e.log, kube-bench JSON, subunit text.
        (
            format!("I0101 kubectl --server=https://198.18.0.1 --token={JWT} get pods"),
            vec!["jwt"],
            JWT.into(),
        ),
        (
            format!(
                "{{\"test_desc\": \"ok\", \"actual_value\": \"--token={PW} --anonymous-auth=false\"}}"
            ),
            vec!["token"],
            PW.into(),
        ),
        (
            format!("tags: worker\nstdout: Authorization: Bearer {JWT}"),
            vec!["jwt"],
            JWT.into(),
        ),
        (
            pem("OPENSSH PRIVATE KEY"),
            vec!["private-key"],
            "FAKEbase64".into(),
        ),
        (
            format!("key: |\n  {}", pem("PRIVATE KEY").replace('\n', "\n  ")),
            vec!["private-key"],
            "FAKEbase64".into(),
        ),
        (
            format!(
                "{}\ntruncated here!",
                "-----BEGIN EC PRIVATE KEY-----\nFAKEbase64FAKE\nFAKE"
            ),
            vec!["private-key"],
            "FAKEbase64".into(),
        ),
    ];
    r.extend(more_forms());
    // Negative rows: public keys, digests, certificates, prose, paths, placeholders.
    for s in [
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAwZeMeZ8/r+pLj1AbHmrWfj2r9oWjDj+NMr8XagvS0i alice",
        "\"sha256\": \"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"",
        "client-certificate-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t",
        "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----",
        "-----BEGIN PUBLIC KEY-----\nMIIBfake\n-----END PUBLIC KEY-----",
        "The password must be rotated every 90 days.",
        "Ensure that the --token-auth-file parameter is not set",
        "--service-account-private-key-file=/etc/kubernetes/pki/sa.key",
        "--kubelet-client-key=/etc/kubernetes/pki/apiserver-kubelet-client.key",
        "PasswordAuthentication no",
        "\"passed\": 248, \"token_count\": 3",
        "password: ${DB_PASSWORD}",
        "password = \"\"",
        "passwordless: true",
        "https://example.com/path?q=1 and https://user@example.com/",
        "\"secretName\": \"registry-creds\"",
        "Meta plugins run first fail cleanly or pass through",
        // From the real evidence in shared/reference/evidence (kube-bench, e2e.log, junit).
        "{\"section\":\"3.1\",\"pass\":4,\"fail\":0,\"total_pass\": 15}",
        "edit the file to set authorization: mode Webhook. If",
        "\"remediation\": \"--kubelet-client-key=\\u003cpath/to/client-key-file\\u003e\\n--x\"",
        "\"--use-service-account-credentials=true\\nmore\"",
        "INFO: Pod \"pod-subpath-test-secret-9bwk\": Phase=\"Pending\", Reason=\"\"",
        "INFO: Pod \"pod-secrets-01fe0a21-e81a-404d-91dd-b3d8c7b67b18\": Phase=\"Pending\"",
        "restarting pod if attach=on, nodeExpansion=on, csiNodeExpandSecret=on\" classname=\"e2e\"",
        "2026-11-29 15:27:55 passwd:amd64 = upgrade 1:4.13+dfsg1-1 -> 1:4.13+dfsg1-2",
        "\"2026-11-29 passwd:amd64\": \"upgrade 1:4.13\"",
        "\"total_pass\": 15, total_pass: 15",
        "controls_pass = 55 count",
        "Ensure that the --kubelet-client-certificate and --kubelet-client-key arguments are set",
        "Ensure --password is not set on the command line",
        "- name: OS_PASSWORD\n  valueFrom:\n    secretKeyRef: {name: s, key: k}",
        "- name: OS_AUTH_URL\n  value: https://198.18.0.1:5000/v3",
        "System has not been booted with systemd. Can&#39;t operate.",
        "<pre>[{&#34;ifname&#34;:&#34;lo&#34;,&#34;flags&#34;:[&#34;UP&#34;]}]</pre>",
        // A check named after tokens, then another entry's name: its value is no token
        // (the bundle of an rc1 run redacted the requirement ID of kolla.api.token-issue).
        "<testcase name=\"kolla.api.token-issue\" classname=\"rc1.kolla\">\n  <properties>\n    <property name=\"requirements\" value=\"int.api.01@ra1\"/>",
        "token: |\n  ${TOKEN}\n",
    ] {
        r.push((s.to_owned(), vec![], String::new()));
    }
    r
}

/// Forms a review found surviving: HTML/XML-escaped JSON, Python reprs, headers without a
/// blank, Kubernetes env entries, long and `_PASS` names, block scalars, options.
fn more_forms() -> Vec<(String, Vec<&'static str>, String)> {
    let row = |s: String, kinds: Vec<&'static str>| (s, kinds, PW.to_owned());
    vec![
        row(
            format!("<pre>{{&#34;password&#34;: &#34;{PW}&#34;}}</pre>"),
            vec!["password"],
        ),
        // An env entry's value on a line that names the next entry, or holds `name` later.
        row(
            format!(
                "[{{\"name\": \"OS_PASSWORD\",\n \"value\": \"{PW}\"}}, {{\"name\": \"OS_REGION_NAME\", \"value\": \"r\"}}]"
            ),
            vec!["password"],
        ),
        row(
            format!("- name: OS_PASSWORD\n  value: {PW}  # name above"),
            vec!["password"],
        ),
        row(
            format!("- name: DB_PASSWORD\n  value: \"svc name {PW}\""),
            vec!["password"],
        ),
        row(
            format!("<system-out>&quot;password&quot;: &quot;{PW}&quot;</system-out>"),
            vec!["password"],
        ),
        row(
            format!("<pre>{{&#39;password&#39;: &#39;{PW}&#39;}}</pre>"),
            vec!["password"],
        ),
        row(
            format!("<failure message=\"{{&apos;api_key&apos;: &apos;{PW}&apos;}}\"/>"),
            vec!["api-key"],
        ),
        row(
            format!("  \"cmd\": \"curl -H \\\"Authorization: Bearer {PW}\\\" https://x\","),
            vec!["authorization"],
        ),
        row(
            format!("{{'password': '{PW}', 'user': 'a'}}"),
            vec!["password"],
        ),
        row(
            format!("{{u'user': u'a', u'password': u'{PW}'}}"),
            vec!["password"],
        ),
        row(
            format!("env:\n- name: OS_PASSWORD\n  value: {PW}\n- name: HOME\n  value: /root"),
            vec!["password"],
        ),
        row(
            format!(
                "\"env\": [\n  {{\n    \"name\": \"DB_SECRET\",\n    \"value\": \"{PW}\"\n  }}"
            ),
            vec!["secret"],
        ),
        row(
            format!("[{{\"name\": \"OS_TOKEN\", \"value\": \"{PW}\"}}]"),
            vec!["token"],
        ),
        row(format!("<pre>X-Auth-Token:{PW}</pre>"), vec!["token"]),
        row(
            format!("FOO_BAR_BAZ_QUX_QUUX_CORGE_GRAULT_GARPLY_WALDO_DATABASE_PASSWORD={PW}"),
            vec!["password"],
        ),
        row(
            format!("DB_PASS={PW}\nMYSQL_ROOT_PASS: {PW}"),
            vec!["password", "password"],
        ),
        row(
            format!("auth:\n  token: >-\n    {PW}\n    {PW}-2\n\n  user: admin"),
            vec!["token"],
        ),
        row(
            format!("openstack --os-password {PW} server list"),
            vec!["password"],
        ),
        row(
            format!("login --password '{PW}'; mysql --password={PW} -u x"),
            vec!["password", "password"],
        ),
        row(
            format!("\"stdout\": \"openstack --os-password {PW}\\nnext\""),
            vec!["password"],
        ),
    ]
}

#[test]
fn planted_secrets_are_removed_and_look_alikes_stay() {
    for (input, kinds, secret) in rows() {
        let (out, found) = redact("m", &input);
        let got: Vec<&str> = found.iter().map(|r| r.kind.as_str()).collect();
        assert_eq!(got, kinds, "input: {input}\noutput: {out}");
        if !secret.is_empty() {
            assert!(!out.contains(&secret), "secret left in: {out}");
        }
        if kinds.is_empty() {
            assert_eq!(out, input, "a look-alike was changed");
        }
        assert_eq!(
            out.matches('\n').count(),
            input.matches('\n').count(),
            "line count changed: {out}"
        );
    }
}

#[test]
fn json_stays_valid_json_after_redaction() {
    let value = serde_json::json!({
        "password": PW,
        "nested": {"stdout": format!("export OS_PASSWORD={PW}\n{}\nAuthorization: Bearer {JWT} \"q\\\" end", pem("PRIVATE KEY"))},
        "cmd": format!("mysql --password=\"{PW}\\\\x\" -u root"),
        "auth": format!("x{PW}\\\"y"),
        "weird": format!("token=a\\\\\\\"{PW}\\u00e9 next"),
        "list": [format!("https://u:{PW}@h/"), format!("{{\"token\": \"{PW}\"}}")],
    });
    for text in [
        serde_json::to_string(&value).unwrap(),
        serde_json::to_string_pretty(&value).unwrap(),
    ] {
        let (out, found) = redact("results.json", &text);
        let parsed: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        assert!(!out.contains(PW), "{out}");
        assert!(!out.contains("FAKEbase64"), "{out}");
        assert!(found.len() >= 7, "{found:?}");
        assert_eq!(parsed["password"], "[REDACTED:password]");
    }
}

/// A private key cut short (command output truncated): the base64 after its header goes,
/// the syntax around it stays, in JSON, XML attributes and text, and HTML.
#[test]
fn truncated_private_keys_keep_the_syntax_around_them() {
    let cut = "-----BEGIN RSA PRIVATE KEY-----\nFAKEbase64FAKEbase64\nFAKEbase64==";
    let value = serde_json::json!({"stdout": cut, "next": cut.replace('\n', "\r\n"), "n": 1});
    for text in [
        serde_json::to_string(&value).unwrap(),
        serde_json::to_string_pretty(&value).unwrap(),
    ] {
        let (out, found) = redact("results.json", &text);
        serde_json::from_str::<serde_json::Value>(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        assert!(!out.contains("FAKE"), "{out}");
        assert_eq!(found.len(), 2, "{found:?}");
    }
    for (text, keep) in [
        (
            format!("<failure message=\"{}\"/>", cut.replace('\n', "&#10;")),
            "&#10;[REDACTED:private-key]&#10;\"/>",
        ),
        (
            format!("<system-out>{cut}</system-out>\n<x/>"),
            "\n[REDACTED:private-key]\n</system-out>\n<x/>",
        ),
        (
            format!("<pre>{}</pre>", cut.replace('\n', "\n  ")),
            "-----\n  [REDACTED:private-key]\n  </pre>",
        ),
        (
            "x = '-----BEGIN PRIVATE KEY-----\\nFAKEb64'".to_owned(),
            "-----\\n[REDACTED:private-key]'",
        ),
    ] {
        let (out, found) = redact("junit.xml", &text);
        assert!(!out.contains("FAKE"), "{out}");
        assert!(out.ends_with(keep), "{out}");
        assert_eq!(found.len(), 1);
    }
}

/// TOML single-quoted (literal) strings keep their closing quote.
#[test]
fn toml_literal_strings_keep_their_quotes() {
    let text = format!(
        "[[waiver]]\nreason = 'lab VM; api token: rotated monthly'\nowner = 'a'\n\
         note = 'password: {PW}'\nsecret = '{PW}'\n"
    );
    let (out, found) = redact("waivers.toml", &text);
    let kinds: Vec<&str> = found.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(kinds, ["token", "password", "secret"], "{out}");
    assert!(!out.contains(PW), "{out}");
    assert!(out.contains("monthly'\n"), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[3], "note = 'password: [REDACTED:password]'");
    assert_eq!(lines[4], "secret = '[REDACTED:secret]'");
}

#[test]
fn line_numbers_point_at_the_secret() {
    let text = format!("a\nb\n{}\nc\npassword: {PW}\n", pem("RSA PRIVATE KEY"));
    let (out, found) = redact("log", &text);
    let lines: Vec<(usize, &str)> = found.iter().map(|r| (r.line, r.kind.as_str())).collect();
    assert_eq!(lines, [(3, "private-key"), (8, "password")]);
    assert_eq!(out.lines().nth(7), Some("password: [REDACTED:password]"));
    assert_eq!(out.lines().nth(3), Some("[REDACTED:private-key]"));
    assert!(out.contains("-----END RSA PRIVATE KEY-----"));
}

#[test]
fn hostile_text_never_panics() {
    let pieces = [
        "\"",
        "\\",
        "password",
        "=",
        ":",
        " ",
        "eyJ",
        "aaaaaaaaaaa",
        ".",
        "://",
        "@",
        "-----BEGIN ",
        "PRIVATE KEY-----",
        "-----END ",
        "é",
        "\n",
        "'",
        "{",
        "Authorization",
    ];
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..3000 {
        let mut s = String::new();
        for _ in 0..(seed % 24) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            s.push_str(pieces[(seed % pieces.len() as u64) as usize]);
        }
        let (out, _) = redact("m", &s);
        assert_eq!(
            out.matches('\n').count(),
            s.matches('\n').count(),
            "{s:?} -> {out:?}"
        );
    }
}

#[test]
fn binary_members_are_scanned_in_their_printable_runs() {
    let mut subunit = vec![0xb3, 0x29, 0x01, 0x00];
    subunit.extend_from_slice(format!("tempest.api OS_PASSWORD={PW}").as_bytes());
    subunit.extend_from_slice(&[0, 0xff, 0x10]);
    assert!(as_text(&subunit).is_none());
    let found = scan_binary("evidence/1-x.subunit", &subunit);
    assert_eq!(found.len(), 1);
    assert!(scan_binary("b", &[0, 1, 2, 0xff]).is_empty());
}
