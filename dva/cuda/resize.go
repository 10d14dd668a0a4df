package cuda

import (
	"fmt"
	"math"

	"github.com/gata-contrib/gata/dva/preprocess"
)

// preprocessRGB resizes, centre-crops and normalises one decoded RGB image (w x h,
// 3 bytes a pixel, row-major) on the device as dva/preprocess does it (PIL's bicubic or
// bilinear resize), writing [3, S, S] float at out. Nearest-neighbour images (palette,
// 1-bit) and other modes are not taken here: their decoders give no 8-bit RGB.
func preprocessRGB(d device, w *workspace, rgb []byte, width, height int, cfg preprocess.Config, out dptr) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if width <= 0 || height <= 0 || len(rgb) != 3*width*height {
		return fmt.Errorf("preprocess on the GPU: %d bytes for a %dx%d RGB image", len(rgb), width, height)
	}
	resized, off := preprocess.Geometry(width, height, cfg)
	S := cfg.Size
	if resized.X < S || resized.Y < S || off.X < 0 || off.Y < 0 {
		return fmt.Errorf("preprocess on the GPU: %dx%d resized to %dx%d is smaller than %d", width, height, resized.X, resized.Y, S)
	}
	filter, support := 0, 2.0
	if cfg.Interpolation == preprocess.Bilinear {
		filter, support = 1, 1.0
	}
	needH, needV := resized.X != width, resized.Y != height
	ksize := func(in, outSize int) int {
		return int(math.Ceil(support*max(float64(in)/float64(outSize), 1)))*2 + 1
	}
	kh, kv := ksize(width, resized.X), ksize(height, resized.Y)
	var img, hs, hn, hf, vs, vn, vf, tmp dptr
	err := w.getAll(want{&img, "p.rgb", len(rgb)},
		want{&hs, "p.hstart", 4 * S}, want{&hn, "p.hn", 4 * S}, want{&hf, "p.hfixed", 4 * S * kh},
		want{&vs, "p.vstart", 4 * S}, want{&vn, "p.vn", 4 * S}, want{&vf, "p.vfixed", 4 * S * kv})
	if err != nil {
		return err
	}
	coeffs := func(in, outSize, o0, k int, start, n, fixed dptr) error {
		return elementwise(d, "resize_coeffs", S,
			args().i32(in).i32(outSize).i32(o0).i32(S).i32(filter).i32(k).ptr(start).ptr(n).ptr(fixed))
	}
	if err := d.copyIn(img, rgb); err != nil {
		return err
	}
	// The rows the vertical pass reads: a span that surely holds its kernels' (the
	// kernels give absolute rows, the vertical pass subtracts row0), or the crop's rows.
	row0, rows := off.Y, S
	if needV {
		if err := coeffs(height, resized.Y, off.Y, kv, vs, vn, vf); err != nil {
			return err
		}
		scale := float64(height) / float64(resized.Y)
		reach := support*max(scale, 1) + 2
		lo := int(math.Floor((float64(off.Y)+0.5)*scale - reach))
		hi := int(math.Ceil((float64(off.Y+S-1)+0.5)*scale + reach))
		row0 = max(lo, 0)
		rows = min(hi, height) - row0
	}
	if needH {
		if err := coeffs(width, resized.X, off.X, kh, hs, hn, hf); err != nil {
			return err
		}
	}
	if tmp, err = w.get("p.tmp", 3*rows*S); err != nil {
		return err
	}
	if err := elementwise(d, "resize_h", rows*S, args().ptr(img).i32(width).i32(row0).i32(rows).i32(S).i32(off.X).
		i32(b2i(needH)).ptr(hs).ptr(hn).ptr(hf).i32(kh).ptr(tmp)); err != nil {
		return err
	}
	a := args().ptr(tmp).i32(S).i32(row0).i32(b2i(needV)).ptr(vs).ptr(vn).ptr(vf).i32(kv)
	for c := range 3 {
		a.f32(cfg.Mean[c])
	}
	for c := range 3 {
		a.f32(cfg.Std[c])
	}
	return elementwise(d, "resize_v_normalize", S*S, a.ptr(out))
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
