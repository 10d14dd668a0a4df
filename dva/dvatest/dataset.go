package dvatest

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Photo returns one of the shared test photos of ClipDir (chelsea.jpg, coffee.jpg,
// astronaut.jpg, rocket.jpg, camera_gray_224x229.png, chelsea.png, tiny_3x500.png,
// retina.jpg), failing the test when it cannot be read.
func Photo(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(ClipDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TarMember is one file of a test archive.
type TarMember struct {
	Name string
	Data string
}

// tarModTime is every member's modification time, so that an archive's bytes depend only
// on its members.
var tarModTime = time.Unix(1700000000, 0)

// TarBytes returns a tar archive of the members in order, each a regular file of mode 0644.
func TarBytes(t testing.TB, members ...TarMember) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, m := range members {
		hdr := &tar.Header{Name: m.Name, Mode: 0o644, Size: int64(len(m.Data)), ModTime: tarModTime, Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, m.Data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// ShardPhotos are the shared photos WriteShard cycles over, in order.
var ShardPhotos = []string{"chelsea.jpg", "coffee.jpg", "astronaut.jpg", "rocket.jpg", "camera_gray_224x229.png", "chelsea.png"}

// WriteShard writes a WebDataset shard of n samples of real images as
// dir/shard-00000.tar and returns its path. Sample i has the key fmt.Sprintf("%09d", i),
// the photo ShardPhotos[i%len(ShardPhotos)] (its extension names the member) and the
// caption fmt.Sprintf("photo number %d, a %s", i, photo).
func WriteShard(t testing.TB, dir string, n int) string {
	t.Helper()
	imgs := map[string]string{}
	members := make([]TarMember, 0, 2*n)
	for i := range n {
		f := ShardPhotos[i%len(ShardPhotos)]
		if _, ok := imgs[f]; !ok {
			imgs[f] = string(Photo(t, f))
		}
		k := fmt.Sprintf("%09d", i)
		members = append(members,
			TarMember{Name: k + filepath.Ext(f), Data: imgs[f]},
			TarMember{Name: k + ".txt", Data: fmt.Sprintf("photo number %d, a %s", i, f)})
	}
	p := filepath.Join(dir, "shard-00000.tar")
	if err := os.WriteFile(p, TarBytes(t, members...), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
