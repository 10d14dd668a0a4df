package cuda

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/gata-contrib/gata/dva"
)

// ServeRunner is `gata gpu-runner`: it serves the runner protocol (protocol.go) on in and
// out for the parent process, running the model on CUDA device 0 (the parent picks the
// card with CUDA_VISIBLE_DEVICES). It returns nil when in is closed, and an error when
// the model cannot be opened or after a sticky GPU error, which it reports first.
func ServeRunner(ctx context.Context, in io.Reader, out io.Writer) error {
	return serveRunner(ctx, in, out, openGPU)
}

// openBackend opens the model in dir on the runner's backend.
type openBackend func(dir string) (dva.Backend, error)

// openGPU opens CUDA device 0 and uploads the model.
func openGPU(dir string) (dva.Backend, error) {
	d, err := openDevice(0)
	if err != nil {
		return nil, err
	}
	name := fmt.Sprintf("%s, compute %d.%d, %d MB", d.name, d.major, d.minor, d.totalMem>>20)
	e, err := newEngine(d, dir, name)
	if err != nil {
		d.close()
		return nil, err
	}
	e.done = d.close
	return &gpuEngine{engine: e, dev: d}, nil
}

// gpuEngine is the engine on a real GPU, which also lends pinned host memory.
type gpuEngine struct {
	*engine
	dev *cudaDevice
}

func (g *gpuEngine) hostBuffer(n int) ([]byte, error) { return g.dev.hostBuffer(n) }
func (g *gpuEngine) freeHostBuffer(b []byte)          { g.dev.freeHostBuffer(b) }

// Optional abilities of a runner's backend.
type (
	halfImageEncoder interface {
		encodeImagesHalf(ctx context.Context, pix []byte, n int) ([]float32, error)
	}
	hostBuffers interface {
		hostBuffer(n int) ([]byte, error)
		freeHostBuffer(b []byte)
	}
)

// job is one request for the worker.
type job struct {
	id    uint64
	ctx   context.Context
	stop  context.CancelFunc
	img   *imagesReq
	texts *textsReq
	buf   []byte // the pinned frame buffer the images came in, returned after the job
}

func serveRunner(ctx context.Context, in io.Reader, out io.Writer, open openBackend) error {
	r := bufio.NewReaderSize(in, 1<<20)
	w := &replier{w: bufio.NewWriterSize(out, 1<<20)}
	f, err := readFrame(r, nil)
	if err != nil {
		return fmt.Errorf("gpu runner: read the open request: %w", err)
	}
	d := &dec{b: f.payload}
	version, dir := d.u32(), d.str()
	switch {
	case f.typ != msgOpen || d.err != nil:
		err = errors.New("the first request is not an open request")
	case version != protocolVersion:
		err = fmt.Errorf("protocol version %d, this runner speaks %d", version, protocolVersion)
	}
	var b dva.Backend
	if err == nil {
		b, err = open(dir)
	}
	if err != nil {
		w.failure(0, err)
		return fmt.Errorf("gpu runner: %w", err)
	}
	defer b.Close()
	if err := w.send(msgReady, enc(nil).u32(uint32(b.EmbedDim())).str(b.Name())); err != nil {
		return err
	}

	pool := newFramePool(b)
	jobs := make(chan *job, 2)
	var mu sync.Mutex
	running := map[uint64]context.CancelFunc{}
	readErr := make(chan error, 1)
	go func() { // the reader: requests into jobs, cancellations straight away
		defer close(jobs)
		readErr <- readRequests(ctx, r, pool, jobs, &mu, running)
	}()
	// The worker: one request at a time on the GPU.
	for j := range jobs {
		err := runJob(b, j, w)
		pool.put(j.buf)
		mu.Lock()
		delete(running, j.id)
		mu.Unlock()
		j.stop()
		var ce *Error
		if errors.As(err, &ce) && ce.Sticky() {
			// The GPU context is unusable: stop here, the parent starts a new runner.
			// The reader may stay blocked on the pipe; the process is about to exit.
			return fmt.Errorf("gpu runner: %w", err)
		}
	}
	pool.release()
	return <-readErr
}

// readRequests reads frames until in closes, queueing images and texts and cancelling
// requests as asked.
func readRequests(ctx context.Context, r *bufio.Reader, pool *framePool, jobs chan<- *job, mu *sync.Mutex,
	running map[uint64]context.CancelFunc) error {
	for {
		f, err := readFrame(r, func(typ byte, n int) ([]byte, error) {
			if typ == msgImages {
				return pool.get(n)
			}
			return make([]byte, n), nil
		})
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("gpu runner: read a request: %w", err)
		}
		var j *job
		switch f.typ {
		case msgImages:
			req, err := decodeImages(f.payload)
			if err != nil {
				pool.put(f.payload)
				return err
			}
			j = &job{id: req.id, img: &req, buf: f.payload}
		case msgTexts:
			req, err := decodeTexts(f.payload)
			if err != nil {
				return err
			}
			j = &job{id: req.id, texts: &req}
		case msgCancel:
			d := &dec{b: f.payload}
			id := d.u64()
			mu.Lock()
			if stop, ok := running[id]; ok {
				stop()
			}
			mu.Unlock()
			continue
		default:
			return fmt.Errorf("gpu runner: unknown request type %d", f.typ)
		}
		j.ctx, j.stop = context.WithCancel(ctx)
		mu.Lock()
		running[j.id] = j.stop
		mu.Unlock()
		jobs <- j
	}
}

// runJob runs one request and sends its result or failure.
func runJob(b dva.Backend, j *job, w *replier) error {
	var out []float32
	var err error
	switch {
	case j.img != nil:
		if h, ok := b.(halfImageEncoder); ok {
			out, err = h.encodeImagesHalf(j.ctx, j.img.pix, j.img.n)
		} else {
			px := make([]float32, len(j.img.pix)/2)
			for i := range px {
				px[i] = fromHalf(uint16(j.img.pix[2*i]) | uint16(j.img.pix[2*i+1])<<8)
			}
			out, err = b.EncodeImages(j.ctx, px, j.img.n)
		}
	default:
		out, err = b.EncodeTexts(j.ctx, j.texts.ids)
	}
	if err != nil {
		w.failure(j.id, err)
		return err
	}
	return w.send(msgResult, enc(make([]byte, 0, 12+4*len(out))).u64(j.id).u32(uint32(len(out))).f32s(out))
}

// replier writes replies, one frame at a time.
type replier struct {
	mu sync.Mutex
	w  *bufio.Writer
}

func (r *replier) send(typ byte, payload []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := writeFrame(r.w, typ, payload); err != nil {
		return err
	}
	return r.w.Flush()
}

func (r *replier) failure(id uint64, err error) {
	var flags byte
	var ce *Error
	if errors.As(err, &ce) && ce.Sticky() {
		flags |= flagSticky
	}
	_ = r.send(msgFailure, enc(nil).u64(id).u8(flags).str(err.Error()))
}

// framePool hands out two frame buffers in turn, pinned when the backend lends pinned
// memory: the next request is read from the pipe while the GPU runs this one, and the
// upload from pinned memory is asynchronous.
type framePool struct {
	hb   hostBuffers // nil: ordinary memory
	free chan []byte
}

func newFramePool(b dva.Backend) *framePool {
	p := &framePool{free: make(chan []byte, 2)}
	p.hb, _ = b.(hostBuffers)
	p.free <- nil
	p.free <- nil
	return p
}

func (p *framePool) get(n int) ([]byte, error) {
	b := <-p.free
	if cap(b) >= n {
		return b[:n], nil
	}
	if p.hb == nil {
		return make([]byte, n), nil
	}
	if b != nil {
		p.hb.freeHostBuffer(b[:cap(b)])
	}
	nb, err := p.hb.hostBuffer(n)
	if err != nil {
		p.free <- nil
		return nil, err
	}
	return nb, nil
}

// put returns a buffer from get (nil is ignored).
func (p *framePool) put(b []byte) {
	if b != nil {
		p.free <- b[:cap(b)]
	}
}

func (p *framePool) release() {
	if p.hb == nil {
		return
	}
	for range 2 {
		select {
		case b := <-p.free:
			if b != nil {
				p.hb.freeHostBuffer(b)
			}
		default:
		}
	}
}
