package web

import (
	"errors"
	"net/http"

	"github.com/gata-contrib/gata/app/core"
)

// The Submit section's API: the wallet (never its key: there is no export here, the
// words of a new wallet are shown once), submissions and verification.
//
//	GET  /api/wallet              core.WalletInfo
//	POST /api/wallet/new          core.NewWallet: the words, shown once
//	POST /api/wallet/confirm      {words: {"3": "word", …}} → core.WalletInfo
//	POST /api/wallet/import       core.WalletImport → core.WalletInfo
//	GET  /api/submissions         []core.SubmitResult, newest first
//	POST /api/submissions         {kind, dry_run, out_dir} → core.SubmitResult
//	POST /api/verify              {manifest_path, jsonl_path} → core.VerifyResult

// submitFail maps the wallet and submission errors to a status: bad requests 400, no
// wallet 404, a wallet that exists or nothing new to submit 409, a locked keystore 423,
// a wrong passphrase 403, a submission that does not verify 422.
func (h *handlers) submitFail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, core.ErrBadWallet), errors.Is(err, core.ErrBadSubmit), errors.Is(err, core.ErrNotConfirmed):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, core.ErrNoWallet):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, core.ErrWalletExists), errors.Is(err, core.ErrNothingToSubmit):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, core.ErrVerify):
		writeError(w, http.StatusUnprocessableEntity, err.Error())
	default:
		h.chatFail(w, r, err) // the secret store's errors, then the common ones
	}
}

func (h *handlers) getWallet(w http.ResponseWriter, r *http.Request) {
	info, err := h.core.WalletStatus(r.Context())
	if err != nil {
		h.submitFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, info)
}

func (h *handlers) newWallet(w http.ResponseWriter, r *http.Request) {
	nw, err := h.core.CreateWallet(r.Context())
	if err != nil {
		h.submitFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, nw)
}

// confirmWallet takes {words: {position: word}} for the positions CreateWallet asked.
func (h *handlers) confirmWallet(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Words map[int]string `json:"words"`
	}
	if !decodeChat(w, r, "confirmation", &in) {
		return
	}
	info, err := h.core.ConfirmWallet(r.Context(), in.Words)
	if err != nil {
		h.submitFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, info)
}

// importWallet takes a core.WalletImport.
func (h *handlers) importWallet(w http.ResponseWriter, r *http.Request) {
	var in core.WalletImport
	if !decodeChat(w, r, "wallet", &in) {
		return
	}
	info, err := h.core.ImportWallet(r.Context(), in)
	if err != nil {
		h.submitFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, info)
}

func (h *handlers) listSubmissions(w http.ResponseWriter, r *http.Request) {
	subs, err := h.core.Submissions(r.Context(), 0)
	if err != nil {
		h.submitFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, subs)
}

// submitRequest is the body of POST /api/submissions.
type submitRequest struct {
	Kind string `json:"kind"`
	core.SubmitOptions
}

func (h *handlers) postSubmission(w http.ResponseWriter, r *http.Request) {
	var in submitRequest
	if !decodeChat(w, r, "submission", &in) {
		return
	}
	res, err := h.core.Submit(r.Context(), in.Kind, in.SubmitOptions)
	if err != nil {
		h.submitFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, res)
}

// verify takes {manifest_path, jsonl_path}: files on the machine the app runs on.
func (h *handlers) verify(w http.ResponseWriter, r *http.Request) {
	var in struct {
		ManifestPath string `json:"manifest_path"`
		JSONLPath    string `json:"jsonl_path"`
	}
	if !decodeChat(w, r, "verify request", &in) {
		return
	}
	if in.ManifestPath == "" {
		writeError(w, http.StatusBadRequest, "verify: manifest_path is required")
		return
	}
	res, err := h.core.Verify(r.Context(), in.ManifestPath, in.JSONLPath)
	if err != nil {
		h.submitFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// submitWalletPage is the wallet card.
type submitWalletPage struct {
	Wallet      core.WalletInfo
	Secrets     core.SecretsInfo
	Unavailable string
}

// submitListPage is the submissions card: what was submitted and how its upload goes.
type submitListPage struct {
	Rows        []submitRow
	Unavailable string
}

// submitRow is one submission with its upload (nil while it is not in the outbox).
type submitRow struct {
	core.SubmitResult
	Size   int64
	Short  string // the first 12 digits of the sha256
	Upload *core.UploadItem
}

func (h *handlers) uiSubmitWallet(w http.ResponseWriter, r *http.Request) {
	info, err := h.core.WalletStatus(r.Context())
	p := submitWalletPage{Wallet: info, Secrets: h.core.Secrets(r.Context())}
	if err != nil {
		p.Unavailable = err.Error()
	}
	h.render(w, r, "submit-wallet", p)
}

// submitListLimit is how many submissions the card lists.
const submitListLimit = 50

func (h *handlers) uiSubmitList(w http.ResponseWriter, r *http.Request) {
	subs, err := h.core.Submissions(r.Context(), submitListLimit)
	var p submitListPage
	if err != nil {
		p.Unavailable = err.Error()
	}
	uploads := map[int64]core.UploadItem{}
	if items, err := h.core.Outbox(r.Context()); err == nil {
		for _, it := range items {
			uploads[it.SubmissionID] = it
		}
	}
	for _, s := range subs {
		row := submitRow{SubmitResult: s, Size: int64(s.Manifest.Bytes), Short: s.Manifest.SHA256[:12]}
		if it, ok := uploads[s.ID]; ok {
			row.Upload = &it
		}
		p.Rows = append(p.Rows, row)
	}
	h.render(w, r, "submit-list", p)
}
