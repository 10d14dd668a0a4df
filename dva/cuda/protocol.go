package cuda

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// The runner protocol: frames over the child's stdin (requests) and stdout (replies).
//
//	frame   = length uint32 | type uint8 | payload      (length counts type and payload)
//	string  = n uint32 | n bytes (UTF-8)
//
//	open    (1)  version uint32 | model dir string           parent → child, first frame
//	ready   (2)  embed dim uint32 | name string               child → parent, after open
//	images  (3)  id uint64 | n uint32 | n·3·S·S binary16      parent → child
//	texts   (4)  id uint64 | n uint32 | ctx uint32 | n·ctx int32
//	cancel  (5)  id uint64                                    parent → child: stop that request
//	result  (6)  id uint64 | k uint32 | k float32             child → parent
//	failure (7)  id uint64 | flags uint8 | message string     child → parent (id 0: open failed)
//
// Integers and floats are little-endian. A failure with flagSticky set means the child's
// GPU context is gone: the child exits after sending it and the parent starts a new one.
const (
	protocolVersion = 1
	maxFrame        = 1 << 30

	msgOpen    = 1
	msgReady   = 2
	msgImages  = 3
	msgTexts   = 4
	msgCancel  = 5
	msgResult  = 6
	msgFailure = 7

	flagSticky = 1
)

// frame is one message: its type and payload.
type frame struct {
	typ     byte
	payload []byte
}

// readFrame reads one frame; alloc, when set, provides the payload buffer by frame type
// (pinned memory for images in the runner).
func readFrame(r *bufio.Reader, alloc func(typ byte, n int) ([]byte, error)) (frame, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return frame{}, err
	}
	n := binary.LittleEndian.Uint32(hdr[:4])
	if n < 1 || n > maxFrame {
		return frame{}, fmt.Errorf("runner protocol: frame of %d bytes", n)
	}
	var buf []byte
	var err error
	if alloc != nil {
		buf, err = alloc(hdr[4], int(n-1))
	} else {
		buf = make([]byte, n-1)
	}
	if err != nil {
		return frame{}, err
	}
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return frame{}, err
	}
	return frame{typ: hdr[4], payload: buf}, nil
}

// writeFrame writes one frame made of the given parts.
func writeFrame(w io.Writer, typ byte, parts ...[]byte) error {
	n := 1
	for _, p := range parts {
		n += len(p)
	}
	if n > maxFrame {
		return fmt.Errorf("runner protocol: a frame of %d bytes is above the limit of %d", n, maxFrame)
	}
	var hdr [5]byte
	binary.LittleEndian.PutUint32(hdr[:4], uint32(n))
	hdr[4] = typ
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	for _, p := range parts {
		if _, err := w.Write(p); err != nil {
			return err
		}
	}
	return nil
}

// enc builds a payload.
type enc []byte

func (e enc) u8(v byte) enc    { return append(e, v) }
func (e enc) u32(v uint32) enc { return binary.LittleEndian.AppendUint32(e, v) }
func (e enc) u64(v uint64) enc { return binary.LittleEndian.AppendUint64(e, v) }
func (e enc) str(s string) enc { return append(e.u32(uint32(len(s))), s...) }
func (e enc) f32s(x []float32) enc {
	for _, v := range x {
		e = binary.LittleEndian.AppendUint32(e, math.Float32bits(v))
	}
	return e
}

// dec reads a payload; the first short read sets err and yields zeros.
type dec struct {
	b   []byte
	err error
}

func (d *dec) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || len(d.b) < n {
		d.err = fmt.Errorf("runner protocol: payload ends %d bytes short", n-len(d.b))
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *dec) u8() byte {
	if b := d.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (d *dec) u32() uint32 {
	if b := d.take(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (d *dec) u64() uint64 {
	if b := d.take(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

func (d *dec) str() string { return string(d.take(int(d.u32()))) }

// rest returns what is left; it is an error when its length is not a multiple of unit.
func (d *dec) rest(unit int) []byte {
	if d.err == nil && len(d.b)%unit != 0 {
		d.err = fmt.Errorf("runner protocol: %d trailing bytes", len(d.b))
	}
	return d.take(len(d.b))
}

// Requests and replies, decoded.

type imagesReq struct {
	id  uint64
	n   int
	pix []byte // binary16
}

type textsReq struct {
	id  uint64
	ids [][]int32
}

func encodeTexts(id uint64, ids [][]int32, ctxLen int) []byte {
	e := enc(make([]byte, 0, 16+4*len(ids)*ctxLen)).u64(id).u32(uint32(len(ids))).u32(uint32(ctxLen))
	for _, row := range ids {
		for _, v := range row {
			e = e.u32(uint32(v))
		}
	}
	return e
}

func decodeTexts(p []byte) (textsReq, error) {
	d := &dec{b: p}
	r := textsReq{id: d.u64()}
	n, L := int(d.u32()), int(d.u32())
	raw := d.rest(4)
	if d.err == nil && len(raw) != 4*n*L {
		d.err = fmt.Errorf("runner protocol: %d bytes of ids for %d texts of %d", len(raw), n, L)
	}
	if d.err != nil {
		return r, d.err
	}
	r.ids = make([][]int32, n)
	for i := range r.ids {
		r.ids[i] = make([]int32, L)
		for j := range L {
			r.ids[i][j] = int32(binary.LittleEndian.Uint32(raw[4*(i*L+j):]))
		}
	}
	return r, nil
}

func decodeImages(p []byte) (imagesReq, error) {
	d := &dec{b: p}
	r := imagesReq{id: d.u64(), n: int(d.u32())}
	r.pix = d.rest(2)
	return r, d.err
}

type result struct {
	id  uint64
	out []float32
}

func decodeResult(p []byte) (result, error) {
	d := &dec{b: p}
	r := result{id: d.u64()}
	k := int(d.u32())
	raw := d.rest(4)
	if d.err == nil && len(raw) != 4*k {
		d.err = fmt.Errorf("runner protocol: %d bytes for %d floats", len(raw), k)
	}
	if d.err != nil {
		return r, d.err
	}
	r.out = bytesFloat(raw)
	return r, nil
}

// RunnerError is a failure the runner reported.
type RunnerError struct {
	Msg    string
	sticky bool
}

func (e *RunnerError) Error() string { return "GPU runner: " + e.Msg }

func decodeFailure(p []byte) (uint64, *RunnerError, error) {
	d := &dec{b: p}
	id := d.u64()
	flags := d.u8()
	msg := d.str()
	return id, &RunnerError{Msg: msg, sticky: flags&flagSticky != 0}, d.err
}
