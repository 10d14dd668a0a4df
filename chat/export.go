package chat

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// ArenaRecord is one line of the Arena battle export (the schema of LMSYS's
// arena battle datasets), plus the battle's quality score.
type ArenaRecord struct {
	QuestionID    string    `json:"question_id"`
	ModelA        string    `json:"model_a"`
	ModelB        string    `json:"model_b"`
	Winner        string    `json:"winner"` // "model_a", "model_b", "tie" or "tie (bothbad)"
	Judge         string    `json:"judge"`
	ConversationA []Message `json:"conversation_a"`
	ConversationB []Message `json:"conversation_b"`
	Turn          int       `json:"turn"`
	Anony         bool      `json:"anony"`
	Language      string    `json:"language"`
	Tstamp        float64   `json:"tstamp"` // the vote's Unix time in seconds
	Quality       float64   `json:"quality"`
}

// DPORecord is one line of the preference export in TRL's conversational form.
type DPORecord struct {
	Prompt   []Message `json:"prompt"`
	Chosen   []Message `json:"chosen"`
	Rejected []Message `json:"rejected"`
	// The extras below are ignored by TRL's DPO trainer.
	ID            string  `json:"id"`
	ChosenModel   string  `json:"chosen_model"`
	RejectedModel string  `json:"rejected_model"`
	Quality       float64 `json:"quality"`
}

// quality is the battle's score, 0 when it was never assessed.
func (b *Battle) quality() float64 {
	if b.Quality == nil {
		return 0
	}
	return b.Quality.Score
}

// clean makes a message list valid UTF-8 so that it survives a JSON round trip as is.
func clean(ms []Message) []Message {
	out := make([]Message, len(ms))
	for i, m := range ms {
		out[i] = Message{Role: Role(valid(string(m.Role))), Content: valid(m.Content)}
	}
	return out
}

func valid(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// ArenaRecords are the battle's Arena records, one per pair of columns (see Pairs).
// judge names the voter; the language is "unknown" when the battle does not say.
func ArenaRecords(b *Battle, judge string) []ArenaRecord {
	lang := b.Language
	if lang == "" {
		lang = "unknown"
	}
	var out []ArenaRecord
	for _, p := range Pairs(b) {
		out = append(out, ArenaRecord{
			QuestionID: valid(b.ID), ModelA: valid(p.ModelA), ModelB: valid(p.ModelB), Winner: p.Winner,
			Judge: valid(judge), ConversationA: clean(p.A.Conversation(b.Prompts)), ConversationB: clean(p.B.Conversation(b.Prompts)),
			Turn: len(b.Prompts), Anony: b.Blind, Language: valid(lang),
			Tstamp: float64(b.Vote.At.UnixMilli()) / 1000, Quality: b.quality(),
		})
	}
	return out
}

// DPORecords are the battle's preference pairs: the winning column against each other
// column whose answers arrived. Ties, all-bad votes and unvoted battles give none.
// The prompt is what both conversations share up to a user message; chosen and
// rejected are the rest of each (one assistant message for a one-turn battle).
func DPORecords(b *Battle) []DPORecord {
	if b.Vote == nil {
		return nil
	}
	win := b.Side(b.Vote.Outcome)
	if win == nil || !answered(win, len(b.Prompts)) {
		return nil
	}
	var out []DPORecord
	for i := range b.Sides {
		lose := &b.Sides[i]
		if lose == win || !answered(lose, len(b.Prompts)) {
			continue
		}
		cw, cl := clean(win.Conversation(b.Prompts)), clean(lose.Conversation(b.Prompts))
		n := 0
		for k := 0; k < min(len(cw), len(cl)) && cw[k] == cl[k]; k++ {
			if cw[k].Role == RoleUser {
				n = k + 1
			}
		}
		if n == 0 {
			continue // no shared prompt: nothing to prefer one answer for
		}
		out = append(out, DPORecord{Prompt: cw[:n], Chosen: cw[n:], Rejected: cl[n:], ID: valid(b.ID),
			ChosenModel: valid(win.Model), RejectedModel: valid(lose.Model), Quality: b.quality()})
	}
	return out
}

// ExportOptions choose what the writers export.
type ExportOptions struct {
	// Judge names the voter in Arena records (say, the wallet address); "" is "gata".
	Judge string
	// MinQuality leaves out battles scoring below it (DefaultQualityThreshold in the
	// app; a battle never assessed scores 0).
	MinQuality float64
}

// WriteArena writes the Arena records of the battles as JSON lines and returns how
// many it wrote.
func WriteArena(w io.Writer, battles []*Battle, opts ExportOptions) (int, error) {
	judge := opts.Judge
	if judge == "" {
		judge = "gata"
	}
	return writeLines(w, battles, opts, "arena", func(b *Battle) []any {
		var out []any
		for _, r := range ArenaRecords(b, judge) {
			out = append(out, r)
		}
		return out
	})
}

// WriteDPO writes the DPO records of the battles as JSON lines and returns how many
// it wrote.
func WriteDPO(w io.Writer, battles []*Battle, opts ExportOptions) (int, error) {
	return writeLines(w, battles, opts, "dpo", func(b *Battle) []any {
		var out []any
		for _, r := range DPORecords(b) {
			out = append(out, r)
		}
		return out
	})
}

func writeLines(w io.Writer, battles []*Battle, opts ExportOptions, format string, records func(*Battle) []any) (int, error) {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	n := 0
	for _, b := range battles {
		if b.quality() < opts.MinQuality {
			continue
		}
		for _, r := range records(b) {
			if err := enc.Encode(r); err != nil {
				return n, fmt.Errorf("write %s export of battle %s: %w", format, b.ID, err)
			}
			n++
		}
	}
	return n, nil
}
