package core

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// stampServer is an OpenAI-compatible chat server whose every streamed piece is the Unix
// time in nanoseconds at which it was written ("t<ns> "), one piece every interval.
func stampServer(tb testing.TB, pieces int, interval time.Duration) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/models" {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"object":"list","data":[]}`)
			return
		}
		var body struct {
			Model string `json:"model"`
		}
		json.NewDecoder(r.Body).Decode(&body)
		w.Header().Set("Content-Type", "text/event-stream")
		f := w.(http.Flusher)
		chunk := func(delta, finish string) {
			d := map[string]any{}
			if delta != "" {
				d["content"] = delta
			}
			var fin any
			if finish != "" {
				fin = finish
			}
			b, _ := json.Marshal(map[string]any{"id": "c", "object": "chat.completion.chunk", "created": 0, "model": body.Model,
				"choices": []any{map[string]any{"index": 0, "delta": d, "finish_reason": fin}}})
			fmt.Fprintf(w, "data: %s\n\n", b)
			f.Flush()
		}
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for range pieces {
			select {
			case <-tick.C:
			case <-r.Context().Done():
				return
			}
			chunk("t"+strconv.FormatInt(time.Now().UnixNano(), 10)+" ", "")
		}
		chunk("", "stop")
		fmt.Fprint(w, "data: [DONE]\n\n")
		f.Flush()
	}))
	tb.Cleanup(srv.Close)
	return srv
}

// BenchmarkChatTokenOverhead measures what the app adds per token between the provider's
// stream and the UI event: four models stream at 200 tokens/s each over loopback HTTP,
// through the real SDK client, the battle runner and the event bus, to a subscriber that
// reads events as the web UI's stream and the window do. Each token carries the time the
// server wrote it; the latency is the time its event is read minus that. It reports the
// median, p99 and maximum in milliseconds (numbers to read, not to assert).
//
//	go test -run '^$' -bench ChatTokenOverhead -benchtime 1x ./app/core
func BenchmarkChatTokenOverhead(b *testing.B) {
	const (
		streams  = 4
		pieces   = 400 // two seconds per stream
		interval = 5 * time.Millisecond
	)
	c, _ := newTestCore(b)
	srv := stampServer(b, pieces, interval)
	ctx := context.Background()
	if _, err := c.AddProvider(ctx, ProviderInput{Name: "s", Kind: "openai", BaseURL: srv.URL + "/v1", Models: []string{"m1", "m2", "m3", "m4"}}); err != nil {
		b.Fatal(err)
	}
	var lat []time.Duration
	b.ResetTimer()
	for range b.N {
		after := c.LastEventID()
		bi, err := c.StartBattle(ctx, BattleInput{Prompt: "Count for me, please.", Models: []string{"s/m1", "s/m2", "s/m3", "s/m4"}})
		if err != nil {
			b.Fatal(err)
		}
		for ended := false; !ended; {
			evs, _, err := c.WaitEvents(ctx, after)
			if err != nil {
				b.Fatal(err)
			}
			now := time.Now()
			for _, e := range evs {
				after = e.ID
				ce, ok := e.Data.(ChatEvent)
				if !ok || ce.Battle != bi.ID {
					continue
				}
				switch ce.Kind {
				case ChatDelta:
					for _, f := range strings.Fields(ce.Text) {
						ns, err := strconv.ParseInt(strings.TrimPrefix(f, "t"), 10, 64)
						if err != nil {
							b.Fatalf("piece %q: %v", f, err)
						}
						lat = append(lat, now.Sub(time.Unix(0, ns)))
					}
				case ChatError:
					b.Fatalf("column %s: %s", ce.Column, ce.Error)
				case ChatEnd:
					ended = true
				}
			}
		}
	}
	b.StopTimer()
	if want := b.N * streams * pieces; len(lat) != want {
		b.Fatalf("saw %d tokens, want %d", len(lat), want)
	}
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms/token")
	b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms/token")
	b.ReportMetric(ms(lat[len(lat)-1]), "max-ms/token")
	b.ReportMetric(float64(len(lat))/float64(b.N), "tokens/op")
}
