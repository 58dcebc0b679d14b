//! The pure judges of a service's own report of its parts' states (Nova's `os-services`,
//! Neutron's agents), table-tested here without a cloud.

use nfvi_harness::Outcome;
use serde_json::Value;

/// Nova's `os-services`: every enabled service up (`state`, and not `forced_down`), and at
/// least one nova-compute.
pub(crate) fn judge_compute_services(body: &Value, call: &str) -> Outcome {
    let Some(services) = body["services"].as_array() else {
        return Outcome::fail(format!("GET {call} answered without a `services` list"));
    };
    let mut o = Outcome::pass("");
    let (mut down, mut disabled, mut computes) = (Vec::new(), Vec::new(), 0);
    for svc in services {
        let name = format!(
            "{}@{}",
            svc["binary"].as_str().unwrap_or("?"),
            svc["host"].as_str().unwrap_or("?")
        );
        let state = svc["state"].as_str().unwrap_or("?");
        let status = svc["status"].as_str().unwrap_or("?");
        let forced = svc["forced_down"].as_bool().unwrap_or(false);
        o = o.with_property(
            &name,
            format!(
                "{status}, {state}{}, updated {}",
                if forced { " (forced down)" } else { "" },
                svc["updated_at"].as_str().unwrap_or("never")
            ),
        );
        if status == "disabled" {
            disabled.push(name);
            continue;
        }
        if svc["binary"] == "nova-compute" {
            computes += 1;
        }
        if state != "up" || forced {
            down.push(format!(
                "{name} is {state}{} (last heartbeat {})",
                if forced { ", forced down" } else { "" },
                svc["updated_at"].as_str().unwrap_or("never")
            ));
        }
    }
    if !disabled.is_empty() {
        o = o.with_property("disabled (not judged)", disabled.join(", "));
    }
    if !down.is_empty() {
        let mut f = Outcome::fail(format!("compute services down: {}", down.join("; ")));
        f.evidence = o.evidence;
        return f;
    }
    if computes == 0 {
        let mut f = Outcome::fail(format!(
            "GET {call} lists no enabled nova-compute: the cloud has no hypervisor to schedule on"
        ));
        f.evidence = o.evidence;
        return f;
    }
    o.message = format!(
        "{} compute services up ({computes} nova-compute){}",
        services.len() - disabled.len(),
        if disabled.is_empty() {
            String::new()
        } else {
            format!(", {} disabled", disabled.len())
        }
    );
    o
}

/// Neutron's agents: every administratively up agent alive, and at least one agent.
pub(crate) fn judge_network_agents(body: &Value, call: &str) -> Outcome {
    let Some(agents) = body["agents"].as_array() else {
        return Outcome::fail(format!("GET {call} answered without an `agents` list"));
    };
    if agents.is_empty() {
        return Outcome::fail(format!(
            "GET {call} lists no agents: no L2 or L3 agent reports to neutron-server"
        ));
    }
    let mut o = Outcome::pass("");
    let mut dead = Vec::new();
    let mut admin_down = 0;
    for a in agents {
        let name = format!(
            "{}@{}",
            a["binary"].as_str().unwrap_or("?"),
            a["host"].as_str().unwrap_or("?")
        );
        let alive = a["alive"].as_bool().unwrap_or(false);
        let admin_up = a["admin_state_up"].as_bool().unwrap_or(true);
        let beat = a["heartbeat_timestamp"].as_str().unwrap_or("never");
        o = o.with_property(
            &name,
            format!(
                "{}, {}, heartbeat {beat}",
                if alive { "alive" } else { "dead" },
                if admin_up { "admin up" } else { "admin down" }
            ),
        );
        if !admin_up {
            admin_down += 1;
        } else if !alive {
            dead.push(format!(
                "{name} ({}) last heartbeat {beat}",
                a["agent_type"].as_str().unwrap_or("?")
            ));
        }
    }
    if !dead.is_empty() {
        let mut f = Outcome::fail(format!("network agents not alive: {}", dead.join("; ")));
        f.evidence = o.evidence;
        return f;
    }
    o.message = format!(
        "{} network agents alive{}",
        agents.len() - admin_down,
        if admin_down > 0 {
            format!(", {admin_down} administratively down (not judged)")
        } else {
            String::new()
        }
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `GET /v2.1/os-services` as the compute API reference shows it (microversion 2.11+).
    const NOVA_SERVICES: &str = r#"{"services": [
        {"id": 1, "binary": "nova-scheduler", "host": "ctl1", "zone": "internal", "status": "enabled", "state": "up", "updated_at": "2026-11-27T03:00:00.000000", "disabled_reason": null, "forced_down": false},
        {"id": 2, "binary": "nova-compute", "host": "cmp1", "zone": "nova", "status": "enabled", "state": "up", "updated_at": "2026-11-27T03:00:00.000000", "disabled_reason": null, "forced_down": false},
        {"id": 3, "binary": "nova-compute", "host": "cmp2", "zone": "nova", "status": "disabled", "state": "down", "updated_at": null, "disabled_reason": "maintenance", "forced_down": false}
    ]}"#;

    fn judge(f: fn(&Value, &str) -> Outcome, text: &str) -> Outcome {
        f(&serde_json::from_str(text).unwrap(), "GET x")
    }

    #[test]
    fn compute_services_judge_enabled_ones_and_need_a_compute_host() {
        let o = judge(judge_compute_services, NOVA_SERVICES);
        assert_eq!(o.status, nfvi_harness::Status::Passed, "{}", o.message);
        assert!(
            o.message
                .contains("2 compute services up (1 nova-compute), 1 disabled"),
            "{}",
            o.message
        );
        let forced = NOVA_SERVICES.replacen("\"forced_down\": false", "\"forced_down\": true", 1);
        let o = judge(judge_compute_services, &forced);
        assert_eq!(o.status, nfvi_harness::Status::Failed);
        assert!(
            o.message.contains("nova-scheduler@ctl1 is up, forced down"),
            "{}",
            o.message
        );
        let down = NOVA_SERVICES.replacen("\"state\": \"up\"", "\"state\": \"down\"", 2);
        let o = judge(judge_compute_services, &down);
        assert!(
            o.message.contains("nova-compute@cmp1 is down"),
            "{}",
            o.message
        );
        let o = judge(
            judge_compute_services,
            r#"{"services": [{"binary": "nova-scheduler", "host": "a", "status": "enabled", "state": "up"}]}"#,
        );
        assert!(
            o.message.contains("no enabled nova-compute"),
            "{}",
            o.message
        );
        for bad in [r#"{}"#, r#"{"services": {}}"#, "[]"] {
            assert_eq!(
                judge(judge_compute_services, bad).status,
                nfvi_harness::Status::Failed,
                "{bad}"
            );
        }
    }

    #[test]
    fn network_agents_judge_admin_up_ones() {
        let text = r#"{"agents": [
            {"binary": "neutron-openvswitch-agent", "agent_type": "Open vSwitch agent", "host": "cmp1", "alive": true, "admin_state_up": true, "heartbeat_timestamp": "2026-11-27 03:00:00"},
            {"binary": "neutron-l3-agent", "agent_type": "L3 agent", "host": "net1", "alive": false, "admin_state_up": false, "heartbeat_timestamp": "2026-11-01 00:00:00"}
        ]}"#;
        let o = judge(judge_network_agents, text);
        assert_eq!(o.status, nfvi_harness::Status::Passed, "{}", o.message);
        assert!(
            o.message.contains("1 administratively down"),
            "{}",
            o.message
        );
        let o = judge(
            judge_network_agents,
            &text.replace("\"admin_state_up\": false", "\"admin_state_up\": true"),
        );
        assert_eq!(o.status, nfvi_harness::Status::Failed);
        assert!(
            o.message
                .contains("neutron-l3-agent@net1 (L3 agent) last heartbeat 2026-11-01"),
            "{}",
            o.message
        );
        assert!(
            judge(judge_network_agents, r#"{"agents": []}"#)
                .message
                .contains("no agents")
        );
        assert_eq!(
            judge(judge_network_agents, r#"{"agent": []}"#).status,
            nfvi_harness::Status::Failed
        );
    }
}
