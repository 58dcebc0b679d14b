//! The namespace of one run of an in-cluster probe check (Ingress, NetworkPolicy, user
//! namespaces, LoadBalancer, Multus): created with the labels `nfvi-verify clean` finds it
//! by ([`crate::clean::labels`]), its deletion registered as the check's cleanup before it
//! exists (it takes the pods and everything else in it along, whatever the check's end:
//! pass, failure, timeout, Ctrl-C), and the probe pods in it: created from their specs,
//! waited for with one timeout ([`START_TIMEOUT`]) and read back through their logs. Only
//! observation: what the pods showed is judged by each check's pure functions.

use std::sync::Arc;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, LogParams, PostParams};
use nfvi_harness::{CheckContext, CheckError};

use crate::cluster::Cluster;
use crate::probes::{START_TIMEOUT, wait_pod};

/// A namespace of this run, and the probe pods in it.
pub(crate) struct ProbeNs {
    c: Arc<Cluster>,
    name: String,
    pods: Api<Pod>,
}

impl ProbeNs {
    /// Creates the namespace `name`, its deletion registered first.
    pub(crate) async fn create(
        cx: &CheckContext,
        c: &Arc<Cluster>,
        name: &str,
    ) -> Result<Self, CheckError> {
        crate::upstream::pod::namespace(cx, c, name, false).await?;
        Ok(Self {
            c: c.clone(),
            name: name.to_owned(),
            pods: Api::namespaced(c.client().clone(), name),
        })
    }

    /// The pods of the namespace, for what the helpers here do not do.
    pub(crate) fn pods(&self) -> &Api<Pod> {
        &self.pods
    }

    /// Another kind of object of the namespace (Services, Ingresses, policies, events).
    pub(crate) fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.c.client().clone(), &self.name)
    }

    /// Creates the pod `spec` (named in its metadata).
    pub(crate) async fn create_pod(&self, spec: &Pod) -> Result<Pod, CheckError> {
        let name = spec.metadata.name.as_deref().unwrap_or_default();
        let ns = &self.name;
        Ok(self
            .pods
            .create(&PostParams::default(), spec)
            .await
            .map_err(|e| self.c.explain(&format!("create pod {ns}/{name}"), &e))?)
    }

    /// Waits until the pod `name` runs with an IP, or cannot.
    pub(crate) async fn running(&self, name: &str) -> Result<Pod, CheckError> {
        Ok(wait_pod(&self.pods, &self.c, name, false, START_TIMEOUT).await?)
    }

    /// Creates the pod `spec` and waits until it runs with an IP.
    pub(crate) async fn start(&self, spec: &Pod) -> Result<Pod, CheckError> {
        self.create_pod(spec).await?;
        self.running(spec.metadata.name.as_deref().unwrap_or_default())
            .await
    }

    /// Waits until the one-shot pod `name` has ended (succeeded or failed), then reads its
    /// log.
    pub(crate) async fn finished(&self, name: &str) -> Result<(Pod, String), CheckError> {
        let done = wait_pod(&self.pods, &self.c, name, true, START_TIMEOUT).await?;
        Ok((done, self.logs(name).await?))
    }

    /// The log of the pod `name`.
    pub(crate) async fn logs(&self, name: &str) -> Result<String, CheckError> {
        let ns = &self.name;
        Ok(self
            .pods
            .logs(name, &LogParams::default())
            .await
            .map_err(|e| {
                self.c
                    .explain(&format!("get the log of pod {ns}/{name}"), &e)
            })?)
    }
}
