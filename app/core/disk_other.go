//go:build !unix && !windows

package core

import "errors"

func freeBytes(string) (int64, error) { return 0, errors.New("not supported on this system") }
