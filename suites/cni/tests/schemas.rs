//! The checked-in CNI schemas match the types.

use std::path::Path;

#[test]
fn checked_in_cni_schemas_are_fresh() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
    for (name, text) in nfvi_suite_cni::result::schemas() {
        let on_disk = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
        assert!(
            on_disk == text,
            "schemas/{name} is stale or missing: run `cargo xtask schemas`"
        );
    }
}
