// Package submit is the Submit section of the desktop window: the wallet (create with its
// words shown once and three typed back, import, export behind an explicit
// confirmation), the Greenfield account (network, balance, bucket, read quota, or why
// they cannot be read), a form that signs and queues what was not submitted yet (or
// writes a dry run to a folder), a form that verifies a submission, a form that shares
// submissions with an address, and the submissions with their uploads (state, progress,
// speed, attempts, next try, error, shares, Retry), kept live by the upload events.
// Every action is one call of the core, made off the UI goroutine.
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
	"github.com/gata-contrib/gata/app/gui/internal/note"
	"github.com/gata-contrib/gata/app/gui/internal/page"
	"github.com/gata-contrib/gata/app/gui/internal/unlock"
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
	RetryUpload(ctx context.Context, submissionID int64) (core.UploadItem, error)
	ShareSubmission(ctx context.Context, submissionID int64, address string) ([]core.UploadItem, error)
	Account(ctx context.Context) core.Account
	Secrets(ctx context.Context) core.SecretsInfo
	UnlockSecrets(ctx context.Context, passphrase string) error
	UploadsElsewhere() string
}

// Labels of the page's buttons and choices (tests find them by these).
const (
	CreateLabel   = "Create a wallet"
	SaveLabel     = "Save the wallet"
	ImportLabel   = "Import"
	ExportLabel   = "Show the private key"
	HideLabel     = "Hide"
	UnlockLabel   = unlock.Label
	SubmitLabel   = "Sign and submit"
	VerifyLabel   = "Verify"
	RefreshLabel  = "Refresh"
	ShareLabel    = "Share"
	RetryLabel    = "Retry"     // a failed upload
	RetryNowLabel = "Retry now" // an upload waiting for its next attempt
	KindChatText  = "Chat votes (battles above the quality floor)"
	KindDVAText   = "DVA scores (finished runs)"
	ShareAllText  = "Every submission"
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
	lock       *unlock.Row
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

	// The account card; accountSeq drops answers a newer request overtook.
	account    *fyne.Container
	accountMsg *widget.Label
	refreshBtn *widget.Button
	accountSeq int

	// The share form; shareIDs maps its choices to submission ids.
	shareAddr   *widget.Entry
	shareTarget *widget.Select
	shareIDs    map[string]int64
	shareBtn    *widget.Button
	shareMsg    *widget.Label

	// The submissions with their uploads, by submission id.
	list      *fyne.Container
	listMsg   *widget.Label
	uploadMsg *widget.Label // Retry's answer
	rows      map[int64]*uploadRow

	content fyne.CanvasObject
}

// New builds the page (titled after its section) from the core's wallet and
// submissions. ctx bounds the core calls; w is the window; do runs a function on the UI
// goroutine. Call Close once ctx has ended.
func New(ctx context.Context, sec core.Section, c Core, w fyne.Window, do func(func())) *Screen {
	s := &Screen{ctx: ctx, c: c, w: w, do: do, confirm: map[int]*widget.Entry{}, shareIDs: map[string]int64{}, rows: map[int64]*uploadRow{}}

	// The wallet.
	s.walletInfo = widget.NewLabel("")
	s.walletInfo.Wrapping = fyne.TextWrapWord
	s.lock = unlock.New("No system keyring runs here, so the key is kept in an encrypted keystore file. Enter its passphrase (a new one for a new file).",
		"Passphrase", s.unlock)
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
	s.exportOK = widget.NewCheck("I understand: whoever has the private key owns the wallet", func(on bool) { page.SetEnabled(s.exportBtn, on) })
	s.exportBtn = widget.NewButtonWithIcon(ExportLabel, theme.VisibilityIcon(), s.export)
	s.exportBtn.Disable()
	s.exported = widget.NewEntry()
	s.exported.Disable()
	s.exported.Hide()
	s.hideBtn = widget.NewButtonWithIcon(HideLabel, theme.VisibilityOffIcon(), s.hideKey)
	s.hideBtn.Hide()
	s.exportBox = container.NewVBox(s.exportOK, container.NewBorder(nil, nil, s.exportBtn, s.hideBtn, s.exported))
	s.walletMsg = note.New()
	walletCard := widget.NewCard("Wallet", "", container.NewVBox(s.walletInfo, s.lock.Box, s.newBox, s.exportBox, s.walletMsg))

	// The submit form.
	s.kind = widget.NewRadioGroup([]string{KindChatText, KindDVAText}, nil)
	s.kind.SetSelected(KindChatText)
	s.kind.Required = true
	s.outDir = widget.NewEntry()
	s.outDir.SetPlaceHolder("Folder for a dry run")
	s.outDir.Disable()
	s.dryRun = widget.NewCheck("Dry run: only write the two files to a folder", func(on bool) { page.SetEnabled(s.outDir, on) })
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

	// The account.
	s.account = container.New(layout.NewFormLayout())
	s.accountMsg = note.New()
	s.refreshBtn = widget.NewButtonWithIcon(RefreshLabel, theme.ViewRefreshIcon(), s.loadAccount)
	networkHint := widget.NewLabel("Choose the network (mainnet, testnet or a custom chain id and RPC endpoint) in Settings.")
	networkHint.Wrapping = fyne.TextWrapWord
	accountCard := widget.NewCard("Greenfield account", "", container.NewVBox(s.account, s.accountMsg,
		container.NewBorder(nil, nil, nil, s.refreshBtn, networkHint)))

	// The share form.
	s.shareAddr = widget.NewEntry()
	s.shareAddr.SetPlaceHolder("0x…")
	s.shareTarget = widget.NewSelect([]string{ShareAllText}, nil)
	s.shareTarget.SetSelected(ShareAllText)
	s.shareBtn = widget.NewButtonWithIcon(ShareLabel, theme.MailForwardIcon(), s.share)
	s.shareMsg = note.New()
	shareIntro := widget.NewLabel("Lets another address read a submission and its manifest on Greenfield (an object policy). A submission not uploaded yet is shared as soon as its upload is done.")
	shareIntro.Wrapping = fyne.TextWrapWord
	shareCard := widget.NewCard("Share", "", container.NewVBox(shareIntro,
		container.New(layout.NewFormLayout(), widget.NewLabel("Address"), s.shareAddr, widget.NewLabel("Submission"), s.shareTarget),
		s.shareBtn, s.shareMsg))

	// The submissions.
	s.list = container.NewVBox()
	s.listMsg = note.New()
	s.uploadMsg = note.New()
	listCard := widget.NewCard("Submissions and uploads", "", container.NewVBox(s.uploadMsg, s.list, s.listMsg))

	s.content = page.Frame(sec, walletCard, accountCard, submitCard, shareCard, verifyCard, listCard)
	s.Reload()
	return s
}

// Content is the page's root object.
func (s *Screen) Content() fyne.CanvasObject { return s.content }

// Close waits for the page's goroutines; cancel ctx first.
func (s *Screen) Close() { s.wg.Wait() }

// Reload reads the wallet and the submissions from the core again (stored data, read at
// once), and the account from the network (in the background).
func (s *Screen) Reload() {
	s.showWallet()
	s.showList()
}

// ApplySubmissions refreshes the submissions after a submission event.
func (s *Screen) ApplySubmissions() { s.showList() }

// ApplyUpload shows an upload event: the row of its submission in place; a finished
// upload also changes the account (its bucket, its balance).
func (s *Screen) ApplyUpload(it core.UploadItem) {
	r, ok := s.rows[it.SubmissionID]
	if !ok {
		s.showList()
		return
	}
	r.set(&it)
	if it.State == "done" {
		s.loadAccount()
	}
}

// ApplySettings reads the account again when the Greenfield network changed.
func (s *Screen) ApplySettings(changed []core.Setting) {
	for _, st := range changed {
		if strings.HasPrefix(st.Key, "greenfield.") {
			s.loadAccount()
			return
		}
	}
}

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
		s.lock.Box.Show()
	} else {
		s.lock.Box.Hide()
	}
	s.loadAccount()
}

// loadAccount reads the account off the UI goroutine: the network may take a while to
// answer, or not answer at all.
func (s *Screen) loadAccount() {
	s.accountSeq++
	n := s.accountSeq
	s.refreshBtn.Disable()
	if len(s.account.Objects) == 0 {
		note.Set(s.accountMsg, "Reading the account on the network…", widget.LowImportance)
	}
	s.wg.Go(func() {
		a := s.c.Account(s.ctx)
		s.do(func() {
			if n != s.accountSeq {
				return
			}
			s.refreshBtn.Enable()
			s.showAccount(a)
		})
	})
}

func (s *Screen) showAccount(a core.Account) {
	s.account.RemoveAll()
	if a.NetworkError != "" {
		note.Set(s.accountMsg, "The network setting is not usable: "+a.NetworkError, widget.WarningImportance)
		return
	}
	add := func(name, value string) {
		v := widget.NewLabel(value)
		v.Wrapping = fyne.TextWrapBreak
		s.account.Add(widget.NewLabel(name))
		s.account.Add(v)
	}
	add("Network", fmt.Sprintf("%s · %s (signed for chain id %d)", a.Network.Name, a.Network.ChainID, a.EVMChainID))
	add("RPC", a.Network.RPC)
	if a.Address != "" {
		add("Address", a.Address)
	}
	if st := a.Status; st != nil {
		add("Balance", st.BalanceBNB+" BNB")
		if st.BucketMade {
			add("Bucket", st.Bucket)
		} else {
			add("Bucket", st.Bucket+" (made with the first upload)")
		}
		if q := st.Quota; q != nil {
			add("Read quota", fmt.Sprintf("%s of %s free this month used; %s of %s bought used", core.HumanBytes(int64(q.FreeConsumed)),
				core.HumanBytes(int64(q.FreeMonthly)), core.HumanBytes(int64(q.Consumed)), core.HumanBytes(int64(q.Charged))))
		}
	} else if a.Bucket != "" {
		add("Bucket", a.Bucket)
	}
	if a.Error != "" {
		note.Set(s.accountMsg, "Balance and read quota cannot be read: "+a.Error, widget.WarningImportance)
	} else {
		s.accountMsg.Hide()
	}
}

func (s *Screen) unlock(pass string) {
	s.wg.Go(func() {
		err := s.c.UnlockSecrets(s.ctx, pass)
		s.do(func() {
			if !s.lock.Done(err) {
				return
			}
			s.showWallet()
		})
	})
}

// create shows the new wallet's words once and asks three of them back.
func (s *Screen) create() {
	s.createBtn.Disable()
	s.wg.Go(func() {
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
	s.wg.Go(func() {
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
	s.wg.Go(func() {
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
	s.wg.Go(func() {
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
	s.wg.Go(func() {
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
	s.wg.Go(func() {
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
	if msg := s.c.UploadsElsewhere(); msg != "" {
		s.list.Add(widget.NewLabel(msg))
	}
	s.rows = map[int64]*uploadRow{}
	choices := []string{ShareAllText}
	s.shareIDs = map[string]int64{ShareAllText: 0}
	if len(subs) == 0 {
		s.list.Add(widget.NewLabel("Nothing submitted yet."))
	}
	for i, sub := range subs {
		if i > 0 {
			s.list.Add(widget.NewSeparator())
		}
		r := s.newUploadRow(sub)
		s.rows[sub.ID] = r
		if it, ok := uploads[sub.ID]; ok {
			r.set(&it)
			choice := fmt.Sprintf("Submission %d: %s, %d records, %s…", sub.ID, sub.Manifest.Kind, sub.Manifest.Records, sub.Manifest.SHA256[:12])
			choices = append(choices, choice)
			s.shareIDs[choice] = sub.ID
		} else {
			r.set(nil)
		}
		s.list.Add(r.box)
	}
	chosen := s.shareTarget.Selected
	s.shareTarget.SetOptions(choices)
	if _, ok := s.shareIDs[chosen]; !ok {
		chosen = ShareAllText
	}
	s.shareTarget.SetSelected(chosen)
	s.listMsg.Hide()
}

// uploadRow is one submission in the list, with its upload.
type uploadRow struct {
	box      *fyne.Container
	state    *widget.Label
	retry    *widget.Button
	object   *widget.Label
	bar      *widget.ProgressBar
	progress *widget.Label
	err      *widget.Label // the last error in one line
	shares   *widget.Label
}

func (s *Screen) newUploadRow(sub core.SubmitResult) *uploadRow {
	m := sub.Manifest
	r := &uploadRow{state: widget.NewLabel(""), object: widget.NewLabel(""), bar: widget.NewProgressBar(), progress: widget.NewLabel(""),
		err: widget.NewLabel(""), shares: widget.NewLabel("")}
	r.state.TextStyle.Bold = true
	r.bar.TextFormatter = func() string { return "" } // the progress label says it, rounded the same way everywhere
	r.object.Wrapping = fyne.TextWrapWord
	r.progress.Wrapping = fyne.TextWrapWord
	r.err.Truncation = fyne.TextTruncateEllipsis
	r.err.Importance = widget.DangerImportance
	r.shares.Wrapping = fyne.TextWrapWord
	r.retry = widget.NewButtonWithIcon(RetryLabel, theme.ViewRefreshIcon(), func() { s.retry(sub.ID) })
	head := widget.NewLabel(fmt.Sprintf("%s · %d records · %s", m.Kind, m.Records, core.HumanBytes(int64(m.Bytes))))
	head.TextStyle.Bold = true
	meta := widget.NewLabel(fmt.Sprintf("Submission %d · nonce %d · sha256 %s…", sub.ID, m.Nonce, m.SHA256[:12]))
	r.box = container.NewVBox(container.NewBorder(nil, nil, nil, container.NewHBox(r.state, r.retry), head), meta, r.object, r.bar, r.progress, r.err, r.shares)
	return r
}

// set shows the upload (nil: not in the outbox).
func (r *uploadRow) set(it *core.UploadItem) {
	if it == nil {
		r.state.SetText("not queued")
		for _, o := range []fyne.CanvasObject{r.retry, r.object, r.bar, r.progress, r.err, r.shares} {
			o.Hide()
		}
		return
	}
	r.state.Importance = widget.MediumImportance
	switch {
	case it.Waiting():
		r.state.Importance = widget.WarningImportance
	case it.State == "failed":
		r.state.Importance = widget.DangerImportance
	case it.State == "done":
		r.state.Importance = widget.SuccessImportance
	case it.State == "uploading" || it.State == "sealing":
		r.state.Importance = widget.HighImportance
	}
	r.state.SetText(it.StateLabel())
	if it.CanRetry() {
		r.retry.SetText(RetryNowLabel)
		if it.State == "failed" {
			r.retry.SetText(RetryLabel)
		}
		r.retry.Enable()
		r.retry.Show()
	} else {
		r.retry.Hide()
	}
	if it.Bucket != "" {
		r.object.SetText(it.Bucket + "/" + it.Object)
	} else {
		r.object.SetText(it.Object + " (the bucket is named once the account is reached)")
	}
	r.object.Show()
	r.bar.SetValue(it.Percent / 100)
	r.bar.Show()
	parts := []string{fmt.Sprintf("%s of %s (%.0f %%)", core.HumanBytes(it.BytesSent), core.HumanBytes(it.Size), it.Percent)}
	if it.State == "uploading" && it.Speed > 0 {
		parts = append(parts, core.HumanBytes(int64(it.Speed))+"/s")
	}
	if it.Attempts == 1 {
		parts = append(parts, "1 failed attempt")
	} else if it.Attempts > 1 {
		parts = append(parts, fmt.Sprintf("%d failed attempts", it.Attempts))
	}
	if !it.NextAttempt.IsZero() {
		parts = append(parts, "next try at "+it.NextAttempt.Local().Format("15:04:05"))
	}
	if it.State == "done" {
		parts = append(parts, "uploaded and sealed at "+it.Finished.Local().Format("15:04:05"))
	}
	r.progress.SetText(strings.Join(parts, " · "))
	r.progress.Show()
	if line := it.ErrorLine(); line != "" {
		r.err.SetText(line)
		r.err.Show()
	} else {
		r.err.Hide()
	}
	var shares []string
	for _, sh := range it.Shares {
		shares = append(shares, sh.Address+" "+it.ShareState(sh))
	}
	r.shares.SetText(strings.Join(shares, "\n"))
	r.shares.Hidden = len(shares) == 0
	r.shares.Refresh()
}

// retry queues an upload for an attempt now.
func (s *Screen) retry(id int64) {
	if r, ok := s.rows[id]; ok {
		r.retry.Disable()
	}
	s.wg.Go(func() {
		it, err := s.c.RetryUpload(s.ctx, id)
		s.do(func() {
			r, ok := s.rows[id]
			if err != nil {
				if ok {
					r.retry.Enable()
				}
				note.Set(s.uploadMsg, fmt.Sprintf("Retry of submission %d: %v", id, err), widget.DangerImportance)
				return
			}
			text := fmt.Sprintf("Submission %d is queued for an attempt now (the count of attempts starts again).", id)
			if it.State != "queued" {
				text = fmt.Sprintf("Submission %d is %s: there is nothing to retry.", id, it.State)
			}
			note.Set(s.uploadMsg, text, widget.SuccessImportance)
			if ok {
				r.set(&it)
			}
		})
	})
}

// share lets the address typed read the chosen submission, or every one.
func (s *Screen) share() {
	addr := strings.TrimSpace(s.shareAddr.Text)
	id := s.shareIDs[s.shareTarget.Selected]
	s.shareBtn.Disable()
	s.wg.Go(func() {
		items, err := s.c.ShareSubmission(s.ctx, id, addr)
		s.do(func() {
			s.shareBtn.Enable()
			for i := range items {
				if r, ok := s.rows[items[i].SubmissionID]; ok {
					r.set(&items[i])
				}
			}
			switch {
			case err != nil && items != nil:
				note.Set(s.shareMsg, "Recorded, but the grant failed: "+strings.Join(strings.Fields(err.Error()), " "), widget.DangerImportance)
			case err != nil:
				note.Set(s.shareMsg, err.Error(), widget.DangerImportance)
			case len(items) == 0:
				note.Set(s.shareMsg, "Nothing submitted yet: there is nothing to share.", widget.WarningImportance)
			default:
				note.Set(s.shareMsg, shareAnswer(id, addr, items), widget.SuccessImportance)
			}
		})
	})
}

// shareAnswer says what a share did: how many submissions the address can read now, and
// how many once their uploads are done.
func shareAnswer(id int64, addr string, items []core.UploadItem) string {
	granted, shown := 0, addr
	for _, it := range items {
		for _, sh := range it.Shares {
			if strings.EqualFold(sh.Address, addr) {
				shown = sh.Address
				if sh.Granted {
					granted++
				}
			}
		}
	}
	what := fmt.Sprintf("%d submissions", len(items))
	switch {
	case id > 0:
		what = fmt.Sprintf("Submission %d", id)
	case len(items) == 1:
		what = "1 submission"
	}
	var parts []string
	if granted > 0 {
		parts = append(parts, fmt.Sprintf("%d readable now", granted))
	}
	if waiting := len(items) - granted; waiting == 1 {
		parts = append(parts, "1 once its upload is done")
	} else if waiting > 1 {
		parts = append(parts, fmt.Sprintf("%d once their uploads are done", waiting))
	}
	return fmt.Sprintf("%s shared with %s: %s.", what, shown, strings.Join(parts, ", "))
}
