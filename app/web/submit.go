package web

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/gata-contrib/gata/app/core"
)

// The Submit section's API: the wallet (never its key: there is no export here, the
// words of a new wallet are shown once), submissions and verification, their uploads to
// Greenfield (progress, retry, shares) and the account they go to.
//
//	GET  /api/wallet              core.WalletInfo
//	POST /api/wallet/new          core.NewWallet: the words, shown once
//	POST /api/wallet/confirm      {words: {"3": "word", …}} → core.WalletInfo
//	POST /api/wallet/import       core.WalletImport → core.WalletInfo
//	GET  /api/submissions         []core.SubmitResult, newest first
//	POST /api/submissions         {kind, dry_run, out_dir} → core.SubmitResult
//	POST /api/verify              {manifest_path, jsonl_path} → core.VerifyResult
//	GET  /api/uploads             []core.UploadItem, newest first
//	GET  /api/uploads/{id}        core.UploadItem of submission id
//	POST /api/uploads/{id}/retry  core.UploadItem, queued for an attempt now
//	POST /api/uploads/share       {address, submission_id (0: all)} → []core.UploadItem
//	GET  /api/account             core.Account: network, address, balance, read quota

func (h *handlers) getWallet(w http.ResponseWriter, r *http.Request) {
	info, err := h.core.WalletStatus(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, info)
}

func (h *handlers) newWallet(w http.ResponseWriter, r *http.Request) {
	nw, err := h.core.CreateWallet(r.Context())
	if err != nil {
		h.fail(w, r, err)
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
		h.fail(w, r, err)
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
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, info)
}

func (h *handlers) listSubmissions(w http.ResponseWriter, r *http.Request) {
	subs, err := h.core.Submissions(r.Context(), 0)
	if err != nil {
		h.fail(w, r, err)
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
		h.fail(w, r, err)
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
		h.fail(w, r, err)
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
	Elsewhere   string // another process does the uploads
}

// submitRow is one submission with its upload (nil while it is not in the outbox).
type submitRow struct {
	core.SubmitResult
	Size   int64
	Short  string // the first 12 digits of the sha256
	Upload *core.UploadItem
}

// StateLabel is the upload's state as the row's badge says it.
func (r submitRow) StateLabel() string {
	if r.Upload == nil {
		return "not queued"
	}
	return r.Upload.StateLabel()
}

// StateClass picks the badge's colour.
func (r submitRow) StateClass() string {
	switch {
	case r.Upload == nil:
		return ""
	case r.Upload.Waiting():
		return "state-paused"
	}
	switch r.Upload.State {
	case "uploading", "sealing":
		return "state-running"
	case "done", "failed":
		return "state-" + r.Upload.State
	}
	return ""
}

// Percent is the share of the payload sent, in whole percent.
func (r submitRow) Percent() int {
	if r.Upload == nil {
		return 0
	}
	return int(r.Upload.Percent + 0.5)
}

// Speed is the sending speed while the payload goes out ("" otherwise).
func (r submitRow) Speed() string {
	if r.Upload == nil || r.Upload.State != "uploading" || r.Upload.Speed <= 0 {
		return ""
	}
	return byteSize(int64(r.Upload.Speed)) + "/s"
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

// submitList is the submissions with their uploads, newest first.
func (h *handlers) submitList(r *http.Request) submitListPage {
	subs, err := h.core.Submissions(r.Context(), submitListLimit)
	p := submitListPage{Elsewhere: h.core.UploadsElsewhere()}
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
	return p
}

func (h *handlers) uiSubmitList(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, "submit-list", h.submitList(r))
}

// uiSubmitShareOptions is the share form's choice of submissions.
func (h *handlers) uiSubmitShareOptions(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, "submit-share-options", h.submitList(r))
}

// submitAccountPage is the account card; the quota in bytes for the bytes function.
type submitAccountPage struct {
	core.Account
	FreeUsed, FreeMonthly, Bought, BoughtUsed int64
}

func (h *handlers) uiSubmitAccount(w http.ResponseWriter, r *http.Request) {
	p := submitAccountPage{Account: h.core.Account(r.Context())}
	if st := p.Status; st != nil && st.Quota != nil {
		q := st.Quota
		p.FreeUsed, p.FreeMonthly, p.Bought, p.BoughtUsed = int64(q.FreeConsumed), int64(q.FreeMonthly), int64(q.Charged), int64(q.Consumed)
	}
	h.render(w, r, "submit-account", p)
}

func (h *handlers) getAccount(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, h.core.Account(r.Context()))
}

func (h *handlers) listUploads(w http.ResponseWriter, r *http.Request) {
	items, err := h.core.Outbox(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, items)
}

// submissionID reads the {id} of an upload route; anything but a positive number is no
// upload.
func submissionID(r *http.Request) (int64, error) {
	v := r.PathValue("id")
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("upload of submission %q: %w", v, core.ErrNoUpload)
	}
	return id, nil
}

// answerUpload answers with what do makes of the upload of the route's submission.
func (h *handlers) answerUpload(w http.ResponseWriter, r *http.Request, do func(ctx context.Context, id int64) (core.UploadItem, error)) {
	id, err := submissionID(r)
	if err == nil {
		var it core.UploadItem
		if it, err = do(r.Context(), id); err == nil {
			writeJSON(w, http.StatusOK, it)
			return
		}
	}
	h.fail(w, r, err)
}

func (h *handlers) getUpload(w http.ResponseWriter, r *http.Request) {
	h.answerUpload(w, r, h.core.Upload)
}

// retryUpload queues a failed or waiting upload for an attempt now; a done one stays
// done (the answer says its state). A submission without an upload is a 404.
func (h *handlers) retryUpload(w http.ResponseWriter, r *http.Request) {
	h.answerUpload(w, r, func(ctx context.Context, id int64) (core.UploadItem, error) {
		if _, err := h.core.Upload(ctx, id); err != nil {
			return core.UploadItem{}, err
		}
		return h.core.RetryUpload(ctx, id)
	})
}

// shareUploads takes {address, submission_id}; submission_id 0 shares every submission.
// A grant the chain refused is a 502 with its error; the share stays recorded.
func (h *handlers) shareUploads(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Address      string `json:"address"`
		SubmissionID int64  `json:"submission_id"`
	}
	if !decodeChat(w, r, "share request", &in) {
		return
	}
	if in.SubmissionID < 0 {
		writeError(w, http.StatusBadRequest, "share: submission_id must be 0 (all) or a submission's id")
		return
	}
	items, err := h.core.ShareSubmission(r.Context(), in.SubmissionID, in.Address)
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, items)
	case items != nil:
		writeError(w, http.StatusBadGateway, strings.Join(strings.Fields(err.Error()), " "))
	default:
		h.fail(w, r, err)
	}
}
