package preprocess

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/gata-contrib/gata/dva/internal/refdata"
	"golang.org/x/image/bmp"
)

// pngHeader returns a PNG signature and an IHDR chunk (8-bit RGB) claiming w x h, with
// a valid CRC and no image data.
func pngHeader(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 17)
	copy(ihdr, "IHDR")
	binary.BigEndian.PutUint32(ihdr[4:], w)
	binary.BigEndian.PutUint32(ihdr[8:], h)
	ihdr[12], ihdr[13] = 8, 2
	binary.Write(&b, binary.BigEndian, uint32(13))
	b.Write(ihdr)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(ihdr))
	return b.Bytes()
}

// jpegWithSize patches the frame header (SOF0/SOF2) of a JPEG to claim w x h.
func jpegWithSize(t *testing.T, data []byte, w, h uint16) []byte {
	t.Helper()
	out := bytes.Clone(data)
	for i := 2; i+9 < len(out); {
		if out[i] != 0xFF {
			t.Fatalf("jpegWithSize: lost marker sync at %d", i)
		}
		m := out[i+1]
		if m == 0xC0 || m == 0xC2 {
			binary.BigEndian.PutUint16(out[i+5:], h)
			binary.BigEndian.PutUint16(out[i+7:], w)
			return out
		}
		i += 2 + int(binary.BigEndian.Uint16(out[i+2:]))
	}
	t.Fatal("jpegWithSize: no SOF marker")
	return nil
}

func encodePNG(t *testing.T, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatalf("png.Encode: %v", err)
	}
	return b.Bytes()
}

// TestDecodeInvalid writes bad files into a temporary folder and checks the error each
// one gives: one line, the right sentinel where there is one, and no panic.
func TestDecodeInvalid(t *testing.T) {
	ref := clipDir(t)
	coffee := readRef(t, ref, "coffee.jpg")
	chelsea := readRef(t, ref, "chelsea.png")
	rng := rand.New(rand.NewPCG(3, 4))
	random := make([]byte, 4096)
	for i := range random {
		random[i] = byte(rng.IntN(256))
	}
	random[0] = 0x00 // not accidentally a known signature
	var gifHuge bytes.Buffer
	gifHuge.WriteString("GIF89a")
	binary.Write(&gifHuge, binary.LittleEndian, [2]uint16{65535, 65535})
	gifHuge.Write([]byte{0, 0, 0})
	smallLimits := Limits{MaxPixels: 1000, MaxBytes: 1 << 20}
	corrupt := bytes.Clone(chelsea)
	for i := len(corrupt) / 2; i < len(corrupt)/2+64; i++ {
		corrupt[i] ^= 0x5A
	}

	tests := []struct {
		name    string
		data    []byte
		lim     Limits
		wantErr string // the whole message, or its start when it ends with "..."
		is      error
	}{
		{"empty", nil, DefaultLimits(), "decode image: empty file", nil},
		{"truncated-jpeg", coffee[:len(coffee)/2], DefaultLimits(), "decode image: jpeg: invalid JPEG format: short Huffman data", nil},
		{"truncated-png", chelsea[:len(chelsea)/2], DefaultLimits(), "decode image: png: invalid format: not enough pixel data", nil},
		{"png-signature-only", chelsea[:8], DefaultLimits(), "decode image: png: unexpected EOF", nil},
		{"corrupt-png", corrupt, DefaultLimits(), "decode image: png: ...", nil},
		{"png-bomb-100000x100000", pngHeader(100000, 100000), DefaultLimits(),
			"image 100000x100000 exceeds the 89 megapixel limit: image too large", ErrTooLarge},
		{"png-zero-width", pngHeader(0, 10), DefaultLimits(), "decode image: png: ...", nil},
		{"jpeg-bomb-40000x40000", jpegWithSize(t, coffee, 40000, 40000), DefaultLimits(),
			"image 40000x40000 exceeds the 89 megapixel limit: image too large", ErrTooLarge},
		{"gif-bomb-65535x65535", gifHuge.Bytes(), DefaultLimits(),
			"image 65535x65535 exceeds the 89 megapixel limit: image too large", ErrTooLarge},
		{"over-pixel-limit", coffee, smallLimits, "image 600x400 exceeds the 1000 pixel limit: image too large", ErrTooLarge},
		{"over-byte-limit", coffee, Limits{MaxBytes: 1 << 10}, "image file exceeds the 1024 byte limit: image too large", ErrTooLarge},
		{"random-bytes", random, DefaultLimits(), "decode image: unsupported image format (starts with 00 ...", ErrUnsupportedFormat},
		{"tiff", []byte("II*\x00\x08\x00\x00\x00"), DefaultLimits(), "decode image: unsupported image format (TIFF)", ErrUnsupportedFormat},
		{"avif", []byte("\x00\x00\x00\x1cftypavif\x00\x00\x00\x00"), DefaultLimits(),
			`decode image: unsupported image format (ISO media "avif", e.g. HEIC or AVIF)`, ErrUnsupportedFormat},
		{"truncated-webp", []byte("RIFF\x20\x00\x00\x00WEBPVP8 "), DefaultLimits(), "decode image: webp: ...", nil},
		{"truncated-gif", []byte("GIF89a\x10\x00\x10\x00"), DefaultLimits(), "decode image: gif: ...", nil},
		{"truncated-bmp", []byte("BM\x00\x00"), DefaultLimits(), "decode image: bmp: ...", nil},
	}
	dir := t.TempDir()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "invalid-"+tt.name)
			if err := os.WriteFile(path, tt.data, 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			img, _, err := Decode(f, tt.lim)
			runtime.ReadMemStats(&after)
			if err == nil {
				t.Fatalf("Decode(%s) = %v image, want error %q", tt.name, img.Bounds(), tt.wantErr)
			}
			msg := err.Error()
			if prefix, ok := strings.CutSuffix(tt.wantErr, "..."); ok {
				if !strings.HasPrefix(msg, prefix) {
					t.Errorf("Decode(%s) error = %q, want it to start with %q", tt.name, msg, prefix)
				}
			} else if msg != tt.wantErr {
				t.Errorf("Decode(%s) error = %q, want %q", tt.name, msg, tt.wantErr)
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("Decode(%s) error %q is not one line", tt.name, msg)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("Decode(%s) error %v is not %v", tt.name, err, tt.is)
			}
			if errors.Is(tt.is, ErrTooLarge) {
				// Rejected from the header: nothing near the pixel buffer was allocated.
				if got := after.TotalAlloc - before.TotalAlloc; got > 4<<20 {
					t.Errorf("Decode(%s) allocated %d bytes before rejecting it", tt.name, got)
				}
			}
			if _, err := Image(bytes.NewReader(tt.data), DefaultConfig(), tt.lim); err == nil {
				t.Errorf("Image(%s) succeeded, want an error", tt.name)
			}
		})
	}
}

func clipDir(t *testing.T) string {
	dir, _, _ := loadExpected(t)
	return dir
}

// TestCropModes checks PIL's mode rules on small hand-computed cases (no Python).
func TestCropModes(t *testing.T) {
	cfg := DefaultConfig()
	s := cfg.Size
	px := func(m *RGB, x, y int) [3]uint8 {
		p := m.Pix[3*(y*m.W+x):]
		return [3]uint8{p[0], p[1], p[2]}
	}

	t.Run("rgba-no-resize-drops-alpha", func(t *testing.T) {
		img := image.NewNRGBA(image.Rect(0, 0, s, s))
		for i := range img.Pix {
			img.Pix[i] = 0xFF
		}
		img.SetNRGBA(0, 0, color.NRGBA{200, 100, 50, 0})
		img.SetNRGBA(1, 0, color.NRGBA{10, 20, 30, 128})
		got, err := Crop(img, cfg)
		if err != nil {
			t.Fatal(err)
		}
		// convert("RGB") keeps the colour of transparent pixels: no black or white background.
		if p := px(got, 0, 0); p != [3]uint8{200, 100, 50} {
			t.Errorf("Crop(RGBA)(0, 0) = %v, want [200 100 50]", p)
		}
		if p := px(got, 1, 0); p != [3]uint8{10, 20, 30} {
			t.Errorf("Crop(RGBA)(1, 0) = %v, want [10 20 30]", p)
		}
	})

	t.Run("rgba-resize-premultiplied", func(t *testing.T) {
		// Left half opaque red, right half fully transparent with random colours. Resized
		// premultiplied, the random colours weigh nothing: no output pixel gets green or
		// blue, the left stays pure red and the right black (transparent, colour 0).
		rng := rand.New(rand.NewPCG(5, 6))
		img := image.NewNRGBA(image.Rect(0, 0, 2*s, 2*s))
		for y := range 2 * s {
			for x := range 2 * s {
				c := color.NRGBA{255, 0, 0, 255}
				if x >= s {
					c = color.NRGBA{uint8(rng.IntN(256)), uint8(rng.IntN(256)), uint8(rng.IntN(256)), 0}
				}
				img.SetNRGBA(x, y, c)
			}
		}
		got, err := Crop(img, cfg)
		if err != nil {
			t.Fatal(err)
		}
		for y := range s {
			for x := range s {
				p := px(got, x, y)
				if p[1] != 0 || p[2] != 0 {
					t.Fatalf("Crop(RGBA)(%d, %d) = %v: transparent colour leaked in", x, y, p)
				}
				if x < s/2-4 && p != [3]uint8{255, 0, 0} || x > s/2+4 && p != [3]uint8{} {
					t.Fatalf("Crop(RGBA)(%d, %d) = %v, want pure red left, black right", x, y, p)
				}
			}
		}
	})

	// A 3x2 palette image in a 6 px square: resized to 9x6 with NEAREST (source column
	// x*3/9, row y*2/6), crop left round(1.5) = 2: columns 0,1,1,1,2,2, rows 0,0,0,1,1,1.
	pal := color.Palette{color.RGBA{255, 0, 0, 255}, color.RGBA{0, 255, 0, 255}, color.RGBA{0, 0, 255, 255},
		color.RGBA{10, 20, 30, 255}, color.RGBA{40, 50, 60, 255}, color.RGBA{70, 80, 90, 255}}
	pimg := image.NewPaletted(image.Rect(0, 0, 3, 2), pal)
	copy(pimg.Pix, []uint8{0, 1, 2, 3, 4, 5})
	cols, rows := []int{0, 1, 1, 1, 2, 2}, []int{0, 0, 0, 1, 1, 1}
	small := cfg
	small.Size = 6
	checkNearest := func(t *testing.T, img image.Image) {
		t.Helper()
		got, err := Crop(img, small)
		if err != nil {
			t.Fatal(err)
		}
		for y, sy := range rows {
			for x, sx := range cols {
				c := pal[pimg.Pix[sy*3+sx]].(color.RGBA)
				if p := px(got, x, y); p != [3]uint8{c.R, c.G, c.B} {
					t.Errorf("Crop(palette)(%d, %d) = %v, want palette colour %v of source (%d, %d)", x, y, p, c, sx, sy)
				}
			}
		}
	}
	t.Run("palette-nearest", func(t *testing.T) { checkNearest(t, pimg) })
	t.Run("gif-nearest", func(t *testing.T) {
		var b bytes.Buffer
		if err := gif.Encode(&b, pimg, nil); err != nil {
			t.Fatal(err)
		}
		img, format, err := Decode(&b, DefaultLimits())
		if err != nil || format != "gif" {
			t.Fatalf("Decode(gif) = %v, %q", err, format)
		}
		if _, ok := img.(*image.Paletted); !ok {
			t.Fatalf("Decode(gif) = %T, want *image.Paletted (mode P)", img)
		}
		checkNearest(t, img)
	})
	t.Run("png-palette-keeps-transparent-colour", func(t *testing.T) {
		tp := image.NewPaletted(image.Rect(0, 0, s, s), color.Palette{color.NRGBA{200, 100, 50, 0}})
		img, _, err := Decode(bytes.NewReader(encodePNG(t, tp)), DefaultLimits())
		if err != nil {
			t.Fatal(err)
		}
		got, err := Crop(img, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if p := px(got, 5, 5); p != [3]uint8{200, 100, 50} {
			t.Errorf("Crop(P with tRNS)(5, 5) = %v, want the palette colour [200 100 50]", p)
		}
	})

	t.Run("gray-replicated", func(t *testing.T) {
		g := image.NewGray(image.Rect(0, 0, s, s))
		g.SetGray(3, 4, color.Gray{77})
		got, _ := Crop(g, cfg)
		if p := px(got, 3, 4); p != [3]uint8{77, 77, 77} {
			t.Errorf("Crop(L)(3, 4) = %v, want [77 77 77]", p)
		}
	})
	t.Run("gray16-clipped-like-pil-mode-I", func(t *testing.T) {
		g := image.NewGray16(image.Rect(0, 0, s, s))
		g.SetGray16(0, 0, color.Gray16{900})
		g.SetGray16(1, 0, color.Gray16{100})
		got, _ := Crop(g, cfg)
		if p0, p1 := px(got, 0, 0), px(got, 1, 0); p0 != [3]uint8{255, 255, 255} || p1 != [3]uint8{100, 100, 100} {
			t.Errorf("Crop(I) = %v, %v, want [255 255 255] (clipped), [100 100 100]", p0, p1)
		}
	})
	t.Run("cmyk", func(t *testing.T) {
		c := image.NewCMYK(image.Rect(0, 0, s, s))
		c.SetCMYK(0, 0, color.CMYK{200, 100, 50, 60})
		got, _ := Crop(c, cfg)
		// nk = 255-60 = 195; channel = nk - round(v*nk/255): 195-153, 195-76, 195-38
		if p := px(got, 0, 0); p != [3]uint8{42, 119, 157} {
			t.Errorf("Crop(CMYK)(0, 0) = %v, want [42 119 157]", p)
		}
	})
	t.Run("ycbcr-matches-color-package", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(7, 8))
		for _, ratio := range []image.YCbCrSubsampleRatio{image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422,
			image.YCbCrSubsampleRatio420, image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410} {
			m := image.NewYCbCr(image.Rect(0, 0, 37, 29), ratio)
			for _, p := range [][]uint8{m.Y, m.Cb, m.Cr} {
				for i := range p {
					p[i] = uint8(rng.IntN(256))
				}
			}
			f := toFlat(m)
			for y := range 29 {
				for x := range 37 {
					want := color.RGBAModel.Convert(m.At(x, y)).(color.RGBA)
					got := f.pix[3*(y*37+x):]
					if got[0] != want.R || got[1] != want.G || got[2] != want.B {
						t.Fatalf("toFlat(YCbCr %v)(%d, %d) = %v, want %v", ratio, x, y, got[:3], want)
					}
				}
			}
		}
	})
}

func TestGeometry(t *testing.T) {
	squash := DefaultConfig()
	squash.ResizeMode = ResizeSquash
	tests := []struct {
		name          string
		w, h          int
		cfg           Config
		resized, crop image.Point
	}{
		{"rocket-truncated", 640, 427, DefaultConfig(), image.Pt(335, 224), image.Pt(56, 0)},
		{"camera-half-to-even", 224, 229, DefaultConfig(), image.Pt(224, 229), image.Pt(0, 2)},
		{"tiny-upscale", 3, 500, DefaultConfig(), image.Pt(224, 37333), image.Pt(0, 18554)},
		{"square", 512, 512, DefaultConfig(), image.Pt(224, 224), image.Pt(0, 0)},
		{"squash-wide", 640, 427, squash, image.Pt(224, 224), image.Pt(0, 0)},
		{"squash-tall", 3, 500, squash, image.Pt(224, 224), image.Pt(0, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, c := Geometry(tt.w, tt.h, tt.cfg)
			if r != tt.resized || c != tt.crop {
				t.Errorf("Geometry(%d, %d, %s) = %v, %v, want %v, %v", tt.w, tt.h, tt.cfg.ResizeMode, r, c, tt.resized, tt.crop)
			}
		})
	}
}

// TestSquash checks squash mode without Python (TestAgainstPIL compares it with PIL):
// the whole image is kept (a constant image stays constant, a left-right mirrored image
// stays mirrored within a level), and it differs from the shortest-side crop.
func TestSquash(t *testing.T) {
	dir := clipDir(t)
	img, _, err := Decode(bytes.NewReader(readRef(t, dir, "chelsea.png")), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.ResizeMode = ResizeSquash
	sq, err := Crop(img, cfg)
	if err != nil {
		t.Fatalf("Crop(chelsea.png, squash): %v", err)
	}
	if sq.W != 224 || sq.H != 224 {
		t.Fatalf("Crop(chelsea.png, squash) = %dx%d, want 224x224", sq.W, sq.H)
	}
	short, _ := Crop(img, DefaultConfig())
	if bytes.Equal(sq.Pix, short.Pix) {
		t.Errorf("Crop(chelsea.png) is the same in squash and shortest modes")
	}
	// Mirror the source: the squashed result must mirror too (up to fixed-point rounding).
	src := img.(*image.RGBA)
	b := src.Bounds()
	mirror := image.NewRGBA(b)
	for y := range b.Dy() {
		for x := range b.Dx() {
			copy(mirror.Pix[y*mirror.Stride+4*x:][:4], src.Pix[y*src.Stride+4*(b.Dx()-1-x):])
		}
	}
	mq, _ := Crop(mirror, cfg)
	maxd := 0
	for y := range 224 {
		for x := range 224 {
			for c := range 3 {
				maxd = max(maxd, absInt(int(sq.Pix[3*(y*224+x)+c])-int(mq.Pix[3*(y*224+223-x)+c])))
			}
		}
	}
	if maxd > 1 {
		t.Errorf("Crop(mirrored chelsea.png, squash) differs from the mirrored crop by %d levels, want <= 1", maxd)
	}
	flatImg := image.NewRGBA(image.Rect(0, 0, 451, 300))
	for i := range flatImg.Pix {
		flatImg.Pix[i] = []uint8{12, 200, 77, 255}[i%4]
	}
	fq, _ := Crop(flatImg, cfg)
	for i, v := range fq.Pix {
		if want := []uint8{12, 200, 77}[i%3]; v != want {
			t.Fatalf("Crop(constant image, squash) byte %d = %d, want %d", i, v, want)
		}
	}
}

func TestNormalizeFormula(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Size = 2
	rgb := []uint8{0, 128, 255, 1, 2, 3, 250, 251, 252, 100, 110, 120}
	dst := make([]float32, 12)
	Normalize(rgb, cfg, dst)
	for c := range 3 {
		for i := range 4 {
			u := rgb[3*i+c]
			want := (float32(u)/255 - cfg.Mean[c]) / cfg.Std[c]
			if got := dst[c*4+i]; math.Float32bits(got) != math.Float32bits(want) {
				t.Errorf("Normalize(%d)[%d][%d] = %v, want %v", u, c, i, got, want)
			}
		}
	}
}

func TestConfigValidate(t *testing.T) {
	bad := []Config{{}, {Size: 224, Std: OpenAIStd, ResizeMode: "longest"}, {Size: 224, Std: OpenAIStd, Interpolation: "lanczos"},
		{Size: 224}}
	for _, c := range bad {
		if err := c.Validate(); err == nil {
			t.Errorf("Config%+v.Validate() = nil, want an error", c)
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("DefaultConfig().Validate() = %v", err)
	}
}

func FuzzImage(f *testing.F) {
	// Small seeds of every format keep the fuzzer fast (it minimises what it finds).
	small := image.NewNRGBA(image.Rect(0, 0, 9, 5))
	for i := range small.Pix {
		small.Pix[i] = uint8(i * 37)
	}
	var buf bytes.Buffer
	for _, enc := range []func() error{
		func() error { return png.Encode(&buf, small) },
		func() error { return jpeg.Encode(&buf, small, nil) },
		func() error { return gif.Encode(&buf, small, nil) },
		func() error { return bmp.Encode(&buf, small) },
	} {
		buf.Reset()
		if err := enc(); err != nil {
			f.Fatal(err)
		}
		f.Add(bytes.Clone(buf.Bytes()))
	}
	f.Add(pngHeader(100000, 100000))
	f.Add([]byte("GIF89a\x10\x00\x10\x00\x00\x00\x00"))
	f.Add([]byte("RIFF\x20\x00\x00\x00WEBPVP8L"))
	f.Add([]byte("BM"))
	cfg := DefaultConfig()
	cfg.Size = 32
	lim := Limits{MaxPixels: 1 << 20, MaxBytes: 1 << 20}
	f.Fuzz(func(t *testing.T, data []byte) {
		img, _, err := Decode(bytes.NewReader(data), lim)
		if err != nil {
			return
		}
		b := img.Bounds()
		if int64(b.Dx())*int64(b.Dy()) > lim.MaxPixels {
			t.Fatalf("Decode accepted %v, over the %d pixel limit", b, lim.MaxPixels)
		}
		x, err := Image(bytes.NewReader(data), cfg, lim)
		if err != nil {
			return
		}
		if len(x) != 3*32*32 {
			t.Fatalf("Image returned %d values, want %d", len(x), 3*32*32)
		}
		for i, v := range x {
			if math.IsNaN(float64(v)) || math.Abs(float64(v)) > 3 {
				t.Fatalf("Image value %d = %v, outside the normalised range", i, v)
			}
		}
	})
}

func BenchmarkImage(b *testing.B) {
	dir := refdata.Clip(b)
	for _, name := range []string{"coffee.jpg", "retina.jpg"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			b.Fatal(err)
		}
		cfg := DefaultConfig()
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := Image(bytes.NewReader(data), cfg, DefaultLimits()); err != nil {
					b.Fatal(err)
				}
			}
		})
		img, _, err := Decode(bytes.NewReader(data), DefaultLimits())
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name+"/crop-only", func(b *testing.B) {
			for b.Loop() {
				if _, err := Crop(img, cfg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
