//! Docker/Podman Engine API answers as the raw client reads them off the socket: status
//! line, headers, chunked or plain body, JSON; and `/version` answers through the engine
//! identification and its version judgement.

use nfvi_fuzz::proptest::prelude::*;
use nfvi_fuzz::{DEFAULT_CASES, bytes, config, seeds, text};
use nfvi_suite_docker::identity::{Component, VersionInfo, identify, judge_version, oci_runtime};

const ANSWERS: &[&str] = &[
    "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\nApi-Version: 1.43\r\n\r\n{\"Id\":\"abc\",\"State\":{\"Status\":\"running\",\"Running\":true,\"Pid\":42},\"HostConfig\":{\"Privileged\":false,\"CapAdd\":null}}",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7\r\n{\"a\":[1\r\n3;ext=1\r\n,2]\r\n1\r\n}\r\n0\r\n\r\n",
    "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n\r\n{\"message\":\"No such container: x\"}",
    "HTTP/1.1 500 Internal Server Error\r\n\r\nplain text error\n",
];

proptest! {
    #![proptest_config(config(DEFAULT_CASES))]

    #[test]
    fn fuzz_docker_raw_answer(b in bytes(seeds(ANSWERS))) {
        let _ = nfvi_suite_docker::fuzzing::raw_answer(&b);
    }

    #[test]
    fn fuzz_docker_version(
        version in text(seeds(&["24.0.7", "4.3.1", "20.10.24+dfsg1"])),
        api in text(seeds(&["1.43", "1.41", "1.9999999999999999999", "v1"])),
        runtime in text(seeds(&["1.1.12", "runc version 1.1.5\ncommit: v1.1.5-0-gf19387a\nspec: 1.0.2-dev", "crun version 1.8.1\ncommit: x\n+SYSTEMD +SELINUX"])),
        min in text(seeds(&["1.24", "1.40", "", "1."])),
    ) {
        let components = vec![
            Component { name: "Engine".into(), version: version.clone() },
            Component { name: "runc".into(), version: runtime.clone() },
            Component { name: "OCI Runtime (crun)".into(), version: runtime },
            Component { name: "Podman Engine".into(), version: version.clone() },
        ];
        let _ = oci_runtime(&components);
        let info = VersionInfo {
            version,
            api_version: api.clone(),
            min_api_version: api,
            platform: "Docker Engine - Community".into(),
            components,
        };
        let id = identify(&info);
        let _ = judge_version(&id, &min);
    }
}
