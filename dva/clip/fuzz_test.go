package clip

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/gata-contrib/gata/dva/internal/refdata"
)

// FuzzParseConfig: any input gives a config that passes validation or an error, never a panic.
func FuzzParseConfig(f *testing.F) {
	for _, name := range []string{"open_clip_config.json", "open_clip_config_gelu.json"} {
		data, err := os.ReadFile(filepath.Join(refdata.Clip(f), name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"embed_dim": 1, "vision_cfg": {"layers": [1]}, "text_cfg": {}}`))
	f.Add([]byte(`{"model_cfg": null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			return
		}
		if err := c.validate(); err != nil {
			t.Fatalf("ParseConfig accepted a config that fails validation: %v", err)
		}
		if c.Vision.Heads() <= 0 || c.Vision.Tokens() <= 1 || c.Text.Width%c.Text.Heads != 0 {
			t.Fatalf("ParseConfig accepted %+v", c)
		}
		_ = c.Shapes()
	})
}
