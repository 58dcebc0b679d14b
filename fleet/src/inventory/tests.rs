use super::*;

fn inv(text: &str) -> Inventory {
    parse("inventory.ini", text).unwrap_or_else(|e| panic!("{e}\n---\n{text}"))
}

fn err(text: &str) -> String {
    match parse("inventory.ini", text) {
        Ok(i) => panic!("parsed, expected an error: {i:?}\n---\n{text}"),
        Err(e) => e.to_string(),
    }
}

fn names(i: &Inventory) -> Vec<&str> {
    i.hosts.iter().map(|h| h.name.as_str()).collect()
}

fn roles<'a>(i: &'a Inventory, host: &str) -> Vec<&'a str> {
    i.host(host)
        .unwrap_or_else(|| panic!("no host {host}"))
        .roles
        .iter()
        .map(String::as_str)
        .collect()
}

fn var<'a>(i: &'a Inventory, host: &str, key: &str) -> Option<&'a str> {
    i.host(host)?.var(key)
}

#[test]
fn ranges_expand_inclusively_with_strides_letters_and_zeros() {
    for (pattern, want) in [
        (
            "compute[01:04]",
            vec!["compute01", "compute02", "compute03", "compute04"],
        ),
        ("node[a:c]", vec!["nodea", "nodeb", "nodec"]),
        (
            "host[1:10:2]",
            vec!["host1", "host3", "host5", "host7", "host9"],
        ),
        ("h[8:10]", vec!["h8", "h9", "h10"]),
        ("h[:2]", vec!["h0", "h1", "h2"]),
        (
            "r[1:2]-n[a:b].lab",
            vec!["r1-na.lab", "r1-nb.lab", "r2-na.lab", "r2-nb.lab"],
        ),
        ("[1:2]x", vec!["1x", "2x"]),
        ("plain", vec!["plain"]),
        ("db-[a:f:2]", vec!["db-a", "db-c", "db-e"]),
    ] {
        assert_eq!(names(&inv(&format!("[g]\n{pattern}\n"))), want, "{pattern}");
    }
}

#[test]
fn bad_ranges_are_errors_naming_line_and_expectation() {
    for (text, want) in [
        (
            "[g]\n\n\n\n\n\ncompute[04:01]\n",
            "inventory.ini:7: host range `compute[04:01]` runs backwards; expected [start:end] with start <= end",
        ),
        (
            "[g]\nc[01:4]\n",
            "inventory.ini:2: host range `c[01:4]`: `01` and `4` differ in width",
        ),
        ("[g]\nc[1:5:0]\n", "stride `0` is not a positive number"),
        ("[g]\nc[1]\n", "host range `c[1]` is malformed"),
        ("[g]\nc[1:b]\n", "mixes or misuses bounds"),
        ("[g]\nc[aa:bb]\n", "mixes or misuses bounds"),
        ("[g]\nc[1:3\n", "has `[` without `]`"),
        ("[g]\nc1:3]\n", "not a port number"),
        ("[g]\nc]x\n", "has `]` without `[`"),
        (
            "[g]\nc[0:10000]\n",
            "expands to 10001 hosts; expected at most 10000",
        ),
        ("[g]\nc[0:99]-[0:999]\n", "expands to more than 10000 hosts"),
        (
            "[g]\nc[0:99999999999999999999999]\n",
            "a bound is too large",
        ),
        ("[g]\nhost:\n", "ends with `:`"),
        ("[g]\nhost:ssh\n", "port `ssh` is not a port number"),
        ("[g]\nhost:0\n", "port `0` is not a port number"),
        ("[g]\n-oProxyCommand=x\n", "starts with `-`"),
    ] {
        let e = err(text);
        assert!(e.contains(want), "{text:?}: {e}");
    }
    // Exactly at the limit is fine.
    assert_eq!(inv("[g]\nc[1:10000]\n").hosts.len(), 10_000);
}

#[test]
fn host_lines_take_ports_quoted_values_and_comments() {
    let i = inv(concat!(
        "# comment\n",
        "; another\n",
        "[control]\n",
        "ctl01 ansible_host=198.19.10.11 ansible_user=kolla note='two words' # trailing\n",
        "ctl02:2222 msg=\"a \\\"b\\\"\"\n",
        "  ctl03   \n",
        "[v6]\n",
        "[fe80::1]:2200\n",
        "2001:db8::5\n",
    ));
    assert_eq!(
        names(&i),
        ["ctl01", "ctl02", "ctl03", "fe80::1", "2001:db8::5"]
    );
    assert_eq!(var(&i, "ctl01", "ansible_host"), Some("198.19.10.11"));
    assert_eq!(var(&i, "ctl01", "note"), Some("two words"));
    assert_eq!(var(&i, "ctl01", "#"), None);
    assert_eq!(var(&i, "ctl02", "ansible_port"), Some("2222"));
    assert_eq!(var(&i, "ctl02", "msg"), Some("a \"b\""));
    assert_eq!(var(&i, "fe80::1", "ansible_port"), Some("2200"));
    assert_eq!(var(&i, "2001:db8::5", "ansible_port"), None);
    // A port in the name and an inline ansible_port: the inline one is written later, wins.
    let i = inv("[g]\nh:2222 ansible_port=2300\n");
    assert_eq!(var(&i, "h", "ansible_port"), Some("2300"));
}

#[test]
fn host_line_errors() {
    for (text, want) in [
        (
            "[g]\nh ansible_user\n",
            "inventory.ini:2: host `h`: a word after the host name is not a variable; expected \
             key=value",
        ),
        ("[g]\nh a='open\n", "a quote is not closed"),
        ("[g]\nh =x\n", "is not a variable"),
    ] {
        let e = err(text);
        assert!(e.contains(want), "{text:?}: {e}");
    }
}

#[test]
fn hosts_outside_sections_are_ungrouped_and_all_holds_everyone() {
    let i = inv("lonely\n[compute]\nc1\n[all]\nextra\n");
    assert_eq!(names(&i), ["lonely", "c1", "extra"]);
    assert!(roles(&i, "lonely").is_empty());
    assert_eq!(roles(&i, "c1"), ["compute"]);
    assert!(roles(&i, "extra").is_empty());
}

#[test]
fn children_give_roles_transitively_and_may_be_declared_later() {
    let i = inv(concat!(
        "[baremetal:children]\n",
        "control\n",
        "compute # a comment\n",
        "[nova:children]\n",
        "control\n",
        "[nova-api:children]\n",
        "nova\n",
        "[control]\n",
        "ctl01\n",
        "[compute]\n",
        "cmp01\n",
        "ctl01\n",
    ));
    assert_eq!(
        roles(&i, "ctl01"),
        ["baremetal", "compute", "control", "nova", "nova-api"]
    );
    assert_eq!(
        i.host("ctl01").unwrap().direct_groups,
        ["compute", "control"]
    );
    assert_eq!(roles(&i, "cmp01"), ["baremetal", "compute"]);
    // Hyphens are kept as they are.
    assert!(roles(&i, "ctl01").contains(&"nova-api"));
}

#[test]
fn undeclared_groups_are_errors() {
    let e = err("[parent:children]\nghost\n[parent:vars]\nx=1\n");
    assert_eq!(
        e,
        "inventory.ini:2: section [parent:children] names group `ghost`, which is not declared; \
         expected a [ghost] or [ghost:children] section"
    );
    let e = err("[g]\nh\n[nowhere:vars]\nx=1\n");
    assert!(
        e.starts_with("inventory.ini:3: section [nowhere:vars] is for group `nowhere`"),
        "{e}"
    );
    // Declared after its vars: fine.
    let i = inv("[late:vars]\nx=1\n[late]\nh\n");
    assert_eq!(var(&i, "h", "x"), Some("1"));
}

#[test]
fn cycles_through_children_are_errors_naming_the_groups() {
    let e = err("[a:children]\nb\n[b:children]\nc\n[c:children]\na\n");
    assert!(e.starts_with("inventory.ini:6: groups form a cycle"), "{e}");
    for g in ["a", "b", "c"] {
        assert!(e.contains(g), "{e}");
    }
    assert!(
        e.contains("a -> b -> c -> a")
            || e.contains("b -> c -> a -> b")
            || e.contains("c -> a -> b -> c"),
        "{e}"
    );
    let e = err("[a:children]\na\n");
    assert!(e.contains("a -> a"), "{e}");
    // A group downstream of a cycle does not hide it.
    let e = err("[a:children]\nb\nd\n[b:children]\na\n[d]\nh\n");
    assert!(
        e.contains("a -> b -> a") || e.contains("b -> a -> b"),
        "{e}"
    );
    let e = err("[a:children]\nall\n");
    assert!(e.contains("group `all` cannot be a child of `a`"), "{e}");
}

#[test]
fn variable_precedence_all_then_parents_then_children_then_host() {
    let i = inv(concat!(
        "[all:vars]\n",
        "v=all\n",
        "only_all=yes\n",
        "[baremetal:children]\n",
        "compute\n",
        "[baremetal:vars]\n",
        "v=baremetal\n",
        "parent='quoted parent'\n",
        "[compute]\n",
        "c1\n",
        "c2 v=host\n",
        "[compute:vars]\n",
        "v=compute\n",
        "[zzz]\n",
        "c1\n",
        "[zzz:vars]\n",
        "same_depth=zzz\n",
        "[aaa]\n",
        "c1\n",
        "[aaa:vars]\n",
        "same_depth=aaa\n",
        "spaced = a value with spaces \n",
    ));
    assert_eq!(var(&i, "c1", "v"), Some("compute"));
    assert_eq!(var(&i, "c2", "v"), Some("host"));
    assert_eq!(var(&i, "c1", "only_all"), Some("yes"));
    assert_eq!(var(&i, "c1", "parent"), Some("quoted parent"));
    // Same depth: name order, the later name wins (as Ansible).
    assert_eq!(var(&i, "c1", "same_depth"), Some("zzz"));
    assert_eq!(var(&i, "c1", "spaced"), Some("a value with spaces"));
    assert_eq!(i.host("c1").unwrap().vars["v"].line, 13);
}

#[test]
fn section_and_vars_errors() {
    for (text, want) in [
        (
            "[g:hostz]\n",
            "inventory.ini:1: section [g:hostz] has an unknown type `hostz`",
        ),
        (
            "[bad group]\n",
            "inventory.ini:1: invalid section header `[bad group]`",
        ),
        (
            "[g:vars]\njustaword\n",
            "inventory.ini:2: `justaword` is not a variable; expected key=value",
        ),
        ("[g:vars]\n=v\n", "has no variable name"),
        ("[g:children]\nx y\n", "`x y` is not a group name"),
    ] {
        let e = err(text);
        assert!(e.starts_with(want) || e.contains(want), "{text:?}: {e}");
    }
}

#[test]
fn yaml_inventories_are_refused_with_a_reason() {
    for text in ["---\nall:\n  hosts:\n", "# c\nall:\n  children:\n"] {
        let e = err(text);
        assert!(e.contains("YAML inventory, which is not supported"), "{e}");
    }
}

#[test]
fn connection_variables_are_recognised() {
    let i = inv(concat!(
        "[compute]\n",
        "c1 ansible_host=198.19.10.12 ansible_port=2222 ansible_user=kolla ansible_ssh_private_key_file=/k/id ansible_become=True\n",
        "c2 ansible_ssh_host=10.0.0.2 ansible_ssh_user=ops ansible_private_key_file=~/.ssh/id ansible_become=yes ansible_become_user=admin\n",
        "c3 ansible_user=root ansible_become=1\n",
        "c4 ansible_become=false\n",
        "[compute:vars]\n",
        "ansible_ssh_common_args='-o ProxyJump=bastion -o \"UserKnownHostsFile=/a b\"'\n",
        "ansible_ssh_extra_args=-4\n",
        "[deployment]\n",
        "localhost ansible_connection=local\n",
    ));
    let c = |name: &str| Connection::of(i.host(name).unwrap(), &i.file).unwrap();
    let c1 = c("c1");
    assert_eq!(
        (c1.address.as_str(), c1.port, c1.user.as_deref()),
        ("198.19.10.12", Some(2222), Some("kolla"))
    );
    assert_eq!(c1.key_file.as_deref(), Some(Path::new("/k/id")));
    assert!(c1.become_root && c1.needs_sudo());
    assert_eq!(
        c1.common_args,
        ["-o", "ProxyJump=bastion", "-o", "UserKnownHostsFile=/a b"]
    );
    assert_eq!(c1.extra_args, ["-4"]);
    assert_eq!(c1.endpoint(), "198.19.10.12:2222");
    let c2 = c("c2");
    assert_eq!(
        (c2.address.as_str(), c2.user.as_deref()),
        ("10.0.0.2", Some("ops"))
    );
    assert!(c2.key_file.as_ref().unwrap().ends_with(".ssh/id"));
    assert_eq!(c2.become_user.as_deref(), Some("admin"));
    assert!(c2.needs_sudo());
    let c3 = c("c3");
    assert!(c3.become_root && !c3.needs_sudo(), "root needs no sudo");
    assert!(!c("c4").become_root);
    assert_eq!(c("c4").address, "c4");
    assert_eq!(c("c4").endpoint(), "c4:22");
    assert!(c("localhost").local);
}

#[test]
fn bad_connection_variables_name_the_line() {
    for (text, want) in [
        (
            "[g]\nh ansible_port=http\n",
            "inventory.ini:2: host `h`: ansible_port=`http` is not a port",
        ),
        (
            "[g]\nh\n[g:vars]\nansible_port=70000\n",
            "inventory.ini:4: host `h`: ansible_port=`70000`",
        ),
        (
            "[g]\nh ansible_become=maybe\n",
            "ansible_become=`maybe` is not a boolean",
        ),
        (
            "[g]\nh ansible_host=-oX\n",
            "ansible_host: host name `-oX` starts with `-`",
        ),
        (
            "[g]\nh ansible_user=-x\n",
            "ansible_user=`-x` is not usable",
        ),
        (
            "[g]\nh ansible_connection=winrm\n",
            "ansible_connection=`winrm` is not supported",
        ),
        (
            "[g]\nh \"ansible_ssh_common_args=-o 'x\"\n",
            "cannot be split into words",
        ),
    ] {
        let i = inv(text);
        let e = Connection::of(&i.hosts[0], &i.file)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with(want) || e.contains(want), "{text:?}: {e}");
    }
}

#[test]
fn kolla_multinode_shape() {
    let i = inv(concat!(
        "[control]\ncontrol[01:03] ansible_user=kolla\n\n",
        "[network]\nnetwork01\n\n",
        "[compute]\ncompute[01:02]\n\n",
        "[monitoring]\n\n[storage]\n\n",
        "[deployment]\nlocalhost       ansible_connection=local\n\n",
        "[baremetal:children]\ncontrol\nnetwork\ncompute\nstorage\nmonitoring\n\n",
        "[tls-backend:children]\ncontrol\nnetwork\n\n",
        "[common:children]\ncontrol\nnetwork\ncompute\nstorage\nmonitoring\n\n",
        "[nova:children]\ncontrol\n\n[nova-api:children]\nnova\n",
        "[neutron-server:children]\ncontrol\n",
    ));
    assert_eq!(i.hosts.len(), 7);
    assert_eq!(
        roles(&i, "control02"),
        [
            "baremetal",
            "common",
            "control",
            "neutron-server",
            "nova",
            "nova-api",
            "tls-backend"
        ]
    );
    assert_eq!(roles(&i, "compute02"), ["baremetal", "common", "compute"]);
    assert_eq!(roles(&i, "localhost"), ["deployment"]);
    assert_eq!(var(&i, "control03", "ansible_user"), Some("kolla"));
}

/// A small deterministic PRNG (xorshift64*), so the hostile-input loop needs no crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn hostile_input_never_panics() {
    // Pieces that reach every branch of the parser, and raw characters between them.
    const PIECES: &[&str] = &[
        "[",
        "]",
        ":",
        "children",
        "vars",
        "hosts",
        "=",
        "'",
        "\"",
        "\\",
        "#",
        ";",
        "\n",
        " ",
        "\t",
        "[g]",
        "[g:children]",
        "[g:vars]",
        "[all:vars]",
        "g",
        "h",
        "all",
        "ungrouped",
        "[0:9]",
        "[a:c]",
        "[01:10:3]",
        "[9:0]",
        "[::]",
        "[:]",
        "ansible_port=",
        "ansible_host=",
        "ansible_become=",
        "ansible_ssh_common_args=",
        "22",
        "-",
        "---",
        "all:",
        "\u{0}",
        "\u{feff}",
        "é",
        "\r\n",
        "[fe80::1]:22",
        "x=y",
        "99999999999999999999",
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..20_000 {
        let mut text = String::new();
        for _ in 0..rng.below(40) {
            if rng.below(4) == 0 {
                text.push(char::from_u32(rng.below(0x250) as u32).unwrap_or('?'));
            } else {
                text.push_str(PIECES[rng.below(PIECES.len())]);
            }
        }
        if let Ok(i) = parse("fuzz.ini", &text) {
            for h in &i.hosts {
                let _ = Connection::of(h, &i.file);
            }
        }
    }
}

#[test]
fn deep_chains_and_many_groups_do_not_overflow_the_stack() {
    let mut text = String::new();
    for g in 0..5_000 {
        text.push_str(&format!("[g{g}:children]\ng{}\n", g + 1));
    }
    text.push_str("[g5000]\nleaf\n");
    let i = inv(&text);
    assert_eq!(i.hosts[0].roles.len(), 5_001);
    text.push_str("[g5000:children]\ng0\n");
    assert!(err(&text).contains("groups form a cycle"));
}

#[test]
fn too_many_hosts_is_an_error() {
    let mut text = String::from("[g]\n");
    for r in 0..3 {
        text.push_str(&format!("r{r}-[1:4000]\n"));
    }
    assert!(err(&text).contains("more than 10000 hosts"));
}

#[test]
fn an_inventory_others_can_change_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("multinode");
    std::fs::write(&path, "[compute]\nnode1\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(Inventory::load(&path).unwrap().hosts.len(), 1);
    // Writable by the group, or in a directory anyone may write to: refused, saying why.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o664)).unwrap();
    let e = Inventory::load(&path).unwrap_err().to_string();
    assert!(e.contains("mode 0664") && e.contains("chmod go-w"), "{e}");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let e = Inventory::load(&path).unwrap_err().to_string();
    assert!(e.contains("its directory"), "{e}");
}

#[test]
fn control_characters_are_refused_and_errors_do_not_repeat_secrets() {
    let e = err("[compute]\nnode1 ansible_become_user=x\u{0};id\n");
    assert!(e.contains("U+0000"), "{e}");
    let e = err("[compute]\nnode1 ansible_password='it-s3cret\n");
    assert!(!e.contains("s3cret"), "{e}");
    let e = err("[compute]\nnode1 ansible_password=my s3cret\n");
    assert!(!e.contains("s3cret"), "{e}");
}
