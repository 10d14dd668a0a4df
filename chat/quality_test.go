package chat_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gata-contrib/gata/chat"
)

func TestIdentityLeak(t *testing.T) {
	tests := []struct {
		text string
		want string
	}{
		{"I am ChatGPT, a model trained by OpenAI.", "ChatGPT"},
		{"As a GPT-4 based assistant…", "GPT"},
		{"I'm Claude.", "Claude"},
		{"made by ANTHROPIC", "ANTHROPIC"},
		{"Google's Gemini here", "Google"},
		{"I am Llama, from Meta.", "Llama"},
		{"Mistral AI trained me", "Mistral"},
		{"DeepSeek-V3 at your service", "DeepSeek"},
		{"我是Qwen", "Qwen"},
		{"The capital of France is Paris.", ""},
		{"A llamas' herd and a metaphor", ""}, // no whole-word match
		{"Claudette bought a gptx license", ""},
	}
	for _, tt := range tests {
		got, ok := chat.IdentityLeak(tt.text)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("IdentityLeak(%q) = %q, %v; want %q", tt.text, got, ok, tt.want)
		}
	}
}

// votedBattle is a blind two-column battle whose answers began at t0 and were voted on
// after the given time.
func votedBattle(prompt, a, b string, after time.Duration) *chat.Battle {
	t0 := time.Unix(1700000000, 0)
	ans := func(text string) chat.Answer {
		return chat.Answer{Text: text, Started: t0.Add(-time.Second), FirstToken: t0, Finished: t0.Add(2 * time.Second), OutputTokens: 5}
	}
	return &chat.Battle{ID: "b1", Blind: true, Prompts: []string{prompt}, Models: []string{"p/x", "p/y"},
		Sides: []chat.Side{{Column: "A", Model: "p/x", Answers: []chat.Answer{ans(a)}}, {Column: "B", Model: "p/y", Answers: []chat.Answer{ans(b)}}},
		Vote:  &chat.Vote{Outcome: "A", At: t0.Add(after)}}
}

func TestFastVote(t *testing.T) {
	sixty := strings.Repeat("word ", 60) // 120 words in both answers: 8 s at 15 words/s
	tests := []struct {
		name  string
		after time.Duration
		fast  bool
	}{
		{"instant", 500 * time.Millisecond, true},
		{"skimmed", 6 * time.Second, true},
		{"read", 9 * time.Second, false},
		{"long after", time.Hour, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := votedBattle("Tell me about the moon landing.", sixty, sixty, tt.after)
			need, had, fast := chat.FastVote(b)
			if fast != tt.fast || need != 8*time.Second || had != tt.after {
				t.Errorf("FastVote = %v, %v, %v; want 8s, %v, %v", need, had, fast, tt.after, tt.fast)
			}
		})
	}
}

func TestSameSide(t *testing.T) {
	ten := func(o string) []string { return strings.Split(strings.Repeat(o+",", 10)[:len(o)*10+9], ",") }
	tests := []struct {
		name     string
		outcomes []string
		want     bool
	}{
		{"ten A", ten("A"), true},
		{"ten ties", ten("tie"), true},
		{"nine A", ten("A")[1:], false},
		{"mixed", append(ten("A")[1:], "B"), false},
		{"older B then ten A", append([]string{"B"}, ten("A")...), true},
	}
	for _, tt := range tests {
		if got := chat.SameSide(tt.outcomes, chat.SameSideVotes); got != tt.want {
			t.Errorf("SameSide(%s) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestDuplicate(t *testing.T) {
	earlier := []string{
		"Explain how a transformer neural network uses attention to translate a sentence from English to German.",
		"Write a haiku about autumn leaves.",
	}
	tests := []struct {
		prompt string
		exact  bool
		near   bool
	}{
		{"write a HAIKU about autumn leaves!", true, true},
		{"Explain how a transformer neural network uses attention to translate a sentence from English to French.", false, true},
		{"What are the health benefits of green tea compared with coffee?", false, false},
		{"Write a limerick about a cat who loves lasagna.", false, false},
	}
	for _, tt := range tests {
		sim, exact := chat.Duplicate(tt.prompt, earlier)
		if exact != tt.exact || (sim >= 0.7) != tt.near {
			t.Errorf("Duplicate(%q) = %.2f, %v; want exact %v, near %v", tt.prompt, sim, exact, tt.exact, tt.near)
		}
	}
	a, b := chat.NewMinHash("the quick brown fox jumps over the lazy dog"), chat.NewMinHash("the quick brown fox jumps over the lazy dog")
	if a.Similarity(b) != 1 || a.Similarity(chat.NewMinHash("")) != 0 {
		t.Errorf("MinHash similarity of equal texts %.2f (want 1), with empty text %.2f (want 0)", a.Similarity(b), a.Similarity(chat.NewMinHash("")))
	}
}

func TestDiversity(t *testing.T) {
	recent := []string{
		"How do I bake sourdough bread at home?",
		"What flour is best for sourdough bread?",
		"Why is my sourdough bread dense?",
		"How long should sourdough bread proof?",
		"Can I bake sourdough bread without a dutch oven?",
	}
	tests := []struct {
		prompt  string
		low     bool // below LowDiversity
		newTopc bool // above 0.8
	}{
		{"How do I bake sourdough bread faster?", true, false},
		{"Explain the causes of the French Revolution.", false, true},
		{"What is the difference between TCP and UDP?", false, true},
	}
	for _, tt := range tests {
		d := chat.Diversity(tt.prompt, recent)
		if (d < chat.LowDiversity) != tt.low || (d > 0.8) != tt.newTopc || d < 0 || d > 1 {
			t.Errorf("Diversity(%q) = %.2f; want low %v, new topic %v", tt.prompt, d, tt.low, tt.newTopc)
		}
	}
	if d := chat.Diversity("anything at all", nil); d != 1 {
		t.Errorf("Diversity with no history = %v, want 1", d)
	}
}

func TestSpam(t *testing.T) {
	tests := []struct {
		prompt string
		want   string // a word of the reason; "" for none
	}{
		{"What is the capital of France?", ""},
		{"Write a Python function that checks whether a string is a palindrome.", ""},
		{"Explain rhythm and strengths of the sonnet form.", ""},
		{"请解释一下量子计算的基本原理。", ""},
		{"Объясни, как работает фотосинтез.", ""},
		{"", "no words"},
		{"?!?", "no words"},
		{"hi", "too short"},
		{"buy buy buy buy buy buy buy buy now", "repeats"},
		{"hello world hello world hello world hello world", "repeats"},
		{"aaaaaaaaaaaaaaaaaaaa", "in a row"},
		{"asdasdasdasdasdasdasd", "distinct characters"},
		{"asdfgh qwerty zxcvbn", "keyboard mash"},
		{"xkcdqp bvnmrt wq", "keyboard mash"},
		{strings.Repeat("long prompt text ", 600), "longer than"},
	}
	for _, tt := range tests {
		rs := chat.Spam(tt.prompt)
		var details []string
		for _, r := range rs {
			details = append(details, r.Detail)
		}
		all := strings.Join(details, "; ")
		if (tt.want == "") != (len(rs) == 0) || !strings.Contains(all, tt.want) {
			t.Errorf("Spam(%.40q) = %q, want a reason with %q", tt.prompt, all, tt.want)
		}
	}
}

func TestAssess(t *testing.T) {
	good := "The Moon is about 384,400 km from Earth on average, and its orbit is slightly elliptical."
	tests := []struct {
		name    string
		b       *chat.Battle
		h       chat.QualityHistory
		signals []chat.Signal
		pass    bool
	}{
		{"clean", votedBattle("How far away is the Moon from Earth?", good, good, time.Minute), chat.QualityHistory{}, nil, true},
		{"identity leak", votedBattle("Who are you?", "I am Claude, made by Anthropic.", good, time.Minute), chat.QualityHistory{},
			[]chat.Signal{chat.SignalIdentityLeak}, false},
		{"instant vote", votedBattle("How far away is the Moon from Earth?", good, good, 100*time.Millisecond), chat.QualityHistory{},
			[]chat.Signal{chat.SignalFastVote}, false},
		{"duplicate", votedBattle("How far away is the Moon from Earth?", good, good, time.Minute),
			chat.QualityHistory{Prompts: []string{"how far away is the moon from earth"}}, []chat.Signal{chat.SignalDuplicate}, false},
		{"always A", votedBattle("How far away is the Moon from Earth?", good, good, time.Minute),
			chat.QualityHistory{Outcomes: strings.Split("A,A,A,A,A,A,A,A,A", ",")}, []chat.Signal{chat.SignalSameSide}, true},
		{"gibberish", votedBattle("asdfgh jkl qwerty", good, good, time.Minute), chat.QualityHistory{}, []chat.Signal{chat.SignalSpam}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := chat.Assess(tt.b, tt.h)
			var got []chat.Signal
			for _, r := range q.Reasons {
				if len(got) == 0 || got[len(got)-1] != r.Signal {
					got = append(got, r.Signal)
				}
			}
			if strings.Join(sig(got), ",") != strings.Join(sig(tt.signals), ",") || q.Passes(chat.DefaultQualityThreshold) != tt.pass || q.Score < 0 || q.Score > 1 {
				t.Errorf("Assess = %+v; want signals %v, passes %v", q, tt.signals, tt.pass)
			}
		})
	}
	named := votedBattle("Who are you?", "I am Claude.", "I am Gemini.", time.Minute)
	named.Blind = false
	if q := chat.Assess(named, chat.QualityHistory{}); len(q.Reasons) != 0 {
		t.Errorf("Assess(named battle naming models) = %+v, want no identity reason", q)
	}
}

func sig(s []chat.Signal) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = string(x)
	}
	return out
}
