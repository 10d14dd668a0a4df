//go:build tools

// Package tools pins the Greenfield chain command so go.mod and go.sum
// describe exactly what build.sh compiles.
package tools

import _ "github.com/bnb-chain/greenfield/cmd/gnfd"
