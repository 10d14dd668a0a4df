// Package validate is the Validate section of the desktop window: a card for the chosen
// CLIP model (ready or not, its licence, download and verify with progress), the batch runs
// card (package runs), a form that scores one image against one caption, and the review
// view of a run (package review), shown in place of the rest of the page. Every action is
// one call of the core; the page only shows what the core answers.
package validate

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/storage"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/gata-contrib/gata/app/core"
	"github.com/gata-contrib/gata/app/gui/internal/note"
	"github.com/gata-contrib/gata/app/gui/internal/page"
	"github.com/gata-contrib/gata/app/gui/review"
	"github.com/gata-contrib/gata/app/gui/runs"
)

// Core is what the page needs from the service layer; *core.Core satisfies it.
type Core interface {
	runs.Core
	review.Core
	ValidateState(ctx context.Context) (core.ValidateState, error)
	AcceptModelLicense(ctx context.Context, name string) error
	PullModel(ctx context.Context, name string) (core.JobInfo, error)
	VerifyModel(name string) (core.JobInfo, error)
	Job(id string) (core.JobInfo, error)
	ScorePair(ctx context.Context, req core.ScoreRequest) (*core.ScoreResult, error)
}

// Labels of the page's buttons (tests find them by these).
const (
	DownloadLabel = "Download"
	VerifyLabel   = "Verify"
	CancelLabel   = "Cancel"
	ChooseLabel   = "Choose image…"
	ScoreLabel    = "Score"
	// AcceptLabel is the confirm button of the licence dialog.
	AcceptLabel = "Accept and download"
)

// previewSize is the smallest size of the image preview.
var previewSize = fyne.NewSize(320, 240)

// Screen is the Validate page. Its methods must be called on the Fyne UI goroutine; the
// work it starts runs on goroutines of its own that hand their results to do.
type Screen struct {
	ctx context.Context
	c   Core
	w   fyne.Window
	do  func(func()) // runs a function on the UI goroutine (fyne.Do)
	wg  sync.WaitGroup

	state core.ValidateState

	// The model card.
	modelName   *widget.Label
	modelStatus *widget.Label
	modelInfo   *widget.Label
	licence     *fyne.Container
	licenceLink *widget.Hyperlink
	licenceNote *widget.Label
	downloadBtn *widget.Button
	verifyBtn   *widget.Button
	cancelBtn   *widget.Button
	jobBar      *widget.ProgressBar
	jobMsg      *widget.Label
	jobID       string // the model job this page started and follows

	// The scoring form.
	chooseBtn *widget.Button
	fileLbl   *widget.Label
	preview   *canvas.Image
	caption   *widget.Entry
	scoreBtn  *widget.Button
	scoreMsg  *widget.Label
	result    *fyne.Container
	score     *widget.Label
	scored    *widget.Label // the caption that was scored
	usedModel *widget.Label
	imgName   string
	img       []byte
	loads     int // counts file reads, so a slow one does not overwrite a newer choice
	scoring   bool
	scoreCard *widget.Card

	// Batch runs, and the review of one of them.
	runs       *runs.Screen
	review     *review.Screen
	main       fyne.CanvasObject // the page without the review
	reviewPage fyne.CanvasObject
	keysSet    bool

	content *fyne.Container
}

// New builds the page (titled after its section) from the core's current state. ctx bounds
// the core calls the page makes; w is the window its dialogs open over; do runs a function
// on the UI goroutine. Call Close once ctx has ended, to wait for the page's goroutines.
func New(ctx context.Context, sec core.Section, c Core, w fyne.Window, do func(func())) *Screen {
	s := &Screen{ctx: ctx, c: c, w: w, do: do}

	s.modelName = widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	s.modelName.Wrapping = fyne.TextWrapBreak
	s.modelStatus = widget.NewLabel("")
	s.modelStatus.Wrapping = fyne.TextWrapWord
	s.modelInfo = widget.NewLabel("")
	s.modelInfo.Wrapping = fyne.TextWrapWord
	s.licenceLink = widget.NewHyperlink("", nil)
	s.licenceNote = widget.NewLabel("")
	s.licenceNote.Importance = widget.LowImportance
	s.licence = container.NewHBox(widget.NewLabel("Licence:"), s.licenceLink, s.licenceNote)
	s.downloadBtn = widget.NewButtonWithIcon(DownloadLabel, theme.DownloadIcon(), s.download)
	s.downloadBtn.Importance = widget.HighImportance
	s.verifyBtn = widget.NewButtonWithIcon(VerifyLabel, theme.ConfirmIcon(), s.verify)
	s.cancelBtn = widget.NewButtonWithIcon(CancelLabel, theme.CancelIcon(), s.cancelJob)
	s.cancelBtn.Hide()
	s.jobBar = widget.NewProgressBar()
	s.jobBar.Hide()
	s.jobMsg = note.New()
	hint := widget.NewLabel("Settings › Validation model chooses the model: a known model's name or a model folder.")
	hint.Wrapping = fyne.TextWrapWord
	hint.SizeName = theme.SizeNameCaptionText
	model := widget.NewCard("Model", "", container.NewVBox(
		s.modelName, s.modelStatus, s.modelInfo, s.licence,
		container.NewHBox(s.downloadBtn, s.verifyBtn, s.cancelBtn),
		s.jobBar, s.jobMsg, hint,
	))

	s.chooseBtn = widget.NewButtonWithIcon(ChooseLabel, theme.FolderOpenIcon(), s.openDialog)
	s.fileLbl = widget.NewLabel("No image chosen.")
	s.fileLbl.Truncation = fyne.TextTruncateEllipsis
	s.preview = canvas.NewImageFromResource(nil)
	s.preview.FillMode = canvas.ImageFillContain
	s.preview.SetMinSize(previewSize)
	s.preview.Hide()
	s.caption = widget.NewEntry()
	s.caption.SetPlaceHolder("Caption, e.g. a cup of coffee on a saucer")
	s.caption.OnSubmitted = func(string) {
		if !s.scoreBtn.Disabled() {
			s.startScore()
		}
	}
	s.scoreBtn = widget.NewButtonWithIcon(ScoreLabel, theme.MediaPlayIcon(), s.startScore)
	s.scoreBtn.Importance = widget.HighImportance
	s.scoreBtn.Disable()
	s.scoreMsg = widget.NewLabel("")
	s.scoreMsg.Truncation = fyne.TextTruncateEllipsis
	s.scoreMsg.Hide()
	s.score = widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	s.scored = widget.NewLabel("")
	s.scored.Wrapping = fyne.TextWrapWord
	s.usedModel = widget.NewLabel("")
	s.usedModel.Wrapping = fyne.TextWrapBreak
	bold := func(t string) *widget.Label {
		return widget.NewLabelWithStyle(t, fyne.TextAlignTrailing, fyne.TextStyle{Bold: true})
	}
	s.result = container.New(layout.NewFormLayout(),
		bold("Score"), s.score,
		bold("Caption"), s.scored,
		bold("Model"), s.usedModel)
	s.result.Hide()
	help := widget.NewLabel("The score is the cosine similarity of the image's and the caption's embeddings, " +
		"from -1 to 1; a good caption of a photo scores about 0.25 or more with DFN CLIP.")
	help.Wrapping = fyne.TextWrapWord
	help.SizeName = theme.SizeNameCaptionText
	s.scoreCard = widget.NewCard("Score a pair", "", container.NewVBox(
		container.NewBorder(nil, nil, s.chooseBtn, nil, s.fileLbl),
		container.NewCenter(s.preview),
		s.caption,
		container.NewBorder(nil, nil, s.scoreBtn, nil, s.scoreMsg),
		s.result, help,
	))

	s.runs = runs.New(ctx, c, w, do, s.OpenReview)
	s.review = review.New(ctx, c, do, s.CloseReview)
	s.main = page.Frame(sec, model, s.runs.Content(), s.scoreCard)
	s.reviewPage = s.review.Content()
	s.reviewPage.Hide()
	s.content = container.NewStack(s.main, s.reviewPage)

	s.Refresh()
	return s
}

// Content is the page's root object.
func (s *Screen) Content() fyne.CanvasObject { return s.content }

// Close waits for the page's goroutines (reading a file, scoring, the runs and the review);
// cancel ctx first.
func (s *Screen) Close() {
	s.wg.Wait()
	s.runs.Close()
	s.review.Close()
}

// Runs is the batch runs card.
func (s *Screen) Runs() *runs.Screen { return s.runs }

// Review is the review view.
func (s *Screen) Review() *review.Screen { return s.review }

// ReviewShown reports whether the review view is shown in place of the page.
func (s *Screen) ReviewShown() bool { return s.reviewPage.Visible() }

// OpenReview shows the review of a run in place of the page. While it is shown (and the
// page is), the window's keys navigate it: Left / Right previous / next, K keep, R reject, U clear.
func (s *Screen) OpenReview(run core.RunInfo) {
	if !s.keysSet {
		s.keysSet = true
		cv := s.w.Canvas()
		cv.SetOnTypedKey(func(ev *fyne.KeyEvent) {
			if s.reviewKeys() {
				s.review.TypedKey(ev)
			}
		})
		cv.SetOnTypedRune(func(r rune) {
			if s.reviewKeys() {
				s.review.TypedRune(r)
			}
		})
	}
	s.w.Canvas().Unfocus()
	s.main.Hide()
	s.reviewPage.Show()
	s.review.Open(run)
}

// CloseReview goes back from the review to the page, and reads the runs again.
func (s *Screen) CloseReview() {
	s.reviewPage.Hide()
	s.main.Show()
	s.runs.Reload()
}

// reviewKeys reports whether the window's keys go to the review view.
func (s *Screen) reviewKeys() bool { return s.content.Visible() && s.reviewPage.Visible() }

// ApplyRunPaused shows a run paused or going on.
func (s *Screen) ApplyRunPaused(p core.RunPaused) { s.runs.ApplyRunPaused(p) }

// ApplyVerdict shows a verdict stored on a pair.
func (s *Screen) ApplyVerdict(v core.VerdictChange) { s.review.ApplyVerdict(v) }

// Refresh reads the model's state from the core again and shows it.
func (s *Screen) Refresh() {
	st, err := s.c.ValidateState(s.ctx)
	if err != nil {
		s.state = core.ValidateState{}
		s.modelName.SetText("Model")
		note.Set(s.modelStatus, "Could not read the model's state: "+err.Error(), widget.DangerImportance)
		s.modelInfo.Hide()
		s.licence.Hide()
		s.downloadBtn.Hide()
		s.verifyBtn.Hide()
		return
	}
	s.state = st
	if st.Known != nil {
		s.modelName.SetText(st.Known.Spec.Title + " · " + st.Model)
	} else {
		s.modelName.SetText(st.Model)
	}
	switch {
	case st.Ready && st.Loaded:
		note.Set(s.modelStatus, "Ready, loaded.", widget.SuccessImportance)
	case st.Ready:
		note.Set(s.modelStatus, "Ready; it loads when you score the first pair.", widget.SuccessImportance)
	default:
		note.Set(s.modelStatus, st.Problem, widget.WarningImportance)
	}

	k := st.Known
	if k == nil {
		s.modelInfo.Hide()
		s.licence.Hide()
		s.downloadBtn.Hide()
		s.verifyBtn.Hide()
		return
	}
	info := strings.TrimSpace(k.Spec.Description + " Weights: " + sizeText(k.Spec.Size) + ".")
	if !k.Downloaded && k.Partial > 0 {
		info += " " + sizeText(k.Partial) + " downloaded so far; Download resumes."
	}
	s.modelInfo.SetText(info)
	s.modelInfo.Show()
	s.licenceLink.SetText(k.Spec.License.Name)
	if u, err := url.Parse(k.Spec.License.URL); err == nil && k.Spec.License.URL != "" {
		s.licenceLink.SetURL(u)
	} else {
		s.licenceLink.URL = nil
	}
	if k.LicenseAccepted {
		s.licenceNote.SetText("(accepted)")
		s.licenceNote.Show()
	} else {
		s.licenceNote.Hide()
	}
	s.licence.Show()
	s.downloadBtn.Hidden = k.Downloaded
	s.verifyBtn.Hidden = !k.Downloaded
	busy := s.jobID != ""
	page.SetEnabled(s.downloadBtn, !busy)
	page.SetEnabled(s.verifyBtn, !busy)
	s.downloadBtn.Refresh()
	s.verifyBtn.Refresh()
}

// Reload brings the page up to date after events were missed.
func (s *Screen) Reload() {
	s.runs.Reload()
	if s.jobID != "" {
		if j, err := s.c.Job(s.jobID); err == nil {
			s.ApplyJob(j)
		} else {
			s.endJob()
		}
	}
	s.Refresh()
}

// ApplySettings refreshes the model card when the chosen model changed.
func (s *Screen) ApplySettings(changed []core.Setting) {
	for _, st := range changed {
		if st.Key == core.SettingModel {
			s.Refresh()
			return
		}
	}
}

// ApplyJob shows the progress of the download or verification this page started, and
// refreshes the model card when any model job ends (another front-end may have started it).
func (s *Screen) ApplyJob(j core.JobInfo) {
	s.runs.ApplyJob(j)
	s.review.ApplyJob(j)
	if j.ID != s.jobID {
		if j.State.Ended() && (j.Kind == "model.pull" || j.Kind == "model.verify") {
			s.Refresh()
		}
		return
	}
	if f := j.Fraction(); f >= 0 {
		s.jobBar.SetValue(f)
	}
	switch j.State {
	case core.JobRunning:
		note.Set(s.jobMsg, progressText(j), widget.MediumImportance)
		return
	case core.JobDone:
		if j.Kind == "model.verify" {
			note.Set(s.jobMsg, "Verified: the weights match their checksum.", widget.SuccessImportance)
		} else {
			note.Set(s.jobMsg, "Downloaded and verified.", widget.SuccessImportance)
		}
	case core.JobFailed:
		note.Set(s.jobMsg, j.Error, widget.DangerImportance)
	case core.JobCancelled:
		note.Set(s.jobMsg, "Cancelled.", widget.MediumImportance)
	}
	s.endJob()
	s.Refresh()
}

func (s *Screen) endJob() {
	s.jobID = ""
	s.cancelBtn.Hide()
	s.cancelBtn.Enable()
}

// download asks for the licence first, unless the user accepted it already.
func (s *Screen) download() {
	k := s.state.Known
	if k == nil || s.jobID != "" {
		return
	}
	if k.LicenseAccepted {
		s.pull(k.Spec.Name)
		return
	}
	name := k.Spec.Name
	text := widget.NewLabel(fmt.Sprintf("%s (%s) is published under the %s. Downloading it means you accept its terms.",
		k.Spec.Title, sizeText(k.Spec.Size), k.Spec.License.Name))
	text.Wrapping = fyne.TextWrapWord
	items := []fyne.CanvasObject{text}
	if sum := k.Spec.License.Summary; sum != "" {
		l := widget.NewLabel(sum)
		l.Wrapping = fyne.TextWrapWord
		l.Importance = widget.LowImportance
		items = append(items, l)
	}
	if u, err := url.Parse(k.Spec.License.URL); err == nil && k.Spec.License.URL != "" {
		items = append(items, widget.NewHyperlink("Read the full licence", u))
	}
	d := dialog.NewCustomConfirm("Accept the licence?", AcceptLabel, "Cancel", container.NewVBox(items...), func(ok bool) {
		if !ok {
			return
		}
		if err := s.c.AcceptModelLicense(s.ctx, name); err != nil {
			note.Set(s.jobMsg, fmt.Errorf("accept the licence: %w", err).Error(), widget.DangerImportance)
			return
		}
		s.pull(name)
	}, s.w)
	d.Resize(fyne.NewSize(520, 0))
	d.Show()
}

func (s *Screen) pull(name string) {
	j, err := s.c.PullModel(s.ctx, name)
	if err != nil {
		note.Set(s.jobMsg, fmt.Errorf("start the download: %w", err).Error(), widget.DangerImportance)
		s.Refresh()
		return
	}
	s.startJob(j)
}

func (s *Screen) verify() {
	k := s.state.Known
	if k == nil || s.jobID != "" {
		return
	}
	j, err := s.c.VerifyModel(k.Spec.Name)
	if err != nil {
		note.Set(s.jobMsg, fmt.Errorf("start the verification: %w", err).Error(), widget.DangerImportance)
		return
	}
	s.startJob(j)
}

func (s *Screen) startJob(j core.JobInfo) {
	s.jobID = j.ID
	s.jobBar.SetValue(0)
	s.jobBar.Show()
	s.cancelBtn.Show()
	s.downloadBtn.Disable()
	s.verifyBtn.Disable()
	s.ApplyJob(j)
}

func (s *Screen) cancelJob() {
	if s.jobID == "" {
		return
	}
	s.cancelBtn.Disable()
	if err := s.c.CancelJob(s.jobID); err != nil {
		note.Set(s.jobMsg, fmt.Errorf("cancel: %w", err).Error(), widget.DangerImportance)
		s.cancelBtn.Enable()
	}
	// The job's last event says it was cancelled.
}

// openDialog shows the file dialog for images; ChooseFile gets what the user picks.
func (s *Screen) openDialog() {
	d := dialog.NewFileOpen(s.ChooseFile, s.w)
	d.SetFilter(storage.NewExtensionFileFilter(core.ImageExtensions))
	d.Resize(fyne.NewSize(800, 560))
	d.Show()
}

// ChooseFile is the file dialog's callback: it reads the chosen file off the UI goroutine
// (at most core.MaxImageBytes) and shows it in the preview. A nil reader (the user
// cancelled) changes nothing.
func (s *Screen) ChooseFile(rc fyne.URIReadCloser, err error) {
	if err != nil {
		s.showError(fmt.Errorf("open the image: %w", err))
		return
	}
	if rc == nil {
		return
	}
	name := rc.URI().Name()
	s.loads++
	seq := s.loads
	s.img, s.imgName = nil, ""
	s.scoreBtn.Disable()
	s.fileLbl.SetText("Reading " + name + "…")
	s.result.Hide()
	s.scoreMsg.Hide()
	s.wg.Go(func() {
		data, err := readImage(rc, name)
		s.do(func() {
			if seq != s.loads {
				return
			}
			s.loaded(name, data, err)
		})
	})
}

// readImage reads a chosen file, refusing one larger than core.MaxImageBytes.
func readImage(rc fyne.URIReadCloser, name string) ([]byte, error) {
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, core.MaxImageBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(data) > core.MaxImageBytes {
		return nil, fmt.Errorf("read %s: larger than the %d MB limit", name, core.MaxImageBytes>>20)
	}
	return data, nil
}

func (s *Screen) loaded(name string, data []byte, err error) {
	if err != nil {
		s.fileLbl.SetText("No image chosen.")
		s.preview.Hide()
		s.showError(err)
		return
	}
	s.img, s.imgName = data, name
	s.fileLbl.SetText(name + " · " + sizeText(int64(len(data))))
	s.preview.Resource = fyne.NewStaticResource(name, data)
	s.preview.Show()
	s.preview.Refresh()
	page.SetEnabled(s.scoreBtn, !s.scoring)
}

// startScore scores the chosen image against the caption on a goroutine.
func (s *Screen) startScore() {
	if s.scoring || s.img == nil {
		return
	}
	s.scoring = true
	s.scoreBtn.Disable()
	s.chooseBtn.Disable()
	msg := "Scoring…"
	if !s.state.Loaded {
		msg = "Loading the model and scoring…"
	}
	note.Set(s.scoreMsg, msg, widget.MediumImportance)
	s.result.Hide()
	req := core.ScoreRequest{Name: s.imgName, Image: s.img, Caption: s.caption.Text}
	s.wg.Go(func() {
		res, err := s.c.ScorePair(s.ctx, req)
		if err != nil {
			err = fmt.Errorf("score the pair: %w", err)
		}
		s.do(func() { s.scoredPair(res, err) })
	})
}

func (s *Screen) scoredPair(res *core.ScoreResult, err error) {
	s.scoring = false
	s.chooseBtn.Enable()
	page.SetEnabled(s.scoreBtn, s.img != nil)
	if err != nil {
		s.showError(err)
		return
	}
	s.scoreMsg.Hide()
	s.score.SetText(fmt.Sprintf("%.3f", res.Score))
	s.scored.SetText(res.Caption)
	m := res.Model
	used := m.Name
	if used == "" {
		used = m.Dir
	}
	if m.Backend != "" {
		used += " · " + m.Backend
	}
	s.usedModel.SetText(used)
	s.result.Show()
	s.Refresh() // the model is loaded now
}

// showError puts an error in the scoring card's one-line message and hides the score.
func (s *Screen) showError(err error) {
	s.result.Hide()
	note.Set(s.scoreMsg, strings.Join(strings.Fields(err.Error()), " "), widget.DangerImportance)
}

// progressText says how far a download or verification is.
func progressText(j core.JobInfo) string {
	p := j.Progress
	if p.Total <= 0 {
		return j.Title + "…"
	}
	if p.Unit == "bytes" {
		return fmt.Sprintf("%s: %s of %s", j.Title, sizeText(p.Done), sizeText(p.Total))
	}
	return fmt.Sprintf("%s: %d of %d %s", j.Title, p.Done, p.Total, p.Unit)
}

// sizeText writes a byte count the way people read it (SI units).
func sizeText(n int64) string {
	const k = 1000
	switch {
	case n < k:
		return fmt.Sprintf("%d bytes", n)
	case n < k*k:
		return fmt.Sprintf("%.1f kB", float64(n)/k)
	case n < k*k*k:
		return fmt.Sprintf("%.1f MB", float64(n)/(k*k))
	}
	return fmt.Sprintf("%.2f GB", float64(n)/(k*k*k))
}
