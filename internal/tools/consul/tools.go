//go:build tools

// Package consul pins the Consul agent that the integration tests run.
// It is a separate module so the library's own go.mod does not carry
// Consul's dependency tree; internal/consultest builds the binary from it.
package consul

import _ "github.com/hashicorp/consul"
