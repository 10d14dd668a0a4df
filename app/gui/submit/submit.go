// Package submit is the Submit section of the desktop window: the wallet (create with its
// words shown once and three typed back, import, export behind an explicit
// confirmation), a form that signs and queues what was not submitted yet (or writes a dry
// run to a folder), a form that verifies a submission, and the submissions with their
// upload state. Every action is one call of the core, made off the UI goroutine.
package submit

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/gata-contrib/gata/app/core"
	"github.com/gata-contrib/gata/app/gui/coming"
	"github.com/gata-contrib/gata/app/gui/internal/note"
)

// Core is what the page needs from the service layer; *core.Core satisfies it.
type Core interface {
	WalletStatus(ctx context.Context) (core.WalletInfo, error)
	CreateWallet(ctx context.Context) (core.NewWallet, error)
	ConfirmWallet(ctx context.Context, words map[int]string) (core.WalletInfo, error)
	ImportWallet(ctx context.Context, in core.WalletImport) (core.WalletInfo, error)
	ExportWallet(ctx context.Context, in core.WalletExport) (string, error)
	Submit(ctx context.Context, kind string, opts core.SubmitOptions) (core.SubmitResult, error)
	Submissions(ctx context.Context, limit int) ([]core.SubmitResult, error)
	Verify(ctx context.Context, manifestPath, jsonlPath string) (core.VerifyResult, error)
	Outbox(ctx context.Context) ([]core.UploadItem, error)
	Secrets(ctx context.Context) core.SecretsInfo
	UnlockSecrets(ctx context.Context, passphrase string) error
}

// Labels of the page's buttons and choices (tests find them by these).
const (
	CreateLabel  = "Create a wallet"
	SaveLabel    = "Save the wallet"
	ImportLabel  = "Import"
	ExportLabel  = "Show the private key"
	HideLabel    = "Hide"
	UnlockLabel  = "Unlock"
	SubmitLabel  = "Sign and submit"
	VerifyLabel  = "Verify"
	KindChatText = "Chat votes (battles above the quality floor)"
	KindDVAText  = "DVA scores (finished runs)"
)

// listLimit is how many submissions the page lists.
const listLimit = 50

// Screen is the Submit page. Its methods must be called on the Fyne UI goroutine; the
// work it starts runs on goroutines of its own that hand their results to do.
type Screen struct {
	ctx context.Context
	c   Core
	w   fyne.Window
	do  func(func())
	wg  sync.WaitGroup

	// The wallet card.
	walletInfo *widget.Label
	unlockBox  *fyne.Container
	passEntry  *widget.Entry
	unlockMsg  *widget.Label
	newBox     *fyne.Container // create and import, while there is no wallet
	createBtn  *widget.Button
	words      *fyne.Container // the new wallet's words, shown once
	confirmBox *fyne.Container
	confirm    map[int]*widget.Entry
	saveBtn    *widget.Button
	importKey  *widget.Entry
	importBtn  *widget.Button
	exportBox  *fyne.Container // export, while there is a wallet
	exportOK   *widget.Check
	exportBtn  *widget.Button
	exported   *widget.Entry // the key, until Hide
	hideBtn    *widget.Button
	walletMsg  *widget.Label

	// The submit form.
	kind   *widget.RadioGroup
	dryRun *widget.Check
	outDir *widget.Entry
	submit *widget.Button
	result *widget.Label

	// The verify form.
	manifest  *widget.Entry
	jsonl     *widget.Entry
	verifyBtn *widget.Button
	verified  *widget.Label

	// The submissions.
	list    *fyne.Container
	listMsg *widget.Label

	content fyne.CanvasObject
}

// New builds the page (titled after its section) from the core's wallet and
// submissions. ctx bounds the core calls; w is the window; do runs a function on the UI
// goroutine. Call Close once ctx has ended.
func New(ctx context.Context, sec core.Section, c Core, w fyne.Window, do func(func())) *Screen {
	s := &Screen{ctx: ctx, c: c, w: w, do: do, confirm: map[int]*widget.Entry{}}

	// The wallet.
	s.walletInfo = widget.NewLabel("")
	s.walletInfo.Wrapping = fyne.TextWrapWord
	s.passEntry = widget.NewPasswordEntry()
	s.passEntry.SetPlaceHolder("Passphrase")
	s.passEntry.OnSubmitted = func(string) { s.unlock() }
	s.unlockMsg = note.New()
	lockNote := widget.NewLabel("No system keyring runs here, so the key is kept in an encrypted keystore file. Enter its passphrase (a new one for a new file).")
	lockNote.Wrapping = fyne.TextWrapWord
	s.unlockBox = container.NewVBox(lockNote,
		container.NewBorder(nil, nil, nil, widget.NewButtonWithIcon(UnlockLabel, theme.LoginIcon(), s.unlock), s.passEntry), s.unlockMsg)
	s.unlockBox.Hide()
	s.createBtn = widget.NewButtonWithIcon(CreateLabel, theme.ContentAddIcon(), s.create)
	s.createBtn.Importance = widget.HighImportance
	s.words = container.NewGridWithColumns(4)
	s.words.Hide()
	s.saveBtn = widget.NewButtonWithIcon(SaveLabel, theme.DocumentSaveIcon(), s.save)
	s.confirmBox = container.NewVBox()
	s.confirmBox.Hide()
	s.importKey = widget.NewPasswordEntry()
	s.importKey.SetPlaceHolder("12 to 24 words, or a hex private key")
	s.importBtn = widget.NewButtonWithIcon(ImportLabel, theme.DownloadIcon(), s.importWallet)
	s.newBox = container.NewVBox(s.createBtn, s.words, s.confirmBox, widget.NewSeparator(),
		widget.NewLabel("Or import the wallet you have:"), container.NewBorder(nil, nil, nil, s.importBtn, s.importKey))
	s.exportOK = widget.NewCheck("I understand: whoever has the private key owns the wallet", func(on bool) { setEnabled(s.exportBtn, on) })
	s.exportBtn = widget.NewButtonWithIcon(ExportLabel, theme.VisibilityIcon(), s.export)
	s.exportBtn.Disable()
	s.exported = widget.NewEntry()
	s.exported.Disable()
	s.exported.Hide()
	s.hideBtn = widget.NewButtonWithIcon(HideLabel, theme.VisibilityOffIcon(), s.hideKey)
	s.hideBtn.Hide()
	s.exportBox = container.NewVBox(s.exportOK, container.NewBorder(nil, nil, s.exportBtn, s.hideBtn, s.exported))
	s.walletMsg = note.New()
	walletCard := widget.NewCard("Wallet", "", container.NewVBox(s.walletInfo, s.unlockBox, s.newBox, s.exportBox, s.walletMsg))

	// The submit form.
	s.kind = widget.NewRadioGroup([]string{KindChatText, KindDVAText}, nil)
	s.kind.SetSelected(KindChatText)
	s.kind.Required = true
	s.outDir = widget.NewEntry()
	s.outDir.SetPlaceHolder("Folder for a dry run")
	s.outDir.Disable()
	s.dryRun = widget.NewCheck("Dry run: only write the two files to a folder", func(on bool) { setEnabled(s.outDir, on) })
	s.submit = widget.NewButtonWithIcon(SubmitLabel, theme.UploadIcon(), s.doSubmit)
	s.submit.Importance = widget.HighImportance
	s.result = note.New()
	intro := widget.NewLabel("Packs what you made and did not submit yet, signs it with your wallet and queues it for upload to BNB Greenfield.")
	intro.Wrapping = fyne.TextWrapWord
	submitCard := widget.NewCard("Submit", "", container.NewVBox(intro, s.kind, s.dryRun, s.outDir, s.submit, s.result))

	// The verify form.
	s.manifest = widget.NewEntry()
	s.manifest.SetPlaceHolder("/path/to/<sha256>.manifest.json")
	s.jsonl = widget.NewEntry()
	s.jsonl.SetPlaceHolder("beside the manifest")
	s.verifyBtn = widget.NewButtonWithIcon(VerifyLabel, theme.ConfirmIcon(), s.verify)
	s.verified = note.New()
	verifyCard := widget.NewCard("Verify a submission", "", container.NewVBox(
		container.New(layout.NewFormLayout(), widget.NewLabel("Manifest"), s.manifest, widget.NewLabel("JSONL"), s.jsonl),
		s.verifyBtn, s.verified))

	// The submissions.
	s.list = container.NewVBox()
	s.listMsg = note.New()
	listCard := widget.NewCard("Submissions", "", container.NewVBox(s.list, s.listMsg))

	title := widget.NewRichText(&widget.TextSegment{Text: sec.Title, Style: widget.RichTextStyleHeading})
	summary := widget.NewLabel(sec.Summary)
	summary.Wrapping = fyne.TextWrapWord
	items := []fyne.CanvasObject{title, summary, walletCard, submitCard, verifyCard, listCard}
	if len(sec.Coming) > 0 {
		items = append(items, coming.Card(coming.NotePartial, sec.Coming))
	}
	s.content = container.NewVScroll(container.NewPadded(container.NewVBox(items...)))
	s.Reload()
	return s
}

// Content is the page's root object.
func (s *Screen) Content() fyne.CanvasObject { return s.content }

// Close waits for the page's goroutines; cancel ctx first.
func (s *Screen) Close() { s.wg.Wait() }

func (s *Screen) goWork(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

func setEnabled(b fyne.Disableable, on bool) {
	if on {
		b.Enable()
	} else {
		b.Disable()
	}
}

// Reload reads the wallet and the submissions from the core again (stored data, read at
// once).
func (s *Screen) Reload() {
	s.showWallet()
	s.showList()
}

// ApplySubmissions refreshes the submissions after a submission or upload event.
func (s *Screen) ApplySubmissions() { s.showList() }

func (s *Screen) showWallet() {
	info, err := s.c.WalletStatus(s.ctx)
	if err != nil {
		note.Set(s.walletMsg, err.Error(), widget.DangerImportance)
		return
	}
	where := info.Where
	if info.Path != "" {
		where += " " + info.Path
	}
	if info.Exists {
		s.walletInfo.SetText(fmt.Sprintf("Address %s\nKey kept in the %s", info.Address, where))
		s.newBox.Hide()
		s.exportBox.Show()
	} else {
		s.walletInfo.SetText("No wallet yet. Create one (24 words you write down) or import the words or key of one you have. It will be kept in the " + info.Where + ".")
		s.newBox.Show()
		s.exportBox.Hide()
	}
	if info.Locked {
		s.unlockBox.Show()
	} else {
		s.unlockBox.Hide()
	}
}

func (s *Screen) unlock() {
	pass := s.passEntry.Text
	s.goWork(func() {
		err := s.c.UnlockSecrets(s.ctx, pass)
		s.do(func() {
			if err != nil {
				note.Set(s.unlockMsg, err.Error(), widget.DangerImportance)
				return
			}
			s.passEntry.SetText("")
			s.unlockMsg.Hide()
			s.showWallet()
		})
	})
}

// create shows the new wallet's words once and asks three of them back.
func (s *Screen) create() {
	s.createBtn.Disable()
	s.goWork(func() {
		nw, err := s.c.CreateWallet(s.ctx)
		s.do(func() {
			s.createBtn.Enable()
			if err != nil {
				note.Set(s.walletMsg, err.Error(), widget.DangerImportance)
				return
			}
			s.words.RemoveAll()
			for i, w := range nw.Words {
				s.words.Add(widget.NewLabel(fmt.Sprintf("%d. %s", i+1, w)))
			}
			s.words.Show()
			s.confirmBox.RemoveAll()
			hint := widget.NewLabel(fmt.Sprintf("Your new wallet %s. Write the words down, in order, and keep them offline: whoever has them owns the wallet. They are shown only now. Type these three back to save it:", nw.Address))
			hint.Wrapping = fyne.TextWrapWord
			s.confirmBox.Add(hint)
			form := container.New(layout.NewFormLayout())
			s.confirm = map[int]*widget.Entry{}
			for _, p := range nw.Confirm {
				e := widget.NewEntry()
				s.confirm[p] = e
				form.Add(widget.NewLabel("Word " + strconv.Itoa(p)))
				form.Add(e)
			}
			s.confirmBox.Add(form)
			s.confirmBox.Add(s.saveBtn)
			s.confirmBox.Show()
			s.walletMsg.Hide()
		})
	})
}

func (s *Screen) save() {
	words := map[int]string{}
	for p, e := range s.confirm {
		words[p] = e.Text
	}
	s.saveBtn.Disable()
	s.goWork(func() {
		_, err := s.c.ConfirmWallet(s.ctx, words)
		s.do(func() {
			s.saveBtn.Enable()
			if err != nil {
				note.Set(s.walletMsg, err.Error(), widget.DangerImportance)
				return
			}
			s.words.RemoveAll()
			s.words.Hide()
			s.confirmBox.RemoveAll()
			s.confirmBox.Hide()
			note.Set(s.walletMsg, "Wallet saved.", widget.SuccessImportance)
			s.showWallet()
		})
	})
}

func (s *Screen) importWallet() {
	v := strings.TrimSpace(s.importKey.Text)
	in := core.WalletImport{Mnemonic: v}
	if isHexKey(v) {
		in = core.WalletImport{PrivateKey: v}
	}
	s.importBtn.Disable()
	s.goWork(func() {
		info, err := s.c.ImportWallet(s.ctx, in)
		s.do(func() {
			s.importBtn.Enable()
			if err != nil {
				note.Set(s.walletMsg, err.Error(), widget.DangerImportance)
				return
			}
			s.importKey.SetText("")
			note.Set(s.walletMsg, "Imported wallet "+info.Address+".", widget.SuccessImportance)
			s.showWallet()
		})
	})
}

// isHexKey reports whether v is 64 hex digits, with or without 0x.
func isHexKey(v string) bool {
	v = strings.TrimPrefix(strings.TrimPrefix(v, "0x"), "0X")
	if len(v) != 64 {
		return false
	}
	for _, r := range v {
		if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
			return false
		}
	}
	return true
}

// export shows the private key (hex) once the user ticked the confirmation.
func (s *Screen) export() {
	if !s.exportOK.Checked {
		return
	}
	s.exportBtn.Disable()
	s.goWork(func() {
		key, err := s.c.ExportWallet(s.ctx, core.WalletExport{Format: core.ExportHex, Confirm: true})
		s.do(func() {
			s.exportBtn.Enable()
			if err != nil {
				note.Set(s.walletMsg, err.Error(), widget.DangerImportance)
				return
			}
			s.exported.SetText(key)
			s.exported.Show()
			s.hideBtn.Show()
		})
	})
}

func (s *Screen) hideKey() {
	s.exported.SetText("")
	s.exported.Hide()
	s.hideBtn.Hide()
	s.exportOK.SetChecked(false)
}

func (s *Screen) doSubmit() {
	kind := core.SubmitChat
	if s.kind.Selected == KindDVAText {
		kind = core.SubmitDVA
	}
	opts := core.SubmitOptions{DryRun: s.dryRun.Checked}
	if opts.DryRun {
		opts.OutDir = strings.TrimSpace(s.outDir.Text)
	}
	s.submit.Disable()
	s.goWork(func() {
		res, err := s.c.Submit(s.ctx, kind, opts)
		s.do(func() {
			s.submit.Enable()
			if err != nil {
				note.Set(s.result, err.Error(), widget.DangerImportance)
				return
			}
			m := res.Manifest
			text := fmt.Sprintf("%s submission of %d records signed by %s (nonce %d): queued for upload.", m.Kind, m.Records, m.Submitter, m.Nonce)
			if res.DryRun {
				text = fmt.Sprintf("%s submission of %d records signed by %s (nonce %d): written to %s.", m.Kind, m.Records, m.Submitter, m.Nonce, res.ManifestPath)
			}
			note.Set(s.result, text, widget.SuccessImportance)
			s.showList()
		})
	})
}

func (s *Screen) verify() {
	mp, jp := strings.TrimSpace(s.manifest.Text), strings.TrimSpace(s.jsonl.Text)
	s.verifyBtn.Disable()
	s.goWork(func() {
		res, err := s.c.Verify(s.ctx, mp, jp)
		s.do(func() {
			s.verifyBtn.Enable()
			if err != nil {
				note.Set(s.verified, err.Error(), widget.DangerImportance)
				return
			}
			note.Set(s.verified, fmt.Sprintf("Signed by %s: %s, %d records, content hash matches.", res.Signer, res.Manifest.Kind, res.Manifest.Records), widget.SuccessImportance)
		})
	})
}

func (s *Screen) showList() {
	subs, err := s.c.Submissions(s.ctx, listLimit)
	if err != nil {
		note.Set(s.listMsg, err.Error(), widget.DangerImportance)
		return
	}
	uploads := map[int64]core.UploadItem{}
	if items, err := s.c.Outbox(s.ctx); err == nil {
		for _, it := range items {
			uploads[it.SubmissionID] = it
		}
	}
	s.list.RemoveAll()
	if len(subs) == 0 {
		s.list.Add(widget.NewLabel("Nothing submitted yet."))
		return
	}
	for _, sub := range subs {
		m := sub.Manifest
		state := "not queued"
		if it, ok := uploads[sub.ID]; ok {
			state = it.State
			if it.State == "uploading" {
				state += fmt.Sprintf(" %.0f%%", it.Percent)
			}
			if it.Error != "" {
				state += ": " + it.Error
			}
		}
		s.list.Add(widget.NewLabel(fmt.Sprintf("%s · %d records · nonce %d · %s… · %s", m.Kind, m.Records, m.Nonce, m.SHA256[:12], state)))
	}
	s.listMsg.Hide()
}
