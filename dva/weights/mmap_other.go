//go:build !unix

package weights

import "os"

// mapping is a file's content; without mmap it is read into memory.
type mapping struct {
	data []byte
}

func mapFile(path string) (*mapping, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return &mapping{data: b}, nil
}

func (m *mapping) close() error {
	m.data = nil
	return nil
}
