package storage

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"
)

func chatBattle(id string, created time.Time) ChatBattle {
	temp := 0.7
	t0 := created.Add(time.Second)
	ans := func(text string) ChatAnswer {
		return ChatAnswer{Text: text, Started: t0, FirstToken: t0.Add(300 * time.Millisecond), Finished: t0.Add(2 * time.Second),
			TTFT: 300 * time.Millisecond, InputTokens: 12, OutputTokens: 40, TokensPerSec: 23.5, StopReason: "stop"}
	}
	return ChatBattle{ID: id, Created: created, Blind: true, Language: "English", MaxTokens: 512, Temperature: &temp,
		Models:  []string{"oa/x", "an/y", "oa/z"},
		Prompts: []string{"First " + id, "Second " + id},
		Sides: []ChatSide{
			{Column: "A", Model: "an/y", History: []ChatMessage{{Role: "user", Content: "before"}, {Role: "assistant", Content: "ok"}},
				Answers: []ChatAnswer{ans("y1"), ans("y2")}},
			{Column: "B", Model: "oa/z", Answers: []ChatAnswer{ans("z1"), {Text: "z2 par", Started: t0, Error: "the stream was cut off", ErrorKind: "disconnect"}}},
			{Column: "C", Model: "oa/x", Answers: []ChatAnswer{ans("x1"), ans("x2")}},
		}}
}

func TestChatBattleRoundTrip(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	created := time.UnixMilli(1700000000000)
	b := chatBattle("b1", created)
	if err := s.SaveChatBattle(ctx, b); err != nil {
		t.Fatalf("SaveChatBattle: %v", err)
	}
	got, err := s.ChatBattle(ctx, "b1")
	if err != nil {
		t.Fatalf("ChatBattle: %v", err)
	}
	if got.Updated.IsZero() {
		t.Errorf("Updated not set")
	}
	got.Updated = time.Time{}
	if !reflect.DeepEqual(got, b) {
		t.Errorf("ChatBattle =\n%+v\nwant\n%+v", got, b)
	}
	if _, err := s.ChatBattle(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("ChatBattle(nope) = %v, want ErrNotFound", err)
	}

	at := created.Add(time.Minute)
	if err := s.VoteChatBattle(ctx, "b1", ChatVote{Outcome: "C", Reason: "clearer", At: at}); err != nil {
		t.Fatalf("VoteChatBattle: %v", err)
	}
	if err := s.VoteChatBattle(ctx, "b1", ChatVote{Outcome: "A"}); !errors.Is(err, ErrAlreadyVoted) {
		t.Errorf("second VoteChatBattle = %v, want ErrAlreadyVoted", err)
	}
	if err := s.VoteChatBattle(ctx, "nope", ChatVote{Outcome: "A"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("VoteChatBattle(nope) = %v, want ErrNotFound", err)
	}
	if err := s.VoteChatBattle(ctx, "b1", ChatVote{Outcome: "E"}); err == nil {
		t.Errorf("VoteChatBattle with outcome E succeeded")
	}
	q := ChatQuality{Score: 0.4, Diversity: 0.9, Assessed: at, Reasons: []ChatQualityReason{{Signal: "fast_vote", Detail: "voted in 1s", Penalty: 0.6}}}
	if err := s.SetChatQuality(ctx, "b1", q); err != nil {
		t.Fatalf("SetChatQuality: %v", err)
	}
	if err := s.SetChatQuality(ctx, "b1", ChatQuality{Score: 1.5}); err == nil {
		t.Errorf("SetChatQuality with score 1.5 succeeded")
	}
	// What was stored survives closing and reopening the file.
	s.Close()
	s2, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	got, err = s2.ChatBattle(ctx, "b1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Vote == nil || *got.Vote != (ChatVote{Outcome: "C", Reason: "clearer", At: at}) {
		t.Errorf("vote = %+v", got.Vote)
	}
	if got.Quality == nil || !reflect.DeepEqual(*got.Quality, q) {
		t.Errorf("quality = %+v, want %+v", got.Quality, q)
	}
	// Saving the battle again (after a regenerated column) replaces its rows.
	got.Sides[1].Answers[1] = ChatAnswer{Text: "z2 again", Started: at, Finished: at.Add(time.Second), OutputTokens: 2}
	if err := s2.SaveChatBattle(ctx, got); err != nil {
		t.Fatal(err)
	}
	again, _ := s2.ChatBattle(ctx, "b1")
	if again.Sides[1].Answers[1].Text != "z2 again" || len(again.Sides[1].Answers) != 2 || again.Vote == nil || again.Quality == nil {
		t.Errorf("after a second save = %+v", again)
	}
}

func TestChatBattlesListAndHistory(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	base := time.UnixMilli(1700000000000)
	for i, id := range []string{"b1", "b2", "b3"} {
		if err := s.SaveChatBattle(ctx, chatBattle(id, base.Add(time.Duration(i)*time.Hour))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.VoteChatBattle(ctx, "b1", ChatVote{Outcome: "A"}); err != nil {
		t.Fatal(err)
	}
	if err := s.VoteChatBattle(ctx, "b2", ChatVote{Outcome: "tie"}); err != nil {
		t.Fatal(err)
	}
	bs, err := s.ChatBattles(ctx, time.Time{}, 2)
	if err != nil || len(bs) != 2 || bs[0].ID != "b3" || bs[1].ID != "b2" || len(bs[1].Sides) != 3 || bs[1].Vote == nil {
		t.Fatalf("ChatBattles(2) = %+v, %v; want b3, b2 whole", bs, err)
	}
	older, err := s.ChatBattles(ctx, bs[1].Created, 10)
	if err != nil || len(older) != 1 || older[0].ID != "b1" {
		t.Errorf("ChatBattles(before b2) = %+v, %v; want b1", older, err)
	}
	prompts, outcomes, err := s.ChatHistory(ctx, base.Add(90*time.Minute), 10)
	if want := []string{"First b1", "Second b1", "First b2", "Second b2"}; err != nil || !reflect.DeepEqual(prompts, want) {
		t.Errorf("ChatHistory prompts = %q, %v; want %q", prompts, err, want)
	}
	if want := []string{"A", "tie"}; !reflect.DeepEqual(outcomes, want) {
		t.Errorf("ChatHistory outcomes = %q, want %q", outcomes, want)
	}
}

func TestChatProviders(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	p := ChatProvider{Name: "local", Kind: "openai", BaseURL: "http://127.0.0.1:11434/v1", Models: []string{"llama3"}, Timeout: 30 * time.Second}
	if err := s.SaveChatProvider(ctx, p); err != nil {
		t.Fatal(err)
	}
	p.Models = append(p.Models, "qwen2")
	p.APIKeyEnv = "OLLAMA_KEY"
	if err := s.SaveChatProvider(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveChatProvider(ctx, ChatProvider{Name: "bad", Kind: "gemini", BaseURL: "http://x"}); err == nil {
		t.Errorf("SaveChatProvider(kind gemini) succeeded")
	}
	ps, err := s.ChatProviders(ctx)
	if err != nil || len(ps) != 1 {
		t.Fatalf("ChatProviders = %+v, %v", ps, err)
	}
	got := ps[0]
	if got.Name != "local" || !reflect.DeepEqual(got.Models, []string{"llama3", "qwen2"}) || got.APIKeyEnv != "OLLAMA_KEY" ||
		got.Timeout != 30*time.Second || got.Created.IsZero() || got.Updated.Before(got.Created) {
		t.Errorf("ChatProviders()[0] = %+v", got)
	}
	if err := s.DeleteChatProvider(ctx, "local"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteChatProvider(ctx, "local"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second DeleteChatProvider = %v, want ErrNotFound", err)
	}
}
