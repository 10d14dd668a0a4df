package web

import (
	"errors"
	"net/http"
	"time"

	"github.com/gata-contrib/gata/app/core"
)

// The Share section's API: the worker this app runs, and the pool this data folder keeps.
//
//	GET    /api/share          {worker: core.WorkerState, job: core.JobInfo?, pool: core.PoolState?, pool_error}
//	POST   /api/share/worker   {pool, max_temp_c, max_power_w, schedule, gpus, …} → the worker's job
//	DELETE /api/share/worker   stops the worker
//	GET    /ui/share/status    the worker and pool cards

// shareState is the body of GET /api/share and what the status partial shows.
type shareState struct {
	Worker    core.WorkerState `json:"worker"`
	Job       *core.JobInfo    `json:"job,omitempty"`
	Pool      *core.PoolState  `json:"pool,omitempty"`
	PoolError string           `json:"pool_error,omitempty"`
	// Throughput is the pool run's confirmed pairs per second of the workers' compute.
	Throughput float64 `json:"throughput,omitempty"`
}

func (h *handlers) shareState(r *http.Request) shareState {
	st := shareState{Worker: h.core.ShareState()}
	for _, j := range h.core.ListJobs() {
		if j.Kind == "share.worker" {
			j := j
			st.Job = &j
			break
		}
	}
	ps, err := h.core.PoolState(r.Context())
	switch {
	case err == nil:
		st.Pool = &ps
		var pairs, ms int64
		for _, c := range ps.Credits {
			pairs += c.Confirmed
			ms += c.ComputeMS
		}
		if ms > 0 {
			st.Throughput = float64(pairs) / (float64(ms) / 1000)
		}
	case !errors.Is(err, core.ErrNoPool):
		st.PoolError = err.Error()
	}
	return st
}

func (h *handlers) getShare(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, h.shareState(r))
}

// startShare takes the worker's pool and limits.
func (h *handlers) startShare(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Pool         string  `json:"pool"`
		GPUs         []int   `json:"gpus"`
		GPUList      string  `json:"gpu_list"` // or as typed: "0,1"
		MaxTempC     float64 `json:"max_temp_c"`
		MaxPowerW    float64 `json:"max_power_w"`
		Schedule     string  `json:"schedule"`
		PauseFor     string  `json:"pause_for"`
		AllowBusyGPU bool    `json:"allow_busy_gpu"`
		RunOnBattery bool    `json:"run_on_battery"`
		IdleGraceS   float64 `json:"idle_grace_s"`
		// PauseWhileActive, ActiveGraceS and AllowFullscreen: the desktop's limits.
		PauseWhileActive bool    `json:"pause_while_active"`
		ActiveGraceS     float64 `json:"active_grace_s"`
		AllowFullscreen  bool    `json:"allow_fullscreen"`
	}
	if !decodeChat(w, r, "worker", &in) {
		return
	}
	if in.GPUList != "" {
		gpus, err := core.ParseGPUs(in.GPUList)
		if err != nil {
			writeError(w, http.StatusBadRequest, "gpu_list: "+err.Error())
			return
		}
		in.GPUs = append(in.GPUs, gpus...)
	}
	job, err := h.core.StartSharing(core.WorkerRequest{Pool: in.Pool, GPUs: in.GPUs, MaxTempC: in.MaxTempC, MaxPowerW: in.MaxPowerW,
		Schedule: in.Schedule, PauseFor: in.PauseFor, AllowBusyGPU: in.AllowBusyGPU, RunOnBattery: in.RunOnBattery,
		IdleGrace: time.Duration(in.IdleGraceS * float64(time.Second)), PauseWhileActive: in.PauseWhileActive,
		ActiveGrace: time.Duration(in.ActiveGraceS * float64(time.Second)), AllowFullscreen: in.AllowFullscreen})
	if errors.Is(err, core.ErrSharing) {
		writeError(w, http.StatusConflict, err.Error())
		return
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, job)
}

func (h *handlers) stopShare(w http.ResponseWriter, r *http.Request) {
	if err := h.core.StopSharing(); err != nil {
		if errors.Is(err, core.ErrSharing) {
			writeError(w, http.StatusNotFound, err.Error())
			return
		}
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *handlers) uiShareStatus(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, "share-status", h.shareState(r))
}
