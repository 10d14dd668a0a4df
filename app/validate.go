package app

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/gata-contrib/gata/app/core"
	"github.com/gata-contrib/gata/dva"
	"github.com/gata-contrib/gata/dva/cuda"
	"github.com/gata-contrib/gata/dva/models"
)

// modelStore is the data folder's models/, downloading from the Hugging Face hub or the
// mirror named by $HF_ENDPOINT.
func modelStore(dataDir string) *models.Store {
	return models.NewStore(filepath.Join(dataDir, "models"), models.Options{
		UserAgent: "gata-contributor/" + Version,
		Endpoint:  os.Getenv("HF_ENDPOINT"),
	})
}

// engineLoader loads a model folder onto the GPU when one is usable (the model runs in a
// `gata gpu-runner` child process), else onto the CPU with every core; the backend's name
// says which, and why the GPU is not used.
func engineLoader(log *slog.Logger) core.EngineLoader {
	return func(ctx context.Context, dir string) (core.Engine, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		b, err := cuda.Open(ctx, dir, cuda.Options{Logger: log})
		if err != nil {
			return nil, err
		}
		opts := dva.EngineOptions{ModelDir: dir, ModelName: filepath.Base(dir)}
		if on, _ := b.OnGPU(); on {
			opts.BatchSize = 256 // a GPU wants large batches; the CPU keeps the default
		}
		e, err := dva.NewEngine(b.Config(), b, opts)
		if err != nil {
			b.Close()
			return nil, err
		}
		return e, nil
	}
}
