#pragma once
// Versioned model bundles on a local store or S3/MinIO, with a verified cache.
// Not implemented yet: this target only reserves the layer in the dependency graph (see issue "registry").
namespace aitw::registry {}
