//! tempest.conf, written from the cloud's credentials and what the catalog offers. It is the
//! one place the password is written, in a private directory (0700) removed after the run.

use std::fmt::Write as _;

/// What tempest.conf is made of.
#[derive(Clone, Debug)]
pub struct ConfInput<'a> {
    /// Keystone's v3 URL.
    pub auth_url: &'a str,
    /// The admin user Tempest creates its per-test projects and users with.
    pub username: &'a str,
    /// Its password.
    pub password: &'a str,
    /// Its project.
    pub project: &'a str,
    /// Its domain.
    pub user_domain: &'a str,
    /// The project's domain.
    pub project_domain: &'a str,
    /// The catalog interface (`internal`, `public`).
    pub interface: &'a str,
    /// The region, if any.
    pub region: Option<&'a str>,
    /// A CA bundle to trust.
    pub cacert: Option<&'a str>,
    /// No certificate verification.
    pub insecure: bool,
    /// Per service available to Tempest: its `[service_available]` key, or its section for
    /// those without one, with the catalog type found.
    pub available: Vec<(&'static str, bool)>,
    /// The volume service's catalog type (`volumev3`, `block-storage`), when offered.
    pub volume_type: Option<&'a str>,
    /// The dashboard's URL, when Tempest may test it.
    pub dashboard_url: Option<&'a str>,
    /// The workspace (logs and locks go under it).
    pub workspace: &'a str,
    /// `[compute] image_ref` (and `image_ref_alt`), when set.
    pub image_ref: Option<&'a str>,
    /// `[compute] flavor_ref` (and `flavor_ref_alt`), when set.
    pub flavor_ref: Option<&'a str>,
    /// `[network] public_network_id`, when set.
    pub public_network_id: Option<&'a str>,
    /// Whether heat-tempest-plugin's `[heat_plugin]` is written (orchestration tested).
    pub heat: bool,
}

/// A value oslo.config reads back as written: one line, `$` doubled (it interpolates `$name`),
/// no surrounding blanks (it strips them).
fn value(key: &str, v: &str) -> Result<String, String> {
    if v.contains(['\n', '\r']) || v.trim() != v {
        return Err(format!(
            "the value of {key} cannot be written to tempest.conf: it holds a line break or surrounding blanks"
        ));
    }
    Ok(v.replace('$', "$$"))
}

/// The password, for Tempest's environment rather than tempest.conf: oslo.config reads
/// `OS_<GROUP>__<OPTION>` before the file (with the same `$` interpolation, escaped the same
/// way), so no file of the run holds it, and a run killed outright leaves none behind.
pub fn secret_env(c: &ConfInput<'_>) -> Result<Vec<(&'static str, String)>, String> {
    let password = value("the password", c.password)?;
    let mut env = vec![("OS_AUTH__ADMIN_PASSWORD", password.clone())];
    if c.heat {
        env.push(("OS_HEAT_PLUGIN__PASSWORD", password.clone()));
        env.push(("OS_HEAT_PLUGIN__ADMIN_PASSWORD", password));
    }
    Ok(env)
}

/// The text of tempest.conf (no password: that is [`secret_env`]'s).
pub fn render(c: &ConfInput<'_>) -> Result<String, String> {
    let uri = if c.auth_url.trim_end_matches('/').ends_with("/v3") {
        c.auth_url.trim_end_matches('/').to_owned()
    } else {
        format!("{}/v3", c.auth_url.trim_end_matches('/'))
    };
    let mut s = String::from(
        "# Written by nfvi-verify for one Tempest run (`tempest init` layout); removed after it.\n",
    );
    let ws = value("the workspace", c.workspace)?;
    let _ = write!(
        s,
        "[DEFAULT]\nlog_dir = {ws}/logs\nlog_file = tempest.log\nuse_stderr = false\n\n\
         [oslo_concurrency]\nlock_path = {ws}/tempest_lock\n\n"
    );
    let network = c.available.iter().any(|(k, on)| *k == "neutron" && *on);
    let _ = write!(
        s,
        "[auth]\nuse_dynamic_credentials = true\ncreate_isolated_networks = {network}\n\
         admin_username = {}\nadmin_project_name = {}\nadmin_domain_name = {}\n\
         default_credentials_domain_name = {}\n\n",
        value("the user name", c.username)?,
        value("the project name", c.project)?,
        value("the user domain", c.user_domain)?,
        value("the project domain", c.project_domain)?,
    );
    let interface = value("the interface", c.interface)?;
    let _ = write!(
        s,
        "[identity]\nuri_v3 = {}\nauth_version = v3\nv3_endpoint_type = {interface}\n\
         disable_ssl_certificate_validation = {}\n",
        value("the auth URL", &uri)?,
        c.insecure
    );
    if let Some(r) = c.region {
        let _ = writeln!(s, "region = {}", value("the region", r)?);
    }
    if let Some(ca) = c.cacert {
        let _ = writeln!(s, "ca_certificates_file = {}", value("the CA bundle", ca)?);
    }
    s.push_str("\n[identity-feature-enabled]\napi_v2 = false\n\n");
    for section in ["compute", "image", "network", "object-storage", "placement"] {
        let _ = writeln!(s, "[{section}]\nendpoint_type = {interface}");
        if section == "compute" {
            for (key, v) in [("image_ref", c.image_ref), ("flavor_ref", c.flavor_ref)] {
                if let Some(v) = v {
                    let v = value(&format!("tempest.{key}"), v)?;
                    let _ = writeln!(s, "{key} = {v}\n{key}_alt = {v}");
                }
            }
        }
        if section == "network"
            && let Some(v) = c.public_network_id
        {
            let _ = writeln!(
                s,
                "public_network_id = {}",
                value("tempest.public_network_id", v)?
            );
        }
        s.push('\n');
    }
    let _ = write!(s, "[volume]\nendpoint_type = {interface}\n");
    if let Some(t) = c.volume_type {
        let _ = writeln!(s, "catalog_type = {}", value("the volume catalog type", t)?);
    }
    s.push('\n');
    if let Some(url) = c.dashboard_url {
        let url = value("the dashboard URL", url.trim_end_matches('/'))?;
        let _ = write!(
            s,
            "[dashboard]\ndashboard_url = {url}/\nlogin_url = {url}/auth/login/\n\n"
        );
    }
    if c.heat {
        // heat-tempest-plugin reads its own credentials and images.
        let _ = write!(
            s,
            "[heat_plugin]\nauth_url = {}\nauth_version = 3\nusername = {}\nproject_name = {}\n\
             user_domain_name = {}\nproject_domain_name = {}\nadmin_username = {}\n\
             endpoint_type = {interface}\ndisable_ssl_certificate_validation = {}\n",
            value("the auth URL", &uri)?,
            value("the user name", c.username)?,
            value("the project name", c.project)?,
            value("the user domain", c.user_domain)?,
            value("the project domain", c.project_domain)?,
            value("the user name", c.username)?,
            c.insecure,
        );
        if let Some(r) = c.region {
            let _ = writeln!(s, "region = {}", value("the region", r)?);
        }
        if let Some(ca) = c.cacert {
            let _ = writeln!(s, "ca_file = {}", value("the CA bundle", ca)?);
        }
        if let Some(v) = c.image_ref {
            let v = value("tempest.image_ref", v)?;
            let _ = writeln!(s, "image_ref = {v}\nminimal_image_ref = {v}");
        }
        if let Some(v) = c.flavor_ref {
            let v = value("tempest.flavor_ref", v)?;
            let _ = writeln!(s, "instance_type = {v}\nminimal_instance_type = {v}");
        }
        s.push('\n');
    }
    s.push_str("[service_available]\n");
    for (key, on) in &c.available {
        let _ = writeln!(s, "{key} = {on}");
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(password: &str) -> ConfInput<'_> {
        ConfInput {
            auth_url: "http://127.0.0.1:5000/v3/",
            username: "admin",
            password,
            project: "admin",
            user_domain: "Default",
            project_domain: "Default",
            interface: "internal",
            region: Some("RegionOne"),
            cacert: None,
            insecure: false,
            available: vec![("glance", false), ("neutron", false), ("nova", false)],
            volume_type: None,
            dashboard_url: None,
            workspace: "/tmp/nfvi-tempest-1-x/ws",
            image_ref: None,
            flavor_ref: None,
            public_network_id: None,
            heat: false,
        }
    }

    #[test]
    fn the_conf_names_the_cloud_and_what_it_offers() {
        let s = render(&input("pw")).unwrap();
        for line in [
            "uri_v3 = http://127.0.0.1:5000/v3\n",
            "v3_endpoint_type = internal\n",
            "region = RegionOne\n",
            "admin_username = admin\n",
            "use_dynamic_credentials = true\n",
            "create_isolated_networks = false\n",
            "glance = false\n",
            "api_v2 = false\n",
            "lock_path = /tmp/nfvi-tempest-1-x/ws/tempest_lock\n",
        ] {
            assert!(s.contains(line), "{line:?} missing from:\n{s}");
        }
        assert!(!s.contains("pw"), "the password is in the file:\n{s}");
        assert!(!s.contains("[dashboard]"));
    }

    #[test]
    fn values_are_written_as_oslo_config_reads_them_or_refused() {
        assert_eq!(
            secret_env(&input("a$b")).unwrap(),
            [("OS_AUTH__ADMIN_PASSWORD", "a$$b".to_owned())]
        );
        for bad in ["sec\nret", " secret", "secret\r"] {
            let e = secret_env(&input(bad)).unwrap_err();
            assert!(e.contains("the password"), "{e}");
            assert!(!e.contains("sec"), "the value leaked: {e}");
        }
        let mut i = input("pw");
        i.auth_url = "https://keystone.example:5000";
        i.cacert = Some("/etc/ca.pem");
        i.dashboard_url = Some("http://horizon.example/");
        let s = render(&i).unwrap();
        assert!(
            s.contains("uri_v3 = https://keystone.example:5000/v3\n"),
            "{s}"
        );
        assert!(s.contains("ca_certificates_file = /etc/ca.pem\n"));
        assert!(s.contains("login_url = http://horizon.example/auth/login/\n"));
    }

    #[test]
    fn what_tempest_boots_is_written_when_set_and_only_then() {
        let s = render(&input("pw")).unwrap();
        assert!(
            !s.contains("image_ref") && !s.contains("[heat_plugin]"),
            "{s}"
        );
        let mut i = input("pw");
        i.image_ref = Some("img-1");
        i.flavor_ref = Some("42");
        i.public_network_id = Some("ext-net-id");
        i.heat = true;
        let s = render(&i).unwrap();
        assert!(!s.contains("pw"), "the password is in the file:\n{s}");
        let env = secret_env(&i).unwrap();
        assert_eq!(
            env.len(),
            3,
            "{:?}",
            env.iter().map(|e| e.0).collect::<Vec<_>>()
        );
        assert!(env.iter().all(|(k, v)| k.starts_with("OS_") && v == "pw"));
        for line in [
            "[compute]\nendpoint_type = internal\nimage_ref = img-1\nimage_ref_alt = img-1\nflavor_ref = 42\nflavor_ref_alt = 42\n",
            "[network]\nendpoint_type = internal\npublic_network_id = ext-net-id\n",
            "[heat_plugin]\nauth_url = http://127.0.0.1:5000/v3\n",
            "instance_type = 42\n",
        ] {
            assert!(s.contains(line), "{line:?} missing from:\n{s}");
        }
    }
}
