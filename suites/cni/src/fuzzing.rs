//! Entry points for the property targets in `fuzz/` (issue #14), not an API: a plugin's
//! result read leniently as the assertions read it, reached without running a plugin.

/// The result as the assertions read it, and what they ask of it.
pub fn read_result(value: &serde_json::Value) -> (crate::result::Result100, Vec<String>) {
    let r = crate::result::read_result(value);
    let _ = (r.first_address(), r.first_ip(), r.route_list().len());
    let names = r.interface_names();
    (r, names)
}
