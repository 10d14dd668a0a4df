package cuda

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/gata-contrib/gata/dva/clip"
	"github.com/gata-contrib/gata/dva/tensor"
)

// engine is a model on a device with the workspace of its forward passes: the dva.Backend
// of one GPU in this process. Calls are serialised (one device, one workspace).
type engine struct {
	mu   sync.Mutex
	dev  device
	cfg  *clip.Config
	m    *model
	ws   *workspace
	name string
	done func() error // releases the device itself; may be nil
}

// newEngine uploads the model in dir to d.
func newEngine(d device, dir, name string) (*engine, error) {
	cfg, set, err := readModel(dir)
	if err != nil {
		return nil, err
	}
	defer set.Close()
	m, err := uploadModel(d, cfg, set)
	if err != nil {
		return nil, err
	}
	return &engine{dev: d, cfg: cfg, m: m, ws: newWorkspace(d), name: name}, nil
}

// Name says which GPU runs the model.
func (e *engine) Name() string { return e.name }

// EmbedDim is the width of the joint embedding space.
func (e *engine) EmbedDim() int { return e.cfg.EmbedDim }

// EncodeImages converts the pixels to half and runs the image tower.
func (e *engine) EncodeImages(ctx context.Context, pixels []float32, n int) ([]float32, error) {
	S := e.cfg.Vision.ImageSize
	if n < 0 || len(pixels) != n*3*S*S {
		return nil, fmt.Errorf("encode images: %d pixel values for %d images of 3x%dx%d", len(pixels), n, S, S)
	}
	return e.encodeImagesHalf(ctx, halvesParallel(pixels), n)
}

// encodeImagesHalf runs the image tower on pixels already in half precision.
func (e *engine) encodeImagesHalf(ctx context.Context, pix []byte, n int) ([]float32, error) {
	return e.run(ctx, func(m *model) ([]float32, error) { return m.encodeImages(ctx, e.ws, pix, n) })
}

// EncodeTexts runs the text tower.
func (e *engine) EncodeTexts(ctx context.Context, ids [][]int32) ([]float32, error) {
	return e.run(ctx, func(m *model) ([]float32, error) { return m.encodeTexts(ctx, e.ws, ids) })
}

// run runs one forward pass, alone on the device.
func (e *engine) run(ctx context.Context, fn func(m *model) ([]float32, error)) ([]float32, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.m == nil {
		return nil, errClosed
	}
	return fn(e.m)
}

// Close frees the model and the activations on the device.
func (e *engine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.m == nil {
		return nil
	}
	err := e.dev.sync()
	e.ws.release()
	e.m.release()
	e.m = nil
	if e.done != nil {
		err = errors.Join(err, e.done())
	}
	return err
}

var errClosed = errors.New("the GPU backend is closed")

// halvesParallel converts pixels to little-endian half bytes on every core.
func halvesParallel(x []float32) []byte {
	out := make([]byte, 2*len(x))
	const grain = 1 << 16
	tensor.ParallelRange(0, len(x), grain, func(lo, hi int) {
		halves(out[2*lo:2*lo:2*hi], x[lo:hi])
	})
	return out
}
