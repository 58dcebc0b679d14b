//! The data files compiled into the binary. A test checks that this list and the `data/`
//! directory agree, so a new file cannot be forgotten here.

macro_rules! data_file {
    ($path:literal) => {
        ($path, include_str!(concat!("../", $path)))
    };
}

/// Requirement catalogue files, as (path relative to the crate, contents).
pub const EMBEDDED_REQUIREMENT_FILES: &[(&str, &str)] = &[
    data_file!("data/requirements/ra2.toml"),
    data_file!("data/requirements/sec.toml"),
    data_file!("data/requirements/rm.toml"),
    data_file!("data/requirements/ra1.toml"),
];

/// Suite definition files, as (path relative to the crate, contents).
pub const EMBEDDED_SUITE_FILES: &[(&str, &str)] = &[
    data_file!("data/suites/rc2.toml"),
    data_file!("data/suites/rc1.toml"),
    data_file!("data/suites/host.toml"),
    data_file!("data/suites/cni.toml"),
    data_file!("data/suites/cni-fuzz.toml"),
    data_file!("data/suites/datapath.toml"),
    data_file!("data/suites/docker.toml"),
    data_file!("data/suites/kolla.toml"),
    data_file!("data/suites/k8s.toml"),
    data_file!("data/suites/evidence.toml"),
    data_file!("data/suites/all.toml"),
];
