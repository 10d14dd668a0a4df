// Package chat is the Chat section of the desktop window: the providers card, a form that
// asks two to four models one question at once (blind by default), their answers side by
// side as they stream, the vote that reveals the models, the leaderboard and the exports.
// Every action is one call of the core, made off the UI goroutine; the page only shows
// what the core answers and the core's chat events (ApplyChat).
package chat

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/gata-contrib/gata/app/core"
	"github.com/gata-contrib/gata/app/gui/internal/note"
	"github.com/gata-contrib/gata/app/gui/internal/page"
	"github.com/gata-contrib/gata/app/gui/internal/unlock"
)

// Core is what the page needs from the service layer; *core.Core satisfies it.
type Core interface {
	AddProvider(ctx context.Context, in core.ProviderInput) (core.ProviderInfo, error)
	Providers(ctx context.Context) ([]core.ProviderInfo, error)
	RemoveProvider(ctx context.Context, name string) error
	ChatModels(ctx context.Context) ([]core.ProviderModels, error)
	StartBattle(ctx context.Context, in core.BattleInput) (core.BattleInfo, error)
	ContinueBattle(ctx context.Context, id, prompt string) (core.BattleInfo, error)
	RegenerateColumn(ctx context.Context, id, column string) (core.BattleInfo, error)
	StopBattle(id string) error
	Vote(ctx context.Context, id string, in core.VoteInput) (core.BattleInfo, error)
	Leaderboard(ctx context.Context) (core.Leaderboard, error)
	ExportChat(ctx context.Context, format string, w io.Writer, includeLowQuality bool) (int, error)
	Battles(ctx context.Context, limit int) ([]core.BattleInfo, error)
	Battle(ctx context.Context, id string) (core.BattleInfo, error)
	Secrets(ctx context.Context) core.SecretsInfo
	UnlockSecrets(ctx context.Context, passphrase string) error
	SetProviderKey(ctx context.Context, name, key string) error
}

// Labels of the page's buttons (tests find them by these).
const (
	AddLabel        = "Add provider"
	RemoveLabel     = "Remove"
	ReloadLabel     = "Reload models"
	AskLabel        = "Ask"
	StopLabel       = "Stop"
	SendLabel       = "Send follow-up"
	RegenLabel      = "Regenerate"
	TieLabel        = "Tie"
	BadLabel        = "All bad"
	ExportArenaText = "Export Arena battles…"
	ExportDPOText   = "Export DPO pairs…"
	UnlockLabel     = unlock.Label
	KeyLabel        = "Key…"
	OpenLabel       = "Open"
)

// historyLimit is how many battles the history card lists.
const historyLimit = 20

// VoteLabel is the vote button of a column ("A is best").
func VoteLabel(column string) string { return column + " is best" }

// Screen is the Chat page. Its methods must be called on the Fyne UI goroutine; the work
// it starts runs on goroutines of its own that hand their results to do.
type Screen struct {
	ctx context.Context
	c   Core
	w   fyne.Window
	do  func(func()) // runs a function on the UI goroutine (fyne.Do)
	wg  sync.WaitGroup

	// The providers card.
	providers   []core.ProviderInfo
	provList    *fyne.Container
	provName    *widget.Entry
	provKind    *widget.Select
	provURL     *widget.Entry
	provEnv     *widget.Entry
	provKey     *widget.Entry // the API key, kept in the secret store
	provModels  *widget.Entry
	lock        *unlock.Row // the passphrase row, shown while the secrets file is locked
	addBtn      *widget.Button
	provMsg     *widget.Label
	modelsLoads int // counts model list requests, so a slow one does not overwrite a newer one

	// The battle form.
	modelPick *widget.CheckGroup
	reloadBtn *widget.Button
	prompt    *widget.Entry
	blind     *widget.Check
	askBtn    *widget.Button
	askMsg    *widget.Label

	// The battle shown.
	battle    *battleView
	pending   bool             // a StartBattle call is on its way
	buffered  []core.ChatEvent // chat events that came while it was
	battleBox *fyne.Container  // the battle card's place on the page
	card      *widget.Card     // the battle card
	columns   *fyne.Container  // the grid of columns
	stopBtn   *widget.Button   // stops the streaming battle
	followUp  *widget.Entry    // the next prompt
	sendBtn   *widget.Button   // sends it
	voteBtns  map[string]*widget.Button
	voteRow   *fyne.Container
	reason    *widget.Entry
	result    *widget.Label // the vote, the revealed names, the quality
	battleMsg *widget.Label

	// The history of battles.
	history    *fyne.Container
	historyMsg *widget.Label

	// The leaderboard and the exports.
	board     *fyne.Container
	boardNote *widget.Label
	lowQual   *widget.Check
	exportMsg *widget.Label

	content fyne.CanvasObject
}

// battleView is what the page knows of the battle shown.
type battleView struct {
	id      string
	blind   bool
	running bool
	voted   bool
	prompts []string
	cols    []*column
}

// column is one answer column.
type column struct {
	name    string // "A"…"D"
	model   string // "" while blind
	answers []string
	title   *widget.Label
	text    *widget.Label
	status  *widget.Label
	regen   *widget.Button
}

// New builds the page (titled after its section) from the core's stored providers and
// votes. ctx bounds the core calls the page makes; w is the window its dialogs open over;
// do runs a function on the UI goroutine. Call Close once ctx has ended.
func New(ctx context.Context, sec core.Section, c Core, w fyne.Window, do func(func())) *Screen {
	s := &Screen{ctx: ctx, c: c, w: w, do: do, voteBtns: map[string]*widget.Button{}}

	// Providers.
	s.provList = container.NewVBox()
	s.provName = widget.NewEntry()
	s.provName.SetPlaceHolder("Name, e.g. openai")
	s.provKind = widget.NewSelect([]string{"openai", "anthropic"}, nil)
	s.provKind.SetSelected("openai")
	s.provURL = widget.NewEntry()
	s.provURL.SetPlaceHolder("Base URL, e.g. https://api.openai.com/v1")
	s.provEnv = widget.NewEntry()
	s.provEnv.SetPlaceHolder("Or an environment variable holding it, e.g. OPENAI_API_KEY")
	s.provKey = widget.NewPasswordEntry()
	s.provKey.SetPlaceHolder("API key (optional; kept in the system keyring, never in the database)")
	s.lock = unlock.New("No system keyring runs here, so API keys are kept in an encrypted file. Enter its passphrase (a new one for a new file) to store or use keys.",
		"Passphrase of the secrets file", s.unlock)
	s.provModels = widget.NewEntry()
	s.provModels.SetPlaceHolder("Models, comma-separated (optional: the provider lists its own)")
	s.addBtn = widget.NewButtonWithIcon(AddLabel, theme.ContentAddIcon(), s.addProvider)
	s.provMsg = note.New()
	form := container.New(layout.NewFormLayout(),
		widget.NewLabel("Name"), s.provName,
		widget.NewLabel("Kind"), s.provKind,
		widget.NewLabel("Base URL"), s.provURL,
		widget.NewLabel("API key"), s.provKey,
		widget.NewLabel("Key variable"), s.provEnv,
		widget.NewLabel("Models"), s.provModels)
	provCard := widget.NewCard("Providers", "", container.NewVBox(s.lock.Box, s.provList, widget.NewSeparator(), form,
		container.NewBorder(nil, nil, s.addBtn, nil, s.provMsg)))

	// The battle form.
	s.modelPick = widget.NewCheckGroup(nil, func([]string) { s.refreshAsk() })
	s.modelPick.Horizontal = true
	s.reloadBtn = widget.NewButtonWithIcon(ReloadLabel, theme.ViewRefreshIcon(), s.loadModels)
	s.reloadBtn.Importance = widget.LowImportance
	s.prompt = widget.NewMultiLineEntry()
	s.prompt.SetPlaceHolder("Your question to every model")
	s.prompt.Wrapping = fyne.TextWrapWord
	s.prompt.SetMinRowsVisible(3)
	s.prompt.OnChanged = func(string) { s.refreshAsk() }
	s.blind = widget.NewCheck("Blind: hide which model wrote which answer until I vote", nil)
	s.blind.SetChecked(true)
	s.askBtn = widget.NewButtonWithIcon(AskLabel, theme.MailSendIcon(), s.ask)
	s.askBtn.Importance = widget.HighImportance
	s.askMsg = note.New()
	pickHint := widget.NewLabel("Pick two to four models.")
	pickHint.SizeName = theme.SizeNameCaptionText
	askCard := widget.NewCard("Ask", "", container.NewVBox(
		container.NewBorder(nil, nil, nil, s.reloadBtn, pickHint), s.modelPick,
		s.prompt, s.blind, container.NewBorder(nil, nil, s.askBtn, nil, s.askMsg)))

	// The battle card, filled when a battle starts.
	s.columns = container.NewGridWithColumns(2)
	s.stopBtn = widget.NewButtonWithIcon(StopLabel, theme.MediaStopIcon(), s.stop)
	s.followUp = widget.NewEntry()
	s.followUp.SetPlaceHolder("Follow-up question to every model")
	s.followUp.OnSubmitted = func(string) { s.sendFollowUp() }
	s.sendBtn = widget.NewButtonWithIcon(SendLabel, theme.MailReplyIcon(), s.sendFollowUp)
	s.voteRow = container.NewHBox()
	s.reason = widget.NewEntry()
	s.reason.SetPlaceHolder("Why (optional)")
	s.result = widget.NewLabel("")
	s.result.Wrapping = fyne.TextWrapWord
	s.result.Hide()
	s.battleMsg = note.New()
	s.card = widget.NewCard("Battle", "", container.NewVBox(
		s.columns,
		container.NewBorder(nil, nil, nil, container.NewHBox(s.sendBtn, s.stopBtn), s.followUp),
		container.NewBorder(nil, nil, s.voteRow, nil, s.reason),
		s.result, s.battleMsg))
	s.battleBox = container.NewVBox()

	// The history.
	s.history = container.NewVBox()
	s.historyMsg = note.New()
	historyCard := widget.NewCard("History", "", container.NewVBox(s.history, s.historyMsg))

	// The leaderboard and the exports.
	s.board = container.NewVBox()
	s.boardNote = widget.NewLabel("")
	s.boardNote.Wrapping = fyne.TextWrapWord
	s.boardNote.SizeName = theme.SizeNameCaptionText
	boardCard := widget.NewCard("Leaderboard", "", container.NewVBox(s.board, s.boardNote))
	s.lowQual = widget.NewCheck("Include battles below the quality threshold", nil)
	s.exportMsg = note.New()
	exportCard := widget.NewCard("Export", "", container.NewVBox(
		container.NewHBox(
			widget.NewButtonWithIcon(ExportArenaText, theme.DocumentSaveIcon(), func() { s.exportDialog(core.ExportArena) }),
			widget.NewButtonWithIcon(ExportDPOText, theme.DocumentSaveIcon(), func() { s.exportDialog(core.ExportDPO) })),
		s.lowQual, s.exportMsg))

	s.content = page.Frame(sec, provCard, askCard, s.battleBox, historyCard, boardCard, exportCard)

	s.Reload()
	return s
}

// Content is the page's root object.
func (s *Screen) Content() fyne.CanvasObject { return s.content }

// Close waits for the page's goroutines; cancel ctx first.
func (s *Screen) Close() { s.wg.Wait() }

// Reload reads the providers and the leaderboard from the core again (stored data, read
// at once) and asks the providers for their models (on a goroutine).
func (s *Screen) Reload() {
	ps, err := s.c.Providers(s.ctx)
	if err != nil {
		note.Set(s.provMsg, err.Error(), widget.DangerImportance)
	} else {
		s.showProviders(ps)
	}
	s.showLock()
	s.loadLeaderboard()
	s.loadHistory()
	if len(s.providers) > 0 {
		s.loadModels()
	} else {
		s.showModels(nil)
	}
	s.refreshAsk()
}

func (s *Screen) showProviders(ps []core.ProviderInfo) {
	s.providers = ps
	s.provList.RemoveAll()
	if len(ps) == 0 {
		l := widget.NewLabel("No providers yet. Add an OpenAI-compatible server or Anthropic below.")
		l.Wrapping = fyne.TextWrapWord
		s.provList.Add(l)
		return
	}
	for _, p := range ps {
		key := p.KeyState()
		text := fmt.Sprintf("%s · %s · %s · %s", p.Name, p.Kind, p.BaseURL, key)
		if len(p.Models) > 0 {
			text += " · " + strings.Join(p.Models, ", ")
		}
		l := widget.NewLabel(text)
		l.Wrapping = fyne.TextWrapBreak
		name := p.Name
		rm := widget.NewButtonWithIcon(RemoveLabel, theme.DeleteIcon(), func() { s.removeProvider(name) })
		rm.Importance = widget.LowImportance
		kb := widget.NewButtonWithIcon(KeyLabel, theme.AccountIcon(), func() { s.keyDialog(name) })
		kb.Importance = widget.LowImportance
		s.provList.Add(container.NewBorder(nil, nil, nil, container.NewHBox(kb, rm), l))
	}
}

func (s *Screen) addProvider() {
	var models []string
	for _, m := range strings.FieldsFunc(s.provModels.Text, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' }) {
		models = append(models, m)
	}
	in := core.ProviderInput{Name: s.provName.Text, Kind: s.provKind.Selected, BaseURL: s.provURL.Text,
		APIKeyEnv: s.provEnv.Text, APIKey: strings.TrimSpace(s.provKey.Text), Models: models}
	s.addBtn.Disable()
	s.wg.Go(func() {
		p, err := s.c.AddProvider(s.ctx, in)
		var ps []core.ProviderInfo
		if err == nil {
			ps, err = s.c.Providers(s.ctx)
		}
		s.do(func() {
			s.addBtn.Enable()
			if err != nil {
				note.Set(s.provMsg, err.Error(), widget.DangerImportance)
				return
			}
			note.Set(s.provMsg, "Added "+p.Name+".", widget.SuccessImportance)
			s.provName.SetText("")
			s.provURL.SetText("")
			s.provEnv.SetText("")
			s.provKey.SetText("")
			s.provModels.SetText("")
			s.showProviders(ps)
			s.loadModels()
		})
	})
}

// showLock shows the passphrase row while the secrets file is locked.
func (s *Screen) showLock() {
	if s.c.Secrets(s.ctx).Locked {
		s.lock.Box.Show()
	} else {
		s.lock.Box.Hide()
	}
}

// unlock gives the core the passphrase typed in.
func (s *Screen) unlock(pass string) {
	s.wg.Go(func() {
		err := s.c.UnlockSecrets(s.ctx, pass)
		ps, lerr := s.c.Providers(s.ctx)
		s.do(func() {
			if !s.lock.Done(err) {
				return
			}
			s.showLock()
			if lerr == nil {
				s.showProviders(ps)
			}
			note.Set(s.provMsg, "Secrets unlocked.", widget.SuccessImportance)
		})
	})
}

// keyDialog asks for a provider's new API key (empty deletes the stored one).
func (s *Screen) keyDialog(name string) {
	entry := widget.NewPasswordEntry()
	entry.SetPlaceHolder("empty deletes the stored key")
	dialog.ShowForm("API key of "+name, "Save", "Cancel",
		[]*widget.FormItem{widget.NewFormItem("Key", entry)}, func(ok bool) {
			if ok {
				s.SetKey(name, entry.Text)
			}
		}, s.w)
}

// SetKey stores (or, when empty, deletes) a provider's API key, as the key dialog does.
func (s *Screen) SetKey(name, key string) {
	s.wg.Go(func() {
		err := s.c.SetProviderKey(s.ctx, name, key)
		ps, lerr := s.c.Providers(s.ctx)
		s.do(func() {
			if err != nil {
				note.Set(s.provMsg, err.Error(), widget.DangerImportance)
			} else if strings.TrimSpace(key) == "" {
				note.Set(s.provMsg, "Deleted the stored key of "+name+".", widget.MediumImportance)
			} else {
				note.Set(s.provMsg, "Stored the key of "+name+".", widget.SuccessImportance)
			}
			s.showLock()
			if lerr == nil {
				s.showProviders(ps)
			}
			s.loadModels()
		})
	})
}

// loadHistory lists the latest battles (stored: read at once).
func (s *Screen) loadHistory() {
	bs, err := s.c.Battles(s.ctx, historyLimit)
	s.history.RemoveAll()
	if err != nil {
		note.Set(s.historyMsg, err.Error(), widget.DangerImportance)
		return
	}
	s.historyMsg.Hide()
	if len(bs) == 0 {
		s.history.Add(widget.NewLabel("No battles yet."))
		return
	}
	for _, b := range bs {
		prompt := ""
		if len(b.Prompts) > 0 {
			prompt = b.Prompts[0]
		}
		if r := []rune(prompt); len(r) > 80 {
			prompt = string(r[:79]) + "…"
		}
		state := "no vote"
		switch {
		case b.Running:
			state = "answering"
		case b.Vote != nil:
			state = voteText(b.Vote)
		}
		if b.Quality != nil && !b.Quality.Passes {
			state += " · low quality"
		}
		l := widget.NewLabel(fmt.Sprintf("%s · %s · %d models · %s", b.Created.Local().Format("2 Jan 15:04"), prompt, len(b.Columns), state))
		l.Wrapping = fyne.TextWrapWord
		id := b.ID
		open := widget.NewButton(OpenLabel, func() { s.OpenBattle(id) })
		open.Importance = widget.LowImportance
		s.history.Add(container.NewBorder(nil, nil, nil, open, l))
	}
}

// OpenBattle shows a battle of the history, with its answers, and its vote if it has one.
func (s *Screen) OpenBattle(id string) {
	s.wg.Go(func() {
		info, err := s.c.Battle(s.ctx, id)
		s.do(func() {
			if err != nil {
				note.Set(s.historyMsg, err.Error(), widget.DangerImportance)
				return
			}
			s.showBattle(info)
			if info.Vote != nil {
				s.battle.voted = true
				s.showResult(voteText(info.Vote), info.Quality)
				s.refreshBattle()
			}
		})
	})
}

func (s *Screen) removeProvider(name string) {
	s.wg.Go(func() {
		err := s.c.RemoveProvider(s.ctx, name)
		ps, lerr := s.c.Providers(s.ctx)
		s.do(func() {
			if err != nil {
				note.Set(s.provMsg, err.Error(), widget.DangerImportance)
			} else {
				note.Set(s.provMsg, "Removed "+name+".", widget.MediumImportance)
			}
			if lerr == nil {
				s.showProviders(ps)
			}
			s.loadModels()
		})
	})
}

// loadModels asks the providers for their models and shows them to pick from.
func (s *Screen) loadModels() {
	s.modelsLoads++
	n := s.modelsLoads
	s.reloadBtn.Disable()
	s.wg.Go(func() {
		pms, err := s.c.ChatModels(s.ctx)
		s.do(func() {
			if n != s.modelsLoads {
				return
			}
			s.reloadBtn.Enable()
			if err != nil {
				note.Set(s.askMsg, err.Error(), widget.DangerImportance)
				return
			}
			s.showModels(pms)
		})
	})
}

func (s *Screen) showModels(pms []core.ProviderModels) {
	var opts, problems []string
	for _, pm := range pms {
		opts = append(opts, pm.Models...)
		if pm.Error != "" {
			problems = append(problems, pm.Provider+": "+pm.Error)
		}
	}
	var keep []string
	for _, m := range s.modelPick.Selected {
		if slices.Contains(opts, m) {
			keep = append(keep, m)
		}
	}
	s.modelPick.Options = opts
	s.modelPick.Selected = keep
	s.modelPick.Refresh()
	switch {
	case len(problems) > 0:
		note.Set(s.askMsg, "Could not list the models of "+strings.Join(problems, "; "), widget.WarningImportance)
	case len(opts) == 0:
		note.Set(s.askMsg, "No models to pick from: add a provider first.", widget.MediumImportance)
	default:
		s.askMsg.Hide()
	}
	s.refreshAsk()
}

// refreshAsk enables Ask when two to four models are picked, there is a prompt and no
// battle streams.
func (s *Screen) refreshAsk() {
	n := len(s.modelPick.Selected)
	busy := s.pending || (s.battle != nil && s.battle.running)
	page.SetEnabled(s.askBtn, n >= 2 && n <= 4 && strings.TrimSpace(s.prompt.Text) != "" && !busy)
}

func (s *Screen) ask() {
	in := core.BattleInput{Models: slices.Clone(s.modelPick.Selected), Prompt: s.prompt.Text, Blind: s.blind.Checked}
	s.pending = true
	s.buffered = nil
	s.refreshAsk()
	s.wg.Go(func() {
		info, err := s.c.StartBattle(s.ctx, in)
		s.do(func() {
			s.pending = false
			evs := s.buffered
			s.buffered = nil
			if err != nil {
				note.Set(s.askMsg, err.Error(), widget.DangerImportance)
				s.refreshAsk()
				return
			}
			s.askMsg.Hide()
			s.showBattle(info)
			for _, e := range evs {
				s.ApplyChat(e)
			}
			s.refreshAsk()
		})
	})
}

// showBattle shows a battle that has just started.
func (s *Screen) showBattle(info core.BattleInfo) {
	b := &battleView{id: info.ID, blind: info.Blind, running: info.Running, prompts: slices.Clone(info.Prompts)}
	s.columns.RemoveAll()
	s.columns.Layout = layout.NewGridLayoutWithColumns(max(len(info.Columns), 1))
	s.voteRow.RemoveAll()
	s.voteBtns = map[string]*widget.Button{}
	for _, ci := range info.Columns {
		col := &column{name: ci.Column, model: ci.Model}
		for _, a := range ci.Answers {
			col.answers = append(col.answers, a.Text)
		}
		col.title = widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
		col.text = widget.NewLabel("")
		col.text.Wrapping = fyne.TextWrapWord
		col.status = widget.NewLabel("")
		col.status.Wrapping = fyne.TextWrapWord
		col.status.SizeName = theme.SizeNameCaptionText
		col.status.Hide()
		name := ci.Column
		col.regen = widget.NewButtonWithIcon(RegenLabel, theme.ViewRefreshIcon(), func() { s.regenerate(name) })
		col.regen.Importance = widget.LowImportance
		b.cols = append(b.cols, col)
		s.columns.Add(container.NewVBox(container.NewBorder(nil, nil, nil, col.regen, col.title), col.text, col.status))
		vb := widget.NewButton(VoteLabel(name), func() { s.vote(name) })
		s.voteBtns[name] = vb
		s.voteRow.Add(vb)
	}
	s.voteBtns["tie"] = widget.NewButton(TieLabel, func() { s.vote("tie") })
	s.voteBtns["bad"] = widget.NewButton(BadLabel, func() { s.vote("bad") })
	s.voteRow.Add(s.voteBtns["tie"])
	s.voteRow.Add(s.voteBtns["bad"])
	s.battle = b
	s.reason.SetText("")
	s.followUp.SetText("")
	s.result.Hide()
	s.battleMsg.Hide()
	for _, col := range b.cols {
		s.showColumn(col)
	}
	if len(s.battleBox.Objects) == 0 {
		s.battleBox.Add(s.card)
	}
	s.refreshBattle()
}

func (s *Screen) showColumn(col *column) {
	t := "Model " + col.name
	if col.model != "" {
		t += " · " + col.model
	}
	col.title.SetText(t)
	var parts []string
	for i, a := range col.answers {
		if len(s.battle.prompts) > 1 && i < len(s.battle.prompts) {
			parts = append(parts, "› "+s.battle.prompts[i])
		}
		parts = append(parts, a)
	}
	col.text.SetText(strings.Join(parts, "\n\n"))
}

// refreshBattle enables the battle's buttons for its state: votes, follow-ups and
// regeneration once it has ended and until it has a vote; Stop while it streams.
func (s *Screen) refreshBattle() {
	b := s.battle
	if b == nil {
		return
	}
	idle := !b.running && !b.voted
	for _, vb := range s.voteBtns {
		page.SetEnabled(vb, idle)
	}
	page.SetEnabled(s.reason, idle)
	page.SetEnabled(s.followUp, idle)
	page.SetEnabled(s.sendBtn, idle)
	page.SetEnabled(s.stopBtn, b.running)
	for _, col := range b.cols {
		page.SetEnabled(col.regen, idle)
	}
}

func (s *Screen) column(name string) *column {
	if s.battle == nil {
		return nil
	}
	for _, col := range s.battle.cols {
		if col.name == name {
			return col
		}
	}
	return nil
}

// ApplyChat shows a chat event of the battle on the page.
func (s *Screen) ApplyChat(e core.ChatEvent) {
	if e.Kind == core.ChatEnd || e.Kind == core.ChatVoted {
		defer s.loadHistory()
	}
	if s.pending {
		s.buffered = append(s.buffered, e)
		return
	}
	b := s.battle
	if b == nil || e.Battle != b.id {
		return
	}
	col := s.column(e.Column)
	switch e.Kind {
	case core.ChatStart:
		if col == nil {
			return
		}
		b.running = true
		for len(col.answers) <= e.Turn {
			col.answers = append(col.answers, "")
		}
		col.answers[e.Turn] = ""
		if e.Model != "" {
			col.model = e.Model
		}
		col.status.Hide()
		s.showColumn(col)
	case core.ChatDelta:
		if col == nil {
			return
		}
		for len(col.answers) <= e.Turn {
			col.answers = append(col.answers, "")
		}
		col.answers[e.Turn] += e.Text
		s.showColumn(col)
	case core.ChatDone:
		if col != nil {
			note.Set(col.status, statsText(e), widget.LowImportance)
		}
	case core.ChatError:
		if col != nil {
			note.Set(col.status, e.Error, widget.DangerImportance)
		}
	case core.ChatEnd:
		b.running = false
		if e.Error != "" {
			note.Set(s.battleMsg, e.Error, widget.DangerImportance)
		} else if !b.voted {
			note.Set(s.battleMsg, "Every answer is in: vote for the best one.", widget.MediumImportance)
		}
		s.reveal(e.Models)
		s.refreshAsk()
	case core.ChatVoted:
		b.voted = true
		s.reveal(e.Models)
		s.showResult("", e.Quality)
	}
	s.refreshBattle()
}

func statsText(e core.ChatEvent) string {
	t := fmt.Sprintf("First token after %d ms", e.TTFTMillis)
	if e.TokensPerSec > 0 {
		t += fmt.Sprintf(" · %.1f tokens/s", e.TokensPerSec)
	}
	if e.Tokens > 0 {
		t += fmt.Sprintf(" · %d tokens", e.Tokens)
	}
	return t
}

// reveal names the columns' models.
func (s *Screen) reveal(models map[string]string) {
	for name, m := range models {
		if col := s.column(name); col != nil && m != "" {
			col.model = m
			s.showColumn(col)
		}
	}
}

func (s *Screen) stop() {
	b := s.battle
	if b == nil || !b.running {
		return
	}
	s.stopBtn.Disable()
	id := b.id
	s.wg.Go(func() {
		err := s.c.StopBattle(id)
		s.do(func() {
			if err != nil {
				note.Set(s.battleMsg, err.Error(), widget.DangerImportance)
			}
		})
	})
}

func (s *Screen) sendFollowUp() {
	b := s.battle
	prompt := strings.TrimSpace(s.followUp.Text)
	if b == nil || b.running || b.voted || prompt == "" {
		return
	}
	b.running = true
	b.prompts = append(b.prompts, prompt)
	s.followUp.SetText("")
	s.refreshBattle()
	s.run(func() (core.BattleInfo, error) { return s.c.ContinueBattle(s.ctx, b.id, prompt) }, func() {
		b.prompts = b.prompts[:len(b.prompts)-1]
	})
}

func (s *Screen) regenerate(name string) {
	b := s.battle
	if b == nil || b.running || b.voted {
		return
	}
	b.running = true
	s.refreshBattle()
	s.run(func() (core.BattleInfo, error) { return s.c.RegenerateColumn(s.ctx, b.id, name) }, nil)
}

// run makes a call that streams the battle again; undo runs when it is refused.
func (s *Screen) run(call func() (core.BattleInfo, error), undo func()) {
	b := s.battle
	s.wg.Go(func() {
		_, err := call()
		s.do(func() {
			if err != nil {
				if undo != nil {
					undo()
				}
				b.running = false
				note.Set(s.battleMsg, err.Error(), widget.DangerImportance)
				s.refreshBattle()
			}
		})
	})
	s.battleMsg.Hide()
	s.refreshAsk()
}

func (s *Screen) vote(outcome string) {
	b := s.battle
	if b == nil || b.running || b.voted {
		return
	}
	in := core.VoteInput{Outcome: outcome, Reason: strings.TrimSpace(s.reason.Text)}
	for _, vb := range s.voteBtns {
		vb.Disable()
	}
	id := b.id
	s.wg.Go(func() {
		info, err := s.c.Vote(s.ctx, id, in)
		s.do(func() {
			if err != nil {
				note.Set(s.battleMsg, err.Error(), widget.DangerImportance)
				s.refreshBattle()
				return
			}
			if s.battle != b {
				return
			}
			b.voted = true
			models := map[string]string{}
			for _, ci := range info.Columns {
				models[ci.Column] = ci.Model
			}
			s.reveal(models)
			s.showResult(voteText(info.Vote), info.Quality)
			s.battleMsg.Hide()
			s.refreshBattle()
			s.loadLeaderboard()
		})
	})
}

func voteText(v *core.VoteInfo) string {
	if v == nil {
		return ""
	}
	var t string
	switch v.Outcome {
	case "tie":
		t = "You voted: a tie."
	case "bad":
		t = "You voted: all bad."
	default:
		t = "You voted: " + v.Outcome + " is best."
	}
	if v.Reason != "" {
		t += " Why: " + v.Reason
	}
	return t
}

// showResult shows the vote and the battle's quality score with its reasons.
func (s *Screen) showResult(vote string, q *core.QualityInfo) {
	var lines []string
	if vote != "" {
		lines = append(lines, vote)
	} else if s.result.Visible() {
		return // the vote's own answer is shown already
	}
	if q != nil {
		verdict := "counts on the leaderboard and is exported"
		if !q.Passes {
			verdict = "is below the threshold: left off the leaderboard and the exports"
		}
		lines = append(lines, fmt.Sprintf("Quality %.2f (threshold %.2f): %s.", q.Score, q.Threshold, verdict))
		for _, r := range q.Reasons {
			lines = append(lines, fmt.Sprintf("− %.2f %s: %s", r.Penalty, r.Signal, r.Detail))
		}
	}
	s.result.SetText(strings.Join(lines, "\n"))
	s.result.Show()
}

// loadLeaderboard reads the leaderboard (stored votes: read at once) and shows it.
func (s *Screen) loadLeaderboard() {
	lb, err := s.c.Leaderboard(s.ctx)
	s.board.RemoveAll()
	if err != nil {
		note.Set(s.boardNote, err.Error(), widget.DangerImportance)
		return
	}
	s.boardNote.Importance = widget.MediumImportance
	if len(lb.Ratings) == 0 {
		s.boardNote.SetText("No votes counted yet: ratings appear after your first vote.")
		s.boardNote.Show()
		return
	}
	bold := func(t string) fyne.CanvasObject {
		return widget.NewLabelWithStyle(t, fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	}
	grid := container.NewGridWithColumns(5, bold("Model"), bold("Rating"), bold("95% interval"), bold("Games"), bold("Won · tied · lost"))
	for _, r := range lb.Ratings {
		grid.Add(widget.NewLabel(r.Model))
		grid.Add(widget.NewLabel(fmt.Sprintf("%.0f", r.Rating)))
		grid.Add(widget.NewLabel(fmt.Sprintf("%.0f – %.0f", r.Lower, r.Upper)))
		grid.Add(widget.NewLabel(fmt.Sprint(r.Games)))
		grid.Add(widget.NewLabel(fmt.Sprintf("%d · %d · %d", r.Wins, r.Ties, r.Losses)))
	}
	s.board.Add(grid)
	s.boardNote.SetText(fmt.Sprintf("%d voted battles counted; %d left out below the quality threshold %.2f.",
		lb.Battles, lb.Excluded, lb.Threshold))
	s.boardNote.Show()
}

// exportDialog asks where to save an export.
func (s *Screen) exportDialog(format string) {
	d := dialog.NewFileSave(func(wc fyne.URIWriteCloser, err error) {
		if err != nil {
			note.Set(s.exportMsg, err.Error(), widget.DangerImportance)
			return
		}
		if wc != nil {
			s.Export(format, wc)
		}
	}, s.w)
	d.SetFileName("gata-chat-" + format + ".jsonl")
	d.Show()
}

// Export writes the voted battles in the format to wc (what the save dialog chose) on a
// goroutine, closes it and says how many records it wrote.
func (s *Screen) Export(format string, wc fyne.URIWriteCloser) {
	low := s.lowQual.Checked
	note.Set(s.exportMsg, "Exporting…", widget.MediumImportance)
	s.wg.Go(func() {
		n, err := s.c.ExportChat(s.ctx, format, wc, low)
		if cerr := wc.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("export chat: %w", cerr)
		}
		s.do(func() {
			if err != nil {
				note.Set(s.exportMsg, err.Error(), widget.DangerImportance)
				return
			}
			note.Set(s.exportMsg, fmt.Sprintf("Wrote %d records to %s.", n, wc.URI().Name()), widget.SuccessImportance)
		})
	})
}
