//go:build tools

// Package interop pins NetBird's relay server main package in go.mod so that
// `go build github.com/netbirdio/netbird/relay` works from this module.
package interop

import _ "github.com/netbirdio/netbird/relay"
