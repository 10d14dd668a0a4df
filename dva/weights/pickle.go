package weights

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// A minimal pickle virtual machine for torch state dicts. It builds plain values
// (None, bool, int64, float64, string, bytes, tuples, lists, dicts) and understands a
// fixed allow-list of globals; it never imports or calls anything a pickle names.

type (
	pyTuple  []any
	pyList   struct{ items []any }
	pyGlobal struct{ module, name string }
	pyMark   struct{}
)

// pyDict keeps insertion order, as Python dicts do; re-assigning a key keeps its place.
type pyDict struct {
	keys  []any
	vals  []any
	index map[any]int
}

func newDict() *pyDict { return &pyDict{index: map[any]int{}} }

func (d *pyDict) set(k, v any) error {
	switch k.(type) {
	case string, int64, bool, nil, float64:
	default:
		return fmt.Errorf("unsupported dict key of type %s", typeName(k))
	}
	if i, ok := d.index[k]; ok {
		d.vals[i] = v
		return nil
	}
	d.index[k] = len(d.keys)
	d.keys = append(d.keys, k)
	d.vals = append(d.vals, v)
	return nil
}

func (d *pyDict) get(k string) (any, bool) {
	i, ok := d.index[k]
	if !ok {
		return nil, false
	}
	return d.vals[i], true
}

// pyStorage is a persistent id ('storage', torch.XStorage, key, location, numel).
type pyStorage struct {
	key   string
	dtype dtype
	numel int64
}

// pyTensor is the result of torch._utils._rebuild_tensor_v2.
type pyTensor struct {
	storage *pyStorage
	offset  int64
	size    []int64
	stride  []int64
}

// storageTypes maps the allowed torch storage classes to their element type.
var storageTypes = map[pyGlobal]dtype{
	{"torch", "FloatStorage"}:    f32,
	{"torch", "HalfStorage"}:     f16,
	{"torch", "BFloat16Storage"}: bf16,
}

var (
	globalOrderedDict   = pyGlobal{"collections", "OrderedDict"}
	globalRebuildTensor = pyGlobal{"torch._utils", "_rebuild_tensor_v2"}
	globalRebuildParam  = pyGlobal{"torch._utils", "_rebuild_parameter"}
)

func allowedGlobal(g pyGlobal) bool {
	if _, ok := storageTypes[g]; ok {
		return true
	}
	return g == globalOrderedDict || g == globalRebuildTensor || g == globalRebuildParam
}

func typeName(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case bool:
		return "bool"
	case int64:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case []byte:
		return "bytes"
	case pyTuple:
		return "tuple"
	case *pyList:
		return "list"
	case *pyDict:
		return "dict"
	case pyGlobal:
		return v.module + "." + v.name
	case *pyStorage:
		return "storage"
	case *pyTensor:
		return "tensor"
	case pyMark:
		return "mark"
	}
	return fmt.Sprintf("%T", v)
}

// unpickle runs the pickle program p and returns the object it builds.
func unpickle(p []byte) (any, error) {
	u := unpickler{p: p, memo: map[uint32]any{}}
	v, err := u.run()
	if err != nil {
		return nil, fmt.Errorf("unpickle at byte %d: %w", u.op, err)
	}
	return v, nil
}

type unpickler struct {
	p     []byte
	pos   int
	op    int // offset of the opcode being run
	stack []any
	marks []int
	memo  map[uint32]any
}

var errTruncated = errors.New("truncated pickle")

func (u *unpickler) read(n int) ([]byte, error) {
	if n < 0 || n > len(u.p)-u.pos {
		return nil, errTruncated
	}
	b := u.p[u.pos : u.pos+n]
	u.pos += n
	return b, nil
}

func (u *unpickler) readByte() (byte, error) {
	b, err := u.read(1)
	if err != nil {
		return 0, err
	}
	return b[0], nil
}

func (u *unpickler) readLine() (string, error) {
	for i := u.pos; i < len(u.p); i++ {
		if u.p[i] == '\n' {
			s := string(u.p[u.pos:i])
			u.pos = i + 1
			return s, nil
		}
	}
	return "", errTruncated
}

func (u *unpickler) readU32() (int, error) {
	b, err := u.read(4)
	if err != nil {
		return 0, err
	}
	return int(binary.LittleEndian.Uint32(b)), nil
}

func (u *unpickler) readU64() (uint64, error) {
	b, err := u.read(8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

func (u *unpickler) push(v any) { u.stack = append(u.stack, v) }

func (u *unpickler) pop() (any, error) {
	n := len(u.stack)
	if n == 0 || (len(u.marks) > 0 && u.marks[len(u.marks)-1] == n) {
		return nil, errors.New("stack underflow")
	}
	v := u.stack[n-1]
	u.stack = u.stack[:n-1]
	return v, nil
}

func (u *unpickler) top() (any, error) {
	n := len(u.stack)
	if n == 0 || (len(u.marks) > 0 && u.marks[len(u.marks)-1] == n) {
		return nil, errors.New("stack underflow")
	}
	return u.stack[n-1], nil
}

// popMark returns the items pushed since the last MARK and removes them with the mark.
func (u *unpickler) popMark() ([]any, error) {
	if len(u.marks) == 0 {
		return nil, errors.New("no MARK on the stack")
	}
	m := u.marks[len(u.marks)-1]
	u.marks = u.marks[:len(u.marks)-1]
	items := append([]any(nil), u.stack[m:]...)
	u.stack = u.stack[:m]
	return items, nil
}

func (u *unpickler) popN(n int) ([]any, error) {
	items := make([]any, n)
	for i := n - 1; i >= 0; i-- {
		v, err := u.pop()
		if err != nil {
			return nil, err
		}
		items[i] = v
	}
	return items, nil
}

func (u *unpickler) memoPut(i uint32) error {
	v, err := u.top()
	if err != nil {
		return err
	}
	u.memo[i] = v
	return nil
}

func (u *unpickler) memoGet(i uint32) error {
	v, ok := u.memo[i]
	if !ok {
		return fmt.Errorf("memo key %d not defined", i)
	}
	u.push(v)
	return nil
}

// decodeLong reads a little-endian two's complement integer of at most 8 bytes.
func decodeLong(b []byte) (int64, error) {
	if len(b) > 8 {
		return 0, fmt.Errorf("integer of %d bytes is too large", len(b))
	}
	if len(b) == 0 {
		return 0, nil
	}
	var v uint64
	for i := len(b) - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	if n := uint(len(b)) * 8; n < 64 && b[len(b)-1]&0x80 != 0 {
		v |= ^uint64(0) << n // sign-extend
	}
	return int64(v), nil
}

func (u *unpickler) run() (any, error) {
	for {
		u.op = u.pos
		code, err := u.readByte()
		if err != nil {
			return nil, errors.New("truncated pickle: no STOP opcode")
		}
		switch code {
		case 0x80: // PROTO
			v, err := u.readByte()
			if err != nil {
				return nil, err
			}
			if v > 5 {
				return nil, fmt.Errorf("unsupported pickle protocol %d", v)
			}
		case 0x95: // FRAME: a length hint only
			n, err := u.readU64()
			if err != nil {
				return nil, err
			}
			if n > uint64(len(u.p)-u.pos) {
				return nil, errTruncated
			}
		case '.': // STOP
			v, err := u.pop()
			if err != nil {
				return nil, err
			}
			if _, ok := v.(pyMark); ok {
				return nil, errors.New("STOP with a MARK on top")
			}
			return v, nil
		case '(': // MARK
			u.marks = append(u.marks, len(u.stack))
		case '0': // POP
			if _, err := u.pop(); err != nil {
				return nil, err
			}
		case '1': // POP_MARK
			if _, err := u.popMark(); err != nil {
				return nil, err
			}
		case '2': // DUP
			v, err := u.top()
			if err != nil {
				return nil, err
			}
			u.push(v)
		case 'N': // NONE
			u.push(nil)
		case 0x88: // NEWTRUE
			u.push(true)
		case 0x89: // NEWFALSE
			u.push(false)
		case 'J': // BININT
			b, err := u.read(4)
			if err != nil {
				return nil, err
			}
			u.push(int64(int32(binary.LittleEndian.Uint32(b))))
		case 'K': // BININT1
			b, err := u.readByte()
			if err != nil {
				return nil, err
			}
			u.push(int64(b))
		case 'M': // BININT2
			b, err := u.read(2)
			if err != nil {
				return nil, err
			}
			u.push(int64(binary.LittleEndian.Uint16(b)))
		case 0x8a: // LONG1
			n, err := u.readByte()
			if err != nil {
				return nil, err
			}
			b, err := u.read(int(n))
			if err != nil {
				return nil, err
			}
			v, err := decodeLong(b)
			if err != nil {
				return nil, err
			}
			u.push(v)
		case 0x8b: // LONG4
			n, err := u.readU32()
			if err != nil {
				return nil, err
			}
			b, err := u.read(n)
			if err != nil {
				return nil, err
			}
			v, err := decodeLong(b)
			if err != nil {
				return nil, err
			}
			u.push(v)
		case 'G': // BINFLOAT, big-endian
			b, err := u.read(8)
			if err != nil {
				return nil, err
			}
			u.push(math.Float64frombits(binary.BigEndian.Uint64(b)))
		case 'X': // BINUNICODE
			n, err := u.readU32()
			if err != nil {
				return nil, err
			}
			b, err := u.read(n)
			if err != nil {
				return nil, err
			}
			u.push(string(b))
		case 0x8c: // SHORT_BINUNICODE
			n, err := u.readByte()
			if err != nil {
				return nil, err
			}
			b, err := u.read(int(n))
			if err != nil {
				return nil, err
			}
			u.push(string(b))
		case 0x8d: // BINUNICODE8
			n, err := u.readU64()
			if err != nil {
				return nil, err
			}
			if n > uint64(len(u.p)) {
				return nil, errTruncated
			}
			b, err := u.read(int(n))
			if err != nil {
				return nil, err
			}
			u.push(string(b))
		case 'T': // BINSTRING (Python 2 str; latin-1 in practice)
			n, err := u.readU32()
			if err != nil {
				return nil, err
			}
			b, err := u.read(n)
			if err != nil {
				return nil, err
			}
			u.push(latin1(b))
		case 'U': // SHORT_BINSTRING
			n, err := u.readByte()
			if err != nil {
				return nil, err
			}
			b, err := u.read(int(n))
			if err != nil {
				return nil, err
			}
			u.push(latin1(b))
		case 'B': // BINBYTES
			n, err := u.readU32()
			if err != nil {
				return nil, err
			}
			b, err := u.read(n)
			if err != nil {
				return nil, err
			}
			u.push(append([]byte(nil), b...))
		case 'C': // SHORT_BINBYTES
			n, err := u.readByte()
			if err != nil {
				return nil, err
			}
			b, err := u.read(int(n))
			if err != nil {
				return nil, err
			}
			u.push(append([]byte(nil), b...))
		case ')': // EMPTY_TUPLE
			u.push(pyTuple{})
		case 't': // TUPLE
			items, err := u.popMark()
			if err != nil {
				return nil, err
			}
			u.push(pyTuple(items))
		case 0x85, 0x86, 0x87: // TUPLE1, TUPLE2, TUPLE3
			items, err := u.popN(int(code-0x85) + 1)
			if err != nil {
				return nil, err
			}
			u.push(pyTuple(items))
		case ']': // EMPTY_LIST
			u.push(&pyList{})
		case 'l': // LIST
			items, err := u.popMark()
			if err != nil {
				return nil, err
			}
			u.push(&pyList{items: items})
		case 'a': // APPEND
			v, err := u.pop()
			if err != nil {
				return nil, err
			}
			l, err := u.topList()
			if err != nil {
				return nil, err
			}
			l.items = append(l.items, v)
		case 'e': // APPENDS
			items, err := u.popMark()
			if err != nil {
				return nil, err
			}
			l, err := u.topList()
			if err != nil {
				return nil, err
			}
			l.items = append(l.items, items...)
		case '}': // EMPTY_DICT
			u.push(newDict())
		case 'd': // DICT
			items, err := u.popMark()
			if err != nil {
				return nil, err
			}
			d := newDict()
			if err := setItems(d, items); err != nil {
				return nil, err
			}
			u.push(d)
		case 's': // SETITEM
			kv, err := u.popN(2)
			if err != nil {
				return nil, err
			}
			d, err := u.topDict()
			if err != nil {
				return nil, err
			}
			if err := d.set(kv[0], kv[1]); err != nil {
				return nil, err
			}
		case 'u': // SETITEMS
			items, err := u.popMark()
			if err != nil {
				return nil, err
			}
			d, err := u.topDict()
			if err != nil {
				return nil, err
			}
			if err := setItems(d, items); err != nil {
				return nil, err
			}
		case 'q': // BINPUT
			i, err := u.readByte()
			if err != nil {
				return nil, err
			}
			if err := u.memoPut(uint32(i)); err != nil {
				return nil, err
			}
		case 'r': // LONG_BINPUT
			i, err := u.readU32()
			if err != nil {
				return nil, err
			}
			if err := u.memoPut(uint32(i)); err != nil {
				return nil, err
			}
		case 0x94: // MEMOIZE
			if err := u.memoPut(uint32(len(u.memo))); err != nil {
				return nil, err
			}
		case 'h': // BINGET
			i, err := u.readByte()
			if err != nil {
				return nil, err
			}
			if err := u.memoGet(uint32(i)); err != nil {
				return nil, err
			}
		case 'j': // LONG_BINGET
			i, err := u.readU32()
			if err != nil {
				return nil, err
			}
			if err := u.memoGet(uint32(i)); err != nil {
				return nil, err
			}
		case 'c': // GLOBAL "module\nname\n"
			mod, err := u.readLine()
			if err != nil {
				return nil, err
			}
			name, err := u.readLine()
			if err != nil {
				return nil, err
			}
			if err := u.pushGlobal(pyGlobal{mod, name}); err != nil {
				return nil, err
			}
		case 0x93: // STACK_GLOBAL
			mn, err := u.popN(2)
			if err != nil {
				return nil, err
			}
			mod, ok1 := mn[0].(string)
			name, ok2 := mn[1].(string)
			if !ok1 || !ok2 {
				return nil, errors.New("STACK_GLOBAL needs two strings")
			}
			if err := u.pushGlobal(pyGlobal{mod, name}); err != nil {
				return nil, err
			}
		case 'Q': // BINPERSID
			pid, err := u.pop()
			if err != nil {
				return nil, err
			}
			s, err := persistentLoad(pid)
			if err != nil {
				return nil, err
			}
			u.push(s)
		case 'R': // REDUCE
			fa, err := u.popN(2)
			if err != nil {
				return nil, err
			}
			v, err := reduce(fa[0], fa[1])
			if err != nil {
				return nil, err
			}
			u.push(v)
		case 'b': // BUILD: set state on the object below; the state is not needed
			if _, err := u.pop(); err != nil {
				return nil, err
			}
			if _, err := u.top(); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("unsupported pickle opcode 0x%02x", code)
		}
	}
}

func latin1(b []byte) string {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}

func setItems(d *pyDict, items []any) error {
	if len(items)%2 != 0 {
		return errors.New("odd number of items for a dict")
	}
	for i := 0; i < len(items); i += 2 {
		if err := d.set(items[i], items[i+1]); err != nil {
			return err
		}
	}
	return nil
}

func (u *unpickler) topList() (*pyList, error) {
	v, err := u.top()
	if err != nil {
		return nil, err
	}
	l, ok := v.(*pyList)
	if !ok {
		return nil, fmt.Errorf("APPEND to a %s, not a list", typeName(v))
	}
	return l, nil
}

func (u *unpickler) topDict() (*pyDict, error) {
	v, err := u.top()
	if err != nil {
		return nil, err
	}
	d, ok := v.(*pyDict)
	if !ok {
		return nil, fmt.Errorf("SETITEM on a %s, not a dict", typeName(v))
	}
	return d, nil
}

func (u *unpickler) pushGlobal(g pyGlobal) error {
	if !allowedGlobal(g) {
		return fmt.Errorf("refusing global %q: not on the allow-list of a torch state dict", g.module+" "+g.name)
	}
	u.push(g)
	return nil
}

// persistentLoad turns ('storage', torch.FloatStorage, key, location, numel) into a storage.
func persistentLoad(pid any) (*pyStorage, error) {
	t, ok := pid.(pyTuple)
	if !ok || len(t) != 5 {
		return nil, fmt.Errorf("persistent id is a %s, want a 5-tuple ('storage', type, key, location, numel)", typeName(pid))
	}
	if s, _ := t[0].(string); s != "storage" {
		return nil, fmt.Errorf("persistent id of kind %v, want 'storage'", t[0])
	}
	g, ok := t[1].(pyGlobal)
	if !ok {
		return nil, fmt.Errorf("persistent id storage type is a %s", typeName(t[1]))
	}
	dt, ok := storageTypes[g]
	if !ok {
		return nil, fmt.Errorf("unsupported storage type %s.%s", g.module, g.name)
	}
	key, ok := t[2].(string)
	if !ok || key == "" {
		return nil, errors.New("persistent id storage key is not a string")
	}
	numel, ok := t[4].(int64)
	if !ok || numel < 0 {
		return nil, fmt.Errorf("persistent id storage size %v is not a non-negative int", t[4])
	}
	return &pyStorage{key: key, dtype: dt, numel: numel}, nil
}

func reduce(f, args any) (any, error) {
	g, ok := f.(pyGlobal)
	if !ok {
		return nil, fmt.Errorf("REDUCE on a %s, not a callable", typeName(f))
	}
	a, ok := args.(pyTuple)
	if !ok {
		return nil, fmt.Errorf("REDUCE arguments are a %s, not a tuple", typeName(args))
	}
	switch g {
	case globalOrderedDict:
		if len(a) != 0 {
			return nil, errors.New("OrderedDict with arguments is not supported")
		}
		return newDict(), nil
	case globalRebuildParam:
		// _rebuild_parameter(data, requires_grad, backward_hooks)
		if len(a) != 3 {
			return nil, fmt.Errorf("_rebuild_parameter takes 3 arguments, got %d", len(a))
		}
		if _, ok := a[0].(*pyTensor); !ok {
			return nil, fmt.Errorf("_rebuild_parameter of a %s", typeName(a[0]))
		}
		return a[0], nil
	case globalRebuildTensor:
		return rebuildTensor(a)
	}
	return nil, fmt.Errorf("%s.%s is not callable here", g.module, g.name)
}

// rebuildTensor checks _rebuild_tensor_v2(storage, storage_offset, size, stride,
// requires_grad, backward_hooks[, metadata]).
func rebuildTensor(a pyTuple) (*pyTensor, error) {
	if len(a) != 6 && len(a) != 7 {
		return nil, fmt.Errorf("_rebuild_tensor_v2 takes 6 or 7 arguments, got %d", len(a))
	}
	s, ok := a[0].(*pyStorage)
	if !ok {
		return nil, fmt.Errorf("_rebuild_tensor_v2 storage is a %s", typeName(a[0]))
	}
	off, ok := a[1].(int64)
	if !ok || off < 0 {
		return nil, fmt.Errorf("_rebuild_tensor_v2 storage offset %v is not a non-negative int", a[1])
	}
	size, err := intTuple(a[2], "size")
	if err != nil {
		return nil, err
	}
	stride, err := intTuple(a[3], "stride")
	if err != nil {
		return nil, err
	}
	if len(size) != len(stride) {
		return nil, fmt.Errorf("_rebuild_tensor_v2 size %v and stride %v differ in length", size, stride)
	}
	return &pyTensor{storage: s, offset: off, size: size, stride: stride}, nil
}

func intTuple(v any, what string) ([]int64, error) {
	t, ok := v.(pyTuple)
	if !ok {
		return nil, fmt.Errorf("_rebuild_tensor_v2 %s is a %s, not a tuple", what, typeName(v))
	}
	out := make([]int64, len(t))
	for i, x := range t {
		n, ok := x.(int64)
		if !ok || n < 0 {
			return nil, fmt.Errorf("_rebuild_tensor_v2 %s %v has a bad element", what, []any(t))
		}
		out[i] = n
	}
	return out, nil
}
