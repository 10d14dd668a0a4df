package app

import (
	"context"
	"os"
	"path/filepath"
	"runtime"

	"github.com/gata-contrib/gata/app/core"
	"github.com/gata-contrib/gata/dva"
	"github.com/gata-contrib/gata/dva/clip"
	"github.com/gata-contrib/gata/dva/cpu"
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

// loadEngine loads a model folder onto the CPU backend with every core.
func loadEngine(ctx context.Context, dir string) (core.Engine, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m, err := clip.LoadModel(dir)
	if err != nil {
		return nil, err
	}
	return dva.NewEngine(m.Config, cpu.New(m, runtime.GOMAXPROCS(0)), dva.EngineOptions{ModelDir: dir, ModelName: filepath.Base(dir)})
}
