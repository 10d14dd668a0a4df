package preprocess

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"image"
	"image/color"
	"image/gif"
	"image/png"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// pilScript writes a few files only PIL can write (CMYK JPEG, LA / 1-bit / tRNS PNGs,
// WebP, BMP), then runs the reference preprocessing (clip_ref.py's preprocess_u8:
// resize in the file's mode, centre crop, convert("RGB")) on every job and prints the
// PIL mode and the RGB bytes of each result as JSON.
const pilScript = `
import hashlib, json, sys
from PIL import Image
req = json.load(sys.stdin)
d = req["dir"]
base = Image.open(d + "/rgba_noise.png").convert("RGBA")
rgb = base.convert("RGB")
base.convert("LA").save(d + "/pil_la.png")
rgb.convert("1").save(d + "/pil_1bit.png")
g = rgb.convert("L"); g.info["transparency"] = 77; g.save(d + "/pil_gray_trns.png", transparency=77)
rgb.save(d + "/pil_rgb_trns.png", transparency=(10, 20, 30))
rgb.save(d + "/pil_lossless.webp", lossless=True)
base.save(d + "/pil_lossless_alpha.webp", lossless=True)
rgb.save(d + "/pil_rgb.bmp")
photo = Image.open(req["photo"]).convert("RGB")
photo.save(d + "/pil_lossy.webp", quality=90)
rgb.save(d + "/pil_lossy_even.webp", quality=80)
photo.save(d + "/pil_422.jpg", quality=90, subsampling=1)
photo.convert("L").save(d + "/pil_gray.jpg", quality=90)
photo.resize((37, 21)).save(d + "/pil_420_small.jpg", quality=90, subsampling=2)
photo.resize((1, 9)).save(d + "/pil_420_1x9.jpg", quality=90, subsampling=2)
photo.resize((2, 3)).save(d + "/pil_422_2x3.jpg", quality=90, subsampling=1)
photo.save(d + "/pil_progressive.jpg", quality=85, progressive=True)
pa = photo.convert("RGBA"); pa.putalpha(base.convert("L").resize(photo.size)); pa.save(d + "/pil_lossy_alpha.webp", quality=90)
rgb.convert("P", palette=Image.ADAPTIVE, colors=50).save(d + "/pil_p8.bmp")
rgb.convert("CMYK").save(d + "/pil_cmyk.jpg", quality=95)
out = []
for j in req["jobs"]:
    im = Image.open(d + "/" + j["file"]); im.load()
    mode = im.mode
    S = j["size"]; w, h = im.size
    rs = Image.BICUBIC if j["interp"] == "bicubic" else Image.BILINEAR
    if j["resize"] == "squash":
        nw, nh = S, S
    elif w <= h:
        nw, nh = S, int(S * h / w)
    else:
        nw, nh = int(S * w / h), S
    if (nw, nh) != (w, h):
        im = im.resize((nw, nh), rs)
    if (nw, nh) != (S, S):
        l, t = int(round((nw - S) / 2.0)), int(round((nh - S) / 2.0))
        im = im.crop((l, t, l + S, t + S))
    if im.mode != "RGB":
        im = im.convert("RGB")
    out.append({"mode": mode, "rgb": im.tobytes().hex()})
print(json.dumps(out))
`

// havePIL returns the python interpreter when it can import PIL, or skips the test.
func havePIL(t *testing.T) string {
	t.Helper()
	const py = "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		t.Skipf("PIL cross-check skipped: %s not found", py)
	}
	if out, err := exec.Command(py, "-c", "import PIL").CombinedOutput(); err != nil {
		t.Skipf("PIL cross-check skipped: python3 cannot import PIL: %v %s", err, out)
	}
	return py
}

// writeGoImages writes the images that Go's encoders can make into dir.
func writeGoImages(t *testing.T, dir string) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	save := func(name string, enc func(*os.File) error) {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := enc(f); err != nil {
			t.Fatalf("encode %s: %v", name, err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// RGBA: smooth colours, alpha rings from opaque to fully transparent, and noise in
	// the colour of the transparent pixels (PIL's premultiplied resize must drop it).
	rgba := image.NewNRGBA(image.Rect(0, 0, 300, 200))
	for y := range 200 {
		for x := range 300 {
			a := uint8((x*x + 3*y*y) / 97 % 300)
			if a > 250 {
				a = 255
			}
			if (x/20+y/20)%3 == 0 {
				a = 0
			}
			c := color.NRGBA{uint8(x), uint8(y + x/3), uint8(255 - y), a}
			if a == 0 {
				c.R, c.G, c.B = uint8(rng.IntN(256)), uint8(rng.IntN(256)), uint8(rng.IntN(256))
			}
			rgba.SetNRGBA(x, y, c)
		}
	}
	save("rgba_noise.png", func(f *os.File) error { return png.Encode(f, rgba) })

	pal := color.Palette{}
	for i := range 16 {
		pal = append(pal, color.NRGBA{uint8(i * 16), uint8(255 - i*9), uint8(i * i), 255})
	}
	pal[5] = color.NRGBA{200, 100, 50, 0} // transparent entry: its colour survives P -> RGB
	p := image.NewPaletted(image.Rect(0, 0, 301, 203), pal)
	for i := range p.Pix {
		p.Pix[i] = uint8(rng.IntN(16))
	}
	save("palette.png", func(f *os.File) error { return png.Encode(f, p) })

	gp := image.NewPaletted(image.Rect(0, 0, 250, 300), pal[:4:4])
	gp.Palette = color.Palette{color.RGBA{255, 0, 0, 255}, color.RGBA{0, 255, 0, 255}, color.RGBA{0, 0, 255, 255}, color.RGBA{9, 9, 9, 255}}
	for y := range 300 {
		for x := range 250 {
			gp.SetColorIndex(x, y, uint8((x/7+y/5)%4))
		}
	}
	save("anim.gif", func(f *os.File) error { return gif.Encode(f, gp, nil) })

	g16 := image.NewGray16(image.Rect(0, 0, 230, 260))
	for y := range 260 {
		for x := range 230 {
			g16.SetGray16(x, y, color.Gray16{uint16(x*y%300 + rng.IntN(3))})
		}
	}
	save("gray16.png", func(f *os.File) error { return png.Encode(f, g16) })

	rgb16 := image.NewRGBA64(image.Rect(0, 0, 260, 240))
	nrgba16 := image.NewNRGBA64(image.Rect(0, 0, 260, 240))
	for y := range 240 {
		for x := range 260 {
			v := func() uint16 { return uint16(rng.IntN(65536)) }
			rgb16.SetRGBA64(x, y, color.RGBA64{v(), v(), v(), 0xFFFF})
			nrgba16.SetNRGBA64(x, y, color.NRGBA64{v(), v(), v(), uint16(x * 300)})
		}
	}
	save("rgb16.png", func(f *os.File) error { return png.Encode(f, rgb16) })
	save("rgba16.png", func(f *os.File) error { return png.Encode(f, nrgba16) })

	g := image.NewGray(image.Rect(0, 0, 640, 230))
	for i := range g.Pix {
		g.Pix[i] = uint8(rng.IntN(256))
	}
	save("gray.png", func(f *os.File) error { return png.Encode(f, g) })
}

// TestAgainstPIL runs the whole Decode + Crop on images of every mode and compares the
// RGB crop with PIL's, computed by a small script, for three configurations.
func TestAgainstPIL(t *testing.T) {
	py := havePIL(t)
	dir := t.TempDir()
	writeGoImages(t, dir)
	for _, name := range []string{"astronaut.jpg", "chelsea.jpg", "coffee.jpg", "rocket.jpg", "retina.jpg"} {
		if err := os.WriteFile(filepath.Join(dir, name), readRef(t, clipDir(t), name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	files := []struct {
		name, mode string
		maxDiff    int     // 0: bit exact; JPEG decoders differ; -1: no per-byte bound
		maxMean    float64 // bound of the mean |delta| in levels
	}{
		{"rgba_noise.png", "RGBA", 0, 0},
		{"palette.png", "P", 0, 0},
		{"anim.gif", "P", 0, 0},
		{"gray16.png", "I", 0, 0},
		{"gray.png", "L", 0, 0},
		{"rgb16.png", "RGB", 0, 0},
		{"rgba16.png", "RGBA", 0, 0},
		{"pil_la.png", "LA", 0, 0},
		{"pil_1bit.png", "1", 0, 0},
		{"pil_gray_trns.png", "L", 0, 0},
		{"pil_rgb_trns.png", "RGB", 0, 0},
		{"pil_lossless.webp", "RGB", 0, 0},
		{"pil_lossless_alpha.webp", "RGBA", 0, 0},
		{"pil_rgb.bmp", "RGB", 0, 0},
		{"pil_p8.bmp", "P", 0, 0},
		// JPEG: the decoders' IDCTs differ (Go's image/jpeg vs libjpeg-turbo's islow);
		// upsampling and colour conversion are libjpeg's (jpeg.go).
		{"pil_cmyk.jpg", "CMYK", 4, 0.1},
		{"pil_422.jpg", "RGB", 4, 0.1},
		{"pil_gray.jpg", "L", 4, 0.1},
		{"pil_420_small.jpg", "RGB", 4, 0.1},
		{"pil_progressive.jpg", "RGB", 4, 0.1},
		{"pil_420_1x9.jpg", "RGB", 4, 1}, // 9 pixels stretched over the crop: one decoded level covers many bytes
		{"pil_422_2x3.jpg", "RGB", 4, 0.5},
		{"astronaut.jpg", "RGB", 4, 0.1},
		{"chelsea.jpg", "RGB", 4, 0.1},
		{"coffee.jpg", "RGB", 4, 0.1},
		{"rocket.jpg", "RGB", 4, 0.1},
		{"retina.jpg", "RGB", 4, 0.1},
		// Lossy WebP is converted as libwebp does it (fancy chroma upsampling, BT.601
		// studio range): chelsea (451x300: odd width, even height) and 300x200.
		{"pil_lossy.webp", "RGB", 0, 0},
		{"pil_lossy_alpha.webp", "RGBA", 0, 0},
		{"pil_lossy_even.webp", "RGB", 0, 0},
	}
	configs := []Config{DefaultConfig(), DefaultConfig(), DefaultConfig(), DefaultConfig()}
	configs[1].ResizeMode = ResizeSquash
	configs[2].Interpolation = Bilinear
	configs[3].Size = 100
	type job struct {
		File   string `json:"file"`
		Size   int    `json:"size"`
		Resize string `json:"resize"`
		Interp string `json:"interp"`
	}
	var jobs []job
	for _, f := range files {
		for _, c := range configs {
			jobs = append(jobs, job{f.name, c.Size, c.ResizeMode, c.Interpolation})
		}
	}
	photo := filepath.Join(clipDir(t), "chelsea.png")
	req, err := json.Marshal(map[string]any{"dir": dir, "jobs": jobs, "photo": photo})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "-c", pilScript)
	cmd.Stdin = bytes.NewReader(req)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("PIL script: %v\n%s", err, stderr.String())
	}
	var res []struct {
		Mode string `json:"mode"`
		RGB  string `json:"rgb"`
	}
	if err := json.Unmarshal(out, &res); err != nil || len(res) != len(jobs) {
		t.Fatalf("PIL script output: %v (%d results for %d jobs)", err, len(res), len(jobs))
	}
	for i, j := range jobs {
		f := files[i/len(configs)]
		c := configs[i%len(configs)]
		t.Run(j.File+"/"+j.Resize+"-"+j.Interp+"-"+itoa(j.Size), func(t *testing.T) {
			if res[i].Mode != f.mode {
				t.Fatalf("PIL opened %s as mode %s, the test expects %s", j.File, res[i].Mode, f.mode)
			}
			want, err := hex.DecodeString(res[i].RGB)
			if err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(filepath.Join(dir, j.File))
			if err != nil {
				t.Fatal(err)
			}
			img, _, err := Decode(bytes.NewReader(data), DefaultLimits())
			if err != nil {
				t.Fatalf("Decode(%s): %v", j.File, err)
			}
			got, err := Crop(img, c)
			if err != nil {
				t.Fatalf("Crop(%s): %v", j.File, err)
			}
			if len(got.Pix) != len(want) {
				t.Fatalf("Crop(%s) has %d bytes, PIL %d", j.File, len(got.Pix), len(want))
			}
			maxd, ndiff, first, sum := 0, 0, -1, 0
			for k := range want {
				d := absInt(int(got.Pix[k]) - int(want[k]))
				sum += d
				if d > 0 {
					ndiff++
					if first < 0 {
						first = k
					}
				}
				maxd = max(maxd, d)
			}
			mean := float64(sum) / float64(len(want))
			if mean > f.maxMean {
				t.Errorf("Crop(%s, %+v): mean |delta| vs PIL %.3f levels, want <= %v", j.File, c, mean, f.maxMean)
			}
			if f.maxDiff >= 0 && maxd > f.maxDiff {
				t.Errorf("Crop(%s, %+v): %d of %d bytes differ from PIL, max %d (allowed %d), first at pixel (%d, %d)",
					j.File, c, ndiff, len(want), maxd, f.maxDiff, first/3%c.Size, first/3/c.Size)
			}
			if f.maxDiff != 0 {
				t.Logf("Crop(%s): max |delta| vs PIL %d levels, mean %.3f, %d of %d bytes differ", j.File, maxd, mean, ndiff, len(want))
			}
		})
	}
}

func absInt(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func itoa(v int) string {
	b, _ := json.Marshal(v)
	return string(b)
}
