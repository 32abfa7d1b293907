//! Descriptors for server reflection: each `.proto` as a serialized `FileDescriptorProto`.
//!
//! (Placeholder: writes an empty table until reflection is implemented.)

use std::path::{Path, PathBuf};

/// Writes `$OUT_DIR/descriptors.rs`.
pub fn generate(
    _proto_root: &Path,
    _protos: &[PathBuf],
    out_dir: &Path,
) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::write(
        out_dir.join("descriptors.rs"),
        "/// Every file under proto/: (file name, serialized FileDescriptorProto).\n\
         pub const FILE_DESCRIPTORS: &[(&str, &[u8])] = &[];\n",
    )?;
    Ok(())
}
