"""Content bundles (signatures packed with a manifest) and their signed distribution through TUF."""

from __future__ import annotations

from quet.bundle.build import BundleError, BundleManifest, build_bundle, read_manifest
from quet.bundle.install import current_signatures_dir, current_version, install_bundle

__all__ = [
    "BundleError",
    "BundleManifest",
    "build_bundle",
    "current_signatures_dir",
    "current_version",
    "install_bundle",
    "read_manifest",
]
