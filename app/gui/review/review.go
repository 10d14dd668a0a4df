// Package review is the review view of a batch run in the window's Validate section: one
// pair at a time (image, caption, score, key, size, the person's verdict) with keyboard
// navigation, sorted and filtered as the user picks; a histogram of the run's scores with
// a threshold slider that says how many pairs it keeps and the top-k % that is; and a
// button that exports the run again at that threshold. Every action is one call of the
// core; verdicts shown follow the core's events.
package review

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/gata-contrib/gata/app/core"
	"github.com/gata-contrib/gata/app/gui/internal/note"
	"github.com/gata-contrib/gata/app/gui/internal/page"
)

// Core is what the view needs from the service layer; *core.Core satisfies it.
type Core interface {
	Review(ctx context.Context, run int64, q core.ReviewQuery) (core.ReviewPage, error)
	ScoreDistribution(ctx context.Context, run int64, bins int) (core.ScoreDistribution, error)
	KeepAt(ctx context.Context, run int64, threshold float64) (core.Keep, error)
	SetVerdict(ctx context.Context, run int64, source, key, verdict string) error
	ReviewImage(ctx context.Context, run int64, source, key string) ([]byte, string, error)
	StartRun(ctx context.Context, req core.RunRequest) (core.JobInfo, error)
	RunSummary(ctx context.Context, id int64) (core.RunSummary, error)
}

// Labels of the view's buttons and choices (tests find them by these).
const (
	BackLabel     = "Runs"
	PrevLabel     = "Previous"
	NextLabel     = "Next"
	KeepLabel     = "Keep"
	RejectLabel   = "Reject"
	ClearLabel    = "Clear"
	ApplyLabel    = "Apply threshold and export"
	FailedLabel   = "Failed items"
	ShortcutsText = "Keys: Left / Right previous / next · K keep · R reject · U clear"

	OrderHigh = "Score, high to low"
	OrderLow  = "Score, low to high"
	OrderKey  = "Key"

	VerdictAll    = "Any verdict"
	VerdictKept   = "Kept by you"
	VerdictReject = "Rejected by you"
	VerdictNone   = "No verdict yet"
)

// Bins is the number of bars of the histogram.
const Bins = 40

var (
	orders   = map[string]string{OrderHigh: core.OrderScoreDesc, OrderLow: core.OrderScoreAsc, OrderKey: core.OrderKey}
	verdicts = map[string]string{VerdictAll: "", VerdictKept: core.VerdictKeep, VerdictReject: core.VerdictReject, VerdictNone: "none"}
)

// imageSize is the smallest size of the pair's image.
var imageSize = fyne.NewSize(300, 210)

// Screen is the review view. Its methods must be called on the Fyne UI goroutine; the core
// calls it makes run on goroutines of their own that hand their results to do.
type Screen struct {
	ctx    context.Context
	c      Core
	do     func(func())
	onBack func()
	wg     sync.WaitGroup

	run   core.RunInfo
	query core.ReviewQuery
	index int // of the pair shown, in the query's order
	total int // pairs the query matches
	item  *core.ReviewItem
	dist  core.ScoreDistribution
	keep  core.Keep
	// Counters of the loads started, so a slow answer does not overwrite a newer one.
	loads, images, keeps int
	opening              bool // the selects are being reset: their callbacks load nothing
	exportJob            string
	exported             *core.RunSummary

	title     *widget.Label
	back      *widget.Button
	order     *widget.Select
	verdict   *widget.Select
	failed    *widget.Check
	image     *canvas.Image
	imageMsg  *widget.Label
	position  *widget.Label
	caption   *widget.Label
	score     *widget.Label
	key       *widget.Label
	size      *widget.Label
	verdictIs *widget.Label
	msg       *widget.Label
	prev      *widget.Button
	next      *widget.Button
	keepBtn   *widget.Button
	rejectBtn *widget.Button
	clearBtn  *widget.Button
	hist      *histogram
	slider    *widget.Slider
	keepLbl   *widget.Label
	rangeLbl  *widget.Label
	apply     *widget.Button
	exportMsg *widget.Label

	content fyne.CanvasObject
}

// New builds the view; Open shows a run in it. onBack leaves it. Call Close once ctx has
// ended.
func New(ctx context.Context, c Core, do func(func()), onBack func()) *Screen {
	s := &Screen{ctx: ctx, c: c, do: do, onBack: onBack}

	s.back = widget.NewButtonWithIcon(BackLabel, theme.NavigateBackIcon(), func() {
		if s.onBack != nil {
			s.onBack()
		}
	})
	s.title = widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	s.title.Truncation = fyne.TextTruncateEllipsis
	shortcuts := widget.NewLabel(ShortcutsText)
	shortcuts.Importance = widget.LowImportance
	shortcuts.SizeName = theme.SizeNameCaptionText

	s.order = widget.NewSelect([]string{OrderHigh, OrderLow, OrderKey}, func(o string) {
		s.query.Order = orders[o]
		s.reload()
	})
	s.verdict = widget.NewSelect([]string{VerdictAll, VerdictKept, VerdictReject, VerdictNone}, func(v string) {
		s.query.Verdict = verdicts[v]
		s.reload()
	})
	s.failed = widget.NewCheck(FailedLabel, func(on bool) {
		s.query.Failed = on
		s.reload()
	})

	s.image = canvas.NewImageFromResource(nil)
	s.image.FillMode = canvas.ImageFillContain
	s.image.SetMinSize(imageSize)
	s.imageMsg = widget.NewLabel("")
	s.imageMsg.Wrapping = fyne.TextWrapWord
	s.imageMsg.Alignment = fyne.TextAlignCenter
	s.imageMsg.Hide()
	s.position = widget.NewLabel("")
	s.caption = widget.NewLabel("")
	s.caption.Wrapping = fyne.TextWrapWord
	s.score = widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	s.key = widget.NewLabel("")
	s.key.Truncation = fyne.TextTruncateEllipsis
	s.size = widget.NewLabel("")
	s.verdictIs = widget.NewLabel("")
	s.msg = widget.NewLabel("")
	s.msg.Truncation = fyne.TextTruncateEllipsis
	s.msg.Hide()
	s.prev = widget.NewButtonWithIcon(PrevLabel, theme.NavigateBackIcon(), s.Prev)
	s.next = widget.NewButtonWithIcon(NextLabel, theme.NavigateNextIcon(), s.Next)
	s.keepBtn = widget.NewButtonWithIcon(KeepLabel, theme.ConfirmIcon(), func() { s.SetVerdict(core.VerdictKeep) })
	s.keepBtn.Importance = widget.SuccessImportance
	s.rejectBtn = widget.NewButtonWithIcon(RejectLabel, theme.CancelIcon(), func() { s.SetVerdict(core.VerdictReject) })
	s.rejectBtn.Importance = widget.DangerImportance
	s.clearBtn = widget.NewButtonWithIcon(ClearLabel, theme.ContentUndoIcon(), func() { s.SetVerdict("") })

	s.hist = newHistogram()
	s.slider = widget.NewSlider(-1, 1)
	s.slider.Step = 0.001
	s.slider.OnChanged = s.threshold
	s.keepLbl = widget.NewLabel("")
	s.keepLbl.Wrapping = fyne.TextWrapWord
	s.rangeLbl = widget.NewLabel("")
	s.rangeLbl.Importance = widget.LowImportance
	s.rangeLbl.SizeName = theme.SizeNameCaptionText
	s.apply = widget.NewButtonWithIcon(ApplyLabel, theme.DocumentSaveIcon(), s.Apply)
	s.apply.Importance = widget.HighImportance
	s.exportMsg = widget.NewLabel("")
	s.exportMsg.Wrapping = fyne.TextWrapWord
	s.exportMsg.Hide()

	bold := func(t string) *widget.Label {
		return widget.NewLabelWithStyle(t, fyne.TextAlignTrailing, fyne.TextStyle{Bold: true})
	}
	details := container.NewVBox(
		s.position,
		s.caption,
		container.New(layout.NewFormLayout(),
			bold("Score"), s.score,
			bold("Key"), s.key,
			bold("Size"), s.size,
			bold("Verdict"), s.verdictIs),
	)
	pair := widget.NewCard("", "", container.NewVBox(
		container.NewGridWithColumns(2, container.NewStack(s.image, container.NewCenter(s.imageMsg)), details),
		container.NewHBox(s.prev, s.next, widget.NewSeparator(), s.keepBtn, s.rejectBtn, s.clearBtn),
		s.msg,
	))
	wide := func(o fyne.CanvasObject) fyne.CanvasObject {
		return container.NewGridWrap(fyne.NewSize(200, o.MinSize().Height), o)
	}
	filters := container.NewHBox(widget.NewLabel("Sort"), wide(s.order), widget.NewLabel("Show"), wide(s.verdict), s.failed)
	threshold := widget.NewCard("", "", container.NewVBox(
		s.hist, s.slider,
		container.NewBorder(nil, nil, s.apply, nil, s.keepLbl),
		s.rangeLbl, s.exportMsg,
	))
	header := container.NewBorder(nil, nil, s.back, shortcuts, s.title)
	s.content = container.NewVScroll(container.NewPadded(container.NewVBox(header, filters, pair, threshold)))
	return s
}

// Content is the view's root object.
func (s *Screen) Content() fyne.CanvasObject { return s.content }

// Close waits for the view's goroutines; cancel ctx first.
func (s *Screen) Close() { s.wg.Wait() }

// Run is the run shown.
func (s *Screen) Run() core.RunInfo { return s.run }

// Item is the pair shown, nil when none.
func (s *Screen) Item() *core.ReviewItem { return s.item }

// Open shows a run from its first pair, highest score first, with its score distribution.
func (s *Screen) Open(run core.RunInfo) {
	s.run = run
	s.query = core.ReviewQuery{Order: core.OrderScoreDesc}
	s.index, s.total, s.item = 0, 0, nil
	s.exportJob, s.exported = "", nil
	s.opening = true
	s.order.SetSelected(OrderHigh)
	s.verdict.SetSelected(VerdictAll)
	s.failed.SetChecked(false)
	s.opening = false
	title := fmt.Sprintf("Review · run %d · %s", run.ID, strings.Join(bases(run.Sources), ", "))
	s.title.SetText(title)
	s.exportMsg.Hide()
	s.msg.Hide()
	s.apply.Enable()
	s.load()
	s.loadDistribution()
}

func bases(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = filepath.Base(p)
	}
	return out
}

// reload starts the list again from its first pair after the sort or filter changed.
func (s *Screen) reload() {
	if s.opening || s.run.ID == 0 {
		return
	}
	s.index = 0
	s.load()
}

// load reads the pair at the current index.
func (s *Screen) load() {
	s.loads++
	seq := s.loads
	q := s.query
	q.Offset, q.Limit = s.index, 1
	run := s.run.ID
	s.wg.Go(func() {
		page, err := s.c.Review(s.ctx, run, q)
		s.do(func() {
			if seq != s.loads {
				return
			}
			if err != nil {
				s.setMsg(fmt.Errorf("read the pairs: %w", err).Error(), widget.DangerImportance)
				return
			}
			s.showPage(page)
		})
	})
}

func (s *Screen) showPage(page core.ReviewPage) {
	s.total = page.Total
	s.msg.Hide()
	if len(page.Items) == 0 {
		s.item = nil
		s.position.SetText("No pairs match.")
		for _, l := range []*widget.Label{s.caption, s.score, s.key, s.size, s.verdictIs} {
			l.SetText("")
		}
		s.showImage(nil, "")
		s.showButtons()
		return
	}
	it := page.Items[0]
	s.item = &it
	s.position.SetText(fmt.Sprintf("%d of %d", s.index+1, s.total))
	s.caption.SetText(it.Caption)
	s.key.SetText(it.Key)
	if it.Reason != "" {
		s.score.SetText("failed: " + it.Reason)
		s.size.SetText("")
		s.showImage(nil, oneLine(it.Error))
	} else {
		s.score.SetText(fmt.Sprintf("%.3f", it.Score))
		s.size.SetText(fmt.Sprintf("%d × %d", it.Width, it.Height))
		s.loadImage(it)
	}
	s.showVerdict()
	s.showButtons()
}

// loadImage reads the pair's image off the UI goroutine.
func (s *Screen) loadImage(it core.ReviewItem) {
	s.images++
	seq := s.images
	s.showImage(nil, "Loading the image…")
	run := s.run.ID
	s.wg.Go(func() {
		data, _, err := s.c.ReviewImage(s.ctx, run, it.Source, it.Key)
		s.do(func() {
			if seq != s.images {
				return
			}
			if err != nil {
				s.showImage(nil, oneLine(fmt.Errorf("read the image: %w", err).Error()))
				return
			}
			s.showImage(fyne.NewStaticResource(it.Key, data), "")
		})
	})
}

func (s *Screen) showImage(res fyne.Resource, msg string) {
	s.image.Resource = res
	s.image.Hidden = res == nil
	s.image.Refresh()
	s.imageMsg.SetText(msg)
	s.imageMsg.Hidden = msg == ""
	s.imageMsg.Refresh()
}

func (s *Screen) showVerdict() {
	if s.item == nil {
		return
	}
	switch s.item.Verdict {
	case core.VerdictKeep:
		s.verdictIs.Importance = widget.SuccessImportance
		s.verdictIs.SetText("keep")
	case core.VerdictReject:
		s.verdictIs.Importance = widget.DangerImportance
		s.verdictIs.SetText("reject")
	default:
		s.verdictIs.Importance = widget.LowImportance
		s.verdictIs.SetText("none (the threshold decides)")
	}
}

func (s *Screen) showButtons() {
	page.SetEnabled(s.prev, s.index > 0)
	page.SetEnabled(s.next, s.index+1 < s.total)
	on := s.item != nil
	page.SetEnabled(s.keepBtn, on)
	page.SetEnabled(s.rejectBtn, on)
	page.SetEnabled(s.clearBtn, on)
}

// Prev shows the pair before.
func (s *Screen) Prev() {
	if s.index > 0 {
		s.index--
		s.load()
	}
}

// Next shows the pair after.
func (s *Screen) Next() {
	if s.index+1 < s.total {
		s.index++
		s.load()
	}
}

// SetVerdict stores a verdict on the pair shown ("keep", "reject" or "" to clear it); the
// core's event shows it.
func (s *Screen) SetVerdict(v string) {
	if s.item == nil {
		return
	}
	run, src, key := s.run.ID, s.item.Source, s.item.Key
	s.wg.Go(func() {
		err := s.c.SetVerdict(s.ctx, run, src, key, v)
		if err != nil {
			s.do(func() { s.setMsg(fmt.Errorf("store the verdict: %w", err).Error(), widget.DangerImportance) })
		}
	})
}

// ApplyVerdict shows a verdict stored by this view or another front-end.
func (s *Screen) ApplyVerdict(v core.VerdictChange) {
	if s.item == nil || v.Run != s.run.ID || v.Source != s.item.Source || v.Key != s.item.Key {
		return
	}
	s.item.Verdict = v.Verdict
	s.showVerdict()
}

// TypedKey handles the arrow keys: Left previous, Right next.
func (s *Screen) TypedKey(ev *fyne.KeyEvent) {
	switch ev.Name {
	case fyne.KeyLeft:
		s.Prev()
	case fyne.KeyRight:
		s.Next()
	}
}

// TypedRune handles the letter keys: K keep, R reject, U clear.
func (s *Screen) TypedRune(r rune) {
	switch r {
	case 'k', 'K':
		s.SetVerdict(core.VerdictKeep)
	case 'r', 'R':
		s.SetVerdict(core.VerdictReject)
	case 'u', 'U':
		s.SetVerdict("")
	}
}

// loadDistribution reads the run's score histogram and the threshold of its last export.
func (s *Screen) loadDistribution() {
	run := s.run.ID
	s.wg.Go(func() {
		d, err := s.c.ScoreDistribution(s.ctx, run, Bins)
		sum, serr := s.c.RunSummary(s.ctx, run)
		s.do(func() {
			if run != s.run.ID {
				return
			}
			if err != nil {
				s.setKeep(fmt.Errorf("read the scores: %w", err).Error(), widget.DangerImportance)
				return
			}
			s.dist = d
			t := d.Min
			if serr == nil && sum.Summary != nil && sum.Summary.Threshold != nil {
				t = *sum.Summary.Threshold
			}
			s.hist.set(d, t)
			s.rangeLbl.SetText(fmt.Sprintf("Scores from %.3f to %.3f; the bars in colour are kept.", d.Min, d.Max))
			s.slider.Min, s.slider.Max = float64(d.Min), float64(max(d.Max, d.Min+0.001))
			s.slider.SetValue(float64(t))
			s.threshold(s.slider.Value)
		})
	})
}

// threshold shows what a threshold keeps (core.KeepAt).
func (s *Screen) threshold(t float64) {
	if s.run.ID == 0 {
		return
	}
	s.hist.setThreshold(float32(t))
	s.keeps++
	seq := s.keeps
	run := s.run.ID
	s.wg.Go(func() {
		k, err := s.c.KeepAt(s.ctx, run, t)
		s.do(func() {
			if seq != s.keeps {
				return
			}
			if err != nil {
				s.setKeep(fmt.Errorf("count what the threshold keeps: %w", err).Error(), widget.DangerImportance)
				return
			}
			s.keep = k
			s.setKeep(fmt.Sprintf("A score of at least %.3f keeps %d of %d pairs: the top %.1f %%.", k.Threshold, k.Kept, k.Total, 100*k.Fraction),
				widget.MediumImportance)
		})
	})
}

// Kept is what the threshold shown keeps, as the core counted it.
func (s *Screen) Kept() core.Keep { return s.keep }

// Slider is the threshold slider.
func (s *Screen) Slider() *widget.Slider { return s.slider }

// Exported is the summary of the export this view started, once it has ended.
func (s *Screen) Exported() *core.RunSummary { return s.exported }

// Apply exports the run again with the slider's threshold as its minimum score; nothing is
// scored again, and the person's verdicts win over the threshold.
func (s *Screen) Apply() {
	if s.run.ID == 0 || s.exportJob != "" {
		return
	}
	t := s.slider.Value
	s.apply.Disable()
	s.setExport("Starting the export…", widget.MediumImportance)
	run := s.run.ID
	s.wg.Go(func() {
		j, err := s.c.StartRun(s.ctx, core.RunRequest{Resume: run, MinScore: &t})
		s.do(func() {
			if err != nil {
				s.apply.Enable()
				s.setExport(fmt.Errorf("export: %w", err).Error(), widget.DangerImportance)
				return
			}
			s.exportJob = j.ID
			s.ApplyJob(j)
		})
	})
}

// ApplyJob follows the export this view started.
func (s *Screen) ApplyJob(j core.JobInfo) {
	if j.ID == "" || j.ID != s.exportJob {
		return
	}
	switch j.State {
	case core.JobRunning:
		msg := "Exporting…"
		if j.Progress.Message != "" {
			msg = "Exporting: " + j.Progress.Message
		}
		s.setExport(msg, widget.MediumImportance)
		return
	case core.JobFailed:
		s.setExport(fmt.Sprintf("export: %s", j.Error), widget.DangerImportance)
	case core.JobCancelled:
		s.setExport("Export cancelled.", widget.MediumImportance)
	case core.JobDone:
		run := s.run.ID
		s.wg.Go(func() {
			sum, err := s.c.RunSummary(s.ctx, run)
			s.do(func() {
				if run != s.run.ID {
					return
				}
				if err != nil || sum.Summary == nil {
					s.setExport("Exported; its summary could not be read.", widget.WarningImportance)
					return
				}
				s.exported = &sum
				x := sum.Summary
				text := fmt.Sprintf("Exported: %d of %d scored pairs kept", x.Kept, x.Scored)
				if x.MinScore != nil {
					text += fmt.Sprintf(" at a score of at least %.3f", *x.MinScore)
				}
				if x.VerdictKeep+x.VerdictReject > 0 {
					text += fmt.Sprintf("; your verdicts: %d keep, %d reject", x.VerdictKeep, x.VerdictReject)
				}
				s.setExport(text+".", widget.SuccessImportance)
			})
		})
	}
	s.exportJob = ""
	s.apply.Enable()
}

func (s *Screen) setMsg(text string, imp widget.Importance)  { note.Set(s.msg, oneLine(text), imp) }
func (s *Screen) setKeep(text string, imp widget.Importance) { note.Set(s.keepLbl, oneLine(text), imp) }
func (s *Screen) setExport(text string, imp widget.Importance) {
	note.Set(s.exportMsg, oneLine(text), imp)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
