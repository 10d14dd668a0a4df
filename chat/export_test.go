package chat_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gata-contrib/gata/chat"
)

// exportBattle is a voted blind battle of p/x, p/y and p/z in columns A, B, C.
func exportBattle(outcome string, answers ...string) *chat.Battle {
	if len(answers) == 0 {
		answers = []string{"Answer X.", "Answer Y.", "Answer Z."}
	}
	t0 := time.UnixMilli(1700000000123)
	b := &chat.Battle{ID: "0123abcd", Blind: true, Language: "English", Prompts: []string{"Question?"},
		Models: []string{"p/x", "p/y", "p/z"}, Quality: &chat.Quality{Score: 0.9},
		Vote: &chat.Vote{Outcome: outcome, At: t0.Add(time.Minute)}}
	for i, m := range []string{"p/x", "p/y", "p/z"} {
		b.Sides = append(b.Sides, chat.Side{Column: chat.Columns[i : i+1], Model: m,
			Answers: []chat.Answer{{Text: answers[i], Started: t0, FirstToken: t0, Finished: t0.Add(time.Second)}}})
	}
	return b
}

func lines[T any](t *testing.T, data []byte) []T {
	t.Helper()
	var out []T
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("decode line %q: %v", sc.Text(), err)
		}
		out = append(out, v)
	}
	return out
}

func TestWriteArena(t *testing.T) {
	var buf bytes.Buffer
	low := exportBattle("A")
	low.Quality.Score = 0.2
	unvoted := exportBattle("A")
	unvoted.Vote = nil
	n, err := chat.WriteArena(&buf, []*chat.Battle{exportBattle("B"), low, unvoted}, chat.ExportOptions{Judge: "0xabc", MinQuality: chat.DefaultQualityThreshold})
	if err != nil || n != 3 {
		t.Fatalf("WriteArena = %d, %v; want 3 records", n, err)
	}
	recs := lines[map[string]any](t, buf.Bytes())
	if len(recs) != 3 {
		t.Fatalf("WriteArena wrote %d lines, want 3", len(recs))
	}
	r := recs[0]
	want := map[string]any{"question_id": "0123abcd", "model_a": "p/x", "model_b": "p/y", "winner": "model_b", "judge": "0xabc",
		"turn": 1.0, "anony": true, "language": "English", "tstamp": 1700000060.123, "quality": 0.9,
		"conversation_a": []any{map[string]any{"role": "user", "content": "Question?"}, map[string]any{"role": "assistant", "content": "Answer X."}},
		"conversation_b": []any{map[string]any{"role": "user", "content": "Question?"}, map[string]any{"role": "assistant", "content": "Answer Y."}},
	}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("first Arena record =\n%v\nwant\n%v", r, want)
	}
	for _, o := range []struct{ outcome, winner string }{{chat.OutcomeTie, "tie"}, {chat.OutcomeBad, "tie (bothbad)"}} {
		for _, rec := range chat.ArenaRecords(exportBattle(o.outcome), "j") {
			if rec.Winner != o.winner {
				t.Errorf("Arena winner for %s = %q, want %q", o.outcome, rec.Winner, o.winner)
			}
		}
	}
	failed := exportBattle("A")
	failed.Sides[2].Answers[0].Error = "server error"
	if got := len(chat.ArenaRecords(failed, "j")); got != 1 {
		t.Errorf("Arena records with a failed column = %d, want 1 (A-B only)", got)
	}
}

func TestWriteDPO(t *testing.T) {
	var buf bytes.Buffer
	n, err := chat.WriteDPO(&buf, []*chat.Battle{exportBattle("C"), exportBattle(chat.OutcomeTie), exportBattle(chat.OutcomeBad)}, chat.ExportOptions{})
	if err != nil || n != 2 {
		t.Fatalf("WriteDPO = %d, %v; want 2 records", n, err)
	}
	recs := lines[chat.DPORecord](t, buf.Bytes())
	user := []chat.Message{{Role: chat.RoleUser, Content: "Question?"}}
	for i, loser := range []string{"p/x", "p/y"} {
		r := recs[i]
		if !reflect.DeepEqual(r.Prompt, user) || r.ChosenModel != "p/z" || r.RejectedModel != loser || r.Quality != 0.9 ||
			!reflect.DeepEqual(r.Chosen, []chat.Message{{Role: chat.RoleAssistant, Content: "Answer Z."}}) || len(r.Rejected) != 1 {
			t.Errorf("DPO record %d = %+v", i, r)
		}
	}
	// Two turns: the prompt is the first question only, since the first answers differ.
	b := exportBattle("A")
	b.Prompts = append(b.Prompts, "And then?")
	for i := range b.Sides {
		b.Sides[i].Answers = append(b.Sides[i].Answers, b.Sides[i].Answers[0])
	}
	r := chat.DPORecords(b)[0]
	if len(r.Prompt) != 1 || len(r.Chosen) != 3 || r.Chosen[1].Content != "And then?" || len(r.Rejected) != 3 {
		t.Errorf("two-turn DPO record = %+v", r)
	}
}

func fuzzBattle(prompt, a, b, c string, outcome byte) *chat.Battle {
	outcomes := []string{"A", "B", "C", chat.OutcomeTie, chat.OutcomeBad}
	bt := exportBattle(outcomes[int(outcome)%len(outcomes)], a, b, c)
	bt.Prompts[0] = prompt
	bt.ID = prompt + a
	return bt
}

func fuzzRoundTrip[T any](t *testing.T, want []T, write func(*bytes.Buffer) (int, error)) {
	var buf bytes.Buffer
	n, err := write(&buf)
	if err != nil || n != len(want) {
		t.Fatalf("write = %d, %v; want %d records", n, err, len(want))
	}
	if got := strings.Count(buf.String(), "\n"); got != n {
		t.Fatalf("%d records on %d lines", n, got)
	}
	got := lines[T](t, buf.Bytes())
	if len(want) == 0 && len(got) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip =\n%+v\nwant\n%+v", got, want)
	}
}

func FuzzArenaExport(f *testing.F) {
	f.Add("What is 2+2?", "4", "Four.", "It is 4", byte(0))
	f.Fuzz(func(t *testing.T, prompt, a, b, c string, outcome byte) {
		bt := fuzzBattle(prompt, a, b, c, outcome)
		want := chat.ArenaRecords(bt, "judge")
		if len(want) != 3 {
			t.Fatalf("ArenaRecords = %d records, want 3", len(want))
		}
		fuzzRoundTrip(t, want, func(w *bytes.Buffer) (int, error) {
			return chat.WriteArena(w, []*chat.Battle{bt}, chat.ExportOptions{Judge: "judge"})
		})
	})
}

func FuzzDPOExport(f *testing.F) {
	f.Add("What is 2+2?", "4", "Four.", "It is 4", byte(1))
	f.Fuzz(func(t *testing.T, prompt, a, b, c string, outcome byte) {
		bt := fuzzBattle(prompt, a, b, c, outcome)
		want := chat.DPORecords(bt)
		if wantN := map[bool]int{true: 2, false: 0}[bt.Side(bt.Vote.Outcome) != nil]; len(want) != wantN {
			t.Fatalf("DPORecords = %d records, want %d", len(want), wantN)
		}
		fuzzRoundTrip(t, want, func(w *bytes.Buffer) (int, error) {
			return chat.WriteDPO(w, []*chat.Battle{bt}, chat.ExportOptions{})
		})
	})
}
