//go:build tools

// Package tools pins the Greenfield storage provider command so go.mod and
// go.sum describe exactly what build.sh compiles.
package tools

import _ "github.com/bnb-chain/greenfield-storage-provider/cmd/storage_provider"
