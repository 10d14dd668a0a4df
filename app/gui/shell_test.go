package gui

import (
	"context"
	"errors"
	"fmt"
	"image/png"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/gata-contrib/gata/app/core"
	"github.com/gata-contrib/gata/app/gui/internal/widgettest"
	"github.com/gata-contrib/gata/app/gui/settings"
)

func TestNavigateSections(t *testing.T) {
	env := newTestEnv(t, Options{})
	s := env.shell
	secs := env.core.Sections()
	if len(secs) != 5 {
		t.Fatalf("core.Sections() has %d sections, want 5", len(secs))
	}
	if s.Current() != secs[0].ID {
		t.Errorf("first section shown = %q, want %q", s.Current(), secs[0].ID)
	}
	for _, sec := range secs {
		t.Run(sec.ID, func(t *testing.T) {
			b := s.NavButton(sec.ID)
			if b == nil || b.Text != sec.Title {
				t.Fatalf("NavButton(%q) = %v, want a button titled %q", sec.ID, b, sec.Title)
			}
			test.Tap(b)
			if s.Current() != sec.ID {
				t.Fatalf("after tapping %q Current() = %q", sec.Title, s.Current())
			}
			for _, other := range secs {
				if got := s.Page(other.ID).Visible(); got != (other.ID == sec.ID) {
					t.Errorf("page %q visible = %v with %q selected", other.ID, got, sec.ID)
				}
				if got := s.NavButton(other.ID).Importance == widget.HighImportance; got != (other.ID == sec.ID) {
					t.Errorf("nav button %q highlighted = %v with %q selected", other.ID, got, sec.ID)
				}
			}
			shown := texts(s.Window().Content())
			for _, want := range append([]string{sec.Title, sec.Summary}, sec.Coming...) {
				if !slices.Contains(shown, want) {
					t.Errorf("window showing %q does not contain %q", sec.ID, want)
				}
			}
			if sec.ID != "settings" { // the settings page shows the temporary data folder
				assertMarkup(t, "section_"+sec.ID+".xml", s.Window().Canvas())
			}
		})
	}
	if err := s.Show("nope"); err == nil {
		t.Error(`Show("nope") = nil, want an error`)
	}
}

func TestSettingsSaveThemeAndLogLevel(t *testing.T) {
	env := newTestEnv(t, Options{})
	s := env.shell
	test.Tap(s.NavButton("settings"))
	page := s.Page("settings")

	findAfter[*widget.Select](t, page, "Theme", nil).SetSelected("dark")
	findAfter[*widget.Select](t, page, "Log level", nil).SetSelected("debug")
	test.Tap(widgettest.Button(t, page, settings.SaveLabel))

	stored, err := env.store.Settings(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if stored[core.SettingTheme] != "dark" || stored[core.SettingLogLevel] != "debug" {
		t.Errorf("SQLite settings after Save = %v, want ui.theme=dark log.level=debug", stored)
	}
	if _, ok := stored[core.SettingWebAddr]; ok {
		t.Errorf("Save stored the unchanged web address: %v", stored)
	}
	if got := env.level.Level(); got != slog.LevelDebug {
		t.Errorf("log level after Save = %v, want DEBUG", got)
	}
	if !slices.Contains(widgettest.Labels(page), "Saved.") {
		t.Errorf("no \"Saved.\" on the page; labels: %q", widgettest.Labels(page))
	}

	// The theme follows the settings event, live.
	env.ui.Until(t, "the dark theme", func() bool { return s.Theme() == "dark" })
	th := env.app.Settings().Theme()
	wantBG := theme.DefaultTheme().Color(theme.ColorNameBackground, theme.VariantDark)
	if got := th.Color(theme.ColorNameBackground, theme.VariantLight); got != wantBG {
		t.Errorf("background after choosing dark = %v, want %v", got, wantBG)
	}

	// Another front-end (the web UI) changes the theme: the window follows.
	if _, err := env.core.UpdateSettings(context.Background(), map[string]string{core.SettingTheme: "light"}); err != nil {
		t.Fatal(err)
	}
	env.ui.Until(t, "the light theme", func() bool { return s.Theme() == "light" })
	if got := findAfter[*widget.Select](t, page, "Theme", nil).Selected; got != "light" {
		t.Errorf("theme select after a change elsewhere = %q, want light", got)
	}
	wantBG = theme.DefaultTheme().Color(theme.ColorNameBackground, theme.VariantLight)
	if got := env.app.Settings().Theme().Color(theme.ColorNameBackground, theme.VariantDark); got != wantBG {
		t.Errorf("background after choosing light = %v, want %v", got, wantBG)
	}
}

func TestSettingsInvalidWebAddress(t *testing.T) {
	env := newTestEnv(t, Options{})
	test.Tap(env.shell.NavButton("settings"))
	page := env.shell.Page("settings")
	ctx := context.Background()

	const bad = "not an address"
	// What the core says about this value, asked directly; it stores nothing either.
	_, err := env.core.UpdateSettings(ctx, map[string]string{core.SettingWebAddr: bad})
	var fe *core.FieldError
	if !errors.As(err, &fe) || fe.Key != core.SettingWebAddr {
		t.Fatalf("UpdateSettings(web.addr=%q) = %v, want a FieldError for web.addr", bad, err)
	}

	addr := findAfter[*widget.Entry](t, page, "Web UI address", nil)
	if addr.Text != core.DefaultWebAddr {
		t.Errorf("web address field = %q, want %q", addr.Text, core.DefaultWebAddr)
	}
	addr.SetText("")
	test.Type(addr, bad)
	findAfter[*widget.Select](t, page, "Theme", nil).SetSelected("dark")
	test.Tap(widgettest.Button(t, page, settings.SaveLabel))

	errLabel := findAfter[*widget.Label](t, page, "Web UI address", func(l *widget.Label) bool {
		return l.Importance == widget.DangerImportance
	})
	if !errLabel.Visible() || errLabel.Text != fe.Reason {
		t.Errorf("error by the web address field = %q (visible %v), want %q", errLabel.Text, errLabel.Visible(), fe.Reason)
	}
	stored, err := env.store.Settings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != 0 {
		t.Errorf("SQLite settings after a refused Save = %v, want none (all or nothing)", stored)
	}
	if addr.Text != bad {
		t.Errorf("the field lost what the user typed: %q", addr.Text)
	}

	// Fixing the value saves both, and the error goes away.
	addr.SetText("127.0.0.1:7801")
	test.Tap(widgettest.Button(t, page, settings.SaveLabel))
	if errLabel.Visible() {
		t.Errorf("error still shown after a good Save: %q", errLabel.Text)
	}
	stored, _ = env.store.Settings(ctx)
	if stored[core.SettingWebAddr] != "127.0.0.1:7801" || stored[core.SettingTheme] != "dark" {
		t.Errorf("SQLite settings after the fix = %v", stored)
	}
	note := findAfter[*widget.Label](t, page, "Web UI address", func(l *widget.Label) bool {
		return l.Importance == widget.WarningImportance
	})
	if !note.Visible() || !strings.Contains(note.Text, "Restart") {
		t.Errorf("restart note = %q (visible %v), want a visible note to restart", note.Text, note.Visible())
	}
}

func TestCheckDataFolder(t *testing.T) {
	env := newTestEnv(t, Options{})
	test.Tap(env.shell.NavButton("settings"))
	page := env.shell.Page("settings")

	check := widgettest.Button(t, page, settings.CheckLabel)
	test.Tap(check)
	if !check.Disabled() {
		t.Error("Check button still enabled while the check runs")
	}
	jobs := env.core.ListJobs()
	if len(jobs) != 1 || jobs[0].Kind != "check" {
		t.Fatalf("ListJobs() after tapping Check = %+v, want one check job", jobs)
	}
	id := jobs[0].ID
	env.ui.Until(t, "the check to end in the window", func() bool { return !check.Disabled() })

	j, err := env.core.Job(id)
	if err != nil {
		t.Fatal(err)
	}
	if j.State != core.JobDone {
		t.Fatalf("check job ended %q (%s), want done", j.State, j.Error)
	}
	rep, ok := j.Result.(core.CheckReport)
	if !ok || len(rep.Items) != 6 {
		t.Fatalf("check job result = %#v, want a report of 6 items", j.Result)
	}
	shown := widgettest.Labels(page)
	for _, it := range rep.Items {
		if !slices.Contains(shown, it.Name) || !slices.Contains(shown, it.Detail) {
			t.Errorf("report item %q / %q not shown; labels: %q", it.Name, it.Detail, shown)
		}
	}
	for _, want := range []string{"Everything is in order.", j.Title} {
		if !slices.Contains(shown, want) {
			t.Errorf("%q not shown; labels: %q", want, shown)
		}
	}
	bar := findAfter[*widget.ProgressBar](t, page, "", nil) // the check's bar comes before the jobs list
	if !bar.Visible() || bar.Value != 1 {
		t.Errorf("check progress bar = %v (visible %v), want 1", bar.Value, bar.Visible())
	}
}

func TestCancelJob(t *testing.T) {
	env := newTestEnv(t, Options{})
	test.Tap(env.shell.NavButton("settings"))
	page := env.shell.Page("settings")

	// A job that runs until cancelled, started the way any service starts one.
	info, err := env.core.Jobs().Start(core.JobSpec{Kind: "test", Title: "Waiting for cancel",
		Run: func(ctx context.Context, report func(core.Progress)) (any, error) {
			report(core.Progress{Done: 1, Total: 4, Unit: "steps", Message: "waiting"})
			<-ctx.Done()
			return nil, ctx.Err()
		}})
	if err != nil {
		t.Fatal(err)
	}
	env.ui.Until(t, "the job's Cancel button", func() bool {
		return slices.Contains(widgettest.Labels(page), "1 of 4 steps: waiting")
	})
	test.Tap(widgettest.Button(t, page, settings.CancelLabel))
	env.ui.Until(t, "the job to show as cancelled", func() bool {
		return slices.ContainsFunc(widgettest.Labels(page), func(s string) bool { return strings.HasPrefix(s, "Cancelled at ") })
	})
	j, err := env.core.Job(info.ID)
	if err != nil {
		t.Fatal(err)
	}
	if j.State != core.JobCancelled {
		t.Errorf("job state after Cancel = %q, want cancelled", j.State)
	}
}

func TestTrayPauseSharing(t *testing.T) {
	env := newTestEnv(t, Options{})
	menu := env.shell.TrayMenu()
	var names []string
	var pause *fyne.MenuItem
	for _, it := range menu.Items {
		names = append(names, it.Label)
		if it.Label == TrayPause {
			pause = it
		}
	}
	if want := []string{TrayShow, TrayPause, "", TrayQuit}; !slices.Equal(names, want) {
		t.Fatalf("tray menu = %q, want %q", names, want)
	}
	page := env.shell.Page("settings")
	check := findAfter[*widget.Check](t, page, "Pause sharing", nil)
	ctx := context.Background()
	for _, want := range []bool{true, false} {
		t.Run(fmt.Sprint("paused=", want), func(t *testing.T) {
			pause.Action()
			if got := env.core.SharingPaused(ctx); got != want {
				t.Fatalf("SharingPaused() after the tray item = %v, want %v", got, want)
			}
			env.ui.Until(t, "the tray item's check mark", func() bool { return pause.Checked == want })
			if check.Checked != want {
				t.Errorf("settings page Pause sharing = %v, want %v", check.Checked, want)
			}
		})
	}
}

func TestWebURLInStatusBar(t *testing.T) {
	var listening atomic.Bool
	const full = "http://127.0.0.1:7800/?key=s3cret"
	env := newTestEnv(t, Options{WebURL: func() string {
		if listening.Load() {
			return full
		}
		return ""
	}})
	s := env.shell
	if got := s.WebText(); got != "Web UI: starting…" {
		t.Errorf("status before the server listens = %q", got)
	}
	open := widgettest.Button(t, s.Window().Content(), "Open in browser")
	if !open.Disabled() {
		t.Error("Open in browser enabled before the server listens")
	}
	listening.Store(true)
	env.ui.Until(t, "the web UI address", func() bool { return strings.Contains(s.WebText(), "http://127.0.0.1:7800/") })
	if strings.Contains(s.WebText(), "s3cret") {
		t.Errorf("status bar shows the login key: %q", s.WebText())
	}
	test.Tap(widgettest.Button(t, s.Window().Content(), "Copy link"))
	if got := env.app.Clipboard().Content(); got != full {
		t.Errorf("clipboard after Copy link = %q, want %q", got, full)
	}
	if open.Disabled() {
		t.Error("Open in browser still disabled once the server listens")
	}
}

func TestIconFile(t *testing.T) {
	p := filepath.Join("..", "..", "assets", "icon.png")
	want := IconImage()
	if *update {
		if err := os.WriteFile(p, IconPNG(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := png.Decode(f)
	if err != nil {
		t.Fatalf("decode %s: %v", p, err)
	}
	if got.Bounds() != want.Bounds() || want.Bounds().Dx() != IconSize {
		t.Fatalf("%s is %v, want %dx%d", p, got.Bounds(), IconSize, IconSize)
	}
	// Allow one step of rounding per channel, in case floating point differs between machines.
	bad := 0
	for y := 0; y < IconSize; y++ {
		for x := 0; x < IconSize; x++ {
			r1, g1, b1, a1 := got.At(x, y).RGBA()
			r2, g2, b2, a2 := want.At(x, y).RGBA()
			for _, d := range []int64{int64(r1) - int64(r2), int64(g1) - int64(g2), int64(b1) - int64(b2), int64(a1) - int64(a2)} {
				if d > 257 || d < -257 {
					bad++
				}
			}
		}
	}
	if bad > 0 {
		t.Errorf("%s differs from IconImage() in %d channel values; run go test ./app/gui -run TestIconFile -update", p, bad)
	}
}

// missingCore reports, once, that the window missed events (the ring buffer overflowed).
type missingCore struct {
	*core.Core
	missed   chan struct{}
	reported bool // only touched by the shell's event goroutine
}

func (m *missingCore) WaitEvents(ctx context.Context, after int64) ([]core.Event, bool, error) {
	if !m.reported {
		select {
		case <-m.missed:
			m.reported = true
			return nil, true, nil
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
	return m.Core.WaitEvents(ctx, after)
}

func TestMissedEventsReload(t *testing.T) {
	missed := make(chan struct{})
	env := newTestEnvWrapped(t, Options{}, func(c *core.Core) Core { return &missingCore{Core: c, missed: missed} })
	page := env.shell.Page("settings")
	// A change the window hears nothing about: written to SQLite directly.
	if err := env.store.SetSettings(context.Background(), map[string]string{core.SettingTheme: "dark", core.SettingSharePaused: "true"}); err != nil {
		t.Fatal(err)
	}
	close(missed)
	env.ui.Until(t, "the reload after missed events", func() bool { return env.shell.Theme() == "dark" })
	if got := findAfter[*widget.Select](t, page, "Theme", nil).Selected; got != "dark" {
		t.Errorf("theme select after the reload = %q, want dark", got)
	}
	if !findAfter[*widget.Check](t, page, "Pause sharing", nil).Checked {
		t.Error("Pause sharing not checked after the reload")
	}
	if !env.shell.TrayMenu().Items[1].Checked {
		t.Error("tray Pause sharing not checked after the reload")
	}
	// Events after the gap still arrive.
	if _, err := env.core.UpdateSettings(context.Background(), map[string]string{core.SettingTheme: "light"}); err != nil {
		t.Fatal(err)
	}
	env.ui.Until(t, "the event after the gap", func() bool { return env.shell.Theme() == "light" })
}
