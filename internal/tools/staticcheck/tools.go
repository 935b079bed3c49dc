//go:build tools

// Package staticcheck pins the staticcheck version the test command runs.
package staticcheck

import _ "honnef.co/go/tools/cmd/staticcheck"
