//! Namespaces, threads, child processes and netlink against the real kernel. Needs root;
//! skips loudly without it, and fails under CI (`CI=true`), where it must run. Everything is
//! made in namespaces these tests create (prefix `nfvnt`), deleted by guards however a test
//! ends; nothing touches the machine's own namespace.

use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};

use nfvi_net::{Family, MacVlanMode, NetnsGuard, Rtnl, chain, unique, within};

fn root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "prerequisite missing under CI: root"
    );
    eprintln!("SKIPPED: needs root (network namespaces)");
    false
}

fn guard() -> NetnsGuard {
    NetnsGuard::create(&unique("nfvnt-")).unwrap_or_else(|e| panic!("{}", chain(&e)))
}

#[test]
fn a_namespace_lives_until_deleted_and_names_are_never_reused() {
    if !root() {
        return;
    }
    let ns = guard();
    assert!(ns.exists());
    let again = nfvi_net::create(ns.name()).unwrap_err();
    assert!(
        chain(&again).starts_with("cannot create /run/netns/nfvnt-"),
        "{}",
        chain(&again)
    );
    // A fresh namespace has only `lo`, down.
    let links = within(ns.path(), |rt: Rtnl| async move { rt.links().await })
        .unwrap()
        .unwrap();
    assert_eq!(links.len(), 1, "{links:?}");
    assert_eq!((links[0].name.as_str(), links[0].up), ("lo", false));
    let name = ns.name().to_owned();
    ns.delete().unwrap();
    assert!(!nfvi_net::Netns::named(&name).exists());
    nfvi_net::delete(&name).unwrap();
    // Dropping a guard deletes too.
    let path = {
        let g = guard();
        g.path().to_owned()
    };
    assert!(!path.exists());
}

#[test]
fn setup_runs_inside_the_new_namespace() {
    if !root() {
        return;
    }
    let name = unique("nfvnt-");
    let (ns, lo) = nfvi_net::create_with(&name, || {
        nfvi_net::within_current(|rt: Rtnl| async move {
            rt.set_up("lo").await?;
            rt.links().await
        })
    })
    .unwrap();
    let ns = NetnsGuard::new(ns);
    let lo = lo.unwrap().unwrap();
    assert!(lo.iter().any(|l| l.name == "lo" && l.up), "{lo:?}");
    assert!(ns.exists());
}

#[test]
fn a_child_starts_in_the_namespace_of_the_thread_that_forked_it() {
    if !root() {
        return;
    }
    let ns = guard();
    let mut cmd = Command::new("readlink");
    cmd.arg("/proc/self/ns/net").stdout(Stdio::piped());
    let out = nfvi_net::spawn_command_in(ns.path(), cmd)
        .unwrap()
        .wait_with_output()
        .unwrap();
    let inode = std::fs::metadata(ns.path()).unwrap().ino();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("net:[{inode}]")
    );
    let here = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert_ne!(here.to_string_lossy(), format!("net:[{inode}]"));
}

#[test]
fn links_addresses_and_routes_across_two_namespaces() {
    if !root() {
        return;
    }
    let (a, b) = (guard(), guard());
    let b_path = b.path().to_owned();
    let (ip_a, ip_b) = (
        Ipv4Addr::new(198, 18, 250, 1),
        Ipv4Addr::new(198, 18, 250, 2),
    );
    within(a.path(), move |rt: Rtnl| async move {
        rt.add_veth("nfva0", "nfvb0").await?;
        rt.set_netns("nfvb0", &b_path).await?;
        rt.add_bridge("nfvbr0").await?;
        rt.add_veth("nfvp0", "nfvp1").await?;
        rt.set_master("nfvp0", "nfvbr0").await?;
        rt.add_macvlan("nfvmv0", "nfvp1", MacVlanMode::Bridge)
            .await?;
        rt.set_mtu("nfva0", 1400).await?;
        rt.add_address("nfva0", IpAddr::V4(ip_a), 24).await?;
        rt.set_up("nfva0").await?;
        rt.set_up("lo").await
    })
    .unwrap()
    .unwrap();
    within(b.path(), move |rt: Rtnl| async move {
        rt.add_address("nfvb0", IpAddr::V4(ip_b), 24).await?;
        rt.set_up("nfvb0").await?;
        rt.add_route_via(Ipv4Addr::UNSPECIFIED, 0, ip_a).await?;
        rt.add_route_dev(Ipv4Addr::new(198, 18, 251, 7), 32, "nfvb0")
            .await
    })
    .unwrap()
    .unwrap();
    let (links_a, addrs_a) = within(a.path(), |rt: Rtnl| async move {
        Ok::<_, nfvi_net::NetlinkError>((rt.links().await?, rt.addresses().await?))
    })
    .unwrap()
    .unwrap();
    let (links_b, routes_b) = within(b.path(), |rt: Rtnl| async move {
        Ok::<_, nfvi_net::NetlinkError>((rt.links().await?, rt.routes(Family::V4).await?))
    })
    .unwrap()
    .unwrap();
    let find = |links: &[nfvi_net::Link], n: &str| {
        links
            .iter()
            .find(|l| l.name == n)
            .cloned()
            .unwrap_or_else(|| panic!("{n} missing: {links:?}"))
    };
    let (a0, b0) = (find(&links_a, "nfva0"), find(&links_b, "nfvb0"));
    assert_eq!(
        (a0.kind.as_deref(), a0.mtu, a0.up),
        (Some("veth"), 1400, true)
    );
    assert_eq!(b0.peer_index_elsewhere(), Some(a0.index));
    assert_eq!(a0.peer_index_elsewhere(), Some(b0.index));
    assert_eq!(find(&links_a, "nfvp0").master.as_deref(), Some("nfvbr0"));
    let mv = find(&links_a, "nfvmv0");
    assert_eq!(
        (mv.kind.as_deref(), mv.mode.as_deref()),
        (Some("macvlan"), Some("bridge"))
    );
    // Same namespace: a lower device, but no `link_index` in ip's sense.
    assert_eq!(mv.link, Some(find(&links_a, "nfvp1").index));
    assert_eq!(mv.peer_index_elsewhere(), None);
    assert!(
        addrs_a
            .iter()
            .any(|x| x.ifname == "nfva0" && x.cidr() == "198.18.250.1/24"),
        "{addrs_a:?}"
    );
    assert!(
        addrs_a
            .iter()
            .any(|x| x.ifname == "lo" && x.cidr() == "127.0.0.1/8")
    );
    let texts: Vec<(String, Option<String>, Option<String>)> = routes_b
        .iter()
        .map(|r| {
            (
                r.dst_text(),
                r.gateway.map(|g| g.to_string()),
                r.dev.clone(),
            )
        })
        .collect();
    for want in [
        (
            "default".to_owned(),
            Some("198.18.250.1".to_owned()),
            Some("nfvb0".to_owned()),
        ),
        ("198.18.250.0/24".to_owned(), None, Some("nfvb0".to_owned())),
        ("198.18.251.7".to_owned(), None, Some("nfvb0".to_owned())),
    ] {
        assert!(texts.contains(&want), "{want:?} not in {texts:?}");
    }
    // The kernel's refusal comes back with its errno and names the object.
    let dup = within(
        a.path(),
        |rt: Rtnl| async move { rt.add_bridge("nfvbr0").await },
    )
    .unwrap()
    .unwrap_err();
    assert_eq!(dup.errno(), Some(17), "{}", chain(&dup));
    assert!(
        chain(&dup).starts_with("bridge nfvbr0: "),
        "{}",
        chain(&dup)
    );
    let missing = within(
        a.path(),
        |rt: Rtnl| async move { rt.set_up("nfvnone").await },
    )
    .unwrap()
    .unwrap_err();
    assert_eq!(chain(&missing), "no link nfvnone");
}

#[test]
fn async_callers_wait_without_blocking_their_thread() {
    if !root() {
        return;
    }
    let ns = guard();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let path = ns.path().to_owned();
    let n = rt.block_on(async move {
        let p2 = path.clone();
        let (x, links) = tokio::join!(
            nfvi_net::in_netns(path, || 7),
            nfvi_net::within_async(p2, |r: Rtnl| async move { r.links().await })
        );
        (x.unwrap(), links.unwrap().unwrap().len())
    });
    assert_eq!(n, (7, 1));
}
