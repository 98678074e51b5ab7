// Wrapper module for building the Python language host
// (github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3).
//
// That module has no tags of its own: it is pinned by the pseudo-version of the commit that the
// release tag v3.272.0 points at (LANGHOST_PSEUDO_VERSION in tools/engine/bootstrap.sh, which
// rewrites the requirement below in a temporary copy of this file). Its go.mod replaces pkg/v3 and
// sdk/v3 with sibling directories, so they are required here at the same release, and its non-local
// replace directives are repeated. Nothing is built in this directory.
module lastmile.local/tools/engine/langhost-python

go 1.24

require (
	// Placeholder version: bootstrap.sh sets the real pseudo-version with `go mod edit -require`.
	github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3 v3.0.0-00010101000000-000000000000
	github.com/pulumi/pulumi/pkg/v3 v3.272.0
	github.com/pulumi/pulumi/sdk/v3 v3.272.0
)

replace github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e
