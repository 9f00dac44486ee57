"""MTL Playground pages (Panel). Each page is a thin view over mtl_core; see docs/architecture.md."""
