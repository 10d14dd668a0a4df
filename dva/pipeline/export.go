package pipeline

import (
	"archive/tar"
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"
)

// Names of the files Export writes in its folder.
const (
	ScoresFile  = "scores.parquet"
	UIDsFile    = "uids.npy"
	SummaryFile = "summary.json"
	ShardsDir   = "shards"
)

// Defaults of ExportOptions.
const (
	DefaultShardSize       = 10000
	DefaultRowGroupSize    = 10000
	DefaultMaxExtraColumns = 64
)

// Histogram bins of summary.json: fixed over the whole cosine range, so the histograms of
// different runs and models line up.
const (
	HistogramMin  = -1.0
	HistogramMax  = 1.0
	HistogramBins = 50
)

// ImageFunc returns the image file of a kept result for the shards: the original bytes
// and their extension ("jpg", "png", "webp"; empty to have it sniffed). The runner provides
// it; it may read the source again, so exports hold no images in memory.
type ImageFunc func(ctx context.Context, r Result) (data []byte, ext string, err error)

// ExportOptions say where and what Export writes.
type ExportOptions struct {
	// Dir is the output folder; it is created if needed. The outputs of an earlier export
	// there are replaced.
	Dir string
	// KeepFraction, when > 0, keeps the top fraction of the scored results: the threshold
	// is Threshold(scores of all scored results, KeepFraction), DataComp's keep-top.
	KeepFraction float64
	// Threshold keeps results scoring at least this much when KeepFraction is 0.
	Threshold *float32
	// MinScore, when set, is a floor on top of the threshold (--min-score).
	MinScore *float32
	// Filter, when set, also applies the basic filter to what is kept.
	Filter *BasicFilter
	// ShardSize is the number of samples per shard (DefaultShardSize when 0).
	ShardSize int
	// RowGroupSize is the number of rows per scores.parquet row group (DefaultRowGroupSize
	// when 0).
	RowGroupSize int
	// MaxExtraColumns caps the Extra keys that get a scores.parquet column of their own
	// (DefaultMaxExtraColumns when 0); the most common keys get one, the rest go as a JSON
	// object into the "extra" column.
	MaxExtraColumns int
	// Images reads the image of a kept result for the shards; nil writes no shards.
	Images ImageFunc
	// Model, ModelSHA256, Sources and Timings (seconds by phase) are copied into summary.json.
	Model       string
	ModelSHA256 string
	Sources     []string
	Timings     map[string]float64
}

// Summary is the content of summary.json.
type Summary struct {
	Created     time.Time `json:"created"`
	Model       string    `json:"model,omitempty"`
	ModelSHA256 string    `json:"model_sha256,omitempty"`
	Sources     []string  `json:"sources"`

	Total  int64            `json:"total"`  // results read
	Scored int64            `json:"scored"` // of those, scored
	Kept   int64            `json:"kept"`   // of those, kept (Kept says true)
	Failed map[Reason]int64 `json:"failed"` // results not scored, by reason
	// VerdictKeep and VerdictReject count the results a person judged.
	VerdictKeep   int64 `json:"verdict_keep"`
	VerdictReject int64 `json:"verdict_reject"`

	KeepFraction float64      `json:"keep_fraction,omitempty"`
	Threshold    *float32     `json:"threshold,omitempty"` // the one applied, from KeepFraction or given
	MinScore     *float32     `json:"min_score,omitempty"`
	Filter       *BasicFilter `json:"basic_filter,omitempty"`

	Scores    ScoreStats `json:"scores"`
	Histogram Histogram  `json:"histogram"`

	// Shards and ShardSamples count the tar files and the samples in them; a kept result
	// whose image could not be read is left out of the shards and counted in ImageErrors.
	Shards          int    `json:"shards"`
	ShardSamples    int64  `json:"shard_samples"`
	ImageErrors     int64  `json:"image_errors"`
	FirstImageError string `json:"first_image_error,omitempty"`
	// UIDs is the length of uids.npy: the distinct uids of kept results. Kept results whose
	// uid is not 32 hex digits cannot go in it and are counted in UIDsInvalid.
	UIDs        int64 `json:"uids"`
	UIDsInvalid int64 `json:"uids_invalid"`

	ExtraColumns []string           `json:"extra_columns"`
	Timings      map[string]float64 `json:"timings_s,omitempty"`
	Files        []string           `json:"files"`
}

// ScoreStats describe the scores of the scored results (all zero when there are none).
type ScoreStats struct {
	Min  float32 `json:"min"`
	Max  float32 `json:"max"`
	Mean float64 `json:"mean"`
}

// Histogram counts scores in Bins equal bins over [Min, Max]; scores outside fall in the
// end bins, and a score equal to Max in the last.
type Histogram struct {
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	Bins   int     `json:"bins"`
	Counts []int64 `json:"counts"`
}

// Export writes the outputs of a run into opt.Dir: scores.parquet (every result, with the
// keep decision), shards/NNNNN.tar (the kept results as WebDataset samples, when opt.Images
// is set), uids.npy (the kept uids, DataComp's subset format) and summary.json. each calls
// its fn for every result of the run, in a stable order, and is called twice: once to learn
// the Extra keys (and the scores, for KeepFraction) and once to write. Everything is
// written under a temporary folder in opt.Dir and moved into place at the end, summary.json
// last, so a crash or an error leaves no half-written outputs.
func Export(ctx context.Context, opt ExportOptions, each func(fn func(Result) error) error) (Summary, error) {
	if opt.Dir == "" {
		return Summary{}, errors.New("export: no output folder")
	}
	if opt.KeepFraction != 0 && !(opt.KeepFraction > 0 && opt.KeepFraction <= 1) {
		return Summary{}, fmt.Errorf("export: keep fraction %v is not in (0, 1]", opt.KeepFraction)
	}
	opt.ShardSize = cmp.Or(max(opt.ShardSize, 0), DefaultShardSize)
	opt.RowGroupSize = cmp.Or(max(opt.RowGroupSize, 0), DefaultRowGroupSize)
	opt.MaxExtraColumns = cmp.Or(max(opt.MaxExtraColumns, 0), DefaultMaxExtraColumns)

	// First pass: the Extra keys and, for keep-top, the scores.
	keys := map[string]int64{}
	var scores []float32
	err := each(func(r Result) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		for k := range r.Extra {
			if _, ok := keys[k]; ok || len(keys) < maxTrackedExtraKeys {
				keys[k]++
			}
		}
		if opt.KeepFraction > 0 && r.Scored() {
			scores = append(scores, r.Score)
		}
		return nil
	})
	if err != nil {
		return Summary{}, fmt.Errorf("export: read results: %w", err)
	}
	threshold := NoThreshold
	if opt.KeepFraction > 0 {
		if len(scores) > 0 {
			if threshold, err = Threshold(scores, opt.KeepFraction); err != nil {
				return Summary{}, fmt.Errorf("export: %w", err)
			}
		}
		scores = nil
	} else if opt.Threshold != nil {
		threshold = *opt.Threshold
	}

	if err := os.MkdirAll(opt.Dir, 0o755); err != nil {
		return Summary{}, fmt.Errorf("export: create output folder: %w", err)
	}
	removeStale(opt.Dir)
	stage, err := os.MkdirTemp(opt.Dir, stagePrefix)
	if err != nil {
		return Summary{}, fmt.Errorf("export: create staging folder: %w", err)
	}
	defer os.RemoveAll(stage)

	x := &exporter{opt: opt, threshold: threshold, stage: stage}
	x.sum = Summary{
		Created:      time.Now().UTC().Truncate(time.Second),
		Model:        opt.Model,
		ModelSHA256:  opt.ModelSHA256,
		Sources:      opt.Sources,
		Failed:       map[Reason]int64{},
		KeepFraction: opt.KeepFraction,
		MinScore:     opt.MinScore,
		Filter:       opt.Filter,
		Histogram:    Histogram{Min: HistogramMin, Max: HistogramMax, Bins: HistogramBins, Counts: make([]int64, HistogramBins)},
		Timings:      opt.Timings,
	}
	if x.sum.Sources == nil {
		x.sum.Sources = []string{}
	}
	if threshold != NoThreshold {
		x.sum.Threshold = &threshold
	}
	if err := x.write(ctx, keys, each); err != nil {
		x.abort()
		return Summary{}, err
	}
	if err := x.publish(); err != nil {
		return Summary{}, err
	}
	return x.sum, nil
}

const (
	stagePrefix         = ".export-"
	maxTrackedExtraKeys = 10000
)

// removeStale deletes staging folders that an interrupted export left behind.
func removeStale(dir string) {
	old, _ := filepath.Glob(filepath.Join(dir, stagePrefix+"*"))
	for _, p := range old {
		os.RemoveAll(p)
	}
}

type exporter struct {
	opt       ExportOptions
	threshold float32
	stage     string
	sum       Summary
	scoreSum  float64

	cols   scoreColumns
	pq     *parquet.Writer
	pqFile *os.File
	row    parquet.Row

	uids [][2]uint64

	shard      *tar.Writer
	shardFile  *os.File
	shardBuf   *bufio.Writer
	shardCount int
	shardKeys  map[string]bool
}

func (x *exporter) write(ctx context.Context, keys map[string]int64, each func(fn func(Result) error) error) error {
	x.cols = newScoreColumns(keys, x.opt.MaxExtraColumns)
	x.sum.ExtraColumns = x.cols.extraNames
	f, err := os.Create(filepath.Join(x.stage, ScoresFile))
	if err != nil {
		return fmt.Errorf("export: create %s: %w", ScoresFile, err)
	}
	x.pqFile = f
	x.pq = parquet.NewWriter(f, parquet.NewSchema("scores", x.cols.node),
		parquet.MaxRowsPerRowGroup(int64(x.opt.RowGroupSize)), parquet.Compression(&parquet.Snappy))
	if x.opt.Images != nil {
		if err := os.Mkdir(filepath.Join(x.stage, ShardsDir), 0o755); err != nil {
			return fmt.Errorf("export: create shards folder: %w", err)
		}
	}

	err = each(func(r Result) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return x.add(ctx, r)
	})
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err := x.closeShard(); err != nil {
		return err
	}
	if err := x.pq.Close(); err != nil {
		return fmt.Errorf("export: write %s: %w", ScoresFile, err)
	}
	if err := syncClose(x.pqFile); err != nil {
		return fmt.Errorf("export: write %s: %w", ScoresFile, err)
	}
	x.pqFile = nil
	if err := x.writeUIDs(); err != nil {
		return err
	}
	if x.sum.Scored > 0 {
		x.sum.Scores.Mean = x.scoreSum / float64(x.sum.Scored)
	}
	x.sum.Files = []string{ScoresFile, UIDsFile, SummaryFile}
	if x.opt.Images != nil {
		x.sum.Files = append(x.sum.Files, ShardsDir+"/")
	}
	b, err := json.MarshalIndent(x.sum, "", "  ")
	if err != nil {
		return fmt.Errorf("export: encode %s: %w", SummaryFile, err)
	}
	if err := writeFileSync(filepath.Join(x.stage, SummaryFile), append(b, '\n')); err != nil {
		return fmt.Errorf("export: write %s: %w", SummaryFile, err)
	}
	return nil
}

// abort closes what is open after a failure; the staging folder is removed by Export.
func (x *exporter) abort() {
	if x.shardFile != nil {
		x.shardFile.Close()
	}
	if x.pqFile != nil {
		x.pqFile.Close()
	}
}

func (x *exporter) add(ctx context.Context, r Result) error {
	x.sum.Total++
	switch r.Verdict {
	case "keep":
		x.sum.VerdictKeep++
	case "reject":
		x.sum.VerdictReject++
	}
	if r.Scored() {
		x.sum.Scored++
		if s := r.Score; !math.IsNaN(float64(s)) {
			if x.sum.Scored == 1 || s < x.sum.Scores.Min {
				x.sum.Scores.Min = s
			}
			if x.sum.Scored == 1 || s > x.sum.Scores.Max {
				x.sum.Scores.Max = s
			}
			x.scoreSum += float64(s)
			x.sum.Histogram.Counts[histogramBin(s)]++
		}
	} else {
		x.sum.Failed[r.Reason]++
	}
	kept := Kept(r, x.threshold, x.opt.MinScore, x.opt.Filter)
	x.row = x.cols.row(x.row[:0], r, kept)
	if _, err := x.pq.WriteRows([]parquet.Row{x.row}); err != nil {
		return fmt.Errorf("write %s: %w", ScoresFile, err)
	}
	if !kept {
		return nil
	}
	x.sum.Kept++
	if uid, ok := parseUID(r.UID); ok {
		x.uids = append(x.uids, uid)
	} else {
		x.sum.UIDsInvalid++
	}
	if x.opt.Images != nil {
		return x.addSample(ctx, r)
	}
	return nil
}

func histogramBin(s float32) int {
	b := int(math.Floor((float64(s) - HistogramMin) / (HistogramMax - HistogramMin) * HistogramBins))
	return min(max(b, 0), HistogramBins-1)
}

// parseUID splits a 32-hex-digit uid into its high and low 64 bits.
func parseUID(uid string) ([2]uint64, bool) {
	if len(uid) != 32 {
		return [2]uint64{}, false
	}
	var b [16]byte
	if _, err := hex.Decode(b[:], []byte(uid)); err != nil {
		return [2]uint64{}, false
	}
	return [2]uint64{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}, true
}

// writeUIDs writes uids.npy: a NumPy structured array of dtype "u8,u8" (fields f0 and f1,
// the uid's high and low 64 bits), sorted and distinct, which is the subset file DataComp's
// resharder reads.
func (x *exporter) writeUIDs() error {
	slices.SortFunc(x.uids, func(a, b [2]uint64) int {
		return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1]))
	})
	x.uids = slices.Compact(x.uids)
	x.sum.UIDs = int64(len(x.uids))
	var buf bytes.Buffer
	buf.Grow(128 + 16*len(x.uids))
	buf.Write(npyHeader(len(x.uids)))
	var rec [16]byte
	for _, u := range x.uids {
		binary.LittleEndian.PutUint64(rec[:8], u[0])
		binary.LittleEndian.PutUint64(rec[8:], u[1])
		buf.Write(rec[:])
	}
	if err := writeFileSync(filepath.Join(x.stage, UIDsFile), buf.Bytes()); err != nil {
		return fmt.Errorf("export: write %s: %w", UIDsFile, err)
	}
	return nil
}

// npyHeader returns the .npy format 1.0 preamble for n records of dtype "u8,u8": the magic,
// the version, the header length and the header dict, padded with spaces and a newline so
// that the data starts at a multiple of 64 bytes.
func npyHeader(n int) []byte {
	dict := fmt.Sprintf("{'descr': [('f0', '<u8'), ('f1', '<u8')], 'fortran_order': False, 'shape': (%d,), }", n)
	const preamble = 10 // magic (6) + version (2) + header length (2)
	total := (preamble + len(dict) + 1 + 63) / 64 * 64
	h := make([]byte, 0, total)
	h = append(h, "\x93NUMPY\x01\x00"...)
	h = binary.LittleEndian.AppendUint16(h, uint16(total-preamble))
	h = append(h, dict...)
	for len(h) < total-1 {
		h = append(h, ' ')
	}
	return append(h, '\n')
}

// addSample appends the kept result to the current shard, starting a new one when full.
func (x *exporter) addSample(ctx context.Context, r Result) error {
	data, ext, err := x.opt.Images(ctx, r)
	if err == nil {
		ext, err = imageExt(ext, data)
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		x.sum.ImageErrors++
		if x.sum.FirstImageError == "" {
			x.sum.FirstImageError = fmt.Sprintf("%s/%s: %v", r.Source, r.Key, err)
		}
		return nil
	}
	if x.shard != nil && x.shardCount >= x.opt.ShardSize {
		if err := x.closeShard(); err != nil {
			return err
		}
	}
	if x.shard == nil {
		if err := x.openShard(); err != nil {
			return err
		}
	}
	key := x.sampleKey(r.Key)
	meta, err := sampleJSON(r)
	if err != nil {
		return fmt.Errorf("encode sample %s/%s: %w", r.Source, r.Key, err)
	}
	for _, m := range []struct {
		name string
		data []byte
	}{{key + "." + ext, data}, {key + ".txt", []byte(r.Caption)}, {key + ".json", meta}} {
		hdr := &tar.Header{Name: m.name, Mode: 0o644, Size: int64(len(m.data)), ModTime: x.sum.Created, Typeflag: tar.TypeReg}
		if err := x.shard.WriteHeader(hdr); err != nil {
			return fmt.Errorf("write shard %05d: %w", x.sum.Shards, err)
		}
		if _, err := x.shard.Write(m.data); err != nil {
			return fmt.Errorf("write shard %05d: %w", x.sum.Shards, err)
		}
	}
	x.shardCount++
	x.sum.ShardSamples++
	return nil
}

// sampleKey is the input key made safe as a WebDataset key: WebDataset cuts a member name
// at the first dot of its base name, so dots become "_", and a key already in the shard
// (two sources may share keys) gets a "_N" suffix.
func (x *exporter) sampleKey(key string) string {
	dir, base := "", key
	if i := strings.LastIndexByte(key, '/'); i >= 0 {
		dir, base = key[:i+1], key[i+1:]
	}
	k := dir + strings.ReplaceAll(cmp.Or(base, "_"), ".", "_")
	for n, orig := 2, k; x.shardKeys[k]; n++ {
		k = fmt.Sprintf("%s_%d", orig, n)
	}
	x.shardKeys[k] = true
	return k
}

func (x *exporter) shardPath() string {
	return filepath.Join(x.stage, ShardsDir, fmt.Sprintf("%05d.tar", x.sum.Shards))
}

func (x *exporter) openShard() error {
	f, err := os.Create(x.shardPath() + ".tmp")
	if err != nil {
		return fmt.Errorf("create shard %05d: %w", x.sum.Shards, err)
	}
	x.shardFile = f
	x.shardBuf = bufio.NewWriterSize(f, 1<<20)
	x.shard = tar.NewWriter(x.shardBuf)
	x.shardCount = 0
	x.shardKeys = map[string]bool{}
	return nil
}

// closeShard finishes the current shard, if any, and gives it its final name.
func (x *exporter) closeShard() error {
	if x.shard == nil {
		return nil
	}
	path := x.shardPath()
	err := x.shard.Close()
	if err == nil {
		err = x.shardBuf.Flush()
	}
	if err == nil {
		err = syncClose(x.shardFile)
	} else {
		x.shardFile.Close()
	}
	x.shard, x.shardFile, x.shardBuf = nil, nil, nil
	if err == nil {
		err = os.Rename(path+".tmp", path)
	}
	if err != nil {
		return fmt.Errorf("export: write shard %05d: %w", x.sum.Shards, err)
	}
	x.sum.Shards++
	return nil
}

// publish moves the staged outputs into the output folder, replacing an earlier export's:
// summary.json goes first (so none is left claiming outputs that are being replaced) and
// comes back last.
func (x *exporter) publish() error {
	dir := x.opt.Dir
	if err := os.Remove(filepath.Join(dir, SummaryFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("export: replace %s: %w", SummaryFile, err)
	}
	if err := os.RemoveAll(filepath.Join(dir, ShardsDir)); err != nil {
		return fmt.Errorf("export: replace %s: %w", ShardsDir, err)
	}
	names := []string{ScoresFile, UIDsFile}
	if x.opt.Images != nil {
		names = append(names, ShardsDir)
	}
	for _, name := range append(names, SummaryFile) {
		if err := os.Rename(filepath.Join(x.stage, name), filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("export: move %s into place: %w", name, err)
		}
	}
	return nil
}

// imageExt normalises the extension the image callback gave, or sniffs one from the bytes.
func imageExt(ext string, data []byte) (string, error) {
	ext = strings.ToLower(strings.TrimPrefix(ext, "."))
	if ext == "jpeg" {
		ext = "jpg"
	}
	if ext != "" {
		if strings.ContainsAny(ext, "./\\ ") {
			return "", fmt.Errorf("bad image extension %q", ext)
		}
		return ext, nil
	}
	switch {
	case bytes.HasPrefix(data, []byte("\xff\xd8\xff")):
		return "jpg", nil
	case bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")):
		return "png", nil
	case len(data) >= 12 && string(data[:4]) == "RIFF" && string(data[8:12]) == "WEBP":
		return "webp", nil
	case bytes.HasPrefix(data, []byte("GIF8")):
		return "gif", nil
	}
	return "", errors.New("unknown image format and no extension")
}

// sampleJSON is the KEY.json of a sample: the result's fields, then its Extra fields beside
// them (an Extra key that would shadow one of those goes under "extra" instead).
func sampleJSON(r Result) ([]byte, error) {
	m := map[string]any{
		"uid": r.UID, "key": r.Key, "source": r.Source, "url": r.URL, "caption": r.Caption,
		"score": r.Score, "width": r.Width, "height": r.Height,
	}
	if r.Verdict != "" {
		m["verdict"] = r.Verdict
	}
	shadowed := map[string]string{}
	for k, v := range r.Extra {
		if _, taken := m[k]; taken || k == "extra" {
			shadowed[k] = v
		} else {
			m[k] = v
		}
	}
	if len(shadowed) > 0 {
		m["extra"] = shadowed
	}
	return json.Marshal(m)
}

func syncClose(f *os.File) error {
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func writeFileSync(path string, data []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return syncClose(f)
}
