package gui

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/gata-contrib/gata/app/core"
	"github.com/gata-contrib/gata/app/gui/internal/widgettest"
	"github.com/gata-contrib/gata/dva/models"
	"github.com/gata-contrib/gata/storage"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ and assets/icon.png")

// testEnv is a window on Fyne's test app over a real core on a real SQLite file.
type testEnv struct {
	app   fyne.App
	shell *Shell
	core  *core.Core
	store *storage.Store
	level *slog.LevelVar
	ui    *widgettest.Queue
}

func newTestEnv(t *testing.T, opts Options) *testEnv {
	t.Helper()
	return newTestEnvWrapped(t, opts, func(c *core.Core) Core { return c })
}

// newTestEnvWrapped is newTestEnv with the window talking to wrap(core) instead of the core.
func newTestEnvWrapped(t *testing.T, opts Options, wrap func(*core.Core) Core) *testEnv {
	t.Helper()
	a := test.NewTempApp(t)
	dir := t.TempDir()
	st, err := storage.Open(context.Background(), filepath.Join(dir, storage.DBName))
	if err != nil {
		t.Fatal(err)
	}
	lv := new(slog.LevelVar)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	// The real model store on an empty models folder: the Validate page shows the default
	// model as not downloaded (nothing here downloads it).
	ms := models.NewStore(filepath.Join(dir, "models"), models.Options{})
	c, err := core.New(core.Options{Version: "test", DataDir: dir, Store: st, LogLevel: lv, Logger: log, Models: ms})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Jobs().Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Jobs.Serve returned %v", err)
		}
		st.Close()
	})

	q := &widgettest.Queue{}
	opts.Logger = log
	s := newShell(context.Background(), a, wrap(c), opts, q.Do)
	t.Cleanup(s.Close) // runs before the core's cleanup above
	return &testEnv{app: a, shell: s, core: c, store: st, level: lv, ui: q}
}

// findAfter returns the first T drawn after the label with the given text (a form's label
// comes before its control), or the first T at all for "", or fails the test.
func findAfter[T fyne.CanvasObject](t *testing.T, root fyne.CanvasObject, label string, match func(T) bool) T {
	t.Helper()
	var found T
	seen, done := label == "", false
	widgettest.Walk(root, func(o fyne.CanvasObject) {
		if done {
			return
		}
		if l, ok := o.(*widget.Label); ok && l.Text == label && !seen {
			seen = true
			return
		}
		if x, ok := o.(T); ok && seen && (match == nil || match(x)) {
			found, done = x, true
		}
	})
	if !done {
		t.Fatalf("no %T after the label %q", found, label)
	}
	return found
}

// texts returns the texts of the visible labels and rich texts under root, whole (as the
// user reads them, before wrapping splits them into lines).
func texts(root fyne.CanvasObject) []string {
	var out []string
	widgettest.Walk(root, func(o fyne.CanvasObject) {
		if !o.Visible() {
			return
		}
		switch x := o.(type) {
		case *widget.Label:
			out = append(out, x.Text)
		case *widget.RichText:
			for _, seg := range x.Segments {
				out = append(out, segmentTexts(seg)...)
			}
		}
	})
	return out
}

func segmentTexts(seg widget.RichTextSegment) []string {
	switch x := seg.(type) {
	case *widget.TextSegment:
		return []string{x.Text}
	case *widget.ParagraphSegment:
		var out []string
		for _, s := range x.Texts {
			out = append(out, segmentTexts(s)...)
		}
		return out
	case *widget.ListSegment:
		var out []string
		for _, s := range x.Items {
			out = append(out, segmentTexts(s)...)
		}
		return out
	}
	return nil
}

// assertMarkup compares a canvas's rendering with a golden markup file, rewriting it with -update.
func assertMarkup(t *testing.T, name string, c fyne.Canvas) {
	t.Helper()
	if *update {
		p := filepath.Join("testdata", name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(test.RenderToMarkup(c)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	test.AssertRendersToMarkup(t, name, c)
}
