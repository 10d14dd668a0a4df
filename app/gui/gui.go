// Package gui is the desktop window of the app, built with Fyne: a sidebar with the five
// sections, one page per section (the subpackages), a status bar with the local web UI's
// address, and a system-tray menu. It holds no logic: every action is one call of app/core,
// and what changes in the app reaches the window as core events.
package gui

import (
	"context"
	"log/slog"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/app"

	"github.com/gata-contrib/gata/app/core"
)

// Identity of the app, as in FyneApp.toml.
const (
	AppID = "org.gata.contributor"
	Title = "Gata Contributor"
)

// Options are what the composition root hands the window.
type Options struct {
	Logger *slog.Logger
	// WebURL returns the local web UI's login URL, or "" until the web server listens.
	WebURL func() string
}

// Run shows the window and runs the Fyne event loop on the calling goroutine (which must be
// the main goroutine). It returns when the user quits (window closed or tray Quit), when the
// process gets SIGINT or SIGTERM, or when ctx ends (then it closes the window itself).
func Run(ctx context.Context, c *core.Core, opts Options) error {
	a := app.NewWithID(AppID)
	a.SetIcon(Icon())
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s := NewShell(ctx, a, c, opts)
	stop := context.AfterFunc(ctx, func() {
		s.log.Info("closing the window", "reason", context.Cause(ctx))
		fyne.Do(func() {
			s.w.Close()
			a.Quit()
		})
	})
	s.w.ShowAndRun()
	stop()
	cancel()
	s.Close()
	return nil
}
