// Package settings is the Settings page of the desktop window: a form generated from the
// app's settings, the data-folder check with its progress and report, and the list of jobs
// with a Cancel button each. Every action is one call of the core; the page only shows.
package settings

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/gata-contrib/gata/app/core"
	"github.com/gata-contrib/gata/app/gui/internal/page"
)

// Core is what the page needs from the service layer; *core.Core satisfies it.
type Core interface {
	Info() core.Info
	Settings(ctx context.Context) ([]core.Setting, error)
	UpdateSettings(ctx context.Context, kv map[string]string) ([]core.Setting, error)
	StartDataCheck() (core.JobInfo, error)
	ListJobs() []core.JobInfo
	CancelJob(id string) error
}

// Labels of the page's buttons (tests and the window's shortcuts find them by these).
const (
	SaveLabel  = "Save"
	CheckLabel = "Check data folder"
	// CancelLabel is the text of each running job's Cancel button.
	CancelLabel = "Cancel"
)

// Screen is the Settings page. Its methods must be called on the Fyne UI goroutine.
type Screen struct {
	ctx context.Context
	c   Core

	form    *fyne.Container
	fields  []*field
	saveBtn *widget.Button
	status  *widget.Label

	checkBtn *widget.Button
	checkID  string
	checkBar *widget.ProgressBar
	checkMsg *widget.Label
	report   *fyne.Container

	jobs   map[string]core.JobInfo
	jobBox *fyne.Container

	content fyne.CanvasObject
}

// field is one setting's row: its control, help, notes and the error from the last save.
type field struct {
	s       core.Setting // the stored value
	started string       // the value when the page was built (for the restart note)
	entry   *widget.Entry
	sel     *widget.Select
	check   *widget.Check
	text    *widget.Label // read-only value
	restart *widget.Label
	errLbl  *widget.Label
}

// New builds the page (titled after its section) from the core's current settings and jobs.
// ctx bounds the core calls the page makes.
func New(ctx context.Context, sec core.Section, c Core) *Screen {
	s := &Screen{ctx: ctx, c: c, jobs: map[string]core.JobInfo{}}

	s.form = container.New(layout.NewFormLayout())
	s.saveBtn = widget.NewButtonWithIcon(SaveLabel, theme.DocumentSaveIcon(), s.save)
	s.saveBtn.Importance = widget.HighImportance
	s.status = widget.NewLabel("")
	s.status.Wrapping = fyne.TextWrapWord
	prefs := widget.NewCard("Preferences", "", container.NewVBox(
		s.form,
		container.NewBorder(nil, nil, nil, s.saveBtn, s.status),
	))

	s.checkBtn = widget.NewButtonWithIcon(CheckLabel, theme.SearchIcon(), s.startCheck)
	s.checkBar = widget.NewProgressBar()
	s.checkBar.Hide()
	s.checkMsg = widget.NewLabel("")
	s.checkMsg.Wrapping = fyne.TextWrapWord
	s.report = container.New(layout.NewFormLayout()) // icon and name | detail
	checkHelp := widget.NewLabel("Checks that the data folder and its subfolders are writable, the free disk space, " +
		"the database's integrity and schema version, and what the models folder holds.")
	checkHelp.Wrapping = fyne.TextWrapWord
	check := widget.NewCard("Data folder", "", container.NewVBox(
		checkHelp,
		container.NewHBox(s.checkBtn),
		s.checkBar, s.checkMsg, s.report,
	))

	s.jobBox = container.NewVBox()
	jobs := widget.NewCard("Jobs", "", s.jobBox)

	info := c.Info()
	about := widget.NewLabel(fmt.Sprintf("Gata Contributor %s · %s/%s · %s", info.Version, info.OS, info.Arch, info.GoVersion))
	about.Importance = widget.LowImportance

	s.content = page.Frame(sec, prefs, check, jobs, about)

	s.Reload()
	for _, f := range s.fields {
		f.started = f.s.Value
	}
	return s
}

// Content is the page's root object.
func (s *Screen) Content() fyne.CanvasObject { return s.content }

// Reload reads the settings and jobs from the core again (after events were missed).
func (s *Screen) Reload() {
	all, err := s.c.Settings(s.ctx)
	if err != nil {
		s.setStatus("Could not load the settings: "+err.Error(), widget.DangerImportance)
	} else if len(s.fields) == 0 {
		s.build(all)
	} else {
		s.ApplySettings(all)
	}
	clear(s.jobs)
	for _, j := range s.c.ListJobs() {
		s.jobs[j.ID] = j
	}
	s.renderJobs()
}

// build makes one row of the form per setting, with the control its kind asks for.
func (s *Screen) build(all []core.Setting) {
	for _, st := range all {
		f := &field{s: st}
		help := widget.NewLabel(st.Help)
		help.Wrapping = fyne.TextWrapWord
		help.SizeName = theme.SizeNameCaptionText
		f.errLbl = widget.NewLabel("")
		f.errLbl.Wrapping = fyne.TextWrapWord
		f.errLbl.Importance = widget.DangerImportance
		f.errLbl.Hide()
		f.restart = widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Italic: true})
		f.restart.Importance = widget.WarningImportance
		f.restart.Hide()

		var ctl fyne.CanvasObject
		switch {
		case st.ReadOnly:
			f.text = widget.NewLabel(st.Value)
			f.text.Selectable = true
			f.text.Wrapping = fyne.TextWrapBreak
			ctl = f.text
		case st.Kind == core.KindChoice:
			f.sel = widget.NewSelect(st.Choices, nil)
			f.sel.SetSelected(st.Value)
			ctl = f.sel
		case st.Kind == core.KindBool:
			f.check = widget.NewCheck("", nil)
			f.check.SetChecked(st.Value == "true")
			ctl = f.check
		default:
			f.entry = widget.NewEntry()
			f.entry.SetText(st.Value)
			if st.Default != "" {
				f.entry.SetPlaceHolder(st.Default)
			}
			ctl = f.entry
		}
		if st.Restart {
			help.SetText(strings.TrimSpace(st.Help + " Takes effect after a restart."))
		}
		label := widget.NewLabelWithStyle(st.Label, fyne.TextAlignTrailing, fyne.TextStyle{Bold: true})
		s.form.Add(label)
		s.form.Add(container.NewVBox(ctl, f.errLbl, f.restart, help))
		s.fields = append(s.fields, f)
	}
}

// set shows a value in the field's control.
func (f *field) set(v string) {
	f.s.Value = v
	switch {
	case f.text != nil:
		f.text.SetText(v)
	case f.sel != nil:
		f.sel.SetSelected(v)
	case f.check != nil:
		f.check.SetChecked(v == "true")
	case f.entry != nil:
		f.entry.SetText(v)
	}
	if f.s.Restart && f.started != "" && v != f.started {
		f.restart.SetText("Restart the app to use the new value.")
		f.restart.Show()
	} else {
		f.restart.Hide()
	}
}

// value is what the control holds now.
func (f *field) value() string {
	switch {
	case f.sel != nil:
		return f.sel.Selected
	case f.check != nil:
		return strconv.FormatBool(f.check.Checked)
	case f.entry != nil:
		return f.entry.Text
	}
	return f.s.Value
}

func (f *field) setError(msg string) {
	f.errLbl.SetText(msg)
	if msg == "" {
		f.errLbl.Hide()
	} else {
		f.errLbl.Show()
	}
}

// ApplySettings shows stored values (from a settings event or a save) in their controls.
func (s *Screen) ApplySettings(changed []core.Setting) {
	for _, st := range changed {
		if f := s.field(st.Key); f != nil {
			f.set(st.Value)
		}
	}
}

func (s *Screen) field(key string) *field {
	i := slices.IndexFunc(s.fields, func(f *field) bool { return f.s.Key == key })
	if i < 0 {
		return nil
	}
	return s.fields[i]
}

func (s *Screen) setStatus(msg string, imp widget.Importance) {
	s.status.Importance = imp
	s.status.SetText(msg)
}

// save sends the values the user changed to the core; it stores all of them or none.
func (s *Screen) save() {
	kv := map[string]string{}
	for _, f := range s.fields {
		f.setError("")
		if f.s.ReadOnly {
			continue
		}
		if v := f.value(); v != f.s.Value {
			kv[f.s.Key] = v
		}
	}
	if len(kv) == 0 {
		s.setStatus("No changes to save.", widget.MediumImportance)
		return
	}
	all, err := s.c.UpdateSettings(s.ctx, kv)
	var fe *core.FieldError
	switch {
	case errors.As(err, &fe):
		if f := s.field(fe.Key); f != nil {
			f.setError(fe.Reason)
			s.setStatus("Nothing was saved: "+f.s.Label+" needs a different value.", widget.DangerImportance)
		} else {
			s.setStatus("Nothing was saved: "+fe.Error(), widget.DangerImportance)
		}
	case err != nil:
		s.setStatus("Could not save: "+err.Error(), widget.DangerImportance)
	default:
		s.ApplySettings(all)
		s.setStatus("Saved.", widget.SuccessImportance)
	}
}

func (s *Screen) startCheck() {
	j, err := s.c.StartDataCheck()
	if err != nil {
		s.checkMsg.Importance = widget.DangerImportance
		s.checkMsg.SetText("Could not start the check: " + err.Error())
		return
	}
	s.checkID = j.ID
	s.report.RemoveAll()
	s.checkBar.SetValue(0)
	s.checkBar.Show()
	s.checkBtn.Disable()
	s.ApplyJob(j)
}

// ApplyJob shows a job's new state: in the jobs list and, for the data check this page
// started, in its progress bar and report.
func (s *Screen) ApplyJob(j core.JobInfo) {
	s.jobs[j.ID] = j
	s.renderJobs()
	if j.ID != s.checkID {
		return
	}
	if f := j.Fraction(); f >= 0 {
		s.checkBar.SetValue(f)
	}
	s.checkMsg.Importance = widget.MediumImportance
	switch j.State {
	case core.JobRunning:
		s.checkMsg.SetText(progressText(j))
		return
	case core.JobDone:
		s.checkMsg.Importance = widget.SuccessImportance
		s.checkMsg.SetText("Everything is in order.")
	case core.JobFailed:
		s.checkMsg.Importance = widget.DangerImportance
		s.checkMsg.SetText(j.Error)
	case core.JobCancelled:
		s.checkMsg.SetText("The check was cancelled.")
	}
	s.checkMsg.Refresh()
	s.checkBtn.Enable()
	s.showReport(j.Result)
}

func (s *Screen) showReport(result any) {
	var rep core.CheckReport
	switch r := result.(type) {
	case core.CheckReport:
		rep = r
	case *core.CheckReport:
		if r != nil {
			rep = *r
		}
	}
	s.report.RemoveAll()
	for _, it := range rep.Items {
		var icon fyne.Resource = theme.NewSuccessThemedResource(theme.ConfirmIcon())
		switch it.Status {
		case core.CheckWarn:
			icon = theme.NewWarningThemedResource(theme.WarningIcon())
		case core.CheckFail:
			icon = theme.NewErrorThemedResource(theme.ErrorIcon())
		}
		name := widget.NewLabelWithStyle(it.Name, fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
		detail := widget.NewLabel(it.Detail)
		detail.Wrapping = fyne.TextWrapWord
		s.report.Add(container.NewHBox(widget.NewIcon(icon), name))
		s.report.Add(detail)
	}
}

func progressText(j core.JobInfo) string {
	p := j.Progress
	var b strings.Builder
	if p.Total > 0 {
		unit := p.Unit
		if unit == "" {
			unit = "items"
		}
		fmt.Fprintf(&b, "%d of %d %s", p.Done, p.Total, unit)
	} else {
		b.WriteString("Running")
	}
	if p.Message != "" {
		b.WriteString(": " + p.Message)
	}
	return b.String()
}

// renderJobs redraws the jobs list, newest first.
func (s *Screen) renderJobs() {
	list := make([]core.JobInfo, 0, len(s.jobs))
	for _, j := range s.jobs {
		list = append(list, j)
	}
	slices.SortStableFunc(list, func(a, b core.JobInfo) int {
		if c := b.Started.Compare(a.Started); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	s.jobBox.RemoveAll()
	if len(list) == 0 {
		none := widget.NewLabel("No jobs yet. Long tasks (checks, downloads, batch runs, uploads) appear here.")
		none.Importance = widget.LowImportance
		none.Wrapping = fyne.TextWrapWord
		s.jobBox.Add(none)
		return
	}
	for _, j := range list {
		s.jobBox.Add(s.jobRow(j))
	}
}

func (s *Screen) jobRow(j core.JobInfo) fyne.CanvasObject {
	title := widget.NewLabelWithStyle(j.Title, fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	state := widget.NewLabel(jobStateText(j))
	state.Wrapping = fyne.TextWrapWord
	switch j.State {
	case core.JobFailed:
		state.Importance = widget.DangerImportance
	case core.JobDone:
		state.Importance = widget.SuccessImportance
	case core.JobCancelled:
		state.Importance = widget.LowImportance
	}
	body := container.NewVBox(title, state)
	var right fyne.CanvasObject
	if j.State == core.JobRunning {
		if f := j.Fraction(); f >= 0 {
			bar := widget.NewProgressBar()
			bar.SetValue(f)
			body.Add(bar)
		}
		id := j.ID
		cancel := widget.NewButtonWithIcon(CancelLabel, theme.CancelIcon(), nil)
		cancel.OnTapped = func() {
			cancel.Disable()
			if err := s.c.CancelJob(id); err != nil {
				state.Importance = widget.DangerImportance
				state.SetText("Could not cancel: " + err.Error())
			}
		}
		right = cancel
	}
	return container.NewBorder(nil, widget.NewSeparator(), nil, right, body)
}

func jobStateText(j core.JobInfo) string {
	switch j.State {
	case core.JobRunning:
		return progressText(j)
	case core.JobDone:
		return "Done at " + j.Finished.Format(time.TimeOnly)
	case core.JobFailed:
		return "Failed: " + j.Error
	case core.JobCancelled:
		return "Cancelled at " + j.Finished.Format(time.TimeOnly)
	}
	return string(j.State)
}
