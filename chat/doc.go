// Package chat sends one prompt to two to four models (OpenAI-compatible servers and
// Anthropic), streams their answers side by side, records blind votes as battles, scores
// their quality and exports them as preference data (Arena battles, DPO pairs).
package chat
