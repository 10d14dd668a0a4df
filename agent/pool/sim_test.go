package pool_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/gata-contrib/gata/dva"
	"github.com/gata-contrib/gata/dva/pipeline"
)

// memSource is a dataset held in memory: n items with small distinct images.
type memSource struct {
	name string
	n    int
}

func (s memSource) Name() string { return s.name }

func (s memSource) Items(ctx context.Context, yield func(pipeline.Item) error) error {
	for i := range s.n {
		if err := ctx.Err(); err != nil {
			return err
		}
		img := make([]byte, 48)
		binary.LittleEndian.PutUint64(img, uint64(i)*0x9e3779b97f4a7c15)
		copy(img[8:], fmt.Sprintf("image %d of %s", i, s.name))
		it := pipeline.Item{Source: s.name, Key: fmt.Sprintf("k%06d", i), Caption: fmt.Sprintf("caption %d", i), Image: img}
		if err := yield(it); err != nil {
			return err
		}
	}
	return nil
}

// simScorer stands in for a model where a test needs thousands of jobs: the score of a
// pair is a fixed function of the image bytes and the caption, plus, for a simulated
// worker, a small noise of its own (an honest GPU differs from the CPU within 5e-3,
// DESIGN §5); each pair takes perPair, like a fixed-speed device.
type simScorer struct {
	noise   float64
	perPair time.Duration
	mu      sync.Mutex
	rng     *rand.Rand
}

func newSimScorer(noise float64, perPair time.Duration, seed uint64) *simScorer {
	return &simScorer{noise: noise, perPair: perPair, rng: rand.New(rand.NewPCG(seed, seed+1))}
}

func hash32(b []byte) uint32 {
	h := fnv.New32a()
	h.Write(b)
	return h.Sum32()
}

func (s *simScorer) Prepare(data []byte) (dva.Prepared, error) {
	return dva.Prepared{Pixels: []float32{float32(hash32(data)) / math.MaxUint32}, Width: len(data), Height: 1}, nil
}

// truth is the noiseless score.
func truth(px float32, caption string) float32 {
	return float32(math.Cos(float64(px)*40 + float64(hash32([]byte(caption)))/1e6))
}

func (s *simScorer) ScorePrepared(ctx context.Context, pixels [][]float32, captions []string) ([]float32, error) {
	if s.perPair > 0 {
		time.Sleep(s.perPair * time.Duration(len(pixels)))
	}
	out := make([]float32, len(pixels))
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range pixels {
		out[i] = truth(pixels[i][0], captions[i])
		if s.noise > 0 {
			out[i] += float32((s.rng.Float64()*2 - 1) * s.noise)
		}
	}
	return out, nil
}
