package web

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/gata-contrib/gata/app/core"
)

// maxCaptionBytes bounds the caption and model fields of a score request.
const maxCaptionBytes = 64 << 10

// maxScoreBody is the largest score request: the image plus room for the other fields and
// the multipart framing.
const maxScoreBody = core.MaxImageBytes + 1<<20

func (h *handlers) getValidate(w http.ResponseWriter, r *http.Request) {
	st, err := h.core.ValidateState(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// acceptLicense records the acceptance and answers with the Validate state.
func (h *handlers) acceptLicense(w http.ResponseWriter, r *http.Request) {
	if err := h.core.AcceptModelLicense(r.Context(), r.PathValue("name")); err != nil {
		h.fail(w, r, err)
		return
	}
	h.getValidate(w, r)
}

func (h *handlers) pullModel(w http.ResponseWriter, r *http.Request) {
	j, err := h.core.PullModel(r.Context(), r.PathValue("name"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, j)
}

func (h *handlers) verifyModel(w http.ResponseWriter, r *http.Request) {
	j, err := h.core.VerifyModel(r.PathValue("name"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, j)
}

// scorePair takes multipart/form-data with an image file, a caption and optionally a
// model (a name or a folder; empty: the chosen one) and answers with the score.
func (h *handlers) scorePair(w http.ResponseWriter, r *http.Request) {
	req, status, err := decodeScore(w, r)
	if err != nil {
		writeError(w, status, err.Error())
		return
	}
	res, err := h.core.ScorePair(r.Context(), req)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// decodeScore reads a score request, or says what is wrong with it and the status to answer.
func decodeScore(w http.ResponseWriter, r *http.Request) (core.ScoreRequest, int, error) {
	var req core.ScoreRequest
	r.Body = http.MaxBytesReader(w, r.Body, maxScoreBody)
	mr, err := r.MultipartReader()
	if err != nil {
		return req, http.StatusBadRequest, errors.New("read score request: send multipart/form-data with an image and a caption")
	}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return req, readStatus(err), fmt.Errorf("read score request: %w", readError(err))
		}
		switch p.FormName() {
		case "image":
			req.Name = p.FileName()
			if req.Image, err = io.ReadAll(io.LimitReader(p, core.MaxImageBytes+1)); err != nil {
				return req, readStatus(err), fmt.Errorf("read image: %w", readError(err))
			}
			if len(req.Image) > core.MaxImageBytes {
				return req, http.StatusRequestEntityTooLarge, fmt.Errorf("image %s is larger than the %d MB limit", req.Name, core.MaxImageBytes>>20)
			}
		case "caption", "model":
			b, err := io.ReadAll(io.LimitReader(p, maxCaptionBytes+1))
			if err != nil {
				return req, readStatus(err), fmt.Errorf("read %s: %w", p.FormName(), readError(err))
			}
			if len(b) > maxCaptionBytes {
				return req, http.StatusRequestEntityTooLarge, fmt.Errorf("%s is longer than %d KB", p.FormName(), maxCaptionBytes>>10)
			}
			if p.FormName() == "caption" {
				req.Caption = string(b)
			} else {
				req.Model = strings.TrimSpace(string(b))
			}
		}
		p.Close()
	}
	if len(req.Image) == 0 {
		return req, http.StatusBadRequest, errors.New("choose an image to score")
	}
	return req, 0, nil
}

// readStatus is 413 when the body went over its limit, else 400.
func readStatus(err error) int {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadRequest
}

// readError says a body over its limit in words.
func readError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return fmt.Errorf("the request is larger than the %d MB limit", mbe.Limit>>20)
	}
	return err
}

// validatePage is what the Validate section shows: the chosen model, the model jobs and
// the scoring form.
type validatePage struct {
	State       core.ValidateState
	Unavailable string         // why the state could not be read
	Jobs        []core.JobInfo // model downloads and checks, newest first
	Pulling     bool           // a download runs
	MaxImageMB  int            // the upload limit
	Runs        *runsPage      // the batch runs card; the section only
}

// maxModelJobs is how many model jobs the model card lists.
const maxModelJobs = 3

func (h *handlers) validatePage(r *http.Request) *validatePage {
	st, err := h.core.ValidateState(r.Context())
	p := &validatePage{State: st, MaxImageMB: core.MaxImageBytes >> 20}
	if err != nil {
		p.Unavailable = err.Error()
	}
	for _, j := range h.core.ListJobs() {
		if !strings.HasPrefix(j.Kind, "model.") {
			continue
		}
		running := j.State == core.JobRunning
		// Past jobs of the chosen model only: a model folder is neither downloaded nor verified here.
		mine := st.Known != nil && j.Subject == st.Known.Spec.Name
		if len(p.Jobs) < maxModelJobs && (running || mine) {
			p.Jobs = append(p.Jobs, j)
		}
		p.Pulling = p.Pulling || running && mine && j.Kind == "model.pull"
	}
	return p
}

func (h *handlers) uiValidateModel(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, "validate-model", h.validatePage(r))
}
