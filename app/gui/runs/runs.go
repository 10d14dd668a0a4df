// Package runs is the "Batch runs" card of the window's Validate section: a form that
// starts a batch scoring run (datasets, output folder, what to keep, the basic filter) and
// the list of runs with their state, counts and live progress, with Pause / Go on, Cancel,
// Continue, Retry failed and Review. Every action is one call of the core; the card only
// shows what the core answers and what its events say.
package runs

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/gata-contrib/gata/app/core"
	"github.com/gata-contrib/gata/app/gui/internal/note"
)

// Core is what the card needs from the service layer; *core.Core satisfies it.
type Core interface {
	StartRun(ctx context.Context, req core.RunRequest) (core.JobInfo, error)
	Runs(ctx context.Context) ([]core.RunInfo, error)
	RunSummary(ctx context.Context, id int64) (core.RunSummary, error)
	ListJobs() []core.JobInfo
	CancelJob(id string) error
	PauseRun(id int64, paused bool) error
	RunIsPaused(id int64) bool
}

// JobKind is the kind of the core's batch run jobs.
const JobKind = "dva.run"

// Run states as core.RunInfo.State gives them (the core does not name them).
const (
	stateRunning   = "running"
	stateDone      = "done"
	stateFailed    = "failed"
	stateCancelled = "cancelled"
)

// Labels of the card's buttons and choices (tests find them by these).
const (
	FolderLabel   = "Folder…"
	FileLabel     = "File…"
	StartLabel    = "Start run"
	PauseLabel    = "Pause"
	GoOnLabel     = "Go on"
	CancelLabel   = "Cancel"
	ContinueLabel = "Continue"
	RetryLabel    = "Retry failed"
	ReviewLabel   = "Review"

	KeepAll = "every scored pair"
	KeepTop = "the top %"
	KeepMin = "a minimum score"
)

// Screen is the card. Its methods must be called on the Fyne UI goroutine; the core calls
// it makes run on goroutines of their own that hand their results to do.
type Screen struct {
	ctx      context.Context
	c        Core
	w        fyne.Window
	do       func(func())
	onReview func(core.RunInfo)
	wg       sync.WaitGroup
	// tune, when set, adjusts every request the card sends (tests: a batch size of one).
	tune func(*core.RunRequest)

	source    *widget.Entry
	srcFolder *widget.Button
	srcFile   *widget.Button
	out       *widget.Entry
	outFolder *widget.Button
	keepMode  *widget.Select
	keepValue *widget.Entry
	basic     *widget.Check
	startBtn  *widget.Button
	msg       *widget.Label
	list      *fyne.Container
	empty     *widget.Label
	card      *widget.Card

	runs   []core.RunSummary
	rows   map[int64]*row
	jobs   map[int64]core.JobInfo // the last job of each run seen
	paused map[int64]bool
	loads  int // counts list reloads, so a slow one does not overwrite a newer one
}

// row is one run in the list.
type row struct {
	box      *fyne.Container
	title    *widget.Label
	state    *widget.Label
	counts   *widget.Label
	bar      *widget.ProgressBar
	progress *widget.Label
	msg      *widget.Label
	pause    *widget.Button
	cancel   *widget.Button
	cont     *widget.Button
	retry    *widget.Button
	review   *widget.Button
}

// New builds the card and starts loading the list of runs. onReview opens the review of a
// run. Call Close once ctx has ended.
func New(ctx context.Context, c Core, w fyne.Window, do func(func()), onReview func(core.RunInfo)) *Screen {
	s := &Screen{ctx: ctx, c: c, w: w, do: do, onReview: onReview,
		rows: map[int64]*row{}, jobs: map[int64]core.JobInfo{}, paused: map[int64]bool{}}

	s.source = widget.NewEntry()
	s.source.SetPlaceHolder("A folder, a CSV/JSONL/Parquet list or shards/{00000..00009}.tar")
	s.srcFolder = widget.NewButtonWithIcon(FolderLabel, theme.FolderOpenIcon(), func() { s.chooseFolder(s.source) })
	s.srcFile = widget.NewButtonWithIcon(FileLabel, theme.FileIcon(), s.chooseFile)
	s.out = widget.NewEntry()
	s.out.SetPlaceHolder("Folder for scores.parquet, the kept shards and summary.json")
	s.outFolder = widget.NewButtonWithIcon(FolderLabel, theme.FolderOpenIcon(), func() { s.chooseFolder(s.out) })
	s.keepValue = widget.NewEntry()
	s.keepMode = widget.NewSelect([]string{KeepAll, KeepTop, KeepMin}, func(m string) {
		switch m {
		case KeepTop:
			s.keepValue.SetPlaceHolder("30 (percent)")
			s.keepValue.Show()
		case KeepMin:
			s.keepValue.SetPlaceHolder("0.25")
			s.keepValue.Show()
		default:
			s.keepValue.Hide()
		}
	})
	s.keepMode.SetSelected(KeepAll)
	s.basic = widget.NewCheck("DataComp basic filter", nil)
	s.startBtn = widget.NewButtonWithIcon(StartLabel, theme.MediaPlayIcon(), s.start)
	s.startBtn.Importance = widget.HighImportance
	s.msg = widget.NewLabel("")
	s.msg.Truncation = fyne.TextTruncateEllipsis
	s.msg.Hide()

	label := func(t string) *widget.Label {
		return widget.NewLabelWithStyle(t, fyne.TextAlignTrailing, fyne.TextStyle{Bold: true})
	}
	form := container.New(layout.NewFormLayout(),
		label("Dataset"), container.NewBorder(nil, nil, nil, container.NewHBox(s.srcFolder, s.srcFile), s.source),
		label("Output"), container.NewBorder(nil, nil, nil, s.outFolder, s.out),
		label("Keep"), container.NewBorder(nil, nil, nil, s.basic, container.NewGridWithColumns(2, s.keepMode, s.keepValue)),
	)
	s.empty = widget.NewLabel("No runs yet.")
	s.empty.Importance = widget.LowImportance
	s.list = container.NewVBox(s.empty)
	s.card = widget.NewCard("Batch runs", "", container.NewVBox(
		form,
		container.NewBorder(nil, nil, s.startBtn, nil, s.msg),
		widget.NewSeparator(),
		s.list,
	))
	s.Reload()
	return s
}

// Content is the card.
func (s *Screen) Content() fyne.CanvasObject { return s.card }

// List is the list of runs (without the form).
func (s *Screen) List() fyne.CanvasObject { return s.list }

// Close waits for the card's goroutines; cancel ctx first.
func (s *Screen) Close() { s.wg.Wait() }

// chooseFolder fills an entry with a folder picked in the folder dialog.
func (s *Screen) chooseFolder(e *widget.Entry) {
	d := dialog.NewFolderOpen(func(u fyne.ListableURI, err error) {
		if err != nil {
			s.setMsg(fmt.Errorf("choose a folder: %w", err).Error(), widget.DangerImportance)
			return
		}
		if u != nil {
			e.SetText(u.Path())
		}
	}, s.w)
	d.Resize(fyne.NewSize(800, 560))
	d.Show()
}

// chooseFile fills the dataset entry with a file picked in the file dialog.
func (s *Screen) chooseFile() {
	d := dialog.NewFileOpen(func(rc fyne.URIReadCloser, err error) {
		if err != nil {
			s.setMsg(fmt.Errorf("choose a file: %w", err).Error(), widget.DangerImportance)
			return
		}
		if rc != nil {
			s.source.SetText(rc.URI().Path())
			rc.Close()
		}
	}, s.w)
	d.Resize(fyne.NewSize(800, 560))
	d.Show()
}

// request is the form as a run request.
func (s *Screen) request() (core.RunRequest, error) {
	req := core.RunRequest{Out: strings.TrimSpace(s.out.Text), BasicFilter: s.basic.Checked}
	if src := strings.TrimSpace(s.source.Text); src != "" {
		req.Sources = []string{src}
	}
	v := strings.TrimSpace(s.keepValue.Text)
	switch s.keepMode.Selected {
	case KeepTop:
		f, err := strconv.ParseFloat(strings.TrimSuffix(v, "%"), 64)
		if err != nil {
			return req, fmt.Errorf("keep the top %%: %q is not a number", v)
		}
		req.KeepTop = f / 100
	case KeepMin:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return req, fmt.Errorf("minimum score: %q is not a number", v)
		}
		req.MinScore = &f
	}
	return req, nil
}

// start sends the form to the core.
func (s *Screen) start() {
	req, err := s.request()
	if err != nil {
		s.setMsg(err.Error(), widget.DangerImportance)
		return
	}
	s.startBtn.Disable()
	s.setMsg("Starting…", widget.MediumImportance)
	s.send(req, func(j core.JobInfo, err error) {
		s.startBtn.Enable()
		if err != nil {
			s.setMsg(fmt.Errorf("start the run: %w", err).Error(), widget.DangerImportance)
			return
		}
		s.setMsg("Started run "+j.Subject+".", widget.SuccessImportance)
	})
}

// send starts or resumes a run off the UI goroutine and hands the answer to then.
func (s *Screen) send(req core.RunRequest, then func(core.JobInfo, error)) {
	if s.tune != nil {
		s.tune(&req)
	}
	s.wg.Go(func() {
		j, err := s.c.StartRun(s.ctx, req)
		s.do(func() {
			if err == nil {
				s.ApplyJob(j)
			}
			then(j, err)
		})
	})
}

// Reload reads the runs, their counts and their jobs from the core again.
func (s *Screen) Reload() {
	s.loads++
	seq := s.loads
	s.wg.Go(func() {
		list, err := s.c.Runs(s.ctx)
		var sums []core.RunSummary
		paused := map[int64]bool{}
		for _, r := range list {
			sum, serr := s.c.RunSummary(s.ctx, r.ID)
			if serr != nil {
				sum = core.RunSummary{RunInfo: r}
			}
			sums = append(sums, sum)
			if r.State == stateRunning {
				paused[r.ID] = s.c.RunIsPaused(r.ID)
			}
		}
		jobs := s.c.ListJobs()
		s.do(func() {
			if seq != s.loads {
				return
			}
			if err != nil {
				s.setMsg(fmt.Errorf("list the runs: %w", err).Error(), widget.DangerImportance)
				return
			}
			// The lists were read on another goroutine: events applied since then are newer
			// than them for a job or a pause the card already follows, so those stay.
			for _, j := range jobs {
				if id, ok := runID(j); ok {
					if old, seen := s.jobs[id]; !seen || (old.ID != j.ID && !old.Started.After(j.Started)) {
						s.jobs[id] = j
					}
				}
			}
			for id, p := range paused {
				if _, seen := s.paused[id]; !seen {
					s.paused[id] = p
				}
			}
			s.runs = sums
			s.showList()
		})
	})
}

// reloadRun reads one run's counts again.
func (s *Screen) reloadRun(id int64) {
	s.wg.Go(func() {
		sum, err := s.c.RunSummary(s.ctx, id)
		s.do(func() {
			if err != nil {
				return
			}
			for i, r := range s.runs {
				if r.ID == id {
					s.runs[i] = sum
					s.showRow(s.rows[id], sum)
					return
				}
			}
			s.Reload() // a run this card has not listed yet
		})
	})
}

func runID(j core.JobInfo) (int64, bool) {
	if j.Kind != JobKind {
		return 0, false
	}
	id, err := strconv.ParseInt(j.Subject, 10, 64)
	return id, err == nil
}

// ApplyJob shows a run job's progress in its row, and the run's counts when it ends.
func (s *Screen) ApplyJob(j core.JobInfo) {
	id, ok := runID(j)
	if !ok {
		return
	}
	if old, seen := s.jobs[id]; seen && old.ID != j.ID && old.Started.After(j.Started) {
		return
	}
	s.jobs[id] = j
	if j.State.Ended() {
		delete(s.paused, id)
		s.reloadRun(id)
	}
	r := s.rows[id]
	if r == nil {
		s.reloadRun(id)
		return
	}
	for _, info := range s.runs {
		if info.ID == id {
			s.showRow(r, info)
		}
	}
}

// ApplyRunPaused shows a run paused or going on.
func (s *Screen) ApplyRunPaused(p core.RunPaused) {
	s.paused[p.Run] = p.Paused
	for _, info := range s.runs {
		if info.ID == p.Run {
			s.showRow(s.rows[p.Run], info)
		}
	}
}

// Row returns the widgets of a run's row (tests read and tap them); nil if not listed.
func (s *Screen) Row(id int64) *Row {
	r := s.rows[id]
	if r == nil {
		return nil
	}
	return &Row{Box: r.box, Title: r.title, State: r.state, Counts: r.counts, Bar: r.bar, Progress: r.progress,
		Message: r.msg, Pause: r.pause, Cancel: r.cancel, Continue: r.cont, Retry: r.retry, Review: r.review}
}

// Row is a run's row as tests see it.
type Row struct {
	Box                                    *fyne.Container
	Title, State, Counts, Progress         *widget.Label
	Message                                *widget.Label
	Bar                                    *widget.ProgressBar
	Pause, Cancel, Continue, Retry, Review *widget.Button
}

// Form returns the form's widgets (tests type into and tap them).
func (s *Screen) Form() (source, out *widget.Entry, keep *widget.Select, value *widget.Entry, basic *widget.Check, start *widget.Button, msg *widget.Label) {
	return s.source, s.out, s.keepMode, s.keepValue, s.basic, s.startBtn, s.msg
}

func (s *Screen) showList() {
	objs := make([]fyne.CanvasObject, 0, len(s.runs))
	seen := map[int64]bool{}
	for i, info := range s.runs {
		r := s.rows[info.ID]
		if r == nil {
			r = s.newRow(info.ID)
			s.rows[info.ID] = r
		}
		seen[info.ID] = true
		s.showRow(r, info)
		if i > 0 {
			objs = append(objs, widget.NewSeparator())
		}
		objs = append(objs, r.box)
	}
	for id := range s.rows {
		if !seen[id] {
			delete(s.rows, id)
		}
	}
	if len(objs) == 0 {
		objs = append(objs, s.empty)
	}
	s.list.Objects = objs
	s.list.Refresh()
}

func (s *Screen) newRow(id int64) *row {
	r := &row{}
	r.title = widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	r.title.Truncation = fyne.TextTruncateEllipsis
	r.state = widget.NewLabel("")
	r.counts = widget.NewLabel("")
	r.counts.Wrapping = fyne.TextWrapWord
	r.bar = widget.NewProgressBar()
	r.progress = widget.NewLabel("")
	r.progress.Truncation = fyne.TextTruncateEllipsis
	r.msg = widget.NewLabel("")
	r.msg.Truncation = fyne.TextTruncateEllipsis
	r.pause = widget.NewButtonWithIcon(PauseLabel, theme.MediaPauseIcon(), func() { s.togglePause(id) })
	r.cancel = widget.NewButtonWithIcon(CancelLabel, theme.CancelIcon(), func() { s.cancel(id) })
	r.cont = widget.NewButtonWithIcon(ContinueLabel, theme.MediaPlayIcon(), func() { s.resume(id, false) })
	r.retry = widget.NewButtonWithIcon(RetryLabel, theme.ViewRefreshIcon(), func() { s.resume(id, true) })
	r.review = widget.NewButtonWithIcon(ReviewLabel, theme.VisibilityIcon(), func() { s.review(id) })
	r.review.Importance = widget.HighImportance
	r.box = container.NewVBox(
		container.NewBorder(nil, nil, nil, r.state, r.title),
		r.counts, r.bar, r.progress, r.msg,
		container.NewHBox(r.pause, r.cancel, r.cont, r.retry, r.review),
	)
	return r
}

// live is the run's job when it is running in this process.
func (s *Screen) live(id int64) (core.JobInfo, bool) {
	j, ok := s.jobs[id]
	return j, ok && !j.State.Ended()
}

func (s *Screen) showRow(r *row, info core.RunSummary) {
	if r == nil {
		return
	}
	j, running := s.live(info.ID)
	title := fmt.Sprintf("Run %d · %s", info.ID, sourcesText(info.Sources))
	if info.Out != "" {
		title += " to " + filepath.Base(info.Out)
	}
	r.title.SetText(title)

	state := info.State
	switch {
	case running && s.paused[info.ID]:
		state = "paused"
	case running:
		state = "running"
	case state == stateRunning || state == "paused":
		state = "interrupted" // recorded as running, but no job of this app runs it
	}
	r.state.Importance = stateImportance(state)
	r.state.SetText(state)
	r.counts.SetText(countsText(info.RunInfo))

	if running {
		if f := j.Fraction(); f >= 0 {
			r.bar.SetValue(f)
		}
		r.bar.Show()
		r.progress.SetText(progressText(j))
		r.progress.Show()
	} else {
		r.bar.Hide()
		r.progress.Hide()
	}
	switch {
	case running:
		r.msg.Hide()
	case j.State == core.JobFailed && j.Error != "":
		note.Set(r.msg, oneLine(j.Error), widget.DangerImportance)
	case info.Message != "" && state != stateDone:
		note.Set(r.msg, oneLine(info.Message), widget.MediumImportance)
	default:
		r.msg.Hide()
	}

	r.pause.Hidden = !running
	if s.paused[info.ID] {
		r.pause.SetText(GoOnLabel)
		r.pause.SetIcon(theme.MediaPlayIcon())
	} else {
		r.pause.SetText(PauseLabel)
		r.pause.SetIcon(theme.MediaPauseIcon())
	}
	r.cancel.Hidden = !running
	r.cont.Hidden = running || state == stateDone
	r.retry.Hidden = running || failedCount(info.RunInfo) == 0
	r.review.Hidden = running
	r.box.Refresh()
}

func (s *Screen) togglePause(id int64) {
	if err := s.c.PauseRun(id, !s.paused[id]); err != nil {
		s.rowError(id, fmt.Errorf("pause: %w", err))
	}
	// The core's event shows it paused or going on.
}

func (s *Screen) cancel(id int64) {
	j, ok := s.live(id)
	if !ok {
		return
	}
	if err := s.c.CancelJob(j.ID); err != nil {
		s.rowError(id, fmt.Errorf("cancel: %w", err))
	}
	// The job's last event says it was cancelled.
}

func (s *Screen) resume(id int64, retry bool) {
	r := s.rows[id]
	if r != nil {
		r.cont.Disable()
		r.retry.Disable()
	}
	s.send(core.RunRequest{Resume: id, RetryFailed: retry}, func(_ core.JobInfo, err error) {
		if r != nil {
			r.cont.Enable()
			r.retry.Enable()
		}
		if err != nil {
			s.rowError(id, fmt.Errorf("continue run %d: %w", id, err))
		}
	})
}

func (s *Screen) review(id int64) {
	for _, info := range s.runs {
		if info.ID == id && s.onReview != nil {
			s.onReview(info.RunInfo)
		}
	}
}

func (s *Screen) rowError(id int64, err error) {
	if r := s.rows[id]; r != nil {
		note.Set(r.msg, oneLine(err.Error()), widget.DangerImportance)
		return
	}
	s.setMsg(oneLine(err.Error()), widget.DangerImportance)
}

func (s *Screen) setMsg(text string, imp widget.Importance) { note.Set(s.msg, oneLine(text), imp) }

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func stateImportance(state string) widget.Importance {
	switch state {
	case stateDone:
		return widget.SuccessImportance
	case stateFailed:
		return widget.DangerImportance
	case "running":
		return widget.HighImportance
	case "paused", "interrupted", stateCancelled:
		return widget.WarningImportance
	}
	return widget.MediumImportance
}

func sourcesText(srcs []string) string {
	if len(srcs) == 0 {
		return "no dataset"
	}
	t := filepath.Base(srcs[0])
	if len(srcs) > 1 {
		t += fmt.Sprintf(" and %d more", len(srcs)-1)
	}
	return t
}

func failedCount(info core.RunInfo) int64 {
	var n int64
	for _, c := range info.Failed {
		n += c
	}
	return n
}

// countsText says how many pairs a run scored and why the others failed.
func countsText(info core.RunInfo) string {
	t := fmt.Sprintf("%d scored · %d failed", info.Scored, failedCount(info))
	if len(info.Failed) > 0 {
		reasons := make([]string, 0, len(info.Failed))
		for r := range info.Failed {
			reasons = append(reasons, r)
		}
		slices.Sort(reasons)
		for i, r := range reasons {
			reasons[i] = fmt.Sprintf("%s %d", r, info.Failed[r])
		}
		t += " (" + strings.Join(reasons, ", ") + ")"
	}
	return t
}

// progressText says how far a run's job is: items, rate, time left, failures and backend.
func progressText(j core.JobInfo) string {
	p := j.Progress
	var parts []string
	if p.Total > 0 {
		parts = append(parts, fmt.Sprintf("%d of %d items", p.Done, p.Total))
	} else {
		parts = append(parts, fmt.Sprintf("%d items", p.Done))
	}
	if j.Rate > 0 {
		parts = append(parts, fmt.Sprintf("%.1f items/s", j.Rate))
	}
	if j.ETA > 0 {
		parts = append(parts, "ETA "+(time.Duration(j.ETA*float64(time.Second))).Round(time.Second).String())
	}
	if p.Message != "" {
		parts = append(parts, p.Message)
	}
	return strings.Join(parts, " · ")
}
