//! Whether evidence may be judged at all: fresh enough (by the time the tool ran), and of this
//! cluster (its server version, and its kube-system UID where the evidence records one).

use chrono::{DateTime, Utc};

use crate::model::Recorded;

/// Refuses evidence older than `max_age_days` (0: any age).
pub fn freshness(
    file: &str,
    run_at: Option<DateTime<Utc>>,
    source: &str,
    now: DateTime<Utc>,
    max_age_days: u32,
) -> Result<(), String> {
    if max_age_days == 0 {
        return Ok(());
    }
    let Some(at) = run_at else {
        return Err(format!(
            "refused: the time {file} was made is unknown (no timestamp inside, no modification time); evidence.max_age_days = {max_age_days} (--evidence-max-age 0 accepts any age)"
        ));
    };
    let days = (now - at).num_days();
    if days > i64::from(max_age_days) {
        return Err(format!(
            "refused: {file} is {days} days old, older than evidence.max_age_days = {max_age_days} (--evidence-max-age 0 accepts any age); it ran at {} by its {}",
            at.format("%Y-%m-%d %H:%M UTC"),
            if source == "file" {
                "own timestamp"
            } else {
                "modification time"
            }
        ));
    }
    Ok(())
}

/// The cluster under test, as its API server answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    /// `GET /version` gitVersion (`v1.33.0`, `v1.30.4-eks-a737599`).
    pub git_version: String,
    /// The kube-system namespace's UID, when it was read; `Err` says why not.
    pub kube_system_uid: Option<Result<String, String>>,
}

/// What the identity comparison concluded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identity {
    /// Compared and matched; the text says what.
    Verified(String),
    /// Not compared; the text says why.
    NotCompared(String),
    /// Of another cluster: refused.
    Mismatch(String),
}

/// `major.minor[.patch]` numbers of `v1.24.1-eks-x` / `1.25`.
fn numbers(v: &str) -> Vec<u64> {
    let core = v.trim().trim_start_matches('v');
    let core = core.split(['-', '+']).next().unwrap_or_default();
    core.split('.')
        .map_while(|p| p.parse().ok())
        .take(3)
        .collect()
}

/// Compares what the evidence records with the cluster (`None`: no kubeconfig).
pub fn identity(recorded: &Recorded, cluster: Option<&Observed>) -> Identity {
    let Some(what) = recorded.describe() else {
        return Identity::NotCompared(
            "the evidence records neither the cluster's Kubernetes version nor its UID: identity not compared".to_owned(),
        );
    };
    let Some(cluster) = cluster else {
        return Identity::NotCompared(format!(
            "no kubeconfig given: the evidence's identity ({what}) was not compared with the cluster"
        ));
    };
    let mut compared = Vec::new();
    let mut open = Vec::new();
    if let Some(v) = &recorded.k8s_version {
        let (mine, theirs) = (numbers(v), numbers(&cluster.git_version));
        let n = mine.len().min(theirs.len());
        if n < 2 {
            open.push(format!(
                "versions {v} and {} could not be compared",
                cluster.git_version
            ));
        } else if mine[..n] != theirs[..n] {
            return Identity::Mismatch(format!(
                "refused: evidence of another cluster: it records Kubernetes {v}{}, the cluster runs {}",
                recorded
                    .version_source
                    .as_deref()
                    .map(|s| format!(" ({s})"))
                    .unwrap_or_default(),
                cluster.git_version
            ));
        } else {
            compared.push(format!("Kubernetes {v} = {}", cluster.git_version));
        }
    }
    if let Some(uid) = &recorded.cluster_uid {
        match &cluster.kube_system_uid {
            Some(Ok(theirs)) if theirs == uid => compared.push(format!("kube-system uid {uid}")),
            Some(Ok(theirs)) => {
                return Identity::Mismatch(format!(
                    "refused: evidence of another cluster: it records kube-system uid {uid}, the cluster's is {theirs}"
                ));
            }
            Some(Err(why)) => open.push(format!("the cluster UID could not be read ({why})")),
            None => open.push("the cluster UID was not read".to_owned()),
        }
    }
    if open.is_empty() {
        Identity::Verified(format!("identity verified: {}", compared.join(", ")))
    } else {
        Identity::NotCompared(format!(
            "identity not fully compared: {}{}",
            open.join("; "),
            if compared.is_empty() {
                String::new()
            } else {
                format!(" (matched: {})", compared.join(", "))
            }
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(v: Option<&str>, uid: Option<&str>) -> Recorded {
        Recorded {
            k8s_version: v.map(Into::into),
            version_source: v.map(|_| "serverversion.json".into()),
            cluster_uid: uid.map(Into::into),
        }
    }

    fn obs(v: &str, uid: Option<Result<&str, &str>>) -> Observed {
        Observed {
            git_version: v.into(),
            kube_system_uid: uid.map(|r| r.map(Into::into).map_err(Into::into)),
        }
    }

    #[test]
    fn identity_table() {
        let rows: Vec<(Recorded, Option<Observed>, &str, &str)> = vec![
            (
                rec(None, None),
                Some(obs("v1.33.0", None)),
                "not",
                "records neither",
            ),
            (rec(Some("v1.33.0"), None), None, "not", "no kubeconfig"),
            (
                rec(Some("v1.33.0"), None),
                Some(obs("v1.33.0", None)),
                "ok",
                "v1.33.0 = v1.33.0",
            ),
            (
                rec(Some("v1.30.4"), None),
                Some(obs("v1.30.4-eks-a737599", None)),
                "ok",
                "verified",
            ),
            (
                rec(Some("1.25"), None),
                Some(obs("v1.25.9", None)),
                "ok",
                "1.25",
            ),
            (
                rec(Some("v1.23.8"), None),
                Some(obs("v1.33.0", None)),
                "bad",
                "another cluster",
            ),
            (
                rec(Some("1.24"), None),
                Some(obs("v1.25.0", None)),
                "bad",
                "1.24",
            ),
            (
                rec(Some("v1.23.8"), Some("u1")),
                Some(obs("v1.23.8", Some(Ok("u1")))),
                "ok",
                "uid u1",
            ),
            (
                rec(Some("v1.23.8"), Some("u1")),
                Some(obs("v1.23.8", Some(Ok("u2")))),
                "bad",
                "u2",
            ),
            (
                rec(Some("v1.23.8"), Some("u1")),
                Some(obs("v1.23.8", Some(Err("403")))),
                "not",
                "403",
            ),
            (
                rec(Some("weird"), None),
                Some(obs("v1.23.8", None)),
                "not",
                "could not be compared",
            ),
        ];
        for (r, o, kind, text) in rows {
            let got = identity(&r, o.as_ref());
            let (k, t) = match &got {
                Identity::Verified(t) => ("ok", t),
                Identity::NotCompared(t) => ("not", t),
                Identity::Mismatch(t) => ("bad", t),
            };
            assert_eq!(k, kind, "{r:?}: {t}");
            assert!(t.contains(text), "{r:?}: {t}");
        }
    }

    #[test]
    fn freshness_table() {
        let now = DateTime::parse_from_rfc3339("2026-01-31T00:00:00Z")
            .unwrap()
            .to_utc();
        let at = |d: &str| Some(DateTime::parse_from_rfc3339(d).unwrap().to_utc());
        assert!(freshness("f", at("2026-01-20T00:00:00Z"), "file", now, 30).is_ok());
        let e = freshness("f", at("2025-05-09T00:25:58Z"), "file", now, 30).unwrap_err();
        assert!(
            e.contains("is 266 days old") && e.contains("--evidence-max-age 0"),
            "{e}"
        );
        assert!(freshness("f", at("2015-01-01T00:00:00Z"), "mtime", now, 0).is_ok());
        assert!(
            freshness("f", None, "mtime", now, 30)
                .unwrap_err()
                .contains("unknown")
        );
    }
}
