package preprocess

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"

	"golang.org/x/image/bmp"
	"golang.org/x/image/webp"
)

// codec is one supported file format.
type codec struct {
	name         string
	decode       func(io.Reader) (image.Image, error)
	decodeConfig func(io.Reader) (image.Config, error)
}

var (
	codecJPEG = codec{"jpeg", jpeg.Decode, jpeg.DecodeConfig}
	codecPNG  = codec{"png", png.Decode, png.DecodeConfig}
	codecGIF  = codec{"gif", gif.Decode, gif.DecodeConfig}
	codecWebP = codec{"webp", webp.Decode, webp.DecodeConfig}
	codecBMP  = codec{"bmp", bmp.Decode, bmp.DecodeConfig}
)

// Extensions are the file-name extensions of the formats Decode reads, for file pickers.
// Decode itself goes by the file's first bytes, not its name.
var Extensions = []string{".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp"}

// sniff picks the codec from the first bytes of the file. It does not use the global
// image.RegisterFormat table, so formats registered elsewhere in the program do not
// change what this package accepts.
func sniff(b []byte) (codec, error) {
	switch {
	case len(b) >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF:
		return codecJPEG, nil
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return codecPNG, nil
	case bytes.HasPrefix(b, []byte("GIF87a")), bytes.HasPrefix(b, []byte("GIF89a")):
		return codecGIF, nil
	case len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP":
		return codecWebP, nil
	case bytes.HasPrefix(b, []byte("BM")):
		return codecBMP, nil
	}
	return codec{}, fmt.Errorf("%w%s", ErrUnsupportedFormat, describeUnknown(b))
}

// describeUnknown names a few well-known formats that are not supported, to make the
// error useful, or shows the first bytes.
func describeUnknown(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte("II*\x00")), bytes.HasPrefix(b, []byte("MM\x00*")):
		return " (TIFF)"
	case len(b) >= 12 && string(b[4:8]) == "ftyp":
		return fmt.Sprintf(" (ISO media %q, e.g. HEIC or AVIF)", b[8:12])
	case bytes.HasPrefix(b, []byte("\xFF\x0A")), bytes.HasPrefix(b, []byte("\x00\x00\x00\x0CJXL ")):
		return " (JPEG XL)"
	case bytes.HasPrefix(b, []byte("%PDF")):
		return " (PDF)"
	case bytes.HasPrefix(b, []byte("<")), bytes.HasPrefix(b, []byte("\xEF\xBB\xBF<")):
		return " (text or SVG)"
	}
	n := min(len(b), 8)
	return fmt.Sprintf(" (starts with % x)", b[:n])
}

// Decode reads one image file (JPEG, PNG, GIF, WebP or BMP; the first frame of an
// animation) and returns it in the mode PIL would open it in, as Go image types:
// *image.Gray = L, *image.Gray16 = I (16-bit grey), *image.Paletted = P (and a 1-bit grey
// PNG, PIL's mode "1", as a black/white palette), *RGB (JPEG and lossy WebP, converted
// to RGB as libjpeg and libwebp do it) and opaque *image.RGBA = RGB, *image.NRGBA = RGBA, *image.CMYK = CMYK. The second result is the format name
// ("jpeg", "png", "gif", "webp", "bmp").
//
// The file is read up to lim.MaxBytes, and the dimensions in its header are checked
// against lim.MaxPixels before any pixel memory is allocated. A zero limit means the
// DefaultLimits value. Decoder panics become errors.
func Decode(r io.Reader, lim Limits) (image.Image, string, error) {
	lim = lim.withDefaults()
	data, err := io.ReadAll(io.LimitReader(r, lim.MaxBytes+1))
	if err != nil {
		return nil, "", fmt.Errorf("read image: %w", err)
	}
	if int64(len(data)) > lim.MaxBytes {
		return nil, "", fmt.Errorf("image file exceeds the %s limit: %w", byteSize(lim.MaxBytes), ErrTooLarge)
	}
	if len(data) == 0 {
		return nil, "", errors.New("decode image: empty file")
	}
	c, err := sniff(data)
	if err != nil {
		return nil, "", fmt.Errorf("decode image: %w", err)
	}
	cfg, err := safeCall(c.name, func() (image.Config, error) { return c.decodeConfig(bytes.NewReader(data)) })
	if err != nil {
		return nil, c.name, decodeError(c.name, err)
	}
	if err := lim.check(int64(cfg.Width), int64(cfg.Height)); err != nil {
		return nil, c.name, err
	}
	img, err := safeCall(c.name, func() (image.Image, error) { return c.decode(bytes.NewReader(data)) })
	if err != nil {
		return nil, c.name, decodeError(c.name, err)
	}
	b := img.Bounds()
	// The header was checked, but a frame may be sized apart from it (WebP, GIF).
	if err := lim.check(int64(b.Dx()), int64(b.Dy())); err != nil {
		return nil, c.name, err
	}
	switch c.name {
	case "png":
		img = pilPNGMode(data, img)
	case "webp":
		img = webpColors(img)
	case "jpeg":
		if m, ok := img.(*image.YCbCr); ok {
			if rgb := jpegToRGB(m); rgb != nil {
				img = rgb
			}
		}
	}
	return img, c.name, nil
}

func (lim Limits) withDefaults() Limits {
	d := DefaultLimits()
	if lim.MaxPixels <= 0 {
		lim.MaxPixels = d.MaxPixels
	}
	if lim.MaxBytes <= 0 {
		lim.MaxBytes = d.MaxBytes
	}
	return lim
}

// check rejects images with no pixels or more than MaxPixels.
func (lim Limits) check(w, h int64) error {
	if w <= 0 || h <= 0 {
		return fmt.Errorf("decode image: invalid dimensions %dx%d", w, h)
	}
	if w > lim.MaxPixels || h > lim.MaxPixels || w*h > lim.MaxPixels {
		var limit string
		if lim.MaxPixels >= 1e6 {
			limit = fmt.Sprintf("%d megapixel", lim.MaxPixels/1e6)
		} else {
			limit = fmt.Sprintf("%d pixel", lim.MaxPixels)
		}
		return fmt.Errorf("image %dx%d exceeds the %s limit: %w", w, h, limit, ErrTooLarge)
	}
	return nil
}

func byteSize(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d byte", n)
}

// decodeError wraps a decoder error as "decode image: <format>: <cause>" without
// repeating the format when the decoder already names it.
func decodeError(format string, err error) error {
	msg := err.Error()
	if len(msg) > len(format) && msg[:len(format)+1] == format+":" {
		return fmt.Errorf("decode image: %w", err)
	}
	return fmt.Errorf("decode image: %s: %w", format, err)
}

// safeCall runs a third-party decoder and turns a panic into an error.
func safeCall[T any](format string, f func() (T, error)) (v T, err error) {
	defer func() {
		if p := recover(); p != nil {
			var zero T
			v, err = zero, fmt.Errorf("%s decoder panicked: %v", format, p)
		}
	}()
	return f()
}

// pilPNGMode fixes the two cases where Go's PNG decoder returns another mode than PIL:
// a 1-bit grey PNG is PIL mode "1" (resized with NEAREST: returned as a black/white
// palette image), and a grey or RGB PNG with a tRNS chunk stays L / I / RGB in PIL
// (the transparency is only metadata) while Go returns NRGBA(64).
func pilPNGMode(data []byte, img image.Image) image.Image {
	if len(data) < 26 || string(data[12:16]) != "IHDR" {
		return img
	}
	depth, colorType := data[24], data[25]
	switch colorType {
	case 0: // grey
		switch m := img.(type) {
		case *image.Gray:
			if depth == 1 {
				return grayToBilevel(m.Pix, m.Stride, m.Rect)
			}
		case *image.NRGBA:
			g := image.NewGray(m.Rect)
			for y := 0; y < m.Rect.Dy(); y++ {
				src := m.Pix[y*m.Stride : y*m.Stride+4*m.Rect.Dx()]
				dst := g.Pix[y*g.Stride : y*g.Stride+m.Rect.Dx()]
				for x := range dst {
					dst[x] = src[4*x]
				}
			}
			if depth == 1 {
				return grayToBilevel(g.Pix, g.Stride, g.Rect)
			}
			return g
		case *image.NRGBA64:
			g := image.NewGray16(m.Rect)
			for y := 0; y < m.Rect.Dy(); y++ {
				src := m.Pix[y*m.Stride : y*m.Stride+8*m.Rect.Dx()]
				dst := g.Pix[y*g.Stride : y*g.Stride+2*m.Rect.Dx()]
				for x := 0; x < m.Rect.Dx(); x++ {
					dst[2*x], dst[2*x+1] = src[8*x], src[8*x+1]
				}
			}
			return g
		}
	case 2: // RGB
		switch m := img.(type) {
		case *image.NRGBA:
			o := image.NewRGBA(m.Rect)
			copy(o.Pix, m.Pix)
			for i := 3; i < len(o.Pix); i += 4 {
				o.Pix[i] = 0xFF
			}
			return o
		case *image.NRGBA64:
			o := image.NewRGBA(m.Rect)
			for y := 0; y < m.Rect.Dy(); y++ {
				src := m.Pix[y*m.Stride:]
				dst := o.Pix[y*o.Stride:]
				for x := 0; x < m.Rect.Dx(); x++ {
					dst[4*x], dst[4*x+1], dst[4*x+2], dst[4*x+3] = src[8*x], src[8*x+2], src[8*x+4], 0xFF
				}
			}
			return o
		}
	}
	return img
}

// webpColors converts a lossy WebP decoding to RGB(A) as libwebp does (see webp.go).
func webpColors(img image.Image) image.Image {
	var out image.Image
	switch m := img.(type) {
	case *image.YCbCr:
		out = webpToRGB(m, nil, 0)
	case *image.NYCbCrA:
		out = webpToRGB(&m.YCbCr, m.A, m.AStride)
	}
	if out == nil {
		return img
	}
	return out
}

// grayToBilevel returns a 0/255 grey image as a two-colour palette image.
func grayToBilevel(pix []uint8, stride int, r image.Rectangle) *image.Paletted {
	p := image.NewPaletted(r, color.Palette{color.NRGBA{0, 0, 0, 255}, color.NRGBA{255, 255, 255, 255}})
	for y := 0; y < r.Dy(); y++ {
		for x := 0; x < r.Dx(); x++ {
			if pix[y*stride+x] != 0 {
				p.Pix[y*p.Stride+x] = 1
			}
		}
	}
	return p
}
