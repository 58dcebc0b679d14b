//! The fleet's inputs: Ansible INI inventories (host patterns, `:children`, `:vars`) and
//! the output of `ssh-keygen -lf` that host-key diagnosis reads. The node agent's event
//! lines are in harness.rs.

use nfvi_fleet::inventory::{MAX_HOSTS, parse};
use nfvi_fuzz::proptest::prelude::*;
use nfvi_fuzz::{DEFAULT_CASES, config, seeds, text};

const INVENTORIES: &[&str] = &[
    "[control]\ncontrol01 ansible_host=198.18.0.10\ncontrol[02:03] ansible_user=kolla\n\n[network:children]\ncontrol\n\n[compute]\ncompute[01:04] ansible_host=198.18.1.1 ansible_become=true\nnode[a:c]:2222\nhost[1:10:2] ansible_ssh_private_key_file='/root/.ssh/id ed'\n\n[all:vars]\nansible_user=root\n# comment\n; comment\n\n[compute:vars]\nnfv_role=\"edge node\"\n",
    "ungrouped01\n[a]\nx[001:100]\n[b:children]\na\n[c:children]\nb\n[a:vars]\nk=v\n",
    "[big]\nn[0:99999999999999999999]\nm[z:a]\nq[1:2:0]\n[cycle:children]\ncycle\n",
];

proptest! {
    #![proptest_config(config(DEFAULT_CASES))]

    #[test]
    fn fuzz_inventory(t in text(seeds(INVENTORIES))) {
        if let Ok(inv) = parse("multinode", &t) {
            prop_assert!(inv.hosts.len() <= MAX_HOSTS);
            for h in &inv.hosts {
                prop_assert!(inv.host(&h.name).is_some());
            }
        }
    }

    #[test]
    fn fuzz_ssh_keygen_fingerprints(t in text(seeds(&[
        "256 SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s 198.19.10.12 (ED25519)\n3072 SHA256:abc/def+ghi 198.19.10.12 (RSA)\n",
    ]))) {
        let _ = nfvi_fleet::ssh::diagnose::parse_fingerprints(&t);
    }
}
