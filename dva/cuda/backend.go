package cuda

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gata-contrib/gata/dva"
	"github.com/gata-contrib/gata/dva/clip"
	"github.com/gata-contrib/gata/dva/cpu"
)

// Options tune Open and StartRunner. Zero values mean the defaults.
type Options struct {
	// Command is the runner's command line (default: this executable with "gpu-runner").
	Command []string
	// Env is added to the runner's environment.
	Env []string
	// CPU opens the fallback backend (default: the CPU backend on every core).
	CPU func(dir string) (dva.Backend, error)
	// Logger receives the runner's restarts, the fallback and the runner's stderr.
	Logger *slog.Logger
	// Restarts is how many times one request restarts a failed runner before the backend
	// falls back to the CPU (default 2).
	Restarts int
	// CallTimeout is how long a request may go unanswered before the runner is taken
	// for hung, killed and restarted (default 2 minutes).
	CallTimeout time.Duration
	// StartTimeout bounds opening the model in the runner: the JIT compilation of the
	// kernels and the upload of the weights (default 5 minutes).
	StartTimeout time.Duration
}

func (o *Options) defaults() {
	if o.CPU == nil {
		o.CPU = openCPU
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Restarts <= 0 {
		o.Restarts = 2
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = 2 * time.Minute
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 5 * time.Minute
	}
}

// openCPU is the default fallback: the model on the CPU backend with every core.
func openCPU(dir string) (dva.Backend, error) {
	m, err := clip.LoadModel(dir)
	if err != nil {
		return nil, err
	}
	return cpu.New(m, 0), nil
}

// Backend is the dva.Backend that the app uses where a GPU may be: the model runs in a
// GPU runner child process, which is restarted when it crashes, hangs or loses its GPU
// context, with the request sent again; when there is no usable GPU, or the runner keeps
// failing, the work goes to the CPU backend and Name says why. It is safe for concurrent
// use.
type Backend struct {
	dir    string
	cfg    *clip.Config
	opts   Options
	device string // "cuda:N"
	nextID atomic.Uint64

	mu       sync.Mutex
	proc     *runnerProc // the running runner; nil before start and after a failure
	gpuName  string      // as the runner reported it
	cpu      dva.Backend // the fallback, once in use
	reason   string      // why the GPU is not used
	restarts int         // runner restarts so far
	closed   bool
}

var _ dva.Backend = (*Backend)(nil)

// Open opens the model in dir on the best backend: the GPU chosen with NVML ($GATA_GPU:
// "off" or a card index), in a runner child process, else the CPU. It fails only when the
// model cannot be opened on the CPU either.
func Open(ctx context.Context, dir string, opts Options) (*Backend, error) {
	return open(ctx, dir, opts, probeGPUs)
}

func open(ctx context.Context, dir string, opts Options, probe func() ([]gpuInfo, error)) (*Backend, error) {
	b, err := newBackend(dir, opts)
	if err != nil {
		return nil, err
	}
	off, want, err := gpuSetting(os.Getenv("GATA_GPU"))
	var g gpuInfo
	switch {
	case err != nil:
	case off:
		err = errors.New("GATA_GPU=off")
	default:
		var gpus []gpuInfo
		if gpus, err = probe(); err == nil {
			g, err = pickGPU(gpus, want, memoryNeed(b.cfg))
		}
	}
	if err == nil {
		b.device = fmt.Sprintf("cuda:%d", g.Index)
		b.opts.Env = append(b.opts.Env, "CUDA_VISIBLE_DEVICES="+g.UUID)
		err = b.start(ctx)
	}
	if err != nil {
		if ferr := b.fallBack(err); ferr != nil {
			return nil, ferr
		}
	}
	return b, nil
}

// StartRunner starts the runner for the model in dir without asking NVML, on whatever
// device the runner's environment gives it; with no GPU runner at all it fails (no CPU
// fallback at start). Tests and benchmarks use it.
func StartRunner(ctx context.Context, dir string, opts Options) (*Backend, error) {
	b, err := newBackend(dir, opts)
	if err != nil {
		return nil, err
	}
	b.device = "cuda:0"
	if err := b.start(ctx); err != nil {
		return nil, err
	}
	return b, nil
}

func newBackend(dir string, opts Options) (*Backend, error) {
	opts.defaults()
	data, err := os.ReadFile(filepath.Join(dir, clip.ConfigFile))
	if err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	cfg, err := clip.ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("load model config %q: %w", filepath.Join(dir, clip.ConfigFile), err)
	}
	if opts.Command == nil {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find this executable for the GPU runner: %w", err)
		}
		opts.Command = []string{exe, "gpu-runner"}
	}
	return &Backend{dir: dir, cfg: cfg, opts: opts}, nil
}

// Name says where the model runs: "cuda:0 NVIDIA … (GPU runner)", or the CPU backend's
// name and why the GPU is not used.
func (b *Backend) Name() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cpu != nil {
		return b.cpu.Name() + "; GPU not used: " + b.reason
	}
	return fmt.Sprintf("%s %s (GPU runner)", b.device, b.gpuName)
}

// EmbedDim is the width of the joint embedding space.
func (b *Backend) EmbedDim() int { return b.cfg.EmbedDim }

// Config is the model's configuration.
func (b *Backend) Config() *clip.Config { return b.cfg }

// OnGPU reports whether the model runs on the GPU, and if not, why.
func (b *Backend) OnGPU() (bool, string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cpu == nil, b.reason
}

// Requests larger than these go to the runner in several frames (variables for a test).
var (
	maxImagesPerRequest = 1024
	maxTextsPerRequest  = 8192
)

// EncodeImages runs the image tower, on the GPU with the pixels sent in half precision.
func (b *Backend) EncodeImages(ctx context.Context, pixels []float32, n int) ([]float32, error) {
	S := b.cfg.Vision.ImageSize
	if n < 0 || len(pixels) != n*3*S*S {
		return nil, fmt.Errorf("encode images: %d pixel values for %d images of 3x%dx%d", len(pixels), n, S, S)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	img := 3 * S * S
	out := make([]float32, 0, n*b.cfg.EmbedDim)
	for start := 0; start < n; start += maxImagesPerRequest {
		k := min(maxImagesPerRequest, n-start)
		px := pixels[start*img : (start+k)*img]
		var payload []byte
		res, err := b.call(ctx, func(c dva.Backend) ([]float32, error) { return c.EncodeImages(ctx, px, k) },
			func(id uint64) []byte {
				if payload == nil {
					payload = halvesParallel(px)
				}
				return append(enc(make([]byte, 0, 12+len(payload))).u64(id).u32(uint32(k)), payload...)
			}, msgImages, k*b.cfg.EmbedDim)
		if err != nil {
			return nil, err
		}
		out = append(out, res...)
	}
	return out, nil
}

// EncodeTexts runs the text tower.
func (b *Backend) EncodeTexts(ctx context.Context, ids [][]int32) ([]float32, error) {
	c := b.cfg.Text
	if _, _, err := textRows(ids, c.ContextLength, c.VocabSize); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]float32, 0, len(ids)*b.cfg.EmbedDim)
	for start := 0; start < len(ids); start += maxTextsPerRequest {
		part := ids[start:min(start+maxTextsPerRequest, len(ids))]
		res, err := b.call(ctx, func(cb dva.Backend) ([]float32, error) { return cb.EncodeTexts(ctx, part) },
			func(id uint64) []byte { return encodeTexts(id, part, c.ContextLength) }, msgTexts, len(part)*b.cfg.EmbedDim)
		if err != nil {
			return nil, err
		}
		out = append(out, res...)
	}
	return out, nil
}

// call sends one request to the runner, restarting it as needed, or runs it on the CPU.
func (b *Backend) call(ctx context.Context, onCPU func(dva.Backend) ([]float32, error),
	payload func(id uint64) []byte, typ byte, want int) ([]float32, error) {
	for attempt := 0; ; attempt++ {
		p, fallback, err := b.runner(ctx)
		if err != nil {
			return nil, err
		}
		if fallback != nil {
			return onCPU(fallback)
		}
		id := b.nextID.Add(1)
		out, err := p.call(ctx, id, typ, payload(id), b.opts.CallTimeout)
		if err == nil && len(out) != want {
			err = fmt.Errorf("the GPU runner returned %d values, want %d", len(out), want)
		}
		if err == nil {
			return out, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var re *RunnerError
		if errors.As(err, &re) && !re.sticky {
			return nil, err // the request failed, the runner is fine
		}
		b.opts.Logger.Warn("GPU runner failed", "attempt", attempt+1, "err", err)
		b.stop(p)
		if attempt >= b.opts.Restarts {
			if ferr := b.fallBack(fmt.Errorf("the GPU runner failed %d times; last: %w", attempt+1, err)); ferr != nil {
				return nil, ferr
			}
		}
	}
}

// runner returns the running runner, starting one when there is none, or the CPU
// fallback once the backend has fallen back.
func (b *Backend) runner(ctx context.Context) (*runnerProc, dva.Backend, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, nil, errClosed
	}
	if b.cpu != nil {
		c := b.cpu
		b.mu.Unlock()
		return nil, c, nil
	}
	if p := b.proc; p != nil && !p.isDead() {
		b.mu.Unlock()
		return p, nil, nil
	}
	b.mu.Unlock()
	if err := b.start(ctx); err != nil {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		b.opts.Logger.Warn("GPU runner does not start", "err", err)
		if ferr := b.fallBack(err); ferr != nil {
			return nil, nil, ferr
		}
	}
	return b.runner(ctx)
}

// start starts a runner and opens the model in it, unless one is running already.
func (b *Backend) start(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.proc != nil && !b.proc.isDead() {
		return nil
	}
	if b.proc != nil {
		b.restarts++
		b.opts.Logger.Info("restarting the GPU runner", "restarts", b.restarts)
	}
	p, err := startRunner(ctx, b.opts, b.dir)
	if err != nil {
		b.proc = nil
		return err
	}
	if p.embedDim != b.cfg.EmbedDim {
		p.kill(nil)
		return fmt.Errorf("the GPU runner embeds into %d dimensions, the model into %d", p.embedDim, b.cfg.EmbedDim)
	}
	b.proc, b.gpuName = p, p.name
	return nil
}

// stop kills runner p when it is still the current one.
func (b *Backend) stop(p *runnerProc) {
	p.kill(nil)
	b.mu.Lock()
	if b.proc == p {
		b.proc = nil
		b.restarts++ // counted here; start does not count it again
	}
	b.mu.Unlock()
}

// fallBack moves the backend to the CPU for good, for the given reason.
func (b *Backend) fallBack(why error) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cpu != nil {
		return nil
	}
	c, err := b.opts.CPU(b.dir)
	if err != nil {
		return fmt.Errorf("open the model on the CPU (the GPU is not usable: %v): %w", why, err)
	}
	if b.proc != nil {
		b.proc.kill(nil)
		b.proc = nil
	}
	b.cpu, b.reason = c, oneLine(why.Error())
	b.opts.Logger.Info("scoring on the CPU", "reason", b.reason)
	return nil
}

// Restarts is how many times the runner was restarted.
func (b *Backend) Restarts() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.restarts
}

// Close stops the runner (closing its stdin; killing it if it does not exit within five
// seconds) and closes the CPU fallback.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	var errs []error
	if b.proc != nil {
		errs = append(errs, b.proc.shutdown(5*time.Second))
		b.proc = nil
	}
	if b.cpu != nil {
		errs = append(errs, b.cpu.Close())
	}
	return errors.Join(errs...)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// runnerProc is one running runner process.
type runnerProc struct {
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	wmu      sync.Mutex
	w        *bufio.Writer
	name     string
	embedDim int

	pmu     sync.Mutex
	pending map[uint64]chan reply

	ready    chan error    // the answer to open
	dead     chan struct{} // closed when the process is gone
	deadOnce sync.Once
	deadErr  error
}

type reply struct {
	out []float32
	err error
}

// errRunnerGone is the transport failure of a request whose runner died.
var errRunnerGone = errors.New("the GPU runner exited")

// startRunner starts the runner process and opens the model in it.
func startRunner(ctx context.Context, opts Options, dir string) (*runnerProc, error) {
	cmd := exec.Command(opts.Command[0], opts.Command[1:]...)
	cmd.Env = append(os.Environ(), opts.Env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the GPU runner: %w", err)
	}
	p := &runnerProc{cmd: cmd, stdin: stdin, w: bufio.NewWriterSize(stdin, 1<<20), pending: map[uint64]chan reply{},
		dead: make(chan struct{}), ready: make(chan error, 1)}
	tail := &lastLines{}
	logDone, outDone := make(chan struct{}), make(chan struct{})
	go func() { // the runner's stderr into the log, and its last lines for errors
		defer close(logDone)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			tail.add(sc.Text())
			opts.Logger.Info("gpu-runner: " + sc.Text())
		}
	}()
	go func() {
		defer close(outDone)
		p.readReplies(bufio.NewReaderSize(stdout, 1<<20))
	}()
	go func() { // reap the process once both pipes are drained (exec.Cmd.Wait's rule)
		<-logDone
		<-outDone
		err := cmd.Wait()
		if err != nil && tail.String() != "" {
			err = fmt.Errorf("%w: %s", err, tail.String())
		}
		p.markDead(err)
	}()

	if err := p.send(msgOpen, enc(nil).u32(protocolVersion).str(dir)); err != nil {
		p.kill(nil)
		<-p.dead
		return nil, fmt.Errorf("open the model in the GPU runner: %w (runner: %v)", err, p.deadErr)
	}
	timer := time.NewTimer(opts.StartTimeout)
	defer timer.Stop()
	select {
	case err = <-p.ready:
	case <-p.dead:
		err = fmt.Errorf("the GPU runner exited before opening the model: %v", p.deadErr)
	case <-ctx.Done():
		err = ctx.Err()
	case <-timer.C:
		err = fmt.Errorf("the GPU runner did not open the model within %v", opts.StartTimeout)
	}
	if err != nil {
		p.kill(nil)
		<-p.dead
		return nil, err
	}
	return p, nil
}

// readReplies hands the answer to open to ready and each reply to its request, until the
// runner's stdout closes.
func (p *runnerProc) readReplies(r *bufio.Reader) {
	opened := false
	for {
		f, err := readFrame(r, nil)
		if err != nil {
			return // the reaper reports how the process ended
		}
		var id uint64
		var rp reply
		switch {
		case !opened:
			opened = true
			d := &dec{b: f.payload}
			switch f.typ {
			case msgReady:
				p.embedDim, p.name = int(d.u32()), d.str()
				p.ready <- d.err
			case msgFailure:
				_, re, err := decodeFailure(f.payload)
				if err == nil {
					err = re
				}
				p.ready <- err
			default:
				p.ready <- fmt.Errorf("runner protocol: answer %d to open", f.typ)
			}
			continue
		case f.typ == msgResult:
			res, err := decodeResult(f.payload)
			id, rp = res.id, reply{out: res.out, err: err}
		case f.typ == msgFailure:
			var re *RunnerError
			id, re, err = decodeFailure(f.payload)
			rp = reply{err: re}
			if err != nil {
				rp.err = err
			}
		default:
			p.kill(fmt.Errorf("runner protocol: reply type %d", f.typ))
			return
		}
		p.pmu.Lock()
		ch, ok := p.pending[id]
		delete(p.pending, id)
		p.pmu.Unlock()
		if ok {
			ch <- rp
		}
	}
}

func (p *runnerProc) send(typ byte, payload []byte) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if err := writeFrame(p.w, typ, payload); err != nil {
		return err
	}
	return p.w.Flush()
}

// call sends one request and waits for its reply, the runner's death, ctx (the runner is
// told to cancel) or the timeout (the runner is killed as hung).
func (p *runnerProc) call(ctx context.Context, id uint64, typ byte, payload []byte, timeout time.Duration) ([]float32, error) {
	ch := make(chan reply, 1)
	p.pmu.Lock()
	p.pending[id] = ch
	p.pmu.Unlock()
	forget := func() {
		p.pmu.Lock()
		delete(p.pending, id)
		p.pmu.Unlock()
	}
	if err := p.send(typ, payload); err != nil {
		forget()
		p.kill(err)
		return nil, fmt.Errorf("%w: send a request: %v", errRunnerGone, err)
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case r := <-ch:
		return r.out, r.err
	case <-p.dead:
		forget()
		return nil, fmt.Errorf("%w: %v", errRunnerGone, p.deadErr)
	case <-ctx.Done():
		forget()
		_ = p.send(msgCancel, enc(nil).u64(id))
		return nil, ctx.Err()
	case <-timer.C:
		forget()
		err := fmt.Errorf("the GPU runner did not answer within %v", timeout)
		p.kill(err)
		return nil, err
	}
}

func (p *runnerProc) isDead() bool {
	select {
	case <-p.dead:
		return true
	default:
		return false
	}
}

func (p *runnerProc) markDead(err error) {
	p.deadOnce.Do(func() {
		if err == nil {
			err = errRunnerGone
		}
		p.deadErr = err
		close(p.dead)
	})
}

// kill ends the process (why, when given, is kept as the reason unless it died already).
func (p *runnerProc) kill(why error) {
	if p.cmd.Process != nil {
		_ = p.cmd.Process.Kill()
	}
	if why != nil {
		p.markDead(why)
	}
}

// shutdown closes the runner's stdin, which makes it exit, and kills it after grace.
func (p *runnerProc) shutdown(grace time.Duration) error {
	p.wmu.Lock()
	err := p.stdin.Close()
	p.wmu.Unlock()
	select {
	case <-p.dead:
	case <-time.After(grace):
		p.kill(errors.New("did not exit after its stdin closed"))
		<-p.dead
		return errors.New("the GPU runner did not exit within " + grace.String() + " of being told to; killed")
	}
	if err != nil && !errors.Is(err, os.ErrClosed) {
		return err
	}
	return nil
}

// lastLines keeps the last few lines of the runner's stderr.
type lastLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *lastLines) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, s)
	if len(l.lines) > 5 {
		l.lines = l.lines[1:]
	}
}

func (l *lastLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, " | ")
}
