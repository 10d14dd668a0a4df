package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// events streams the core's events as server-sent events. A client resumes after the ID
// in its Last-Event-ID header (the browser sends it on reconnect) or ?since=; without
// either it gets only what happens from now on. When events it has not seen were already
// dropped, or its ID is from an earlier run of the app, it first gets a "reload" event:
// it should fetch its state afresh.
func (h *handlers) events(w http.ResponseWriter, r *http.Request) {
	after, err := resumeID(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	rc := http.NewResponseController(w)
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	last := h.core.LastEventID()
	if after < 0 {
		after = last
	}
	reload := after > last // an ID from an earlier run
	if reload {
		after = last
	}
	fmt.Fprint(w, "retry: 2000\n\n")
	if reload {
		writeReload(w, after)
	}
	if rc.Flush() != nil {
		return
	}

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		select {
		case <-h.srv.quit:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		wctx, wcancel := context.WithTimeout(ctx, time.Duration(h.srv.beat.Load()))
		evs, missed, err := h.core.WaitEvents(wctx, after)
		wcancel()
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, context.DeadlineExceeded):
			fmt.Fprint(w, ": heartbeat\n\n")
		case err != nil:
			return
		}
		if missed {
			writeReload(w, after)
		}
		for _, e := range evs {
			fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", e.ID, e.Type, e.JSON())
			after = e.ID
		}
		if rc.Flush() != nil {
			return
		}
	}
}

// writeReload tells the client to fetch its state again; it carries no ID of its own.
func writeReload(w http.ResponseWriter, after int64) {
	fmt.Fprintf(w, "event: reload\ndata: {\"after\":%d}\n\n", after)
}

// resumeID is the ID after which the client wants events, or -1 for "from now on".
func resumeID(r *http.Request) (int64, error) {
	v := r.Header.Get("Last-Event-ID")
	if v == "" {
		v = r.URL.Query().Get("since")
	}
	if v == "" {
		return -1, nil
	}
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id < 0 {
		return 0, fmt.Errorf("event ID %q is not a non-negative number", v)
	}
	return id, nil
}
