// Package share is the Share section of the desktop window: a form that starts this
// computer's worker with the owner's limits (pool address, temperature, power, schedule,
// GPUs, pause for) and stops it, the worker's state with the reason of every pause, and the
// pool this data folder keeps (groups verified, jobs waiting, credits per worker, rejected
// results). Every action is one call of the core, made off the UI goroutine.
package share

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"

	"github.com/gata-contrib/gata/app/core"
	"github.com/gata-contrib/gata/app/gui/internal/note"
	"github.com/gata-contrib/gata/app/gui/internal/page"
)

// Core is what the page needs from the service layer; *core.Core satisfies it.
type Core interface {
	StartSharing(req core.WorkerRequest) (core.JobInfo, error)
	StopSharing() error
	ShareState() core.WorkerState
	PoolState(ctx context.Context) (core.PoolState, error)
}

// Labels of the page's buttons and choices (tests find them by these).
const (
	StartLabel = "Start sharing"
	StopLabel  = "Stop"
	NotPaused  = "not paused"
	Pause1h    = "1 hour"
	Pause4h    = "4 hours"
	PauseDay   = "until tomorrow"
	IdleText   = "Not sharing."
	NoPoolText = "No pool has run in this data folder. Start one with: gata pool --dataset … --model …"
)

var pauseChoices = map[string]string{NotPaused: "", Pause1h: "1h", Pause4h: "4h", PauseDay: "tomorrow"}

// Screen is the Share page. Its methods must be called on the Fyne UI goroutine; the work
// it starts runs on goroutines of its own that hand their results to do.
type Screen struct {
	ctx context.Context
	c   Core
	do  func(func())
	wg  sync.WaitGroup

	pool      *widget.Entry
	maxTemp   *widget.Entry
	maxPower  *widget.Entry
	schedule  *widget.Entry
	gpus      *widget.Entry
	pauseFor  *widget.Select
	allowBusy *widget.Check
	battery   *widget.Check
	active    *widget.Check // pause while the person uses the computer
	fullOK    *widget.Check // work under a fullscreen program too
	start     *widget.Button
	stop      *widget.Button
	formMsg   *widget.Label

	worker  *widget.Label // this computer's state
	poolSum *widget.Label
	credits *fyne.Container
	reject  *widget.Label

	content fyne.CanvasObject
}

// New builds the page. ctx bounds the core calls; do runs a function on the UI goroutine.
// Call Close once ctx has ended.
func New(ctx context.Context, sec core.Section, c Core, do func(func())) *Screen {
	s := &Screen{ctx: ctx, c: c, do: do}
	s.pool = widget.NewEntry()
	s.pool.SetPlaceHolder("nats://gw_…@pool.example.org:4222 (from gata pool invite)")
	s.maxTemp = widget.NewEntry()
	s.maxTemp.SetPlaceHolder("no limit")
	s.maxPower = widget.NewEntry()
	s.maxPower.SetPlaceHolder("no limit")
	s.schedule = widget.NewEntry()
	s.schedule.SetPlaceHolder("any time, or 22:00-07:00")
	s.gpus = widget.NewEntry()
	s.gpus.SetPlaceHolder("all, or 0,1")
	s.pauseFor = widget.NewSelect([]string{NotPaused, Pause1h, Pause4h, PauseDay}, nil)
	s.pauseFor.SetSelected(NotPaused)
	s.allowBusy = widget.NewCheck("Work even while other programs use the GPU", nil)
	s.battery = widget.NewCheck("Work on battery too", nil)
	s.active = widget.NewCheck("Pause while I use the computer (3 min after the last key or mouse move)", nil)
	s.fullOK = widget.NewCheck("Work while a fullscreen program (a game, a film) is in front", nil)
	s.start = widget.NewButton(StartLabel, s.startSharing)
	s.start.Importance = widget.HighImportance
	s.stop = widget.NewButton(StopLabel, s.stopSharing)
	s.formMsg = note.New()
	form := widget.NewForm(
		widget.NewFormItem("Pool address", s.pool),
		widget.NewFormItem("Max temperature (°C)", s.maxTemp),
		widget.NewFormItem("Max power (W)", s.maxPower),
		widget.NewFormItem("Schedule", s.schedule),
		widget.NewFormItem("GPUs", s.gpus),
		widget.NewFormItem("Start paused for", s.pauseFor),
	)
	intro := widget.NewLabel("Joins a pool with the address its owner gave you. Work runs only inside these limits, and every pause says why.")
	intro.Wrapping = fyne.TextWrapWord
	shareCard := widget.NewCard("Share this computer", "", container.NewVBox(intro, form, s.allowBusy, s.battery, s.active, s.fullOK,
		container.NewHBox(s.start, s.stop), s.formMsg))

	s.worker = widget.NewLabel(IdleText)
	s.worker.Wrapping = fyne.TextWrapWord
	workerCard := widget.NewCard("This computer", "", s.worker)

	s.poolSum = widget.NewLabel("")
	s.poolSum.Wrapping = fyne.TextWrapWord
	s.credits = container.NewGridWithColumns(5)
	s.reject = widget.NewLabel("")
	s.reject.Wrapping = fyne.TextWrapWord
	poolCard := widget.NewCard("Pool of this data folder", "", container.NewVBox(s.poolSum, s.credits, s.reject))

	s.content = page.Frame(sec, shareCard, workerCard, poolCard)
	s.Reload()
	return s
}

// Content is the page.
func (s *Screen) Content() fyne.CanvasObject { return s.content }

// Close waits for the page's goroutines.
func (s *Screen) Close() { s.wg.Wait() }

// ApplyJob refreshes the page when the worker's job changed.
func (s *Screen) ApplyJob(j core.JobInfo) {
	if j.Kind == "share.worker" {
		s.Reload()
	}
}

// request reads the form.
func (s *Screen) request() (core.WorkerRequest, error) {
	req := core.WorkerRequest{Pool: strings.TrimSpace(s.pool.Text), Schedule: strings.TrimSpace(s.schedule.Text),
		PauseFor: pauseChoices[s.pauseFor.Selected], AllowBusyGPU: s.allowBusy.Checked, RunOnBattery: s.battery.Checked,
		PauseWhileActive: s.active.Checked, AllowFullscreen: s.fullOK.Checked}
	num := func(e *widget.Entry, what string) (float64, error) {
		t := strings.TrimSpace(e.Text)
		if t == "" {
			return 0, nil
		}
		v, err := strconv.ParseFloat(t, 64)
		if err != nil || v < 0 {
			return 0, fmt.Errorf("%s: %q is not a number of 0 or more", what, t)
		}
		return v, nil
	}
	var err error
	if req.MaxTempC, err = num(s.maxTemp, "max temperature"); err != nil {
		return req, err
	}
	if req.MaxPowerW, err = num(s.maxPower, "max power"); err != nil {
		return req, err
	}
	if req.GPUs, err = core.ParseGPUs(s.gpus.Text); err != nil {
		return req, fmt.Errorf("GPUs: %w", err)
	}
	return req, nil
}

func (s *Screen) startSharing() {
	s.formMsg.Hide()
	req, err := s.request()
	if err != nil {
		note.Set(s.formMsg, err.Error(), widget.DangerImportance)
		return
	}
	s.start.Disable()
	s.wg.Go(func() {
		_, err := s.c.StartSharing(req)
		s.do(func() {
			s.start.Enable()
			if err != nil {
				note.Set(s.formMsg, err.Error(), widget.DangerImportance)
				return
			}
			note.Set(s.formMsg, "Sharing with "+core.RedactPool(req.Pool), widget.SuccessImportance)
			s.Reload()
		})
	})
}

func (s *Screen) stopSharing() {
	s.formMsg.Hide()
	s.wg.Go(func() {
		err := s.c.StopSharing()
		s.do(func() {
			if err != nil {
				note.Set(s.formMsg, err.Error(), widget.DangerImportance)
				return
			}
			note.Set(s.formMsg, "Stopped sharing", widget.SuccessImportance)
			s.Reload()
		})
	})
}

// Reload reads the worker's and the pool's state again.
func (s *Screen) Reload() {
	s.wg.Go(func() {
		ws := s.c.ShareState()
		ps, perr := s.c.PoolState(s.ctx)
		s.do(func() { s.show(ws, ps, perr) })
	})
}

// workerText describes this computer's worker.
func workerText(ws core.WorkerState) string {
	if !ws.Running {
		return IdleText
	}
	var b strings.Builder
	st := ws.Stats
	fmt.Fprintf(&b, "Worker %s\n", st.Address)
	switch {
	case !ws.Gate.Run:
		fmt.Fprintf(&b, "Paused: %s\n", ws.Gate.Reason)
	case ws.Gate.Reason != "":
		fmt.Fprintf(&b, "Working (%s)\n", ws.Gate.Reason)
	default:
		b.WriteString("Working\n")
	}
	if len(ws.Limits) > 0 {
		fmt.Fprintf(&b, "Limits: %s\n", strings.Join(ws.Limits, "; "))
	}
	if st.Connected {
		b.WriteString("Connected to the pool\n")
	} else {
		b.WriteString("Not connected; reconnecting\n")
	}
	fmt.Fprintf(&b, "%d jobs done, %d pairs scored, %d given back", st.Jobs, st.Items, st.Yielded)
	if st.Current != "" {
		fmt.Fprintf(&b, "; working on %s", st.Current)
	}
	if c := st.Credits; c != nil {
		fmt.Fprintf(&b, "\nEarned in the pool: %d pairs confirmed, %d pending, %d rejected", c.Confirmed, c.Pending, c.Rejected)
	}
	for _, g := range ws.Gate.GPUs {
		fmt.Fprintf(&b, "\nGPU %d %s: %.0f °C, %.0f W, %d%% busy, %d other program(s)", g.Index, g.Name, g.TempC, g.PowerW, g.Utilization, g.OtherProcesses)
	}
	if ws.Gate.TelemetryError != "" {
		fmt.Fprintf(&b, "\nNo GPU read (%s): the CPU is shared", ws.Gate.TelemetryError)
	}
	return b.String()
}

func (s *Screen) show(ws core.WorkerState, ps core.PoolState, perr error) {
	s.worker.SetText(workerText(ws))
	if ws.Running {
		s.start.Disable()
	} else {
		s.start.Enable()
	}
	s.credits.RemoveAll()
	s.reject.SetText("")
	if perr != nil {
		s.poolSum.SetText(NoPoolText)
		if !strings.Contains(perr.Error(), core.ErrNoPool.Error()) {
			s.poolSum.SetText(perr.Error())
		}
		return
	}
	n := ps.Counts
	s.poolSum.SetText(fmt.Sprintf("Run %d (%s): %d of %d groups verified, %d jobs waiting for a worker; results %d confirmed, %d pending, %d rejected.",
		ps.Run.ID, ps.Run.State, n.Verified, n.Groups, n.Unanswered, n.Confirmed, n.Pending, n.Rejected))
	for _, h := range []string{"Worker", "Confirmed", "Pending", "Rejected", "Trust"} {
		s.credits.Add(widget.NewLabelWithStyle(h, fyne.TextAlignLeading, fyne.TextStyle{Bold: true}))
	}
	for _, c := range ps.Credits {
		for _, v := range []string{c.Worker, strconv.FormatInt(c.Confirmed, 10), strconv.FormatInt(c.Pending, 10),
			strconv.FormatInt(c.Rejected, 10), strconv.FormatInt(c.ConsecutiveValid, 10)} {
			l := widget.NewLabel(v)
			l.Truncation = fyne.TextTruncateEllipsis
			s.credits.Add(l)
		}
	}
	if len(ps.Rejected) > 0 {
		var b strings.Builder
		b.WriteString("Rejected results:")
		for i, r := range ps.Rejected {
			if i == 10 {
				fmt.Fprintf(&b, "\n… and %d more", len(ps.Rejected)-10)
				break
			}
			fmt.Fprintf(&b, "\n%s from %s: %s", r.Job, r.Worker, r.Reason)
		}
		s.reject.SetText(b.String())
	}
}
