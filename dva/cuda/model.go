package cuda

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"

	"github.com/gata-contrib/gata/dva/clip"
	"github.com/gata-contrib/gata/dva/tensor"
	"github.com/gata-contrib/gata/dva/weights"
)

// model is a CLIP model's weights on a device, uploaded once: the matrices in half
// precision, the biases, LayerNorm parameters and embeddings that are added to the float
// residual stream in float.
type model struct {
	cfg *clip.Config
	mem arena

	conv1    dptr // visual.conv1.weight as [W, 3·P·P], half
	cls      dptr // [W] float
	visPos   dptr // [T, W] float
	lnPre    norm
	visual   []block
	lnPost   norm
	visProj  dptr // visual.proj transposed: [E, W], half
	tokens   dptr // token_embedding.weight [vocab, D], half
	textPos  dptr // [ctx, D] float
	text     []block
	lnFinal  norm
	textProj dptr // text_projection transposed: [E, D], half
}

type norm struct{ gamma, beta dptr }

type linear struct {
	w, b    dptr // [out, in] half; [out] float
	in, out int
}

type block struct {
	ln1, ln2        norm
	inProj, outProj linear
	fc, proj        linear
	heads           int
	causal          bool
	width, mlpWidth int
	act             tensor.Act
}

// readModel reads a model folder's config and opens its weights (safetensors when
// present, else the torch file), checking every tensor the config needs.
func readModel(dir string) (*clip.Config, *weights.Set, error) {
	data, err := os.ReadFile(filepath.Join(dir, clip.ConfigFile))
	if err != nil {
		return nil, nil, fmt.Errorf("load model: %w", err)
	}
	cfg, err := clip.ParseConfig(data)
	if err != nil {
		return nil, nil, fmt.Errorf("load model config %q: %w", filepath.Join(dir, clip.ConfigFile), err)
	}
	path := filepath.Join(dir, clip.SafetensorsFile)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		path = filepath.Join(dir, clip.TorchFile)
	}
	set, err := weights.Load(path)
	if err != nil {
		return nil, nil, fmt.Errorf("load model weights: %w", err)
	}
	for _, s := range cfg.Shapes() {
		t, ok := set.Get(s.Name)
		if !ok {
			set.Close()
			return nil, nil, fmt.Errorf("load model weights %q: tensor %s is missing (the config expects shape %v)", path, s.Name, s.Shape)
		}
		if !slices.Equal(t.Shape, s.Shape) || len(t.Data) != tensor.Numel(s.Shape) {
			set.Close()
			return nil, nil, fmt.Errorf("load model weights %q: tensor %s has shape %v, the config expects %v", path, s.Name, t.Shape, s.Shape)
		}
	}
	return cfg, set, nil
}

// uploadModel copies the weights to the device, converting the matrices to half there.
func uploadModel(d device, cfg *clip.Config, set *weights.Set) (m *model, err error) {
	m = &model{cfg: cfg, mem: arena{dev: d}}
	defer func() {
		if err != nil {
			m.mem.release()
		}
	}()
	up := uploader{d: d, mem: &m.mem, set: set}
	v, t := cfg.Vision, cfg.Text
	act := tensor.GELU
	if cfg.QuickGELU {
		act = tensor.QuickGELU
	}
	m.conv1 = up.half("visual.conv1.weight", nil)
	m.cls = up.float("visual.class_embedding")
	m.visPos = up.float("visual.positional_embedding")
	m.lnPre = up.norm("visual.ln_pre")
	for i := range v.Layers {
		m.visual = append(m.visual, up.block(fmt.Sprintf("visual.transformer.resblocks.%d.", i), v.Width, v.MLPWidth(), v.Heads(), false, act))
	}
	m.lnPost = up.norm("visual.ln_post")
	m.visProj = up.half("visual.proj", transpose)
	m.tokens = up.half("token_embedding.weight", nil)
	m.textPos = up.float("positional_embedding")
	for i := range t.Layers {
		m.text = append(m.text, up.block(fmt.Sprintf("transformer.resblocks.%d.", i), t.Width, t.MLPWidth(), t.Heads, true, act))
	}
	m.lnFinal = up.norm("ln_final")
	m.textProj = up.half("text_projection", transpose)
	if err := up.done(); up.err == nil {
		up.err = err
	}
	if up.err != nil {
		return nil, fmt.Errorf("upload weights: %w", up.err)
	}
	return m, nil
}

func (m *model) release() { m.mem.release() }

// transpose returns the [k, n] matrix x as [n, k].
func transpose(x *tensor.Tensor) []float32 {
	k, n := x.Shape[0], x.Shape[1]
	out := make([]float32, len(x.Data))
	for i := range k {
		for j := range n {
			out[j*k+i] = x.Data[i*n+j]
		}
	}
	return out
}

// uploader uploads named tensors, keeping the first error.
type uploader struct {
	d   device
	mem *arena
	set *weights.Set
	err error

	tmp      dptr // staging for the float copy of a matrix
	tmpBytes int
}

func (u *uploader) get(name string) *tensor.Tensor {
	t, _ := u.set.Get(name) // readModel checked that every tensor is there
	return t
}

func (u *uploader) float(name string) dptr {
	if u.err != nil {
		return 0
	}
	p, err := u.mem.upload(floatBytes(u.get(name).Data))
	u.err = err
	return p
}

// half uploads a tensor (through fn when given) as float into a staging buffer and
// converts it to half on the device. Copies and kernels are ordered on the device's
// stream, so the staging buffer is reused as soon as the call returns.
func (u *uploader) half(name string, fn func(*tensor.Tensor) []float32) dptr {
	if u.err != nil {
		return 0
	}
	t := u.get(name)
	x := t.Data
	if fn != nil {
		x = fn(t)
	}
	if u.tmpBytes < 4*len(x) {
		if u.err = u.done(); u.err != nil {
			return 0
		}
		if u.tmp, u.err = u.d.alloc(4 * len(x)); u.err != nil {
			return 0
		}
		u.tmpBytes = 4 * len(x)
	}
	out, err := u.mem.alloc(2 * len(x))
	if err == nil {
		err = u.d.copyIn(u.tmp, floatBytes(x))
	}
	if err == nil {
		err = toHalfOn(u.d, u.tmp, out, len(x))
	}
	u.err = err
	return out
}

// done waits for the conversions and frees the staging buffer.
func (u *uploader) done() error {
	if u.tmpBytes == 0 {
		return nil
	}
	err := u.d.sync()
	u.d.free(u.tmp)
	u.tmp, u.tmpBytes = 0, 0
	return err
}

func (u *uploader) norm(prefix string) norm {
	return norm{gamma: u.float(prefix + ".weight"), beta: u.float(prefix + ".bias")}
}

func (u *uploader) linear(prefix string, in, out int) linear {
	return linear{w: u.half(prefix+".weight", nil), b: u.float(prefix + ".bias"), in: in, out: out}
}

func (u *uploader) block(prefix string, width, mlp, heads int, causal bool, act tensor.Act) block {
	return block{
		ln1:      u.norm(prefix + "ln_1"),
		inProj:   linear{w: u.half(prefix+"attn.in_proj_weight", nil), b: u.float(prefix + "attn.in_proj_bias"), in: width, out: 3 * width},
		outProj:  u.linear(prefix+"attn.out_proj", width, width),
		ln2:      u.norm(prefix + "ln_2"),
		fc:       u.linear(prefix+"mlp.c_fc", width, mlp),
		proj:     u.linear(prefix+"mlp.c_proj", mlp, width),
		heads:    heads,
		causal:   causal,
		width:    width,
		mlpWidth: mlp,
		act:      act,
	}
}

// floatBytes is x as little-endian bytes.
func floatBytes(x []float32) []byte {
	b := make([]byte, 4*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}

func bytesFloat(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}
