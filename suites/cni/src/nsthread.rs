//! Running a closure inside a network namespace on a dedicated OS thread (nfvi-net's
//! [`nfvi_net::in_netns`]): a socket belongs to the namespace of the thread that creates it,
//! and `setns` changes only the calling thread, so this never touches the async runtime's
//! pooled threads.

/// Runs `f` in the network namespace at `netns_path` on a new thread.
pub(crate) async fn in_netns<T, F>(netns_path: String, f: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, String> + Send + 'static,
{
    nfvi_net::in_netns(netns_path, f)
        .await
        .map_err(|e| nfvi_net::chain(&e))?
}
