package gui

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/gata-contrib/gata/app/core"
	"github.com/gata-contrib/gata/app/gui/chat"
	"github.com/gata-contrib/gata/app/gui/settings"
	"github.com/gata-contrib/gata/app/gui/share"
	"github.com/gata-contrib/gata/app/gui/submit"
	"github.com/gata-contrib/gata/app/gui/validate"
)

// Core is what the window needs from the service layer; *core.Core satisfies it.
type Core interface {
	settings.Core
	validate.Core
	chat.Core
	submit.Core
	share.Core
	Sections() []core.Section
	WaitEvents(ctx context.Context, after int64) ([]core.Event, bool, error)
	LastEventID() int64
	SharingPaused(ctx context.Context) bool
	SetSharingPaused(ctx context.Context, paused bool) error
}

// Labels of the tray menu's items.
const (
	TrayShow  = "Show"
	TrayPause = "Pause sharing"
	TrayQuit  = "Quit"
)

// Shell is the main window: the sidebar, the section pages and the status bar. Its methods
// must be called on the Fyne UI goroutine.
type Shell struct {
	ctx  context.Context
	stop context.CancelFunc
	a    fyne.App
	w    fyne.Window
	c    Core
	opts Options
	log  *slog.Logger
	do   func(func()) // runs a function on the UI goroutine (fyne.Do)

	sections []core.Section
	pages    map[string]fyne.CanvasObject
	nav      map[string]*widget.Button
	current  string
	settings *settings.Screen
	validate *validate.Screen
	chat     *chat.Screen
	submit   *submit.Screen
	share    *share.Screen

	webURL   string
	webText  *widget.Label
	webOpen  *widget.Button
	webCopy  *widget.Button
	theme    string
	tray     *fyne.Menu
	trayStop *fyne.MenuItem

	wg      sync.WaitGroup
	stopped atomic.Bool
}

// NewShell builds the window in app a and starts following the core's events; call Close
// after the event loop has ended. The e2e and unit tests build it on Fyne's test app.
func NewShell(ctx context.Context, a fyne.App, c Core, opts Options) *Shell {
	return newShell(ctx, a, c, opts, fyne.Do)
}

func newShell(ctx context.Context, a fyne.App, c Core, opts Options, do func(func())) *Shell {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	ctx, stop := context.WithCancel(ctx)
	s := &Shell{
		ctx: ctx, stop: stop, a: a, c: c, opts: opts, log: opts.Logger, do: do,
		sections: c.Sections(),
		pages:    map[string]fyne.CanvasObject{},
		nav:      map[string]*widget.Button{},
	}
	// Events from here on are applied on top of the state the pages read now.
	after := c.LastEventID()

	s.w = a.NewWindow(Title)
	s.w.SetIcon(Icon())
	s.w.SetMaster()
	s.w.SetContent(s.build())
	s.w.Resize(fyne.NewSize(1000, 700))
	if len(s.sections) > 0 {
		s.Show(s.sections[0].ID)
	}

	if all, err := c.Settings(ctx); err == nil {
		for _, st := range all {
			if st.Key == core.SettingTheme {
				s.applyTheme(st.Value)
			}
		}
	}
	s.tray = s.trayMenu()
	if d, ok := a.(desktop.App); ok {
		d.SetSystemTrayIcon(Icon())
		d.SetSystemTrayMenu(s.tray)
		d.SetSystemTrayWindow(s.w)
	}

	s.wg.Add(1)
	go s.follow(after)
	if opts.WebURL != nil {
		s.wg.Add(1)
		go s.waitWebURL()
	}
	return s
}

// Window is the main window.
func (s *Shell) Window() fyne.Window { return s.w }

// Validate is the Validate page.
func (s *Shell) Validate() *validate.Screen { return s.validate }

// Chat is the Chat page.
func (s *Shell) Chat() *chat.Screen { return s.chat }

// Settings is the Settings page.
func (s *Shell) Settings() *settings.Screen { return s.settings }

// Current is the ID of the section shown.
func (s *Shell) Current() string { return s.current }

// NavButton is the sidebar button of a section.
func (s *Shell) NavButton(id string) *widget.Button { return s.nav[id] }

// Page is the page of a section.
func (s *Shell) Page(id string) fyne.CanvasObject { return s.pages[id] }

// Close stops following events and waits for the shell's goroutines.
func (s *Shell) Close() {
	s.stopped.Store(true)
	s.stop()
	s.wg.Wait()
	if s.validate != nil {
		s.validate.Close()
	}
	if s.chat != nil {
		s.chat.Close()
	}
	if s.submit != nil {
		s.submit.Close()
	}
	if s.share != nil {
		s.share.Close()
	}
}

func (s *Shell) build() fyne.CanvasObject {
	var stack []fyne.CanvasObject
	var buttons []fyne.CanvasObject
	for _, sec := range s.sections {
		var page fyne.CanvasObject
		switch sec.ID {
		case "chat":
			s.chat = chat.New(s.ctx, sec, s.c, s.w, s.ui)
			page = s.chat.Content()
		case "validate":
			s.validate = validate.New(s.ctx, sec, s.c, s.w, s.ui)
			page = s.validate.Content()
		case "share":
			s.share = share.New(s.ctx, sec, s.c, s.ui)
			page = s.share.Content()
		case "submit":
			s.submit = submit.New(s.ctx, sec, s.c, s.w, s.ui)
			page = s.submit.Content()
		case "settings":
			s.settings = settings.New(s.ctx, sec, s.c)
			page = s.settings.Content()
		default:
			page = widget.NewLabel(sec.Summary)
		}
		page.Hide()
		s.pages[sec.ID] = page
		stack = append(stack, page)

		id := sec.ID
		b := widget.NewButtonWithIcon(sec.Title, sectionIcon(id), func() { s.Show(id) })
		b.Alignment = widget.ButtonAlignLeading
		b.Importance = widget.LowImportance
		s.nav[id] = b
		buttons = append(buttons, b)
	}

	logo := canvas.NewImageFromResource(Icon())
	logo.FillMode = canvas.ImageFillContain
	logo.SetMinSize(fyne.NewSquareSize(36))
	name := widget.NewLabelWithStyle(Title, fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	head := container.NewHBox(logo, name)
	side := container.NewBorder(
		container.NewVBox(head, widget.NewSeparator()), nil, nil, nil,
		container.NewVBox(buttons...))

	s.webText = widget.NewLabel("Web UI: starting…")
	s.webOpen = widget.NewButtonWithIcon("Open in browser", theme.ComputerIcon(), s.openWeb)
	s.webCopy = widget.NewButtonWithIcon("Copy link", theme.ContentCopyIcon(), s.copyWeb)
	s.webOpen.Importance = widget.LowImportance
	s.webCopy.Importance = widget.LowImportance
	s.webOpen.Disable()
	s.webCopy.Disable()
	if s.opts.WebURL == nil {
		s.webText.SetText("Web UI: off")
		s.webOpen.Hide()
		s.webCopy.Hide()
	}
	version := widget.NewLabel("v" + s.c.Info().Version)
	version.Importance = widget.LowImportance
	status := container.NewBorder(widget.NewSeparator(), nil,
		container.NewHBox(widget.NewIcon(theme.InfoIcon()), s.webText, s.webOpen, s.webCopy), version)

	main := container.NewStack(stack...)
	split := container.NewHSplit(container.NewPadded(side), main)
	split.Offset = 0.2
	return container.NewBorder(nil, status, nil, nil, split)
}

func sectionIcon(id string) fyne.Resource {
	switch id {
	case "chat":
		return theme.MailComposeIcon()
	case "validate":
		return theme.VisibilityIcon()
	case "share":
		return theme.ComputerIcon()
	case "submit":
		return theme.UploadIcon()
	case "settings":
		return theme.SettingsIcon()
	}
	return theme.InfoIcon()
}

// Show switches to a section's page.
func (s *Shell) Show(id string) error {
	if _, ok := s.pages[id]; !ok {
		return fmt.Errorf("show section %q: no such section", id)
	}
	for sid, p := range s.pages {
		b := s.nav[sid]
		if sid == id {
			p.Show()
			b.Importance = widget.HighImportance
		} else {
			p.Hide()
			b.Importance = widget.LowImportance
		}
		b.Refresh()
	}
	s.current = id
	return nil
}

// ui runs f on the UI goroutine unless the shell has closed.
func (s *Shell) ui(f func()) {
	if s.stopped.Load() {
		return
	}
	s.do(func() {
		if !s.stopped.Load() {
			f()
		}
	})
}

// follow applies the core's events to the window until the shell closes.
func (s *Shell) follow(after int64) {
	defer s.wg.Done()
	for {
		evs, missed, err := s.c.WaitEvents(s.ctx, after)
		if err != nil {
			return
		}
		if n := len(evs); n > 0 {
			after = evs[n-1].ID
		} else if missed {
			after = s.c.LastEventID()
		}
		s.ui(func() {
			if missed {
				s.log.Debug("events were missed; reloading the window's state")
				s.reload()
			}
			for _, e := range evs {
				s.apply(e)
			}
		})
	}
}

func (s *Shell) reload() {
	s.settings.Reload()
	s.validate.Reload()
	s.chat.Reload()
	if s.submit != nil {
		s.submit.Reload()
	}
	if s.share != nil {
		s.share.Reload()
	}
	if all, err := s.c.Settings(s.ctx); err == nil {
		s.applySettings(all)
	}
}

func (s *Shell) apply(e core.Event) {
	switch e.Type {
	case core.EventJob:
		if j, ok := e.Data.(core.JobInfo); ok {
			s.settings.ApplyJob(j)
			s.validate.ApplyJob(j)
			if s.share != nil {
				s.share.ApplyJob(j)
			}
		}
	case core.EventRunPaused:
		if p, ok := e.Data.(core.RunPaused); ok {
			s.validate.ApplyRunPaused(p)
		}
	case core.EventVerdict:
		if v, ok := e.Data.(core.VerdictChange); ok {
			s.validate.ApplyVerdict(v)
		}
	case core.EventChat:
		if ev, ok := e.Data.(core.ChatEvent); ok {
			s.chat.ApplyChat(ev)
		}
	case core.EventSubmission:
		if s.submit != nil {
			s.submit.ApplySubmissions()
		}
	case core.EventUpload:
		if it, ok := e.Data.(core.UploadItem); ok && s.submit != nil {
			s.submit.ApplyUpload(it)
		}
	case core.EventSettings:
		if list, ok := e.Data.([]core.Setting); ok {
			s.settings.ApplySettings(list)
			s.validate.ApplySettings(list)
			if s.submit != nil {
				s.submit.ApplySettings(list)
			}
			s.applySettings(list)
		}
	}
}

// applySettings applies what the window itself shows: the theme and the tray's pause item.
func (s *Shell) applySettings(list []core.Setting) {
	for _, st := range list {
		switch st.Key {
		case core.SettingTheme:
			s.applyTheme(st.Value)
		case core.SettingSharePaused:
			if s.trayStop != nil {
				s.trayStop.Checked = st.Value == "true"
				s.tray.Refresh()
			}
		}
	}
}

func (s *Shell) applyTheme(name string) {
	if name == s.theme {
		return
	}
	s.theme = name
	s.a.Settings().SetTheme(themeFor(name))
}

// Theme is the theme setting the window shows ("system", "light" or "dark").
func (s *Shell) Theme() string { return s.theme }

func (s *Shell) trayMenu() *fyne.Menu {
	show := fyne.NewMenuItem(TrayShow, func() {
		s.w.Show()
		s.w.RequestFocus()
	})
	s.trayStop = fyne.NewMenuItem(TrayPause, func() {
		if err := s.c.SetSharingPaused(s.ctx, !s.trayStop.Checked); err != nil {
			s.log.Error("pause sharing", "err", err)
		}
		// The settings event that follows updates the check mark.
	})
	s.trayStop.Checked = s.c.SharingPaused(s.ctx)
	quit := fyne.NewMenuItem(TrayQuit, s.a.Quit)
	quit.IsQuit = true
	return fyne.NewMenu(Title, show, s.trayStop, fyne.NewMenuItemSeparator(), quit)
}

// TrayMenu is the system-tray menu (built, and kept up to date, also where the app has no tray).
func (s *Shell) TrayMenu() *fyne.Menu { return s.tray }

// waitWebURL polls for the web UI's address until the server listens.
func (s *Shell) waitWebURL() {
	defer s.wg.Done()
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		if u := s.opts.WebURL(); u != "" {
			s.ui(func() { s.setWebURL(u) })
			return
		}
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// setWebURL shows the web UI's address without its login key; the buttons use all of it.
func (s *Shell) setWebURL(raw string) {
	s.webURL = raw
	shown := raw
	if u, err := url.Parse(raw); err == nil {
		shown = (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
	}
	s.webText.SetText("Web UI: " + shown)
	s.webOpen.Enable()
	s.webCopy.Enable()
}

// WebText is what the status bar says about the web UI.
func (s *Shell) WebText() string { return s.webText.Text }

func (s *Shell) openWeb() {
	u, err := url.Parse(s.webURL)
	if err != nil || s.webURL == "" {
		return
	}
	if err := s.a.OpenURL(u); err != nil {
		s.log.Warn("open the web UI", "err", err)
	}
}

func (s *Shell) copyWeb() {
	if s.webURL != "" {
		s.a.Clipboard().SetContent(s.webURL)
	}
}
